/*
 * conn.c: the byte side of a lodge-worker connection: reading and parsing
 * the request head, decoding the body on demand, framing and writing the
 * response (Content-Length when known, chunked otherwise, so that a
 * response cut short is always visible to the front end).
 *
 * Runs in lodge-worker, as the hosted user, on the worker's C threads and
 * always WITHOUT the GIL: every function here may block on the socket.  It
 * never calls into Python and never trusts a byte it reads: the head goes
 * through the strict parser in common/http.c, the body through its
 * chunked decoder, and sizes are checked against the limits before use.
 */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "errpage.h"
#include "log.h"
#include "util.h"

struct conn *conn_new(int fd, const void *initial, size_t len)
{
	struct conn *c = calloc(1, sizeof(*c));
	size_t size = CONN_BUF_MIN;

	if (c == NULL)
		return NULL;
	while (size < len + CONN_BUF_MIN)
		size *= 2;
	c->buf = malloc(size);
	if (c->buf == NULL) {
		free(c);
		return NULL;
	}
	c->buf_size = size;
	if (len > 0)
		memcpy(c->buf, initial, len);
	c->buf_len = len;
	c->ev_kind = EV_CONN;
	c->fd = fd;
	c->idle_since = util_now_ms();
	return c;
}

void conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->front);
	free(c->buf);
	free(c);
}

#define CLOCK_STATE(x) ((int)((x) & 3))
#define CLOCK_WITH(x, st) (((x) & ~3LL) | (st))

void conn_clock_start(struct conn *c, int64_t started_ms, void *app,
    const struct http_request *http)
{
	c->clock_app = app;
	c->clock_method = http->method;
	c->clock_method_len = http->method_len;
	c->clock_path = http->path;
	c->clock_path_len = http->path_len;
	/* Last, and sequentially consistent: the checker reads the fields
	 * above only after it saw (and claimed) this value. */
	atomic_store(&c->clock, (long long)started_ms << 2 | CONN_CLOCK_RUNNING);
}

int conn_clock_claim(struct conn *c)
{
	long long x = atomic_load(&c->clock);

	for (;;) {
		switch (CLOCK_STATE(x)) {
		case CONN_CLOCK_RUNNING:
			break;
		case CONN_CLOCK_EXPIRED:
			return -1;
		default:
			return 0;
		}
		if (atomic_compare_exchange_weak(&c->clock, &x,
		    CLOCK_WITH(x, CONN_CLOCK_SENDING)))
			return 1;
	}
}

void conn_clock_unclaim(struct conn *c)
{
	long long x = atomic_load(&c->clock);

	/* If the checker expired it meanwhile, it stays expired. */
	if (CLOCK_STATE(x) == CONN_CLOCK_SENDING)
		atomic_compare_exchange_strong(&c->clock, &x,
		    CLOCK_WITH(x, CONN_CLOCK_RUNNING));
}

bool conn_clock_stop(struct conn *c)
{
	return CLOCK_STATE(atomic_exchange(&c->clock, 0)) ==
	    CONN_CLOCK_EXPIRED;
}

int conn_clock_expire(struct conn *c, int64_t now_ms, int64_t timeout_ms)
{
	long long x = atomic_load(&c->clock);
	int st = CLOCK_STATE(x);

	if (st != CONN_CLOCK_RUNNING && st != CONN_CLOCK_SENDING)
		return 0;
	if (now_ms - (int64_t)(x >> 2) < timeout_ms)
		return 0;
	/* Two requests of one connection that began in the same millisecond
	 * hold the same value, but then both are past the timeout: taking
	 * the second one for the first is harmless.  A value that changed
	 * in between is looked at again on the next pass. */
	if (!atomic_compare_exchange_strong(&c->clock, &x,
	    CLOCK_WITH(x, CONN_CLOCK_EXPIRED)))
		return 0;
	return st;
}

