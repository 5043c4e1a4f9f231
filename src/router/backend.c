/*
 * backend.c: lodge-router's back side: the hosted users it has seen, a
 * bounded queue of routed requests per user, the workers' channels, and
 * handing each request over (MSG_FRONT with the connection's descriptor)
 * to the user's worker with the fewest requests in flight.  Runs in
 * lodge-router as the unprivileged "lodge" user under seccomp, on its one
 * thread.
 *
 * A worker runs a hosted user's code, so everything it sends is hostile:
 * msg.c checks sizes, types and descriptors; here a DONE may only close a
 * connection that was handed to that same worker, and any message a
 * worker has no business sending cuts it off (its channel closed, its
 * requests in flight answered 502, lodged told with BADPEER).  Sends to
 * a worker never block: a full channel leaves the request queued and the
 * worker is skipped until it reads.  Fairness between users comes from
 * the bounds: each user has its own queue (--queue-max, beyond it 503)
 * and its own cap of requests in flight (--inflight-max, beyond it the
 * request waits in that user's queue), so one user's flood or one user's
 * stuck app only ever fills that user's share.
 */
#include "router.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "log.h"
#include "msg.h"
#include "util.h"

/* Messages read from one worker per event, so a chatty worker cannot
 * keep the loop from everybody else. */
#define BACKEND_READ_BATCH 64
/* Messages per recvmmsg (a divisor of BACKEND_READ_BATCH). */
#define BACKEND_RECV_SLOTS 16

static unsigned name_hash(const char *s)
{
	unsigned h = 2166136261u;

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h & (ROUTER_USER_BUCKETS - 1);
}

static struct user *user_find(struct router *r, const char *name)
{
	struct user *u = r->user_hash[name_hash(name)];

	while (u != NULL && strcmp(u->name, name) != 0)
		u = u->hash_next;
	return u;
}

/* The user of that name, created on first sight; NULL without memory.
 * name is valid (msg_user_check). */
static struct user *user_get(struct router *r, const char *name)
{
	struct user *u = user_find(r, name);
	unsigned h;

	if (u != NULL)
		return u;
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return NULL;
	snprintf(u->name, sizeof(u->name), "%s", name);
	list_init(&u->queue);
	list_init(&u->workers);
	u->idle_since_ms = util_now_ms();
	h = name_hash(name);
	u->hash_next = r->user_hash[h];
	r->user_hash[h] = u;
	r->nusers++;
	r->is_tick_due = true;
	return u;
}

static void user_free(struct router *r, struct user *u)
{
	struct user **pp = &r->user_hash[name_hash(u->name)];

	while (*pp != NULL && *pp != u)
		pp = &(*pp)->hash_next;
	if (*pp == u)
		*pp = u->hash_next;
	r->nusers--;
	free(u);
}

/* u's queue or answers changed: it goes in the next MSG_QUEUES. */
static void user_changed(struct router *r, struct user *u)
{
	u->is_reportable = true;
	r->is_report_due = true;
}

/* A worker that may get new requests (maybe not right now: a blocked
 * one will, once its channel drains). */
static bool user_has_worker(const struct user *u)
{
	for (struct list_node *n = u->workers.next; n != &u->workers;
	     n = n->next) {
		const struct worker *w = LIST_ENTRY(n, struct worker, node);

		if (!w->is_draining)
			return true;
	}
	return false;
}

/* Asks lodged for a worker of u, unless it was asked less than every_ms
 * ago. */
static void user_ask_start(
    struct router *r, struct user *u, int64_t now, int64_t every_ms)
{
	if (u->last_start_ms != 0 && now - u->last_start_ms < every_ms)
		return;
	u->last_start_ms = now;
	log_info("router: user %s: %zu request(s) waiting, no worker; asking "
	         "lodged to start one",
	    u->name, u->nqueued);
	router_tell_lodged(r, MSG_START, u->name, strlen(u->name));
}

/* The worker of u to hand the next request to: the one with the fewest
 * requests in flight among those that take requests now. */
