/* Behaviour tests for lodged/sandbox_priv.c (steps 6 to 9), as root: a
 * forked child drops to nobody/nogroup, then must fail to get root back,
 * and /proc/self/status must show no capabilities and no_new_privs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"

/* "Key:\tvalue" of the status text, or "" */
static void status_field(const char *text, const char *key, char *out,
    size_t size)
{
	const char *p = strstr(text, key);
	size_t n = 0;

	out[0] = '\0';
	if (!p)
		return;
	p += strlen(key);
	while (*p == ':' || *p == '\t' || *p == ' ')
		p++;
	while (p[n] && p[n] != '\n' && n < size - 1)
		n++;
	memcpy(out, p, n);
	out[n] = '\0';
}

/* Child: returns a distinct code per failed expectation. */
static int child(uid_t uid, gid_t gid)
{
	gid_t groups[1] = {gid};
	cap_t empty = cap_init();
	const char *what = NULL;
	char text[8192], v[128];
	ssize_t n;
	int fd;

	if (!empty || sandbox_priv_lock(&what) < 0)
		return 10;
	if (sandbox_priv_set_ids(uid, gid, groups, 1, &what) < 0)
		return 11;
	if (sandbox_priv_verify(uid, gid, groups, 1, &what) < 0)
		return 12;
	if (sandbox_priv_clear(empty, &what) < 0)
		return 13;
	/* Getting root back must fail, now and after clearing. */
	if (setuid(0) == 0 || errno != EPERM)
		return 20;
	if (setgid(0) == 0 || errno != EPERM)
		return 21;
	if (setgroups(0, NULL) == 0 || errno != EPERM)
		return 22;
	if (setresuid(0, 0, 0) == 0)
		return 23;
	fd = open("/proc/self/status", O_RDONLY);
	if (fd < 0)
		return 30;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return 31;
	text[n] = '\0';
	status_field(text, "\nCapEff", v, sizeof(v));
	if (strcmp(v, "0000000000000000") != 0)
		return 40;
	status_field(text, "\nCapBnd", v, sizeof(v));
	if (strcmp(v, "0000000000000000") != 0)
		return 41;
	status_field(text, "\nCapPrm", v, sizeof(v));
	if (strcmp(v, "0000000000000000") != 0)
		return 42;
	status_field(text, "\nCapAmb", v, sizeof(v));
	if (strcmp(v, "0000000000000000") != 0)
		return 43;
	status_field(text, "\nNoNewPrivs", v, sizeof(v));
	if (strcmp(v, "1") != 0)
		return 44;
	return 0;
}

static void test_drop(void **state)
{
	struct passwd *pw;
	struct group *gr;
	int status;
	pid_t pid;

	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "skip: dropping privileges needs root\n");
		skip();
	}
	pw = getpwnam("nobody");
	gr = getgrnam("nogroup");
	if (!pw || !gr) {
		fprintf(stderr, "skip: no user nobody / group nogroup\n");
		skip();
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child(pw->pw_uid, gr->gr_gid));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* The verification must notice ids that are not the intended ones. */
static void test_verify_notices(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "skip: needs root\n");
		skip();
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		gid_t g[1] = {65534};
		const char *what = NULL;

		/* Still root: the first check (uids) must fail with errno 0. */
		if (setgroups(1, g) < 0)
			_exit(1);
		if (sandbox_priv_verify(65534, 65534, g, 1, &what) == 0)
			_exit(2);
		_exit(errno == 0 && strcmp(what, "uids are not the user's") == 0
		    ? 0 : 3);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_drop),
	    cmocka_unit_test(test_verify_notices),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