void conn_describe_local(struct conn *c)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	strcpy(c->server_name, "localhost");
	strcpy(c->server_port, "80");
	if (getsockname(c->fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_UNIX) {
			c->is_unix = true;
		} else if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &s4->sin_addr, c->server_name,
			    sizeof(c->server_name));
			snprintf(c->server_port, sizeof(c->server_port), "%u",
			    ntohs(s4->sin_port));
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &s6->sin6_addr, c->server_name,
			    sizeof(c->server_name));
			snprintf(c->server_port, sizeof(c->server_port), "%u",
			    ntohs(s6->sin6_port));
		}
	}
	c->is_described = true;
}

void conn_describe(struct conn *c)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	conn_describe_local(c);
	c->remote_addr[0] = '\0';
	c->remote_port[0] = '\0';
	if (!c->is_unix &&
	    getpeername(c->fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &s4->sin_addr, c->remote_addr,
			    sizeof(c->remote_addr));
			snprintf(c->remote_port, sizeof(c->remote_port), "%u",
			    ntohs(s4->sin_port));
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &s6->sin6_addr, c->remote_addr,
			    sizeof(c->remote_addr));
			snprintf(c->remote_port, sizeof(c->remote_port), "%u",
			    ntohs(s6->sin6_port));
		}
	}
}

/* Grows the input buffer to at least want bytes.  Pointers into the old
 * buffer (a parsed head) are invalid afterwards. */
static int conn_grow(struct conn *c, size_t want)
{
	size_t size = c->buf_size;
	char *nb;

	if (size >= want)
		return 0;
	while (size < want)
		size *= 2;
	nb = realloc(c->buf, size);
	if (nb == NULL)
		return -1;
	c->buf = nb;
	c->buf_size = size;
	return 0;
}

static void req_reset(struct req *r, struct conn *c, uint64_t max_body)
{
	char *head = r->head, *out = r->out;
	size_t head_size = r->head_size;
	void (*block_begin)(struct req *) = r->block_begin;
	void (*block_end)(struct req *) = r->block_end;
	void *block_arg = r->block_arg;

	memset(r, 0, sizeof(*r));
	r->head = head;
	r->head_size = head_size;
	r->out = out;
	/* The hooks belong to the thread (set while it holds the GIL). */
	r->block_begin = block_begin;
	r->block_end = block_end;
	r->block_arg = block_arg;
	r->c = c;
	r->max_body = max_body;
	r->content_length = -1;
	r->started_ms = util_now_ms();
}

enum conn_read_result conn_read_head(struct conn *c, struct req *r,
    size_t max_head, uint64_t max_body, int *status_r,
    const char **errstr_r)
{
	req_reset(r, c, max_body);
	for (;;) {
		int rc;

		if (c->buf_len > 0) {
			rc = http_parse_request(c->buf, c->buf_len, max_head,
			    &r->http, status_r, errstr_r);
			if (rc < 0)
				return CONN_READ_BAD;
			if (rc > 0) {
				/* Keep room after the head for body bytes
				 * without moving the head (r->http points
				 * into it): grow, then parse again. */
				if (c->buf_size - r->http.head_len <
				    CONN_BODY_ROOM) {
					if (conn_grow(c, r->http.head_len +
					    CONN_BODY_ROOM) < 0)
						return CONN_READ_CLOSED;
					http_parse_request(c->buf, c->buf_len,
					    max_head, &r->http, status_r,
					    errstr_r);
				}
				break;
			}
			c->head_started = true;
		}
		if (c->buf_len == c->buf_size &&
		    conn_grow(c, c->buf_size * 2) < 0)
			return CONN_READ_CLOSED;
		ssize_t n = recv(c->fd, c->buf + c->buf_len,
		    c->buf_size - c->buf_len, MSG_DONTWAIT);
		if (n == 0)
			return CONN_READ_CLOSED;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return CONN_READ_AGAIN;
			return CONN_READ_CLOSED;
		}
		c->buf_len += (size_t)n;
		c->idle_since = util_now_ms();
	}

	const struct http_request *http = &r->http;

	c->head_started = false;
	/* A front connection's server name and port come from the router;
	 * a TCP socket's own are asked for only when the router left one
	 * empty and the head has no Host to take the name from (a getsockname
	 * saved on nearly every request).  A Unix socket's are the defaults
	 * front_conn_new set. */
	if (!c->is_described && c->front != NULL && !c->is_unix &&
	    (c->front->str[MSG_FRONT_SERVER_PORT][0] == '\0' ||
		(c->front->str[MSG_FRONT_SERVER_NAME][0] == '\0' &&
		    (http->host_len == 0 || http->host[0] == ':'))))
		conn_describe_local(c);
	r->is_head = http->method_len == 4 &&
	    memcmp(http->method, "HEAD", 4) == 0;
	r->raw_off = http->head_len;
	r->keep_alive = http->is_keep_alive;
	switch (http->body_kind) {
	case HTTP_BODY_NONE:
		r->body_done = true;
		break;
	case HTTP_BODY_LENGTH:
		if (max_body > 0 && http->content_length > max_body) {
			*status_r = 413;
			*errstr_r = "Content-Length above the body limit";
			return CONN_READ_BAD;
		}
		r->body_left = http->content_length;
		r->body_done = http->content_length == 0;
		break;
	case HTTP_BODY_CHUNKED:
		http_chunked_init(&r->chunked, max_body);
		break;
	}
	return CONN_READ_HEAD;
}

