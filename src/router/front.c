/*
 * front.c: lodge-router's front side: the listening sockets lodged
 * handed over, the front connections accepted on them, reading each
 * request's head (HTTP/1.1 through the strict parser of common/http.c, or
 * a uwsgi packet through uwsgi.c), finding its route and building the
 * FRONT message a worker will get, and the answers the router gives
 * itself (400, 404, 408, 431, 502, 503, 504).  Runs in lodge-router as
 * the unprivileged "lodge" user under seccomp, on its one thread.
 *
 * Every byte read here is a stranger's.  Reading never blocks, a head
 * has a deadline and a size limit, the parser runs at most once per
 * received line (so a head trickled byte by byte costs no more than one
 * sent at once, give or take), and the number of open connections is
 * bounded: at the limit, the oldest connection still sending its head
 * makes room, so thousands of idle connections cannot keep a real
 * request out.  The router never writes to a connection it handed to a
 * worker, except the 502 when that worker died or was cut off.
 */
#include "router.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errpage.h"
#include "http.h"
#include "log.h"
#include "msg.h"
#include "util.h"

/* The most parses of one head before it is refused: a head has at most
 * HTTP_MAX_HEADERS + 2 lines, and the parser runs once per read that
 * brought a line end, so only empty lines sent one by one get here. */
#define FRONT_MAX_PARSES 128

/* Connections accepted per listener event, so that one busy listener
 * does not starve the others and the connections already open. */
#define FRONT_ACCEPT_BATCH 64

/* TCP_DEFER_ACCEPT on TCP listeners, in seconds: see defer_accept. */
#define FRONT_DEFER_ACCEPT_S 1

/*
 * A TCP connection is handed to accept only once its first bytes are
 * there (or after about FRONT_DEFER_ACCEPT_S if none come).  Without it
 * the router, woken by the handshake, accepts before the client has
 * written its head (measured: two connections in three of a wrk run),
 * finds nothing to read and must watch the connection: an EAGAIN read,
 * EPOLL_CTL_ADD, a second wake-up and EPOLL_CTL_DEL per connection.  A
 * client that sends nothing still reaches the router a second later, and
 * the head timeout and --max-conns govern it from then on.  Best effort:
 * a failure (an older policy) costs only the wake-ups.
 */
static void defer_accept(int fd)
{
	int secs = FRONT_DEFER_ACCEPT_S;

	if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs,
	        sizeof(secs)) < 0)
		log_debug("router: TCP_DEFER_ACCEPT on descriptor %d: %s", fd,
		    strerror(errno));
}

