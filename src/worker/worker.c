/*
 * worker.c: lodge-worker's main: command line, listeners, the serving
 * threads and their event loop, and a graceful stop.
 *
 * Runs as one hosted user (standalone: as whoever starts it).  The
 * threads are symmetric: all of them wait on one epoll set in which every
 * listener and every idle connection is armed EPOLLONESHOT, so whichever
 * thread is free takes the next ready connection, serves its request
 * (holding the GIL only inside the app) and re-arms it.  A thread busy in
 * a slow request therefore never holds up another connection, and no
 * request is passed between threads.  Idle and half-sent connections are
 * timed out by shutting them down, which wakes the loop to close them: only
 * the thread that owns a connection ever frees it.
 *
 * The same loop takes the connections lodge-router hands over (front.c: a
 * descriptor plus the bytes it already read), one request each.  The main
 * thread only waits for signals, and every quarter second enforces
 * --request-timeout: a request still running past it gets a 504 (or, if
 * its response started, its connection cut), while the app's thread runs
 * on until the app returns.
 */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errpage.h"
#include "log.h"
#include "msg.h"
#include "selfcheck.h"
#include "stats.h"
#include "util.h"

struct worker_ctx wctx;

#define WORKER_DEFAULT_MAX_BODY (64ULL * 1024 * 1024)
#define WORKER_DRAIN_MS 30000
#define WORKER_SWEEP_MS 1000
#define WORKER_MAX_GROUPS 256

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: lodge-worker --apps DIR --listen SPEC [--listen SPEC ...]\n"
	    "                    [--log-dir DIR] [--threads N] [--max-body SIZE]\n"
	    "                    [--max-head SIZE] [--drain-timeout SECONDS]\n"
	    "                    [--request-timeout SECONDS] [--router-fd N]\n"
	    "                    [--lodged-fd N]\n"
	    "\n"
	    "Serves every app in DIR (DIR/NAME/wsgi.py, app.wsgi or lodge.ini),\n"
	    "each in its own Python sub-interpreter.\n"
	    "\n"
	    "  --apps DIR           folder holding one folder per app\n"
	    "  --listen SPEC        tcp:127.0.0.1:8080, tcp:[::1]:8080 or "
	    "unix:/path.sock\n"
	    "  --log-dir DIR        app logs go to DIR/NAME.log (default: "
	    "stderr)\n"
	    "  --threads N          serving threads, 1-%d (default 4)\n"
	    "  --max-body SIZE      request body limit, e.g. 10M (default "
	    "64M) -> 413\n"
	    "  --max-head SIZE      request head limit (default 64K) -> 431\n"
	    "  --drain-timeout S    on SIGTERM, wait this long for requests "
	    "(default 30)\n"
	    "  --request-timeout S  a request still running after S seconds "
	    "gets a 504\n"
	    "                       (0: never, the default)\n"
	    "  --router-fd N        serve what lodge-router sends on the "
	    "channel N\n"
	    "  --lodged-fd N        report stats to lodged on the channel N, "
	    "take its reloads\n"
	    "  --version, --help\n",
	    WORKER_MAX_THREADS);
}

/* ---- connections ---- */

void conn_register(struct conn *c)
{
	pthread_mutex_lock(&wctx.conns_lock);
	c->next = wctx.conns;
	c->prev = NULL;
	if (wctx.conns != NULL)
		wctx.conns->prev = c;
	wctx.conns = c;
	wctx.nconns++;
	c->state = CONN_BUSY;
	pthread_mutex_unlock(&wctx.conns_lock);
}

void conn_close(struct conn *c)
{
	uint32_t done_id = 0;

	pthread_mutex_lock(&wctx.conns_lock);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		wctx.conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	wctx.nconns--;
	atomic_fetch_add(&wctx.nclosing, 1);
	pthread_mutex_unlock(&wctx.conns_lock);
	/* A descriptor passed to another process keeps the socket open
	 * there, and an epoll registration lives as long as the socket, not
	 * our descriptor: remove it, or stale events would point at freed
	 * memory.  A front connection served at once was never added. */
	if (c->is_polled)
		epoll_ctl(wctx.epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->front != NULL) {
		/* The router holds a copy of the descriptor until our DONE:
		 * closing ours alone would leave the client waiting. */
		if (!c->is_passed)
			shutdown(c->fd, SHUT_RDWR);
		if (atomic_exchange(&c->front->owes_done, false))
			done_id = c->front->id;
	}
	conn_free(c);
	if (done_id != 0)
		front_send_done(done_id);
	atomic_fetch_sub(&wctx.nclosing, 1);
}

/* Hands the connection back to the epoll set.  With pending, bytes are
 * already buffered: EPOLLOUT makes the event fire at once (the socket is
 * writable) so a free thread parses them. */
void conn_arm(struct conn *c, bool is_new, bool pending)
{
	struct epoll_event ev = {
	    .events = EPOLLIN | EPOLLONESHOT | EPOLLRDHUP |
		(pending ? EPOLLOUT : 0),
	    .data.ptr = c,
	};

	/* Before the call: once in the set, another thread may close it. */
	if (!c->is_polled)
		is_new = true; /* a front connection served at once */
	c->is_polled = true;
	pthread_mutex_lock(&wctx.conns_lock);
	c->state = CONN_IDLE;
	pthread_mutex_unlock(&wctx.conns_lock);
	if (epoll_ctl(wctx.epfd, is_new ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd,
	    &ev) < 0) {
		log_warn("epoll_ctl: %s; closing a connection", strerror(errno));
		pthread_mutex_lock(&wctx.conns_lock);
		c->state = CONN_BUSY;
		pthread_mutex_unlock(&wctx.conns_lock);
		conn_close(c);
		return;
	}
}

