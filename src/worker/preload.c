/*
 * preload.c: warm spares.  Once an app has been reloaded, the watcher keeps
 * a spare interpreter ready for its next reload (reload.c make_spares).
 * A bare spare saves Py_NewInterpreter and site, which is most of a small
 * app's build; for an app on a framework, the import of the framework is
 * most of it (Flask: ~200 ms of a ~210 ms build).  So the spare also
 * imports, ahead of time and a module at a time, the libraries the
 * serving version imported: modules whose file is under the system's
 * Python (sys.prefix) or in the app's venv, never a file of the app's own
 * folder.  The next reload then imports only the app's own code.
 *
 * Runs in lodge-worker as the hosted user, on the watcher thread.
 *
 * What keeps a warm spare equal to a fresh interpreter, as far as the app
 * can tell:
 *   - the same sys.path as a fresh build (the venv and site's .pth files
 *     exactly as _setup adds them; the app folder is put first by _setup
 *     at the build, as always), the same os.environ (lodge.ini's env);
 *   - a library is imported only if importlib finds it at the very file
 *     the serving version loaded it from;
 *   - at the build, a library the spare imported that a file of the app's
 *     folder would now shadow (a new flask.py beside wsgi.py) makes the
 *     watcher throw the spare away and build from scratch;
 *   - so does any change in the venv or outside the app folder, lodge.ini
 *     and restart.txt (reload.c note_burst), and a reload asked for by
 *     hand (reload_request): a touch of restart.txt or `lodgectl reload`
 *     is a full, fresh import, as users expect of it;
 *   - `preload = no` in lodge.ini turns it off, for apps whose imports
 *     depend on what runs before them (gevent's monkey-patching, a
 *     library configured by an environment variable the app sets in
 *     wsgi.py).
 * The cost is memory: a warm spare holds a second copy of the libraries
 * (Flask: about 15 MiB) while the app is being edited; an app never
 * reloaded has no spare.
 */
#include "worker.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define PRELOAD_MODULE "_lodge_preload"
#define PRELOAD_MAX 4096 /* libraries remembered per app */

static const char preload_py[] =
    "import sys as _sys, os as _os\n"
    /* (name, file) of the library modules imported so far, in import
     * order (sys.modules keeps it).  Reads module dicts only, so no
     * module-level __getattr__ runs. */
    "def libs(app_dir, venv_site):\n"
    "    roots = {_sys.prefix, _sys.base_prefix, _sys.exec_prefix}\n"
    "    roots = [_os.path.abspath(r) + _os.sep for r in roots\n"
    "             if r and _os.path.abspath(r) != _os.sep]\n"
    "    venv = _os.path.abspath(venv_site) + _os.sep if venv_site else None\n"
    "    app = _os.path.abspath(app_dir) + _os.sep\n"
    "    out = []\n"
    "    for name, m in list(_sys.modules.items()):\n"
    "        if not isinstance(name, str) or name.startswith('_lodge'):\n"
    "            continue\n"
    "        d = getattr(m, '__dict__', None)\n"
    "        f = d.get('__file__') if isinstance(d, dict) else None\n"
    "        if not isinstance(f, str):\n"
    "            continue\n"
    "        f = _os.path.abspath(f)\n"
    "        if venv and f.startswith(venv):\n"
    "            out.append((name, f))\n"
    "        elif not f.startswith(app) and any(f.startswith(r)\n"
    "                                           for r in roots):\n"
    "            out.append((name, f))\n"
    "    return out\n"
    /* In the spare: sys.path and os.environ as _setup will make them,
     * less the app folder, which _setup puts first at the build. */
    "def begin(venv_site, env):\n"
    "    global base\n"
    "    before = list(_sys.path)\n"
    "    if venv_site:\n"
    "        import site\n"
    "        site.addsitedir(venv_site)\n"
    "    added = [p for p in _sys.path if p not in before]\n"
    "    _sys.path[:] = added + before\n"
    "    for k, v in env.items():\n"
    "        _os.environ._data[_os.environ.encodekey(k)] = "
    "_os.environ.encodevalue(v)\n"
    "    base = set(_sys.modules)\n"
    /* Imports name if it is found at file; 1 if it was imported. */
    "def one(name, file):\n"
    "    if name in _sys.modules:\n"
    "        return 0\n"
    "    try:\n"
    "        import importlib.util\n"
    "        spec = importlib.util.find_spec(name)\n"
    "        if spec is None or not isinstance(spec.origin, str) or \\\n"
    "                _os.path.abspath(spec.origin) != file:\n"
    "            return 0\n"
    "        __import__(name)\n"
    "        return 1\n"
    "    except BaseException:\n"
    "        return 0\n"
    /* The name of a preloaded package or module that a file in app_dir
     * would shadow, or None. */
    "def shadowed(app_dir):\n"
    "    import importlib.machinery as mach\n"
    "    tops = {n.partition('.')[0] for n in _sys.modules\n"
    "            if isinstance(n, str) and n not in base}\n"
    "    for top in sorted(tops):\n"
    "        try:\n"
    "            if mach.PathFinder.find_spec(top, [app_dir]) is not None:\n"
    "                return top\n"
    "        except Exception:\n"
    "            return top\n"
    "    return None\n";

