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
#include "msg.h"
#include "userlog.h"

#define WORKER_MAX_LISTEN 16
#define WORKER_MAX_THREADS 256
#define WORKER_MAX_APPS 256

struct wsgi_state; /* per-interpreter state of the _lodge module (wsgi.c) */
struct appproc;

/* A listening socket in the epoll set. */
struct listener {
	enum ev_kind ev_kind; /* EV_LISTEN */
	int fd;
	char *unix_path; /* removed on a plain stop, never on a replacement */
	bool is_from_fd; /* --listen-fd: passed on as --listen-fd */
};

/* A SEQPACKET channel to another lodge process (handoff.c): an app
 * process (proc != NULL), the parent of an app process, the successor,
 * the predecessor, or lodge-router (is_router, front.c).  Messages are
 * proto.h's. */
struct chan {
	enum ev_kind ev_kind; /* EV_CHAN */
	int fd;
	struct appproc *proc;
	bool is_up;     /* to our parent (app process) or predecessor */
	bool is_router; /* the router channel (--router-fd) */
	atomic_bool is_closed;
};

/* Where the router channel stands (front.c). */
enum front_state {
	FRONT_NONE = 0, /* no --router-fd */
	FRONT_UP,       /* we read it and serve its FRONTs */
	FRONT_LEAVING,  /* we sent DRAIN: serving until the router answers */
	FRONT_LEFT,     /* the router answered: it sends nothing more */
	FRONT_HANDED,   /* our successor reads it; we still send DONE on it */
	FRONT_GONE,     /* closed by the router, or cut off */
};

/* A process-mode app's process (procmode.c). */
struct appproc {
	struct app *app;
	pid_t pid;
	struct chan chan;
	atomic_int refs;        /* routing threads sending to it right now */
	bool is_draining;
	int64_t started_ms;
	struct appproc *next;   /* all live app processes */
	/* stats.c, under wctx.procs_lock: what it served as it last
	 * reported (MSG_STATS up its channel), and its app's requests. */
	struct msg_stats report;
	uint64_t report_requests;
};

/* One interpreter holding one version of an app's code. */
struct app_gen {
	struct app *app;
	int version;                  /* 1, 2, ... per app */
	PyInterpreterState *interp;
	PyThreadState *owner;         /* created it; used to destroy it */
	PyObject *callable;           /* the WSGI application (strong ref) */
	struct wsgi_state *ws;        /* the _lodge module state */
	atomic_int inflight;          /* requests running in it */
	Py_ssize_t nmodules;          /* len(sys.modules) when last listed */
	atomic_bool modules_grew;     /* a request imported something new */
	PyThreadState *watch_ts;      /* the watcher thread's state in it */
	int64_t retired_ms;           /* when it stopped taking requests */
	int64_t import_ms;            /* how long building it took */
	int64_t end_ms;               /* how long Py_EndInterpreter took */
	bool is_parked;               /* app threads never ended: not ended */
	struct app_gen *next;         /* in the retiring / parked lists */
	/* Each serving thread's state in this interpreter, created lazily
	 * on that thread (EMBEDDING.md §7); indexed by thread number. */
	PyThreadState *tstates[WORKER_MAX_THREADS];
};

enum app_state {
	APP_OK = 0,      /* a generation serves */
	APP_BROKEN,      /* never imported: answers 500 */
};

/* The last reload attempt of an app, for logs and the control socket. */
struct app_reload_info {
	int64_t when_ms;     /* wall clock; 0: never tried */
	bool is_ok;
	char reason[256];    /* one line; "" when ok */
	int64_t took_ms;
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