int front_listener_init(struct listener *l, int fd, enum listener_kind kind,
    bool is_trusted, const char **errstr_r)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(int);
	int type = 0, is_listening = 0;

	memset(l, 0, sizeof(*l));
	if (fcntl(fd, F_GETFD) < 0) {
		*errstr_r = "not an open descriptor";
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl) < 0 ||
	    type != SOCK_STREAM) {
		*errstr_r = "not a stream socket";
		return -1;
	}
	sl = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &is_listening, &sl) < 0 ||
	    !is_listening) {
		*errstr_r = "not a listening socket";
		return -1;
	}
	if (util_set_nonblock(fd, true) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		*errstr_r = "cannot set its flags";
		return -1;
	}
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		*errstr_r = "getsockname failed";
		return -1;
	}
	if (ss.ss_family == AF_INET) {
		l->is_tcp = true;
		snprintf(l->port, sizeof(l->port), "%u",
		    ntohs(((struct sockaddr_in *)&ss)->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		l->is_tcp = true;
		snprintf(l->port, sizeof(l->port), "%u",
		    ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
	} else if (ss.ss_family != AF_UNIX) {
		*errstr_r = "neither a TCP nor a Unix socket";
		return -1;
	}
	if (l->is_tcp)
		defer_accept(fd);
	l->ev.kind = EV_LISTENER;
	l->fd = fd;
	l->kind = kind;
	l->is_trusted = is_trusted;
	return 0;
}

int front_listeners_setup(struct router *r)
{
	r->is_accepting = false;
	front_accept_resume(r);
	return r->is_accepting ? 0 : -1;
}

void front_accept_pause(struct router *r)
{
	if (!r->is_accepting)
		return;
	for (size_t i = 0; i < r->nlisteners; i++)
		router_poll(r, EPOLL_CTL_DEL, r->listeners[i].fd, 0, NULL);
	r->is_accepting = false;
}

void front_accept_resume(struct router *r)
{
	if (r->is_accepting)
		return;
	for (size_t i = 0; i < r->nlisteners; i++) {
		struct listener *l = &r->listeners[i];

		if (router_poll(r, EPOLL_CTL_ADD, l->fd, EPOLLIN, &l->ev) < 0) {
			/* All or none, so the next attempt starts clean. */
			while (i-- > 0)
				router_poll(r, EPOLL_CTL_DEL,
				    r->listeners[i].fd, 0, NULL);
			return;
		}
	}
	r->is_accepting = true;
}

struct conn *front_find(struct router *r, uint32_t id)
{
	struct conn *c = r->conn_hash[id & (ROUTER_CONN_BUCKETS - 1)];

	while (c != NULL && c->id != id)
		c = c->hash_next;
	return c;
}

static void hash_remove(struct router *r, struct conn *c)
{
	struct conn **pp = &r->conn_hash[c->id & (ROUTER_CONN_BUCKETS - 1)];

	while (*pp != NULL && *pp != c)
		pp = &(*pp)->hash_next;
	if (*pp == c)
		*pp = c->hash_next;
	c->hash_next = NULL;
}

/* "192.0.2.1:54321", "[2001:db8::1]:443" or "a Unix peer", for logs. */
static const char *conn_from(const struct conn *c, char *buf, size_t size)
{
	if (c->peer.addr[0] == '\0')
		return "a Unix peer";
	snprintf(buf, size, strchr(c->peer.addr, ':') ? "[%s]:%s" : "%s:%s",
	    c->peer.addr, c->peer.port);
	return buf;
}

void front_close(struct router *r, struct conn *c)
{
	if (c->ev.kind == EV_DEAD)
		return;
	if (c->is_polled)
		router_poll(r, EPOLL_CTL_DEL, c->fd, 0, NULL);
	c->is_polled = false;
	list_remove(&c->timer);
	if (c->state == CONN_QUEUED || c->state == CONN_INFLIGHT)
		backend_conn_left(r, c);
	hash_remove(r, c);
	close(c->fd);
	c->fd = -1;
	c->ev.kind = EV_DEAD;
	list_append(&r->dead_conns, &c->timer);
	r->nconns--;
	if (!r->is_accepting && !r->is_stopping && r->accept_pause_until == 0 &&
	    r->nconns < r->opts.max_conns)
		front_accept_resume(r);
}

void front_reap(struct router *r)
{
	while (!list_is_empty(&r->dead_conns)) {
		struct conn *c =
		    LIST_ENTRY(r->dead_conns.next, struct conn, timer);

		list_remove(&c->timer);
		free(c->buf);
		free(c->front);
		free(c);
	}
}

/* Writes the page for status, best effort: the socket is non-blocking
 * and a page is far smaller than any socket buffer, so a short write
 * only happens to a client that stopped reading, which loses it. */
static void send_page(struct conn *c, int status)
{
	char page[1024];
	size_t n = errpage_render(page, sizeof(page), status, c->is_head_method,
	    false, status == 503 ? 1 : 0);

	if (n > 0 && send(c->fd, page, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		(void)0; /* the client is gone: nothing to tell it */
}

/*
 * Answers c without a log line and lets it go.  A connection still in
 * our hands lingers: its write side is shut down and what the client
 * still sends (a body we will never read) is read away for a moment,
 * because closing a socket with unread bytes sends a reset, and a reset
 * can destroy the page before the client has read it.  A connection
 * that was handed to a worker is shut down for both directions instead:
 * the worker (perhaps a hostile one, cut off) may still hold a copy, and
 * must not be able to use it after our answer.
 */
static void answer_quiet(struct router *r, struct conn *c, int status)
{
	send_page(c, status);
	backend_count_answer(r, c->user, status);
	if (c->state == CONN_INFLIGHT) {
		shutdown(c->fd, SHUT_RDWR);
		front_close(r, c);
		return;
	}
	if (c->state == CONN_QUEUED)
		backend_conn_left(r, c);
	c->user = NULL; /* a lingering connection is no user's */
	list_remove(&c->timer);
	free(c->buf);
	c->buf = NULL;
	free(c->front);
	c->front = NULL;
	shutdown(c->fd, SHUT_WR);
	c->state = CONN_LINGER;
	c->since_ms = util_now_ms();
	c->lingered = 0;
	list_append(&r->lingers, &c->timer);
	if (router_poll(r, c->is_polled ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd,
	        EPOLLIN | EPOLLRDHUP, &c->ev) < 0) {
		c->is_polled = false;
		front_close(r, c);
		return;
	}
	c->is_polled = true;
}

void front_answer(
    struct router *r, struct conn *c, int status, const char *fmt, ...)
{
	char why[512], from[96];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (status >= 500)
		log_warn("router: %d for conn %u from %s: %s", status, c->id,
		    conn_from(c, from, sizeof(from)), why);
	else
		log_info("router: %d for conn %u from %s: %s", status, c->id,
		    conn_from(c, from, sizeof(from)), why);
	answer_quiet(r, c, status);
}

/* A new connection id: never 0, never one in use. */
static uint32_t new_id(struct router *r)
{
	for (;;) {
		uint32_t id = ++r->next_id;

		if (id != 0 && front_find(r, id) == NULL)
			return id;
	}
}

static void head_read(struct router *r, struct conn *c);

/*
 * A new front connection, read at once: a front end (or a client) sends
 * its head right after connecting, so it is usually here by the time we
 * accept, and a connection whose head is complete is routed and handed
 * over without ever entering the epoll set (no EPOLL_CTL_ADD, no wait
 * for an event, no EPOLL_CTL_DEL).  Only one whose head is not all here
 * yet is watched.
 */
static void conn_new(struct router *r, struct listener *l, int fd,
    const struct sockaddr_storage *ss)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		log_warn("router: out of memory for a new connection");
		close(fd);
		return;
	}
	c->ev.kind = EV_CONN;
	c->fd = fd;
	c->id = new_id(r);
	c->state = CONN_HEAD;
	c->listener = l;
	c->since_ms = util_now_ms();
	list_init(&c->node);
	list_init(&c->timer);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(
		    AF_INET, &s4->sin_addr, c->peer.addr, sizeof(c->peer.addr));
		snprintf(c->peer.port, sizeof(c->peer.port), "%u",
		    ntohs(s4->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		/* A dual-stack listener sees IPv4 visitors as ::ffff:a.b.c.d;
		 * an app expects to see a.b.c.d. */
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12],
			    c->peer.addr, sizeof(c->peer.addr));
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, c->peer.addr,
			    sizeof(c->peer.addr));
		snprintf(c->peer.port, sizeof(c->peer.port), "%u",
		    ntohs(s6->sin6_port));
	}
	strcpy(c->peer.listen_port, l->port);
	c->hash_next = r->conn_hash[c->id & (ROUTER_CONN_BUCKETS - 1)];
	r->conn_hash[c->id & (ROUTER_CONN_BUCKETS - 1)] = c;
	list_append(&r->heads, &c->timer);
	r->nconns++;
	head_read(r, c);
	/* Routed, answered or closed: not ours to watch (any more). */
	if (c->ev.kind != EV_CONN || c->state != CONN_HEAD || c->is_polled)
		return;
	if (router_poll(r, EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLRDHUP, &c->ev) <
	    0) {
		front_close(r, c);
		return;
	}
	c->is_polled = true;
}