/*
 * Takes every idle connection away from the serving threads and hands it
 * to the successor.  Claiming (state GONE, under the registry lock) makes
 * a thread that already got an event for it leave it alone; the struct is
 * never freed, for such a stale event may still point at it (the draining
 * process exits soon).  Called repeatedly while draining: a connection a
 * thread re-armed after a pass is taken by the next one.
 */
void drain_claim_idle(void)
{
	struct conn *claimed = NULL, *c, *next;

	pthread_mutex_lock(&wctx.conns_lock);
	for (c = wctx.conns; c != NULL; c = next) {
		next = c->next;
		if (c->state != CONN_IDLE)
			continue;
		c->state = CONN_GONE;
		if (c->prev != NULL)
			c->prev->next = c->next;
		else
			wctx.conns = c->next;
		if (c->next != NULL)
			c->next->prev = c->prev;
		wctx.nconns--;
		atomic_fetch_add(&wctx.nclosing, 1);
		c->next = claimed;
		claimed = c;
	}
	pthread_mutex_unlock(&wctx.conns_lock);
	for (c = claimed; c != NULL; c = c->next) {
		bool is_lost = false;

		epoll_ctl(wctx.epfd, EPOLL_CTL_DEL, c->fd, NULL);
		/* A front connection here is one whose head is still
		 * arriving; the successor (which shares our router channel)
		 * serves it and says DONE. */
		if (wctx.successor == NULL ||
		    conn_send_fd(wctx.successor, c) < 0) {
			log_warn("handoff: cannot pass an idle connection to "
			    "the new process; closing it");
			is_lost = true;
			if (c->front != NULL)
				shutdown(c->fd, SHUT_RDWR);
		}
		close(c->fd);
		c->fd = -1;
		if (is_lost && c->front != NULL &&
		    atomic_exchange(&c->front->owes_done, false))
			front_send_done(c->front->id);
		atomic_fetch_sub(&wctx.nclosing, 1);
	}
}

/* Shuts down idle connections past their timeout; the loop then sees
 * them readable, reads EOF and closes them. */
