/*
 * procmode.c: process mode.  Some code can't live in a sub-interpreter or
 * be loaded twice in one process (PyO3 modules such as cryptography and
 * bcrypt, NumPy, some Cython modules: EMBEDDING.md §5 item 4).  Such an
 * app runs in the main interpreter of a lodge-worker process of its own,
 * one app per process, started by the worker that routes its requests.
 *
 * Runs in lodge-worker as the hosted user, in two roles.  In the routing
 * worker: start an app's process, send it each connection whose request is
 * for that app (descriptor plus the bytes read so far), take connections
 * back after their response, and replace the process when the code
 * changes: start the new one, let it import, switch requests to it, then
 * tell the old one to drain (it finishes what it has and exits).  In the
 * app's process (--app-process NAME): import the app in the main
 * interpreter, serve what the channel brings, hand every connection back,
 * and tell the routing worker when the code changed.  A front connection
 * (from lodge-router) goes to the app's process as a MSG_FRONT, with what
 * the router said about it; the routing worker tells the router DONE as
 * it hands it over, and the app's process shuts it down and closes it
 * after the response instead of handing it back.
 *
 * An app enters process mode on its own when its import fails with an
 * error that says the code can't run in a sub-interpreter (logged with the
 * reason), or when its lodge.ini says interpreter = main.
 *
 * The app's process counts what it serves and reports it up its channel
 * (stats.c: from its main thread, which it always has, at most once a
 * second, and once more as it leaves); the routing worker adds the last
 * report of each of its app processes, and the final one of each that
 * ended, to its own report to lodged.
 */
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "msg.h"
#include "stats.h"
#include "util.h"

#define PROCMODE_READY_TIMEOUT_MS 120000
#define PROCMODE_BACKOFF_MIN_MS 500
#define PROCMODE_BACKOFF_MAX_MS 30000

/* Import errors that mean "not in a sub-interpreter": PyO3, Cython's
 * check, CPython 3.12's multi-phase check, and the generic wording. */
bool procmode_needed(const char *reason)
{
	static const char *const signs[] = {
	    "once per interpreter process",
	    "interpreter change detected",
	    "does not support loading in subinterpreters",
	    "sub-interpreter",
	    "subinterpreter",
	    NULL,
	};

	for (int i = 0; signs[i] != NULL; i++)
		if (strcasestr(reason, signs[i]) != NULL)
			return true;
	return false;
}

static void procs_add(struct appproc *p)
{
	pthread_mutex_lock(&wctx.procs_lock);
	p->next = wctx.procs;
	wctx.procs = p;
	pthread_mutex_unlock(&wctx.procs_lock);
}

static void procs_remove(struct appproc *p)
{
	struct appproc **pp;

	pthread_mutex_lock(&wctx.procs_lock);
	for (pp = &wctx.procs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			/* Its last report becomes ours in the same step:
			 * our report to lodged never loses it meanwhile. */
			stats_proc_ended(p);
			break;
		}
	}
	pthread_mutex_unlock(&wctx.procs_lock);
}

/* Tells an old process to finish and leave, once no thread is still
 * sending it a connection. */
static void proc_drain(struct appproc *p)
{
	int64_t until = util_now_ms() + 1000;

	while (atomic_load(&p->refs) > 0 && util_now_ms() < until)
		usleep(100);
	p->is_draining = true;
	if (msg_send(p->chan.fd, MSG_DRAIN, NULL, 0, -1) < 0)
		kill(p->pid, SIGTERM);
}

