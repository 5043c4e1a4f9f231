/*
 * pyhost.c: the embedded CPython of lodge-worker: start-up of the main
 * interpreter and the birth of an app's sub-interpreter (a "generation").
 *
 * Runs in lodge-worker as the hosted user.  Follows EMBEDDING.md §7: an
 * isolated config (no environment variables, no user site, no signal
 * handlers: the C daemon owns signals), sys.executable pinned to Debian's
 * python3 (never whatever "python3" PATH finds), the single-phase-init
 * modules known to leak on reload imported in main before any
 * sub-interpreter imports them, and the main interpreter's GIL released
 * for good once start-up is over.
 */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <malloc.h>
#include <string.h>

#include "log.h"
#include "util.h"

#ifndef LODGE_PYTHON3
#define LODGE_PYTHON3 "/usr/bin/python3.11"
#endif

/*
 * On 3.11, the main interpreter of a worker that routes (not an app's own
 * process, --app-process) skips site.  That main interpreter runs no app
 * code, and site's work there (dist-packages on sys.path, every .pth file,
 * sitecustomize) took 4-6 ms of each cold start for nothing.  The apps'
 * interpreters must still run site exactly as before (Debian's
 * dist-packages, a venv's .pth files, sys.flags.no_site 0 for subprocess
 * and multiprocessing, exit() and help()), and Py_NewInterpreter copies
 * the PyConfig of the interpreter it is called from, site_import included.
 * So main starts with site_import 0 and then gets site_import 1 written
 * into its own PyConfig: every interpreter made from it runs site as
 * usual.  The field is written in place on purpose: the private
 * _PyInterpreterState_SetConfig would re-read the whole configuration,
 * which recomputes the process-wide path configuration and leaves
 * sys._stdlib_dir empty in later interpreters.  Other versions keep site
 * in main (no measurement says the trick is right there).
 * tests/integration/test_pyhost.py checks what an app sees.
 */
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
#define PYHOST_MAIN_SKIPS_SITE 1
#else
#define PYHOST_MAIN_SKIPS_SITE 0
#endif

/*
 * The leak guard (EMBEDDING.md §3, §5 item 5).  On 3.11 a single-phase-init
 * extension that a sub-interpreter imports first is initialised again in
 * every later interpreter, leaking what its C statics held (megabytes per
 * reload for Flask); imported by the main interpreter first, it is loaded
 * from main's copy instead.  Importing them in main at start-up cost about
 * a third of a cold start (20-30 ms: markupsafe brings re, typing and
 * enum; _decimal brings collections and numbers) for every app, including
 * the many that never use them.  So main imports one only when a
 * sub-interpreter is about to: every sub-interpreter gets, first in
 * sys.meta_path, a finder that never finds anything but, asked for one of
 * these names, has main import it before the usual finders load it in the
 * sub.  The order is the same as with an import at start-up (main first),
 * which is also what 3.13 does by itself (gh-117953).  importlib calls
 * find_spec holding 3.11's import lock, which is the process's and
 * re-entrant: main's import runs on the same thread, and other threads'
 * imports wait for it (once per module and process).  An app that takes
 * the finder out of sys.meta_path only loses the guard: its reloads leak
 * as they did before the guard existed.
 */
static const char *const pyhost_guarded[] = {
	"_decimal",
	"markupsafe._speedups",
};

/* Runs site in main (current, GIL held) unless it ran: the guarded
 * modules may come from dist-packages (Debian's python3-markupsafe).
 * site.main() is called by hand because main's sys.flags.no_site stays
 * 1 when main skipped site at start (PYHOST_MAIN_SKIPS_SITE). */
static void pyhost_main_site(void)
{
	PyObject *site, *res;

	if (PyDict_GetItemString(PyImport_GetModuleDict(), "site") != NULL)
		return;
	site = PyImport_ImportModule("site");
	res = site != NULL ? PyObject_CallMethod(site, "main", NULL) : NULL;
	if (res == NULL)
		PyErr_Clear();
	Py_XDECREF(res);
	Py_XDECREF(site);
}