	/* reload.c: guarded by the watcher thread, which alone changes
	 * them (the control socket reads them from the same thread). */
	int64_t reload_due;       /* monotonic ms; 0: nothing pending */
	struct app_gen *retiring; /* replaced, waiting for their last request */
	struct app_reload_info last;
	char **files;             /* module files watched, sorted */
	size_t nfiles;
	char *venv_dir;           /* absolute, or NULL */
	char *changed[64];        /* sources changed since the last build */
	size_t nchanged;
	bool changed_overflow;
	/* The burst of changes since the last build began (read_events):
	 * one file written and closed reloads after RELOAD_QUICK_MS; more
	 * than one file, or a file still open for writing, after the
	 * settle delay. */
	char burst_path[4096];    /* the one file changed so far, or "" */
	bool burst_multi;         /* another file or a folder changed too */
	bool burst_open;          /* burst_path written, not closed yet */
	unsigned long nchanges;   /* relevant changes seen, ever */
	int reloads_ok, reloads_failed;
	atomic_ullong nrequests;  /* stats.c: requests answered for it */
	/* A bare interpreter ready for the next reload (made after the
	 * first one: an app being edited is likely to be edited again). */
	struct app_gen *spare;
	bool has_no_spare;        /* making one failed: don't retry */
	/* preload.c: the libraries the serving version imported (name and
	 * file, in import order), which the spare imports ahead of time. */
	char **preload_name, **preload_file;
	size_t npreload;
	size_t preload_next;      /* the next one the spare imports */
	size_t spare_preloaded;   /* how many the spare did import */
	bool spare_begun;         /* the spare's sys.path and environ set */
	bool spare_stale;         /* a library, lodge.ini or restart.txt
	                           * changed since the spare was made */

	/* procmode.c: process mode (interpreter = main, or an import error
	 * that says the code can't live in a sub-interpreter). */
	bool is_process_mode;
	char mode_reason[256];
	_Atomic(struct appproc *) proc; /* the process that serves it */
	int proc_version;
	int64_t proc_restart_due;       /* after a crash; 0: none */
	int proc_backoff_ms;
};

/* One serving thread. */
struct wthread {
	int idx;
	pthread_t tid;
	PyThreadState *main_ts; /* permanent, first on the thread (§5.6) */
	struct cgi_env *cgi;
	struct req req;
	PyThreadState *held_ts; /* the GIL is held (kept between requests) */
	int64_t held_since;
	int nheld;
	PyThreadState *gil_ts; /* saved while a wait released the GIL */
	int gil_depth;
	/* The GIL queue (wsgi.c). */
	struct wthread *gilq_next;
	bool gilq_turn;
	pthread_cond_t gilq_cond;
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
	struct listener listeners[WORKER_MAX_LISTEN];
	int epfd;

	/* handoff.c: other processes of the worker. */
	char **argv;                /* our command line, for successors */
	const char *app_process;    /* set: we are that app's process */
	struct chan *up;            /* parent (app process) / predecessor */
	struct chan *successor;     /* set once a successor took over */
	atomic_bool is_draining;    /* hand every connection to successor */
	int64_t drain_deadline;
	bool is_replacing;          /* a successor is being started */
	char replace_why[160];
	pthread_mutex_t procs_lock; /* guards procs and their reports */
	struct appproc *procs;

	/* front.c: the router channel; NULL without --router-fd. */
	struct chan *router;
	atomic_int router_state;    /* enum front_state */
	atomic_bool stop_asked;     /* the main thread drains and exits */
	int64_t request_timeout_ms; /* --request-timeout; 0: none */

	struct app *apps[WORKER_MAX_APPS];
	int napps;

	struct wthread *threads;
	PyThreadState *main_ts;  /* the main interpreter's startup tstate */

	pthread_mutex_t conns_lock; /* guards the registry below */
	struct conn *conns;
	int nconns;
	atomic_int nclosing;        /* out of the registry, DONE still to
	                               send: a drain waits for them too */
	atomic_int busy;            /* connections being served */
	atomic_bool stopping;
	/* handoff.c: a successor started but not handed over yet (its pid,
	 * or 0), which a stop must not leave behind (worker_drain_and_exit). */
	atomic_int successor_starting;
	atomic_llong last_sweep;

	int settle_ms;              /* reload settle delay */
	int64_t idle_exit_ms;       /* exit when idle this long; 0: never */
	uint64_t max_memory;        /* RSS that asks for a process replacement */
	const char *control_path;   /* the worker's control socket */
	int reload_efd;             /* eventfd: wakes the watcher thread */
};

extern struct worker_ctx wctx;

/* pyhost.c: the embedded interpreter. */
int pyhost_init(void);
/* Builds a new generation of app (as the calling thread, which must not
 * hold the GIL).  Returns NULL and fills app->reason if the code fails to
 * import; the traceback went to the app's log. */
struct app_gen *pyhost_build(struct app *app, PyThreadState **main_ts);
/* Makes app->spare: a new interpreter with lodge's module but not the
 * app (watcher thread, no GIL held).  0 or -1. */
int pyhost_make_spare(struct app *app, PyThreadState **main_ts);

