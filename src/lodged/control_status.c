/*
 * control_status.c: lodgectl status and metrics: what lodged knows of its
 * users, their worker slots and the router, and from /proc (procinfo.c)
 * the memory and CPU time of their processes, as JSON (ctlproto.h); and
 * the spawn-time histogram it keeps; and what the workers report on their
 * channel to lodged (workerchan.c): requests served and in flight, counts
 * by status class, the latency histogram, and each app's mode, version
 * and last reload.  Runs in lodged as root; only reads lodged's state and
 * kernel files under /proc, never a user's home.  A worker's report is a
 * hostile peer's data that msg_stats_decode checked: its strings are
 * printable ASCII, and json_out escapes them anyway.  What nobody reports
 * (the router's queues) is null, never absent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control_int.h"
#include "procinfo.h"

/* The upper bounds of the request-latency histogram (proto.h). */
static const uint64_t control_latency_le_us[MSG_STATS_NBOUNDS] =
    MSG_STATS_BOUNDS_US;

static const char *const control_class_names[MSG_STATS_NCLASSES] = {
    "1xx", "2xx", "3xx", "4xx", "5xx"};

/* The upper bounds of the spawn-time histogram, in seconds. */
static const double control_spawn_le[CONTROL_SPAWN_NB] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

/* ---------------------------------------------------------------------- */
/* status */

static bool control_has_pending(const struct lodged_user *u)
{
	for (unsigned i = 0; i < CONF_MAX_PROCESSES; i++)
		if (u->slots[i].restart_at_ms != 0)
			return true;
	return false;
}

static const char *control_user_state(const struct lodged_user *u)
{
	bool is_draining = false;

	if (u->is_removed)
		return "removed";
	if (u->is_held)
		return u->nrunning > 0 ? "stopping" : "stopped";
	if (u->is_restarting)
		return "restarting";
	for (unsigned i = 0; i < CONF_MAX_PROCESSES; i++)
		is_draining |= u->slots[i].pid != 0 && u->slots[i].is_stopping;
	if (u->nrunning > 0)
		return is_draining ? "draining" : "running";
	if (control_has_pending(u))
		return "backoff";
	if (u->listen_fd < 0)
		return "nosocket";
	return "idle";
}

static const char *control_slot_state(const struct lodged_slot *s)
{
	if (s->pid != 0)
		return s->is_stopping ? "stopping" : "running";
	if (s->restart_at_ms != 0)
		return "backoff";
	return "idle";
}

/* How many slots of u to show: the configured ones and any beyond them
 * still running (processes was lowered). */
static unsigned control_nslots(const struct lodged_user *u)
{
	unsigned n = u->cu.limits.processes;

	for (unsigned i = n; i < CONF_MAX_PROCESSES; i++)
		if (u->slots[i].pid != 0)
			n = i + 1;
	return n;
}

/* What a user's workers use in all, from /proc. */
struct control_usage {
	uint64_t rss_bytes;
	double cpu_seconds;
};

/*
 * A process lodged started (a worker's or the router's namespace init,
 * pid; 0: none) as JSON members: "pid" (the process inside, from t),
 * "init_pid", "uptime_s", "rss_bytes", "cpu_seconds" and, with
 * with_nprocs, "processes"; each null when unknown.  t: its process
 * tree, or NULL.
 */
static void control_proc_json(struct json_out *j, pid_t pid,
    int64_t started_ms, int64_t now, const struct procinfo_tree *t,
    bool with_nprocs)
{
	if (t != NULL && t->worker != 0)
		json_out_int(j, "pid", t->worker);
	else
		json_out_null(j, "pid");
	if (pid != 0) {
		json_out_int(j, "init_pid", pid);
		json_out_int(j, "uptime_s", (now - started_ms) / 1000);
	} else {
		json_out_null(j, "init_pid");
		json_out_null(j, "uptime_s");
	}
	if (t != NULL) {
		json_out_uint(j, "rss_bytes", t->rss_bytes);
		json_out_num(j, "cpu_seconds", t->cpu_seconds);
	} else {
		json_out_null(j, "rss_bytes");
		json_out_null(j, "cpu_seconds");
	}
	if (with_nprocs && t != NULL)
		json_out_uint(j, "processes", t->nprocs);
	else if (with_nprocs)
		json_out_null(j, "processes");
}

