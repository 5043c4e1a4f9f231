/*
 * test_appconf.c: table-driven tests of src/worker/appconf.c, the lodge.ini
 * reader.  One row per case: a text that must load (with the values it
 * must yield) or a text that must fail (with the exact message, line number
 * included).  Runs as any user; writes only in a temporary directory.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "appconf.h"

#define NAME "t.ini"
#define KNOWN "(known: entry, venv, env.NAME, threads, interpreter, preload)"
#define ENTRY_EXPECTED                                                         \
	"expected MODULE or MODULE:CALLABLE with dotted Python names "         \
	"(letters, digits, '_'), like 'blog.wsgi:app', got "
#define THREADS_EXPECTED "expected a number from 1 to 256, got "
#define ENV_EXPECTED                                                           \
	"expected env.NAME with NAME made of letters, digits and '_', not "    \
	"starting with a digit, got "
#define SECTION_REASON                                                         \
	"unknown section (settings go before any section or in [app])"

/* A line of n characters (plus LF): "env.LONG = xxx...". */
static char *long_line(size_t n)
{
	static const char head[] = "env.LONG = ";
	char *s = malloc(n + 2);

	assert_non_null(s);
	memcpy(s, head, strlen(head));
	memset(s + strlen(head), 'x', n - strlen(head));
	s[n] = '\n';
	s[n + 1] = '\0';
	return s;
}

/* Loads must succeed. */

struct ok_row {
	const char *name;
	const char *text;
	const char *entry_module;   /* NULL: not set */
	const char *entry_callable; /* NULL: "application" */
	const char *venv;
	int threads;
	enum appconf_interp interp;
	bool no_preload;
	size_t nenv;
	struct {
		const char *key;
		const char *value;
	} env[4];
};

static const struct ok_row ok_rows[] = {
    {.name = "empty file", .text = ""},
    {.name = "comments and blank lines",
        .text = "; a comment\n# another\n\n   \n\t\nthreads = 2\n; end\n",
        .threads = 2},
    {.name = "entry module:callable",
        .text = "entry = blog.wsgi:app\n",
        .entry_module = "blog.wsgi",
        .entry_callable = "app"},
    {.name = "entry module only",
        .text = "entry = blog.wsgi\n",
        .entry_module = "blog.wsgi"},
    {.name = "entry dotted callable",
        .text = "entry = _pkg.mod2:factory.app\n",
        .entry_module = "_pkg.mod2",
        .entry_callable = "factory.app"},
    {.name = "entry without spaces",
        .text = "entry=app:application\n",
        .entry_module = "app"},
    {.name = "venv relative", .text = "venv = .venv\n", .venv = ".venv"},
    {.name = "venv absolute with a space",
        .text = "venv = /srv/my venv  \n",
        .venv = "/srv/my venv"},
    {.name = "env values",
        .text = "env.DATABASE_URL = postgres://u@h/db?x=1\nenv._x1 = 1\n",
        .nenv = 2,
        .env = {{"DATABASE_URL", "postgres://u@h/db?x=1"}, {"_x1", "1"}}},
    {.name = "env empty value",
        .text = "env.EMPTY =\n",
        .nenv = 1,
        .env = {{"EMPTY", ""}}},
    {.name = "env names are case-sensitive",
        .text = "env.a = 1\nenv.A = 2\n",
        .nenv = 2,
        .env = {{"a", "1"}, {"A", "2"}}},
    {.name = "threads 1", .text = "threads = 1\n", .threads = 1},
    {.name = "threads 256", .text = "threads = 256\n", .threads = 256},
    {.name = "threads leading zeros", .text = "threads = 008\n", .threads = 8},
    {.name = "interpreter sub",
        .text = "interpreter = sub\n",
        .interp = APPCONF_INTERP_SUB},
    {.name = "interpreter main",
        .text = "interpreter = main\n",
        .interp = APPCONF_INTERP_MAIN},
    {.name = "preload yes", .text = "preload = yes\n"},
    {.name = "preload no", .text = "preload = no\n", .no_preload = true},
    {.name = "[app] section", .text = "[app]\nthreads = 4\n", .threads = 4},
    {.name = "keys before and in [app]",
        .text = "venv = v\n\n[app]\nthreads = 3\n",
        .venv = "v",
        .threads = 3},
    {.name = "indented key after a section is a key",
        .text = "threads = 2\n[app]\n  venv = v\n",
        .venv = "v",
        .threads = 2},
    {.name = "CRLF line ends",
        .text = "threads = 2\r\nvenv = v\r\n",
        .venv = "v",
        .threads = 2},
    {.name = "inline comment",
        .text = "threads = 2 ; two is plenty\n",
        .threads = 2},
    {.name = "UTF-8 BOM", .text = "\xEF\xBB\xBFthreads = 2\n", .threads = 2},
    {.name = "no final LF", .text = "threads = 2", .threads = 2},
    {.name = "colon separator", .text = "threads: 5\n", .threads = 5},
    {.name = "every key",
        .text = "entry = blog.wsgi:app\nvenv = .venv\nenv.A = 1\n"
                "threads = 8\ninterpreter = main\n",
        .entry_module = "blog.wsgi",
        .entry_callable = "app",
        .venv = ".venv",
        .threads = 8,
        .interp = APPCONF_INTERP_MAIN,
        .nenv = 1,
        .env = {{"A", "1"}}},
};