/* preload.c: warm spares (the libraries imported ahead of a reload). */
/* With gen's GIL held: remembers the libraries gen imported. */
void preload_list(struct app_gen *gen);
void preload_free_list(struct app *app);
/* Watcher thread, no GIL held: has app->spare import libraries until
 * deadline (monotonic ms; at least one).  True if some are left. */
bool preload_step(struct app *app, int64_t deadline);
/* With the spare's GIL held, before the app is imported in it: may the
 * spare be used?  False (and why, in the app's log) if it must go. */
bool preload_usable(struct app *app);
/* Process mode: prepares app in the main interpreter itself. */
struct app_gen *pyhost_build_main(struct app *app);
/* Ends a generation that serves no request any more (the calling thread
 * holds no GIL; main_ts is its main-interpreter state).  Returns 0, or -1
 * if app threads would not end: the interpreter is then parked (never
 * ended) and gen->is_parked is set. */
int pyhost_destroy(struct app_gen *gen, PyThreadState **main_ts);

/* reload.c: the watcher thread: inotify, settle, build, swap, retire.
 * reload_start returns once the watcher built every app. */
int reload_start(void);
/* Called with the GIL of gen's interpreter held, after a request grew
 * sys.modules. */
void reload_modules_grew(struct app_gen *gen);
/* Keeps a generation that can't be ended; asks for a process
 * replacement. */
void reload_park(struct app_gen *gen);
/* Asks the watcher thread for a process replacement (any thread). */
void reload_request_replace(const char *why);
/* Asks for a reload of app as soon as possible (control socket). */
void reload_request(struct app *app);

/* control.c: the worker's control socket. */
int control_open(const char *path);
int control_fd(void);
/* Answers the connections already queued, then closes the socket. */
void control_close(void);
void control_serve(void);

/* worker.c */
void drain_claim_idle(void);
void worker_start_threads(void);
void worker_drain_and_exit(void);
/* Answers 504 to (or cuts) every request past --request-timeout; called
 * every few hundred ms by the main thread.  Never blocks. */
void worker_timeout_sweep(void);
/* True while a listening socket of ours is open. */
bool worker_has_listener(void);
/* About to exit with requests unfinished: ends every front connection
 * (shutdown) and says DONE for it, so that the router, whose channel may
 * outlive us (a successor shares it), does not keep the visitor
 * waiting. */
void worker_abandon_fronts(void);

/* handoff.c: channels, connection handoff, process replacement. */
/* Arms a connection in the epoll set; pending: bytes already buffered. */
void conn_arm(struct conn *c, bool is_new, bool pending);
/* The connection's request is done: re-arm it, or give it to the
 * successor / parent.  Takes c. */
void conn_release(struct conn *c);
/* Removes c from the registry and frees it (closes its descriptor). */
void conn_close(struct conn *c);
void conn_register(struct conn *c);
/* Sends c (descriptor and buffered bytes) over ch; frees c locally.
 * Returns 0, or -1 with c untouched. */
int conn_send(struct chan *ch, struct conn *c);
/* Sends c's descriptor and bytes without closing anything. */
int conn_send_fd(struct chan *ch, struct conn *c);
/* A channel in the epoll set is readable (a serving thread).  Returns a
 * front connection for the calling thread to serve (serve_conn) at once,
 * its head already here, or NULL. */
struct conn *chan_readable(struct chan *ch);
int chan_add(struct chan *ch);
/* Starts a lodge-worker with extra arguments and the given descriptors
 * inherited; returns its pid and our end of a fresh channel. */
pid_t handoff_spawn(const char *const *extra, const int *keep, int nkeep,
    int *chan_r);
/* Waits on a fresh channel for READY (1) or FAILED/EOF (0); -1 timeout. */
int handoff_wait_ready(int fd, int timeout_ms, char *why, size_t why_size);
/* Starts a successor process and hands it everything (watcher thread). */
int replace_request(const char *why);
const char *replace_error(void);
/* Watcher housekeeping: RSS limit, and exit once drained. */
void replace_tick(void);

/* front.c: the router channel (--router-fd). */
/* At start (main thread): sends HELLO and adds fd to the epoll set.
 * Takes fd.  0, or -1 if fd is not a SEQPACKET socket. */
