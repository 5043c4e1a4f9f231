/*
 * stats.h: what lodge-worker counts for lodged (stats.c): requests by
 * status class and latency, each app's mode, version and last reload, and
 * the channel to lodged (--lodged-fd) that carries them as MSG_STATS and
 * brings MSG_RELOAD_APP back.  A process-mode app's own process sends
 * its counters up to the worker that routes to it, which adds them to its
 * own.
 */
#ifndef LODGE_WORKER_STATS_H
#define LODGE_WORKER_STATS_H

#include <stdint.h>

struct app;
struct appproc;
struct msg;

/* stats_end's status for a request handed to another process (an app's
 * own process serves and counts it): no longer in flight here, and not
 * counted. */
#define STATS_HANDED (-1)

/* At start, on the main thread, before the watcher thread runs: takes fd
 * (lodged's channel).  0, or -1 (errno ENOTSOCK) if fd is not a
 * SEQPACKET socket. */
int stats_open(int fd);

/* A request's head is complete (any serving thread): counts it in flight
 * and returns its start for stats_end.  Can't fail. */
int64_t stats_begin(void);

/* Its response is over (any serving thread): status is the one sent (0
 * if none was), or STATS_HANDED; app the app it went to, or NULL (404,
 * 400 ...).  A few atomic additions; can't fail. */
void stats_end(struct app *app, int status, int64_t started);

/* The channel for the watcher thread's poll, or -1. */
int stats_fd(void);

/* The channel is readable (watcher thread): RELOAD_APP asks for a reload
 * as the control socket's `reload APP` does; anything else is logged
 * and dropped (lodged is trusted, but garbage never stops the worker). */
void stats_readable(void);

/* Watcher thread, on each turn: sends MSG_STATS if something changed,
 * at once after a reload and otherwise at most once a second (a full
 * channel skips the turn).  Returns the milliseconds until it wants the
 * next turn (the watcher waits no longer). */
int stats_tick(void);

/* The descriptor a successor must inherit (passed as --lodged-fd), or
 * -1. */
int stats_inherit_fd(void);

/* The successor is ready (watcher thread): a last MSG_STATS, then this
 * process neither sends nor reads on the channel any more. */
void stats_handover(void);

/* An app's own process (--app-process), on each turn of its main
 * thread: sends its counters up its channel to the worker that routes
 * (MSG_STATS, its one app) if they changed, at most once a second; a full
 * channel skips the turn.  Can't fail. */
void stats_up_tick(void);

/* An app's own process about to leave (any thread): its last report, at
 * once (still non-blocking). */
void stats_up_final(void);

/* The worker that routes: MSG_STATS m came on app process p's channel
 * (the serving thread reading it).  Checks it (msg_stats_decode, its one
 * app, its pid, counters that never go back) and keeps it as p's last
 * report, which our own reports add.  0, or -1 with *errstr_r set: the
 * process, which runs the user's code, sent garbage; cut it off. */
int stats_proc_report(struct appproc *p, const struct msg *m,
    const char **errstr_r);

/* App process p is gone (wctx.procs_lock held, as p leaves wctx.procs):
 * its last report joins this process's own counters, so that the totals
 * never go back.  Can't fail. */
void stats_proc_ended(struct appproc *p);

#endif
