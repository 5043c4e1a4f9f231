/*
 * pyhost.c: the embedded CPython of lodge-worker: start-up of the main
 * interpreter and the birth of an app's sub-interpreter (a "generation").
 *
 * Runs in lodge-worker as the hosted user.  Follows EMBEDDING.md §7: an
 * isolated config (no environment variables, no user site, no signal
 * handlers: the C daemon owns signals), sys.executable pinned to Debian's
 * python3 (never whatever "python3" PATH finds), the single-phase-init
 * modules known to leak on reload imported once in main, and the main
 * interpreter's GIL released for good once start-up is over.
 */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#ifndef LODGE_PYTHON3
#define LODGE_PYTHON3 "/usr/bin/python3.11"
#endif

int pyhost_init(void)
{
	PyConfig config;
	PyStatus status;

	if (PyImport_AppendInittab("_lodge", wsgi_module_init) < 0) {
		log_error("python: cannot register the _lodge module");
		return -1;
	}
	PyConfig_InitIsolatedConfig(&config);
	/* site stays on: dist-packages (Debian's Flask and friends) and a
	 * venv's .pth files need it. */
	config.site_import = 1;
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

	/* EMBEDDING.md §3: single-phase-init extensions leak megabytes on
	 * every sub-interpreter reload unless main imported them first.
	 * Either may be missing; that is fine. */
	PyRun_SimpleString(
	    "for _m in ('_decimal', 'markupsafe._speedups'):\n"
	    "    try:\n"
	    "        __import__(_m)\n"
	    "    except Exception:\n"
	    "        pass\n"
	    "del _m\n");
	wctx.main_ts = PyEval_SaveThread();
	return 0;

fail:
	log_error("python: initialisation failed: %s%s%s",
	    status.func ? status.func : "", status.func ? ": " : "",
	    status.err_msg ? status.err_msg : "unknown error");
	PyConfig_Clear(&config);
	return -1;
}

struct app_gen *pyhost_build(struct app *app)
{
	struct app_gen *gen = calloc(1, sizeof(*gen));
	PyThreadState *owner;

	if (gen == NULL) {
		snprintf(app->reason, sizeof(app->reason), "out of memory");
		return NULL;
	}
	gen->app = app;
	PyEval_RestoreThread(wctx.main_ts);
	owner = Py_NewInterpreter();
	if (owner == NULL) {
		snprintf(app->reason, sizeof(app->reason),
		    "cannot create a sub-interpreter");
		PyThreadState_Swap(wctx.main_ts);
		wctx.main_ts = PyEval_SaveThread();
		free(gen);
		return NULL;
	}
	gen->owner = owner;
	gen->interp = owner->interp;
	if (wsgi_prepare(gen, app->reason, sizeof(app->reason)) < 0) {
		/* The interpreter never served: end it now (EMBEDDING.md
		 * §5 item 2: swap back to main after End on 3.11). */
		Py_EndInterpreter(owner);
		PyThreadState_Swap(wctx.main_ts);
		wctx.main_ts = PyEval_SaveThread();
		free(gen);
		return NULL;
	}
	gen->version = ++app->next_version;
	/* Leave the new interpreter holding no GIL; serving threads enter it
	 * with thread states of their own. */
	PyEval_SaveThread();
	return gen;
}