static void sweep(void)
{
	int64_t now = util_now_ms();
	struct conn *c;

	pthread_mutex_lock(&wctx.conns_lock);
	for (c = wctx.conns; c != NULL; c = c->next) {
		int64_t limit = c->head_started ? CONN_HEAD_TIMEOUT_MS :
		    CONN_IDLE_TIMEOUT_MS;

		if (c->state != CONN_IDLE)
			continue;
		/* Bytes wait to be parsed (a connection just handed over,
		 * with its head): a thread takes it at once, and it is no
		 * idle keep-alive connection. */
		if (c->buf_len > 0 && !c->head_started &&
		    now - c->idle_since <= limit)
			continue;
		if (now - c->idle_since > limit)
			shutdown(c->fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&wctx.conns_lock);
}

/* A request past --request-timeout, noted under the registry lock and
 * logged after it. */
struct expired {
	struct app *app;
	char method[24];
	char path[256];
	bool is_answered; /* 504 sent (else the response was cut) */
	uint32_t done_id; /* a front connection's DONE to send, or 0 */
};

#define TIMEOUT_SWEEP_MAX 32

void worker_timeout_sweep(void)
{
	struct expired ex[TIMEOUT_SWEEP_MAX];
	int64_t now = util_now_ms();
	int n = 0, i;
	struct conn *c;

	if (wctx.request_timeout_ms <= 0)
		return;
	/* The lock keeps every connection alive while we look (conn_close
	 * takes it first); the clock's handshake (conn.h) decides who
	 * writes the start of the response, the app or us. */
	pthread_mutex_lock(&wctx.conns_lock);
	for (c = wctx.conns; c != NULL && n < TIMEOUT_SWEEP_MAX; c = c->next) {
		struct expired *e = &ex[n];
		size_t len;
		int st;

		if (c->state != CONN_BUSY)
			continue;
		st = conn_clock_expire(c, now, wctx.request_timeout_ms);
		if (st == 0)
			continue;
		len = c->clock_method_len < sizeof(e->method) - 1 ?
		    c->clock_method_len : sizeof(e->method) - 1;
		memcpy(e->method, c->clock_method, len);
		e->method[len] = '\0';
		len = c->clock_path_len < sizeof(e->path) - 1 ?
		    c->clock_path_len : sizeof(e->path) - 1;
		memcpy(e->path, c->clock_path, len);
		e->path[len] = '\0';
		e->app = c->clock_app;
		e->is_answered = st == CONN_CLOCK_RUNNING;
		e->done_id = 0;
		if (e->is_answered) {
			char page[1024];
			size_t plen = errpage_render(page, sizeof(page), 504,
			    strcmp(e->method, "HEAD") == 0, false, 0);

			/* Never blocks: a client that can't take half a
			 * kilobyte gets the shutdown alone. */
			if (send(c->fd, page, plen, MSG_DONTWAIT |
			    MSG_NOSIGNAL) < 0)
				(void)0;
		}
		/* Wakes the app's thread from any wait on the socket; its
		 * writes fail from now on. */
		shutdown(c->fd, SHUT_RDWR);
		/* The connection is over for the router: let it close its
		 * copy now, not when the app finally returns. */
		if (c->front != NULL &&
		    atomic_exchange(&c->front->owes_done, false))
			e->done_id = c->front->id;
		n++;
	}
	pthread_mutex_unlock(&wctx.conns_lock);
	for (i = 0; i < n; i++) {
		struct expired *e = &ex[i];
		long long secs = (long long)(wctx.request_timeout_ms / 1000);
		const char *what = e->is_answered ? "answered 504" :
		    "response cut short";

		if (e->app != NULL)
			userlog_printf(e->app->log, "request timeout: %s %s %s "
			    "after %lld s (%s; the app's thread runs on until "
			    "it returns)", e->app->name, e->method, e->path, secs,
			    what);
		log_warn("request timeout: %s %s %s after %lld s (%s)",
		    e->app != NULL ? e->app->name : "-", e->method, e->path,
		    secs, what);
		if (e->done_id != 0)
			front_send_done(e->done_id);
	}
}

void worker_abandon_fronts(void)
{
	uint32_t ids[256];
	int n = 0, i;
	struct conn *c;

	/* The threads still serving them may run on for a moment: their
	 * writes fail once the socket is shut down, and the registry lock
	 * keeps each connection alive while we look. */
	pthread_mutex_lock(&wctx.conns_lock);
	for (c = wctx.conns; c != NULL; c = c->next) {
		if (c->front == NULL || c->state == CONN_GONE)
			continue;
		shutdown(c->fd, SHUT_RDWR);
		if (n < (int)(sizeof(ids) / sizeof(ids[0])) &&
		    atomic_exchange(&c->front->owes_done, false))
			ids[n++] = c->front->id;
	}
	pthread_mutex_unlock(&wctx.conns_lock);
	for (i = 0; i < n; i++)
		front_send_done(ids[i]);
}

bool worker_has_listener(void)
{
	for (int i = 0; i < wctx.nlisten; i++)
		if (wctx.listeners[i].fd >= 0)
			return true;
	return false;
}

/* ---- requests ---- */

/* Finds the app a request is for: the X-Lodge-App header ("USER/APP";
 * USER is not checked in standalone mode), else the only app. */
static struct app *route(struct req *r, int *status_r)
{
	const struct http_header *h = NULL;
	size_t i, count = 0;

	for (i = 0; i < r->http.nheaders; i++) {
		const struct http_header *x = &r->http.headers[i];

		if (x->name_len == 11 &&
		    strncasecmp(x->name, CGI_ROUTE_HEADER, 11) == 0) {
			h = x;
			count++;
		}
	}
	if (count > 1) {
		*status_r = 400;
		return NULL;
	}
	if (h == NULL) {
		if (wctx.napps == 1)
			return wctx.apps[0];
		*status_r = 404;
		return NULL;
	}
	const char *name = memchr(h->value, '/', h->value_len);
	size_t len;

	if (name != NULL) {
		name++;
		len = h->value_len - (size_t)(name - h->value);
	} else {
		name = h->value;
		len = h->value_len;
	}
	struct app *app = app_find(name, len);

	if (app == NULL)
		*status_r = 404;
	return app;
}

/* A front connection's app: the one the router named (the route header,
 * if any, was the router's to read). */
static struct app *route_front(struct conn *c, int *status_r)
{
	const char *name = c->front->str[MSG_FRONT_APP];
	struct app *app = app_find(name, strlen(name));

	if (app == NULL)
		*status_r = 404;
	return app;
}

/* Serves one parsed request.  Returns 0 if the connection may carry the
 * next one, -1 to close it, 1 if it was handed to another process;
 * *app_r is the app it went to (NULL if none). */
static int serve_request(struct wthread *t, struct req *r,
    struct app **app_r)
{
	struct app_gen *gen;
	struct app *app;
	int status = 500, rc;

	if (atomic_load(&wctx.stopping))
		r->keep_alive = false;
	if (r->c->front != NULL) {
		/* One request per front connection: the front end may send
		 * the next one on it for another user (DESIGN.md). */
		r->keep_alive = false;
		app = route_front(r->c, &status);
	} else {
		app = route(r, &status);
	}
	*app_r = app;
	if (app == NULL) {
		conn_send_error(r, status, r->keep_alive && r->body_done);
		return r->keep_alive && r->body_done ? 0 : -1;
	}
	if (app->is_process_mode && wctx.app_process == NULL) {
		/* Its own process serves it: hand the connection over with
		 * every byte read so far. */
		wsgi_gil_drop(t);
		if (procmode_route(app, r->c) == 0)
			return 1;
		conn_send_error(r, 503, false);
		return -1;
	}
	gen = app_acquire(app);
	if (gen == NULL) {
		/* Never imported: the reason is in the app's log. */
		conn_send_error(r, 500, r->keep_alive && r->body_done);
		return r->keep_alive && r->body_done ? 0 : -1;
	}
	/* The request clock runs from the head's arrival, through the wait
	 * for the app's thread cap, to the response's end. */
	if (wctx.request_timeout_ms > 0)
		conn_clock_start(r->c, r->started_ms, app, &r->http);
	if (app->max_inflight > 0)
		wsgi_gil_drop(t); /* the cap may make us wait */
	app_cap_enter(app);
	rc = wsgi_serve(t, gen, r);
	app_cap_leave(app);
	app_release(gen);
	if (rc == 0 && r->body_failed && r->body_status != 0)
		rc = -1;
	/* Timed out: the 504 went out and the connection is shut down. */
	if (wctx.request_timeout_ms > 0 && conn_clock_stop(r->c))
		rc = -1;
	return rc;
}

static void serve_conn(struct wthread *t, struct conn *c)
{
	struct req *r = &t->req;

	pthread_mutex_lock(&wctx.conns_lock);
	if (c->state != CONN_IDLE) {
		/* Claimed by the drain meanwhile: not ours any more. */
		pthread_mutex_unlock(&wctx.conns_lock);
		return;
	}
	c->state = CONN_BUSY;
	pthread_mutex_unlock(&wctx.conns_lock);
	atomic_fetch_add(&wctx.busy, 1);
	for (;;) {
		const char *err = NULL;
		int status = 400, rc;
		struct app *app = NULL;
		int64_t started;

		switch (conn_read_head(c, r, wctx.max_head, wctx.max_body,
		    &status, &err)) {
		case CONN_READ_AGAIN:
			atomic_fetch_sub(&wctx.busy, 1);
			if (atomic_load(&wctx.is_draining))
				wsgi_gil_drop(t); /* the hand-over may wait */
			/* Stopping, an idle keep-alive connection stays
			 * until its idle timeout: the front end may send its
			 * next request on it at any moment, and gets that
			 * one answered (with Connection: close) rather than
			 * a reset. */
			conn_release(c);
			return;
		case CONN_READ_CLOSED:
			goto close;
		case CONN_READ_BAD:
			log_info("bad request from %s: %d %s",
			    c->is_unix ? "unix socket" : c->remote_addr, status,
			    err ? err : "");
			conn_send_error(r, status, false);
			stats_end(NULL, status, stats_begin());
			goto close;
		case CONN_READ_HEAD:
			break;
		}
		started = stats_begin();
		rc = serve_request(t, r, &app);
		stats_end(app, rc > 0 ? STATS_HANDED : r->status, started);
		if (rc > 0) {
			/* Handed over: another process owns it now. */
			atomic_fetch_sub(&wctx.busy, 1);
			return;
		}
		if (rc < 0)
			goto close;
		if (conn_body_discard(r) < 0)
			goto close;
		if (!conn_next_request(r) || wctx.app_process != NULL) {
			/* Nothing pipelined (or, in an app process, the
			 * parent routes what comes next): release it
			 * without a pointless read. */
			atomic_fetch_sub(&wctx.busy, 1);
			if (atomic_load(&wctx.is_draining))
				wsgi_gil_drop(t); /* the hand-over may wait */
			conn_release(c);
			return;
		}
	}
close:
	atomic_fetch_sub(&wctx.busy, 1);
	conn_close(c);
}

static void accept_all(int lfd)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;
		int one = 1;

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("accept: %s", strerror(errno));
			break;
		}
		if (atomic_load(&wctx.stopping)) {
			close(fd);
			continue;
		}
		c = conn_new(fd, NULL, 0);
		if (c == NULL) {
			close(fd);
			continue;
		}
		conn_describe(c);
		if (!c->is_unix)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		conn_register(c);
		conn_arm(c, true, false);
	}
}

