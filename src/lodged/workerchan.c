/*
 * workerchan.c: lodged's channel to each worker process (--lodged-fd, a
 * SOCK_SEQPACKET socketpair made at the worker's birth by supervise.c).
 * The worker reports on it (MSG_STATS: requests by status class and
 * latency, its apps' modes, versions and last reloads), at most once a
 * second and right after a reload; lodged keeps the last report of each
 * slot for lodgectl status and metrics (control_status.c), and asks for
 * one app's reload on it (MSG_RELOAD_APP, lodgectl reload USER/APP).
 *
 * Runs in lodged as root.  A worker runs a hosted user's code, so what it
 * sends is checked as a hostile peer's (msg_recv, msg_stats_decode) and
 * only ever copied, counted and shown; a worker that sends garbage may be
 * compromised, and is killed (a crash, with its backoff).  The channel is
 * non-blocking both ways: a worker that does not read never holds lodged
 * up.  Counts of processes that ended, or were replaced by a successor
 * (a new pid on the same channel), join the user's totals, so that
 * lodged's counters only grow over its life.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lodged.h"
#include "log.h"
#include "msg.h"

#define WORKERCHAN_MAX_READ 16 /* messages per event: others wait */

static struct lodged_slot *workerchan_slot(struct lodged_wchan *w)
{
	return (struct lodged_slot *)((char *)w -
	    offsetof(struct lodged_slot, wchan));
}

/* Adds what a report counted to t. */
static void workerchan_add(struct lodged_wtotals *t, const struct msg_stats *st,
    const struct msg_stats_app *apps)
{
	t->served += st->served;
	for (int i = 0; i < MSG_STATS_NCLASSES; i++)
		t->status[i] += st->status[i];
	for (int i = 0; i < MSG_STATS_NBUCKETS; i++)
		t->buckets[i] += st->buckets[i];
	t->latency_sum_us += st->latency_sum_us;
	for (uint32_t i = 0; i < st->napps; i++) {
		t->reloads_ok += apps[i].reloads_ok;
		t->reloads_failed += apps[i].reloads_failed;
	}
}

/* The report of w's process is final (it ended, or a successor took
 * over): into the user's totals, and forgotten. */
static void workerchan_retire(struct lodged_wchan *w)
{
	if (!w->has_stats)
		return;
	workerchan_add(&w->user->ended, &w->stats, w->apps);
	w->has_stats = false;
	w->has_retired = true;
	w->retired_pid = w->stats.pid;
	free(w->apps);
	w->apps = NULL;
}

void workerchan_open(struct lodged_ctx *ctx, struct lodged_user *u,
    struct lodged_slot *s, int fd)
{
	struct lodged_wchan *w = &s->wchan;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->ev};

	w->ev = LODGED_EV_WORKER_CHAN;
	w->user = u;
	w->fd = -1;
	w->has_stats = false;
	w->has_retired = false;
	if (fd < 0)
		return;
	if (util_set_nonblock(fd, true) < 0 ||
	    epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_warn("worker %s (pid %d): its channel to lodged cannot be "
		         "watched: %s; lodgectl shows no requests for it",
		    u->cu.name, (int)s->pid, strerror(errno));
		close(fd);
		return;
	}
	w->fd = fd;
}

void workerchan_close(struct lodged_ctx *ctx, struct lodged_slot *s)
{
	struct lodged_wchan *w = &s->wchan;

	if (w->user == NULL)
		return; /* never opened */
	workerchan_retire(w);
	if (w->fd >= 0) {
		/* Out of the set first: a copy of the descriptor in a child
		 * being born would keep the registration, and its events
		 * would point here. */
		epoll_ctl(ctx->epfd, EPOLL_CTL_DEL, w->fd, NULL);
		close(w->fd);
		w->fd = -1;
	}
}

