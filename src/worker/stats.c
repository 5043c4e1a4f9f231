/*
 * stats.c: what lodge-worker tells lodged about itself, so that lodgectl
 * status and metrics can show it: requests served and in flight, counts by
 * status class, a latency histogram, and for each app its mode, the
 * version serving and its last reload (when, ok or failed and why).  And
 * the other way: lodged asks for one app's reload (lodgectl reload
 * USER/APP) with MSG_RELOAD_APP.
 *
 * Runs in lodge-worker as the hosted user.  The serving threads count
 * each request with a few atomic additions and nothing else (no lock, no
 * system call but the clock).  The watcher thread (reload.c) owns the
 * channel: it is the only writer of the apps' reload records, so a
 * snapshot it takes is never half-updated, and it already wakes at least
 * once a second.  It sends a MSG_STATS when something changed: at once
 * after a reload, else at most once a second; the channel is non-blocking
 * and a full one skips the turn, so a stuck lodged never holds up a reload.
 * What lodged sends is checked by msg_recv; lodged is trusted, but a
 * message the worker does not understand is logged and dropped, never
 * fatal.  A successor (handoff.c) inherits the channel; this process stops
 * using it once the successor is ready.
 *
 * A process-mode app's own process (procmode.c) serves the requests
 * handed to it and counts them here, in its own copy of these counters;
 * the worker that handed them over counts none of them (STATS_HANDED).
 * It has no channel to lodged: its main thread sends the same MSG_STATS
 * (its one app) up its channel to that worker, when something changed and
 * at most once a second, and once more as it leaves; non-blocking, so a
 * worker that is behind costs a turn, never a serving thread.  The worker
 * checks each report as a hostile peer's (the process runs the user's
 * code), keeps the last one of each live app process, and its own report
 * adds them; when an app process ends (drained after a reload, crashed,
 * cut off) its last report joins the worker's own counters, all under
 * wctx.procs_lock, so that no report of ours ever counts it twice or
 * not at all, and the totals never go back.
 */
#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "worker.h"

#define STATS_PERIOD_MS 1000
#define STATS_MAX_READ 64 /* messages read per turn: the watcher has work */
/* More requests than an app's process can serve in its life: a report
 * above it is a lie, and the bound keeps our sums from wrapping. */
#define STATS_PROC_MAX_SERVED (1ULL << 48)

static const uint64_t stats_bounds_us[MSG_STATS_NBOUNDS] = MSG_STATS_BOUNDS_US;

/*
 * The counters (any serving thread, atomically) and the channel (the
 * main thread sets fd before the watcher starts; from then on the watcher
 * thread alone uses the rest).  In an app's own process, which has no
 * channel to lodged, the snapshot fields serve its reports up to the
 * worker instead, under up_lock (its main thread sends them, and the
 * thread that makes it leave sends the last).  File-local like reload.c's
 * watcher state: nothing outside this file touches it.
 */
static struct {
	atomic_uint inflight;
	atomic_ullong status[MSG_STATS_NCLASSES];
	atomic_ullong buckets[MSG_STATS_NBUCKETS];
	atomic_ullong latency_sum_us;

	int fd;              /* -1: no channel (standalone, or handed over) */
	int64_t last_push_ms; /* monotonic; 0: never */
	uint64_t reload_sig;  /* of the apps' reload records last sent */
	size_t last_len;
	uint8_t last[sizeof(struct msg_stats) +
	    MSG_STATS_MAX_APPS * sizeof(struct msg_stats_app)];
	uint8_t out[sizeof(struct msg_stats) +
	    MSG_STATS_MAX_APPS * sizeof(struct msg_stats_app)];
	uint8_t in[sizeof(struct msg_hdr) + MSG_MAX_PAYLOAD];

	pthread_mutex_t up_lock;
	bool is_up_broken; /* a send up failed for good: said once */
} stats = {.fd = -1, .up_lock = PTHREAD_MUTEX_INITIALIZER};