/* An event that leads to a request now: a connection, or the router's
 * channel (its FRONT is served by the thread that reads it). */
static bool is_serving_event(const struct epoll_event *ev)
{
	enum ev_kind kind = *(enum ev_kind *)ev->data.ptr;

	return kind == EV_CONN ||
	    (kind == EV_CHAN && ((struct chan *)ev->data.ptr)->is_router);
}

static void *serve_thread(void *arg)
{
	struct wthread *t = arg;

	/* EMBEDDING.md §5 item 6: the first thread state created on a
	 * thread owns its PyGILState slot; make it main's so that a stray
	 * PyGILState_Ensure (a ctypes callback) never lands in an app. */
	t->main_ts = PyThreadState_New(PyInterpreterState_Main());
	for (;;) {
		struct epoll_event ev;
		int n = 0;
		int64_t now;
		long long last;

		/* Holding the GIL from the last request: serve a connection
		 * that is ready now under it; anything else, or nothing,
		 * first lets it go. */
		if (t->held_ts != NULL) {
			n = epoll_wait(wctx.epfd, &ev, 1, 0);
			if (n <= 0 || !is_serving_event(&ev))
				wsgi_gil_drop(t);
		}
		if (n <= 0)
			n = epoll_wait(wctx.epfd, &ev, 1, WORKER_SWEEP_MS);
		now = util_now_ms();
		last = atomic_load(&wctx.last_sweep);

		if (now - last >= WORKER_SWEEP_MS &&
		    atomic_compare_exchange_strong(&wctx.last_sweep, &last, now))
			sweep();
		if (n <= 0)
			continue;
		switch (*(enum ev_kind *)ev.data.ptr) {
		case EV_LISTEN: {
			struct listener *l = ev.data.ptr;
			struct epoll_event lev = {
			    .events = EPOLLIN | EPOLLONESHOT,
			    .data.ptr = l,
			};

			accept_all(l->fd);
			if (!atomic_load(&wctx.stopping) &&
			    !atomic_load(&wctx.is_draining))
				epoll_ctl(wctx.epfd, EPOLL_CTL_MOD, l->fd, &lev);
			break;
		}
		case EV_CONN:
			serve_conn(t, ev.data.ptr);
			break;
		case EV_CHAN: {
			struct conn *c = chan_readable(ev.data.ptr);

			if (c != NULL)
				serve_conn(t, c);
			break;
		}
		}
	}
	return NULL;
}

/* ---- start and stop ---- */

/* With --idle-exit: true once no connection has been open for that long
 * (lodged starts the worker again on the next connection). */
static bool worker_is_idle(void)
{
	static int64_t idle_since;
	int64_t now = util_now_ms();
	int nconns;

	pthread_mutex_lock(&wctx.conns_lock);
	nconns = wctx.nconns;
	pthread_mutex_unlock(&wctx.conns_lock);
	if (nconns > 0 || atomic_load(&wctx.busy) > 0 || idle_since == 0) {
		idle_since = now;
		return false;
	}
	if (now - idle_since < wctx.idle_exit_ms)
		return false;
	log_info("idle for %lld s: exiting", (long long)(wctx.idle_exit_ms /
	    1000));
	return true;
}