/* A report: checked, then kept.  0, or -1 with *errstr_r. */
static int workerchan_stats(struct lodged_wchan *w, const struct msg *m,
    const char **errstr_r)
{
	struct msg_stats st;
	struct msg_stats_app *apps = NULL;

	if (m->type != MSG_STATS) {
		*errstr_r = "a message a worker never sends to lodged";
		return -1;
	}
	if (msg_stats_decode(m, &st, NULL, errstr_r) < 0)
		return -1;
	/* Both processes report for a moment while a successor takes
	 * over: the old one's counts are already in the totals. */
	if (w->has_retired && st.pid == w->retired_pid)
		return 0;
	if (st.napps > 0) {
		apps = calloc(st.napps, sizeof(*apps));
		if (apps == NULL) {
			log_warn("worker %s: out of memory for its stats; "
			         "dropped",
			    w->user->cu.name);
			return 0;
		}
		if (msg_stats_decode(m, &st, apps, errstr_r) < 0) {
			free(apps);
			return -1;
		}
	}
	/* Another pid: a successor took over the channel, and the old
	 * process's counts are final. */
	if (w->has_stats && w->stats.pid != st.pid)
		workerchan_retire(w);
	free(w->apps);
	w->stats = st;
	w->apps = apps;
	w->has_stats = true;
	return 0;
}

void workerchan_event(struct lodged_ctx *ctx, enum lodged_ev *ev)
{
	static uint8_t buf[sizeof(struct msg_hdr) + MSG_MAX_PAYLOAD];
	struct lodged_wchan *w = (struct lodged_wchan *)ev;
	struct lodged_slot *s = workerchan_slot(w);

	for (int i = 0; i < WORKERCHAN_MAX_READ && w->fd >= 0; i++) {
		const char *err = NULL;
		struct msg m;
		int rc = msg_recv(w->fd, buf, sizeof(buf), &m, &err);

		if (rc == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == EINTR))
			return;
		if (rc == 1) {
			if (m.fd >= 0)
				close(m.fd); /* msg_decode allows none: never */
			if (workerchan_stats(w, &m, &err) == 0)
				continue;
			rc = -2;
		}
		if (rc == -2) {
			/* Its code may have taken the worker over: kill it
			 * (a crash: it restarts with a backoff). */
			log_error("worker %s (pid %d): bad stats message (%s); "
			          "killing it",
			    w->user->cu.name, (int)s->pid, err);
			if (s->pid != 0)
				kill(s->pid, SIGKILL);
		} else if (rc == -1) {
			log_warn("worker %s (pid %d): its channel to lodged: "
			         "%s",
			    w->user->cu.name, (int)s->pid, strerror(errno));
		}
		/* EOF: the worker is leaving.  Its reaping follows. */
		workerchan_close(ctx, s);
		return;
	}
}

int workerchan_reload_app(struct lodged_slot *s, const char *app)
{
	if (s->pid == 0 || s->wchan.fd < 0) {
		errno = ENOTCONN;
		return -1;
	}
	return msg_send(s->wchan.fd, MSG_RELOAD_APP, app, strlen(app), -1);
}

void workerchan_totals(const struct lodged_user *u,
    struct lodged_wtotals *t, uint64_t *inflight_r)
{
	*t = u->ended;
	*inflight_r = 0;
	for (unsigned i = 0; i < CONF_MAX_PROCESSES; i++) {
		const struct lodged_wchan *w = &u->slots[i].wchan;

		if (!w->has_stats)
			continue;
		workerchan_add(t, &w->stats, w->apps);
		*inflight_r += w->stats.inflight;
	}
}

const struct lodged_slot *workerchan_newest(const struct lodged_user *u)
{
	const struct lodged_slot *best = NULL;

	for (unsigned i = 0; i < CONF_MAX_PROCESSES; i++) {
		const struct lodged_slot *s = &u->slots[i];

		if (s->pid != 0 && s->wchan.has_stats &&
		    (best == NULL || s->id > best->id))
			best = s;
	}
	return best;
}