static void control_worker_json(struct json_out *j, const struct lodged_slot *s,
    unsigned i, int64_t now, struct control_usage *sum)
{
	struct procinfo_tree t;
	bool has_tree = s->pid != 0 && procinfo_tree(s->pid, &t) == 0;

	json_out_obj(j, NULL);
	json_out_uint(j, "slot", i);
	json_out_str(j, "state", control_slot_state(s));
	control_proc_json(
	    j, s->pid, s->started_ms, now, has_tree ? &t : NULL, true);
	if (has_tree) {
		sum->rss_bytes += t.rss_bytes;
		sum->cpu_seconds += t.cpu_seconds;
	}
	json_out_uint(j, "starts", s->nstarts);
	json_out_uint(j, "restarts", s->nstarts > 0 ? s->nstarts - 1 : 0);
	json_out_uint(j, "failed_starts", s->nfailed);
	json_out_uint(j, "crashes", s->ncrashes);
	if (s->nstarts + s->nfailed > 0)
		json_out_num(j, "spawn_seconds", (double)s->spawn_ms / 1000.0);
	else
		json_out_null(j, "spawn_seconds");
	if (s->pid == 0 && s->restart_at_ms != 0)
		json_out_int(
		    j, "restart_in_s", control_ceil_s(s->restart_at_ms - now));
	else
		json_out_null(j, "restart_in_s");
	/* The worker's own report (its current process's counts). */
	if (s->pid != 0 && s->wchan.has_stats) {
		json_out_uint(j, "requests_served", s->wchan.stats.served);
		json_out_uint(j, "requests_inflight", s->wchan.stats.inflight);
	} else {
		json_out_null(j, "requests_served");
		json_out_null(j, "requests_inflight");
	}
	json_out_obj_end(j);
}

/* One app of a worker's report. */
static void control_app_json(struct json_out *j, const struct msg_stats_app *a)
{
	json_out_obj(j, NULL);
	json_out_str(j, "name", a->name);
	json_out_str(
	    j, "mode", a->mode == MSG_STATS_MODE_PROCESS ? "process" : "sub");
	if (a->version != 0)
		json_out_uint(j, "version", a->version);
	else
		json_out_null(j, "version");
	json_out_str(j, "state", a->state == MSG_STATS_APP_OK ? "ok" : "broken");
	json_out_str(j, "reason", a->reason);
	json_out_uint(j, "requests", a->requests);
	json_out_uint(j, "reloads_ok", a->reloads_ok);
	json_out_uint(j, "reloads_failed", a->reloads_failed);
	if (a->last_reload_ms > 0) {
		json_out_obj(j, "last_reload");
		json_out_int(j, "when", a->last_reload_ms / 1000);
		json_out_bool(j, "ok", a->is_last_ok);
		json_out_str(j, "reason", a->is_last_ok ? "" : a->reason);
		json_out_obj_end(j);
	} else {
		json_out_null(j, "last_reload");
	}
	json_out_obj_end(j);
}

/* What u's workers reported: the totals over lodged's life, and the apps
 * as the newest worker sees them. */
static void control_user_requests_json(struct json_out *j,
    const struct lodged_ctx *ctx, const struct lodged_user *u)
{
	const struct lodged_slot *newest = workerchan_newest(u);
	struct lodged_wtotals t;
	uint64_t inflight;

	workerchan_totals(u, &t, &inflight);
	json_out_uint(j, "requests_served", t.served);
	json_out_uint(j, "requests_inflight", inflight);
	json_out_obj(j, "responses");
	for (int i = 0; i < MSG_STATS_NCLASSES; i++)
		json_out_uint(j, control_class_names[i], t.status[i]);
	json_out_obj_end(j);
	json_out_uint(j, "reloads_ok", t.reloads_ok);
	json_out_uint(j, "reloads_failed", t.reloads_failed);
	/* The router reports them (MSG_QUEUES); no front, no router. */
	if (ctx->nfronts > 0)
		json_out_uint(j, "queue_depth", u->queued);
	else
		json_out_null(j, "queue_depth");
	if (newest == NULL) {
		json_out_null(j, "apps");
		return;
	}
	json_out_arr(j, "apps");
	for (uint32_t i = 0; i < newest->wchan.stats.napps; i++)
		control_app_json(j, &newest->wchan.apps[i]);
	json_out_arr_end(j);
}