int procmode_start(struct app *app, const char *why)
{
	const char *extra[] = {"--app-process", app->name, NULL};
	char reason[256];
	struct appproc *p, *old;
	int64_t t0 = util_now_ms();
	int chan, rc;
	pid_t pid;

	pid = handoff_spawn(extra, NULL, 0, &chan);
	if (pid < 0) {
		snprintf(app->reason, sizeof(app->reason),
		    "cannot start the app's process: %s", strerror(errno));
		return -1;
	}
	rc = handoff_wait_ready(chan, PROCMODE_READY_TIMEOUT_MS, reason,
	    sizeof(reason));
	if (rc != 1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(chan);
		snprintf(app->reason, sizeof(app->reason), "process mode: %s "
		    "(the traceback is in the app's log)", reason);
		return -1;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		kill(pid, SIGTERM);
		close(chan);
		snprintf(app->reason, sizeof(app->reason), "out of memory");
		return -1;
	}
	p->app = app;
	p->pid = pid;
	p->started_ms = util_now_ms();
	p->chan.ev_kind = EV_CHAN;
	p->chan.fd = chan;
	p->chan.proc = p;
	procs_add(p);
	chan_add(&p->chan);
	app->is_process_mode = true;
	app->proc_version++;
	app->proc_backoff_ms = 0;
	/* Publish: new requests go to the new process. */
	old = atomic_exchange(&app->proc, p);
	if (old != NULL)
		proc_drain(old);
	app->state = APP_OK;
	app->reason[0] = '\0';
	userlog_printf(app->log, "process mode: process %d serves version %d "
	    "(%s; ready in %lld ms)", (int)pid, app->proc_version, why,
	    (long long)(util_now_ms() - t0));
	log_info("app %s: process %d serves it in process mode (%s)",
	    app->name, (int)pid, why);
	return 0;
}

void procmode_reload(struct app *app)
{
	int64_t t0 = util_now_ms();
	struct app_reload_info *last = &app->last;

	if (procmode_start(app, "code changed") < 0) {
		last->is_ok = false;
		app->reloads_failed++;
		snprintf(last->reason, sizeof(last->reason), "%s", app->reason);
		userlog_printf(app->log, "reload failed: %s (the running "
		    "process keeps serving)", app->reason);
		log_warn("app %s: reload failed: %s", app->name, app->reason);
	} else {
		last->is_ok = true;
		app->reloads_ok++;
		last->reason[0] = '\0';
	}
	last->when_ms = util_wall_ms();
	last->took_ms = util_now_ms() - t0;
}

int procmode_route(struct app *app, struct conn *c)
{
	struct appproc *p;
	int rc;

	for (;;) {
		p = atomic_load(&app->proc);
		if (p == NULL)
			return -1;
		atomic_fetch_add(&p->refs, 1);
		if (atomic_load(&app->proc) == p)
			break;
		atomic_fetch_sub(&p->refs, 1);
	}
	rc = conn_send(&p->chan, c);
	atomic_fetch_sub(&p->refs, 1);
	if (rc < 0)
		log_warn("app %s: cannot pass a connection to its process %d: "
		    "%s", app->name, (int)p->pid, strerror(errno));
	return rc;
}

void procmode_reload_asked(struct appproc *p)
{
	uint64_t one = 1;

	if (atomic_load(&p->app->proc) != p)
		return;
	p->app->reload_due = util_now_ms();
	if (write(wctx.reload_efd, &one, sizeof(one)) < 0)
		(void)0;
}

void procmode_chan_closed(struct appproc *p)
{
	struct app *app = p->app;
	struct appproc *expected = p;

	procs_remove(p);
	waitpid(p->pid, NULL, 0);
	if (atomic_compare_exchange_strong(&app->proc, &expected, NULL)) {
		/* The serving process died: requests get 503 until it is
		 * back, restarts back off by doubling. */
		app->proc_backoff_ms = app->proc_backoff_ms ?
		    app->proc_backoff_ms * 2 : PROCMODE_BACKOFF_MIN_MS;
		if (app->proc_backoff_ms > PROCMODE_BACKOFF_MAX_MS)
			app->proc_backoff_ms = PROCMODE_BACKOFF_MAX_MS;
		app->proc_restart_due = util_now_ms() + app->proc_backoff_ms;
		userlog_printf(app->log, "process mode: process %d exited "
		    "unexpectedly; restarting in %d ms", (int)p->pid,
		    app->proc_backoff_ms);
		log_warn("app %s: its process %d exited; restart in %d ms",
		    app->name, (int)p->pid, app->proc_backoff_ms);
	}
	/* p itself is not freed: a serving thread may still hold it for a
	 * moment (procmode_route's re-check).  It is a few bytes per
	 * process that ever ran. */
}

