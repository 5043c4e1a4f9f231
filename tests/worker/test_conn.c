/*
 * test_conn.c: tests of src/worker/conn.c, the byte side of a lodge-worker
 * connection, over real sockets.  Each case makes a socketpair(AF_UNIX,
 * SOCK_STREAM), hands one end to conn_new (non-blocking, as the worker's
 * accept4 leaves it) and plays the client on the other: request heads
 * (complete, partial, pipelined, bad, over the limits, peer closed), request
 * bodies decoded by conn_body_read (Content-Length and chunked, arriving in
 * pieces from a client thread, malformed, too large, after "100 Continue"),
 * conn_body_discard, and the response framing chosen by conn_resp_body and
 * conn_resp_end, read back byte for byte from the client end (Content-Length
 * or chunked, HEAD, HTTP/1.0, Connection), error pages, sendfile and a
 * client that went away, and the request clock of --request-timeout.  The
 * response head is built here the way the WSGI layer builds it: status
 * line and app headers, no framing.  Tables where
 * the cases differ only by data.  Runs as any user; SIGPIPE is ignored, as
 * in the worker.  No assertion runs while a client thread is alive: results
 * are collected first, checked after the join.
 */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "util.h"

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_STEPS 10

/* Body reads in these tests never wait this long unless something is
 * wrong; a bug makes a case fail, not hang. */
#define READ_TIMEOUT_MS 3000

/* The response head as the WSGI layer hands it over. */
#define DEF_HEAD "HTTP/1.1 200 OK\r\nX: y\r\n"
#define GET11 "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
#define CONTINUE "HTTP/1.1 100 Continue\r\n\r\n"
#define POST_CL(n)                                                             \
	"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: " #n "\r\n\r\n"
#define POST_CHUNKED                                                           \
	"POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
#define EXPECT_CL(n)                                                           \
	"POST /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"              \
	"Content-Length: " #n "\r\n\r\n"

/* ---------------------------------------------------------------------- */
/* The connection under test and the client end                           */
/* ---------------------------------------------------------------------- */

/* One connection per case; fx_teardown frees whatever is left, also after
 * a failed assertion. */
static struct {
	struct conn *c;
	struct req r;
	int peer; /* the client end */
} fx = {.peer = -1};

static void fx_close(void)
{
	conn_free(fx.c);
	fx.c = NULL;
	free(fx.r.out);
	free(fx.r.head);
	memset(&fx.r, 0, sizeof(fx.r));
	if (fx.peer >= 0)
		close(fx.peer);
	fx.peer = -1;
}

static int fx_teardown(void **state)
{
	fx_close();
	return 0;
}

/* A connection whose router already read initial[0..len). */
static void fx_open_initial(const void *initial, size_t len)
{
	int sv[2];

	fx_close();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	fx.peer = sv[1];
	fx.c = conn_new(sv[0], initial, len);
	assert_non_null(fx.c);
	assert_int_equal(fx.c->fd, sv[0]);
	fx.r.out = malloc(CONN_OUT_SIZE);
	assert_non_null(fx.r.out);
	fx.r.head = NULL;
	fx.r.head_size = 0;
}

static void fx_open(void)
{
	fx_open_initial(NULL, 0);
}

static int write_full(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void client_write(const void *data, size_t len)
{
	assert_int_equal(write_full(fx.peer, data, len), 0);
}

static void client_puts(const char *s)
{
	client_write(s, strlen(s));
}

/* Everything the server has sent so far (the server is single-threaded
 * here: what it wrote is there), without waiting. */
static size_t client_drain(char *buf, size_t size)
{
	size_t len = 0;

	while (len < size) {
		ssize_t n = recv(fx.peer, buf + len, size - len, MSG_DONTWAIT);

		if (n <= 0)
			break;
		len += (size_t)n;
	}
	return len;
}

/* Printable form of bytes for failure messages (a few buffers in turn, so
 * that one message can show two). */
static const char *show(const char *s, size_t len)
{
	static char bufs[4][2048];
	static int next;
	char *b = bufs[next++ % 4], *p = b;

	for (size_t i = 0; i < len && p < b + sizeof(bufs[0]) - 8; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '\r') {
			*p++ = '\\';
			*p++ = 'r';
		} else if (ch == '\n') {
			*p++ = '\\';
			*p++ = 'n';
		} else if (ch < 0x20 || ch >= 0x7f) {
			p += sprintf(p, "\\x%02x", ch);
		} else {
			*p++ = (char)ch;
		}
	}
	*p = '\0';
	return b;
}

static void check_bytes(const char *what, const char *name, const char *got,
    size_t got_len, const char *want, size_t want_len)
{
	if (got_len != want_len || memcmp(got, want, want_len) != 0)
		fail_msg("case \"%s\": %s is\n  \"%s\" (%zu bytes), want\n  "
		         "\"%s\" (%zu bytes)",
		    name, what, show(got, got_len), got_len,
		    show(want, want_len), want_len);
}

/* The client sends head and the server parses it as a complete request. */
static void start_request(const char *head, uint64_t max_body)
{
	const char *err = NULL;
	int status = 0;
	enum conn_read_result rc;

	client_puts(head);
	rc = conn_read_head(
	    fx.c, &fx.r, HTTP_DEFAULT_MAX_HEAD, max_body, &status, &err);
	if (rc != CONN_READ_HEAD)
		fail_msg("request \"%s\": conn_read_head returned %d (%d %s)",
		    show(head, strlen(head)), rc, status, err ? err : "");
}

/* What the WSGI layer does in start_response: the head buffer (status
 * line and app headers, no framing) and the flags. */
static void set_response(int status, const char *head, int64_t clen)
{
	size_t len = strlen(head);

	if (fx.r.head_size < len) {
		char *nh = realloc(fx.r.head, len);

		assert_non_null(nh);
		fx.r.head = nh;
		fx.r.head_size = len;
	}
	memcpy(fx.r.head, head, len);
	fx.r.head_len = len;
	fx.r.status = status;
	fx.r.content_length = clen;
	fx.r.no_body =
	    fx.r.is_head || status < 200 || status == 204 || status == 304;
	fx.r.headers_set = true;
}

static int64_t now_ms(void)
{
	return util_now_ms();
}

/* ---------------------------------------------------------------------- */
/* A client thread                                                         */
/* ---------------------------------------------------------------------- */

/* Plays the client while the server blocks in conn_body_read: optionally
 * waits for "100 Continue", then writes pieces with a pause before each,
 * then optionally a large block, then optionally shuts its sending side.
 * Records what it saw; asserts nothing. */
struct client {
	pthread_t tid;
	int fd;
	bool wait_continue;
	const char *const *pieces; /* NULL-terminated, or NULL */
	int pause_ms;
	const char *big;
	size_t big_len;
	bool shut;
	/* Read back instead of writing: how many bytes to collect. */
	char *sink;
	size_t sink_want;
	/* Results. */
	char got[64]; /* what arrived while waiting for "100 Continue" */
	size_t got_len;
	size_t sink_len;
	int write_errno; /* 0, or errno of a failed write */
};

static void pause_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Reads until want bytes arrived, EOF or a quiet READ_TIMEOUT_MS. */
static size_t read_some(int fd, char *buf, size_t want)
{
	size_t len = 0;

	while (len < want) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, READ_TIMEOUT_MS) <= 0)
			break;
		n = read(fd, buf + len, want - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	return len;
}

static void *client_main(void *arg)
{
	struct client *cl = arg;

	if (cl->wait_continue)
		cl->got_len = read_some(cl->fd, cl->got, strlen(CONTINUE));
	for (size_t i = 0; cl->pieces != NULL && cl->pieces[i] != NULL; i++) {
		pause_ms(cl->pause_ms);
		if (write_full(cl->fd, cl->pieces[i], strlen(cl->pieces[i])) <
		    0) {
			cl->write_errno = errno;
			return NULL;
		}
	}
	if (cl->big != NULL && write_full(cl->fd, cl->big, cl->big_len) < 0) {
		cl->write_errno = errno;
		return NULL;
	}
	if (cl->sink != NULL)
		cl->sink_len = read_some(cl->fd, cl->sink, cl->sink_want);
	if (cl->shut)
		shutdown(cl->fd, SHUT_WR);
	return NULL;
}

static void client_start(struct client *cl)
{
	cl->fd = fx.peer;
	assert_int_equal(pthread_create(&cl->tid, NULL, client_main, cl), 0);
}

static void client_join(struct client *cl)
{
	pthread_join(cl->tid, NULL);
}

/* Joins a writer that the server may have stopped reading from (a bug):
 * shutting the client's sending side makes a blocked write fail instead
 * of hanging the test.  Harmless once everything was read. */
static void client_stop(struct client *cl)
{
	shutdown(cl->fd, SHUT_WR);
	client_join(cl);
}

/* Reads the whole body in reads of `piece` bytes into acc until a read
 * returns 0 or -1 (its value in *last_r).  Returns the bytes collected, or
 * (size_t)-1 if a read returned more than asked.  Asserts nothing: a
 * client thread may be running. */
static size_t read_body(char *acc, size_t cap, size_t piece, ssize_t *last_r)
{
	size_t len = 0;
	char *dst = malloc(piece);

	*last_r = -2;
	if (dst == NULL)
		return 0;
	for (int i = 0; i < 1000000; i++) {
		ssize_t n = conn_body_read(&fx.r, dst, piece, READ_TIMEOUT_MS);

		if (n <= 0) {
			*last_r = n;
			break;
		}
		if ((size_t)n > piece || len + (size_t)n > cap) {
			len = (size_t)-1;
			break;
		}
		memcpy(acc + len, dst, (size_t)n);
		len += (size_t)n;
	}
	free(dst);
	return len;
}

/* ---------------------------------------------------------------------- */
/* conn_read_head                                                          */
/* ---------------------------------------------------------------------- */

/* Steps: before step i the client writes writes[i] ("" writes nothing),
 * then conn_read_head must return results[i].  With is_closed, the client
 * then closes and one more call must say CONN_READ_CLOSED. */
struct head_row {
	const char *name;
	const char *initial; /* bytes the router read already, or NULL */
	const char *writes[MAX_STEPS];
	enum conn_read_result results[MAX_STEPS];
	bool is_closed;
	size_t max_head; /* 0: HTTP_DEFAULT_MAX_HEAD */
	uint64_t max_body;
	int status; /* of a CONN_READ_BAD */
	/* Of a CONN_READ_HEAD. */
	const char *method;
	const char *target;
	int minor;
	bool is_head;
	bool keep_alive;
	bool body_done;
	bool expect;
	enum http_body_kind body;
	uint64_t clen;
};