static void control_limits_json(struct json_out *j, const struct conf_limits *l)
{
	json_out_obj(j, "limits");
	json_out_uint(j, "processes", l->processes);
	json_out_uint(j, "threads", l->threads);
	json_out_uint(j, "memory_max", l->memory_max);
	json_out_uint(j, "pids_max", l->pids_max);
	json_out_uint(j, "cpu_weight", l->cpu_weight);
	json_out_uint(j, "nofile", l->nofile);
	json_out_str(j, "network",
	    l->network == CONF_NET_LOOPBACK ? "loopback" : "host");
	json_out_uint(j, "request_timeout", l->request_timeout);
	json_out_uint(j, "idle_timeout", l->idle_timeout);
	json_out_obj_end(j);
}

static void control_user_json(struct json_out *j,
    const struct lodged_ctx *ctx, const struct lodged_user *u,
    bool is_detail, int64_t now)
{
	struct control_usage sum = {0};
	unsigned n = control_nslots(u);
	unsigned starts = 0, restarts = 0, crashes = 0, failed = 0;
	int64_t next = -1;

	json_out_obj(j, NULL);
	json_out_str(j, "name", u->cu.name);
	json_out_uint(j, "uid", u->cu.uid);
	json_out_str(j, "state", control_user_state(u));
	json_out_bool(j, "held", u->is_held);
	json_out_str(j, "socket", u->listen_fd >= 0 ? u->sock_path : NULL);
	json_out_uint(j, "processes", u->cu.limits.processes);
	json_out_uint(j, "running", u->nrunning);
	json_out_arr(j, "workers");
	for (unsigned i = 0; i < n; i++) {
		const struct lodged_slot *s = &u->slots[i];

		control_worker_json(j, s, i, now, &sum);
		if (s->pid == 0 && s->restart_at_ms != 0 &&
		    (next < 0 || s->restart_at_ms < next))
			next = s->restart_at_ms;
	}
	json_out_arr_end(j);
	for (unsigned i = 0; i < CONF_MAX_PROCESSES; i++) {
		starts += u->slots[i].nstarts;
		restarts +=
		    u->slots[i].nstarts > 0 ? u->slots[i].nstarts - 1 : 0;
		crashes += u->slots[i].ncrashes;
		failed += u->slots[i].nfailed;
	}
	json_out_uint(j, "rss_bytes", sum.rss_bytes);
	json_out_num(j, "cpu_seconds", sum.cpu_seconds);
	json_out_uint(j, "starts", starts);
	json_out_uint(j, "restarts", restarts);
	json_out_uint(j, "failed_starts", failed);
	json_out_uint(j, "crashes", crashes);
	json_out_uint(j, "crashes_in_a_row", u->crashes);
	if (next >= 0)
		json_out_int(j, "restart_in_s", control_ceil_s(next - now));
	else
		json_out_null(j, "restart_in_s");
	control_user_requests_json(j, ctx, u);
	if (is_detail) {
		json_out_uint(j, "gid", u->cu.gid);
		json_out_str(j, "home", u->cu.home);
		json_out_str(j, "apps_dir", u->cu.apps_dir);
		json_out_str(j, "log_dir", u->cu.log_dir);
		control_limits_json(j, &u->cu.limits);
	}
	json_out_obj_end(j);
}

static void control_router_json(
    struct lodged_ctx *ctx, struct json_out *j, int64_t now)
{
	const struct lodged_router *r = &ctx->router;
	struct procinfo_tree t;
	bool has_tree = r->pid != 0 && procinfo_tree(r->pid, &t) == 0;