/* A whole number option in [min,max] ("seconds", "threads" ...). */
static int parse_num_opt(const char *name, const char *val, uint64_t min,
    uint64_t max, const char *unit, uint64_t *out)
{
	if (util_parse_u64(val, min, max, false, out) < 0) {
		fprintf(stderr, "lodge-worker: %s: expected %llu to %llu %s, "
		    "got '%s'\n", name, (unsigned long long)min,
		    (unsigned long long)max, unit, val);
		return -1;
	}
	return 0;
}

static int parse_size_opt(const char *name, const char *val, uint64_t min,
    uint64_t max, uint64_t *out)
{
	if (util_parse_u64(val, min, max, true, out) < 0) {
		fprintf(stderr, "lodge-worker: %s: expected a size from %llu "
		    "to %llu bytes (K, M and G suffixes allowed), got '%s'\n",
		    name, (unsigned long long)min, (unsigned long long)max, val);
		return -1;
	}
	return 0;
}

void worker_drain_and_exit(void)
{
	int64_t deadline;
	int i;

	/* The router first: what it sent before it knew we leave is ours.
	 * (Being replaced, the channel is the successor's: nothing to say.) */
	if (wctx.successor == NULL)
		front_leave();
	deadline = util_now_ms() + wctx.drain_timeout_ms;
	atomic_store(&wctx.stopping, true);
	for (i = 0; i < wctx.nlisten; i++) {
		struct listener *l = &wctx.listeners[i];

		if (l->fd < 0)
			continue;
		epoll_ctl(wctx.epfd, EPOLL_CTL_DEL, l->fd, NULL);
		close(l->fd);
		l->fd = -1;
		/* A successor serves the same paths: leave them. */
		if (l->unix_path != NULL && wctx.successor == NULL)
			unlink(l->unix_path);
	}
	log_info("stopping: no new connections; finishing %d in flight",
	    atomic_load(&wctx.busy));
	/* Process-mode apps finish their requests too, then leave. */
	procmode_drain_all();
	/*
	 * Idle keep-alive connections are not cut: a front end that pools
	 * connections may be sending its next request right now, and a
	 * reset would be a 502 for it.  Each stays until its idle timeout
	 * (CONN_IDLE_TIMEOUT_MS after its last response), and a request that
	 * arrives meanwhile is served with Connection: close.  A front end
	 * whose pool drops connections idle for less than that (Apache's
	 * ttl=10, docs/apache.md) never sends on a connection we close.
	 */
	for (;;) {
		int nconns;

		sweep();
		pthread_mutex_lock(&wctx.conns_lock);
		nconns = wctx.nconns;
		pthread_mutex_unlock(&wctx.conns_lock);
		/* A connection just closed may still owe the router its
		 * DONE (conn_close): leaving now would lose it. */
		if (nconns == 0 && atomic_load(&wctx.nclosing) == 0 &&
		    procmode_all_gone())
			break;
		if (util_now_ms() > deadline) {
			log_warn("stopping: %d connection(s) still busy after "
			    "%d s; exiting anyway", nconns,
			    wctx.drain_timeout_ms / 1000);
			worker_abandon_fronts();
			break;
		}
		worker_timeout_sweep();
		usleep(20 * 1000);
	}
	/* An app's own process: what it served, the drain included, goes
	 * up to its worker (a no-op elsewhere). */
	stats_up_final();
	for (i = 0; i < wctx.napps; i++)
		userlog_flush(wctx.apps[i]->log);
	/* A replacement the watcher began before the stop: its process must
	 * not stay behind us (handoff.c replace_request). */
	{
		pid_t pid = atomic_exchange(&wctx.successor_starting, 0);

		if (pid > 0) {
			kill(pid, SIGKILL);
			log_info("stopping: the successor that was starting "
			    "(pid %d) is stopped too", (int)pid);
		}
	}
	log_info("stopped");
	/* No Py_Finalize: app threads may still run, and ending
	 * sub-interpreters that hold them would block (EMBEDDING.md §5). */
	_exit(0);
}

/* Creates dir and its missing parents (as the user the worker runs as:
 * a hosted user's log folder is created by the user, never by root). */