#define HEAD CONN_READ_HEAD
#define AGAIN CONN_READ_AGAIN
#define BAD CONN_READ_BAD

static const struct head_row head_rows[] = {
    {.name = "head: complete",
        .writes = {"GET /a?b=1 HTTP/1.1\r\nHost: h\r\n\r\n"},
        .results = {HEAD},
        .method = "GET",
        .target = "/a?b=1",
        .minor = 1,
        .keep_alive = true,
        .body_done = true},
    {.name = "head: nothing yet", .writes = {""}, .results = {AGAIN}},
    {.name = "head: partial, then completed",
        .writes = {"GET / HT", "", "TP/1.1\r\nHost: h\r", "\n\r\n"},
        .results = {AGAIN, AGAIN, AGAIN, HEAD},
        .method = "GET",
        .target = "/",
        .minor = 1,
        .keep_alive = true,
        .body_done = true},
    {.name = "head: partial up to the last LF",
        .writes = {"GET / HTTP/1.1\r\nHost: h\r\n\r", "\n"},
        .results = {AGAIN, HEAD},
        .method = "GET",
        .target = "/",
        .minor = 1,
        .keep_alive = true,
        .body_done = true},
    {.name = "head: all in the router's bytes",
        .initial = "GET /r HTTP/1.1\r\nHost: h\r\n\r\n",
        .writes = {""},
        .results = {HEAD},
        .method = "GET",
        .target = "/r",
        .minor = 1,
        .keep_alive = true,
        .body_done = true},
    {.name = "head: split between the router's bytes and the socket",
        .initial = "GET /r HTTP/1.1\r\nHost: h\r\nX-A",
        .writes = {"", ": 1\r\n\r\n"},
        .results = {AGAIN, HEAD},
        .method = "GET",
        .target = "/r",
        .minor = 1,
        .keep_alive = true,
        .body_done = true},
    {.name = "head: HEAD method",
        .writes = {"HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n"},
        .results = {HEAD},
        .method = "HEAD",
        .target = "/x",
        .minor = 1,
        .is_head = true,
        .keep_alive = true,
        .body_done = true},
    {.name = "head: HTTP/1.0",
        .writes = {"GET / HTTP/1.0\r\n\r\n"},
        .results = {HEAD},
        .method = "GET",
        .target = "/",
        .minor = 0,
        .body_done = true},
    {.name = "head: HTTP/1.0 keep-alive",
        .writes = {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"},
        .results = {HEAD},
        .method = "GET",
        .target = "/",
        .minor = 0,
        .keep_alive = true,
        .body_done = true},
    {.name = "head: Connection: close",
        .writes = {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"},
        .results = {HEAD},
        .method = "GET",
        .target = "/",
        .minor = 1,
        .body_done = true},
    {.name = "head: Content-Length body",
        .writes = {"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"},
        .results = {HEAD},
        .method = "POST",
        .target = "/p",
        .minor = 1,
        .keep_alive = true,
        .body = HTTP_BODY_LENGTH,
        .clen = 5},
    {.name = "head: Content-Length 0",
        .writes = {"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"},
        .results = {HEAD},
        .method = "POST",
        .target = "/p",
        .minor = 1,
        .keep_alive = true,
        .body_done = true,
        .body = HTTP_BODY_LENGTH},
    {.name = "head: chunked body",
        .writes = {"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
                   "chunked\r\n\r\n"},
        .results = {HEAD},
        .method = "POST",
        .target = "/p",
        .minor = 1,
        .keep_alive = true,
        .body = HTTP_BODY_CHUNKED},
    {.name = "head: Expect: 100-continue",
        .writes = {"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                   "Content-Length: 3\r\n\r\n"},
        .results = {HEAD},
        .method = "PUT",
        .target = "/",
        .minor = 1,
        .keep_alive = true,
        .expect = true,
        .body = HTTP_BODY_LENGTH,
        .clen = 3},
    {.name = "head: Content-Length equal to max_body",
        .writes = {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n"},
        .results = {HEAD},
        .max_body = 100,
        .method = "POST",
        .target = "/",
        .minor = 1,
        .keep_alive = true,
        .body = HTTP_BODY_LENGTH,
        .clen = 100},
    {.name = "head: Content-Length over max_body is 413",
        .writes = {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n"},
        .results = {BAD},
        .max_body = 100,
        .status = 413},
    {.name = "head: max_body 0 is no limit",
        .writes = {"POST / HTTP/1.1\r\nHost: h\r\n"
                   "Content-Length: 9223372036854775807\r\n\r\n"},
        .results = {HEAD},
        .method = "POST",
        .target = "/",
        .minor = 1,
        .keep_alive = true,
        .body = HTTP_BODY_LENGTH,
        .clen = 9223372036854775807ull},
    {.name = "head: bad: obs-fold",
        .writes = {"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n"},
        .results = {BAD},
        .status = 400},
    {.name = "head: bad: bare LF",
        .writes = {"GET / HTTP/1.1\nHost: h\n\n"},
        .results = {BAD},
        .status = 400},
    {.name = "head: bad: two spaces",
        .writes = {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n"},
        .results = {BAD},
        .status = 400},
    {.name = "head: bad: HTTP/2.0",
        .writes = {"GET / HTTP/2.0\r\n\r\n"},
        .results = {BAD},
        .status = 505},
    {.name = "head: bad: Content-Length and Transfer-Encoding",
        .writes = {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n"},
        .results = {BAD},
        .status = 400},
    {.name = "head: bad: unsupported Expect",
        .writes = {"POST / HTTP/1.1\r\nHost: h\r\nExpect: later\r\n\r\n"},
        .results = {BAD},
        .status = 417},
    {.name = "head: bad after a partial head",
        .writes = {"GET / HTTP/1.1\r\nHost: h\r\n", " folded\r\n\r\n"},
        .results = {AGAIN, BAD},
        .status = 400},
    {.name = "head: bad in the router's bytes",
        .initial = "GET / HTTP/1.1\r\nHost: h\r\nX : y\r\n\r\n",
        .writes = {""},
        .results = {BAD},
        .status = 400},
    {.name = "head: over max_head is 431",
        .writes = {"GET / HTTP/1.1\r\nHost: h\r\nX-Long: "
                   "0123456789012345678901234567890123456789\r\n\r\n"},
        .results = {BAD},
        .max_head = 48,
        .status = 431},
    {.name = "head: peer closed before any byte", .is_closed = true},
    {.name = "head: peer closed mid-head",
        .writes = {"GET / HTTP/1.1\r\nHost: h\r\n"},
        .results = {AGAIN},
        .is_closed = true},
};

static void test_head_row(void **state)
{
	const struct head_row *row = *state;
	size_t max_head = row->max_head ? row->max_head : HTTP_DEFAULT_MAX_HEAD;
	enum conn_read_result rc = AGAIN;
	const char *err = NULL;
	int status = 0;
	size_t i;

	fx_open_initial(row->initial, row->initial ? strlen(row->initial) : 0);
	for (i = 0; i < MAX_STEPS && row->writes[i] != NULL; i++) {
		client_puts(row->writes[i]);
		err = NULL;
		status = 0;
		rc = conn_read_head(
		    fx.c, &fx.r, max_head, row->max_body, &status, &err);
		if (rc != row->results[i])
			fail_msg("case \"%s\": step %zu returned %d (%d %s), "
			         "want %d",
			    row->name, i, rc, status, err ? err : "",
			    row->results[i]);
		if (rc == AGAIN && fx.c->buf_len > 0 && !fx.c->head_started)
			fail_msg("case \"%s\": step %zu: head_started not set",
			    row->name, i);
	}
	if (row->is_closed) {
		close(fx.peer);
		fx.peer = -1;
		rc = conn_read_head(
		    fx.c, &fx.r, max_head, row->max_body, &status, &err);
		if (rc != CONN_READ_CLOSED)
			fail_msg("case \"%s\": after the close: %d, want "
			         "CONN_READ_CLOSED",
			    row->name, rc);
		return;
	}
	if (rc == BAD) {
		if (status != row->status)
			fail_msg("case \"%s\": status %d, want %d", row->name,
			    status, row->status);
		if (err == NULL || err[0] == '\0')
			fail_msg("case \"%s\": no reason given", row->name);
		return;
	}
	if (rc != HEAD)
		return;
	struct req *r = &fx.r;

	assert_false(fx.c->head_started);
	assert_ptr_equal(r->c, fx.c);
	check_bytes("method", row->name, r->http.method, r->http.method_len,
	    row->method, strlen(row->method));
	check_bytes("target", row->name, r->http.target, r->http.target_len,
	    row->target, strlen(row->target));
	assert_int_equal(r->http.version_minor, row->minor);
	assert_int_equal(r->is_head, row->is_head);
	assert_int_equal(r->keep_alive, row->keep_alive);
	assert_int_equal(r->body_done, row->body_done);
	assert_int_equal(r->http.expect_continue, row->expect);
	assert_int_equal(r->http.body_kind, row->body);
	if (row->body == HTTP_BODY_LENGTH) {
		assert_int_equal(r->http.content_length, row->clen);
		assert_int_equal(r->body_left, row->clen);
	}
	assert_int_equal(r->raw_off, r->http.head_len);
	assert_int_equal(r->max_body, row->max_body);
	assert_int_equal(r->content_length, -1);
	assert_false(r->headers_sent);
	assert_false(r->body_failed);
	/* Room for body bytes after the head. */
	assert_true(fx.c->buf_size - r->http.head_len >= CONN_BODY_ROOM);
}

/* A head written one byte at a time: AGAIN after each byte but the last. */
static void test_head_byte_by_byte(void **state)
{
	static const char head[] = "POST /b HTTP/1.1\r\nHost: h\r\n"
	                           "Content-Length: 2\r\n\r\n";
	const char *err = NULL;
	int status = 0;

	fx_open();
	for (size_t i = 0; i < sizeof(head) - 1; i++) {
		enum conn_read_result want =
		    i == sizeof(head) - 2 ? CONN_READ_HEAD : CONN_READ_AGAIN;

		client_write(head + i, 1);
		assert_int_equal(conn_read_head(fx.c, &fx.r,
		                     HTTP_DEFAULT_MAX_HEAD, 0, &status, &err),
		    want);
		assert_int_equal(fx.c->head_started, want == CONN_READ_AGAIN);
	}
	assert_int_equal(fx.r.http.content_length, 2);
	assert_int_equal(fx.r.http.head_len, sizeof(head) - 1);
}

/* A head larger than the first buffer: the buffer grows, the header keeps
 * every byte, and room for the body remains. */
static void test_head_large(void **state)
{
	size_t vlen = 20000;
	char *head = malloc(vlen + 128);
	const struct http_header *h;
	const char *err = NULL;
	int status = 0, n;

	assert_non_null(head);
	n = sprintf(head, "GET / HTTP/1.1\r\nHost: h\r\nX-Big: ");
	for (size_t i = 0; i < vlen; i++)
		head[n + (int)i] = (char)('a' + i % 26);
	strcpy(head + n + vlen, "\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
	fx_open();
	client_puts(head);
	assert_int_equal(conn_read_head(fx.c, &fx.r, HTTP_DEFAULT_MAX_HEAD, 0,
	                     &status, &err),
	    CONN_READ_HEAD);
	h = http_find_header(&fx.r.http, "x-big");
	assert_non_null(h);
	assert_int_equal(h->value_len, vlen);
	assert_memory_equal(h->value, head + n, vlen);
	assert_true(fx.c->buf_size - fx.r.http.head_len >= CONN_BODY_ROOM);
	/* The pipelined request survives the growth. */
	assert_int_equal(conn_body_discard(&fx.r), 0);
	assert_true(conn_next_request(&fx.r));
	assert_int_equal(conn_read_head(fx.c, &fx.r, HTTP_DEFAULT_MAX_HEAD, 0,
	                     &status, &err),
	    CONN_READ_HEAD);
	check_bytes("target", "large head", fx.r.http.target,
	    fx.r.http.target_len, "/2", 2);
	/* Nothing follows: the buffer shrinks back, and still serves. */
	assert_int_equal(conn_body_discard(&fx.r), 0);
	assert_false(conn_next_request(&fx.r));
	assert_int_equal(fx.c->buf_size, CONN_BUF_MIN);
	client_puts(POST_CL(3) "abc");
	assert_int_equal(conn_read_head(fx.c, &fx.r, HTTP_DEFAULT_MAX_HEAD, 0,
	                     &status, &err),
	    CONN_READ_HEAD);
	{
		char acc[8];
		ssize_t last;

		assert_int_equal(read_body(acc, sizeof(acc), 8, &last), 3);
		assert_int_equal(last, 0);
		assert_memory_equal(acc, "abc", 3);
	}
	free(head);
}

/* ---------------------------------------------------------------------- */
/* Pipelining                                                              */
/* ---------------------------------------------------------------------- */

/* wire goes out in one write; late is written when conn_read_head first
 * says AGAIN.  Each request's body is read whole (is_read) or left to
 * conn_body_discard. */
struct pipe_row {
	const char *name;
	const char *wire;
	const char *late;
	bool is_read;
	const char *targets[5]; /* NULL after the last */
	const char *bodies[4];
};

static const struct pipe_row pipe_rows[] = {
    {.name = "pipelined: two GETs in one write",
        .wire = "GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
                "GET /two HTTP/1.1\r\nHost: h\r\n\r\n",
        .targets = {"/one", "/two"}},
    {.name = "pipelined: three, the last completed later",
        .wire = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: "
                "h\r\n\r\nGET /3 HT",
        .late = "TP/1.1\r\nHost: h\r\n\r\n",
        .targets = {"/1", "/2", "/3"}},
    {.name = "pipelined: Content-Length body read, then GET",
        .wire = "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
                "GET /g HTTP/1.1\r\nHost: h\r\n\r\n",
        .is_read = true,
        .targets = {"/p", "/g"},
        .bodies = {"hello", ""}},
    {.name = "pipelined: Content-Length body discarded, then GET",
        .wire = "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
                "GET /g HTTP/1.1\r\nHost: h\r\n\r\n",
        .targets = {"/p", "/g"}},
    {.name = "pipelined: chunked body read, then POST",
        .wire =
            "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            "3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n"
            "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz",
        .is_read = true,
        .targets = {"/c", "/p"},
        .bodies = {"abcde", "xyz"}},
    {.name = "pipelined: chunked body discarded, then POST discarded",
        .wire =
            "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            "3\r\nabc\r\n0\r\n\r\n"
            "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz",
        .targets = {"/c", "/p"}},
};

static void test_pipe_row(void **state)
{
	const struct pipe_row *row = *state;
	const char *err = NULL;
	int status = 0;
	size_t i;

	fx_open();
	client_puts(row->wire);
	for (i = 0; i < 4 && row->targets[i] != NULL; i++) {
		enum conn_read_result rc = conn_read_head(
		    fx.c, &fx.r, HTTP_DEFAULT_MAX_HEAD, 0, &status, &err);

		if (rc == CONN_READ_AGAIN && row->late != NULL) {
			client_puts(row->late);
			rc = conn_read_head(fx.c, &fx.r, HTTP_DEFAULT_MAX_HEAD,
			    0, &status, &err);
		}
		if (rc != CONN_READ_HEAD)
			fail_msg("case \"%s\": request %zu: %d (%d %s)",
			    row->name, i, rc, status, err ? err : "");
		check_bytes("target", row->name, fx.r.http.target,
		    fx.r.http.target_len, row->targets[i],
		    strlen(row->targets[i]));
		if (row->is_read) {
			char acc[64];
			ssize_t last;
			size_t n = read_body(acc, sizeof(acc), 2, &last);

			assert_int_equal(last, 0);
			check_bytes("body", row->name, acc, n, row->bodies[i],
			    strlen(row->bodies[i]));
		}
		assert_int_equal(conn_body_discard(&fx.r), 0);
		/* Bytes of the next request wait, except after the last. */
		bool more = conn_next_request(&fx.r);
		bool want_more = row->targets[i + 1] != NULL;

		if (more != want_more)
			fail_msg("case \"%s\": conn_next_request after %zu "
			         "is %d",
			    row->name, i, more);
	}
	assert_int_equal(conn_read_head(fx.c, &fx.r, HTTP_DEFAULT_MAX_HEAD, 0,
	                     &status, &err),
	    CONN_READ_AGAIN);
	assert_int_equal(fx.c->buf_len, 0);
}

/* ---------------------------------------------------------------------- */
/* Request bodies                                                          */
/* ---------------------------------------------------------------------- */

struct body_row {
	const char *name;
	const char *head;
	const char *with_head; /* body bytes in the same write as the head */
	const char *later[10]; /* written by the client thread, in order */
	bool is_shut;          /* then the client shuts its sending side */
	bool wait_continue;    /* the client waits for 100 Continue first */
	size_t piece;          /* the size of each read */
	uint64_t max_body;
	const char *want; /* the bytes the reads return */
	int last;         /* the read that ends it: 0 or -1 */
	int body_status;  /* after a -1 */
	const char *rest; /* left in the buffer for the next request */
};

static const struct body_row body_rows[] = {
    {.name = "body: Content-Length, all with the head, pieces of 4",
        .head = POST_CL(11),
        .with_head = "hello world",
        .piece = 4,
        .want = "hello world"},
    {.name = "body: Content-Length, part with the head, pieces of 3",
        .head = POST_CL(11),
        .with_head = "hel",
        .later = {"lo w", "orld"},
        .piece = 3,
        .want = "hello world"},
    {.name = "body: Content-Length, all later, pieces of 1",
        .head = POST_CL(11),
        .later = {"hello", " world"},
        .piece = 1,
        .want = "hello world"},
    {.name = "body: Content-Length, pieces larger than the body",
        .head = POST_CL(11),
        .with_head = "he",
        .later = {"llo", " world"},
        .piece = 4096,
        .want = "hello world"},
    {.name = "body: Content-Length, next request follows",
        .head = POST_CL(5),
        .with_head = "helloGET /n HTTP/1.1\r\nHost: h\r\n\r\n",
        .piece = 3,
        .want = "hello",
        .rest = "GET /n HTTP/1.1\r\nHost: h\r\n\r\n"},
    {.name = "body: Content-Length, client gone mid-body",
        .head = POST_CL(11),
        .with_head = "hel",
        .later = {"lo"},
        .is_shut = true,
        .piece = 4,
        .want = "hello",
        .last = -1},
    {.name = "body: Content-Length, client gone before the body",
        .head = POST_CL(11),
        .is_shut = true,
        .piece = 4,
        .want = "",
        .last = -1},
    {.name = "body: chunked, in one write",
        .head = POST_CHUNKED,
        .with_head = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        .piece = 100,
        .want = "hello world"},
    {.name = "body: chunked, extensions and trailers",
        .head = POST_CHUNKED,
        .with_head = "5;a=b;c\r\nhello\r\n6;q=\"x\\\"y\"\r\n world\r\n"
                     "0;end\r\nX-T: 1\r\nY: 2\r\n\r\n",
        .piece = 3,
        .want = "hello world"},
    {.name = "body: chunked, split everywhere",
        .head = POST_CHUNKED,
        .later = {"5", "\r", "\nhel", "lo\r", "\nb\r\n world", ", and\r\n5",
            "\r\n more\r\n0", "\r\nT: v\r", "\n\r", "\n"},
        .piece = 7,
        .want = "hello world, and more"},
    {.name = "body: chunked, upper-case hex, pieces of 1",
        .head = POST_CHUNKED,
        .with_head = "A\r\n0123456789\r\n1\r\n!\r\n0\r\n\r\n",
        .piece = 1,
        .want = "0123456789!"},
    {.name = "body: chunked, empty",
        .head = POST_CHUNKED,
        .with_head = "0\r\n\r\n",
        .piece = 10,
        .want = ""},
    {.name = "body: chunked, next request follows",
        .head = POST_CHUNKED,
        .with_head = "3\r\nabc\r\n0\r\n\r\nGET /n HTTP/1.1\r\nHost: h\r\n\r\n",
        .piece = 64,
        .want = "abc",
        .rest = "GET /n HTTP/1.1\r\nHost: h\r\n\r\n"},
    {.name = "body: chunked, exactly max_body",
        .head = POST_CHUNKED,
        .with_head = "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n",
        .max_body = 11,
        .piece = 64,
        .want = "hello world"},
    {.name = "body: chunked, bad data terminator is 400",
        .head = POST_CHUNKED,
        .with_head = "5\r\nhelloX\r\n0\r\n\r\n",
        .piece = 64,
        .want = "hello",
        .last = -1,
        .body_status = 400},
    {.name = "body: chunked, bad size is 400",
        .head = POST_CHUNKED,
        .with_head = "zz\r\nhello\r\n0\r\n\r\n",
        .piece = 64,
        .want = "",
        .last = -1,
        .body_status = 400},
    {.name = "body: chunked, bare LF is 400",
        .head = POST_CHUNKED,
        .with_head = "5\nhello\r\n0\r\n\r\n",
        .piece = 64,
        .want = "",
        .last = -1,
        .body_status = 400},
    {.name = "body: chunked, bad size arriving later is 400",
        .head = POST_CHUNKED,
        .with_head = "3\r\nabc\r\n",
        .later = {"g\r\n"},
        .piece = 64,
        .want = "abc",
        .last = -1,
        .body_status = 400},
    {.name = "body: chunked, one chunk over max_body is 413",
        .head = POST_CHUNKED,
        .with_head = "b\r\nhello world\r\n0\r\n\r\n",
        .max_body = 10,
        .piece = 64,
        .want = "",
        .last = -1,
        .body_status = 413},
    {.name = "body: chunked, the sum over max_body is 413",
        .head = POST_CHUNKED,
        .with_head = "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n",
        .max_body = 10,
        .piece = 64,
        .want = "hello ",
        .last = -1,
        .body_status = 413},
    {.name = "body: chunked, client gone mid-body",
        .head = POST_CHUNKED,
        .with_head = "5\r\nhel",
        .is_shut = true,
        .piece = 64,
        .want = "hel",
        .last = -1},
    {.name = "body: Expect, Content-Length body after 100 Continue",
        .head = EXPECT_CL(5),
        .wait_continue = true,
        .later = {"hello"},
        .piece = 64,
        .want = "hello"},
    {.name = "body: Expect, chunked body after 100 Continue",
        .head = "POST /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                "Transfer-Encoding: chunked\r\n\r\n",
        .wait_continue = true,
        .later = {"5\r\nhello\r\n", "0\r\n\r\n"},
        .piece = 2,
        .want = "hello"},
    {.name = "body: Expect, client gone after 100 Continue",
        .head = EXPECT_CL(5),
        .wait_continue = true,
        .is_shut = true,
        .piece = 64,
        .want = "",
        .last = -1},
    {.name = "body: Expect, body sent with the head: no 100 Continue",
        .head = EXPECT_CL(5),
        .with_head = "hello",
        .piece = 64,
        .want = "hello"},
    {.name = "body: Expect without a body: no 100 Continue",
        .head = "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
        .piece = 64,
        .want = ""},
};

static void test_body_row(void **state)
{
	const struct body_row *row = *state;
	size_t hlen = strlen(row->head), blen = strlen(row->with_head ?: "");
	char *first = malloc(hlen + blen + 1), acc[256], extra[256];
	struct client cl = {
	    .wait_continue = row->wait_continue,
	    .pieces = row->later,
	    .pause_ms = 3,
	    .shut = row->is_shut,
	};
	size_t got, nextra;
	ssize_t last, again;
	int64_t t0;

	assert_non_null(first);
	memcpy(first, row->head, hlen);
	memcpy(first + hlen, row->with_head ?: "", blen + 1);
	fx_open();
	start_request(first, row->max_body);
	free(first);

	client_start(&cl);
	t0 = now_ms();
	got = read_body(acc, sizeof(acc), row->piece, &last);
	client_join(&cl);

	if (got == (size_t)-1)
		fail_msg(
		    "case \"%s\": a read returned more than asked", row->name);
	check_bytes("body", row->name, acc, got, row->want, strlen(row->want));
	if (last != row->last)
		fail_msg("case \"%s\": the last read returned %zd, want %d "
		         "(%d ms)",
		    row->name, last, row->last, (int)(now_ms() - t0));
	if (row->last == 0) {
		assert_true(fx.r.body_done);
		assert_false(fx.r.body_failed);
	} else {
		assert_true(fx.r.body_failed);
	}
	if (fx.r.body_status != row->body_status)
		fail_msg("case \"%s\": body_status %d, want %d", row->name,
		    fx.r.body_status, row->body_status);
	/* The end is sticky. */
	again = conn_body_read(&fx.r, acc, sizeof(acc), READ_TIMEOUT_MS);
	assert_int_equal(again, row->last);
	/* "100 Continue" went out exactly when the client waited for it,
	 * exactly once. */
	if (row->wait_continue)
		check_bytes("what the client got first", row->name, cl.got,
		    cl.got_len, CONTINUE, strlen(CONTINUE));
	nextra = client_drain(extra, sizeof(extra));
	check_bytes(
	    "what else the client got", row->name, extra, nextra, "", 0);
	assert_int_equal(cl.write_errno, 0);
	if (row->rest != NULL) {
		assert_true(conn_next_request(&fx.r));
		check_bytes("the next request", row->name, fx.c->buf,
		    fx.c->buf_len, row->rest, strlen(row->rest));
	} else if (row->last == 0) {
		assert_false(conn_next_request(&fx.r));
	}
}

/* A read returns what has arrived without waiting for the rest: a stream
 * gives short reads, and the app may need the first bytes to answer. */
static void test_body_short_read(void **state)
{
	char dst[100];
	int64_t t0;

	fx_open();
	start_request(POST_CL(10) "hello", 0);
	t0 = now_ms();
	assert_int_equal(
	    conn_body_read(&fx.r, dst, sizeof(dst), READ_TIMEOUT_MS), 5);
	assert_true(now_ms() - t0 < 1000);
	assert_false(fx.r.body_failed);
	assert_memory_equal(dst, "hello", 5);
	/* The same for bytes that came through the socket. */
	client_puts("wor");
	t0 = now_ms();
	assert_int_equal(
	    conn_body_read(&fx.r, dst, sizeof(dst), READ_TIMEOUT_MS), 3);
	assert_true(now_ms() - t0 < 1000);
	assert_memory_equal(dst, "wor", 3);
	client_puts("ld");
	assert_int_equal(
	    conn_body_read(&fx.r, dst, sizeof(dst), READ_TIMEOUT_MS), 2);
	assert_memory_equal(dst, "ld", 2);
	assert_true(fx.r.body_done);
	assert_int_equal(
	    conn_body_read(&fx.r, dst, sizeof(dst), READ_TIMEOUT_MS), 0);

	/* Chunked: the data of a chunk cut short comes out at once. */
	fx_open();
	start_request(POST_CHUNKED "a\r\nhello", 0);
	t0 = now_ms();
	assert_int_equal(
	    conn_body_read(&fx.r, dst, sizeof(dst), READ_TIMEOUT_MS), 5);
	assert_true(now_ms() - t0 < 1000);
	assert_false(fx.r.body_failed);
	client_puts(" you!\r\n0\r\n\r\n");
	assert_int_equal(
	    conn_body_read(&fx.r, dst, sizeof(dst), READ_TIMEOUT_MS), 5);
	assert_memory_equal(dst, " you!", 5);
	assert_int_equal(
	    conn_body_read(&fx.r, dst, sizeof(dst), READ_TIMEOUT_MS), 0);
	assert_true(fx.r.body_done);
}

/* A body much larger than the buffer, written by the client in pieces of
 * an odd size and read in pieces of another. */
static void test_body_large(void **state)
{
	const size_t len = 300000;
	char *body = malloc(len), *acc = malloc(len + 1);
	char head[128];
	struct client cl = {0};
	ssize_t last;
	size_t got;

	assert_non_null(body);
	assert_non_null(acc);
	for (size_t i = 0; i < len; i++)
		body[i] = (char)(i * 31 + i / 7);
	snprintf(head, sizeof(head),
	    "PUT /big HTTP/1.1\r\nHost: h\r\nContent-Length: %zu\r\n\r\n", len);
	fx_open();
	start_request(head, 0);
	cl.big = body;
	cl.big_len = len;
	client_start(&cl);
	got = read_body(acc, len + 1, 5000, &last);
	client_stop(&cl);
	assert_int_equal(got, len);
	assert_int_equal(last, 0);
	assert_memory_equal(acc, body, len);
	assert_int_equal(cl.write_errno, 0);
	free(body);
	free(acc);
}

/* The same through the chunked decoder: 37 chunks of 8111 bytes. */
static void test_body_large_chunked(void **state)
{
	const size_t nchunks = 37, clen = 8111, len = nchunks * clen;
	char *data = malloc(len), *wire = malloc(len + nchunks * 16 + 16);
	char *acc = malloc(len + 1);
	struct client cl = {0};
	size_t wlen = 0, got;
	ssize_t last;

	assert_non_null(data);
	assert_non_null(wire);
	assert_non_null(acc);
	for (size_t i = 0; i < len; i++)
		data[i] = (char)(i * 17 + 3);
	for (size_t k = 0; k < nchunks; k++) {
		wlen += (size_t)sprintf(wire + wlen, "%zX\r\n", clen);
		memcpy(wire + wlen, data + k * clen, clen);
		wlen += clen;
		memcpy(wire + wlen, "\r\n", 2);
		wlen += 2;
	}
	memcpy(wire + wlen, "0\r\n\r\n", 5);
	wlen += 5;
	fx_open();
	start_request(POST_CHUNKED, 0);
	cl.big = wire;
	cl.big_len = wlen;
	client_start(&cl);
	got = read_body(acc, len + 1, 4999, &last);
	client_stop(&cl);
	assert_int_equal(got, len);
	assert_int_equal(last, 0);
	assert_memory_equal(acc, data, len);
	free(data);
	free(wire);
	free(acc);
}

/* ---------------------------------------------------------------------- */
/* 100 Continue never asked for, and conn_body_discard                     */
/* ---------------------------------------------------------------------- */

/* The app answers without reading the body: no "100 Continue" ever goes
 * out, the response says Connection: close, and the body can't be
 * discarded (the client never sends it): -1 at once, without waiting. */
static void test_expect_unread(void **state)
{
	static const char want[] = DEF_HEAD "Content-Length: 2\r\n"
	                                    "Connection: close\r\n\r\nok";
	char wire[512];
	size_t n;
	int64_t t0;

	fx_open();
	start_request(EXPECT_CL(5), 0);
	set_response(200, DEF_HEAD, -1);
	assert_int_equal(conn_resp_body(&fx.r, "ok", 2, false), 0);
	conn_resp_end(&fx.r);
	assert_false(fx.r.keep_alive);
	t0 = now_ms();
	assert_int_equal(conn_body_discard(&fx.r), -1);
	assert_true(now_ms() - t0 < 1000);
	n = client_drain(wire, sizeof(wire));
	check_bytes(
	    "the response", "expect unread", wire, n, want, sizeof(want) - 1);
}

struct discard_row {
	const char *name;
	const char *first; /* head and the body bytes sent with it */
	size_t read_first; /* body bytes the app reads before the discard */
	const char *later; /* written by a client thread */
	bool is_shut;
	int rc;
	const char *next_target; /* then this request parses (rc 0) */
};

static const struct discard_row discard_rows[] = {
    {.name = "discard: no body", .first = GET11, .rc = 0},
    {.name = "discard: Content-Length body read whole",
        .first = POST_CL(3) "abc",
        .read_first = 3,
        .rc = 0},
    {.name = "discard: Content-Length rest arrives later",
        .first = POST_CL(10) "0123",
        .read_first = 2,
        .later = "456789GET /n HTTP/1.1\r\nHost: h\r\n\r\n",
        .rc = 0,
        .next_target = "/n"},
    {.name = "discard: Content-Length, nothing read, all later",
        .first = POST_CL(10),
        .later = "0123456789GET /n HTTP/1.1\r\nHost: h\r\n\r\n",
        .rc = 0,
        .next_target = "/n"},
    {.name = "discard: chunked rest arrives later",
        .first = POST_CHUNKED "5\r\nhel",
        .read_first = 1,
        .later =
            "lo\r\n3\r\nabc\r\n0\r\n\r\nGET /n HTTP/1.1\r\nHost: h\r\n\r\n",
        .rc = 0,
        .next_target = "/n"},
    {.name = "discard: client gone",
        .first = POST_CL(10) "0123",
        .is_shut = true,
        .rc = -1},
    {.name = "discard: malformed chunked",
        .first = POST_CHUNKED "5\r\nhello\r\nxyz\r\n",
        .rc = -1},
};

static void test_discard_row(void **state)
{
	const struct discard_row *row = *state;
	const char *later[2] = {row->later, NULL};
	struct client cl = {
	    .pieces = later, .pause_ms = 3, .shut = row->is_shut};
	const char *err = NULL;
	int status = 0, rc;
	char dst[64];

	fx_open();
	start_request(row->first, 0);
	if (row->read_first > 0)
		assert_int_equal(conn_body_read(&fx.r, dst, row->read_first,
		                     READ_TIMEOUT_MS),
		    (ssize_t)row->read_first);
	client_start(&cl);
	rc = conn_body_discard(&fx.r);
	client_join(&cl);
	if (rc != row->rc)
		fail_msg("case \"%s\": conn_body_discard returned %d, want %d",
		    row->name, rc, row->rc);
	if (rc == 0)
		assert_true(fx.r.body_done);
	if (row->next_target != NULL) {
		/* What followed the body may still be in the socket. */
		conn_next_request(&fx.r);
		assert_int_equal(conn_read_head(fx.c, &fx.r,
		                     HTTP_DEFAULT_MAX_HEAD, 0, &status, &err),
		    CONN_READ_HEAD);
		check_bytes("target", row->name, fx.r.http.target,
		    fx.r.http.target_len, row->next_target,
		    strlen(row->next_target));
	} else if (rc == 0) {
		assert_false(conn_next_request(&fx.r));
	}
}

/* A body left unread that is far too large to drain: the discard gives up
 * after about 1 MiB and the connection must be closed. */
static void test_discard_too_much(void **state)
{
	const size_t len = 3 << 20;
	char *body = calloc(1, len);
	struct client cl = {0};
	int rc;

	assert_non_null(body);
	fx_open();
	start_request(
	    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3145728\r\n\r\n", 0);
	cl.big = body;
	cl.big_len = len;
	client_start(&cl);
	rc = conn_body_discard(&fx.r);
	/* The writer is blocked: stop it. */
	client_stop(&cl);
	assert_int_equal(rc, -1);
	assert_int_equal(cl.write_errno, EPIPE);
	free(body);
}

/* ---------------------------------------------------------------------- */
/* Response framing                                                        */
/* ---------------------------------------------------------------------- */

struct piece {
	const char *data;
	bool flush;
};

struct resp_row {
	const char *name;
	const char *request; /* NULL: GET11 */
	bool read_body;      /* the app reads the request body first */
	int status;          /* 0: 200 */
	const char *head;    /* NULL: DEF_HEAD */
	bool has_clen;       /* the app declared clen */
	int64_t clen;
	bool app_close;
	struct piece body[4];
	int end_rc;
	bool end_any;     /* conn_resp_end may return 0 or -1 */
	bool is_kept;     /* the connection may carry another request */
	const char *want; /* exactly what the client receives */
};

#define CL(n) .has_clen = true, .clen = (n)
#define GET10 "GET / HTTP/1.0\r\n\r\n"
#define GET10_KA "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
#define HEAD11 "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"

static const struct resp_row resp_rows[] = {
    {.name = "resp: whole body at the end: Content-Length",
        .body = {{"hello"}, {" world"}},
        .is_kept = true,
        .want = DEF_HEAD "Content-Length: 11\r\n\r\nhello world"},
    {.name = "resp: empty body: Content-Length 0",
        .is_kept = true,
        .want = DEF_HEAD "Content-Length: 0\r\n\r\n"},
    {.name = "resp: empty pieces change nothing",
        .body = {{""}, {"ab"}, {""}},
        .is_kept = true,
        .want = DEF_HEAD "Content-Length: 2\r\n\r\nab"},
    {.name = "resp: flushed before the end: chunked",
        .body = {{"hello", true}, {" world"}},
        .is_kept = true,
        .want = DEF_HEAD "Transfer-Encoding: chunked\r\n\r\n"
                         "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"},
    {.name = "resp: flushed, nothing after: last chunk alone",
        .body = {{"hello", true}},
        .is_kept = true,
        .want = DEF_HEAD "Transfer-Encoding: chunked\r\n\r\n"
                         "5\r\nhello\r\n0\r\n\r\n"},
    {.name = "resp: flush of nothing sends the head",
        .body = {{"", true}, {"abc"}},
        .is_kept = true,
        .want = DEF_HEAD "Transfer-Encoding: chunked\r\n\r\n"
                         "3\r\nabc\r\n0\r\n\r\n"},
    {.name = "resp: chunk sizes in hex",
        .body = {{"a", true}, {"", true}, {"0123456789abcdef", true},
            {"0123456789"}},
        .is_kept = true,
        .want = DEF_HEAD "Transfer-Encoding: chunked\r\n\r\n"
                         "1\r\na\r\n10\r\n0123456789abcdef\r\n"
                         "a\r\n0123456789\r\n0\r\n\r\n"},
    {.name = "resp: declared Content-Length honoured",
        CL(5),
        .body = {{"hello"}},
        .is_kept = true,
        .want = DEF_HEAD "Content-Length: 5\r\n\r\nhello"},
    {.name = "resp: declared Content-Length, flushed: not chunked",
        CL(5),
        .body = {{"hel", true}, {"lo"}},
        .is_kept = true,
        .want = DEF_HEAD "Content-Length: 5\r\n\r\nhello"},
    {.name = "resp: declared Content-Length 0",
        CL(0),
        .is_kept = true,
        .want = DEF_HEAD "Content-Length: 0\r\n\r\n"},
    {.name = "resp: longer than declared: cut, closed",
        CL(5),
        .body = {{"hello world"}},
        .end_any = true,
        .want = DEF_HEAD "Content-Length: 5\r\nConnection: close\r\n\r\n"
                         "hello"},
    {.name = "resp: longer than declared, in pieces: cut, closed",
        CL(4),
        .body = {{"ab"}, {"cd"}, {"ef"}},
        .end_any = true,
        .want = DEF_HEAD "Content-Length: 4\r\nConnection: close\r\n\r\n"
                         "abcd"},
    {.name = "resp: longer than declared after the head went: cut",
        CL(5),
        .body = {{"hel", true}, {"lo world"}},
        .end_any = true,
        .want = DEF_HEAD "Content-Length: 5\r\n\r\nhello"},
    {.name = "resp: shorter than declared: -1",
        CL(10),
        .body = {{"hello"}},
        .end_rc = -1,
        .want = DEF_HEAD "Content-Length: 10\r\n\r\nhello"},
    {.name = "resp: shorter than declared, flushed: -1",
        CL(10),
        .body = {{"hello", true}},
        .end_rc = -1,
        .want = DEF_HEAD "Content-Length: 10\r\n\r\nhello"},
    {.name = "resp: HEAD: headers only",
        .request = HEAD11,
        .body = {{"hello", true}, {"more"}},
        .is_kept = true,
        .want = DEF_HEAD "\r\n"},
    {.name = "resp: HEAD keeps the declared Content-Length",
        .request = HEAD11,
        CL(5),
        .body = {{"hello"}},
        .is_kept = true,
        .want = DEF_HEAD "Content-Length: 5\r\n\r\n"},
    {.name = "resp: 204: no body, no Content-Length",
        .status = 204,
        .head = "HTTP/1.1 204 No Content\r\n",
        CL(0),
        .is_kept = true,
        .want = "HTTP/1.1 204 No Content\r\n\r\n"},
    {.name = "resp: 304: no body, declared Content-Length kept",
        .status = 304,
        .head = "HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\n",
        CL(5),
        .body = {{"hello"}},
        .is_kept = true,
        .want = "HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\n"
                "Content-Length: 5\r\n\r\n"},
    {.name = "resp: HTTP/1.0, body known at the end: length, close",
        .request = GET10,
        .body = {{"hello"}},
        .want = DEF_HEAD "Content-Length: 5\r\nConnection: close\r\n\r\n"
                         "hello"},
    {.name = "resp: HTTP/1.0, flushed: no chunked, the close ends it",
        .request = GET10,
        .body = {{"hel", true}, {"lo"}},
        .end_rc = -1,
        .want = DEF_HEAD "Connection: close\r\n\r\nhello"},
    {.name = "resp: HTTP/1.0 keep-alive: Connection: keep-alive",
        .request = GET10_KA,
        .body = {{"hello"}},
        .is_kept = true,
        .want = DEF_HEAD "Content-Length: 5\r\nConnection: keep-alive\r\n\r\n"
                         "hello"},
    {.name = "resp: HTTP/1.0 keep-alive, flushed: close",
        .request = GET10_KA,
        .body = {{"hel", true}, {"lo"}},
        .end_rc = -1,
        .want = DEF_HEAD "Connection: close\r\n\r\nhello"},
    {.name = "resp: HTTP/1.0 keep-alive, declared length, flushed",
        .request = GET10_KA,
        CL(5),
        .body = {{"hel", true}, {"lo"}},
        .is_kept = true,
        .want = DEF_HEAD "Content-Length: 5\r\nConnection: keep-alive\r\n\r\n"
                         "hello"},
    {.name = "resp: HTTP/1.0 HEAD keep-alive",
        .request = "HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        .body = {{"hello", true}},
        .is_kept = true,
        .want = DEF_HEAD "Connection: keep-alive\r\n\r\n"},
    {.name = "resp: client asked to close",
        .request = "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        .body = {{"hello"}},
        .want = DEF_HEAD "Content-Length: 5\r\nConnection: close\r\n\r\n"
                         "hello"},
    {.name = "resp: client asked to close, chunked",
        .request = "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        .body = {{"hello", true}},
        .want = DEF_HEAD "Transfer-Encoding: chunked\r\n"
                         "Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
    {.name = "resp: app asked to close",
        .app_close = true,
        .body = {{"hello"}},
        .want = DEF_HEAD "Content-Length: 5\r\nConnection: close\r\n\r\n"
                         "hello"},
    {.name = "resp: small body left unread: kept",
        .request = POST_CL(5) "hello",
        .body = {{"ok"}},
        .is_kept = true,
        .want = DEF_HEAD "Content-Length: 2\r\n\r\nok"},
    {.name = "resp: body read first: kept",
        .request = POST_CL(5) "hello",
        .read_body = true,
        .body = {{"ok"}},
        .is_kept = true,
        .want = DEF_HEAD "Content-Length: 2\r\n\r\nok"},
    {.name = "resp: unread body over 1 MiB: close",
        .request =
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2000000\r\n\r\n",
        .body = {{"ok"}},
        .want = DEF_HEAD "Content-Length: 2\r\nConnection: close\r\n\r\nok"},
    {.name = "resp: bad chunked body: close",
        .request = POST_CHUNKED "zz\r\n",
        .read_body = true,
        .body = {{"ok"}},
        .want = DEF_HEAD "Content-Length: 2\r\nConnection: close\r\n\r\nok"},
};

static void test_resp_row(void **state)
{
	const struct resp_row *row = *state;
	char wire[4096];
	size_t n;
	int rc;
	bool kept;

	fx_open();
	start_request(row->request ? row->request : GET11, 0);
	if (row->read_body) {
		char acc[64];
		ssize_t last;

		read_body(acc, sizeof(acc), sizeof(acc), &last);
	}
	set_response(row->status ? row->status : 200,
	    row->head ? row->head : DEF_HEAD, row->has_clen ? row->clen : -1);
	fx.r.app_close = row->app_close;
	for (size_t i = 0; i < 4 && row->body[i].data != NULL; i++) {
		const struct piece *p = &row->body[i];

		rc = conn_resp_body(&fx.r, p->data, strlen(p->data), p->flush);
		if (rc != 0)
			fail_msg("case \"%s\": conn_resp_body %zu returned %d",
			    row->name, i, rc);
	}
	rc = conn_resp_end(&fx.r);
	if (!row->end_any && rc != row->end_rc)
		fail_msg("case \"%s\": conn_resp_end returned %d, want %d",
		    row->name, rc, row->end_rc);
	n = client_drain(wire, sizeof(wire));
	check_bytes(
	    "the response", row->name, wire, n, row->want, strlen(row->want));
	assert_true(fx.r.headers_sent);
	assert_false(fx.r.client_gone);
	kept = rc == 0 && fx.r.keep_alive;
	if (kept != row->is_kept)
		fail_msg("case \"%s\": the connection is %s, want %s "
		         "(conn_resp_end %d, keep_alive %d)",
		    row->name, kept ? "kept" : "closed",
		    row->is_kept ? "kept" : "closed", rc, fx.r.keep_alive);
}

/* More than CONN_OUT_SIZE without a flush: the buffer fills, goes out as
 * a chunk, and the rest follows as a second chunk and the last one. */
static void test_resp_large(void **state)
{
	const size_t len = CONN_OUT_SIZE + 4464;
	char *body = malloc(len), *wire = malloc(2 * len),
	     *want = malloc(2 * len);
	size_t wlen = 0, n;

	assert_non_null(body);
	assert_non_null(wire);
	assert_non_null(want);
	for (size_t i = 0; i < len; i++)
		body[i] = (char)('A' + i % 57);
	wlen += (size_t)sprintf(want,
	    DEF_HEAD "Transfer-Encoding: chunked\r\n\r\n%zx\r\n",
	    (size_t)CONN_OUT_SIZE);
	memcpy(want + wlen, body, CONN_OUT_SIZE);
	wlen += CONN_OUT_SIZE;
	wlen += (size_t)sprintf(want + wlen, "\r\n1170\r\n");
	memcpy(want + wlen, body + CONN_OUT_SIZE, 4464);
	wlen += 4464;
	memcpy(want + wlen, "\r\n0\r\n\r\n", 7);
	wlen += 7;

	fx_open();
	start_request(GET11, 0);
	set_response(200, DEF_HEAD, -1);
	/* In uneven pieces, to cross the buffer's end mid-piece. */
	for (size_t off = 0; off < len; off += 1000) {
		size_t take = len - off < 1000 ? len - off : 1000;

		assert_int_equal(
		    conn_resp_body(&fx.r, body + off, take, false), 0);
	}
	assert_int_equal(conn_resp_end(&fx.r), 0);
	n = client_drain(wire, 2 * len);
	assert_int_equal(n, wlen);
	assert_memory_equal(wire, want, wlen);

	/* The same with a declared length: no chunks. */
	fx_open();
	start_request(GET11, 0);
	set_response(200, DEF_HEAD, (int64_t)len);
	assert_int_equal(conn_resp_body(&fx.r, body, len, false), 0);
	assert_int_equal(conn_resp_end(&fx.r), 0);
	wlen =
	    (size_t)sprintf(want, DEF_HEAD "Content-Length: %zu\r\n\r\n", len);
	memcpy(want + wlen, body, len);
	wlen += len;
	n = client_drain(wire, 2 * len);
	assert_int_equal(n, wlen);
	assert_memory_equal(wire, want, wlen);
	free(body);
	free(wire);
	free(want);
}

/* Two requests on one connection: the second response starts clean. */
static void test_resp_two_requests(void **state)
{
	static const char want[] = DEF_HEAD
	    "Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n" DEF_HEAD
	    "Content-Length: 1\r\n\r\nb";
	char wire[1024];
	size_t n;

	fx_open();
	/* Two pipelined requests: this one, and the one start_request
	 * sends. */
	client_puts(GET11);
	start_request(GET11, 0);
	set_response(200, DEF_HEAD, -1);
	assert_int_equal(conn_resp_body(&fx.r, "a", 1, true), 0);
	assert_int_equal(conn_resp_end(&fx.r), 0);
	assert_int_equal(conn_body_discard(&fx.r), 0);
	assert_true(conn_next_request(&fx.r));
	{
		const char *err = NULL;
		int status = 0;

		assert_int_equal(conn_read_head(fx.c, &fx.r,
		                     HTTP_DEFAULT_MAX_HEAD, 0, &status, &err),
		    CONN_READ_HEAD);
	}
	assert_false(fx.r.headers_sent);
	assert_false(fx.r.chunked_out);
	assert_int_equal(fx.r.body_sent, 0);
	assert_int_equal(fx.r.out_len, 0);
	set_response(200, DEF_HEAD, -1);
	assert_int_equal(conn_resp_body(&fx.r, "b", 1, false), 0);
	assert_int_equal(conn_resp_end(&fx.r), 0);
	n = client_drain(wire, sizeof(wire));
	check_bytes(
	    "the responses", "two requests", wire, n, want, sizeof(want) - 1);
}

/* ---------------------------------------------------------------------- */
/* Error pages                                                             */
/* ---------------------------------------------------------------------- */

struct err_row {
	const char *name;
	const char *request;
	int status;
	bool keep;
	const char *status_line;
	const char *connection;
	bool has_body;
};

static const struct err_row err_rows[] = {
    {"error: 400, closed", GET11, 400, false, "HTTP/1.1 400 Bad Request\r\n",
        "Connection: close\r\n", true},
    {"error: 404, kept", GET11, 404, true, "HTTP/1.1 404 Not Found\r\n",
        "Connection: keep-alive\r\n", true},
    {"error: 413", POST_CL(5), 413, false, "HTTP/1.1 413 Content Too Large\r\n",
        "Connection: close\r\n", true},
    {"error: 503", GET11, 503, false, "HTTP/1.1 503 Service Unavailable\r\n",
        "Connection: close\r\n", true},
    {"error: 500 on HEAD: no body", HEAD11, 500, true,
        "HTTP/1.1 500 Internal Server Error\r\n", "Connection: keep-alive\r\n",
        false},
};

static void test_err_row(void **state)
{
	const struct err_row *row = *state;
	char wire[2048], code[8];
	const char *end, *cl;
	size_t n, body_len;

	fx_open();
	start_request(row->request, 0);
	conn_send_error(&fx.r, row->status, row->keep);
	assert_int_equal(fx.r.status, row->status);
	assert_true(fx.r.headers_sent);
	assert_false(fx.r.client_gone);
	if (!row->keep)
		assert_false(fx.r.keep_alive);
	n = client_drain(wire, sizeof(wire) - 1);
	wire[n] = '\0';
	if (strncmp(wire, row->status_line, strlen(row->status_line)) != 0)
		fail_msg(
		    "case \"%s\": response \"%s\"", row->name, show(wire, n));
	end = strstr(wire, "\r\n\r\n");
	assert_non_null(end);
	end += 4;
	assert_non_null(strstr(wire, row->connection));
	assert_true(strstr(wire, row->connection) < end);
	cl = strstr(wire, "Content-Length: ");
	assert_non_null(cl);
	body_len = strtoul(cl + 16, NULL, 10);
	assert_true(body_len > 0);
	assert_int_equal(
	    (size_t)(wire + n - end), row->has_body ? body_len : 0);
	snprintf(code, sizeof(code), "%d", row->status);
	if (row->has_body)
		assert_non_null(strstr(end, code));
}

/* ---------------------------------------------------------------------- */
/* sendfile                                                                */
/* ---------------------------------------------------------------------- */

#define FILE_SIZE 50000

struct sendfile_row {
	const char *name;
	const char *request;
	off_t offset;       /* the file's offset before the call */
	int64_t clen;       /* declared */
	const char *prefix; /* body bytes written and flushed first */
	int64_t len;        /* passed to conn_resp_sendfile */
	size_t want_off;
	size_t want_len; /* file bytes on the wire */
	int end_rc;
	bool is_cut; /* past the declared length: cut to it (then keeping
	                or closing the connection are both right) */
};

static const struct sendfile_row sendfile_rows[] = {
    {"sendfile: whole file", GET11, 0, FILE_SIZE, NULL, FILE_SIZE, 0, FILE_SIZE,
        0, false},
    {"sendfile: a slice", GET11, 1000, 500, NULL, 500, 1000, 500, 0, false},
    {"sendfile: to the end", GET11, 1000, FILE_SIZE - 1000, NULL, -1, 1000,
        FILE_SIZE - 1000, 0, false},
    {"sendfile: after written bytes", GET11, 0, 503, "abc", 500, 0, 500, 0,
        false},
    {"sendfile: file shorter than declared", GET11, 0, FILE_SIZE + 10, NULL, -1,
        0, FILE_SIZE, -1, false},
    {"sendfile: length past the end of the file", GET11, 0, FILE_SIZE + 10,
        NULL, FILE_SIZE + 10, 0, FILE_SIZE, -1, false},
    {"sendfile: HEAD sends nothing", HEAD11, 0, FILE_SIZE, NULL, FILE_SIZE, 0,
        0, 0, false},
    /* The declared length is a promise conn_resp_body keeps by cutting;
     * sendfile must keep it too, or the extra bytes become the start of
     * the next response on a kept connection. */
    {"sendfile: to the end, past the declared length: cut", GET11, 0, 500, NULL,
        -1, 0, 500, 0, true},
    {"sendfile: after written bytes, past the declared length: cut", GET11, 0,
        500, "abc", 500, 0, 497, 0, true},
};

static int make_temp_file(char *data, size_t len)
{
	char path[] = "/tmp/lodge-test-conn-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	for (size_t i = 0; i < len; i++)
		data[i] = (char)(i * 7 + i / 251);
	assert_int_equal(write_full(fd, data, len), 0);
	return fd;
}

static void test_sendfile_row(void **state)
{
	const struct sendfile_row *row = *state;
	/* Static: a failed case leaks nothing. */
	static char data[FILE_SIZE], wire[2 * FILE_SIZE], want[2 * FILE_SIZE],
	    alt[2 * FILE_SIZE];
	size_t plen = row->prefix ? strlen(row->prefix) : 0, wlen, alen, n;
	int fd, rc, end;
	bool kept;

	fd = make_temp_file(data, FILE_SIZE);
	assert_int_equal(lseek(fd, row->offset, SEEK_SET), row->offset);
	fx_open();
	start_request(row->request, 0);
	set_response(200, DEF_HEAD, row->clen);
	if (plen > 0)
		assert_int_equal(
		    conn_resp_body(&fx.r, row->prefix, plen, true), 0);
	rc = conn_resp_sendfile(&fx.r, fd, row->len);
	end = conn_resp_end(&fx.r);
	close(fd);
	kept = rc == 0 && end == 0 && fx.r.keep_alive;

	/* The head, then the prefix and the file's bytes; a cut response
	 * whose head had not gone out yet may also say Connection: close. */
	wlen = (size_t)sprintf(
	    want, DEF_HEAD "Content-Length: %" PRId64 "\r\n\r\n", row->clen);
	alen = (size_t)sprintf(alt,
	    DEF_HEAD "Content-Length: %" PRId64 "\r\nConnection: close\r\n\r\n",
	    row->clen);
	memcpy(want + wlen, row->prefix ? row->prefix : "", plen);
	memcpy(alt + alen, row->prefix ? row->prefix : "", plen);
	wlen += plen;
	alen += plen;
	memcpy(want + wlen, data + row->want_off, row->want_len);
	memcpy(alt + alen, data + row->want_off, row->want_len);
	wlen += row->want_len;
	alen += row->want_len;
	n = client_drain(wire, 2 * FILE_SIZE);
	if ((n != wlen || memcmp(wire, want, wlen) != 0) &&
	    !(row->is_cut && plen == 0 && n == alen &&
	        memcmp(wire, alt, alen) == 0))
		fail_msg("case \"%s\": %zu bytes on the wire, want %zu; "
		         "starts \"%s\"",
		    row->name, n, wlen, show(wire, n < 80 ? n : 80));
	if (!row->is_cut) {
		assert_int_equal(rc, 0);
		assert_int_equal(end, row->end_rc);
		assert_int_equal(kept, row->end_rc == 0);
	}
}

/* ---------------------------------------------------------------------- */
/* The client went away                                                    */
/* ---------------------------------------------------------------------- */

enum gone_op {
	GONE_FLUSH,    /* conn_resp_body with flush */
	GONE_END,      /* conn_resp_end */
	GONE_BIG,      /* conn_resp_body of more than CONN_OUT_SIZE */
	GONE_SENDFILE, /* conn_resp_sendfile */
	GONE_ERROR,    /* conn_send_error */
	GONE_WRITE,    /* conn_write_all */
	GONE_CONTINUE, /* conn_body_read that must send 100 Continue */
};

struct gone_row {
	const char *name;
	const char *request;
	enum gone_op op;
	bool head_first; /* the head went out before the client left */
};

static const struct gone_row gone_rows[] = {
    {"client gone: flushed body", GET11, GONE_FLUSH, false},
    {"client gone: flushed body after the head", GET11, GONE_FLUSH, true},
    {"client gone: at the end", GET11, GONE_END, false},
    {"client gone: full buffer", GET11, GONE_BIG, false},
    {"client gone: sendfile", GET11, GONE_SENDFILE, false},
    {"client gone: sendfile after the head", GET11, GONE_SENDFILE, true},
    {"client gone: error page", GET11, GONE_ERROR, false},
    {"client gone: raw write", GET11, GONE_WRITE, false},
    {"client gone: 100 Continue", EXPECT_CL(5), GONE_CONTINUE, false},
};

static void test_gone_row(void **state)
{
	const struct gone_row *row = *state;
	char *big = NULL, buf[16];
	int rc = 0, fd;

	fx_open();
	start_request(row->request, 0);
	set_response(200, DEF_HEAD, row->op == GONE_SENDFILE ? FILE_SIZE : -1);
	if (row->head_first) {
		char wire[512];

		assert_int_equal(conn_resp_body(&fx.r, "", 0, true), 0);
		assert_true(fx.r.headers_sent);
		assert_true(client_drain(wire, sizeof(wire)) > 0);
	}
	close(fx.peer);
	fx.peer = -1;
	switch (row->op) {
	case GONE_FLUSH:
		rc = conn_resp_body(&fx.r, "hello", 5, true);
		break;
	case GONE_END:
		assert_int_equal(conn_resp_body(&fx.r, "hello", 5, false), 0);
		rc = conn_resp_end(&fx.r);
		break;
	case GONE_BIG:
		big = calloc(1, CONN_OUT_SIZE + 1);
		assert_non_null(big);
		rc = conn_resp_body(&fx.r, big, CONN_OUT_SIZE + 1, false);
		free(big);
		break;
	case GONE_SENDFILE:
		big = malloc(FILE_SIZE);
		assert_non_null(big);
		fd = make_temp_file(big, FILE_SIZE);
		assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
		rc = conn_resp_sendfile(&fx.r, fd, FILE_SIZE);
		close(fd);
		free(big);
		break;
	case GONE_ERROR:
		conn_send_error(&fx.r, 500, true);
		rc = fx.r.client_gone ? -1 : 0;
		break;
	case GONE_WRITE:
		rc = conn_write_all(&fx.r, "x", 1, 1000);
		break;
	case GONE_CONTINUE:
		rc = (int)conn_body_read(&fx.r, buf, sizeof(buf), 1000);
		assert_true(fx.r.body_failed);
		assert_int_equal(fx.r.body_status, 0);
		break;
	}
	if (rc != -1)
		fail_msg("case \"%s\": returned %d, want -1", row->name, rc);
	assert_true(fx.r.client_gone);
	/* Everything fails from now on, quickly. */
	assert_int_equal(conn_resp_body(&fx.r, "x", 1, true), -1);
	assert_int_equal(conn_resp_end(&fx.r), -1);
}

/* ---------------------------------------------------------------------- */
/* Writes, descriptors                                                     */
/* ---------------------------------------------------------------------- */

/* conn_writev_all with empty entries and more than the socket holds: the
 * client thread reads while the server waits for room. */
static void test_writev_all(void **state)
{
	const size_t big_len = 1 << 20;
	char *big = malloc(big_len), *sink = malloc(big_len + 16);
	struct iovec iov[5];
	struct client cl = {0};
	int rc;

	assert_non_null(big);
	assert_non_null(sink);
	for (size_t i = 0; i < big_len; i++)
		big[i] = (char)(i ^ (i >> 9));
	iov[0] = (struct iovec){(char *)"abc", 3};
	iov[1] = (struct iovec){(char *)"", 0};
	iov[2] = (struct iovec){big, big_len};
	iov[3] = (struct iovec){(char *)"", 0};
	iov[4] = (struct iovec){(char *)"xyz", 3};
	fx_open();
	start_request(GET11, 0);
	cl.sink = sink;
	cl.sink_want = big_len + 6;
	client_start(&cl);
	rc = conn_writev_all(&fx.r, iov, 5, READ_TIMEOUT_MS);
	client_join(&cl);
	assert_int_equal(rc, 0);
	assert_false(fx.r.client_gone);
	assert_int_equal(cl.sink_len, big_len + 6);
	assert_memory_equal(sink, "abc", 3);
	assert_memory_equal(sink + 3, big, big_len);
	assert_memory_equal(sink + 3 + big_len, "xyz", 3);
	free(big);
	free(sink);
}

static void test_describe_unix(void **state)
{
	fx_open();
	conn_describe(fx.c);
	assert_true(fx.c->is_unix);
	assert_string_equal(fx.c->server_name, "localhost");
	assert_string_equal(fx.c->remote_addr, "");
}

/* Over TCP on the loopback: both addresses and ports. */
static void test_describe_tcp(void **state)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	char port[8], peer_port[8];
	int lfd, cfd, sfd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(port, sizeof(port), "%u", ntohs(sa.sin_port));
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(cfd >= 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	sfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
	assert_true(sfd >= 0);
	close(lfd);
	sl = sizeof(sa);
	assert_int_equal(getsockname(cfd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(peer_port, sizeof(peer_port), "%u", ntohs(sa.sin_port));

	fx_close();
	fx.peer = cfd;
	fx.c = conn_new(sfd, NULL, 0);
	assert_non_null(fx.c);
	conn_describe(fx.c);
	assert_false(fx.c->is_unix);
	assert_string_equal(fx.c->server_name, "127.0.0.1");
	assert_string_equal(fx.c->server_port, port);
	assert_string_equal(fx.c->remote_addr, "127.0.0.1");
	assert_string_equal(fx.c->remote_port, peer_port);
}

/* conn_free closes the descriptor: the client sees the end. */
static void test_free_closes(void **state)
{
	static const char initial[] = "GET / HTTP/1.1\r\nHost: h\r\n";
	char buf[8];
	int fd;

	fx_open_initial(initial, sizeof(initial) - 1);
	fd = fx.c->fd;
	conn_free(fx.c);
	fx.c = NULL;
	errno = 0;
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(recv(fx.peer, buf, sizeof(buf), MSG_DONTWAIT), 0);
	conn_free(NULL);
}

/* conn_new sizes the buffer for what the router read: a large initial
 * head parses without a read. */
static void test_new_large_initial(void **state)
{
	static const char start[] = "GET /i HTTP/1.1\r\nHost: h\r\nX: ";
	size_t len = 3 * CONN_BUF_MIN;
	char *initial = malloc(len);
	const char *err = NULL;
	int status = 0;

	assert_non_null(initial);
	memset(initial, 'v', len);
	memcpy(initial, start, strlen(start));
	memcpy(initial + len - 4, "\r\n\r\n", 4);
	fx_open_initial(initial, len);
	assert_true(fx.c->buf_size >= len);
	assert_int_equal(fx.c->buf_len, len);
	assert_memory_equal(fx.c->buf, initial, len);
	assert_int_equal(conn_read_head(fx.c, &fx.r, HTTP_DEFAULT_MAX_HEAD, 0,
	                     &status, &err),
	    CONN_READ_HEAD);
	assert_int_equal(fx.r.http.head_len, len);
	free(initial);
}

/* ---------------------------------------------------------------------- */
/* The request clock (--request-timeout)                                  */
/* ---------------------------------------------------------------------- */

/* Without a clock, writes go out and nothing ever expires. */
static void test_clock_off(void **state)
{
	char wire[1024];

	fx_open();
	start_request(GET11, 0);
	assert_int_equal(conn_clock_expire(fx.c, now_ms() + 100000, 1), 0);
	conn_send_error(&fx.r, 404, true);
	assert_false(fx.r.client_gone);
	assert_true(client_drain(wire, sizeof(wire)) > 0);
	assert_false(conn_clock_stop(fx.c));
}

/* A request within its time: untouched, and the clock says so. */
static void test_clock_in_time(void **state)
{
	char wire[1024];

	fx_open();
	start_request(GET11, 0);
	conn_clock_start(fx.c, now_ms(), &fx, &fx.r.http);
	assert_int_equal(conn_clock_expire(fx.c, now_ms(), 60000), 0);
	conn_send_error(&fx.r, 404, true);
	assert_false(fx.r.client_gone);
	assert_true(client_drain(wire, sizeof(wire)) > 0);
	/* The response started: a late expiry only cuts it. */
	assert_int_equal(conn_clock_expire(fx.c, now_ms() + 60000, 60000),
	    CONN_CLOCK_SENDING);
	assert_true(conn_clock_stop(fx.c));
	assert_false(conn_clock_stop(fx.c));
}

/* Expired before a byte went out: the checker owns the answer, so the
 * app's response never reaches the wire, and the log line's fields are
 * the request's. */
static void test_clock_expired_first(void **state)
{
	char wire[1024];

	fx_open();
	start_request("GET /slow/path?q=1 HTTP/1.1\r\nHost: h\r\n\r\n", 0);
	conn_clock_start(fx.c, now_ms() - 5000, &fx, &fx.r.http);
	assert_ptr_equal(fx.c->clock_app, &fx);
	check_bytes("the method", "clock", fx.c->clock_method,
	    fx.c->clock_method_len, "GET", 3);
	check_bytes("the path", "clock", fx.c->clock_path, fx.c->clock_path_len,
	    "/slow/path", 10);
	assert_int_equal(
	    conn_clock_expire(fx.c, now_ms(), 1000), CONN_CLOCK_RUNNING);
	/* Only once. */
	assert_int_equal(conn_clock_expire(fx.c, now_ms(), 1000), 0);
	set_response(200, DEF_HEAD, 2);
	assert_int_equal(conn_resp_body(&fx.r, "ok", 2, true), -1);
	assert_true(fx.r.client_gone);
	assert_false(fx.r.keep_alive);
	assert_int_equal(conn_resp_end(&fx.r), -1);
	assert_int_equal(client_drain(wire, sizeof(wire)), 0);
	assert_true(conn_clock_stop(fx.c));
}

/* An error page is a response like any other. */
static void test_clock_expired_error_page(void **state)
{
	char wire[1024];

	fx_open();
	start_request(GET11, 0);
	conn_clock_start(fx.c, now_ms() - 2000, NULL, &fx.r.http);
	assert_int_equal(
	    conn_clock_expire(fx.c, now_ms(), 1000), CONN_CLOCK_RUNNING);
	conn_send_error(&fx.r, 500, true);
	assert_true(fx.r.client_gone);
	assert_false(fx.r.keep_alive);
	assert_int_equal(client_drain(wire, sizeof(wire)), 0);
}

/* claim: 1 the first time, 0 after; -1 once expired. */
static void test_clock_claim(void **state)
{
	fx_open();
	start_request(GET11, 0);
	assert_int_equal(conn_clock_claim(fx.c), 0); /* not running */
	conn_clock_start(fx.c, now_ms(), NULL, &fx.r.http);
	assert_int_equal(conn_clock_claim(fx.c), 1);
	assert_int_equal(conn_clock_claim(fx.c), 0);
	conn_clock_unclaim(fx.c);
	assert_int_equal(
	    conn_clock_expire(fx.c, now_ms() + 10, 10), CONN_CLOCK_RUNNING);
	assert_int_equal(conn_clock_claim(fx.c), -1);
	conn_clock_unclaim(fx.c); /* stays expired */
	assert_int_equal(conn_clock_claim(fx.c), -1);
	assert_true(conn_clock_stop(fx.c));
	assert_int_equal(conn_clock_claim(fx.c), 0);
}

/* "100 Continue" is an interim response: a request that times out after
 * it still gets its 504 (the clock is back to RUNNING). */
static void test_clock_continue_is_interim(void **state)
{
	char wire[256], dst[16];

	fx_open();
	start_request(EXPECT_CL(5), 0);
	conn_clock_start(fx.c, now_ms(), NULL, &fx.r.http);
	/* No body comes: the read gives up, after the 100. */
	assert_int_equal(conn_body_read(&fx.r, dst, sizeof(dst), 50), -1);
	check_bytes("the interim response", "continue", wire,
	    client_drain(wire, sizeof(wire)), CONTINUE, sizeof(CONTINUE) - 1);
	assert_int_equal(conn_clock_expire(fx.c, now_ms() + 10000, 1000),
	    CONN_CLOCK_RUNNING);
}

/* Expired before the body was asked for: not even the 100 goes out. */
static void test_clock_expired_before_continue(void **state)
{
	char wire[256], dst[16];

	fx_open();
	start_request(EXPECT_CL(5), 0);
	conn_clock_start(fx.c, now_ms() - 5000, NULL, &fx.r.http);
	assert_int_equal(
	    conn_clock_expire(fx.c, now_ms(), 1000), CONN_CLOCK_RUNNING);
	assert_int_equal(conn_body_read(&fx.r, dst, sizeof(dst), 50), -1);
	assert_true(fx.r.client_gone);
	assert_int_equal(client_drain(wire, sizeof(wire)), 0);
}

/* ---------------------------------------------------------------------- */

#define ADD_ROWS(rows, fn)                                                     \
	for (size_t i = 0; i < NROWS(rows); i++)                               \
		tests[n++] = (struct CMUnitTest)                               \
		{                                                              \
			.name = rows[i].name, .test_func = fn,                 \
			.teardown_func = fx_teardown,                          \
			.initial_state = (void *)&rows[i]                      \
		}
#define ADD(nm, fn)                                                            \
	tests[n++] = (struct CMUnitTest)                                       \
	{                                                                      \
		.name = nm, .test_func = fn, .teardown_func = fx_teardown      \
	}

int main(void)
{
	struct CMUnitTest tests[NROWS(head_rows) + NROWS(pipe_rows) +
	                        NROWS(body_rows) + NROWS(discard_rows) +
	                        NROWS(resp_rows) + NROWS(err_rows) +
	                        NROWS(sendfile_rows) + NROWS(gone_rows) + 32];
	size_t n = 0;

	/* As in the worker: a write to a closed client fails with EPIPE
	 * (sendfile has no MSG_NOSIGNAL). */
	signal(SIGPIPE, SIG_IGN);

	ADD_ROWS(head_rows, test_head_row);
	ADD("head: byte by byte", test_head_byte_by_byte);
	ADD("head: larger than the buffer", test_head_large);
	ADD("head: large head from the router", test_new_large_initial);
	ADD_ROWS(pipe_rows, test_pipe_row);
	ADD_ROWS(body_rows, test_body_row);
	ADD("body: short reads", test_body_short_read);
	ADD("body: Content-Length, 300 kB", test_body_large);
	ADD("body: chunked, 300 kB", test_body_large_chunked);
	ADD("expect: never read, never answered", test_expect_unread);
	ADD_ROWS(discard_rows, test_discard_row);
	ADD("discard: more than 1 MiB", test_discard_too_much);
	ADD_ROWS(resp_rows, test_resp_row);
	ADD("resp: more than the output buffer", test_resp_large);
	ADD("resp: two requests in a row", test_resp_two_requests);
	ADD_ROWS(err_rows, test_err_row);
	ADD_ROWS(sendfile_rows, test_sendfile_row);
	ADD_ROWS(gone_rows, test_gone_row);
	ADD("writev: large, with empty entries", test_writev_all);
	ADD("describe: unix socket", test_describe_unix);
	ADD("describe: TCP", test_describe_tcp);
	ADD("free closes the descriptor", test_free_closes);
	ADD("clock: off", test_clock_off);
	ADD("clock: in time", test_clock_in_time);
	ADD("clock: expired before the response", test_clock_expired_first);
	ADD("clock: expired before an error page",
	    test_clock_expired_error_page);
	ADD("clock: claim", test_clock_claim);
	ADD("clock: 100 Continue is interim", test_clock_continue_is_interim);
	ADD("clock: expired before 100 Continue",
	    test_clock_expired_before_continue);
	return _cmocka_run_group_tests("conn", tests, n, NULL, fx_teardown);
}