	if (ctx->nfronts == 0) {
		json_out_null(j, "router"); /* no front sockets: none runs */
		return;
	}
	json_out_obj(j, "router");
	json_out_str(j, "state",
	    r->pid != 0             ? (r->is_stopping ? "stopping" : "running")
	    : r->restart_at_ms != 0 ? "backoff"
	                            : "stopped");
	control_proc_json(
	    j, r->pid, r->started_ms, now, has_tree ? &t : NULL, false);
	json_out_uint(j, "starts", r->nstarts);
	json_out_uint(j, "restarts", r->nstarts > 0 ? r->nstarts - 1 : 0);
	json_out_uint(j, "crashes_in_a_row", r->crashes);
	json_out_arr(j, "fronts");
	for (size_t i = 0; i < ctx->conf.nfronts; i++)
		json_out_str(j, NULL, ctx->conf.fronts[i].spec);
	json_out_arr_end(j);
	json_out_obj_end(j);
}

size_t control_nhosted(const struct lodged_ctx *ctx)
{
	size_t n = 0;

	for (size_t i = 0; i < ctx->nusers; i++)
		n += !ctx->users[i]->is_removed;
	return n;
}

static void control_lodged_json(
    struct lodged_ctx *ctx, struct json_out *j, int64_t now)
{
	unsigned running = 0;

	for (size_t i = 0; i < ctx->nusers; i++)
		running += ctx->users[i]->nrunning;
	json_out_obj(j, "lodged");
	json_out_str(j, "version", LODGE_VERSION);
	json_out_uint(j, "protocol", CTLPROTO_VERSION);
	json_out_int(j, "pid", getpid());
	json_out_int(j, "uptime_s", (now - ctx->control->started_ms) / 1000);
	json_out_int(j, "started_at", ctx->control->started_wall_ms / 1000);
	json_out_str(j, "config", ctx->config_path);
	json_out_bool(j, "stopping", ctx->is_stopping);
	json_out_uint(j, "users_hosted", control_nhosted(ctx));
	json_out_uint(j, "workers_running", running);
	json_out_bool(j, "cgroup_limits", ctx->cgroup_dir != NULL);
	json_out_str(j, "control_group", ctx->conf.control_group);
	json_out_obj_end(j);
}

void control_status(struct lodged_ctx *ctx, struct control_conn *c)
{
	struct json_out j = {0};
	struct lodged_user *one = NULL;
	int64_t now = util_now_ms();

	if (c->req.nargs == 1) {
		if (ctlproto_user_check(c->req.args[0]) < 0) {
			control_fail(ctx, c, CTLPROTO_ERR_USAGE,
			    "'%s' is not a user name; write lodgectl status "
			    "USER",
			    c->req.args[0]);
			return;
		}
		one = control_user(ctx, c, c->req.args[0]);
		if (one == NULL)
			return;
	}
	json_out_obj(&j, NULL);
	control_lodged_json(ctx, &j, now);
	control_router_json(ctx, &j, now);
	json_out_arr(&j, "users");
	for (size_t i = 0; i < ctx->nusers; i++) {
		struct lodged_user *u = ctx->users[i];

		if (one == NULL || u == one)
			control_user_json(&j, ctx, u, one != NULL, now);
	}
	json_out_arr_end(&j);
	json_out_obj_end(&j);
	control_send(ctx, c, CTLPROTO_OK, NULL, &j);
}

/* ---------------------------------------------------------------------- */
/* metrics */

/* One metric family: {"name", "type", "help", "samples": [...]}; the
 * samples follow, then control_family_end. */
static void control_family(
    struct json_out *j, const char *name, const char *type, const char *help)
{
	json_out_obj(j, NULL);
	json_out_str(j, "name", name);
	json_out_str(j, "type", type);
	json_out_str(j, "help", help);
	json_out_arr(j, "samples");
}

static void control_family_end(struct json_out *j)
{
	json_out_arr_end(j);
	json_out_obj_end(j);
}

/* A sample {"suffix"?, "labels": {label: lvalue}?, "value"}. */
static void control_sample(struct json_out *j, const char *suffix,
    const char *label, const char *lvalue, double value)
{
	json_out_obj(j, NULL);
	if (suffix != NULL)
		json_out_str(j, "suffix", suffix);
	json_out_obj(j, "labels");
	if (label != NULL)
		json_out_str(j, label, lvalue);
	json_out_obj_end(j);
	json_out_num(j, "value", value);
	json_out_obj_end(j);
}

