/*
 * lodged.h: the launcher's state, shared by lodged.c (start-up, config,
 * sockets, the event loop) and supervise.c (workers: birth, death,
 * backoff).  Runs as root; holds no path inside any home but the strings
 * it passes to spawn_worker().
 */
#ifndef LODGE_LODGED_H
#define LODGE_LODGED_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "proto.h"
#include "seccomp.h"
#include "util.h"

#define LODGED_STOP_TIMEOUT_MS 30000 /* SIGTERM → SIGKILL at shutdown */
#define LODGED_BACKOFF_MIN_MS 1000
#define LODGED_BACKOFF_MAX_MS 60000
#define LODGED_CRASH_LOOP 5     /* crashes in a row before the warning */
#define LODGED_HEALTHY_MS 60000 /* a worker up this long ends a row */

/* What an epoll event of lodged's loop points to (data.ptr; NULL is the
 * signalfd): the first member of the struct it belongs to. */
enum lodged_ev {
	LODGED_EV_USER = 1,   /* a connection on a user's socket */
	LODGED_EV_ROUTER_CHAN, /* a message from the router */
	LODGED_EV_ROUTER_LOG,  /* a line on the router's stderr */
	LODGED_EV_CONTROL,     /* the control socket, a lodgectl connection
	                          or a log reader's pipe (control.c) */
	LODGED_EV_WORKER_CHAN, /* a message from a worker (workerchan.c) */
};

struct lodged_user;

/* Request counters of a user's workers (workerchan.c): one worker's last
 * report, or the sum of those of processes that ended. */
struct lodged_wtotals {
	uint64_t served;
	uint64_t status[MSG_STATS_NCLASSES];
	uint64_t buckets[MSG_STATS_NBUCKETS]; /* not cumulative */
	uint64_t latency_sum_us;
	uint64_t reloads_ok, reloads_failed;
};

/* lodged's end of a worker's channel (--lodged-fd) and what the worker
 * last reported on it (MSG_STATS). */
struct lodged_wchan {
	enum lodged_ev ev; /* LODGED_EV_WORKER_CHAN: first member */
	int fd;            /* non-blocking, in the epoll set; -1: none */
	struct lodged_user *user;
	bool has_stats;    /* stats and apps hold a report */
	struct msg_stats stats;
	struct msg_stats_app *apps; /* stats.napps of them; malloc'd */
	bool has_retired;  /* retired_pid is set */
	uint32_t retired_pid; /* the process a successor replaced: its
	                         late reports are ignored */
};

/* A socket file lodged made, by identity: lodged removes its own file
 * only, never one that a newer lodged (started while this one drains)
 * renamed over the same path. */
struct lodged_sockfile {
	dev_t dev;
	ino_t ino; /* 0: none recorded */
};

/* One worker process of a user (processes = N gives N slots). */
struct lodged_slot {
	pid_t pid;        /* 0: none */
	uint32_t id;      /* lodged's name for it in router messages */
	int router_end;   /* our copy of the router's end of its channel,
	                     given again to a restarted router; -1: none */
	bool is_stopping; /* we sent SIGTERM: its exit is no crash */
	int64_t started_ms;
	int64_t restart_at_ms; /* 0: no restart pending */
	/* Counted for lodgectl status and metrics (control.c), over
	 * lodged's life: */
	unsigned nstarts;  /* births */
	unsigned nfailed;  /* births that failed (a sandbox step) */
	unsigned ncrashes; /* exits that were not asked for nor clean */
	int64_t spawn_ms;  /* how long its last birth took */
	struct lodged_wchan wchan; /* the worker's channel to lodged */
};

/* A hosted user: its socket and its workers. */
struct lodged_user {
	enum lodged_ev ev; /* LODGED_EV_USER: first member */
	struct conf_user cu; /* owned: the settings workers start with */
	char sock_path[UTIL_MAX_PATH];
	struct lodged_sockfile sock_file;
	int listen_fd;   /* -1: no socket (creating it failed) */
	bool is_stored;  /* systemd keeps a copy (its fd store): the socket
	                    and its file outlive this lodged, for the next */
	char fdname[128]; /* its name there (lodged.c, lodged_fdstore) */
	bool is_watched; /* listen_fd is in the epoll set */
	bool is_removed; /* no longer hosted: freed once no worker runs */
	bool is_held;    /* lodgectl stop: no worker starts (the socket is
	                    not watched, the router's START gets FAILED)
	                    until lodgectl start */
	bool is_restarting; /* lodgectl restart: start the workers again as
	                       soon as the last old one has exited */
	struct lodged_slot slots[CONF_MAX_PROCESSES];
	unsigned nrunning;
	unsigned crashes; /* in a row */
	int64_t first_crash_ms;
	/* Counted by worker processes that ended or were replaced, over
	 * lodged's life (workerchan.c), so that the user's totals never go
	 * back. */
	struct lodged_wtotals ended;
	/* From the router's MSG_QUEUES (frontend.c): */
	uint32_t queued; /* requests waiting for a worker, last report */
	uint64_t router_answers[MSG_QUEUES_NSTATUS]; /* its own answers */
};