/* Imports name in the main interpreter, from the calling thread, which
 * holds the GIL in a sub-interpreter; comes back to it.  Failures are
 * silent: the module may not exist, and the sub-interpreter's own import
 * then fails or succeeds on its own, as it would have without the guard. */
static void pyhost_import_in_main(const char *name)
{
	PyThreadState *sub_ts = PyThreadState_Get(), *ts;
	PyObject *mod;

	/* A thread state of its own: this thread may be a serving thread, the
	 * watcher or a thread the app started, and the last has no
	 * main-interpreter state.  It is never the thread's first state, so
	 * the GILState slot stays where it was (§5 item 6). */
	ts = PyThreadState_New(PyInterpreterState_Main());
	if (ts == NULL)
		return;
	PyThreadState_Swap(ts);
	pyhost_main_site();
	mod = PyImport_ImportModule(name);
	if (mod == NULL)
		PyErr_Clear();
	Py_XDECREF(mod);
	PyThreadState_Clear(ts);
	PyThreadState_Swap(sub_ts);
	PyThreadState_Delete(ts);
}

/* find_spec(name, path, target=None) of the guard's finder: always None,
 * after main imported name if it is a guarded one. */
static PyObject *pyhost_guard_find_spec(PyObject *self, PyObject *args)
{
	PyObject *name = NULL, *path = NULL, *target = NULL;

	(void)self;
	if (!PyArg_UnpackTuple(args, "find_spec", 1, 3, &name, &path, &target))
		return NULL;
	if (!PyUnicode_Check(name))
		Py_RETURN_NONE;
	for (size_t i = 0; i < sizeof(pyhost_guarded) /
	    sizeof(pyhost_guarded[0]); i++) {
		if (PyUnicode_CompareWithASCIIString(name, pyhost_guarded[i])
		    == 0) {
			pyhost_import_in_main(pyhost_guarded[i]);
			break;
		}
	}
	Py_RETURN_NONE;
}

static PyMethodDef pyhost_guard_methods[] = {
	{"find_spec", pyhost_guard_find_spec, METH_VARARGS,
	    "lodge's leak guard: has the main interpreter import a leaky "
	    "single-phase-init extension first; never finds anything."},
	{NULL, NULL, 0, NULL},
};

/* Puts the guard's finder first in the current sub-interpreter's
 * sys.meta_path.  A module object serves as the finder: importlib only
 * looks up its find_spec.  -1 with a Python error set. */
static int pyhost_guard_install(void)
{
	PyObject *finder = PyModule_New("_lodge_leak_guard");
	PyObject *meta_path = PySys_GetObject("meta_path"); /* borrowed */
	int rc = -1;

	if (finder == NULL)
		return -1;
	if (meta_path == NULL || !PyList_Check(meta_path))
		PyErr_SetString(PyExc_RuntimeError, "sys.meta_path is not a list");
	else if (PyModule_AddFunctions(finder, pyhost_guard_methods) == 0 &&
	    PyList_Insert(meta_path, 0, finder) == 0)
		rc = 0;
	Py_DECREF(finder);
	return rc;
}

/* Installs the guard in a new sub-interpreter (current, GIL held).  A
 * failure costs only memory on reloads: it is logged, never fatal. */
static void pyhost_guard(const struct app *app)
{
	if (pyhost_guard_install() == 0)
		return;
	PyErr_Clear();
	log_warn("app %s: cannot install the import hook that keeps reloads "
	    "from leaking; reloads of this interpreter may use more memory",
	    app->name);
}

