/*
 * appconf.c: reads an app's lodge.ini (~/apps/NAME/lodge.ini) with libinih
 * and checks every key and value, so that a typo becomes a message naming
 * the file, the line and the setting instead of an app that silently runs
 * with defaults.  Runs in lodge-worker as the hosted user, on a file the
 * user owns and may have written in any way: it trusts nothing in it, keeps
 * only the first error, never stops the worker (a broken lodge.ini breaks
 * that one app) and never opens anything but the one path it is given.
 */
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "appconf.h"
#include "ini_lines.h"

#define APPCONF_KNOWN "entry, venv, env.NAME, threads, interpreter, preload"
#define APPCONF_ENV_PREFIX "env."
#define APPCONF_SECTION "app"

/*
 * The state of one parse, shared by the line callback and the key handler.
 * libinih (Debian's build) passes no line number to the handler, so the
 * reader (src/common/ini_lines.c) counts lines.
 */
struct appconf_parse {
	const char *name; /* the path, as shown in messages */
	struct appconf *conf;
	char *err;
	size_t errsize;
	int err_line;  /* line of the first error, 0: none yet */
	int err_errno; /* errno to return with that error */

	/* The source and the line reader given to libinih (ini_lines.c):
	 * lines.lineno is the line of the key the handler was given, and
	 * lines.kind says whether it is a continuation line. */
	struct ini_lines lines;

	/* The line each key was set on, to report duplicates. */
	int line_entry;
	int line_venv;
	int line_threads;
	int line_interp;
	int line_preload;
	int line_env[APPCONF_MAX_ENV];
};

/*
 * Records the first error as "NAME:LINE: what: reason".  Later errors are
 * dropped: the first one is the one to fix, and the ones after it are often
 * its consequences.  Control characters (the user's file may hold any byte)
 * are shown as '?' so the message is one clean line in a log.
 */
static void __attribute__((format(printf, 4, 5)))
appconf_fail(struct appconf_parse *p, int err_errno, const char *what,
    const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (p->err_line != 0)
		return;
	p->err_line = p->lines.lineno > 0 ? p->lines.lineno : 1;
	p->err_errno = err_errno;
	if (p->errsize == 0)
		return;

	if (what != NULL)
		snprintf(p->err, p->errsize, "%s:%d: %s: ", p->name,
		    p->err_line, what);
	else
		snprintf(p->err, p->errsize, "%s:%d: ", p->name, p->err_line);
	n = strlen(p->err);
	if (n + 1 < p->errsize) {
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errsize - n, fmt, ap);
		va_end(ap);
	}
	for (char *s = p->err; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f)
			*s = '?';
	}
}

/* A message about the file as a whole (no line): open and read errors. */
static void appconf_fail_file(
    char *err, size_t errsize, const char *name, const char *what, int errnum)
{
	if (errsize > 0)
		snprintf(
		    err, errsize, "%s: %s: %s", name, what, strerror(errnum));
}

/*
 * Called by the line reader for every line before libinih parses it.
 * lodge.ini stops at the first error: a line libinih would misread (too
 * long for its buffer, so the value would be cut and the tail parsed as a
 * line of its own; a NUL byte, which would hide the rest of the line), a
 * line that is no setting, and a section other than [app] (checked here
 * so that it is reported on its own line, even when no key follows it).
 */
static bool appconf_on_line(
    void *user, int lineno, enum ini_line_kind kind, const char *text)
{
	struct appconf_parse *p = user;

	switch (kind) {
	case INI_LINE_BLANK:
	case INI_LINE_COMMENT:
	case INI_LINE_PAIR:
	case INI_LINE_CONTINUATION:
		break;
	case INI_LINE_SECTION:
		if (strcmp(text, APPCONF_SECTION) != 0)
			appconf_fail(p, EINVAL, NULL,
			    "[%s]: unknown section (settings go before any "
			    "section or in [" APPCONF_SECTION "])",
			    text);
		break;
	case INI_LINE_SYNTAX:
		appconf_fail(
		    p, EINVAL, NULL, "syntax error (expected KEY = VALUE)");
		break;
	case INI_LINE_TOO_LONG:
		appconf_fail(p, EINVAL, NULL,
		    "line too long (max %d characters)", p->lines.max_len);
		break;
	case INI_LINE_NUL:
		appconf_fail(p, EINVAL, NULL, "line contains a NUL byte");
		break;
	}
	/* Stop after the first error: only that one is reported. */
	return p->err_line == 0;
}