#define LODGED_ROUTER_BACKOFF_MIN_MS 100
#define LODGED_ROUTER_BACKOFF_MAX_MS 10000

/* A front listener (lodged keeps it open across router restarts, so that
 * connections waiting in its backlog are not lost). */
struct lodged_front {
	int fd;
	char path[UTIL_MAX_PATH]; /* Unix socket to remove at exit, or "" */
	struct lodged_sockfile file;
};

/* The router process, its channel and its log pipe. */
struct lodged_router {
	enum lodged_ev ev_chan; /* LODGED_EV_ROUTER_CHAN */
	enum lodged_ev ev_log;  /* LODGED_EV_ROUTER_LOG */
	pid_t pid;              /* 0: not running */
	int chan_fd;            /* -1: none */
	int log_fd;             /* -1: none */
	char logbuf[1024];
	size_t loglen;
	bool is_stopping;       /* we sent SIGTERM: its exit is no crash */
	unsigned crashes;
	unsigned nstarts;       /* births over lodged's life (lodgectl) */
	int64_t started_ms;
	int64_t restart_at_ms;  /* 0: none pending */
	uid_t uid;
	gid_t gid;
	/* The router's own answers to requests of no hosted user (bad
	 * heads, unknown routes), over lodged's life (MSG_QUEUES). */
	uint64_t answers[MSG_QUEUES_NSTATUS];
};

/* The name prefix of a user's socket in systemd's fd store: stored when
 * lodged makes it, given back to the next lodged at its start
 * (lodge.service: FileDescriptorStoreMax).  The whole name is
 * "lodge-user-NAME@DEV-INO", DEV and INO (hex) those of its socket file,
 * so that the next lodged takes it back only if that file is still the
 * one at the user's path. */
#define LODGED_FDSTORE_PREFIX "lodge-user-"

/* A descriptor systemd passed at start: a front socket of lodge.socket, or
 * a user's socket from the fd store. */
struct lodged_passed {
	int fd;
	char name[256]; /* its FDNAME ("" if none) */
	bool is_used;   /* taken; an unused one is closed after start */
};

/* The one context of the process (STYLE.md rule 7). */
struct lodged_ctx {
	const char *config_path;
	struct conf conf; /* in force */
	struct lodged_passed *passed; /* from systemd at start */
	size_t npassed;
	bool has_fdstore; /* under systemd (NOTIFY_SOCKET): store users'
	                     sockets there */
	gid_t socket_gid;
	struct lodged_user **users;
	size_t nusers;
	int epfd;
	int sigfd;
	const char *cgroup_dir; /* NULL: cgroup limits are off */
	bool is_stopping;
	int64_t stop_deadline_ms;
	bool has_killed;
	struct lodged_front fronts[CONF_MAX_FRONTS];
	size_t nfronts;
	gid_t front_gid;
	struct lodged_router router;
	uint32_t next_worker_id;
	bool has_control_gid; /* control_group is set */
	gid_t control_gid;
	struct control *control; /* control.c's state (the control socket) */
	/* The workers' compiled seccomp policy, kept between births while
	 * the file is unchanged (supervise.c, seccomp.h). */
	struct seccomp_cache worker_policy;
};

/* lodged.c: starts or stops watching u's socket for connections. */
void lodged_watch(struct lodged_ctx *ctx, struct lodged_user *u, bool on);

/* lodged.c: the hosted user named name, or NULL. */
struct lodged_user *lodged_find(struct lodged_ctx *ctx, const char *name);

/* lodged.c: a Unix listening socket at path for root:gid 0660, created
 * under a temporary name and renamed into place.  The descriptor, or -1
 * after logging why (what names the socket in messages). */
int lodged_unix_listen(const char *path, gid_t gid, const char *what,
    struct lodged_sockfile *file_r);

/* lodged.c: records in f which file the socket just bound at path is
 * (rename keeps it); 0, or -1 (errno). */
int lodged_sockfile_note(struct lodged_sockfile *f, const char *path);

/* lodged.c: removes path if it is still the socket file f names (what
 * names it in a warning if that fails). */
void lodged_sockfile_unlink(
    const struct lodged_sockfile *f, const char *path, const char *what);