int pyhost_init(void)
{
	PyConfig config;
	PyStatus status;
	bool is_lean_main = PYHOST_MAIN_SKIPS_SITE && wctx.app_process == NULL;

	if (PyImport_AppendInittab("_lodge", wsgi_module_init) < 0) {
		log_error("python: cannot register the _lodge module");
		return -1;
	}
	PyConfig_InitIsolatedConfig(&config);
	/* site stays on in every interpreter that runs an app:
	 * dist-packages (Debian's Flask and friends) and a venv's .pth files
	 * need it.  A routing worker's main runs none (see
	 * PYHOST_MAIN_SKIPS_SITE). */
	config.site_import = is_lean_main ? 0 : 1;
	config.install_signal_handlers = 0;
	config.parse_argv = 0;
	status = PyConfig_SetBytesString(&config, &config.executable,
	    LODGE_PYTHON3);
	if (PyStatus_Exception(status))
		goto fail;
	status = PyConfig_SetBytesString(&config, &config.program_name,
	    LODGE_PYTHON3);
	if (PyStatus_Exception(status))
		goto fail;
	status = Py_InitializeFromConfig(&config);
	if (PyStatus_Exception(status))
		goto fail;
	PyConfig_Clear(&config);
#if PYHOST_MAIN_SKIPS_SITE
	/* From here on, interpreters made from main run site. */
	if (is_lean_main)
		((PyConfig *)_PyInterpreterState_GetConfig(
		    PyInterpreterState_Main()))->site_import = 1;
#endif

	/* The leak guard's modules are imported in main on demand (see
	 * pyhost_guarded), not here. */
	wctx.main_ts = PyEval_SaveThread();
	return 0;

fail:
	log_error("python: initialisation failed: %s%s%s",
	    status.func ? status.func : "", status.func ? ": " : "",
	    status.err_msg ? status.err_msg : "unknown error");
	PyConfig_Clear(&config);
	return -1;
}

/* Ends gen's interpreter: its owner must be current with the GIL held and
 * be its last thread state.  Returns holding no GIL. */
static void pyhost_end(struct app_gen *gen, PyThreadState **main_ts)
{
	int64_t t0 = util_now_ms();

	/* EMBEDDING.md §5 item 2: on 3.11 End leaves the GIL held; going
	 * back with PyEval_RestoreThread(main) would deadlock.  Swap. */
	Py_EndInterpreter(gen->owner);
	gen->end_ms = util_now_ms() - t0;
	gen->owner = NULL;
	PyThreadState_Swap(*main_ts);
	*main_ts = PyEval_SaveThread();
}

/* Takes app's spare interpreter (made ahead of time by pyhost_make_spare,
 * its libraries imported by preload.c) and enters it; NULL if there is
 * none, or if it must not be used (then it is ended here). */
static struct app_gen *pyhost_take_spare(struct app *app,
    PyThreadState **main_ts)
{
	struct app_gen *spare = app->spare;

	if (spare == NULL)
		return NULL;
	app->spare = NULL;
	wsgi_gil_enter(spare->owner);
	if (preload_usable(app))
		return spare;
	PyEval_SaveThread();
	if (pyhost_destroy(spare, main_ts) < 0)
		reload_park(spare);
	else
		free(spare);
	return NULL;
}

struct app_gen *pyhost_build(struct app *app, PyThreadState **main_ts)
{
	struct app_gen *gen = calloc(1, sizeof(*gen)), *spare;
	PyThreadState *owner;

	if (gen == NULL) {
		snprintf(app->reason, sizeof(app->reason), "out of memory");
		return NULL;
	}
	gen->app = app;
	spare = pyhost_take_spare(app, main_ts);
	if (spare != NULL) {
		/* Only the app's own import is left to do. */
		free(gen);
		gen = spare;
	} else {
		wsgi_gil_enter(*main_ts);
		owner = Py_NewInterpreter();
		if (owner == NULL) {
			snprintf(app->reason, sizeof(app->reason),
			    "cannot create a sub-interpreter");
			PyThreadState_Swap(*main_ts);
			*main_ts = PyEval_SaveThread();
			free(gen);
			return NULL;
		}
		gen->owner = owner;
		gen->interp = owner->interp;
		pyhost_guard(app);
	}
	if (wsgi_prepare(gen, app->reason, sizeof(app->reason)) < 0) {
		/* The interpreter never served: end it now (EMBEDDING.md
		 * §5 item 2: swap back to main after End on 3.11). */
		if (gen->ws != NULL && wsgi_threads_left(gen, 2.0) > 0) {
			/* The failed import left threads running: this
			 * interpreter can't be ended (§5 item 3). */
			userlog_printf(app->log, "the failed import left "
			    "threads running; its interpreter is parked until "
			    "the worker process is replaced");
			gen->is_parked = true;
			PyThreadState_Swap(*main_ts);
			*main_ts = PyEval_SaveThread();
			reload_park(gen);
			return NULL;
		}
		Py_XDECREF(gen->callable);
		pyhost_end(gen, main_ts);
		free(gen);
		return NULL;
	}
	gen->version = ++app->next_version;
	/* Leave the new interpreter holding no GIL; serving threads enter it
	 * with thread states of their own. */
	PyEval_SaveThread();
	return gen;
}