void procmode_tick(void)
{
	int64_t now = util_now_ms();

	for (int i = 0; i < wctx.napps; i++) {
		struct app *app = wctx.apps[i];

		if (app->proc_restart_due == 0 || app->proc_restart_due > now ||
		    atomic_load(&wctx.is_draining))
			continue;
		app->proc_restart_due = 0;
		if (procmode_start(app, "restart after a crash") < 0) {
			app->proc_backoff_ms = app->proc_backoff_ms * 2;
			if (app->proc_backoff_ms > PROCMODE_BACKOFF_MAX_MS)
				app->proc_backoff_ms = PROCMODE_BACKOFF_MAX_MS;
			if (app->proc_backoff_ms < PROCMODE_BACKOFF_MIN_MS)
				app->proc_backoff_ms = PROCMODE_BACKOFF_MIN_MS;
			app->proc_restart_due = now + app->proc_backoff_ms;
			log_warn("app %s: restart failed: %s; next try in %d ms",
			    app->name, app->reason, app->proc_backoff_ms);
		}
	}
}

void procmode_drain_all(void)
{
	pthread_mutex_lock(&wctx.procs_lock);
	for (struct appproc *p = wctx.procs; p != NULL; p = p->next) {
		if (!p->is_draining) {
			p->is_draining = true;
			if (msg_send(p->chan.fd, MSG_DRAIN, NULL, 0, -1) < 0)
				kill(p->pid, SIGTERM);
		}
	}
	pthread_mutex_unlock(&wctx.procs_lock);
}

bool procmode_all_gone(void)
{
	bool gone;

	pthread_mutex_lock(&wctx.procs_lock);
	gone = wctx.procs == NULL;
	pthread_mutex_unlock(&wctx.procs_lock);
	return gone;
}

/* ---- the app's own process ---- */

int procmode_child_main(void)
{
	struct app_gen *gen;
	struct app *app;
	sigset_t sigs;
	int sig;

	if (app_scan(wctx.apps_dir, wctx.app_process) < 0 || wctx.napps != 1)
		fatal("app %s: not found in %s", wctx.app_process,
		    wctx.apps_dir);
	app = wctx.apps[0];
	if (app->state == APP_BROKEN)
		fatal("app %s: %s", app->name, app->reason);
	gen = pyhost_build_main(app);
	if (gen == NULL) {
		/* The parent sees us leave before READY; the traceback is in
		 * the app's log. */
		log_error("app %s: failed to import: %s", app->name,
		    app->reason);
		userlog_flush(app->log);
		return 3;
	}
	atomic_store(&app->current, gen);
	worker_start_threads();
	if (reload_start() < 0)
		log_warn("reload: changes to the app will not be picked up");
	if (msg_send(wctx.up->fd, MSG_READY, NULL, 0, -1) < 0)
		fatal("cannot tell the worker we are ready: %s",
		    strerror(errno));
	chan_add(wctx.up);

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	for (;;) {
		/* The requests run here, so --request-timeout is kept here
		 * (a quarter of a second's resolution, as in the worker). */
		struct timespec tick = {.tv_nsec = 250 * 1000 * 1000};

		sig = sigtimedwait(&sigs, NULL, &tick);
		worker_timeout_sweep();
		/* What we served goes up to the worker, which reports it to
		 * lodged with its own (at most once a second). */
		stats_up_tick();
		if (sig < 0 || sig == SIGHUP)
			continue;
		/* Its end sends our last report (stats_up_final). */
		worker_drain_and_exit();
	}
}