/* The preload module of the current interpreter (GIL held), made on first
 * use; a borrowed reference (sys.modules holds it), or NULL with the error
 * cleared. */
static PyObject *preload_module(void)
{
	PyObject *modules = PyImport_GetModuleDict(), *mod, *code, *res;

	mod = PyDict_GetItemString(modules, PRELOAD_MODULE);
	if (mod != NULL)
		return mod;
	mod = PyModule_New(PRELOAD_MODULE);
	if (mod == NULL)
		goto fail;
	code = Py_CompileString(preload_py, "<lodge preload>", Py_file_input);
	res = code ? PyEval_EvalCode(code, PyModule_GetDict(mod),
	    PyModule_GetDict(mod)) : NULL;
	Py_XDECREF(code);
	if (res == NULL || PyDict_SetItemString(modules, PRELOAD_MODULE,
	    mod) < 0) {
		Py_XDECREF(res);
		Py_DECREF(mod);
		goto fail;
	}
	Py_DECREF(res);
	Py_DECREF(mod); /* sys.modules holds it */
	return mod;
fail:
	PyErr_Clear();
	return NULL;
}

/* Calls the preload module's fname with the Py_BuildValue args; a new
 * reference, or NULL with the error cleared. */
static PyObject *preload_call(const char *fname, const char *fmt, ...)
{
	PyObject *mod = preload_module(), *fn, *args, *res = NULL;
	va_list ap;

	if (mod == NULL)
		return NULL;
	fn = PyObject_GetAttrString(mod, fname);
	va_start(ap, fmt);
	args = fn ? Py_VaBuildValue(fmt, ap) : NULL;
	va_end(ap);
	if (args != NULL)
		res = PyObject_CallObject(fn, args);
	Py_XDECREF(args);
	Py_XDECREF(fn);
	if (res == NULL)
		PyErr_Clear();
	return res;
}

void preload_free_list(struct app *app)
{
	for (size_t i = 0; i < app->npreload; i++) {
		free(app->preload_name[i]);
		free(app->preload_file[i]);
	}
	free(app->preload_name);
	free(app->preload_file);
	app->preload_name = app->preload_file = NULL;
	app->npreload = 0;
	app->preload_next = 0;
}

