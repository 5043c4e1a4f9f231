/*
 * app.c: the hosted user's apps: finding them in the apps folder, reading
 * each one's lodge.ini, opening its log, and handing a request the
 * interpreter generation that serves it.
 *
 * Runs in lodge-worker as the hosted user: the folder, the lodge.ini files
 * and the code are the user's own and may be anything.  A broken app (bad
 * lodge.ini, code that does not import) is marked broken with a one-line
 * reason and answers 500; it never stops the other apps.
 */
#include "worker.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* An app name becomes a log file name and a route: keep it plain. */
static bool app_name_ok(const char *name)
{
	size_t i, len = strlen(name);

	if (len == 0 || len > 64 || name[0] == '.' || name[0] == '-')
		return false;
	for (i = 0; i < len; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			(ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
			ch == '.'))
			return false;
	}
	return true;
}

static bool file_exists(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int app_cmp(const void *a, const void *b)
{
	return strcmp((*(struct app *const *)a)->name,
	    (*(struct app *const *)b)->name);
}

/* Creates the app record for DIR/NAME; loads lodge.ini.  NULL if the
 * folder is not an app. */
static struct app *app_new(const char *apps_dir, const char *name)
{
	char dir[PATH_MAX], ini[PATH_MAX + 16], err[512];
	struct app *app;
	bool has_ini;

	if (snprintf(dir, sizeof(dir), "%s/%s", apps_dir, name) >=
	    (int)sizeof(dir))
		return NULL;
	has_ini = file_exists(dir, "lodge.ini");
	if (!has_ini && !file_exists(dir, "wsgi.py") &&
	    !file_exists(dir, "app.wsgi"))
		return NULL;
	app = calloc(1, sizeof(*app));
	if (app == NULL)
		return NULL;
	app->name = strdup(name);
	app->dir = strdup(dir);
	pthread_mutex_init(&app->cap_lock, NULL);
	pthread_cond_init(&app->cap_cond, NULL);
	app->log = userlog_open(wctx.log_dir, name);
	if (app->log == NULL) {
		log_warn("app %s: cannot open its log in %s: %s; using stderr",
		    name, wctx.log_dir ? wctx.log_dir : "-", strerror(errno));
		app->log = userlog_open(NULL, name);
	}
	if (app->name == NULL || app->dir == NULL || app->log == NULL) {
		log_error("app %s: out of memory", name);
		exit(1);
	}
	if (has_ini) {
		snprintf(ini, sizeof(ini), "%s/lodge.ini", dir);
		if (appconf_load(ini, &app->conf, err, sizeof(err)) < 0) {
			app->state = APP_BROKEN;
			snprintf(app->reason, sizeof(app->reason), "%s", err);
			userlog_printf(app->log, "lodge.ini: %s", err);
			log_warn("app %s: %s", name, err);
			return app;
		}
		app->has_conf = true;
		if (app->conf.entry_module == NULL &&
		    !file_exists(dir, "wsgi.py") &&
		    !file_exists(dir, "app.wsgi")) {
			app->state = APP_BROKEN;
			snprintf(app->reason, sizeof(app->reason),
			    "%s: no entry = module:callable, and no wsgi.py or "
			    "app.wsgi in %s", ini, dir);
			userlog_printf(app->log, "%s", app->reason);
			return app;
		}
	}
	return app;
}

static void app_broken(struct app *app)
{
	app->state = APP_BROKEN;
	app->last.when_ms = util_wall_ms();
	app->last.is_ok = false;
	snprintf(app->last.reason, sizeof(app->last.reason), "%s",
	    app->reason);
	log_warn("app %s: failed to import: %s (traceback in its log)",
	    app->name, app->reason);
}

int app_scan(const char *apps_dir, const char *only)
{
	DIR *d = opendir(apps_dir);
	struct dirent *de;

	if (d == NULL) {
		log_error("apps folder %s: %s", apps_dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		struct app *app;

		if (de->d_name[0] == '.')
			continue;
		if (only != NULL && strcmp(de->d_name, only) != 0)
			continue;
		if (!app_name_ok(de->d_name)) {
			log_warn("apps folder: skipping %s/%s (an app name is "
			    "letters, digits, '-', '_' and '.')", apps_dir,
			    de->d_name);
			continue;
		}
		app = app_new(apps_dir, de->d_name);
		if (app == NULL)
			continue;
		if (wctx.napps == WORKER_MAX_APPS) {
			log_warn("apps folder: more than %d apps; %s skipped",
			    WORKER_MAX_APPS, de->d_name);
			continue;
		}
		wctx.apps[wctx.napps++] = app;
	}
	closedir(d);
	qsort(wctx.apps, (size_t)wctx.napps, sizeof(wctx.apps[0]), app_cmp);
	for (int i = 0; i < wctx.napps; i++) {
		struct app *app = wctx.apps[i];
		int threads;

		threads = app->has_conf && app->conf.threads > 0 ?
		    app->conf.threads : wctx.nthreads;
		app->max_inflight = threads < wctx.nthreads ? threads : 0;
	}
	return 0;
}

void app_build_first(struct app *app, PyThreadState **main_ts)
{
	struct app_gen *gen;

	if (app->state == APP_BROKEN)
		return;
	if (app->has_conf && app->conf.interp == APPCONF_INTERP_MAIN) {
		snprintf(app->mode_reason, sizeof(app->mode_reason),
		    "lodge.ini: interpreter = main");
		if (procmode_start(app, "lodge.ini: interpreter = main") < 0)
			app_broken(app);
		return;
	}
	gen = pyhost_build(app, main_ts);
	if (gen == NULL && procmode_needed(app->reason)) {
		char why[300];

		/* EMBEDDING.md §5 item 4: this code can't live in a
		 * sub-interpreter; give it a process. */
		snprintf(why, sizeof(why), "its import failed in a "
		    "sub-interpreter: %s", app->reason);
		snprintf(app->mode_reason, sizeof(app->mode_reason), "%s", why);
		userlog_printf(app->log, "moving to process mode: %s", why);
		log_info("app %s: moving to process mode: %s", app->name, why);
		if (procmode_start(app, "automatic") < 0)
			app_broken(app);
		return;
	}
	if (gen == NULL) {
		app_broken(app);
		return;
	}
	atomic_store(&app->current, gen);
	userlog_printf(app->log, "serving version %d", gen->version);
	log_info("app %s: serving version %d from %s", app->name, gen->version,
	    app->dir);
}

struct app *app_find(const char *name, size_t len)
{
	int lo = 0, hi = wctx.napps - 1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		const char *n = wctx.apps[mid]->name;
		int c = strncmp(n, name, len);

		if (c == 0)
			c = n[len] == '\0' ? 0 : 1;
		if (c == 0)
			return wctx.apps[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

struct app_gen *app_acquire(struct app *app)
{
	for (;;) {
		struct app_gen *gen = atomic_load(&app->current);

		if (gen == NULL)
			return NULL;
		atomic_fetch_add(&gen->inflight, 1);
		/* A reload may have replaced it meanwhile: only a
		 * generation that is still current may take a request. */
		if (atomic_load(&app->current) == gen)
			return gen;
		atomic_fetch_sub(&gen->inflight, 1);
	}
}

void app_release(struct app_gen *gen)
{
	atomic_fetch_sub(&gen->inflight, 1);
}

int app_cap_enter(struct app *app)
{
	if (app->max_inflight <= 0)
		return 0;
	pthread_mutex_lock(&app->cap_lock);
	while (app->running >= app->max_inflight)
		pthread_cond_wait(&app->cap_cond, &app->cap_lock);
	app->running++;
	pthread_mutex_unlock(&app->cap_lock);
	return 0;
}

void app_cap_leave(struct app *app)
{
	if (app->max_inflight <= 0)
		return;
	pthread_mutex_lock(&app->cap_lock);
	app->running--;
	pthread_cond_signal(&app->cap_cond);
	pthread_mutex_unlock(&app->cap_lock);
}
