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

#define APPCONF_KNOWN "entry, venv, env.NAME, threads, interpreter"
#define APPCONF_ENV_PREFIX "env."
#define APPCONF_SECTION "app"

/*
 * The state of one parse, shared by the line reader and the key handler.
 * libinih (Debian's build) passes no line number to the handler, so the
 * reader counts lines: when the handler runs, lineno is the line of the key
 * it was given, because libinih reads one line and handles it before it
 * reads the next.
 */
struct appconf_parse {
	const char *name; /* the path, as shown in messages */
	struct appconf *conf;
	char *err;
	size_t errsize;
	int err_line;  /* line of the first error, 0: none yet */
	int err_errno; /* errno to return with that error */

	FILE *fp;         /* the source: a file ... */
	const char *text; /* ... or a string */
	size_t pos;
	bool is_read_error;
	int read_errno;

	int lineno;
	bool has_prev_key;    /* mirrors libinih's prev_name being set */
	bool is_continuation; /* libinih will read this line as a
	                         continuation of the previous key */

	/* The line each key was set on, to report duplicates. */
	int line_entry;
	int line_venv;
	int line_threads;
	int line_interp;
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
	p->err_line = p->lineno > 0 ? p->lineno : 1;
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

static int appconf_getc(struct appconf_parse *p)
{
	int c;

	if (p->fp == NULL) {
		if (p->text[p->pos] == '\0')
			return EOF;
		return (unsigned char)p->text[p->pos++];
	}
	c = getc(p->fp);
	if (c == EOF && ferror(p->fp) && !p->is_read_error) {
		p->is_read_error = true;
		p->read_errno = errno != 0 ? errno : EIO;
	}
	return c;
}

static int appconf_peekc(struct appconf_parse *p)
{
	int c;

	if (p->fp == NULL)
		return p->text[p->pos] == '\0' ? EOF
		                               : (unsigned char)p->text[p->pos];
	c = appconf_getc(p);
	if (c != EOF)
		ungetc(c, p->fp);
	return c;
}

static bool appconf_is_space(int c)
{
	/* The same set as libinih's isspace() in the C locale. */
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	       c == '\f';
}

/*
 * libinih's fgets-style reader.  Debian's libinih reads into a fixed buffer
 * of num (200) bytes and, given a longer line, reads the rest as a line of
 * its own: the value is silently cut and the tail is parsed as if it were
 * the next line (a tail holding '=' would even set a key).  So this reader
 * refuses a line that does not fit, and stops the parse there.  It also
 * refuses NUL bytes, which would hide the rest of a line from libinih, and
 * works out whether libinih will take the line as a continuation of the
 * previous value (an indented line), which lodge.ini does not allow.
 */
static char *appconf_reader(char *str, int num, void *stream)
{
	struct appconf_parse *p = stream;
	bool has_nul = false;
	const char *start;
	int n = 0;
	int c;

	/* Stop after the first error: only that one is reported. */
	if (p->err_line != 0 || p->is_read_error || num < 2)
		return NULL;

	while (n < num - 1) {
		c = appconf_getc(p);
		if (c == EOF)
			break;
		if (c == '\0')
			has_nul = true;
		str[n++] = (char)c;
		if (c == '\n')
			break;
	}
	if (n == 0)
		return NULL;
	str[n] = '\0';
	p->lineno++;

	if (has_nul) {
		appconf_fail(p, EINVAL, NULL, "line contains a NUL byte");
		return NULL;
	}
	if (str[n - 1] != '\n' && n == num - 1) {
		/* The buffer is full: fine if the line ends right here. */
		c = appconf_peekc(p);
		if (c == '\n')
			(void)appconf_getc(p);
		else if (c != EOF) {
			appconf_fail(p, EINVAL, NULL,
			    "line too long (max %d characters)", num - 1);
			return NULL;
		}
	}

	/* Mirror libinih's decision (ini.c, ini_parse_stream) for this line:
	 * comment, continuation, section, or pair. */
	start = str;
	while (appconf_is_space((unsigned char)*start))
		start++;
	p->is_continuation = false;
	if (*start == '\0' || *start == ';' || *start == '#')
		return str;
	if (p->has_prev_key && start > str) {
		p->is_continuation = true;
	} else if (*start == '[' && strchr(start, ']') != NULL) {
		/* A section header.  It is checked here rather than in the
		 * handler so that an unknown section is reported on its own
		 * line, even when no key follows it. */
		size_t len = (size_t)(strchr(start, ']') - start - 1);
		p->has_prev_key = false;
		if (len != strlen(APPCONF_SECTION) ||
		    strncmp(start + 1, APPCONF_SECTION, len) != 0) {
			appconf_fail(p, EINVAL, NULL,
			    "[%.*s]: unknown section (settings go before any "
			    "section or in [" APPCONF_SECTION "])",
			    (int)len, start + 1);
			return NULL;
		}
	}
	return str;
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
	*line = p->lineno;
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
	p->line_env[conf->nenv++] = p->lineno;
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
	bool is_continuation = p->is_continuation;

	if (p->err_line != 0)
		return 0;
	if (key == NULL || value == NULL)
		return 1; /* a section start, if libinih reports them */
	if (!is_continuation)
		p->has_prev_key = true;

	if (*section != '\0' && strcmp(section, APPCONF_SECTION) != 0) {
		/* The reader refuses unknown sections first; this is a
		 * second line of defence should libinih see one it missed. */
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

	rc = ini_parse_stream(appconf_reader, p, appconf_handler, p);
	if (p->is_read_error && p->err_line == 0) {
		appconf_fail_file(
		    p->err, p->errsize, p->name, "cannot read", p->read_errno);
		appconf_free(conf);
		errno = p->read_errno;
		return -1;
	}
	if (rc > 0 && (p->err_line == 0 || rc < p->err_line)) {
		p->err_line = 0;
		p->lineno = rc;
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
	p.fp = fdopen(fd, "r");
	if (p.fp == NULL) {
		saved = errno;
		appconf_fail_file(err, errsize, path, "cannot open", saved);
		close(fd);
		errno = saved;
		return -1;
	}

	rc = appconf_parse_run(&p);
	saved = errno;
	fclose(p.fp);
	errno = saved;
	return rc;
}

int appconf_load_string(const char *name, const char *text,
    struct appconf *conf, char *err, size_t errsize)
{
	struct appconf_parse p = {
	    .name = name, .conf = conf, .err = err, .errsize = errsize};

	p.text = text;
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
