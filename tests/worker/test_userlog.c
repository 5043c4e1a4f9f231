/*
 * test_userlog.c: tests of src/worker/userlog.c, an app's log file.  The
 * pure formatter is table-driven; the writer is driven by rows of
 * operations (write, flush, printf, close) and the lines they must leave
 * in a file of a temporary directory; a last test has threads append at
 * once and checks that only whole lines come out.  Runs as any user.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "userlog.h"

#define TS_LEN 24
#define T0 1700000000123LL /* 2023-11-14T22:13:20.123Z */

/* userlog_format_line. */

struct format_row {
	const char *name;
	long long ms;
	const char *text;
	size_t len; /* 0: strlen(text) */
	size_t size;
	const char *expected;
};

static const struct format_row format_rows[] = {
    {"format: plain", T0, "hello", 0, 256, "2023-11-14T22:13:20.123Z hello\n"},
    {"format: epoch", 0, "x", 0, 256, "1970-01-01T00:00:00.000Z x\n"},
    {"format: milliseconds 999", 1700000000999LL, "x", 0, 256,
        "2023-11-14T22:13:20.999Z x\n"},
    {"format: trailing LF not doubled", T0, "hello\n", 0, 256,
        "2023-11-14T22:13:20.123Z hello\n"},
    {"format: only one trailing LF taken", T0, "a\n\n", 0, 256,
        "2023-11-14T22:13:20.123Z a?\n"},
    {"format: LF inside replaced", T0, "a\nb", 0, 256,
        "2023-11-14T22:13:20.123Z a?b\n"},
    {"format: CR replaced", T0, "a\rb", 0, 256,
        "2023-11-14T22:13:20.123Z a?b\n"},
    {"format: CRLF", T0, "abc\r\n", 0, 256, "2023-11-14T22:13:20.123Z abc?\n"},
    {"format: TAB kept", T0, "a\tb", 0, 256, "2023-11-14T22:13:20.123Z a\tb\n"},
    {"format: escape and DEL replaced", T0, "\x1b[31mred\x7f", 0, 256,
        "2023-11-14T22:13:20.123Z ?[31mred?\n"},
    {"format: NUL replaced", T0, "a\0b", 3, 256,
        "2023-11-14T22:13:20.123Z a?b\n"},
    {"format: UTF-8 kept", T0, "caf\xC3\xA9", 0, 256,
        "2023-11-14T22:13:20.123Z caf\xC3\xA9\n"},
    {"format: empty text", T0, "", 0, 256, "2023-11-14T22:13:20.123Z \n"},
    {"format: just LF", T0, "\n", 0, 256, "2023-11-14T22:13:20.123Z \n"},
    {"format: exact fit", T0, "0123456789", 0, 37,
        "2023-11-14T22:13:20.123Z 0123456789\n"},
    {"format: truncated by one", T0, "0123456789", 0, 36,
        "2023-11-14T22:13:20.123Z 012345678\n"},
    {"format: truncated to the minimum size", T0, "0123456789", 0, 32,
        "2023-11-14T22:13:20.123Z 01234\n"},
};

static void test_format(void **state)
{
	const struct format_row *row = *state;
	size_t len = row->len != 0 ? row->len : strlen(row->text);
	char out[257]; /* one more byte than any row's size, to check */
	size_t n;

	memset(out, '#', sizeof(out));
	n = userlog_format_line(out, row->size, row->ms, row->text, len);
	assert_int_equal(n, strlen(row->expected));
	assert_string_equal(out, row->expected);
	assert_true(n < row->size);
	assert_int_equal(out[row->size], '#');
}

/* Writing to a file in a temporary directory. */

/* A temporary directory; the row of a table-driven test, if any, comes in
 * as the initial state and is kept here. */
struct fixture {
	char dir[64];
	char path[128];
	const void *row;
};

static int dir_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->row = *state;
	strcpy(f->dir, "/tmp/test_userlog.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/blog.log", f->dir);
	*state = f;
	return 0;
}

static int dir_teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

struct lines {
	size_t n;
	char *buf;
	char *line[64]; /* the text after "TIMESTAMP " */
	size_t len[64];
};

static bool is_timestamp(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";

	for (size_t i = 0; i < TS_LEN; i++) {
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9')
		                    : s[i] != shape[i])
			return false;
	}
	return true;
}