static int mkdir_p(const char *dir, mode_t mode)
{
	char path[4096];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(path, dir, len + 1);
	for (char *p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

/*
 * SANDBOX.md §2 step 12, before any user code: execve made us dumpable
 * again, which would let any process of the same user ptrace us and read
 * our memory and descriptors; then prove the sandbox is whole (no
 * capability, no_new_privs, a seccomp filter, the ids and groups lodged
 * chose).  A worker that fails refuses to run user code.
 */
static void sandbox_selfcheck(const char *expect_groups)
{
	gid_t groups[WORKER_MAX_GROUPS];
	struct selfcheck_expect e = {.uid = getuid(), .gid = getgid()};
	char why[256];
	int n;

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fatal("sandbox self-check: PR_SET_DUMPABLE: %s; refusing to "
		    "run user code", strerror(errno));
	if (expect_groups != NULL) {
		const char *p = expect_groups;

		for (n = 0; *p != '\0' && n < WORKER_MAX_GROUPS; n++) {
			char *end;
			unsigned long g = strtoul(p, &end, 10);

			if (end == p || (*end != ',' && *end != '\0'))
				fatal("--expect-groups: bad list '%s'",
				    expect_groups);
			groups[n] = (gid_t)g;
			p = *end == ',' ? end + 1 : end;
		}
	} else {
		n = getgroups(WORKER_MAX_GROUPS, groups);
		if (n < 0)
			n = 0;
	}
	for (int i = 0; i < n; i++)
		if (groups[i] == 0)
			fatal("sandbox self-check: group 0 in the worker's "
			    "groups; refusing to run user code");
	e.groups = groups;
	e.ngroups = n;
	if (e.uid == 0 || e.gid == 0)
		fatal("sandbox self-check: running as uid %d gid %d; refusing "
		    "to run user code", (int)e.uid, (int)e.gid);
	if (selfcheck_run(&e, why, sizeof(why)) < 0)
		fatal("sandbox self-check failed: %s; refusing to run user "
		    "code", why);
	log_info("sandbox self-check passed (uid %d, no capabilities, "
	    "no_new_privs, seccomp filter)", (int)e.uid);
}

static int open_worker_log(const char *dir)
{
	char path[4096];

	if (snprintf(path, sizeof(path), "%s/worker.log", dir) >=
	    (int)sizeof(path))
		return -1;
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
	    0640);
}

/* Parses "3,4,5" into fds; returns the count or -1. */
static int parse_fd_list(const char *s, int *fds, int max)
{
	int n = 0;

	while (*s != '\0') {
		char *end;
		long fd = strtol(s, &end, 10);

		if (end == s || fd < 3 || fd > 65535 || n == max)
			return -1;
		fds[n++] = (int)fd;
		s = *end == ',' ? end + 1 : end;
		if (*end != ',' && *end != '\0')
			return -1;
	}
	return n;
}

static int parse_fd(const char *s)
{
	uint64_t v;

	if (util_parse_u64(s, 3, 65535, false, &v) < 0)
		return -1;
	return (int)v;
}

void worker_start_threads(void)
{
	int i;

	wctx.threads = calloc((size_t)wctx.nthreads, sizeof(*wctx.threads));
	if (wctx.threads == NULL)
		fatal("out of memory");
	for (i = 0; i < wctx.nthreads; i++) {
		struct wthread *t = &wctx.threads[i];

		t->idx = i;
		pthread_cond_init(&t->gilq_cond, NULL);
		t->cgi = malloc(sizeof(*t->cgi));
		t->req.out = malloc(CONN_OUT_SIZE);
		if (t->cgi == NULL || t->req.out == NULL)
			fatal("out of memory");
		if (pthread_create(&t->tid, NULL, serve_thread, t) != 0)
			fatal("pthread_create: %s", strerror(errno));
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"apps", required_argument, NULL, 'a'},
	    {"listen", required_argument, NULL, 'l'},
	    {"log-dir", required_argument, NULL, 'L'},
	    {"threads", required_argument, NULL, 't'},
	    {"max-body", required_argument, NULL, 'b'},
	    {"max-head", required_argument, NULL, 'H'},
	    {"drain-timeout", required_argument, NULL, 'd'},
	    {"control", required_argument, NULL, 'c'},
	    {"settle-ms", required_argument, NULL, 's'},
	    {"max-memory", required_argument, NULL, 'm'},
	    /* Internal: how a worker starts its successor or an app's own
	     * process (handoff.c, procmode.c). */
	    {"inherit-listen", required_argument, NULL, 'I'},
	    {"handoff-fd", required_argument, NULL, 'F'},
	    {"app-process", required_argument, NULL, 'P'},
	    /* From lodged: a listening socket already open as this
	     * descriptor, and exit after this long without a connection. */
	    {"listen-fd", required_argument, NULL, 'f'},
	    {"idle-exit", required_argument, NULL, 'i'},
	    /* From lodged: the channel to lodge-router (front.c), and the
	     * user's request_timeout. */
	    {"router-fd", required_argument, NULL, 'R'},
	    /* From lodged: the channel to lodged (stats.c). */
	    {"lodged-fd", required_argument, NULL, 'D'},
	    {"request-timeout", required_argument, NULL, 'T'},
	    /* From lodged: prove the sandbox before any user code runs. */
	    {"sandboxed", no_argument, NULL, 'S'},
	    {"expect-groups", required_argument, NULL, 'G'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *listen_specs[WORKER_MAX_LISTEN];
	int inherited[WORKER_MAX_LISTEN];
	int nspecs = 0, ninherited = -1, handoff_fd = -1, router_fd = -1, opt;
	int lodged_fd = -1;
	int i;
	int listenfds[WORKER_MAX_LISTEN], nlistenfd = 0;
	bool is_sandboxed = false;
	const char *expect_groups = NULL;
	uint64_t v;
	sigset_t sigs;

	log_init("lodge-worker", LOG_LVL_INFO);
	wctx.argv = argv;
	wctx.nthreads = 4;
	wctx.max_head = HTTP_DEFAULT_MAX_HEAD;
	wctx.max_body = WORKER_DEFAULT_MAX_BODY;
	wctx.drain_timeout_ms = WORKER_DRAIN_MS;
	wctx.settle_ms = 50;
	wctx.max_memory = 512ULL * 1024 * 1024;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'a':
			wctx.apps_dir = optarg;
			break;
		case 'l':
			if (nspecs == WORKER_MAX_LISTEN) {
				fprintf(stderr, "lodge-worker: at most %d "
				    "--listen\n", WORKER_MAX_LISTEN);
				return 2;
			}
			listen_specs[nspecs++] = optarg;
			break;
		case 'L':
			wctx.log_dir = optarg;
			break;
		case 't':
			if (parse_num_opt("--threads", optarg, 1,
			    WORKER_MAX_THREADS, "threads", &v) < 0)
				return 2;
			wctx.nthreads = (int)v;
			break;
		case 'b':
			if (parse_size_opt("--max-body", optarg, 0,
			    1ULL << 40, &wctx.max_body) < 0)
				return 2;
			break;
		case 'H':
			if (parse_size_opt("--max-head", optarg, 1024,
			    HTTP_DEFAULT_MAX_HEAD, &v) < 0)
				return 2;
			wctx.max_head = (size_t)v;
			break;
		case 'm':
			if (parse_size_opt("--max-memory", optarg, 16ULL << 20,
			    1ULL << 40, &wctx.max_memory) < 0)
				return 2;
			break;
		case 'd':
			if (parse_num_opt("--drain-timeout", optarg, 0, 3600,
			    "seconds", &v) < 0)
				return 2;
			wctx.drain_timeout_ms = (int)v * 1000;
			break;
		case 's':
			if (parse_num_opt("--settle-ms", optarg, 0, 60000,
			    "milliseconds", &v) < 0)
				return 2;
			wctx.settle_ms = (int)v;
			break;
		case 'c':
			wctx.control_path = optarg;
			break;
		case 'I':
			ninherited = parse_fd_list(optarg, inherited,
			    WORKER_MAX_LISTEN);
			if (ninherited < 0) {
				fprintf(stderr, "lodge-worker: --inherit-listen: "
				    "bad descriptor list '%s'\n", optarg);
				return 2;
			}
			break;
		case 'F':
			handoff_fd = parse_fd(optarg);
			if (handoff_fd < 0) {
				fprintf(stderr, "lodge-worker: --handoff-fd: bad "
				    "descriptor '%s'\n", optarg);
				return 2;
			}
			break;
		case 'P':
			wctx.app_process = optarg;
			break;
		case 'S':
			is_sandboxed = true;
			break;
		case 'G':
			expect_groups = optarg;
			break;
		case 'f':
			if (nlistenfd == WORKER_MAX_LISTEN ||
			    (listenfds[nlistenfd] = parse_fd(optarg)) < 0) {
				fprintf(stderr, "lodge-worker: --listen-fd: bad "
				    "descriptor '%s'\n", optarg);
				return 2;
			}
			nlistenfd++;
			break;
		case 'i':
			if (parse_num_opt("--idle-exit", optarg, 1, 86400,
			    "seconds", &v) < 0)
				return 2;
			wctx.idle_exit_ms = (int64_t)v * 1000;
			break;
		case 'D':
			lodged_fd = parse_fd(optarg);
			if (lodged_fd < 0) {
				fprintf(stderr, "lodge-worker: --lodged-fd: bad "
				    "descriptor '%s'\n", optarg);
				return 2;
			}
			break;
		case 'R':
			router_fd = parse_fd(optarg);
			if (router_fd < 0) {
				fprintf(stderr, "lodge-worker: --router-fd: bad "
				    "descriptor '%s'\n", optarg);
				return 2;
			}
			break;
		case 'T':
			if (parse_num_opt("--request-timeout", optarg, 0, 86400,
			    "seconds", &v) < 0)
				return 2;
			wctx.request_timeout_ms = (int64_t)v * 1000;
			break;
		case 'V':
			printf("lodge-worker %s (Python %s)\n", LODGE_VERSION,
			    PY_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || wctx.apps_dir == NULL ||
	    (nspecs == 0 && nlistenfd == 0 && router_fd < 0 &&
		wctx.app_process == NULL)) {
		fprintf(stderr, "lodge-worker: --apps and at least one "
		    "--listen, --listen-fd or --router-fd are required\n");
		usage(stderr);
		return 2;
	}
	if (ninherited >= 0 && ninherited != nspecs) {
		fprintf(stderr, "lodge-worker: --inherit-listen must give one "
		    "descriptor per --listen\n");
		return 2;
	}
	if (wctx.app_process != NULL) {
		/* An app's own process: log lines say which. */
		static char title[96];

		snprintf(title, sizeof(title), "lodge-worker[app %s]",
		    wctx.app_process);
		log_init(title, LOG_LVL_INFO);
		if (handoff_fd < 0)
			fatal("--app-process needs --handoff-fd");
	}

	if (is_sandboxed && wctx.log_dir != NULL) {
		/* Under lodged, stdout and stderr are /dev/null: the worker's
		 * own lines go to LOGDIR/worker.log, written as the user. */
		int fd;

		if (mkdir_p(wctx.log_dir, 0750) == 0 &&
		    (fd = open_worker_log(wctx.log_dir)) >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
	}
	if (is_sandboxed)
		sandbox_selfcheck(expect_groups);

	/* Writes to a closed peer must fail with EPIPE, not kill the worker
	 * (sendfile has no MSG_NOSIGNAL); the isolated Python config leaves
	 * signals to us (EMBEDDING.md §1). */
	signal(SIGPIPE, SIG_IGN);
	/* Over the file-size limit a write must fail with EFBIG (the app
	 * sees an OSError), not kill the worker. */
	signal(SIGXFSZ, SIG_IGN);
	/* Stop signals are taken by the main thread only, with sigwait. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	for (i = 0; i < nspecs && wctx.app_process == NULL; i++) {
		struct util_listen_spec ls;
		const char *err;
		int fd;

		if (util_parse_listen(listen_specs[i], &ls, &err) < 0)
			fatal("--listen %s: %s", listen_specs[i], err);
		if (ninherited >= 0) {
			/* A predecessor's socket: same address, no gap. */
			fd = inherited[i];
			fcntl(fd, F_SETFD, FD_CLOEXEC);
			util_set_nonblock(fd, true);
		} else {
			fd = util_listen(&ls);
			if (fd < 0)
				fatal("--listen %s: %s", listen_specs[i],
				    strerror(errno));
		}
		wctx.listeners[wctx.nlisten] = (struct listener){
		    .ev_kind = EV_LISTEN,
		    .fd = fd,
		    .unix_path = ls.kind == UTIL_LISTEN_UNIX ? strdup(ls.path) :
							      NULL,
		};
		wctx.nlisten++;
	}
	for (i = 0; i < nlistenfd && wctx.app_process == NULL; i++) {
		int type = 0;
		socklen_t tl = sizeof(type);

		if (wctx.nlisten == WORKER_MAX_LISTEN)
			fatal("too many listeners");
		if (getsockopt(listenfds[i], SOL_SOCKET, SO_TYPE, &type, &tl) < 0
		    || type != SOCK_STREAM)
			fatal("--listen-fd %d: not a stream socket",
			    listenfds[i]);
		fcntl(listenfds[i], F_SETFD, FD_CLOEXEC);
		util_set_nonblock(listenfds[i], true);
		wctx.listeners[wctx.nlisten++] = (struct listener){
		    .ev_kind = EV_LISTEN,
		    .fd = listenfds[i],
		    .is_from_fd = true,
		};
	}
	if (handoff_fd >= 0) {
		fcntl(handoff_fd, F_SETFD, FD_CLOEXEC);
		wctx.up = calloc(1, sizeof(*wctx.up));
		if (wctx.up == NULL)
			fatal("out of memory");
		wctx.up->ev_kind = EV_CHAN;
		wctx.up->fd = handoff_fd;
		wctx.up->is_up = true;
	}

	if (wctx.log_dir != NULL && mkdir_p(wctx.log_dir, 0750) < 0)
		log_warn("--log-dir %s: %s; app logs go to stderr", wctx.log_dir,
		    strerror(errno));
	pthread_mutex_init(&wctx.conns_lock, NULL);
	pthread_mutex_init(&wctx.procs_lock, NULL);
	wctx.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (wctx.epfd < 0)
		fatal("epoll_create1: %s", strerror(errno));
	/* HELLO before the apps import: the router may send connections at
	 * once, and they wait in the channel until the threads start. */
	if (router_fd >= 0 && wctx.app_process == NULL &&
	    front_open(router_fd) < 0)
		fatal("--router-fd %d: not a SEQPACKET socket", router_fd);
	/* Before the watcher thread starts: it owns the channel from then
	 * on.  An app's own process has no channel to lodged: it reports
	 * what it serves to its worker, which adds it to its own reports
	 * (stats.c). */
	if (lodged_fd >= 0 && wctx.app_process == NULL &&
	    stats_open(lodged_fd) < 0)
		fatal("--lodged-fd %d: not a SEQPACKET socket", lodged_fd);
	if (pyhost_init() < 0)
		return 1;
	if (wctx.app_process != NULL)
		return procmode_child_main();
	if (app_scan(wctx.apps_dir, NULL) < 0)
		return 1;
	if (wctx.napps == 0)
		log_warn("no app in %s (an app is a folder with wsgi.py, "
		    "app.wsgi or lodge.ini); every request gets 404",
		    wctx.apps_dir);

	for (i = 0; i < wctx.nlisten; i++) {
		struct listener *l = &wctx.listeners[i];
		struct epoll_event ev = {
		    .events = EPOLLIN | EPOLLONESHOT,
		    .data.ptr = l,
		};

		if (epoll_ctl(wctx.epfd, EPOLL_CTL_ADD, l->fd, &ev) < 0)
			fatal("epoll_ctl: %s", strerror(errno));
	}
	/* The watcher thread imports every app (and later reloads and ends
	 * them: see reload.c); serving starts once it is done. */
	if (reload_start() < 0)
		fatal("cannot start the watcher thread");
	worker_start_threads();
	/* The control socket comes last: a status answered by this process
	 * means it serves (a successor takes the path over only now). */
	if (wctx.control_path != NULL && control_open(wctx.control_path) < 0)
		fatal("--control %s: %s", wctx.control_path, strerror(errno));
	for (i = 0; i < nspecs; i++)
		log_info("listening on %s", listen_specs[i]);
	for (i = 0; i < nlistenfd; i++)
		log_info("listening on descriptor %d", listenfds[i]);
	if (wctx.router != NULL)
		log_info("serving the router channel (descriptor %d)", router_fd);
	log_info("ready: %d app(s), %d thread(s)", wctx.napps, wctx.nthreads);
	if (wctx.up != NULL) {
		/* Our predecessor waits for this to hand over and leave. */
		if (msg_send(wctx.up->fd, MSG_READY, NULL, 0, -1) < 0)
			log_warn("handoff: cannot tell the old process we are "
			    "ready: %s", strerror(errno));
		chan_add(wctx.up);
	}

	for (;;) {
		/* A quarter of a second: the resolution of --request-timeout. */
		struct timespec tick = {.tv_nsec = 250 * 1000 * 1000};
		int sig = sigtimedwait(&sigs, NULL, &tick);

		worker_timeout_sweep();
		if (atomic_load(&wctx.stop_asked))
			worker_drain_and_exit();
		if (sig < 0) {
			if (wctx.idle_exit_ms > 0 && worker_is_idle())
				worker_drain_and_exit();
			continue;
		}
		if (sig == SIGHUP) {
			/* Standalone: a graceful replacement of the process,
			 * as the launcher will ask for. */
			log_info("SIGHUP: replacing the worker process");
			reload_request_replace("SIGHUP received");
			continue;
		}
		log_info("%s received", sig == SIGTERM ? "SIGTERM" : "SIGINT");
		worker_drain_and_exit();
	}
}