/*
 * At --max-conns, the oldest connection that has not sent its head yet
 * makes room: it is the one nearest its timeout, and an idle flood is
 * made of those.  False when every connection is past its head (routed,
 * queued, in flight): then accepting pauses until one closes.
 */
static bool make_room(struct router *r)
{
	struct conn *old;

	if (r->nconns < r->opts.max_conns)
		return true;
	if (list_is_empty(&r->heads)) {
		log_warn("router: %zu connections open (--max-conns); not "
		         "accepting until one closes",
		    r->nconns);
		front_accept_pause(r);
		return false;
	}
	old = LIST_ENTRY(r->heads.next, struct conn, timer);
	log_debug("router: conn %u closed to make room (--max-conns %u)",
	    old->id, r->opts.max_conns);
	front_close(r, old);
	return true;
}

/* accept failed for lack of descriptors or memory, or in a way that
 * would fail again at once: the connection stays in the backlog, and the
 * router tries again in a moment rather than spinning on it. */
static void accept_pause(struct router *r, int err)
{
	log_warn("router: accept: %s; pausing %d ms", strerror(err),
	    ROUTER_EMFILE_PAUSE_MS);
	front_accept_pause(r);
	r->accept_pause_until = util_now_ms() + ROUTER_EMFILE_PAUSE_MS;
}