static int64_t stats_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int stats_open(int fd)
{
	int type = 0;
	socklen_t tl = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
	    type != SOCK_SEQPACKET) {
		errno = ENOTSOCK;
		return -1;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	/* Sends never wait: a full channel means lodged is behind, and the
	 * next turn sends fresher figures anyway. */
	util_set_nonblock(fd, true);
	stats.fd = fd;
	return 0;
}

int stats_fd(void)
{
	return stats.fd;
}

int stats_inherit_fd(void)
{
	return stats.fd;
}

int64_t stats_begin(void)
{
	atomic_fetch_add_explicit(&stats.inflight, 1, memory_order_relaxed);
	return stats_now_us();
}

void stats_end(struct app *app, int status, int64_t started)
{
	int64_t took = stats_now_us() - started;
	int b = 0;

	atomic_fetch_sub_explicit(&stats.inflight, 1, memory_order_relaxed);
	if (status == STATS_HANDED)
		return;
	if (took < 0)
		took = 0;
	while (b < MSG_STATS_NBOUNDS && (uint64_t)took > stats_bounds_us[b])
		b++;
	if (status >= 100 && status < 100 * (MSG_STATS_NCLASSES + 1))
		atomic_fetch_add_explicit(&stats.status[status / 100 - 1], 1,
		    memory_order_relaxed);
	atomic_fetch_add_explicit(&stats.latency_sum_us, (uint64_t)took,
	    memory_order_relaxed);
	if (app != NULL)
		atomic_fetch_add_explicit(&app->nrequests, 1,
		    memory_order_relaxed);
	/* Last: served is the buckets' sum, so a snapshot never counts a
	 * request served before its status class is. */
	atomic_fetch_add_explicit(&stats.buckets[b], 1, memory_order_release);
}

/* Copies s into a field of size bytes: printable ASCII only (anything
 * else becomes '?'), cut to fit, NUL-padded (proto.h's rule). */
static void stats_copy_str(char *field, size_t size, const char *s)
{
	size_t i;

	memset(field, 0, size);
	for (i = 0; s != NULL && s[i] != '\0' && i < size - 1; i++) {
		unsigned char ch = (unsigned char)s[i];

		field[i] = ch >= 0x20 && ch <= 0x7e ? (char)ch : '?';
	}
}

/* The app record of app, as of now (watcher thread).  Returns a number
 * that changes when its version or last reload does. */
static uint64_t stats_app(struct app *app, struct msg_stats_app *a)
{
	struct app_gen *gen = atomic_load(&app->current);
	struct appproc *proc = atomic_load(&app->proc);
	bool is_ok = app->is_process_mode ? proc != NULL : gen != NULL;
	const char *reason = "";

	memset(a, 0, sizeof(*a));
	stats_copy_str(a->name, sizeof(a->name), app->name);
	a->mode = app->is_process_mode ? MSG_STATS_MODE_PROCESS :
	    MSG_STATS_MODE_SUB;
	a->state = is_ok ? MSG_STATS_APP_OK : MSG_STATS_APP_BROKEN;
	if (app->is_process_mode)
		a->version = proc != NULL && app->proc_version > 0 ?
		    (uint32_t)app->proc_version : 0;
	else
		a->version = gen != NULL ? (uint32_t)gen->version : 0;
	a->last_reload_ms = app->last.when_ms > 0 ? app->last.when_ms : 0;
	a->is_last_ok = a->last_reload_ms != 0 && app->last.is_ok;
	a->reloads_ok = (uint32_t)app->reloads_ok;
	a->reloads_failed = (uint32_t)app->reloads_failed;
	a->requests = atomic_load_explicit(&app->nrequests,
	    memory_order_relaxed);
	/* One reason: why the last reload failed, else why it is broken. */
	if (a->last_reload_ms != 0 && !app->last.is_ok)
		reason = app->last.reason;
	else if (!is_ok)
		reason = app->reason;
	stats_copy_str(a->reason, sizeof(a->reason), reason);
	return (uint64_t)a->last_reload_ms * 31 + a->version * 7u + a->mode +
	    a->state * 3u + a->reloads_ok + a->reloads_failed;
}

