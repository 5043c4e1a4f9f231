/* Unit tests for lodged/procinfo.c: /proc/PID/stat lines (command names
 * with spaces and parentheses, short or garbled lines), children lists,
 * and the tree walk on this very process and a child of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four above first. */
#include <cmocka.h>

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "procinfo.h"

/* A real line of proc(5), with a command name made to confuse. */
static const char stat_line[] =
    "1301 (lodge-worker) x) (y) S 1300 1301 1301 0 -1 4194560 2345 0 3 0 "
    "170 30 -5 7 20 0 6 0 123456 264241152 7936 18446744073709551615 1 1 "
    "0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";

static void test_parse_stat(void **state)
{
	struct procinfo_stat st;

	assert_int_equal(
	    procinfo_parse_stat(stat_line, strlen(stat_line), &st), 0);
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.ppid, 1300);
	assert_int_equal(st.utime, 170);
	assert_int_equal(st.stime, 30);
	assert_int_equal(st.cutime, -5);
	assert_int_equal(st.cstime, 7);
	assert_int_equal(st.num_threads, 6);
	assert_int_equal(st.starttime, 123456);
	assert_int_equal(st.rss_pages, 7936);
}

static const char *const bad_stats[] = {
    "",
    "1301 lodge-worker S 1300",
    "1301 (w) S 1300 1301",
    "1301 (w) S 1300 1301 1301 0 -1 4194560 2345 0 3 0 17x 30 0 0 20 0 6 0 "
    "123456 264241152 7936",
    "1301 (w)",
    "1301 (w)S 1300 1301 1301 0 -1 4194560 2345 0 3 0 1 1 0 0 20 0 6 0 1 "
    "1 1",
};

static void test_parse_stat_bad(void **state)
{
	struct procinfo_stat st;

	for (size_t i = 0; i < sizeof(bad_stats) / sizeof(bad_stats[0]); i++)
		if (procinfo_parse_stat(
		        bad_stats[i], strlen(bad_stats[i]), &st) != -1)
			fail_msg("accepted: %s", bad_stats[i]);
}

static void test_parse_pids(void **state)
{
	pid_t out[4];

	assert_int_equal(procinfo_parse_pids("", 0, out, 4), 0);
	assert_int_equal(procinfo_parse_pids("12 34 ", 6, out, 4), 2);
	assert_int_equal(out[0], 12);
	assert_int_equal(out[1], 34);
	/* More than room: the first ones. */
	assert_int_equal(procinfo_parse_pids("1 2 3 4 5 6", 11, out, 4), 4);
	assert_int_equal(out[3], 4);
	assert_int_equal(procinfo_parse_pids("1 x", 3, out, 4), -1);
	assert_int_equal(procinfo_parse_pids("0", 1, out, 4), -1);
	assert_int_equal(procinfo_parse_pids("-3", 2, out, 4), -1);
}

/* The walk, on a real tree: this process as the "init", a child that
 * sleeps as the "worker". */
static void test_tree(void **state)
{
	struct procinfo_tree t;
	struct procinfo_stat st;
	pid_t child = fork();

	assert_true(child >= 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	assert_int_equal(procinfo_read_stat(getpid(), &st), 0);
	assert_int_equal(st.ppid, getppid());
	assert_true(st.rss_pages > 0);
	assert_int_equal(procinfo_tree(getpid(), &t), 0);
	assert_int_equal(t.worker, child);
	assert_int_equal(t.nprocs, 1);
	assert_true(t.rss_bytes > 0);
	assert_true(t.cpu_seconds >= 0);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	/* Gone: no worker below, and a pid that exists nowhere fails. */
	assert_int_equal(procinfo_tree(getpid(), &t), 0);
	assert_int_equal(t.worker, 0);
	assert_int_equal(t.nprocs, 0);
	assert_int_equal(procinfo_tree(child, &t), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_stat),
	    cmocka_unit_test(test_parse_stat_bad),
	    cmocka_unit_test(test_parse_pids),
	    cmocka_unit_test(test_tree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