void preload_list(struct app_gen *gen)
{
	struct app *app = gen->app;
	char venv_site[4096];
	PyObject *res;
	Py_ssize_t n, i;

	if (app->has_conf && app->conf.no_preload) {
		preload_free_list(app);
		return;
	}
	wsgi_venv_site(app, venv_site, sizeof(venv_site));
	res = preload_call("libs", "(ss)", app->dir, venv_site);
	if (res == NULL || !PyList_Check(res)) {
		Py_XDECREF(res);
		return; /* keep the list we had */
	}
	preload_free_list(app);
	n = PyList_GET_SIZE(res);
	if (n > PRELOAD_MAX)
		n = PRELOAD_MAX;
	app->preload_name = calloc((size_t)n + 1, sizeof(char *));
	app->preload_file = calloc((size_t)n + 1, sizeof(char *));
	for (i = 0; app->preload_name && app->preload_file && i < n; i++) {
		const char *name, *file;

		if (!PyArg_ParseTuple(PyList_GET_ITEM(res, i), "ss", &name,
		    &file)) {
			PyErr_Clear();
			continue;
		}
		app->preload_name[app->npreload] = strdup(name);
		app->preload_file[app->npreload] = strdup(file);
		if (app->preload_name[app->npreload] == NULL ||
		    app->preload_file[app->npreload] == NULL) {
			free(app->preload_name[app->npreload]);
			free(app->preload_file[app->npreload]);
			break;
		}
		app->npreload++;
	}
	Py_DECREF(res);
}

/* os.environ's additions from lodge.ini, as a new dict (or NULL). */
static PyObject *preload_env(const struct app *app)
{
	PyObject *env = PyDict_New();

	for (size_t i = 0; env != NULL && app->has_conf && i < app->conf.nenv;
	    i++) {
		PyObject *v = PyUnicode_DecodeFSDefault(app->conf.env[i].value);

		if (v == NULL || PyDict_SetItemString(env, app->conf.env[i].key,
		    v) < 0) {
			Py_XDECREF(v);
			Py_CLEAR(env);
			break;
		}
		Py_DECREF(v);
	}
	if (env == NULL)
		PyErr_Clear();
	return env;
}

bool preload_step(struct app *app, int64_t deadline)
{
	struct app_gen *spare = app->spare;
	bool more;

	if (spare == NULL || app->preload_next >= app->npreload)
		return false;
	wsgi_gil_enter(spare->owner);
	if (!app->spare_begun) {
		char venv_site[4096];
		PyObject *env = preload_env(app), *res = NULL;

		wsgi_venv_site(app, venv_site, sizeof(venv_site));
		if (env != NULL)
			res = preload_call("begin", "(sO)", venv_site, env);
		Py_XDECREF(env);
		if (res == NULL) {
			/* Nothing imported: the spare stays a bare one. */
			app->preload_next = app->npreload;
			PyEval_SaveThread();
			return false;
		}
		Py_DECREF(res);
		app->spare_begun = true;
	}
	do {
		size_t i = app->preload_next++;
		PyObject *res = preload_call("one", "(ss)",
		    app->preload_name[i], app->preload_file[i]);

		if (res != NULL && PyLong_Check(res) && PyLong_AsLong(res) == 1)
			app->spare_preloaded++;
		Py_XDECREF(res);
	} while (app->preload_next < app->npreload &&
	    util_now_ms() < deadline);
	more = app->preload_next < app->npreload;
	PyEval_SaveThread();
	if (!more && app->spare_preloaded > 0)
		log_info("app %s: spare interpreter ready, %zu libraries "
		    "imported ahead of the next reload", app->name,
		    app->spare_preloaded);
	return more;
}

bool preload_usable(struct app *app)
{
	PyObject *res;
	bool ok;

	if (!app->spare_begun)
		return true; /* a bare spare: nothing to check */
	if (app->spare_stale) {
		userlog_printf(app->log, "a library or lodge.ini changed, or "
		    "restart.txt was touched, or a reload was asked for: "
		    "importing everything afresh");
		return false;
	}
	res = preload_call("shadowed", "(s)", app->dir);
	ok = res == Py_None;
	if (res != NULL && PyUnicode_Check(res))
		userlog_printf(app->log, "a file in the app folder now shadows "
		    "the library %s: importing everything afresh",
		    PyUnicode_AsUTF8(res));
	else if (res == NULL)
		userlog_printf(app->log, "cannot check the preloaded "
		    "libraries: importing everything afresh");
	Py_XDECREF(res);
	return ok;
}