/* Reads a log file and checks that every line is "TIMESTAMP text\n". */
static void read_lines(const char *path, struct lines *ls)
{
	struct stat st;
	size_t pos = 0;
	int fd;

	memset(ls, 0, sizeof(*ls));
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	ls->buf = malloc((size_t)st.st_size + 1);
	assert_non_null(ls->buf);
	assert_int_equal(read(fd, ls->buf, (size_t)st.st_size), st.st_size);
	close(fd);
	ls->buf[st.st_size] = '\0';

	while (pos < (size_t)st.st_size) {
		char *start = ls->buf + pos;
		char *nl = memchr(start, '\n', (size_t)st.st_size - pos);

		assert_non_null(nl); /* the file ends with a whole line */
		assert_true(nl - start >= TS_LEN + 1);
		assert_true(is_timestamp(start));
		assert_int_equal(start[TS_LEN], ' ');
		assert_true(ls->n < 64);
		ls->line[ls->n] = start + TS_LEN + 1;
		ls->len[ls->n] = (size_t)(nl - start) - TS_LEN - 1;
		*nl = '\0';
		ls->n++;
		pos = (size_t)(nl - ls->buf) + 1;
	}
}

enum op_kind { OP_END = 0, OP_WRITE, OP_FLUSH, OP_PRINTF, OP_CLOSE };

struct op {
	enum op_kind kind;
	const char *s;
};

struct write_row {
	const char *name;
	struct op ops[8];
	const char *lines[8]; /* NULL-terminated */
};

/* Row shorthands: write, flush, printf, close. */
/* clang-format off */
#define W(s) {OP_WRITE, s}
#define F {OP_FLUSH, NULL}
#define P(s) {OP_PRINTF, s}
#define C {OP_CLOSE, NULL}
/* clang-format on */

static const struct write_row write_rows[] = {
    {"one line", {W("hello\n")}, {"hello"}},
    {"partial joined across writes", {W("hel"), W("lo wor"), W("ld\n")},
        {"hello world"}},
    {"several lines in one write", {W("a\nb\nc\n")}, {"a", "b", "c"}},
    {"a line ends and the next starts", {W("a"), W("b\nc"), W("d\n")},
        {"ab", "cd"}},
    {"partial line waits", {W("abc")}, {NULL}},
    {"flush writes the partial", {W("abc"), F, W("def\n")}, {"abc", "def"}},
    {"flush with nothing pending", {F, F}, {NULL}},
    {"close flushes", {W("abc"), C}, {"abc"}},
    {"empty write", {W("")}, {NULL}},
    {"empty line", {W("\n\n")}, {"", ""}},
    {"CR can't forge a line", {W("a\rb\n")}, {"a?b"}},
    {"control characters", {W("\x1b[2Jx\x7f\tz\n")}, {"?[2Jx?\tz"}},
    {"printf adds lodge:", {P("hello")}, {"lodge: hello"}},
    {"printf with several lines", {P("a\nb\n")}, {"lodge: a", "lodge: b"}},
    {"printf writes the partial first", {W("abc"), P("x"), W("def\n")},
        {"abc", "lodge: x", "def"}},
    {"printf cleans", {P("a\rb")}, {"lodge: a?b"}},
    {"printf of nothing", {P("")}, {NULL}},
};

