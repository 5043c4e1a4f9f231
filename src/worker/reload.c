/*
 * reload.c: disposable sub-interpreters.  One thread of lodge-worker, the
 * watcher, notices with inotify that an app's code changed, waits for the
 * burst of writes to settle, builds a new interpreter generation beside
 * the one serving, publishes it atomically, and ends the old one once its
 * last request is over, when the worker is least busy.
 *
 * Runs in lodge-worker as the hosted user.  The watcher is the only
 * thread that builds, publishes or ends generations and the only writer of
 * the reload fields of struct app, so they need no lock; serving threads
 * only read app->current (atomically) and count themselves in and out of
 * a generation (app_acquire/app_release).  A build that fails never touches
 * the generation that serves: the error goes to the app's log and to the
 * app's reload record, and the next change tries again.
 *
 * What is watched, per app: its folder (entry file, lodge.ini,
 * restart.txt), and the folder of every module it imported from its own
 * tree (the app folder and its venv; never the system's site-packages),
 * including modules first imported during a request (the serving thread
 * notices sys.modules grew and wakes the watcher).
 */
#include "worker.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "msg.h"
#include "stats.h"
#include "util.h"

#define RELOAD_MASK                                                       \
	(IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |       \
	    IN_CREATE | IN_DELETE | IN_ATTRIB)
#define RELOAD_MAX_WATCHES 4096
#define RELOAD_IDLE_WAIT_MS 1000 /* longest wait for an idle moment */
#define RELOAD_DESTROY_POLL_MS 5
#define RELOAD_MAX_CHANGED 64 /* sources remembered; more: drop every pyc */
#define RELOAD_QUICK_MS 5 /* after one file written and closed */
#define RELOAD_OPEN_MS 1000 /* at least, after a write to a file not closed */
#define RELOAD_PRELOAD_SLICE_MS 10 /* a spare's imports, per loop pass */

/* One watched folder of one app. */
struct watch {
	int wd;
	struct app *app;
	char *dir;
};

/* The watcher's state: owned by the watcher thread alone. */
static struct {
	int ifd;
	struct watch watches[RELOAD_MAX_WATCHES];
	int nwatches;
	PyThreadState *main_ts; /* the watcher's main-interpreter state */
	struct app_gen *parked;
	struct app_gen *freeable; /* ended; their struct is freed later */
	bool warned_full;
	bool replace_asked_for_parked;
	pthread_mutex_t ready_lock;
	pthread_cond_t ready_cond;
	bool is_ready; /* the first build of every app is done */
} rl = {
    .ifd = -1,
    .ready_lock = PTHREAD_MUTEX_INITIALIZER,
    .ready_cond = PTHREAD_COND_INITIALIZER,
};