static bool appconf_is_ident_start(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool appconf_is_ident_char(char c)
{
	return appconf_is_ident_start(c) || (c >= '0' && c <= '9');
}

/* True if s[0..len) is a dotted Python name ("pkg.mod", "obj.attr") in
 * ASCII: names Python could import or look up, and nothing else. */
static bool appconf_is_dotted_name(const char *s, size_t len)
{
	bool is_at_start = true;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (is_at_start)
				return false;
			is_at_start = true;
		} else if (is_at_start) {
			if (!appconf_is_ident_start(s[i]))
				return false;
			is_at_start = false;
		} else if (!appconf_is_ident_char(s[i])) {
			return false;
		}
	}
	return !is_at_start;
}

static bool appconf_is_env_name(const char *s)
{
	if (!appconf_is_ident_start(*s))
		return false;
	for (s++; *s != '\0'; s++)
		if (!appconf_is_ident_char(*s))
			return false;
	return true;
}

static char *appconf_strdup(
    struct appconf_parse *p, const char *what, const char *s, size_t len)
{
	char *copy = strndup(s, len);

	if (copy == NULL)
		appconf_fail(p, ENOMEM, what, "out of memory");
	return copy;
}

/* Refuses a key set twice: which of the two the user meant is a guess. */
static bool appconf_check_dup(
    struct appconf_parse *p, const char *key, int *line)
{
	if (*line != 0) {
		appconf_fail(
		    p, EINVAL, key, "set twice (first on line %d)", *line);
		return false;
	}
	*line = p->lines.lineno;
	return true;
}

static void appconf_set_entry(struct appconf_parse *p, const char *value)
{
	static const char expected[] =
	    "expected MODULE or MODULE:CALLABLE with dotted Python names "
	    "(letters, digits, '_'), like 'blog.wsgi:app'";
	const char *colon = strchr(value, ':');
	size_t mod_len =
	    colon != NULL ? (size_t)(colon - value) : strlen(value);
	const char *callable = colon != NULL ? colon + 1 : "application";
	struct appconf *conf = p->conf;

	if (!appconf_check_dup(p, "entry", &p->line_entry))
		return;
	if (!appconf_is_dotted_name(value, mod_len) ||
	    !appconf_is_dotted_name(callable, strlen(callable))) {
		appconf_fail(
		    p, EINVAL, "entry", "%s, got '%s'", expected, value);
		return;
	}
	conf->entry_module = appconf_strdup(p, "entry", value, mod_len);
	if (conf->entry_module == NULL)
		return;
	conf->entry_callable =
	    appconf_strdup(p, "entry", callable, strlen(callable));
}

static void appconf_set_venv(struct appconf_parse *p, const char *value)
{
	if (!appconf_check_dup(p, "venv", &p->line_venv))
		return;
	if (*value == '\0') {
		appconf_fail(p, EINVAL, "venv",
		    "expected the path of a virtualenv (like '.venv'), got an "
		    "empty value");
		return;
	}
	p->conf->venv = appconf_strdup(p, "venv", value, strlen(value));
}

static void appconf_set_threads(struct appconf_parse *p, const char *value)
{
	int n = 0;

	if (!appconf_check_dup(p, "threads", &p->line_threads))
		return;
	/* Digits only: no sign, no spaces, no "0x", and a cap while counting
	 * so that a long number can't overflow. */
	for (const char *s = value; *s != '\0' && n <= APPCONF_MAX_THREADS;
	     s++) {
		if (*s < '0' || *s > '9') {
			n = -1;
			break;
		}
		n = n * 10 + (*s - '0');
	}
	if (*value == '\0' || n < 1 || n > APPCONF_MAX_THREADS) {
		appconf_fail(p, EINVAL, "threads",
		    "expected a number from 1 to %d, got '%s'",
		    APPCONF_MAX_THREADS, value);
		return;
	}
	p->conf->threads = n;
}

