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
 */
#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "worker.h"

#define STATS_PERIOD_MS 1000
#define STATS_MAX_READ 64 /* messages read per turn: the watcher has work */

static const uint64_t stats_bounds_us[MSG_STATS_NBOUNDS] = MSG_STATS_BOUNDS_US;

/*
 * The counters (any serving thread, atomically) and the channel (the
 * main thread sets fd before the watcher starts; from then on the watcher
 * thread alone uses the rest).  File-local like reload.c's watcher state:
 * nothing outside this file touches it.
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
} stats = {.fd = -1};

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

/* Builds the MSG_STATS payload in stats.out; its length. */
static size_t stats_encode(uint64_t *reload_sig_r)
{
	struct msg_stats st = {.pid = (uint32_t)getpid()};
	uint64_t sig = 0;
	int napps = wctx.napps < MSG_STATS_MAX_APPS ? wctx.napps :
	    MSG_STATS_MAX_APPS;

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
	st.napps = (uint32_t)napps;
	memcpy(stats.out, &st, sizeof(st));
	for (int i = 0; i < napps; i++) {
		struct msg_stats_app a;

		sig = sig * 1000003u + stats_app(wctx.apps[i], &a);
		memcpy(stats.out + sizeof(st) + (size_t)i * sizeof(a), &a,
		    sizeof(a));
	}
	*reload_sig_r = sig;
	return sizeof(st) + (size_t)napps * sizeof(struct msg_stats_app);
}

/* Sends the snapshot if it changed.  is_forced: even within the second. */
static void stats_push(bool is_forced)
{
	int64_t now = util_now_ms();
	uint64_t sig;
	size_t len;

	if (stats.fd < 0)
		return;
	len = stats_encode(&sig);
	if (!is_forced && sig != stats.reload_sig)
		is_forced = true; /* a reload: lodgectl shows it at once */
	if (!is_forced && now - stats.last_push_ms < STATS_PERIOD_MS)
		return;
	if (len == stats.last_len && memcmp(stats.out, stats.last, len) == 0)
		return;
	if (msg_send(stats.fd, MSG_STATS, stats.out, len, -1) < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
			return; /* lodged is behind: the next turn */
		log_warn("lodged channel: cannot send the stats: %s; no more "
		    "stats for lodged", strerror(errno));
		close(stats.fd);
		stats.fd = -1;
		return;
	}
	stats.last_push_ms = now;
	stats.reload_sig = sig;
	stats.last_len = len;
	memcpy(stats.last, stats.out, len);
}

int stats_tick(void)
{
	int64_t left;

	if (stats.fd < 0)
		return STATS_PERIOD_MS;
	stats_push(false);
	left = stats.last_push_ms + STATS_PERIOD_MS - util_now_ms();
	return left <= 0 ? STATS_PERIOD_MS : (int)left;
}

void stats_handover(void)
{
	if (stats.fd < 0)
		return;
	stats_push(true);
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