static void test_write(void **state)
{
	struct fixture *f = *state;
	const struct write_row *row = f->row;
	struct userlog *ul;
	struct lines ls;
	size_t n = 0;

	ul = userlog_open(f->dir, "blog");
	assert_non_null(ul);
	for (const struct op *op = row->ops; op->kind != OP_END; op++) {
		switch (op->kind) {
		case OP_WRITE:
			assert_int_equal(
			    userlog_write(ul, op->s, strlen(op->s)), 0);
			break;
		case OP_FLUSH:
			userlog_flush(ul);
			break;
		case OP_PRINTF:
			userlog_printf(ul, "%s", op->s);
			break;
		case OP_CLOSE:
			userlog_close(ul);
			ul = NULL;
			break;
		case OP_END:
			break;
		}
	}
	/* Read before closing, so that only what was written counts. */
	read_lines(f->path, &ls);
	while (row->lines[n] != NULL)
		n++;
	assert_int_equal(ls.n, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(ls.line[i], row->lines[i]);
	free(ls.buf);
	userlog_close(ul);
}

/* Cases too big for a table row. */

static void test_mode(void **state)
{
	struct fixture *f = *state;
	struct userlog *ul;
	struct stat st;
	mode_t old = umask(022);

	ul = userlog_open(f->dir, "blog");
	umask(old);
	assert_non_null(ul);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_true(fcntl(ul->fd, F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(ul->fd, F_GETFL) & O_APPEND);
	userlog_close(ul);
}

static void test_open_errors(void **state)
{
	struct fixture *f = *state;
	char missing[160];

	snprintf(missing, sizeof(missing), "%s/nope", f->dir);
	errno = 0;
	assert_null(userlog_open(missing, "blog"));
	assert_int_equal(errno, ENOENT);
	errno = 0;
	assert_null(userlog_open(f->dir, "../blog"));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(userlog_open(f->dir, ""));
	assert_int_equal(errno, EINVAL);
}

static void test_long_lines(void **state)
{
	struct fixture *f = *state;
	size_t big = 100 * 1024;
	char *data = malloc(big + 1);
	struct userlog *ul;
	struct lines ls;

	assert_non_null(data);
	ul = userlog_open(f->dir, "blog");
	assert_non_null(ul);

	/* 1: a 100 KiB line arriving in one write is written whole. */
	memset(data, 'x', big);
	data[big] = '\n';
	assert_int_equal(userlog_write(ul, data, big + 1), 0);
	/* 2: also when its start was pending. */
	assert_int_equal(userlog_write(ul, "start:", 6), 0);
	assert_int_equal(userlog_write(ul, data, big + 1), 0);
	/* 3: a line of exactly USERLOG_MAX_PARTIAL bytes built from pieces
	 * stays one line. */
	memset(data, 'y', USERLOG_MAX_PARTIAL);
	assert_int_equal(userlog_write(ul, data, USERLOG_MAX_PARTIAL / 2), 0);
	assert_int_equal(userlog_write(ul, data, USERLOG_MAX_PARTIAL / 2), 0);
	assert_int_equal(userlog_write(ul, "\n", 1), 0);
	/* 4, 5: a longer line built from pieces is cut at that size. */
	memset(data, 'z', 10000);
	assert_int_equal(userlog_write(ul, data, 5000), 0);
	assert_int_equal(userlog_write(ul, data, 5000), 0);
	assert_int_equal(userlog_write(ul, "\n", 1), 0);
	/* 6: printf of a message longer than its stack buffer. */
	userlog_printf(ul, "%.*s", 5000, data);

	read_lines(f->path, &ls);
	assert_int_equal(ls.n, 6);
	assert_int_equal(ls.len[0], big);
	assert_int_equal(strspn(ls.line[0], "x"), big);
	assert_int_equal(ls.len[1], 6 + big);
	assert_memory_equal(ls.line[1], "start:xxx", 9);
	assert_int_equal(ls.len[2], USERLOG_MAX_PARTIAL);
	assert_int_equal(ls.len[3], USERLOG_MAX_PARTIAL);
	assert_int_equal(ls.len[4], 10000 - USERLOG_MAX_PARTIAL);
	assert_int_equal(strspn(ls.line[4], "z"), 10000 - USERLOG_MAX_PARTIAL);
	assert_int_equal(ls.len[5], 7 + 5000);
	assert_memory_equal(ls.line[5], "lodge: zzz", 10);
	free(ls.buf);
	free(data);
	userlog_close(ul);
}

/* Two logs on one file: what two worker processes of one app do. */
static void test_two_writers(void **state)
{
	struct fixture *f = *state;
	struct userlog *a = userlog_open(f->dir, "blog");
	struct userlog *b = userlog_open(f->dir, "blog");
	struct lines ls;

	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(userlog_write(a, "a1", 2), 0);
	assert_int_equal(userlog_write(b, "b1\n", 3), 0);
	assert_int_equal(userlog_write(a, "a2\n", 3), 0);
	read_lines(f->path, &ls);
	assert_int_equal(ls.n, 2);
	assert_string_equal(ls.line[0], "b1");
	assert_string_equal(ls.line[1], "a1a2");
	free(ls.buf);
	userlog_close(a);
	userlog_close(b);
}

static void test_stderr(void **state)
{
	struct fixture *f = *state;
	struct userlog *ul = userlog_open(NULL, "blog");
	int saved = dup(STDERR_FILENO);
	int fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	struct lines ls;

	assert_non_null(ul);
	assert_int_equal(ul->fd, -1);
	assert_true(saved >= 0 && fd >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	assert_int_equal(userlog_write(ul, "to stderr\n", 10), 0);
	userlog_printf(ul, "n=%d", 3);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	close(fd);
	userlog_close(ul);

	read_lines(f->path, &ls);
	assert_int_equal(ls.n, 2);
	assert_string_equal(ls.line[0], "to stderr");
	assert_string_equal(ls.line[1], "lodge: n=3");
	free(ls.buf);
}

/*
 * Threads appending at once, in two ways: four threads sharing one log
 * (one app's threads), and four threads with a log each on the same file
 * (like four worker processes), each writing lines in two pieces.  Every
 * line must come out whole: "T<thread> <seq> " and <len> times one letter.
 */
#define NTHREADS 4
#define NLINES 300

struct writer {
	struct userlog *ul;
	int id;
	bool is_whole_writes;
};

static size_t line_len(int id, int seq)
{
	/* Mostly short lines, some far past the stack buffer and the
	 * partial-line limit. */
	return seq % 50 == 7 ? 20000 + (size_t)id * 100
	                     : (size_t)(seq * 7 % 300);
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char *buf = malloc(32 + 21000);

	assert_non_null(buf);
	for (int seq = 0; seq < NLINES; seq++) {
		size_t len = line_len(w->id, seq);
		int head = snprintf(buf, 32, "T%d %d ", w->id, seq);
		size_t total = (size_t)head + len + 1;
		size_t cut = w->is_whole_writes ? total : (size_t)head;

		memset(buf + head, 'a' + w->id, len);
		buf[total - 1] = '\n';
		assert_int_equal(userlog_write(w->ul, buf, cut), 0);
		if (cut < total)
			assert_int_equal(
			    userlog_write(w->ul, buf + cut, total - cut), 0);
	}
	free(buf);
	return NULL;
}

static void check_concurrent_file(const char *path)
{
	int next[NTHREADS] = {0};
	size_t count = 0;
	struct stat st;
	char *buf, *p, *end;
	int fd;

	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	buf[st.st_size] = '\0';

	for (p = buf, end = buf + st.st_size; p < end; count++) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		int id, seq, off;
		size_t len;

		assert_non_null(nl);
		assert_true(is_timestamp(p));
		/* No space after the last %d: it would skip the LF of an
		 * empty payload. */
		assert_int_equal(
		    sscanf(p + TS_LEN, " T%d %d%n", &id, &seq, &off), 2);
		assert_int_equal(p[TS_LEN + off], ' ');
		off++;
		assert_true(id >= 0 && id < NTHREADS);
		/* Lines of one writer come in order, none missing. */
		assert_int_equal(seq, next[id]++);
		len = line_len(id, seq);
		p += TS_LEN + off;
		assert_int_equal((size_t)(nl - p), len);
		for (size_t i = 0; i < len; i++)
			if (p[i] != 'a' + id)
				fail_msg("line T%d %d: byte %zu is '%c'", id,
				    seq, i, p[i]);
		p = nl + 1;
	}
	assert_int_equal(count, NTHREADS * NLINES);
	free(buf);
}

static void run_writers(struct userlog **uls, bool is_whole_writes)
{
	struct writer w[NTHREADS];
	pthread_t th[NTHREADS];

	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct writer){uls[i], i, is_whole_writes};
		assert_int_equal(
		    pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
}

static void test_concurrent_shared(void **state)
{
	struct fixture *f = *state;
	struct userlog *ul = userlog_open(f->dir, "blog");
	struct userlog *uls[NTHREADS] = {ul, ul, ul, ul};

	assert_non_null(ul);
	run_writers(uls, true);
	userlog_close(ul);
	check_concurrent_file(f->path);
}

static void test_concurrent_separate(void **state)
{
	struct fixture *f = *state;
	struct userlog *uls[NTHREADS];

	for (int i = 0; i < NTHREADS; i++) {
		uls[i] = userlog_open(f->dir, "blog");
		assert_non_null(uls[i]);
	}
	run_writers(uls, false);
	for (int i = 0; i < NTHREADS; i++)
		userlog_close(uls[i]);
	check_concurrent_file(f->path);
}

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))
#define DIR_TEST(fn)                                                           \
	cmocka_unit_test_setup_teardown(fn, dir_setup, dir_teardown)