/* A sample with two labels (user and le, user and class ...). */
static void control_sample2(struct json_out *j, const char *suffix,
    const char *label1, const char *lvalue1, const char *label2,
    const char *lvalue2, double value)
{
	json_out_obj(j, NULL);
	if (suffix != NULL)
		json_out_str(j, "suffix", suffix);
	json_out_obj(j, "labels");
	json_out_str(j, label1, lvalue1);
	json_out_str(j, label2, lvalue2);
	json_out_obj_end(j);
	json_out_num(j, "value", value);
	json_out_obj_end(j);
}

/* The per-user figures the families below are made of. */
struct control_ustat {
	const char *name;
	unsigned running;
	unsigned processes;
	bool is_held;
	unsigned starts, failed, crashes;
	struct control_usage usage;
	struct lodged_wtotals req; /* what the workers reported */
	uint64_t inflight;
};

/* The families of what the workers report: requests, responses by status
 * class, the latency histogram, app reloads. */
static void control_request_families(
    struct json_out *j, const struct control_ustat *us, size_t n)
{
	char le[32];

	control_family(j, "lodge_requests_total", "counter",
	    "Requests the user's workers answered.");
	for (size_t i = 0; i < n; i++)
		control_sample(j, NULL, "user", us[i].name,
		    (double)us[i].req.served);
	control_family_end(j);
	control_family(j, "lodge_requests_inflight", "gauge",
	    "Requests the user's workers are serving now.");
	for (size_t i = 0; i < n; i++)
		control_sample(
		    j, NULL, "user", us[i].name, (double)us[i].inflight);
	control_family_end(j);
	control_family(j, "lodge_responses_total", "counter",
	    "Responses of the user's workers by status class (1xx .. 5xx).");
	for (size_t i = 0; i < n; i++)
		for (int c = 0; c < MSG_STATS_NCLASSES; c++)
			control_sample2(j, NULL, "user", us[i].name, "class",
			    control_class_names[c],
			    (double)us[i].req.status[c]);
	control_family_end(j);
	control_family(j, "lodge_request_duration_seconds", "histogram",
	    "Time from a request's complete head to the end of its "
	    "response, in the worker.");
	for (size_t i = 0; i < n; i++) {
		uint64_t cum = 0;

		for (int b = 0; b < MSG_STATS_NBOUNDS; b++) {
			cum += us[i].req.buckets[b];
			snprintf(le, sizeof(le), "%g",
			    (double)control_latency_le_us[b] / 1e6);
			control_sample2(j, "_bucket", "user", us[i].name, "le",
			    le, (double)cum);
		}
		control_sample2(j, "_bucket", "user", us[i].name, "le", "+Inf",
		    (double)us[i].req.served);
		control_sample(j, "_sum", "user", us[i].name,
		    (double)us[i].req.latency_sum_us / 1e6);
		control_sample(j, "_count", "user", us[i].name,
		    (double)us[i].req.served);
	}
	control_family_end(j);
	control_family(j, "lodge_app_reloads_total", "counter",
	    "Reloads of the user's apps, by result (ok: the new code serves; "
	    "failed: the old version kept serving).");
	for (size_t i = 0; i < n; i++) {
		control_sample2(j, NULL, "user", us[i].name, "result", "ok",
		    (double)us[i].req.reloads_ok);
		control_sample2(j, NULL, "user", us[i].name, "result",
		    "failed", (double)us[i].req.reloads_failed);
	}
	control_family_end(j);
}

static void control_user_family(struct json_out *j,
    const struct control_ustat *us, size_t n, const char *name,
    const char *type, const char *help, size_t field)
{
	control_family(j, name, type, help);
	for (size_t i = 0; i < n; i++) {
		double v;

		switch (field) {
		case 0:
			v = us[i].running;
			break;
		case 1:
			v = us[i].processes;
			break;
		case 2:
			v = us[i].is_held;
			break;
		case 3:
			v = us[i].starts;
			break;
		case 4:
			v = us[i].failed;
			break;
		case 5:
			v = us[i].crashes;
			break;
		case 6:
			v = (double)us[i].usage.rss_bytes;
			break;
		default:
			v = us[i].usage.cpu_seconds;
			break;
		}
		control_sample(j, NULL, "user", us[i].name, v);
	}
	control_family_end(j);
}