void front_listener_event(struct router *r, struct listener *l)
{
	for (int i = 0; i < FRONT_ACCEPT_BATCH && r->is_accepting; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd;

		if (!make_room(r))
			return;
		fd = accept4(l->fd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			switch (errno) {
			case EAGAIN:
				return;
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
			case EPERM:
				/* That connection is gone; the next one may
				 * be fine. */
				continue;
			default:
				accept_pause(r, errno);
				return;
			}
		}
		if (sl == 0 || ss.ss_family == AF_UNIX)
			ss.ss_family = AF_UNIX;
		conn_new(r, l, fd, &ss);
	}
}

/*
 * Hands a routed head over: builds the FRONT payload (id, flags, the
 * strings, then bytes[0..nbytes)), stops watching the connection and
 * gives it to the backend.  The read buffer is freed: from now on the
 * worker reads the connection.
 */
static void head_routed(struct router *r, struct conn *c,
    const struct route *rt, const struct forward *f, const void *bytes,
    size_t nbytes)
{
	const char *str[MSG_FRONT_NSTR];
	size_t size = sizeof(struct msg_front) + nbytes, len;
	uint8_t *p;

	forward_strings(f, rt->app, str);
	for (int i = 0; i < MSG_FRONT_NSTR; i++)
		size += strlen(str[i]);
	p = malloc(size);
	if (p == NULL) {
		front_answer(r, c, 503, "out of memory");
		return;
	}
	len = msg_front_encode(p, size, c->id, f->flags, str, bytes, nbytes);
	if (len == 0) {
		free(p);
		front_answer(r, c, 431,
		    "%s/%s: request too large to hand over "
		    "(%zu bytes)",
		    rt->user, rt->app, nbytes);
		return;
	}
	strcpy(c->app, rt->app);
	if (c->is_polled)
		router_poll(r, EPOLL_CTL_DEL, c->fd, 0, NULL);
	c->is_polled = false;
	list_remove(&c->timer);
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
	c->front = p;
	c->front_len = len;
	backend_submit(r, c, rt->user);
}

/* An HTTP head: 1 when c moved on (routed, answered), 0 for more bytes. */
static int head_http(struct router *r, struct conn *c, size_t old_len)
{
	struct http_request req;
	struct route rt;
	struct forward f;
	const char *why = NULL, *note = NULL;
	int status = 400, rc;

	/* The parser starts from the first byte each time: run it only when
	 * a line has ended, or when the buffer is full (to get the 431). */
	if (c->len < ROUTER_MAX_HEAD &&
	    memchr(c->buf + old_len, '\n', c->len - old_len) == NULL)
		return 0;
	if (++c->nparses > FRONT_MAX_PARSES) {
		front_answer(r, c, 400, "bad head: too many empty lines");
		return 1;
	}
	rc = http_parse_request(
	    c->buf, c->len, ROUTER_MAX_HEAD, &req, &status, &why);
	if (rc == 0)
		return 0;
	if (rc < 0) {
		front_answer(r, c, status, "bad head: %s", why);
		return 1;
	}
	c->is_head_method =
	    req.method_len == 4 && memcmp(req.method, "HEAD", 4) == 0;
	if (route_from_http(&req, r->opts.route, r->host_map, &rt, &why) < 0) {
		front_answer(r, c, 404, "no route: %s", why);
		return 1;
	}
	forward_from_http(&req, c->listener->is_trusted, &c->peer, &f, &note);
	if (note != NULL)
		log_debug("router: conn %u: %s (ignored)", c->id, note);
	head_routed(r, c, &rt, &f, c->buf, c->len);
	return 1;
}