static void appconf_set_interp(struct appconf_parse *p, const char *value)
{
	if (!appconf_check_dup(p, "interpreter", &p->line_interp))
		return;
	if (strcmp(value, "sub") == 0)
		p->conf->interp = APPCONF_INTERP_SUB;
	else if (strcmp(value, "main") == 0)
		p->conf->interp = APPCONF_INTERP_MAIN;
	else
		appconf_fail(p, EINVAL, "interpreter",
		    "expected 'sub' or 'main', got '%s'", value);
}

static void appconf_set_preload(struct appconf_parse *p, const char *value)
{
	if (!appconf_check_dup(p, "preload", &p->line_preload))
		return;
	if (strcmp(value, "yes") == 0)
		p->conf->no_preload = false;
	else if (strcmp(value, "no") == 0)
		p->conf->no_preload = true;
	else
		appconf_fail(p, EINVAL, "preload",
		    "expected 'yes' or 'no', got '%s'", value);
}

static void appconf_set_env(
    struct appconf_parse *p, const char *key, const char *value)
{
	const char *env_name = key + strlen(APPCONF_ENV_PREFIX);
	struct appconf *conf = p->conf;
	struct appconf_env *env;

	if (!appconf_is_env_name(env_name)) {
		appconf_fail(p, EINVAL, key,
		    "expected env.NAME with NAME made of letters, digits and "
		    "'_', not starting with a digit, got '%s'",
		    env_name);
		return;
	}
	for (size_t i = 0; i < conf->nenv; i++) {
		if (strcmp(conf->env[i].key, env_name) == 0) {
			appconf_check_dup(p, key, &p->line_env[i]);
			return;
		}
	}
	if (conf->nenv == APPCONF_MAX_ENV) {
		appconf_fail(p, EINVAL, key,
		    "too many env settings (at most %d)", APPCONF_MAX_ENV);
		return;
	}
	env = &conf->env[conf->nenv];
	env->key = appconf_strdup(p, key, env_name, strlen(env_name));
	if (env->key == NULL)
		return;
	env->value = appconf_strdup(p, key, value, strlen(value));
	if (env->value == NULL) {
		free(env->key);
		env->key = NULL;
		return;
	}
	p->line_env[conf->nenv++] = p->lines.lineno;
}

/*
 * libinih's handler: one call per "key = value" line (or continuation
 * line).  Returns 0 on an error so that libinih records the line too; the
 * message itself is in p.
 */
static int appconf_handler(
    void *user, const char *section, const char *key, const char *value)
{
	struct appconf_parse *p = user;
	bool is_continuation = p->lines.kind == INI_LINE_CONTINUATION;

	if (p->err_line != 0)
		return 0;
	if (key == NULL || value == NULL)
		return 1; /* a section start, if libinih reports them */

	if (*section != '\0' && strcmp(section, APPCONF_SECTION) != 0) {
		/* The line callback refuses unknown sections first; this is
		 * a second line of defence should libinih see one it missed. */
		appconf_fail(p, EINVAL, NULL,
		    "[%s]: unknown section (settings go before any section "
		    "or in [" APPCONF_SECTION "])",
		    section);
	} else if (is_continuation) {
		/* Python's configparser (and libinih) read an indented line
		 * as more of the previous value; lodge.ini values are one
		 * line, and an indented "key = value" is more likely a
		 * mistake than a second line of a value. */
		appconf_fail(p, EINVAL, key,
		    "indented line is read as a continuation of '%s', and "
		    "values can't span lines (remove the indentation)",
		    key);
	} else if (strcmp(key, "entry") == 0) {
		appconf_set_entry(p, value);
	} else if (strcmp(key, "venv") == 0) {
		appconf_set_venv(p, value);
	} else if (strcmp(key, "threads") == 0) {
		appconf_set_threads(p, value);
	} else if (strcmp(key, "interpreter") == 0) {
		appconf_set_interp(p, value);
	} else if (strcmp(key, "preload") == 0) {
		appconf_set_preload(p, value);
	} else if (strncmp(key, APPCONF_ENV_PREFIX,
	               strlen(APPCONF_ENV_PREFIX)) == 0) {
		appconf_set_env(p, key, value);
	} else {
		appconf_fail(p, EINVAL, key,
		    "unknown setting (known: " APPCONF_KNOWN ")");
	}
	return p->err_line == 0;
}