/* What the router reports (MSG_QUEUES): each user's queue, and the
 * answers it gave itself, by status, per user ("" for requests of no
 * hosted user: bad heads, unknown routes). */
static void control_router_families(
    const struct lodged_ctx *ctx, struct json_out *j)
{
	static const int statuses[] = MSG_QUEUES_STATUSES;
	char st[16];

	control_family(j, "lodge_queue_depth", "gauge",
	    "Requests waiting in the router for a worker of the user "
	    "(reported once a second).");
	for (size_t i = 0; i < ctx->nusers; i++)
		if (!ctx->users[i]->is_removed)
			control_sample(j, NULL, "user", ctx->users[i]->cu.name,
			    (double)ctx->users[i]->queued);
	control_family_end(j);
	control_family(j, "lodge_router_responses_total", "counter",
	    "Answers the router gave itself, by status: 400/408/413/431 bad "
	    "request heads, 404 unknown route or user, 502 no worker could "
	    "be started or it died with the request, 503 queue full, 504 no "
	    "worker took the request in time.");
	for (int k = 0; k < MSG_QUEUES_NSTATUS; k++) {
		if (k < MSG_QUEUES_NSTATUS - 1)
			snprintf(st, sizeof(st), "%d", statuses[k]);
		else
			snprintf(st, sizeof(st), "other");
		control_sample2(j, NULL, "user", "", "status", st,
		    (double)ctx->router.answers[k]);
		for (size_t i = 0; i < ctx->nusers; i++) {
			const struct lodged_user *u = ctx->users[i];

			if (!u->is_removed && u->router_answers[k] > 0)
				control_sample2(j, NULL, "user", u->cu.name,
				    "status", st,
				    (double)u->router_answers[k]);
		}
	}
	control_family_end(j);
}

