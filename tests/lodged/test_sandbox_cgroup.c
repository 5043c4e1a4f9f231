/* Tests for lodged/sandbox_cgroup.c: detection of usable cgroup v2
 * controllers (its reasons), and the rlimits a worker gets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"

static void test_detect(void **state)
{
	char why[256] = "";
	int rc;

	(void)state;
	assert_int_equal(sandbox_cgroup_detect("/nonexistent-cg", why,
	    sizeof(why)), -1);
	assert_string_equal(why, "cgroup: /nonexistent-cg: No such file or "
	    "directory; only rlimits apply");
	assert_int_equal(sandbox_cgroup_detect("/proc", why, sizeof(why)), -1);
	assert_string_equal(why, "cgroup: /proc is not a cgroup v2 hierarchy; "
	    "only rlimits apply");
	why[0] = '\0';
	rc = sandbox_cgroup_detect(NULL, why, sizeof(why));
	fprintf(stderr, "this machine: %s\n", rc == 0 ? "cgroup v2 usable" : why);
	if (rc < 0)
		assert_non_null(strstr(why, "only rlimits apply"));
}

static void test_rlimits(void **state)
{
	struct spawn_req req;
	int status, policy;
	pid_t pid;

	(void)state;
	memset(&req, 0, sizeof(req));
	req.nofile = 100;
	req.fsize = 1 << 20;
	req.memory_max = 1ULL << 30;
	policy = sched_getscheduler(0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const char *what = NULL;
		struct rlimit rl;

		if (sandbox_cgroup_rlimits(&req, &what) < 0)
			_exit(1);
		getrlimit(RLIMIT_CORE, &rl);
		if (rl.rlim_cur != 0 || rl.rlim_max != 0)
			_exit(2);
		getrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur != 100)
			_exit(3);
		getrlimit(RLIMIT_FSIZE, &rl);
		if (rl.rlim_cur != 1 << 20)
			_exit(4);
		getrlimit(RLIMIT_AS, &rl);
		if (rl.rlim_cur != 2ULL << 30)
			_exit(5);
		if (sched_getscheduler(0) != policy)
			_exit(6); /* sched_batch not asked for: unchanged */
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* scheduling = batch: the child and a thread it starts run SCHED_BATCH. */
static void *policy_of_thread(void *arg)
{
	*(int *)arg = sched_getscheduler(0);
	return NULL;
}

static void test_sched_batch(void **state)
{
	struct spawn_req req;
	int status;
	pid_t pid;

	(void)state;
	memset(&req, 0, sizeof(req));
	req.sched_batch = true;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const char *what = NULL;
		pthread_t t;
		int policy = -1;

		if (sandbox_cgroup_rlimits(&req, &what) < 0)
			_exit(1);
		if (sched_getscheduler(0) != SCHED_BATCH)
			_exit(2);
		if (pthread_create(&t, NULL, policy_of_thread, &policy) != 0 ||
		    pthread_join(t, NULL) != 0 || policy != SCHED_BATCH)
			_exit(3);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_detect),
	    cmocka_unit_test(test_rlimits),
	    cmocka_unit_test(test_sched_batch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