/* lodged.c: re-reads the configuration (SIGHUP, lodgectl reload-config).
 * 0 if the new one is in force, -1 if it had errors and the previous one
 * stays.  Every message is logged; errs_r and warns_r, when not NULL, also
 * get them (the caller frees them with conf_msgs_free). */
int lodged_reload(struct lodged_ctx *ctx, struct conf_msgs *errs_r,
    struct conf_msgs *warns_r);

/* supervise.c */

/* The folders to hide from a sandboxed process: the parents of hosted
 * homes (own_home, if not NULL, is bound back by the sandbox).  Freed with
 * supervise_hide_free; NULL when out of memory. */
const char **supervise_hide_list(
    struct lodged_ctx *ctx, const char *own_home, int *n_r);
void supervise_hide_free(struct lodged_ctx *ctx, const char **hide);

/* The router asked for u's workers: starts the ones not running, and
 * tells the router again about those that run.  Returns the number of
 * workers running afterwards. */
unsigned supervise_start_for_router(
    struct lodged_ctx *ctx, struct lodged_user *u);

/* The router cut off the worker with this id: kill it (a crash). */
void supervise_bad_peer(struct lodged_ctx *ctx, uint32_t id);

/* A connection is waiting on u's socket and no worker runs: starts all
 * of u's workers (or as many as can be born; the others back off). */
void supervise_start(struct lodged_ctx *ctx, struct lodged_user *u);

/* Handles the death of a child reaped with status (from waitpid). */
void supervise_reaped(struct lodged_ctx *ctx, pid_t pid, int status);

/* Restarts the workers whose backoff is over; returns the milliseconds
 * until the next one is due, or -1 if none is. */
int supervise_timers(struct lodged_ctx *ctx, int64_t now);

/* Sends sig to every worker of u and marks them stopping (their exit is
 * not a crash); cancels pending restarts. */
void supervise_signal_user(
    struct lodged_ctx *ctx, struct lodged_user *u, int sig);

/* Frees u (its socket must be closed already).  Can't fail. */
void supervise_free_user(struct lodged_user *u);

/* workerchan.c: the channel to each worker (stats in, reloads out). */

/* Slot s of u was born with fd as lodged's end of its channel (takes
 * fd; -1: none): non-blocking, in the epoll set.  Can't fail (a channel
 * that can't be watched is closed, and the worker reports nothing). */
void workerchan_open(struct lodged_ctx *ctx, struct lodged_user *u,
    struct lodged_slot *s, int fd);

/* The worker of s is gone: its last report joins u->ended, the channel
 * is closed.  Can't fail. */
void workerchan_close(struct lodged_ctx *ctx, struct lodged_slot *s);

/* A message (or EOF) on a worker's channel. */
void workerchan_event(struct lodged_ctx *ctx, enum lodged_ev *ev);

/* Asks s's worker to reload app: 0, or -1 (errno: no channel, full). */
int workerchan_reload_app(struct lodged_slot *s, const char *app);

/* u's totals: the ended processes' plus each running worker's last
 * report; *inflight_r the requests in flight now. */
void workerchan_totals(const struct lodged_user *u,
    struct lodged_wtotals *t, uint64_t *inflight_r);

/* The slot whose report is the newest worker's (the apps to show), or
 * NULL if no running worker reported yet. */
const struct lodged_slot *workerchan_newest(const struct lodged_user *u);

/* frontend.c: the front sockets and the router process. */

/* Opens the front listeners of ctx->conf (at start; fatal on failure). */
void frontend_open(struct lodged_ctx *ctx);

/* Closes them and removes their Unix socket files (at exit). */
void frontend_close(struct lodged_ctx *ctx);

/* Starts the router now (no-op without fronts or while it runs). */
void frontend_start(struct lodged_ctx *ctx);

/* An event on the router's channel or log pipe. */
void frontend_event(struct lodged_ctx *ctx, enum lodged_ev *ev);

/* The router died if pid is its; returns true then. */
bool frontend_reaped(struct lodged_ctx *ctx, pid_t pid, int status);

/* Restarts the router when due; ms until the next restart, or -1. */
int frontend_timers(struct lodged_ctx *ctx, int64_t now);

/* A worker started: the router gets its channel (a copy of s->router_end). */
void frontend_worker_up(
    struct lodged_ctx *ctx, struct lodged_user *u, struct lodged_slot *s);

/* SIGHUP: the router's settings from ctx->conf (old: the previous
 * config) — a new router if they changed, else SIGHUP (host map). */
void frontend_reload(struct lodged_ctx *ctx, const struct conf *old);

/* SIGTERM to the router (lodged is stopping); true if it still runs. */
bool frontend_stop(struct lodged_ctx *ctx, int sig);

#endif