/* Adds an app process's last report r to st, unless the sum would
 * wrap (only reports that lied could make it). */
static void stats_add(struct msg_stats *st, const struct msg_stats *r)
{
	if (st->served + r->served < st->served)
		return;
	/* Each bucket is at most its served: none of them wraps either. */
	st->served += r->served;
	for (int i = 0; i < MSG_STATS_NBUCKETS; i++)
		st->buckets[i] += r->buckets[i];
	for (int i = 0; i < MSG_STATS_NCLASSES; i++)
		st->status[i] += r->status[i];
	st->latency_sum_us += r->latency_sum_us;
	st->inflight += r->inflight;
}

/* Builds the MSG_STATS payload in stats.out; its length. */
static size_t stats_encode(uint64_t *reload_sig_r)
{
	struct msg_stats st = {.pid = (uint32_t)getpid()};
	uint64_t sig = 0;
	int napps = wctx.napps < MSG_STATS_MAX_APPS ? wctx.napps :
	    MSG_STATS_MAX_APPS;

	/* The whole snapshot under procs_lock: an app process that ends
	 * moves its counts to ours under it too (stats_proc_ended), so
	 * they are here exactly once. */
	pthread_mutex_lock(&wctx.procs_lock);
	/* The buckets first (acquire): a request seen there had its other
	 * counters added before (stats_end's order). */
	for (int i = 0; i < MSG_STATS_NBUCKETS; i++) {
		st.buckets[i] = atomic_load_explicit(&stats.buckets[i],
		    memory_order_acquire);
		st.served += st.buckets[i];
	}
	for (int i = 0; i < MSG_STATS_NCLASSES; i++)
		st.status[i] = atomic_load_explicit(&stats.status[i],
		    memory_order_relaxed);
	st.latency_sum_us = atomic_load_explicit(&stats.latency_sum_us,
	    memory_order_relaxed);
	st.inflight = atomic_load_explicit(&stats.inflight,
	    memory_order_relaxed);
	/* The requests our app processes served (the handed-over ones,
	 * which we did not count), as they last reported. */
	for (struct appproc *p = wctx.procs; p != NULL; p = p->next)
		stats_add(&st, &p->report);
	st.napps = (uint32_t)napps;
	memcpy(stats.out, &st, sizeof(st));
	for (int i = 0; i < napps; i++) {
		struct msg_stats_app a;

		sig = sig * 1000003u + stats_app(wctx.apps[i], &a);
		for (struct appproc *p = wctx.procs; p != NULL; p = p->next)
			if (p->app == wctx.apps[i])
				a.requests += p->report_requests;
		memcpy(stats.out + sizeof(st) + (size_t)i * sizeof(a), &a,
		    sizeof(a));
	}
	pthread_mutex_unlock(&wctx.procs_lock);
	*reload_sig_r = sig;
	return sizeof(st) + (size_t)napps * sizeof(struct msg_stats_app);
}

/* msg_send's framing, but never waiting (MSG_DONTWAIT), whatever the
 * socket's mode: the channel up from an app's process is blocking for the
 * connections it hands back.  0, or -1 (errno). */
