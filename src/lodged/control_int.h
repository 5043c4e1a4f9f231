/*
 * control_int.h: what the files of lodged's control socket share:
 * control.c (the socket, connections, replies, commands that act),
 * control_status.c (status and metrics: what lodged knows, and /proc) and
 * control_logs.c (a log's tail, read as its user).  Runs in lodged as
 * root.  Not for the rest of lodged: control.h is.
 */
#ifndef LODGE_CONTROL_INT_H
#define LODGE_CONTROL_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "control.h"
#include "ctlproto.h"
#include "json.h"

#define CONTROL_MAX_CONNS 16    /* lodgectl connections at once */
#define CONTROL_STALE_MS 15000  /* one that idles this long gives way */
#define CONTROL_LOGS_ALARM_S 10 /* the log reader's whole life */
#define CONTROL_LOGS_HEAD 96    /* "OK size offset\n", "ERR errno step\n" */

#define CONTROL_SPAWN_NB 11 /* buckets of the spawn-time histogram */

/* The three things of control*.c in lodged's epoll set share a header,
 * whose first member is what lodged.c switches on. */
enum control_kind {
	CONTROL_LISTENER = 1,
	CONTROL_CONN,
	CONTROL_LOGS,
};

struct control_ev {
	enum lodged_ev ev; /* LODGED_EV_CONTROL */
	enum control_kind kind;
};

enum control_state {
	CONTROL_READ = 0,  /* waiting for the request */
	CONTROL_RUN,       /* request read; runs in control_run */
	CONTROL_LOGS_WAIT, /* the log reader is at work */
	CONTROL_WRITE,     /* the reply is going out */
	CONTROL_DEAD,      /* done: freed in control_run */
};

/* A `logs` command's reader: a child running as the user, its pipe. */
struct control_logs {
	struct control_ev hdr; /* CONTROL_LOGS */
	int fd;                /* the pipe's read end; -1 */
	char *buf;             /* what the child wrote */
	size_t len;
	bool is_overflow;
	char user[CTLPROTO_MAX_USER + 1];
	char app[CTLPROTO_MAX_APP + 1]; /* "": the worker's own log */
	char path[PATH_MAX];
	unsigned nlines;
};

struct control_conn {
	struct control_ev hdr; /* CONTROL_CONN */
	int fd;
	uint32_t watched; /* the events it is in the epoll set for; 0: none */
	enum control_state state;
	struct ucred cred;
	bool is_allowed;
	int64_t opened_ms;
	struct ctlproto_req req;
	char *out; /* the whole reply */
	size_t outlen;
	size_t outoff;
	struct control_logs logs;
};

struct control {
	struct control_ev hdr; /* CONTROL_LISTENER */
	int fd;                /* -1: no socket */
	char path[UTIL_MAX_PATH];
	struct lodged_sockfile file; /* ours, to remove at exit */
	bool has_gid;
	gid_t gid;
	int64_t started_ms; /* lodged's start, monotonic and wall clock */
	int64_t started_wall_ms;
	struct control_conn *conns[CONTROL_MAX_CONNS];
	/* Births of workers: a histogram of their duration. */
	uint64_t spawn_buckets[CONTROL_SPAWN_NB]; /* not cumulative */
	uint64_t spawn_count;
	uint64_t spawn_failed;
	double spawn_sum_s;
};

/* control.c: replies.  Each sends one reply and ends the connection
 * (c->state becomes CONTROL_WRITE, then CONTROL_DEAD); a command replies
 * exactly once. */

/* Takes fd out of lodged's epoll set, then closes it. */
void control_forget_fd(struct lodged_ctx *ctx, int fd);

/* Sets the events c is watched for (0: out of the set). */
void control_watch(
    struct lodged_ctx *ctx, struct control_conn *c, uint32_t events);

/* Sends the head line and j's JSON (freed here; NULL: "{}"). */
void control_send(struct lodged_ctx *ctx, struct control_conn *c,
    enum ctlproto_err kind, const char *sentence, struct json_out *j);

/* Opens an ERR body {"error": {"kind", "message"}, ...}: the caller adds
 * members and closes it. */
void control_err_body(
    struct json_out *j, enum ctlproto_err kind, const char *sentence);

/* ERR kind with a sentence, and a body of just the error. */
void control_fail(struct lodged_ctx *ctx, struct control_conn *c,
    enum ctlproto_err kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* An OK body {"message": message, ...} (message NULL: null), then
 * control_ok_end closes and sends it. */
void control_ok_begin(struct json_out *j, const char *message);
void control_ok_end(
    struct lodged_ctx *ctx, struct control_conn *c, struct json_out *j);

/* The hosted user name, or NULL after replying ERR nouser. */
struct lodged_user *control_user(
    struct lodged_ctx *ctx, struct control_conn *c, const char *name);

/* The user named by the command's first argument (USER, or USER/APP
 * when is_app_ok; app_r gets APP or ""), or NULL after replying. */
struct lodged_user *control_target(struct lodged_ctx *ctx,
    struct control_conn *c, bool is_app_ok, char *app_r);

/* Milliseconds as whole seconds, rounded up; 0 for the past. */
static inline int64_t control_ceil_s(int64_t ms)
{
	return ms <= 0 ? 0 : (ms + 999) / 1000;
}

/* control_status.c */

/* Users hosted (not counting removed ones still draining). */
size_t control_nhosted(const struct lodged_ctx *ctx);

/* The status and metrics commands. */
void control_status(struct lodged_ctx *ctx, struct control_conn *c);
void control_metrics(struct lodged_ctx *ctx, struct control_conn *c);

/* control_logs.c */

/* The logs command: starts the reader (the reply comes later). */
void control_logs(struct lodged_ctx *ctx, struct control_conn *c);

/* The reader's pipe is readable: reads, and replies at its end. */
void control_logs_read(struct lodged_ctx *ctx, struct control_conn *c);

#endif