int main(void)
{
	static const struct CMUnitTest fixed[] = {
	    DIR_TEST(test_mode),
	    DIR_TEST(test_open_errors),
	    DIR_TEST(test_long_lines),
	    DIR_TEST(test_two_writers),
	    DIR_TEST(test_stderr),
	    DIR_TEST(test_concurrent_shared),
	    DIR_TEST(test_concurrent_separate),
	};
	struct CMUnitTest
	    tests[NROWS(format_rows) + NROWS(write_rows) + NROWS(fixed)];
	size_t n = 0;

	for (size_t i = 0; i < NROWS(format_rows); i++)
		tests[n++] = (struct CMUnitTest){.name = format_rows[i].name,
		    .test_func = test_format,
		    .initial_state = (void *)&format_rows[i]};
	for (size_t i = 0; i < NROWS(write_rows); i++)
		tests[n++] = (struct CMUnitTest){.name = write_rows[i].name,
		    .test_func = test_write,
		    .setup_func = dir_setup,
		    .teardown_func = dir_teardown,
		    .initial_state = (void *)&write_rows[i]};
	for (size_t i = 0; i < NROWS(fixed); i++)
		tests[n++] = fixed[i];
	return _cmocka_run_group_tests("userlog", tests, n, NULL, NULL);
}