static int stats_send(int fd, size_t len)
{
	struct msg_hdr h = {.type = MSG_STATS, .len = (uint32_t)len};
	struct iovec iov[2] = {
	    {.iov_base = &h, .iov_len = sizeof(h)},
	    {.iov_base = stats.out, .iov_len = len},
	};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};

	for (;;) {
		if (sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

/* Sends the snapshot on fd if it changed.  is_forced: even within the
 * second.  0 (sent, unchanged, or the channel is full: the next turn),
 * or -1 (errno) if the channel broke. */
static int stats_push(int fd, bool is_forced)
{
	int64_t now = util_now_ms();
	uint64_t sig;
	size_t len;

	len = stats_encode(&sig);
	if (!is_forced && sig != stats.reload_sig)
		is_forced = true; /* a reload: lodgectl shows it at once */
	if (!is_forced && now - stats.last_push_ms < STATS_PERIOD_MS)
		return 0;
	if (len == stats.last_len && memcmp(stats.out, stats.last, len) == 0)
		return 0;
	if (stats_send(fd, len) < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
			return 0; /* the reader is behind: the next turn */
		return -1;
	}
	stats.last_push_ms = now;
	stats.reload_sig = sig;
	stats.last_len = len;
	memcpy(stats.last, stats.out, len);
	return 0;
}

/* To lodged (watcher thread). */
static void stats_push_lodged(bool is_forced)
{
	if (stats.fd < 0 || stats_push(stats.fd, is_forced) == 0)
		return;
	log_warn("lodged channel: cannot send the stats: %s; no more stats "
	    "for lodged", strerror(errno));
	close(stats.fd);
	stats.fd = -1;
}

int stats_tick(void)
{
	int64_t left;

	if (stats.fd < 0)
		return STATS_PERIOD_MS;
	stats_push_lodged(false);
	left = stats.last_push_ms + STATS_PERIOD_MS - util_now_ms();
	return left <= 0 ? STATS_PERIOD_MS : (int)left;
}

void stats_handover(void)
{
	if (stats.fd < 0)
		return;
	stats_push_lodged(true);
	/* Not closed: the descriptor number must not be reused while the
	 * watcher's poll may still hold it this turn; -1 makes us forget
	 * it.  The successor has its own copy. */
	log_info("lodged channel: the new process reports from now on");
	stats.fd = -1;
}

/* One message from lodged. */
static void stats_message(const struct msg *m)
{
	char name[MSG_MAX_APP + 1];
	struct app *app;

	if (m->fd >= 0)
		close(m->fd);
	if (m->type != MSG_RELOAD_APP) {
		log_warn("lodged channel: unexpected message type %d; ignored",
		    (int)m->type);
		return;
	}
	/* msg_decode checked the name (MSG_MAX_APP bytes at most). */
	memcpy(name, m->payload, m->len);
	name[m->len] = '\0';
	app = app_find(name, m->len);
	if (app == NULL) {
		log_warn("lodged asked for a reload of app '%s', which this "
		    "worker does not serve; ignored", name);
		return;
	}
	log_info("app %s: reload asked by lodged (lodgectl reload)",
	    app->name);
	reload_request(app);
}

void stats_readable(void)
{
	for (int i = 0; i < STATS_MAX_READ && stats.fd >= 0; i++) {
		const char *err = NULL;
		struct msg m;
		int rc = msg_recv(stats.fd, stats.in, sizeof(stats.in), &m, &err);

		if (rc == 1) {
			stats_message(&m);
			continue;
		}
		if (rc == -2) {
			log_warn("lodged channel: bad message (%s); ignored",
			    err);
			continue;
		}
		if (rc == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == EINTR))
			return;
		/* lodged closed its end (it is stopping), or the socket
		 * broke: nobody to report to. */
		if (rc == 0)
			log_info("lodged channel: closed by lodged");
		else
			log_warn("lodged channel: %s; no more stats for lodged",
			    strerror(errno));
		close(stats.fd);
		stats.fd = -1;
	}
}

/* ---- a process-mode app's own process, and the worker that routes ---- */

/* Up the channel to the worker that routes to us. */
static void stats_up_push(bool is_forced)
{
	if (wctx.app_process == NULL || wctx.up == NULL)
		return;
	pthread_mutex_lock(&stats.up_lock);
	if (!stats.is_up_broken && stats_push(wctx.up->fd, is_forced) < 0) {
		/* The worker is gone (handoff.c notices and exits us) or the
		 * channel broke: our counts can't reach anybody. */
		log_warn("cannot report to the worker: %s; no more reports",
		    strerror(errno));
		stats.is_up_broken = true;
	}
	pthread_mutex_unlock(&stats.up_lock);
}

void stats_up_tick(void)
{
	stats_up_push(false);
}

void stats_up_final(void)
{
	stats_up_push(true);
}

/* A process's counters only grow: is now a later report than was? */
static bool stats_grew(const struct msg_stats *was, uint64_t was_requests,
    const struct msg_stats *now, uint64_t now_requests)
{
	for (int i = 0; i < MSG_STATS_NBUCKETS; i++)
		if (now->buckets[i] < was->buckets[i])
			return false;
	for (int i = 0; i < MSG_STATS_NCLASSES; i++)
		if (now->status[i] < was->status[i])
			return false;
	return now->latency_sum_us >= was->latency_sum_us &&
	    now_requests >= was_requests;
}

int stats_proc_report(struct appproc *p, const struct msg *m,
    const char **errstr_r)
{
	struct msg_stats st;
	struct msg_stats_app a;
	uint64_t requests = 0;
	bool is_later;

	/* The records first (apps NULL): the app records only once we know
	 * there is at most one, the room we have. */
	if (msg_stats_decode(m, &st, NULL, errstr_r) < 0)
		return -1;
	if (st.napps > 1) {
		*errstr_r = "STATS from an app's process with more than its app";
		return -1;
	}
	if (st.napps == 1) {
		if (msg_stats_decode(m, &st, &a, errstr_r) < 0)
			return -1;
		if (strcmp(a.name, p->app->name) != 0) {
			*errstr_r = "STATS from an app's process for another app";
			return -1;
		}
		requests = a.requests;
	}
	if (st.pid != (uint32_t)p->pid) {
		*errstr_r = "STATS from an app's process under another pid";
		return -1;
	}
	if (st.served > STATS_PROC_MAX_SERVED ||
	    requests > STATS_PROC_MAX_SERVED) {
		*errstr_r = "STATS with more requests than a process serves";
		return -1;
	}
	pthread_mutex_lock(&wctx.procs_lock);
	is_later = stats_grew(&p->report, p->report_requests, &st, requests);
	if (is_later) {
		p->report = st;
		p->report_requests = requests;
	}
	pthread_mutex_unlock(&wctx.procs_lock);
	if (!is_later) {
		*errstr_r = "STATS whose counters went back";
		return -1;
	}
	return 0;
}

void stats_proc_ended(struct appproc *p)
{
	const struct msg_stats *r = &p->report;
	uint64_t served = 0;

	for (int i = 0; i < MSG_STATS_NBUCKETS; i++)
		served += atomic_load_explicit(&stats.buckets[i],
		    memory_order_relaxed);
	if (served + r->served < served) {
		log_warn("app %s: the counts of its process %d would wrap ours; "
		    "dropped", p->app->name, (int)p->pid);
		return;
	}
	/* stats_end's order: the buckets (served) last. */
	for (int i = 0; i < MSG_STATS_NCLASSES; i++)
		atomic_fetch_add_explicit(&stats.status[i], r->status[i],
		    memory_order_relaxed);
	atomic_fetch_add_explicit(&stats.latency_sum_us, r->latency_sum_us,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&p->app->nrequests, p->report_requests,
	    memory_order_relaxed);
	for (int i = 0; i < MSG_STATS_NBUCKETS; i++)
		atomic_fetch_add_explicit(&stats.buckets[i], r->buckets[i],
		    memory_order_release);
	/* Counted once: p is never on the list again, but be sure. */
	memset(&p->report, 0, sizeof(p->report));
	p->report_requests = 0;
}