/* A uwsgi packet: 1 when c moved on, 0 for more bytes. */
static int head_uwsgi(struct router *r, struct conn *c)
{
	struct uwsgi_request req;
	struct route rt;
	struct forward f;
	const char *why = NULL, *note = NULL;
	const struct uwsgi_var *method;
	size_t need, room, body;
	char *http;
	ssize_t hlen;
	int rc;

	/* The packet's size is in its header: parse once it is all here. */
	if (c->len < 4)
		return 0;
	need = 4 + ((size_t)(unsigned char)c->buf[1] |
	               (size_t)(unsigned char)c->buf[2] << 8);
	if (c->len < need)
		return 0;
	rc = uwsgi_parse(c->buf, c->len, &req, &why);
	if (rc == 0)
		return 0;
	if (rc < 0) {
		front_answer(r, c, 400, "bad uwsgi packet: %s", why);
		return 1;
	}
	method = uwsgi_get(&req, "REQUEST_METHOD");
	c->is_head_method = method != NULL && method->val_len == 4 &&
	                    memcmp(method->val, "HEAD", 4) == 0;
	if (route_from_uwsgi(&req, r->opts.route, r->host_map, &rt, &why) < 0) {
		front_answer(r, c, 404, "no route: %s", why);
		return 1;
	}
	forward_from_uwsgi(&req, &c->peer, &f, &note);
	if (note != NULL)
		log_debug("router: conn %u: %s (ignored)", c->id, note);
	/* The worker reads HTTP: the vars become a head, and the body bytes
	 * that followed the packet follow the head. */
	body = c->len - req.packet_len;
	room = HTTP_DEFAULT_MAX_HEAD;
	http = malloc(room + body);
	if (http == NULL) {
		front_answer(r, c, 503, "out of memory");
		return 1;
	}
	hlen = uwsgi_to_http(&req, http, room, &why);
	if (hlen <= 0) {
		/* A head too large (or with too many fields) for a worker is
		 * what HTTP calls a 431; anything else is a bad request. */
		bool is_big = why != NULL && (strstr(why, "too large") ||
		                                 strstr(why, "too many"));

		free(http);
		front_answer(r, c, is_big ? 431 : 400,
		    "uwsgi vars make no HTTP request: %s",
		    why != NULL ? why : "empty");
		return 1;
	}
	memcpy(http + hlen, c->buf + req.packet_len, body);
	head_routed(r, c, &rt, &f, http, (size_t)hlen + body);
	free(http);
	return 1;
}

static void head_read(struct router *r, struct conn *c)
{
	size_t max = c->listener->kind == LISTENER_UWSGI ? ROUTER_READ_MAX
	                                                 : ROUTER_MAX_HEAD;
	for (;;) {
		size_t old = c->len;
		ssize_t n;
		int done;

		if (c->len == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 4096;
			char *nb;

			if (cap > max)
				cap = max;
			if (cap == c->cap) {
				/* Full, and the head parser asked for more:
				 * cannot happen with the limits above. */
				front_answer(r, c, 431,
				    "head larger than %zu bytes", max);
				return;
			}
			nb = realloc(c->buf, cap);
			if (nb == NULL) {
				front_answer(r, c, 503, "out of memory");
				return;
			}
			c->buf = nb;
			c->cap = cap;
		}
		n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			log_debug(
			    "router: conn %u closed by the client after %zu "
			    "bytes of head%s%s",
			    c->id, c->len, n < 0 ? ": " : "",
			    n < 0 ? strerror(errno) : "");
			front_close(r, c);
			return;
		}
		c->len += (size_t)n;
		if (c->listener->kind == LISTENER_UWSGI)
			done = head_uwsgi(r, c);
		else
			done = head_http(r, c, old);
		if (done)
			return;
	}
}

/* Reads away what a client sends after our answer, then closes. */
static void linger_read(struct router *r, struct conn *c)
{
	char sink[16384];

	for (;;) {
		ssize_t n = recv(c->fd, sink, sizeof(sink), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			front_close(r, c);
			return;
		}
		c->lingered += (size_t)n;
		if (c->lingered > ROUTER_LINGER_BYTES) {
			front_close(r, c);
			return;
		}
	}
}

void front_conn_event(struct router *r, struct conn *c, uint32_t events)
{
	(void)events;
	if (c->state == CONN_HEAD)
		head_read(r, c);
	else if (c->state == CONN_LINGER)
		linger_read(r, c);
}

int64_t front_timers(struct router *r, int64_t now)
{
	int64_t next = 0;

	while (!list_is_empty(&r->heads)) {
		struct conn *c = LIST_ENTRY(r->heads.next, struct conn, timer);
		int64_t deadline =
		    c->since_ms + (int64_t)r->opts.head_timeout_s * 1000;

		if (deadline > now) {
			next = deadline;
			break;
		}
		/* A client that sent part of a head is told; one that sent
		 * nothing (a pre-opened connection of a front end, or an
		 * idle flood) is just closed. */
		log_debug("router: conn %u: no complete head after %u s (%zu "
		          "bytes); closed",
		    c->id, r->opts.head_timeout_s, c->len);
		if (c->len > 0)
			answer_quiet(r, c, 408);
		else
			front_close(r, c);
	}
	while (!list_is_empty(&r->lingers)) {
		struct conn *c =
		    LIST_ENTRY(r->lingers.next, struct conn, timer);
		int64_t deadline = c->since_ms + ROUTER_LINGER_MS;

		if (deadline > now) {
			if (next == 0 || deadline < next)
				next = deadline;
			break;
		}
		front_close(r, c);
	}
	return next;
}
