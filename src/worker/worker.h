/*
 * worker.h: what the modules of lodge-worker share: the process context,
 * the serving threads, apps and their interpreter generations.
 *
 * lodge-worker runs as one hosted user.  It embeds CPython 3.11: the main
 * interpreter only hosts lodge's own bootstrap; each app lives in a
 * sub-interpreter of its own (a "generation"; the reload issue replaces
 * generations while requests keep flowing).
 */
#ifndef LODGE_WORKER_H
#define LODGE_WORKER_H

#include <Python.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "appconf.h"
#include "cgi.h"
#include "conn.h"
#include "userlog.h"

#define WORKER_MAX_LISTEN 16
#define WORKER_MAX_THREADS 256
#define WORKER_MAX_APPS 256

struct wsgi_state; /* per-interpreter state of the _lodge module (wsgi.c) */

/* One interpreter holding one version of an app's code. */
struct app_gen {
	struct app *app;
	int version;                  /* 1, 2, ... per app */
	PyInterpreterState *interp;
	PyThreadState *owner;         /* created it; used to destroy it */
	PyObject *callable;           /* the WSGI application (strong ref) */
	struct wsgi_state *ws;        /* the _lodge module state */
	atomic_int inflight;          /* requests running in it */
	/* Each serving thread's state in this interpreter, created lazily
	 * on that thread (EMBEDDING.md §7); indexed by thread number. */
	PyThreadState *tstates[WORKER_MAX_THREADS];
};

enum app_state {
	APP_OK = 0,      /* a generation serves */
	APP_BROKEN,      /* never imported: answers 500 */
};

struct app {
	char *name;
	char *dir;            /* absolute path of the app folder */
	struct appconf conf;
	bool has_conf;
	enum app_state state;
	char reason[256];     /* one line: why it is broken */
	struct userlog *log;
	_Atomic(struct app_gen *) current;
	int next_version;
	/* Concurrency cap from lodge.ini "threads": requests beyond it wait. */
	int max_inflight;
	pthread_mutex_t cap_lock;
	pthread_cond_t cap_cond;
	int running;
};

/* One serving thread. */
struct wthread {
	int idx;
	pthread_t tid;
	PyThreadState *main_ts; /* permanent, first on the thread (§5.6) */
	struct cgi_env *cgi;
	struct req req;
};

/* The process context: the one global of lodge-worker (STYLE.md rule 7). */
struct worker_ctx {
	const char *apps_dir;
	const char *log_dir;
	int nthreads;
	size_t max_head;
	uint64_t max_body;
	int drain_timeout_ms;

	int nlisten;
	int listen_fds[WORKER_MAX_LISTEN];
	char *unix_paths[WORKER_MAX_LISTEN];
	int epfd;

	struct app *apps[WORKER_MAX_APPS];
	int napps;

	struct wthread *threads;
	PyThreadState *main_ts;  /* the main interpreter's startup tstate */

	pthread_mutex_t conns_lock; /* guards the registry below */
	struct conn *conns;
	int nconns;
	atomic_int busy;            /* connections being served */
	atomic_bool stopping;
	atomic_llong last_sweep;
};

extern struct worker_ctx wctx;

/* pyhost.c: the embedded interpreter. */
int pyhost_init(void);
/* Builds a new generation of app (as the calling thread, which must not
 * hold the GIL).  Returns NULL and fills app->reason if the code fails to
 * import; the traceback went to the app's log. */
struct app_gen *pyhost_build(struct app *app);

/* app.c: discovery and per-request selection. */
int app_scan(const char *apps_dir);
struct app *app_find(const char *name, size_t len);
struct app_gen *app_acquire(struct app *app);
void app_release(struct app_gen *gen);
int app_cap_enter(struct app *app);
void app_cap_leave(struct app *app);

/* wsgi.c: the _lodge built-in module and one WSGI call. */
PyObject *wsgi_module_init(void);
/* Sets up a fresh interpreter (sys.stdout/err to the app log, sys.path,
 * module state) and imports the app; the GIL of gen->interp is held.
 * Returns 0 or -1 (reason filled). */
int wsgi_prepare(struct app_gen *gen, char *reason, size_t reason_size);
/* Serves one request in gen; the calling thread holds no GIL.  Returns 0
 * if the connection may carry another request, -1 to close it. */
int wsgi_serve(struct wthread *t, struct app_gen *gen, struct req *r);
/* Logs the current Python exception with its traceback to app's log and
 * clears it; fills reason (may be NULL) with its one-line summary. */
void wsgi_log_exception(struct app *app, const char *what, char *reason,
    size_t reason_size);

#endif