/* Waits until the request's socket is readable or writable; 0, or -1 on
 * timeout/error.  The only place conn.c blocks. */
static int conn_wait(struct req *r, short events, int timeout_ms)
{
	struct pollfd p = {.fd = r->c->fd, .events = events};
	int rc;

	if (r->block_begin != NULL)
		r->block_begin(r);
	for (;;) {
		rc = poll(&p, 1, timeout_ms);
		if (rc > 0) {
			rc = 0;
			break;
		}
		if (rc == 0) {
			errno = ETIMEDOUT;
			rc = -1;
			break;
		}
		if (errno != EINTR) {
			rc = -1;
			break;
		}
	}
	if (r->block_end != NULL) {
		int saved = errno;

		r->block_end(r);
		errno = saved;
	}
	return rc;
}

/* Makes raw body bytes available in c->buf[r->raw_off..buf_len), reading
 * from the socket if there are none.  0 or -1. */
static int conn_fill_raw(struct req *r, int timeout_ms)
{
	struct conn *c = r->c;

	if (r->raw_off < c->buf_len)
		return 0;
	/* Everything after the head was consumed: read into that room. */
	c->buf_len = r->http.head_len;
	r->raw_off = c->buf_len;
	if (!r->continue_sent && r->http.expect_continue) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		/* An interim response: a request that times out after it
		 * still gets its 504. */
		int claimed = conn_clock_claim(c);

		r->continue_sent = true;
		if (claimed < 0) {
			r->client_gone = true;
			r->keep_alive = false;
			return -1;
		}
		if (conn_write_all(r, cont, sizeof(cont) - 1, timeout_ms) < 0)
			return -1;
		if (claimed > 0)
			conn_clock_unclaim(c);
	}
	for (;;) {
		ssize_t n = recv(c->fd, c->buf + c->buf_len,
		    c->buf_size - c->buf_len, MSG_DONTWAIT);

		if (n > 0) {
			c->buf_len += (size_t)n;
			return 0;
		}
		if (n == 0) {
			errno = ECONNRESET;
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (conn_wait(r, POLLIN, timeout_ms) < 0)
			return -1;
	}
}