static void test_ok(void **state)
{
	const struct ok_row *row = *state;
	struct appconf conf;
	char err[512];

	assert_int_equal(
	    appconf_load_string(NAME, row->text, &conf, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	if (row->entry_module == NULL)
		assert_null(conf.entry_module);
	else
		assert_string_equal(conf.entry_module, row->entry_module);
	assert_string_equal(conf.entry_callable,
	    row->entry_callable != NULL ? row->entry_callable : "application");
	if (row->venv == NULL)
		assert_null(conf.venv);
	else
		assert_string_equal(conf.venv, row->venv);
	assert_int_equal(conf.threads, row->threads);
	assert_int_equal(conf.interp, row->interp);
	assert_int_equal(conf.no_preload, row->no_preload);
	assert_int_equal(conf.nenv, row->nenv);
	for (size_t i = 0; i < row->nenv; i++) {
		assert_string_equal(conf.env[i].key, row->env[i].key);
		assert_string_equal(conf.env[i].value, row->env[i].value);
	}
	appconf_free(&conf);
	assert_null(conf.entry_callable);
}

/* Loads must fail with exactly this message. */

struct err_row {
	const char *name;
	const char *text;
	const char *err;
};

static const struct err_row err_rows[] = {
    {"unknown key with its line", "threads = 2\n\nworkers = 4\n",
        NAME ":3: workers: unknown setting " KNOWN},
    {"keys are case-sensitive", "Threads = 2\n",
        NAME ":1: Threads: unknown setting " KNOWN},
    {"threads 0", "threads = 0\n", NAME ":1: threads: " THREADS_EXPECTED "'0'"},
    {"threads 257", "threads = 257\n",
        NAME ":1: threads: " THREADS_EXPECTED "'257'"},
    {"threads word", "threads = x\n",
        NAME ":1: threads: " THREADS_EXPECTED "'x'"},
    {"threads empty", "threads =\n",
        NAME ":1: threads: " THREADS_EXPECTED "''"},
    {"threads negative", "threads = -1\n",
        NAME ":1: threads: " THREADS_EXPECTED "'-1'"},
    {"threads plus sign", "threads = +2\n",
        NAME ":1: threads: " THREADS_EXPECTED "'+2'"},
    {"threads fraction", "threads = 1.5\n",
        NAME ":1: threads: " THREADS_EXPECTED "'1.5'"},
    {"threads huge", "threads = 99999999999999999999\n",
        NAME ":1: threads: " THREADS_EXPECTED "'99999999999999999999'"},
    {"threads two words", "threads = 2 3\n",
        NAME ":1: threads: " THREADS_EXPECTED "'2 3'"},
    {"interpreter unknown", "interpreter = process\n",
        NAME ":1: interpreter: expected 'sub' or 'main', got 'process'"},
    {"interpreter wrong case", "interpreter = Main\n",
        NAME ":1: interpreter: expected 'sub' or 'main', got 'Main'"},
    {"preload unknown", "preload = off\n",
        NAME ":1: preload: expected 'yes' or 'no', got 'off'"},
    {"preload twice", "preload = no\npreload = no\n",
        NAME ":2: preload: set twice (first on line 1)"},
    {"interpreter empty", "interpreter =\n",
        NAME ":1: interpreter: expected 'sub' or 'main', got ''"},
    {"entry dash", "entry = a-b:c\n",
        NAME ":1: entry: " ENTRY_EXPECTED "'a-b:c'"},
    {"entry no module", "entry = :x\n",
        NAME ":1: entry: " ENTRY_EXPECTED "':x'"},
    {"entry no callable", "entry = a:\n",
        NAME ":1: entry: " ENTRY_EXPECTED "'a:'"},
    {"entry empty part", "entry = a..b\n",
        NAME ":1: entry: " ENTRY_EXPECTED "'a..b'"},
    {"entry leading dot", "entry = .a\n",
        NAME ":1: entry: " ENTRY_EXPECTED "'.a'"},
    {"entry trailing dot", "entry = a.:b\n",
        NAME ":1: entry: " ENTRY_EXPECTED "'a.:b'"},
    {"entry two colons", "entry = a:b:c\n",
        NAME ":1: entry: " ENTRY_EXPECTED "'a:b:c'"},
    {"entry digit first", "entry = 1a\n",
        NAME ":1: entry: " ENTRY_EXPECTED "'1a'"},
    {"entry bad callable", "entry = a:b-c\n",
        NAME ":1: entry: " ENTRY_EXPECTED "'a:b-c'"},
    {"entry path", "entry = app/wsgi.py\n",
        NAME ":1: entry: " ENTRY_EXPECTED "'app/wsgi.py'"},
    {"entry empty", "entry =\n", NAME ":1: entry: " ENTRY_EXPECTED "''"},
    {"entry space", "entry = a b\n", NAME ":1: entry: " ENTRY_EXPECTED "'a b'"},
    {"entry non-ASCII", "entry = caf\xC3\xA9\n",
        NAME ":1: entry: " ENTRY_EXPECTED "'caf\xC3\xA9'"},
    {"venv empty", "venv =\n",
        NAME ":1: venv: expected the path of a virtualenv (like '.venv'), got "
             "an empty value"},
    {"env no name", "env. = x\n", NAME ":1: env.: " ENV_EXPECTED "''"},
    {"env digit first", "env.1A = x\n",
        NAME ":1: env.1A: " ENV_EXPECTED "'1A'"},
    {"env dash", "env.A-B = x\n", NAME ":1: env.A-B: " ENV_EXPECTED "'A-B'"},
    {"env dot", "env.A.B = x\n", NAME ":1: env.A.B: " ENV_EXPECTED "'A.B'"},
    {"env prefix case", "ENV.A = x\n",
        NAME ":1: ENV.A: unknown setting " KNOWN},
    {"duplicate key", "threads = 1\nvenv = v\nthreads = 2\n",
        NAME ":3: threads: set twice (first on line 1)"},
    {"duplicate key across [app]", "entry = a\n[app]\nentry = b\n",
        NAME ":3: entry: set twice (first on line 1)"},
    {"duplicate env", "env.A = 1\nenv.B = 2\nenv.A = 3\n",
        NAME ":3: env.A: set twice (first on line 1)"},
    {"unknown section", "threads = 2\n[server]\nvenv = v\n",
        NAME ":2: [server]: " SECTION_REASON},
    {"unknown section without keys", "threads = 2\n[App]\n",
        NAME ":2: [App]: " SECTION_REASON},
    {"section with spaces", "[ app ]\n", NAME ":1: [ app ]: " SECTION_REASON},
    {"syntax error line", "threads = 2\n\njust words\n",
        NAME ":3: syntax error (expected KEY = VALUE)"},
    {"unclosed section", "[app\n",
        NAME ":1: syntax error (expected KEY = VALUE)"},
    {"syntax error before a bad key", "junk\nthreads = 0\n",
        NAME ":1: syntax error (expected KEY = VALUE)"},
    {"bad key before a syntax error", "threads = 0\njunk\n",
        NAME ":1: threads: " THREADS_EXPECTED "'0'"},
    {"continuation line", "threads = 2\n  4\n",
        NAME ":2: threads: indented line is read as a continuation of "
             "'threads', and values can't span lines (remove the "
             "indentation)"},
    {"indented key after a key", "venv = v\n\tthreads = 2\n",
        NAME ":2: venv: indented line is read as a continuation of 'venv', "
             "and values can't span lines (remove the indentation)"},
    {"control character shown as ?",
        "interpreter = a\x01"
        "b\n",
        NAME ":1: interpreter: expected 'sub' or 'main', got 'a?b'"},
};

static void test_err(void **state)
{
	const struct err_row *row = *state;
	struct appconf conf;
	char err[512];

	errno = 0;
	assert_int_equal(
	    appconf_load_string(NAME, row->text, &conf, err, sizeof(err)), -1);
	assert_int_equal(errno, EINVAL);
	assert_string_equal(err, row->err);
	/* On failure conf holds nothing to free. */
	assert_null(conf.entry_module);
	assert_null(conf.entry_callable);
	assert_null(conf.venv);
	assert_int_equal(conf.nenv, 0);
}

/* Cases whose text is built rather than written out. */

static void test_line_lengths(void **state)
{
	struct appconf conf;
	char err[512];
	char *text;
	char *s;

	/* 199 characters is the longest line Debian's libinih can hold. */
	text = long_line(199);
	assert_int_equal(
	    appconf_load_string(NAME, text, &conf, err, sizeof(err)), 0);
	assert_int_equal(
	    strlen(conf.env[0].value), 199 - strlen("env.LONG = "));
	appconf_free(&conf);
	text[199] = '\0'; /* the same without its LF, at the end of the text */
	assert_int_equal(
	    appconf_load_string(NAME, text, &conf, err, sizeof(err)), 0);
	appconf_free(&conf);
	free(text);

	/* One more is refused on its own line: without the check, libinih
	 * would cut the value and read the rest as a line 3. */
	s = long_line(200);
	assert_int_equal(asprintf(&text, "threads = 2\n%sventure = 1\n", s),
	    (int)strlen(s) + 24);
	assert_int_equal(
	    appconf_load_string(NAME, text, &conf, err, sizeof(err)), -1);
	assert_int_equal(errno, EINVAL);
	assert_string_equal(err, NAME ":2: line too long (max 199 characters)");
	free(text);
	free(s);

	/* A long line whose tail looks like a setting sets nothing. */
	s = long_line(250);
	memcpy(s + 200, "threads=9", 9);
	assert_int_equal(
	    appconf_load_string(NAME, s, &conf, err, sizeof(err)), -1);
	assert_string_equal(err, NAME ":1: line too long (max 199 characters)");
	free(s);
}

static void test_env_limit(void **state)
{
	struct appconf conf;
	char err[512];
	char text[APPCONF_MAX_ENV * 16 + 64];
	size_t n = 0;

	for (int i = 0; i < APPCONF_MAX_ENV; i++)
		n += (size_t)snprintf(
		    text + n, sizeof(text) - n, "env.V%d = %d\n", i, i);
	assert_int_equal(
	    appconf_load_string(NAME, text, &conf, err, sizeof(err)), 0);
	assert_int_equal(conf.nenv, APPCONF_MAX_ENV);
	assert_string_equal(conf.env[63].key, "V63");
	assert_string_equal(conf.env[63].value, "63");
	appconf_free(&conf);

	snprintf(text + n, sizeof(text) - n, "env.ONE_TOO_MANY = x\n");
	assert_int_equal(
	    appconf_load_string(NAME, text, &conf, err, sizeof(err)), -1);
	assert_string_equal(err, NAME ":65: env.ONE_TOO_MANY: too many env "
	                              "settings (at most 64)");
}

static void test_small_err_buffer(void **state)
{
	struct appconf conf;
	char err[8];

	assert_int_equal(
	    appconf_load_string(NAME, "x = 1\n", &conf, err, sizeof(err)), -1);
	assert_string_equal(err, NAME ":1"); /* cut, NUL-terminated */
	assert_int_equal(
	    appconf_load_string(NAME, "x = 1\n", &conf, NULL, 0), -1);
}

/* Files. */

struct file_fixture {
	char dir[64];
	char path[128];
};

static int file_setup(void **state)
{
	struct file_fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/test_appconf.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/lodge.ini", f->dir);
	*state = f;
	return 0;
}

static int file_teardown(void **state)
{
	struct file_fixture *f = *state;

	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static void test_file_ok(void **state)
{
	struct file_fixture *f = *state;
	static const char text[] = "; blog\n[app]\nentry = blog.wsgi:app\n"
	                           "threads = 4\nenv.MODE = prod\n";
	struct appconf conf;
	char err[512];

	write_file(f->path, text, strlen(text));
	assert_int_equal(appconf_load(f->path, &conf, err, sizeof(err)), 0);
	assert_string_equal(conf.entry_module, "blog.wsgi");
	assert_string_equal(conf.entry_callable, "app");
	assert_int_equal(conf.threads, 4);
	assert_string_equal(conf.env[0].value, "prod");
	appconf_free(&conf);
}

static void test_file_errors(void **state)
{
	struct file_fixture *f = *state;
	struct appconf conf;
	char want[512];
	char err[512];
	char *s;

	/* Missing: ENOENT, and the message says so. */
	errno = 0;
	assert_int_equal(appconf_load(f->path, &conf, err, sizeof(err)), -1);
	assert_int_equal(errno, ENOENT);
	snprintf(want, sizeof(want), "%s: cannot open: %s", f->path,
	    strerror(ENOENT));
	assert_string_equal(err, want);
	assert_null(conf.entry_callable);

	/* A directory is not a config file. */
	assert_int_equal(appconf_load(f->dir, &conf, err, sizeof(err)), -1);
	assert_int_equal(errno, EISDIR);
	snprintf(want, sizeof(want), "%s: not a regular file", f->dir);
	assert_string_equal(err, want);

	/* Bad value: the path and line in the message. */
	write_file(f->path, "\nthreads = many\n", 16);
	assert_int_equal(appconf_load(f->path, &conf, err, sizeof(err)), -1);
	assert_int_equal(errno, EINVAL);
	snprintf(want, sizeof(want),
	    "%s:2: threads: expected a number from 1 to 256, got 'many'",
	    f->path);
	assert_string_equal(err, want);

	/* A NUL byte would hide the rest of its line from libinih. */
	write_file(f->path, "threads = 2\nvenv = v\0x\n", 22);
	assert_int_equal(appconf_load(f->path, &conf, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: line contains a NUL byte", f->path);
	assert_string_equal(err, want);

	/* Too long, read from a file. */
	s = long_line(300);
	write_file(f->path, s, strlen(s));
	free(s);
	assert_int_equal(appconf_load(f->path, &conf, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:1: line too long (max 199 characters)",
	    f->path);
	assert_string_equal(err, want);
}

/* One cmocka test per table row, named after the row. */
#define NROWS(a) (sizeof(a) / sizeof((a)[0]))

int main(void)
{
	static const struct CMUnitTest fixed[] = {
	    cmocka_unit_test(test_line_lengths),
	    cmocka_unit_test(test_env_limit),
	    cmocka_unit_test(test_small_err_buffer),
	    cmocka_unit_test_setup_teardown(
	        test_file_ok, file_setup, file_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_file_errors, file_setup, file_teardown),
	};
	struct CMUnitTest
	    tests[NROWS(ok_rows) + NROWS(err_rows) + NROWS(fixed)];
	size_t n = 0;

	for (size_t i = 0; i < NROWS(ok_rows); i++)
		tests[n++] = (struct CMUnitTest){.name = ok_rows[i].name,
		    .test_func = test_ok,
		    .initial_state = (void *)&ok_rows[i]};
	for (size_t i = 0; i < NROWS(err_rows); i++)
		tests[n++] = (struct CMUnitTest){.name = err_rows[i].name,
		    .test_func = test_err,
		    .initial_state = (void *)&err_rows[i]};
	for (size_t i = 0; i < NROWS(fixed); i++)
		tests[n++] = fixed[i];
	return _cmocka_run_group_tests("appconf", tests, n, NULL, NULL);
}
