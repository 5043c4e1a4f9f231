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
#include "util.h"

#define LODGED_STOP_TIMEOUT_MS 30000 /* SIGTERM → SIGKILL at shutdown */
#define LODGED_BACKOFF_MIN_MS 1000
#define LODGED_BACKOFF_MAX_MS 60000
#define LODGED_CRASH_LOOP 5     /* crashes in a row before the warning */
#define LODGED_HEALTHY_MS 60000 /* a worker up this long ends a row */

/* One worker process of a user (processes = N gives N slots). */
struct lodged_slot {
	pid_t pid;        /* 0: none */
	bool is_stopping; /* we sent SIGTERM: its exit is no crash */
	int64_t started_ms;
	int64_t restart_at_ms; /* 0: no restart pending */
};

/* A hosted user: its socket and its workers. */
struct lodged_user {
	struct conf_user cu; /* owned: the settings workers start with */
	char sock_path[UTIL_MAX_PATH];
	int listen_fd;   /* -1: no socket (creating it failed) */
	bool is_watched; /* listen_fd is in the epoll set */
	bool is_removed; /* no longer hosted: freed once no worker runs */
	struct lodged_slot slots[CONF_MAX_PROCESSES];
	unsigned nrunning;
	unsigned crashes; /* in a row */
	int64_t first_crash_ms;
};

/* The one context of the process (STYLE.md rule 7). */
struct lodged_ctx {
	const char *config_path;
	struct conf conf; /* in force */
	gid_t socket_gid;
	struct lodged_user **users;
	size_t nusers;
	int epfd;
	int sigfd;
	const char *cgroup_dir; /* NULL: cgroup limits are off */
	bool is_stopping;
	int64_t stop_deadline_ms;
	bool has_killed;
};

/* lodged.c: starts or stops watching u's socket for connections. */
void lodged_watch(struct lodged_ctx *ctx, struct lodged_user *u, bool on);

/* supervise.c */

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

#endif