/*
 * Runs libinih over the source in p and turns its result into ours.
 * libinih returns the line of its first error, which is either a line our
 * handler refused (we hold the message) or a line it could not parse (a
 * syntax error, which we name here); whichever comes first is reported.
 */
static int appconf_parse_run(struct appconf_parse *p)
{
	struct appconf *conf = p->conf;
	int rc;

	memset(conf, 0, sizeof(*conf));
	if (p->errsize > 0)
		p->err[0] = '\0';

	p->lines.on_line = appconf_on_line;
	p->lines.user = p;
	rc = ini_lines_parse(&p->lines, appconf_handler, p);
	if (p->lines.is_read_error && p->err_line == 0) {
		appconf_fail_file(p->err, p->errsize, p->name, "cannot read",
		    p->lines.read_errno);
		appconf_free(conf);
		errno = p->lines.read_errno;
		return -1;
	}
	if (rc > 0 && (p->err_line == 0 || rc < p->err_line)) {
		p->err_line = 0;
		p->lines.lineno = rc;
		appconf_fail(
		    p, EINVAL, NULL, "syntax error (expected KEY = VALUE)");
	} else if (rc < 0 && p->err_line == 0) {
		appconf_fail(p, ENOMEM, NULL, "out of memory");
	}
	if (p->err_line != 0) {
		appconf_free(conf);
		errno = p->err_errno;
		return -1;
	}

	/* The default callable, so that callers never test for NULL. */
	if (conf->entry_callable == NULL) {
		conf->entry_callable = strdup("application");
		if (conf->entry_callable == NULL) {
			appconf_fail(p, ENOMEM, NULL, "out of memory");
			appconf_free(conf);
			errno = ENOMEM;
			return -1;
		}
	}
	return 0;
}

int appconf_load(
    const char *path, struct appconf *conf, char *err, size_t errsize)
{
	struct appconf_parse p = {
	    .name = path, .conf = conf, .err = err, .errsize = errsize};
	struct stat st;
	int saved;
	int fd;
	int rc;

	memset(conf, 0, sizeof(*conf));
	if (errsize > 0)
		err[0] = '\0';

	/* O_NONBLOCK and the S_ISREG check: a FIFO or a device named
	 * lodge.ini must not hang or flood the worker. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1) {
		saved = errno;
		appconf_fail_file(err, errsize, path, "cannot open", saved);
		errno = saved;
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		saved = errno;
		appconf_fail_file(err, errsize, path, "cannot stat", saved);
		close(fd);
		errno = saved;
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		saved = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		if (errsize > 0)
			snprintf(err, errsize, "%s: not a regular file", path);
		close(fd);
		errno = saved;
		return -1;
	}
	p.lines.fp = fdopen(fd, "r");
	if (p.lines.fp == NULL) {
		saved = errno;
		appconf_fail_file(err, errsize, path, "cannot open", saved);
		close(fd);
		errno = saved;
		return -1;
	}

	rc = appconf_parse_run(&p);
	saved = errno;
	fclose(p.lines.fp);
	errno = saved;
	return rc;
}

int appconf_load_string(const char *name, const char *text,
    struct appconf *conf, char *err, size_t errsize)
{
	struct appconf_parse p = {
	    .name = name, .conf = conf, .err = err, .errsize = errsize};

	p.lines.text = text;
	return appconf_parse_run(&p);
}

void appconf_free(struct appconf *conf)
{
	free(conf->entry_module);
	free(conf->entry_callable);
	free(conf->venv);
	for (size_t i = 0; i < conf->nenv; i++) {
		free(conf->env[i].key);
		free(conf->env[i].value);
	}
	memset(conf, 0, sizeof(*conf));
}