ssize_t conn_body_read(struct req *r, char *dst, size_t n, int timeout_ms)
{
	struct conn *c = r->c;
	size_t got = 0;

	if (r->body_failed)
		return -1;
	while (got < n && !r->body_done) {
		if (conn_fill_raw(r, timeout_ms) < 0) {
			r->body_failed = true;
			return got > 0 ? (ssize_t)got : -1;
		}
		const char *raw = c->buf + r->raw_off;
		size_t avail = c->buf_len - r->raw_off;

		if (r->http.body_kind == HTTP_BODY_LENGTH) {
			size_t take = avail;

			if (take > n - got)
				take = n - got;
			if (take > r->body_left)
				take = (size_t)r->body_left;
			memcpy(dst + got, raw, take);
			got += take;
			r->raw_off += take;
			r->body_left -= take;
			if (r->body_left == 0)
				r->body_done = true;
		} else {
			const char *data, *err = NULL;
			size_t used = 0, dlen = 0;
			enum http_chunked_result cr;

			/* Feed at most as many raw bytes as dst has room for:
			 * the data returned is never longer than its input,
			 * so it always fits. */
			if (avail > n - got)
				avail = n - got;
			cr = http_chunked_feed(&r->chunked, raw, avail, &used,
			    &data, &dlen, &err);
			r->raw_off += used;
			switch (cr) {
			case HTTP_CHUNKED_DATA:
				memcpy(dst + got, data, dlen);
				got += dlen;
				break;
			case HTTP_CHUNKED_MORE:
				break;
			case HTTP_CHUNKED_DONE:
				r->body_done = true;
				break;
			case HTTP_CHUNKED_TOO_BIG:
				r->body_failed = true;
				r->body_status = 413;
				return got > 0 ? (ssize_t)got : -1;
			case HTTP_CHUNKED_ERROR:
				log_info("bad chunked body from %s: %s",
				    c->remote_addr[0] ? c->remote_addr : "unix",
				    err ? err : "?");
				r->body_failed = true;
				r->body_status = 400;
				return got > 0 ? (ssize_t)got : -1;
			}
		}
		/* Return what we have as soon as some bytes arrived and the
		 * socket has nothing more right now: read(n) returns at
		 * most n bytes, and short reads are fine for a stream. */
		if (got > 0 && r->raw_off >= c->buf_len)
			break;
	}
	return (ssize_t)got;
}

int conn_body_discard(struct req *r)
{
	char sink[16384];
	uint64_t dropped = 0;

	if (r->body_done)
		return 0;
	if (r->body_failed)
		return -1;
	/* A client that waits for 100 Continue has not sent its body: the
	 * connection can't carry another request. */
	if (r->http.expect_continue && !r->continue_sent)
		return -1;
	while (!r->body_done) {
		ssize_t n = conn_body_read(r, sink, sizeof(sink), 2000);

		if (n < 0)
			return -1;
		dropped += (uint64_t)n;
		if (dropped > 1024 * 1024)
			return -1;
	}
	return 0;
}

bool conn_next_request(struct req *r)
{
	struct conn *c = r->c;
	size_t left = c->buf_len > r->raw_off ? c->buf_len - r->raw_off : 0;

	if (left > 0)
		memmove(c->buf, c->buf + r->raw_off, left);
	c->buf_len = left;
	/* Give memory back after a large head. */
	if (left == 0 && c->buf_size > 4 * CONN_BUF_MIN) {
		char *nb = realloc(c->buf, CONN_BUF_MIN);

		if (nb != NULL) {
			c->buf = nb;
			c->buf_size = CONN_BUF_MIN;
		}
	}
	c->idle_since = util_now_ms();
	return left > 0;
}

int conn_writev_all(struct req *r, struct iovec *iov, int iovcnt,
    int timeout_ms)
{
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};

	if (r->client_gone)
		return -1;
	if (conn_clock_claim(r->c) < 0) {
		/* Past --request-timeout: the 504 went out already and the
		 * connection is shut down. */
		r->client_gone = true;
		r->keep_alive = false;
		return -1;
	}
	while (mh.msg_iovlen > 0) {
		ssize_t n = sendmsg(r->c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
			    conn_wait(r, POLLOUT, timeout_ms) == 0)
				continue;
			r->client_gone = true;
			return -1;
		}
		while (n > 0 && mh.msg_iovlen > 0) {
			if ((size_t)n >= mh.msg_iov->iov_len) {
				n -= (ssize_t)mh.msg_iov->iov_len;
				mh.msg_iov++;
				mh.msg_iovlen--;
			} else {
				mh.msg_iov->iov_base =
				    (char *)mh.msg_iov->iov_base + n;
				mh.msg_iov->iov_len -= (size_t)n;
				n = 0;
			}
		}
		/* Skip empty tail entries. */
		while (mh.msg_iovlen > 0 && mh.msg_iov->iov_len == 0) {
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
	}
	return 0;
}