void control_metrics(struct lodged_ctx *ctx, struct control_conn *c)
{
	static const struct {
		const char *name, *type, *help;
	} ufam[] = {
	    {"lodge_workers", "gauge", "Worker processes running."},
	    {"lodge_workers_configured", "gauge",
	        "Worker processes the configuration asks for (processes)."},
	    {"lodge_user_stopped", "gauge",
	        "1 if the user was stopped with lodgectl stop."},
	    {"lodge_worker_starts_total", "counter",
	        "Workers started since lodged started."},
	    {"lodge_worker_failed_starts_total", "counter",
	        "Worker births that failed at a sandbox step."},
	    {"lodge_worker_crashes_total", "counter",
	        "Workers that exited without being asked to, or not cleanly."},
	    {"lodge_worker_rss_bytes", "gauge",
	        "Resident memory of the user's worker processes, summed."},
	    {"lodge_worker_cpu_seconds_total", "counter",
	        "CPU time of the user's running workers and the processes "
	        "they replaced."},
	};
	struct control *cs = ctx->control;
	const struct lodged_router *r = &ctx->router;
	struct control_ustat *us = calloc(ctx->nusers + 1, sizeof(*us));
	struct json_out j = {0};
	int64_t now = util_now_ms();
	size_t n = 0;
	uint64_t cum = 0;
	char le[32];

	if (us == NULL) {
		control_fail(ctx, c, CTLPROTO_ERR_FAILED,
		    "lodged ran out of memory; try again");
		return;
	}
	for (size_t i = 0; i < ctx->nusers; i++) {
		const struct lodged_user *u = ctx->users[i];
		struct control_ustat *s = &us[n];

		if (u->is_removed)
			continue;
		n++;
		s->name = u->cu.name;
		s->running = u->nrunning;
		s->processes = u->cu.limits.processes;
		s->is_held = u->is_held;
		workerchan_totals(u, &s->req, &s->inflight);
		for (unsigned k = 0; k < CONF_MAX_PROCESSES; k++) {
			const struct lodged_slot *sl = &u->slots[k];
			struct procinfo_tree t;

			s->starts += sl->nstarts;
			s->failed += sl->nfailed;
			s->crashes += sl->ncrashes;
			if (sl->pid != 0 && procinfo_tree(sl->pid, &t) == 0) {
				s->usage.rss_bytes += t.rss_bytes;
				s->usage.cpu_seconds += t.cpu_seconds;
			}
		}
	}

	json_out_obj(&j, NULL);
	json_out_str(&j, "format", "lodge metrics 1");
	json_out_arr(&j, "metrics");
	control_family(&j, "lodge_info", "gauge",
	    "lodged's version, as a label; always 1.");
	control_sample(&j, NULL, "version", LODGE_VERSION, 1);
	control_family_end(&j);
	control_family(&j, "lodge_start_time_seconds", "gauge",
	    "When lodged started, in seconds since the epoch.");
	control_sample(
	    &j, NULL, NULL, NULL, (double)(cs->started_wall_ms / 1000));
	control_family_end(&j);
	control_family(&j, "lodge_users_hosted", "gauge",
	    "Users the configuration hosts.");
	control_sample(&j, NULL, NULL, NULL, (double)n);
	control_family_end(&j);
	for (size_t f = 0; f < sizeof(ufam) / sizeof(ufam[0]); f++)
		control_user_family(
		    &j, us, n, ufam[f].name, ufam[f].type, ufam[f].help, f);

	control_request_families(&j, us, n);

	control_family(&j, "lodge_worker_spawn_seconds", "histogram",
	    "How long a worker's birth took (fork, sandbox, exec).");
	for (size_t b = 0; b < CONTROL_SPAWN_NB; b++) {
		cum += cs->spawn_buckets[b];
		snprintf(le, sizeof(le), "%g", control_spawn_le[b]);
		control_sample(&j, "_bucket", "le", le, (double)cum);
	}
	control_sample(&j, "_bucket", "le", "+Inf", (double)cs->spawn_count);
	control_sample(&j, "_sum", NULL, NULL, cs->spawn_sum_s);
	control_sample(&j, "_count", NULL, NULL, (double)cs->spawn_count);
	control_family_end(&j);

	if (ctx->nfronts > 0) {
		struct procinfo_tree t;

		control_family(
		    &j, "lodge_router_up", "gauge", "1 if the router runs.");
		control_sample(&j, NULL, NULL, NULL, r->pid != 0);
		control_family_end(&j);
		control_family(&j, "lodge_router_restarts_total", "counter",
		    "Times the router was started again.");
		control_sample(
		    &j, NULL, NULL, NULL, r->nstarts > 0 ? r->nstarts - 1 : 0);
		control_family_end(&j);
		control_family(&j, "lodge_router_rss_bytes", "gauge",
		    "Resident memory of the router.");
		control_sample(&j, NULL, NULL, NULL,
		    r->pid != 0 && procinfo_tree(r->pid, &t) == 0
		        ? (double)t.rss_bytes
		        : 0);
		control_family_end(&j);
		control_router_families(ctx, &j);
	}
	json_out_arr_end(&j);
	json_out_int(&j, "collected_ms", util_now_ms() - now);
	json_out_obj_end(&j);
	free(us);
	control_send(ctx, c, CTLPROTO_OK, NULL, &j);
}

void control_spawn_done(
    struct lodged_ctx *ctx, struct lodged_slot *s, int64_t took_ms, bool is_ok)
{
	struct control *cs = ctx->control;
	double took = (double)took_ms / 1000.0;

	s->spawn_ms = took_ms;
	if (is_ok)
		s->nstarts++;
	else
		s->nfailed++;
	if (cs == NULL)
		return;
	if (!is_ok) {
		cs->spawn_failed++;
		return;
	}
	cs->spawn_count++;
	cs->spawn_sum_s += took;
	for (size_t b = 0; b < CONTROL_SPAWN_NB; b++) {
		if (took <= control_spawn_le[b]) {
			cs->spawn_buckets[b]++;
			break;
		}
	}
}