static struct worker *worker_pick(struct user *u)
{
	struct worker *best = NULL;

	for (struct list_node *n = u->workers.next; n != &u->workers;
	     n = n->next) {
		struct worker *w = LIST_ENTRY(n, struct worker, node);

		if (w->is_draining || w->is_blocked)
			continue;
		if (best == NULL || w->ninflight < best->ninflight)
			best = w;
	}
	return best;
}

static void worker_drop(struct router *r, struct worker *w, bool is_bad,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void worker_blocked(struct router *r, struct worker *w)
{
	w->is_blocked = true;
	router_poll(r, EPOLL_CTL_MOD, w->fd, EPOLLIN | EPOLLOUT, &w->ev);
}

/* Hands u's queued requests to its workers while they take them. */
static void user_dispatch(struct router *r, struct user *u)
{
	while (u->nqueued > 0 && u->ninflight < r->opts.inflight_max) {
		struct conn *c = LIST_ENTRY(u->queue.next, struct conn, node);
		struct worker *w = worker_pick(u);

		if (w == NULL)
			return;
		if (msg_send(w->fd, MSG_FRONT, c->front, c->front_len, c->fd) <
		    0) {
			switch (errno) {
			case EAGAIN:
				worker_blocked(r, w);
				continue;
			case EMSGSIZE:
				front_answer(r, c, 502,
				    "user %s: request too large "
				    "for the worker's channel",
				    u->name);
				continue;
			case ETOOMANYREFS:
				/* Too many descriptors in flight over all
				 * channels: the queue timer tries again. */
				log_warn(
				    "router: user %s: too many descriptors in "
				    "flight; request stays queued",
				    u->name);
				return;
			default:
				worker_drop(r, w, false, "send failed: %s",
				    strerror(errno));
				continue;
			}
		}
		/* Handed over: our copy of the descriptor stays open until
		 * the worker's DONE, to answer 502 if the worker dies. */
		list_remove(&c->node);
		list_remove(&c->timer);
		u->nqueued--;
		user_changed(r, u);
		free(c->front);
		c->front = NULL;
		c->front_len = 0;
		c->state = CONN_INFLIGHT;
		c->worker = w;
		list_append(&w->inflight, &c->node);
		w->ninflight++;
		u->ninflight++;
		log_debug("router: conn %u → worker %s (id %u), %zu in flight",
		    c->id, u->name, w->id, w->ninflight);
	}
}

void backend_conn_left(struct router *r, struct conn *c)
{
	struct user *u = c->user;

	list_remove(&c->node);
	if (c->state == CONN_QUEUED && u != NULL) {
		u->nqueued--;
		user_changed(r, u);
	} else if (c->state == CONN_INFLIGHT && c->worker != NULL) {
		c->worker->ninflight--;
		u->ninflight--;
	}
	if (u != NULL && u->nqueued == 0 && u->ninflight == 0)
		u->idle_since_ms = util_now_ms();
	c->user = NULL;
	c->worker = NULL;
}

void backend_submit(struct router *r, struct conn *c, const char *name)
{
	struct user *u = user_get(r, name);
	int64_t now = util_now_ms();

	if (u == NULL) {
		front_answer(r, c, 503, "user %s: out of memory", name);
		return;
	}
	/* The early answers below count as u's (answer_quiet). */
	c->user = u;
	/* lodged said a moment ago that this user has no worker to give:
	 * the same answer, without asking again for every request. */
	if (u->answer_status != 0 && now < u->answer_until_ms &&
	    !user_has_worker(u)) {
		front_answer(r, c, u->answer_status, "%s/%s: %s", u->name,
		    c->app,
		    u->answer_status == 404 ? "not a hosted user"
		                            : "no worker can be started now");
		return;
	}
	if (u->nqueued >= r->opts.queue_max) {
		front_answer(r, c, 503,
		    "%s/%s: queue full (%zu waiting, "
		    "--queue-max %u)",
		    u->name, c->app, u->nqueued, r->opts.queue_max);
		return;
	}
	c->state = CONN_QUEUED;
	c->since_ms = now;
	list_append(&r->queued, &c->timer);
	list_append(&u->queue, &c->node);
	u->nqueued++;
	user_changed(r, u);
	r->is_tick_due = true;
	log_debug("router: conn %u queued for %s/%s (%zu waiting)", c->id,
	    u->name, c->app, u->nqueued);
	user_dispatch(r, u);
	if (c->state == CONN_QUEUED && !user_has_worker(u))
		user_ask_start(r, u, now, ROUTER_START_EVERY_MS);
}

/* Answers every request waiting for u. */
static void user_answer_all(
    struct router *r, struct user *u, int status, const char *why)
{
	while (u->nqueued > 0) {
		struct conn *c = LIST_ENTRY(u->queue.next, struct conn, node);

		front_answer(r, c, status, "%s/%s: %s", u->name, c->app, why);
	}
}

void backend_user_failed(
    struct router *r, const char *name, int status, const char *why)
{
	struct user *u = user_find(r, name);

	if (u == NULL) {
		log_debug("router: %s for user %s, who has nothing waiting",
		    why, name);
		return;
	}
	u->answer_status = status;
	u->answer_until_ms = util_now_ms() + ROUTER_START_EVERY_MS;
	if (u->nqueued == 0)
		log_info("router: user %s: %s", name, why);
	user_answer_all(r, u, status, why);
}

/*
 * Ends a worker's channel.  Its requests in flight get a 502 on our copy
 * of their descriptors (it died with them, or it is no longer trusted
 * to answer them); a worker cut off for misbehaving is reported to
 * lodged, which ends it.  The user's waiting requests go to its other
 * workers, or wait for a new one.
 */
static void worker_drop(
    struct router *r, struct worker *w, bool is_bad, const char *fmt, ...)
{
	struct user *u = w->user;
	char why[256];
	va_list ap;

	if (w->ev.kind == EV_DEAD)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (is_bad)
		log_error("router: worker %s (id %u): %s; cut off", u->name,
		    w->id, why);
	else if (w->ninflight > 0 || !w->is_draining)
		log_warn(
		    "router: worker %s (id %u): %s, %zu request(s) in flight",
		    u->name, w->id, why, w->ninflight);
	else
		log_info("router: worker %s (id %u): %s", u->name, w->id, why);
	router_poll(r, EPOLL_CTL_DEL, w->fd, 0, NULL);
	close(w->fd);
	w->fd = -1;
	w->ev.kind = EV_DEAD;
	list_remove(&w->node);
	list_remove(&w->all);
	list_append(&r->dead_workers, &w->all);
	while (!list_is_empty(&w->inflight)) {
		struct conn *c =
		    LIST_ENTRY(w->inflight.next, struct conn, node);

		front_answer(r, c, 502, "%s/%s: worker (id %u) %s", u->name,
		    c->app, w->id, is_bad ? "cut off" : "gone");
	}
	if (is_bad) {
		struct msg_badpeer bp = {.id = w->id};

		router_tell_lodged(r, MSG_BADPEER, &bp, sizeof(bp));
	}
	user_dispatch(r, u);
	if (u->nqueued > 0 && !user_has_worker(u))
		user_ask_start(r, u, util_now_ms(), ROUTER_START_EVERY_MS);
	/* A user left without workers is forgotten after a while. */
	r->is_tick_due = true;
}

void backend_worker_new(struct router *r, uint32_t id, const char *name, int fd)
{
	struct user *u;
	struct worker *w;

	for (struct list_node *n = r->workers.next; n != &r->workers;
	     n = n->next) {
		if (LIST_ENTRY(n, struct worker, all)->id == id) {
			log_warn(
			    "router: lodged sent worker id %u again; the new "
			    "channel is closed",
			    id);
			close(fd);
			return;
		}
	}
	u = user_get(r, name);
	w = u != NULL ? calloc(1, sizeof(*w)) : NULL;
	if (w == NULL || util_set_nonblock(fd, true) < 0) {
		log_error("router: worker %s (id %u): %s; channel closed", name,
		    id, w == NULL ? "out of memory" : strerror(errno));
		free(w);
		close(fd);
		return;
	}
	w->ev.kind = EV_WORKER;
	w->fd = fd;
	w->id = id;
	w->user = u;
	list_init(&w->inflight);
	if (router_poll(r, EPOLL_CTL_ADD, fd, EPOLLIN, &w->ev) < 0) {
		free(w);
		close(fd);
		return;
	}
	list_append(&u->workers, &w->node);
	list_append(&r->workers, &w->all);
	u->answer_status = 0;
	log_info("router: worker %s (id %u) connected, %zu request(s) waiting",
	    u->name, id, u->nqueued);
	user_dispatch(r, u);
}

/* Sends our DRAIN answer; false if the channel is full (retried on
 * EPOLLOUT) or broken (the worker is dropped). */
static bool worker_drain_answer(struct router *r, struct worker *w)
{
	if (msg_send(w->fd, MSG_DRAIN, NULL, 0, -1) == 0) {
		w->has_drain_due = false;
		return true;
	}
	if (errno == EAGAIN) {
		w->has_drain_due = true;
		worker_blocked(r, w);
		return false;
	}
	worker_drop(r, w, false, "DRAIN answer failed: %s", strerror(errno));
	return false;
}

/* One message from a worker; false when the worker was dropped. */
static bool worker_message(
    struct router *r, struct worker *w, const struct msg *m)
{
	struct user *u = w->user;
	struct msg_hello hello;
	struct msg_done done;
	struct conn *c;

	switch (m->type) {
	case MSG_HELLO:
		/* A worker replaced by a successor shares the channel with
		 * it, so a second HELLO is a new process, not an error. */
		memcpy(&hello, m->payload, sizeof(hello));
		if (hello.version != LODGE_PROTO_VERSION) {
			worker_drop(r, w, true,
			    "bad message (HELLO for protocol "
			    "version %u, not %d)",
			    hello.version, LODGE_PROTO_VERSION);
			return false;
		}
		log_info("router: worker %s (id %u) is pid %u%s", u->name,
		    w->id, hello.pid, w->has_hello ? " (a successor)" : "");
		w->has_hello = true;
		w->pid = (pid_t)hello.pid;
		return true;
	case MSG_DONE:
		memcpy(&done, m->payload, sizeof(done));
		c = front_find(r, done.id);
		/* Only the worker that was given a connection may end it; any
		 * other id is ignored (it may be from before a restart of
		 * the router). */
		if (c == NULL || c->state != CONN_INFLIGHT || c->worker != w) {
			log_debug("router: worker %s (id %u): DONE for unknown "
			          "conn %u, ignored",
			    u->name, w->id, done.id);
			return true;
		}
		front_close(r, c);
		return true;
	case MSG_DRAIN:
		if (!w->is_draining)
			log_info(
			    "router: worker %s (id %u) is leaving (DRAIN), "
			    "%zu request(s) in flight",
			    u->name, w->id, w->ninflight);
		w->is_draining = true;
		if (!worker_drain_answer(r, w))
			return w->ev.kind != EV_DEAD;
		if (u->nqueued > 0 && !user_has_worker(u))
			user_ask_start(
			    r, u, util_now_ms(), ROUTER_START_EVERY_MS);
		return true;
	default:
		if (m->fd >= 0)
			close(m->fd);
		worker_drop(r, w, true,
		    "bad message (a worker does not send "
		    "type %d)",
		    (int)m->type);
		return false;
	}
}

void backend_worker_event(struct router *r, struct worker *w, uint32_t events)
{
	struct user *u = w->user;

	if (events & EPOLLOUT) {
		w->is_blocked = false;
		router_poll(r, EPOLL_CTL_MOD, w->fd, EPOLLIN, &w->ev);
		if (w->has_drain_due && !worker_drain_answer(r, w))
			return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		/* A worker sends only small messages (HELLO, DONE, DRAIN), a
		 * DONE per request: they are read many per recvmmsg, and a
		 * short batch says the channel is empty without one more
		 * call to find EAGAIN. */
		static struct msg_small slots[BACKEND_RECV_SLOTS];

		for (int i = 0; i < BACKEND_READ_BATCH / BACKEND_RECV_SLOTS;
		     i++) {
			int n = msg_recv_small(w->fd, slots, BACKEND_RECV_SLOTS);

			if (n < 0 && errno == EAGAIN)
				break;
			if (n < 0) {
				worker_drop(r, w, false, "channel: %s",
				    strerror(errno));
				return;
			}
			if (n == 0) {
				worker_drop(r, w, false, "channel closed");
				return;
			}
			for (int k = 0; k < n; k++) {
				struct msg_small *s = &slots[k];

				if (s->rc == -2) {
					worker_drop(r, w, true,
					    "bad message (%s)", s->why);
					return;
				}
				if (s->rc == 0) {
					worker_drop(
					    r, w, false, "channel closed");
					return;
				}
				if (!worker_message(r, w, &s->m)) {
					/* Dropped: what followed is not
					 * looked at; its descriptors go. */
					for (k++; k < n; k++)
						if (slots[k].rc == 1 &&
						    slots[k].m.fd >= 0)
							close(slots[k].m.fd);
					return;
				}
			}
			if (n < BACKEND_RECV_SLOTS)
				break;
		}
	}
	user_dispatch(r, u);
}

int64_t backend_timers(struct router *r, int64_t now)
{
	int64_t next = 0;
	int64_t timeout = (int64_t)r->opts.queue_timeout_s * 1000;

	while (!list_is_empty(&r->queued)) {
		struct conn *c = LIST_ENTRY(r->queued.next, struct conn, timer);

		if (c->since_ms + timeout > now) {
			next = c->since_ms + timeout;
			break;
		}
		front_answer(r, c, 504,
		    "%s/%s: no worker took the request in "
		    "%u s",
		    c->user->name, c->app, r->opts.queue_timeout_s);
	}
	if (!r->is_tick_due)
		return next;
	if (now >= r->next_tick) {
		/* The tick is only armed while a user has requests waiting
		 * or may be forgotten: an idle router sleeps. */
		r->is_tick_due = false;
		r->next_tick = now + ROUTER_TICK_MS;
		for (size_t b = 0; b < ROUTER_USER_BUCKETS; b++) {
			struct user *u = r->user_hash[b], *unext;

			for (; u != NULL; u = unext) {
				unext = u->hash_next;
				if (u->nqueued > 0) {
					user_dispatch(r, u);
					if (u->nqueued > 0 &&
					    !user_has_worker(u))
						user_ask_start(r, u, now,
						    ROUTER_START_AGAIN_MS);
					r->is_tick_due = true;
				} else if (list_is_empty(&u->workers) &&
				           u->ninflight == 0) {
					/* Forgotten once idle long enough and
					 * reported (backend_report). */
					if (!u->is_reportable &&
					    now - u->idle_since_ms >=
					        ROUTER_USER_IDLE_MS)
						user_free(r, u);
					else
						r->is_tick_due = true;
				}
			}
		}
		if (!r->is_tick_due)
			return next;
	}
	return next == 0 || r->next_tick < next ? r->next_tick : next;
}

void backend_flush(struct router *r, int status, const char *why)
{
	while (!list_is_empty(&r->queued)) {
		struct conn *c = LIST_ENTRY(r->queued.next, struct conn, timer);

		front_answer(
		    r, c, status, "%s/%s: %s", c->user->name, c->app, why);
	}
}

void backend_reap(struct router *r)
{
	while (!list_is_empty(&r->dead_workers)) {
		struct worker *w =
		    LIST_ENTRY(r->dead_workers.next, struct worker, all);

		list_remove(&w->all);
		free(w);
	}
}

/* The index of status in MSG_QUEUES_STATUSES, or the last ("other"). */
static int answer_index(int status)
{
	static const int statuses[] = MSG_QUEUES_STATUSES;
	int i = 0;

	while (i < MSG_QUEUES_NSTATUS - 1 && statuses[i] != status)
		i++;
	return i;
}

void backend_count_answer(struct router *r, struct user *u, int status)
{
	uint64_t *answers = u != NULL ? u->answers : r->answers;

	answers[answer_index(status)]++;
	if (u != NULL)
		user_changed(r, u);
	else
		r->is_report_due = true;
}

/* Sends the MSG_QUEUES in buf (its record, and n users: those of
 * in_buf); once sent, what it counted is forgotten.  0 or -1. */
static int report_sent(
    struct router *r, uint8_t *buf, uint32_t n, struct user **in_buf)
{
	struct msg_queues q;

	memcpy(&q, buf, sizeof(q));
	q.nusers = n;
	memcpy(buf, &q, sizeof(q));
	if (router_tell_lodged(r, MSG_QUEUES, buf,
	        sizeof(q) + (size_t)n * sizeof(struct msg_queue_user)) < 0)
		return -1;
	if (q.flags & MSG_QUEUES_FIRST)
		memset(r->answers, 0, sizeof(r->answers));
	for (uint32_t i = 0; i < n; i++) {
		memset(in_buf[i]->answers, 0, sizeof(in_buf[i]->answers));
		in_buf[i]->is_reportable = false;
	}
	return 0;
}

/*
 * The report: our answers to no user's requests, then each user to
 * report (requests waiting, or a queue or answers changed since the
 * last report), split over several messages past MSG_QUEUES_MAX_USERS.
 * What a message carried is forgotten once it is sent; what a full
 * channel refused stays for the next report.  A user reported with 0
 * waiting and no answers stops being reportable, and may be forgotten.
 */
static void report(struct router *r)
{
	static uint8_t buf[sizeof(struct msg_queues) +
	    MSG_QUEUES_MAX_USERS * sizeof(struct msg_queue_user)];
	static struct user *in_buf[MSG_QUEUES_MAX_USERS];
	struct msg_queues q = {.flags = MSG_QUEUES_FIRST};
	uint32_t n = 0;
	bool is_ok = true;

	memcpy(q.answers, r->answers, sizeof(q.answers));
	memcpy(buf, &q, sizeof(q));
	for (size_t b = 0; b < ROUTER_USER_BUCKETS; b++) {
		for (struct user *u = r->user_hash[b]; u != NULL;
		     u = u->hash_next) {
			struct msg_queue_user mu = {.queued = (uint32_t)u->nqueued};

			if (!u->is_reportable && u->nqueued == 0)
				continue;
			snprintf(mu.name, sizeof(mu.name), "%s", u->name);
			memcpy(mu.answers, u->answers, sizeof(mu.answers));
			memcpy(buf + sizeof(q) + n * sizeof(mu), &mu,
			    sizeof(mu));
			in_buf[n++] = u;
			if (n < MSG_QUEUES_MAX_USERS)
				continue;
			if (report_sent(r, buf, n, in_buf) < 0)
				is_ok = false;
			/* The next messages continue the report. */
			memset(buf, 0, sizeof(q));
			n = 0;
		}
	}
	if (report_sent(r, buf, n, in_buf) < 0)
		is_ok = false;
	r->is_report_due = !is_ok;
}

int64_t backend_report(struct router *r, int64_t now, bool is_final)
{
	if (!r->is_report_due)
		return 0;
	if (!is_final && now - r->last_report_ms < ROUTER_REPORT_MS)
		return r->last_report_ms + ROUTER_REPORT_MS;
	r->last_report_ms = now;
	report(r);
	return r->is_report_due ? now + ROUTER_REPORT_MS : 0;
}