int conn_write_all(struct req *r, const void *data, size_t len, int timeout_ms)
{
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};

	return conn_writev_all(r, &iov, 1, timeout_ms);
}

void conn_send_error(struct req *r, int status, bool keep)
{
	char page[1024];
	size_t n;

	n = errpage_render(page, sizeof(page), status, r->is_head, keep, 0);
	r->status = status;
	r->headers_sent = true;
	if (!keep)
		r->keep_alive = false;
	if (n > 0)
		conn_write_all(r, page, n, CONN_IO_TIMEOUT_MS);
}

/* Decides the framing and the Connection header, and appends them and
 * the final CRLF to the head.  is_final: the whole body is r->out. */
static int conn_finish_head(struct req *r, bool is_final, char *tail,
    size_t tail_size, size_t *tail_len_r)
{
	size_t n = 0;
	int w;

	if (r->no_body) {
		/* HEAD keeps the app's Content-Length; 1xx/204 must not
		 * carry one. */
		if (r->content_length >= 0 && r->status != 204 &&
		    r->status >= 200) {
			w = snprintf(tail, tail_size,
			    "Content-Length: %" PRId64 "\r\n", r->content_length);
			n += (size_t)w;
		}
	} else if (r->content_length >= 0) {
		w = snprintf(tail, tail_size, "Content-Length: %" PRId64 "\r\n",
		    r->content_length);
		n += (size_t)w;
	} else if (is_final) {
		w = snprintf(tail, tail_size, "Content-Length: %zu\r\n",
		    r->out_len);
		n += (size_t)w;
	} else if (r->http.version_minor >= 1) {
		r->chunked_out = true;
		memcpy(tail + n, "Transfer-Encoding: chunked\r\n", 28);
		n += 28;
	} else {
		/* HTTP/1.0 without a known length: the end of the body is
		 * the end of the connection. */
		r->close_after = true;
	}

	/* A connection can carry another request only if this one's body
	 * can still be consumed cheaply. */
	if (!r->body_done) {
		if (r->body_failed ||
		    (r->http.expect_continue && !r->continue_sent) ||
		    (r->http.body_kind == HTTP_BODY_LENGTH &&
			r->body_left > 1024 * 1024))
			r->keep_alive = false;
	}
	if (r->close_after || r->app_close)
		r->keep_alive = false;
	if (r->keep_alive) {
		if (r->http.version_minor == 0) {
			memcpy(tail + n, "Connection: keep-alive\r\n", 24);
			n += 24;
		}
	} else {
		memcpy(tail + n, "Connection: close\r\n", 19);
		n += 19;
	}
	memcpy(tail + n, "\r\n", 2);
	n += 2;
	*tail_len_r = n;
	return 0;
}

/* Sends the head (if not sent yet) and the buffered body.  With is_end
 * and chunked framing, the last chunk goes in the same write. */
static int conn_flush(struct req *r, bool is_final, bool is_end)
{
	struct iovec iov[5];
	char tail[160], chunk_head[24];
	int cnt = 0;

	if (r->client_gone)
		return -1;
	if (!r->headers_sent) {
		size_t tail_len;

		conn_finish_head(r, is_final, tail, sizeof(tail), &tail_len);
		iov[cnt++] = (struct iovec){r->head, r->head_len};
		iov[cnt++] = (struct iovec){tail, tail_len};
		r->headers_sent = true;
	}
	if (r->out_len > 0) {
		if (r->chunked_out) {
			int w = snprintf(chunk_head, sizeof(chunk_head),
			    "%zx\r\n", r->out_len);

			iov[cnt++] = (struct iovec){chunk_head, (size_t)w};
			iov[cnt++] = (struct iovec){r->out, r->out_len};
			iov[cnt++] = (struct iovec){(char *)"\r\n", 2};
		} else {
			iov[cnt++] = (struct iovec){r->out, r->out_len};
		}
	}
	if (is_end && r->chunked_out) {
		if (r->out_len > 0)
			iov[cnt - 1] = (struct iovec){(char *)"\r\n0\r\n\r\n", 7};
		else
			iov[cnt++] = (struct iovec){(char *)"0\r\n\r\n", 5};
	}
	r->body_sent += r->out_len;
	r->out_len = 0;
	if (cnt == 0)
		return 0;
	return conn_writev_all(r, iov, cnt, CONN_IO_TIMEOUT_MS);
}