int pyhost_destroy(struct app_gen *gen, PyThreadState **main_ts)
{
	int i, left;

	wsgi_gil_enter(gen->owner);
	/* EMBEDDING.md §5 item 1: End aborts while another thread state of
	 * the interpreter exists.  No request runs in it (inflight is 0 and
	 * it is no longer published), so the serving threads' states are
	 * idle; deleting them from here is safe because every serving thread
	 * made a main-interpreter state first (§5 item 6). */
	for (i = 0; i < WORKER_MAX_THREADS; i++) {
		if (gen->tstates[i] != NULL) {
			PyThreadState_Clear(gen->tstates[i]);
			PyThreadState_Delete(gen->tstates[i]);
			gen->tstates[i] = NULL;
		}
	}
	if (gen->watch_ts != NULL) {
		PyThreadState_Clear(gen->watch_ts);
		PyThreadState_Delete(gen->watch_ts);
		gen->watch_ts = NULL;
	}
	/* §5 item 3: End joins non-daemon threads forever and aborts on
	 * daemon ones.  Join with a deadline; if any survive, never End:
	 * park the interpreter and let the process be replaced. */
	left = wsgi_threads_left(gen, 2.0);
	if (left > 0) {
		userlog_printf(gen->app->log, "version %d: %d thread(s) of the "
		    "app did not end; its interpreter is parked until the "
		    "worker process is replaced", gen->version, left);
		gen->is_parked = true;
		PyEval_SaveThread();
		return -1;
	}
	Py_CLEAR(gen->callable);
	pyhost_end(gen, main_ts);
	/* §2: freed interpreter memory stays in the heap until trimmed. */
	malloc_trim(0);
	return 0;
}

int pyhost_make_spare(struct app *app, PyThreadState **main_ts)
{
	struct app_gen *gen = calloc(1, sizeof(*gen));

	if (gen == NULL)
		return -1;
	gen->app = app;
	wsgi_gil_enter(*main_ts);
	gen->owner = Py_NewInterpreter();
	if (gen->owner == NULL) {
		PyThreadState_Swap(*main_ts);
		*main_ts = PyEval_SaveThread();
		free(gen);
		return -1;
	}
	gen->interp = gen->owner->interp;
	pyhost_guard(app);
	/* _lodge's types and bootstrap too: everything but the app (and,
	 * later, its libraries: preload.c). */
	gen->ws = wsgi_bind(app);
	if (gen->ws == NULL) {
		pyhost_end(gen, main_ts);
		free(gen);
		return -1;
	}
	PyEval_SaveThread();
	app->spare = gen;
	app->preload_next = 0;
	app->spare_preloaded = 0;
	app->spare_begun = false;
	app->spare_stale = false;
	return 0;
}

struct app_gen *pyhost_build_main(struct app *app)
{
	struct app_gen *gen = calloc(1, sizeof(*gen));

	if (gen == NULL) {
		snprintf(app->reason, sizeof(app->reason), "out of memory");
		return NULL;
	}
	gen->app = app;
	PyEval_RestoreThread(wctx.main_ts);
	/* Process mode: the app owns this process's main interpreter, which
	 * is never ended; a reload is a new process. */
	gen->interp = PyInterpreterState_Main();
	if (wsgi_prepare(gen, app->reason, sizeof(app->reason)) < 0) {
		wctx.main_ts = PyEval_SaveThread();
		free(gen);
		return NULL;
	}
	gen->version = ++app->next_version;
	wctx.main_ts = PyEval_SaveThread();
	return gen;
}