int front_open(int fd);
/* A message on the router channel (a serving thread).  0, or -1 with
 * *errstr_r set: the router sent garbage, cut it off.  A FRONT's
 * connection is registered, idle and not in the epoll set, in *serve_r,
 * for the caller to serve; else *serve_r is NULL. */
int front_message(struct chan *ch, struct msg *m, struct conn **serve_r,
    const char **errstr_r);
/* The router channel closed (why NULL) or was cut off (why says why). */
void front_closed(struct chan *ch, const char *why);
/* A connection from a MSG_FRONT (router, predecessor or parent): takes
 * m->fd (closed on failure).  owes_done: we send DONE when we close it.
 * Returns NULL with errno EPROTO (bad message: *errstr_r) or ENOMEM. */
struct conn *front_conn_new(const struct msg *m, bool owes_done,
    const char **errstr_r);
/* Sends front connection c (descriptor, record, bytes read) as a
 * MSG_FRONT on sock; nothing is closed.  0 or -1 (errno). */
int front_send_conn(int sock, const struct conn *c);
/* Tells the router we are done with connection id (any thread; a
 * failure is ignored: the router then keeps its copy a little longer). */
void front_send_done(uint32_t id);
/* Before we stop taking work (main thread): DRAIN, then serve what the
 * router already sent until it answers, the channel closes or 5 s pass. */
void front_leave(void);
/* The descriptor a successor must inherit, or -1. */
int front_fd(void);
/* The successor is ready: it reads the channel from now on. */
void front_handover(void);

/* procmode.c */
bool procmode_needed(const char *reason);
int procmode_start(struct app *app, const char *why);
/* Routes a connection to the app's process; 0, or -1 (answer 503). */
int procmode_route(struct app *app, struct conn *c);
void procmode_chan_closed(struct appproc *p);
void procmode_tick(void);
/* The app process: serves app in the main interpreter. */
int procmode_child_main(void);
void procmode_reload_asked(struct appproc *p);
void procmode_drain_all(void);
bool procmode_all_gone(void);
/* A new process for a process-mode app (watcher thread). */
void procmode_reload(struct app *app);

/* app.c: discovery and per-request selection. */
int app_scan(const char *apps_dir, const char *only);
/* Builds app's first generation, or starts its process (watcher thread). */
void app_build_first(struct app *app, PyThreadState **main_ts);
struct app *app_find(const char *name, size_t len);
struct app_gen *app_acquire(struct app *app);
void app_release(struct app_gen *gen);
int app_cap_enter(struct app *app);
void app_cap_leave(struct app *app);

/* wsgi.c: the _lodge built-in module and one WSGI call. */
PyObject *wsgi_module_init(void);
/* With a new interpreter's GIL held: imports _lodge there and sends the
 * interpreter's sys.stdout and sys.stderr to app's log.  Its state, or
 * NULL (error cleared). */
struct wsgi_state *wsgi_bind(struct app *app);
/* The site-packages of app's venv (lodge.ini venv), or "" if none. */
void wsgi_venv_site(const struct app *app, char *buf, size_t size);
/* Sets up a fresh interpreter (sys.stdout/err to the app log, sys.path,
 * module state) and imports the app; the GIL of gen->interp is held.
 * Returns 0 or -1 (reason filled). */
int wsgi_prepare(struct app_gen *gen, char *reason, size_t reason_size);
/* Serves one request in gen; the calling thread holds no GIL.  Returns 0
 * if the connection may carry another request, -1 to close it. */
int wsgi_serve(struct wthread *t, struct app_gen *gen, struct req *r);
/* Takes the GIL with ts, in turn with the serving threads (FIFO). */
void wsgi_gil_enter(PyThreadState *ts);
/* Lets go of a GIL that wsgi_serve kept for the next request. */
void wsgi_gil_drop(struct wthread *t);
/* Logs the current Python exception with its traceback to app's log and
 * clears it; fills reason (may be NULL) with its one-line summary. */
void wsgi_log_exception(struct app *app, const char *what, char *reason,
    size_t reason_size);
/* With gen's GIL held: the files of modules imported from roots (sorted,
 * malloc'd, caller frees); updates gen->nmodules. */
int wsgi_module_files(struct app_gen *gen, const char *const *roots,
    size_t nroots, char ***files_r, size_t *nfiles_r);
/* With gen's GIL held: joins app threads for up to timeout seconds and
 * returns how many still run. */
int wsgi_threads_left(struct app_gen *gen, double timeout);

#endif