int conn_resp_body(struct req *r, const char *data, size_t len, bool flush)
{
	if (r->client_gone)
		return -1;
	if (r->no_body)
		return 0;
	if (r->content_length >= 0) {
		uint64_t room = (uint64_t)r->content_length - r->body_sent -
		    r->out_len;

		if (len > room) {
			/* More than the app declared: send what it
			 * declared, then close (never desynchronise the
			 * front end's framing). */
			log_warn("response longer than its Content-Length "
			    "(%" PRId64 "): cut", r->content_length);
			len = (size_t)room;
			r->keep_alive = false;
		}
	}
	while (len > 0) {
		size_t room = CONN_OUT_SIZE - r->out_len;
		size_t take = len < room ? len : room;

		memcpy(r->out + r->out_len, data, take);
		r->out_len += take;
		data += take;
		len -= take;
		if (r->out_len == CONN_OUT_SIZE && conn_flush(r, false, false) < 0)
			return -1;
	}
	if (flush && (r->out_len > 0 || !r->headers_sent))
		return conn_flush(r, false, false);
	return 0;
}

int conn_resp_sendfile(struct req *r, int fd, int64_t len)
{
	int64_t sent = 0;

	if (r->no_body)
		return 0;
	if (r->content_length >= 0) {
		/* Never past what the app declared, counting what it already
		 * wrote: the rest would be read as the next response. */
		int64_t room = r->content_length - (int64_t)r->body_sent -
		    (int64_t)r->out_len;

		if (room < 0)
			room = 0;
		if (len < 0 || len > room) {
			if (len >= 0)
				r->keep_alive = false;
			len = room;
		}
	}
	if (r->out_len > 0 || !r->headers_sent) {
		if (conn_flush(r, false, false) < 0)
			return -1;
	}
	if (r->chunked_out)
		return -1; /* the caller only uses sendfile with a length */
	if (r->c->may_block) {
		/* sendfile has no MSG_DONTWAIT: a descriptor passed to us
		 * (whose open file we share) must be non-blocking first, or
		 * a client that stops reading would hold this thread. */
		int fl = fcntl(r->c->fd, F_GETFL);

		if (fl < 0 || (!(fl & O_NONBLOCK) &&
		    fcntl(r->c->fd, F_SETFL, fl | O_NONBLOCK) < 0)) {
			r->client_gone = true;
			return -1;
		}
		r->c->may_block = false;
	}
	while (len < 0 || sent < len) {
		size_t want = 1 << 20;
		ssize_t n;

		if (len >= 0 && (int64_t)want > len - sent)
			want = (size_t)(len - sent);
		n = sendfile(r->c->fd, fd, NULL, want);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
			    conn_wait(r, POLLOUT, CONN_IO_TIMEOUT_MS) == 0)
				continue;
			r->client_gone = true;
			return -1;
		}
		sent += n;
		r->body_sent += (uint64_t)n;
	}
	return 0;
}

int conn_resp_end(struct req *r)
{
	if (r->client_gone)
		return -1;
	if (conn_flush(r, !r->headers_sent, true) < 0)
		return -1;
	if (!r->no_body && r->content_length >= 0 &&
	    r->body_sent < (uint64_t)r->content_length) {
		/* The app promised more than it gave: the only way to say
		 * so is to close the connection. */
		log_warn("response shorter than its Content-Length "
		    "(%" PRIu64 " of %" PRId64 "): connection closed",
		    r->body_sent, r->content_length);
		return -1;
	}
	if (r->close_after)
		return -1;
	return 0;
}