static bool has_suffix(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

static void watch_dir(struct app *app, const char *dir)
{
	int i, wd;

	for (i = 0; i < rl.nwatches; i++)
		if (rl.watches[i].app == app && strcmp(rl.watches[i].dir, dir) == 0)
			return;
	if (rl.nwatches == RELOAD_MAX_WATCHES) {
		if (!rl.warned_full)
			log_warn("reload: more than %d folders to watch; "
			    "changes in the others are not seen",
			    RELOAD_MAX_WATCHES);
		rl.warned_full = true;
		return;
	}
	if (rl.ifd < 0)
		return;
	wd = inotify_add_watch(rl.ifd, dir, RELOAD_MASK | IN_ONLYDIR);
	if (wd < 0) {
		userlog_printf(app->log, "cannot watch %s for changes: %s",
		    dir, strerror(errno));
		return;
	}
	rl.watches[rl.nwatches++] = (struct watch){wd, app, strdup(dir)};
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_files(struct app *app)
{
	for (size_t i = 0; i < app->nfiles; i++)
		free(app->files[i]);
	free(app->files);
	app->files = NULL;
	app->nfiles = 0;
}

/* Lists the modules gen imported from the user's tree and watches their
 * folders.  Takes gen's GIL with the watcher's own thread state in it. */
static void rescan(struct app_gen *gen)
{
	struct app *app = gen->app;
	const char *roots[2] = {app->dir, app->venv_dir};
	char **files = NULL;
	size_t nfiles = 0, i;

	if (gen->watch_ts == NULL)
		gen->watch_ts = PyThreadState_New(gen->interp);
	wsgi_gil_enter(gen->watch_ts);
	atomic_store(&gen->modules_grew, false);
	wsgi_module_files(gen, roots, app->venv_dir ? 2 : 1, &files, &nfiles);
	/* Only apps being edited get a spare (make_spares). */
	if (app->reloads_ok + app->reloads_failed > 0)
		preload_list(gen);
	PyEval_SaveThread();
	if (files == NULL)
		return;
	free_files(app);
	app->files = files;
	app->nfiles = nfiles;
	qsort(app->files, app->nfiles, sizeof(char *), str_cmp);
	watch_dir(app, app->dir);
	for (i = 0; i < nfiles; i++) {
		char dir[PATH_MAX], *slash;

		snprintf(dir, sizeof(dir), "%s", files[i]);
		slash = strrchr(dir, '/');
		if (slash == NULL || slash == dir)
			continue;
		*slash = '\0';
		watch_dir(app, dir);
	}
}

/* Remembers a changed source file so that its cached bytecode goes
 * before the next build: CPython trusts a .pyc whose source has the same
 * size and the same whole-second mtime, so an edit within the second of
 * the previous import would otherwise run the old code. */
static void note_changed_path(struct app *app, const char *path)
{
	if (!has_suffix(path, ".py"))
		return;
	for (size_t i = 0; i < app->nchanged; i++)
		if (strcmp(app->changed[i], path) == 0)
			return;
	if (app->nchanged == RELOAD_MAX_CHANGED) {
		app->changed_overflow = true;
		return;
	}
	app->changed[app->nchanged] = strdup(path);
	if (app->changed[app->nchanged] != NULL)
		app->nchanged++;
}

static void note_changed(struct app *app, const char *dir, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	note_changed_path(app, path);
}

/* Removes the cached bytecode of src (DIR/__pycache__/NAME.cpython-311.pyc). */
static void drop_pyc(const char *src)
{
	char pyc[PATH_MAX];
	const char *slash = strrchr(src, '/');
	size_t dlen, blen;

	if (slash == NULL || !has_suffix(src, ".py"))
		return;
	dlen = (size_t)(slash - src);
	blen = strlen(slash + 1) - 3;
	if (snprintf(pyc, sizeof(pyc), "%.*s/__pycache__/%.*s.cpython-%d%d.pyc",
	    (int)dlen, src, (int)blen, slash + 1, PY_MAJOR_VERSION,
	    PY_MINOR_VERSION) < (int)sizeof(pyc))
		unlink(pyc);
}

static void drop_changed_pycs(struct app *app)
{
	size_t i;

	for (i = 0; i < app->nchanged; i++) {
		drop_pyc(app->changed[i]);
		free(app->changed[i]);
	}
	app->nchanged = 0;
	if (app->changed_overflow) {
		for (i = 0; i < app->nfiles; i++)
			drop_pyc(app->files[i]);
		app->changed_overflow = false;
	}
}

/* Is path dir itself or in it? */
static bool is_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* Adds a change of dir/name (NULL: unknown, or many) to app's burst and
 * pushes its reload back.  Every change pushes it back, so a burst of
 * writes becomes one reload, after it; how far depends on the burst.
 * One file, written and closed (an editor's save, a touch, a rename into
 * place), is complete: the reload comes RELOAD_QUICK_MS after it.  A
 * burst of several files (a git checkout, an rsync, an unpacked archive)
 * waits for the settle delay, so that the files are imported together,
 * and a file written but not closed yet (a slow upload) waits for its
 * close, or RELOAD_OPEN_MS without a write, so that none is imported
 * half-written.  Whichever it is, a build during which another change
 * arrives is never published (see reload_app). */
static void note_burst(struct app *app, const char *dir, const char *name,
    uint32_t mask, int64_t now)
{
	char path[sizeof(app->burst_path)];
	int delay;

	app->nchanges++;
	/* What the spare imported ahead of time may be what changed. */
	if (dir == NULL || !is_under(dir, app->dir) ||
	    (app->venv_dir != NULL && is_under(dir, app->venv_dir)) ||
	    (strcmp(dir, app->dir) == 0 && (strcmp(name, "lodge.ini") == 0 ||
		strcmp(name, "restart.txt") == 0)))
		app->spare_stale = true;
	if (dir == NULL || (mask & IN_ISDIR)) {
		app->burst_multi = true;
	} else {
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		if (app->burst_path[0] == '\0')
			memcpy(app->burst_path, path, sizeof(path));
		else if (strcmp(app->burst_path, path) != 0)
			app->burst_multi = true;
		if (mask & IN_CLOSE_WRITE)
			app->burst_open = false;
		else if (mask & (IN_MODIFY | IN_CREATE))
			app->burst_open = true;
	}
	delay = wctx.settle_ms;
	if (app->burst_open && delay < RELOAD_OPEN_MS)
		delay = RELOAD_OPEN_MS; /* a slow writer: wait for its close */
	else if (!app->burst_multi && !app->burst_open &&
	    delay > RELOAD_QUICK_MS)
		delay = RELOAD_QUICK_MS;
	app->reload_due = now + delay;
}

/* Starts a new burst: changes from here on are not in the build that
 * begins. */
static void burst_reset(struct app *app)
{
	app->burst_path[0] = '\0';
	app->burst_multi = false;
	app->burst_open = false;
}

/* Schedules a reload if a watched file changed after since_ns (wall
 * clock): an edit made while the app was importing, before its folders
 * were watched. */
static void check_changed_since(struct app *app, int64_t since_ns)
{
	static const char *const top[] = {"wsgi.py", "app.wsgi", "lodge.ini",
	    "restart.txt"};
	char path[PATH_MAX];
	struct stat st;
	size_t i;

	for (i = 0; i < app->nfiles + 4; i++) {
		const char *f = path;

		if (i < app->nfiles)
			f = app->files[i];
		else
			snprintf(path, sizeof(path), "%s/%s", app->dir,
			    top[i - app->nfiles]);
		if (stat(f, &st) < 0)
			continue;
		if ((int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec
		    >= since_ns) {
			if (i < app->nfiles)
				note_changed_path(app, f);
			note_burst(app, NULL, NULL, 0, util_now_ms());
			return;
		}
	}
}

/* Does a change of dir/name concern app's code? */
static bool is_relevant(struct app *app, const char *dir, const char *name)
{
	char path[PATH_MAX];
	const char *key = path;

	if (strcmp(dir, app->dir) == 0 &&
	    (strcmp(name, "wsgi.py") == 0 || strcmp(name, "app.wsgi") == 0 ||
		strcmp(name, "lodge.ini") == 0 ||
		strcmp(name, "restart.txt") == 0))
		return true;
	if (strcmp(name, "__pycache__") == 0 || has_suffix(name, ".pyc"))
		return false;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (app->nfiles > 0 && bsearch(&key, app->files, app->nfiles,
	    sizeof(char *), str_cmp) != NULL)
		return true;
	/* A new or removed module in a folder the app imports from. */
	return has_suffix(name, ".py") || has_suffix(name, ".so");
}

static void read_events(void)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	int64_t now = util_now_ms();

	for (;;) {
		ssize_t n = read(rl.ifd, buf, sizeof(buf));
		char *p;

		if (n <= 0)
			return;
		for (p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				/* Events were lost: reload everything rather
				 * than miss a change. */
				for (int i = 0; i < wctx.napps; i++)
					note_burst(wctx.apps[i], NULL, NULL, 0,
					    now);
				continue;
			}
			for (int i = 0; i < rl.nwatches; i++) {
				struct watch *w = &rl.watches[i];

				if (w->wd != ev->wd || ev->len == 0)
					continue;
				if (!is_relevant(w->app, w->dir, ev->name))
					continue;
				/* A process-mode app's own process watches its
				 * code and asks for the reload itself. */
				if (w->app->is_process_mode &&
				    atomic_load(&w->app->proc) != NULL)
					continue;
				note_changed(w->app, w->dir, ev->name);
				note_burst(w->app, w->dir, ev->name, ev->mask,
				    now);
			}
		}
	}
}

static void record(struct app *app, bool ok, const char *reason, int64_t took)
{
	app->last.when_ms = util_wall_ms();
	app->last.is_ok = ok;
	app->last.took_ms = took;
	snprintf(app->last.reason, sizeof(app->last.reason), "%s",
	    reason ? reason : "");
	if (ok)
		app->reloads_ok++;
	else
		app->reloads_failed++;
}

/* Re-reads lodge.ini.  0, or -1 with the reason in app->reason. */
static int reload_conf(struct app *app)
{
	char ini[PATH_MAX + 16], err[512];
	struct appconf conf;

	snprintf(ini, sizeof(ini), "%s/lodge.ini", app->dir);
	if (appconf_load(ini, &conf, err, sizeof(err)) < 0) {
		if (errno == ENOENT) {
			if (app->has_conf)
				appconf_free(&app->conf);
			app->has_conf = false;
			return 0;
		}
		snprintf(app->reason, sizeof(app->reason), "%s", err);
		return -1;
	}
	if (app->has_conf)
		appconf_free(&app->conf);
	app->conf = conf;
	app->has_conf = true;
	return 0;
}

void reload_set_venv(struct app *app)
{
	char buf[PATH_MAX];

	free(app->venv_dir);
	app->venv_dir = NULL;
	if (!app->has_conf || app->conf.venv == NULL)
		return;
	if (app->conf.venv[0] == '/')
		snprintf(buf, sizeof(buf), "%s", app->conf.venv);
	else
		snprintf(buf, sizeof(buf), "%s/%s", app->dir, app->conf.venv);
	app->venv_dir = strdup(buf);
}

/* Ends a generation that was built but never published. */
static void discard(struct app_gen *gen)
{
	gen->app->next_version--; /* its number goes to the next build */
	if (pyhost_destroy(gen, &rl.main_ts) < 0) {
		reload_park(gen);
		return;
	}
	free(gen);
}

/* Builds a new generation and swaps it in; the old one keeps serving
 * until then, and for good if the build fails. */
static void reload_app(struct app *app)
{
	struct app_gen *gen, *old = atomic_load(&app->current);
	int64_t t0 = util_now_ms(), took, t0_ns;
	unsigned long changes;

	app->reload_due = 0;
	if (wctx.app_process != NULL) {
		/* An app's own process is replaced, never reloaded in
		 * place: ask the worker that routes to us. */
		if (!atomic_load(&wctx.stopping) &&
		    msg_send(wctx.up->fd, MSG_RELOAD, NULL, 0, -1) < 0)
			log_warn("cannot ask the worker for a reload: %s",
			    strerror(errno));
		return;
	}
	if (app->is_process_mode) {
		if (reload_conf(app) < 0) {
			record(app, false, app->reason, 0);
			userlog_printf(app->log, "reload failed: %s (the "
			    "running process keeps serving)", app->reason);
			return;
		}
		procmode_reload(app);
		return;
	}
	if (reload_conf(app) < 0) {
		record(app, false, app->reason, 0);
		userlog_printf(app->log, "reload failed: %s (%s)", app->reason,
		    old ? "the running version keeps serving" :
			  "the app stays down");
		log_warn("app %s: reload failed: %s", app->name, app->reason);
		return;
	}
	reload_set_venv(app);
	drop_changed_pycs(app);
	burst_reset(app);
	changes = app->nchanges;
	t0_ns = util_wall_ns();
	gen = pyhost_build(app, &rl.main_ts);
	took = util_now_ms() - t0;
	/* A change during the build may have been half read: never publish
	 * (nor count as failed) what was built from a moving tree.  The
	 * writes are still going on, so the next build waits for them to
	 * settle. */
	read_events();
	if (app->nchanges != changes) {
		int64_t due = util_now_ms() + wctx.settle_ms;

		app->burst_multi = true;
		if (app->reload_due < due) /* a file still open waits longer */
			app->reload_due = due;
		userlog_printf(app->log, "the code changed while it was being "
		    "imported: importing it again once the writes settle%s",
		    gen ? "" : " (the error above may come from a file "
		    "caught mid-write)");
		if (gen != NULL)
			discard(gen);
		return;
	}
	if (gen == NULL) {
		record(app, false, app->reason, took);
		userlog_printf(app->log, "reload failed: %s (%s)", app->reason,
		    old ? "the running version keeps serving" :
			  "the app stays down");
		log_warn("app %s: reload failed after %lld ms: %s", app->name,
		    (long long)took, app->reason);
		return;
	}
	gen->import_ms = took;
	/* Publish: from here on new requests go to gen; requests already
	 * running finish in old. */
	atomic_store(&app->current, gen);
	app->state = APP_OK;
	app->reason[0] = '\0';
	record(app, true, NULL, took);
	userlog_printf(app->log, "reloaded: version %d serves (built in "
	    "%lld ms)", gen->version, (long long)took);
	log_info("app %s: version %d serves (built in %lld ms)", app->name,
	    gen->version, (long long)took);
	rescan(gen);
	check_changed_since(app, t0_ns);
	if (old != NULL) {
		old->retired_ms = util_now_ms();
		old->next = app->retiring;
		app->retiring = old;
	}
}

void reload_park(struct app_gen *gen)
{
	gen->next = rl.parked;
	rl.parked = gen;
	/* The watcher loop asks for a process replacement, which frees
	 * it (the old process exits). */
	log_warn("app %s: an interpreter with running app threads is parked",
	    gen->app->name);
}

/* Ends retired generations whose last request is over.  Prefers a moment
 * when no request is being served, since End holds the GIL for tens of
 * milliseconds (EMBEDDING.md §4), but waits at most RELOAD_IDLE_WAIT_MS
 * for one.  Returns true if some are still waiting. */
static bool reap(void)
{
	bool waiting = false;
	int64_t now = util_now_ms();

	for (int i = 0; i < wctx.napps; i++) {
		struct app *app = wctx.apps[i];
		struct app_gen **pp = &app->retiring;

		while (*pp != NULL) {
			struct app_gen *gen = *pp;
			int64_t t0;

			if (atomic_load(&gen->inflight) > 0 ||
			    (atomic_load(&wctx.busy) > 0 &&
				now - gen->retired_ms < RELOAD_IDLE_WAIT_MS)) {
				waiting = true;
				pp = &gen->next;
				continue;
			}
			*pp = gen->next;
			t0 = util_now_ms();
			if (pyhost_destroy(gen, &rl.main_ts) < 0) {
				reload_park(gen);
				continue;
			}
			log_info("app %s: version %d ended in %lld ms (%lld ms "
			    "of it holding the GIL)", app->name, gen->version,
			    (long long)(util_now_ms() - t0),
			    (long long)gen->end_ms);
			/* A serving thread may still touch gen->inflight for
			 * a moment (app_acquire's re-check): free it later. */
			gen->next = rl.freeable;
			rl.freeable = gen;
		}
	}
	return waiting;
}

/* Once nothing is pending, gives each app that was reloaded a spare
 * interpreter for its next reload: Py_NewInterpreter and site take
 * most of a small app's build time (EMBEDDING.md §2), and the spare then
 * imports the app's libraries, a few at a time (preload.c), which is most
 * of a framework app's.  One step per pass: the GIL is shared with
 * requests, and a change must not wait long.  True if it did something
 * (there may be more to do). */
static bool make_spares(void)
{
	for (int i = 0; i < wctx.napps; i++) {
		struct app *app = wctx.apps[i];

		if (app->spare != NULL && app->reload_due == 0 &&
		    !atomic_load(&wctx.is_draining) &&
		    app->preload_next < app->npreload) {
			preload_step(app, util_now_ms() +
			    RELOAD_PRELOAD_SLICE_MS);
			return true;
		}
		if (app->spare != NULL || app->has_no_spare ||
		    app->reloads_ok + app->reloads_failed
		    == 0 || app->is_process_mode || app->reload_due != 0 ||
		    app->retiring != NULL || wctx.app_process != NULL ||
		    atomic_load(&wctx.is_draining))
			continue;
		if (pyhost_make_spare(app, &rl.main_ts) < 0) {
			log_warn("app %s: cannot prepare a spare interpreter; "
			    "reloads build from scratch", app->name);
			app->has_no_spare = true;
		}
		return true;
	}
	return false;
}

static void free_ended(void)
{
	struct app_gen *gen = rl.freeable;

	rl.freeable = NULL;
	while (gen != NULL) {
		struct app_gen *next = gen->next;

		free(gen);
		gen = next;
	}
}

void reload_modules_grew(struct app_gen *gen)
{
	uint64_t one = 1;

	gen->nmodules = PyDict_GET_SIZE(PyImport_GetModuleDict());
	atomic_store(&gen->modules_grew, true);
	if (write(wctx.reload_efd, &one, sizeof(one)) < 0)
		(void)0; /* the counter is saturated: a wake-up is pending */
}

void reload_request(struct app *app)
{
	/* Asked for by hand (lodgectl reload), like a touch of restart.txt:
	 * everything is imported afresh, libraries included. */
	app->spare_stale = true;
	app->reload_due = util_now_ms();
}

static atomic_bool replace_asked;
static char replace_why[128];

void reload_request_replace(const char *why)
{
	uint64_t one = 1;

	snprintf(replace_why, sizeof(replace_why), "%s", why);
	atomic_store(&replace_asked, true);
	if (write(wctx.reload_efd, &one, sizeof(one)) < 0)
		(void)0;
}

static void *reload_thread(void *arg)
{
	int64_t last_free = util_now_ms();
	bool spares_busy = false;

	rl.main_ts = PyThreadState_New(PyInterpreterState_Main());
	for (int i = 0; i < wctx.napps; i++) {
		struct app *app = wctx.apps[i];
		struct app_gen *gen;
		int64_t t0 = util_wall_ns();

		reload_set_venv(app);
		/* Watch first: an edit made while the app imports must not
		 * be lost (see check_changed_since). */
		watch_dir(app, app->dir);
		if (wctx.app_process == NULL)
			app_build_first(app, &rl.main_ts);
		gen = atomic_load(&app->current);
		if (gen != NULL) {
			rescan(gen);
			check_changed_since(app, t0);
		}
	}
	/* Every interpreter is built on this thread, so that this thread
	 * also ends them: threading's shutdown in Py_EndInterpreter waits
	 * for the "main thread" of the interpreter, which is the thread
	 * that built it (a build on another thread hangs the End). */
	pthread_mutex_lock(&rl.ready_lock);
	rl.is_ready = true;
	pthread_cond_broadcast(&rl.ready_cond);
	pthread_mutex_unlock(&rl.ready_lock);
	for (;;) {
		/* poll skips a negative descriptor: no control socket, or
		 * no channel to lodged. */
		struct pollfd pfd[4] = {
		    {.fd = rl.ifd, .events = POLLIN},
		    {.fd = wctx.reload_efd, .events = POLLIN},
		    {.fd = control_fd(), .events = POLLIN},
		    {.fd = stats_fd(), .events = POLLIN},
		};
		int64_t now = util_now_ms(), next = now + stats_tick();
		bool waiting = false;
		int i;

		for (i = 0; i < wctx.napps; i++) {
			struct app *app = wctx.apps[i];

			if (app->reload_due != 0 && app->reload_due < next)
				next = app->reload_due;
			if (app->retiring != NULL)
				waiting = true;
		}
		if (waiting && next > now + RELOAD_DESTROY_POLL_MS)
			next = now + RELOAD_DESTROY_POLL_MS;
		if (atomic_load(&wctx.is_draining) && next > now + 20)
			next = now + 20; /* hand over idle connections often */
		if (spares_busy)
			next = now; /* only look at what came meanwhile */
		poll(pfd, 4, next > now ? (int)(next - now) : 0);
		if (pfd[0].revents & POLLIN)
			read_events();
		if (pfd[1].revents & POLLIN) {
			uint64_t cnt;

			if (read(wctx.reload_efd, &cnt, sizeof(cnt)) < 0)
				(void)0;
		}
		if (pfd[2].fd >= 0 && (pfd[2].revents & POLLIN))
			control_serve();
		if (pfd[3].fd >= 0 && (pfd[3].revents & (POLLIN | POLLHUP)))
			stats_readable();
		now = util_now_ms();
		for (i = 0; i < wctx.napps; i++) {
			struct app *app = wctx.apps[i];
			struct app_gen *gen = atomic_load(&app->current);

			if (app->reload_due != 0 && app->reload_due <= now)
				reload_app(app);
			else if (gen != NULL && atomic_load(&gen->modules_grew))
				rescan(gen);
		}
		spares_busy = !reap() && make_spares();
		if (atomic_exchange(&replace_asked, false))
			replace_request(replace_why);
		if (rl.parked != NULL && !rl.replace_asked_for_parked) {
			rl.replace_asked_for_parked = true;
			replace_request("an app's threads did not end, so its "
			    "old interpreter could not be ended");
		}
		procmode_tick();
		replace_tick();
		if (rl.freeable != NULL && now - last_free > 1000) {
			free_ended();
			last_free = now;
		}
	}
	return NULL;
}

int reload_start(void)
{
	pthread_t tid;

	rl.ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (rl.ifd < 0)
		log_error("reload: inotify_init1: %s (changes will not be "
		    "seen; restart.txt and the control socket still work)",
		    strerror(errno));
	wctx.reload_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (wctx.reload_efd < 0) {
		log_error("reload: eventfd: %s", strerror(errno));
		return -1;
	}
	if (pthread_create(&tid, NULL, reload_thread, NULL) != 0) {
		log_error("reload: cannot start the watcher thread");
		return -1;
	}
	pthread_detach(tid);
	/* The watcher builds every app first; serve only once it did. */
	pthread_mutex_lock(&rl.ready_lock);
	while (!rl.is_ready)
		pthread_cond_wait(&rl.ready_cond, &rl.ready_lock);
	pthread_mutex_unlock(&rl.ready_lock);
	return 0;
}
