/*
 * appconf.h: an app's lodge.ini (~/apps/NAME/lodge.ini), parsed with
 * libinih.  Pure code (it opens one file), runs in lodge-worker as the
 * hosted user.  The file is the user's: every unknown key and bad value is
 * reported with file, line and key, and the app is marked broken; the
 * worker's other apps keep working.
 *
 *   ; all keys are optional and live outside any section or in [app]
 *   entry = pkg.module:callable      ; default: wsgi.py or app.wsgi
 *   venv = .venv                     ; relative to the app folder
 *   env.DATABASE_URL = postgres://…  ; into the app's environ
 *   threads = 2                      ; at most this many requests at once
 *   interpreter = sub | main         ; main: process mode (reload issue)
 *   preload = yes | no               ; no: reloads import every library
 *                                    ; afresh (see preload.c)
 */
#ifndef LODGE_APPCONF_H
#define LODGE_APPCONF_H

#include <stdbool.h>
#include <stddef.h>

#define APPCONF_MAX_ENV 64
#define APPCONF_MAX_THREADS 256

enum appconf_interp { APPCONF_INTERP_SUB = 0, APPCONF_INTERP_MAIN };

struct appconf_env {
	char *key;
	char *value;
};

struct appconf {
	char *entry_module;   /* "pkg.module", NULL: default entry file */
	char *entry_callable; /* "application" by default; may be dotted */
	char *venv;           /* as written (relative or absolute), or NULL */
	int threads;          /* 0: not set (the worker's --threads) */
	enum appconf_interp interp;
	bool no_preload;      /* preload = no */
	size_t nenv;
	struct appconf_env env[APPCONF_MAX_ENV];
};

/*
 * Parses path into conf (zeroed first).  Returns 0, or -1 with a message
 * in err[0..errsize) of the form "PATH:LINE: KEY: reason" (for example
 * "/home/a/apps/blog/lodge.ini:3: threads: expected a number from 1 to
 * 256, got 'many'").  A missing file is not an error for the caller to
 * decide: it returns -1 with errno ENOENT and err says so.  On success the
 * caller frees conf with appconf_free.  On -1 conf holds nothing to free.
 */
int appconf_load(const char *path, struct appconf *conf, char *err,
    size_t errsize);

/* Same, from a string (for tests); name is used in messages. */
int appconf_load_string(const char *name, const char *text,
    struct appconf *conf, char *err, size_t errsize);

void appconf_free(struct appconf *conf);

#endif
