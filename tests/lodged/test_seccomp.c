/* Behaviour tests for lodged/seccomp.c with policy/default.policy: one
 * fork per case, the compiled policy applied with the telltale errno
 * EUCLEAN (so a denial is the filter's, not the kernel's), then one call
 * and its errno.  Seccomp filters need no_new_privs, not root, so these
 * run unprivileged too; they skip when the kernel has no seccomp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "policy.h"
#include "seccomp.h"

#define TELLTALE EUCLEAN
#define KILLED (-1)   /* expect: killed by SIGSYS */

static struct policy *policy;

static long call_ptrace(void) { return ptrace(PTRACE_TRACEME, 0, NULL, NULL); }
static long call_unshare(void) { return unshare(CLONE_NEWUSER); }
static long call_mount(void) { return mount("none", "/tmp", "tmpfs", 0, NULL); }
static long call_bpf(void) { return syscall(SYS_bpf, 0, NULL, 0); }
static long call_io_uring(void)
{
	struct io_uring_params p;

	memset(&p, 0, sizeof(p));
	return syscall(SYS_io_uring_setup, 4, &p);
}
static long call_keyctl(void)
{
	return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0);
}
static long call_packet(void) { return socket(AF_PACKET, SOCK_RAW, 0); }
static long call_vsock(void) { return socket(AF_VSOCK, SOCK_STREAM, 0); }
static long call_ipx(void) { return socket(4, SOCK_DGRAM, 0); }
static long call_unspec(void) { return socket(AF_UNSPEC, SOCK_STREAM, 0); }
static long call_audit(void) { return socket(AF_NETLINK, SOCK_RAW, 9); }
static long call_unix(void) { return socket(AF_UNIX, SOCK_STREAM, 0); }
static long call_inet(void) { return socket(AF_INET, SOCK_STREAM, 0); }
static long call_route(void) { return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0); }
static long call_socketpair_inet(void)
{
	int sv[2];

	return socketpair(AF_INET, SOCK_STREAM, 0, sv);
}
static long call_personality_bad(void) { return syscall(SYS_personality, 0x0200000); }
static long call_personality_query(void) { return syscall(SYS_personality, 0xffffffffUL); }
static long call_clone3(void)
{
	struct clone_args a;

	memset(&a, 0, sizeof(a));
	a.exit_signal = SIGCHLD;
	return syscall(SYS_clone3, &a, sizeof(a));
}
static long call_clone_newuser(void)
{
	long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);

	if (r == 0)
		_exit(0);
	return r;
}
static long call_fork(void)
{
	int st;
	long r = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);

	if (r == 0)
		_exit(7);
	if (r < 0 || waitpid((pid_t)r, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 7 ? 0 : (errno = EPROTO, -1);
}
static void *thread_fn(void *arg) { return arg; }
static long call_pthread(void)
{
	pthread_t t;
	void *ret;
	int rc = pthread_create(&t, NULL, thread_fn, (void *)42);

	if (rc) {
		errno = rc;
		return -1;
	}
	pthread_join(t, &ret);
	return ret == (void *)42 ? 0 : (errno = EPROTO, -1);
}
static long call_tiocsti(void)
{
	char c = 'x';

	return ioctl(0, TIOCSTI, &c);
}
static long call_tiocsti_high(void)
{
	char c = 'x';

	/* The kernel truncates the command to 32 bits: the filter must too
	 * (CVE-2019-10063). */
	return syscall(SYS_ioctl, 0, 0x100000000UL | TIOCSTI, &c);
}
static long call_tioclinux(void)
{
	char c = 0;

	return ioctl(0, TIOCLINUX, &c);
}
static long call_fionread(void)
{
	int fds[2], n;

	if (pipe(fds) < 0)
		return -1;
	return ioctl(fds[0], FIONREAD, &n);
}
static long call_getpid(void) { return getpid() > 0 ? 0 : -1; }
static long call_unlisted(void) { return syscall(SYS_io_setup, 1, NULL); }
static long call_x32(void) { return syscall(0x40000000 | SYS_getpid); }

static const struct {
	const char *what;
	long (*call)(void);
	enum spawn_seccomp_mode mode;
	int expect;        /* errno, 0 for success, KILLED */
} rows[] = {
    {"ptrace", call_ptrace, SPAWN_SECCOMP_ENFORCE, TELLTALE},
    {"unshare(NEWUSER)", call_unshare, SPAWN_SECCOMP_ENFORCE, TELLTALE},
    {"mount", call_mount, SPAWN_SECCOMP_ENFORCE, TELLTALE},
    {"bpf", call_bpf, SPAWN_SECCOMP_ENFORCE, TELLTALE},
    {"io_uring_setup", call_io_uring, SPAWN_SECCOMP_ENFORCE, TELLTALE},
    {"keyctl", call_keyctl, SPAWN_SECCOMP_ENFORCE, TELLTALE},
    {"socket(AF_PACKET)", call_packet, SPAWN_SECCOMP_ENFORCE, EAFNOSUPPORT},
    {"socket(AF_VSOCK)", call_vsock, SPAWN_SECCOMP_ENFORCE, EAFNOSUPPORT},
    {"socket(AF_IPX)", call_ipx, SPAWN_SECCOMP_ENFORCE, EAFNOSUPPORT},
    {"socket(AF_UNSPEC)", call_unspec, SPAWN_SECCOMP_ENFORCE, EAFNOSUPPORT},
    {"socket(AF_NETLINK, audit)", call_audit, SPAWN_SECCOMP_ENFORCE, TELLTALE},
    {"socketpair(AF_INET)", call_socketpair_inet, SPAWN_SECCOMP_ENFORCE, TELLTALE},
    {"personality(0x0200000)", call_personality_bad, SPAWN_SECCOMP_ENFORCE, TELLTALE},
    {"personality(query)", call_personality_query, SPAWN_SECCOMP_ENFORCE, 0},
    {"clone3", call_clone3, SPAWN_SECCOMP_ENFORCE, ENOSYS},
    {"clone(NEWUSER)", call_clone_newuser, SPAWN_SECCOMP_ENFORCE, TELLTALE},
    {"fork via clone", call_fork, SPAWN_SECCOMP_ENFORCE, 0},
    {"pthread_create", call_pthread, SPAWN_SECCOMP_ENFORCE, 0},
    {"ioctl(TIOCSTI)", call_tiocsti, SPAWN_SECCOMP_ENFORCE, TELLTALE},
    {"ioctl(1<<32|TIOCSTI)", call_tiocsti_high, SPAWN_SECCOMP_ENFORCE, TELLTALE},
    {"ioctl(TIOCLINUX)", call_tioclinux, SPAWN_SECCOMP_ENFORCE, TELLTALE},
    {"ioctl(FIONREAD)", call_fionread, SPAWN_SECCOMP_ENFORCE, 0},
    {"getpid", call_getpid, SPAWN_SECCOMP_ENFORCE, 0},
    {"socket(AF_UNIX)", call_unix, SPAWN_SECCOMP_ENFORCE, 0},
    {"socket(AF_INET)", call_inet, SPAWN_SECCOMP_ENFORCE, 0},
    {"socket(AF_NETLINK, route)", call_route, SPAWN_SECCOMP_ENFORCE, 0},
    {"io_setup (not listed)", call_unlisted, SPAWN_SECCOMP_ENFORCE, TELLTALE},
    {"x32 getpid", call_x32, SPAWN_SECCOMP_ENFORCE, KILLED},
    {"kill mode: io_setup", call_unlisted, SPAWN_SECCOMP_KILL, KILLED},
    {"kill mode: ptrace keeps its errno", call_ptrace, SPAWN_SECCOMP_KILL, TELLTALE},
    {"log mode: io_setup runs", call_unlisted, SPAWN_SECCOMP_LOG, EFAULT},
    {"log mode: ptrace still denied", call_ptrace, SPAWN_SECCOMP_LOG, TELLTALE},
};

static int setup(void **state)
{
	char err[512];

	(void)state;
	if (policy_load(LODGE_POLICY_DIR "/default.policy", &policy, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	policy_free(policy);
	return 0;
}

static void test_rows(void **state)
{
	(void)state;
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0 && errno == EINVAL)
		skip(); /* the kernel has no seccomp */
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct seccomp_prog prog;
		char err[512];
		int status;
		pid_t pid;

		if (seccomp_compile(policy, rows[i].mode, TELLTALE, &prog, err,
		    sizeof(err)) < 0)
			fail_msg("%s", err);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			long r;

			if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
			    seccomp_apply(&prog) < 0)
				_exit(250);
			errno = 0;
			r = rows[i].call();
			_exit(r < 0 ? (errno ? errno : 251) : 0);
		}
		seccomp_prog_free(&prog);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (rows[i].expect == KILLED) {
			if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS)
				fail_msg("%s: expected death by SIGSYS, status 0x%x",
				    rows[i].what, status);
			continue;
		}
		if (!WIFEXITED(status))
			fail_msg("%s: child died, status 0x%x", rows[i].what, status);
		if (WEXITSTATUS(status) != rows[i].expect)
			fail_msg("%s: errno %d (%s), expected %d (%s)", rows[i].what,
			    WEXITSTATUS(status), strerror(WEXITSTATUS(status)),
			    rows[i].expect, strerror(rows[i].expect));
	}
}

/* Applies prog in a child, calls call there; its errno (0: success). */
static int errno_under(const struct seccomp_prog *prog, long (*call)(void))
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		long r;

		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    seccomp_apply(prog) < 0)
			_exit(250);
		errno = 0;
		r = call();
		_exit(r < 0 ? (errno ? errno : 251) : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* getpid through syscall(2), which sets errno (glibc's getpid does not). */
static long call_sys_getpid(void) { return syscall(SYS_getpid); }

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* seccomp_cache_get: the same bytes are compiled once; another mode, or
 * an edit that keeps the size (one byte), is compiled again, and the new
 * filter is the one returned; a broken or missing file fails. */
static void test_cache(void **state)
{
	char dir[] = "/tmp/lodge-test-seccomp-XXXXXX", path[64], err[512];
	struct seccomp_cache cache = {0};
	const struct seccomp_prog *p1, *p2;
	char *text, *line;
	size_t len;

	(void)state;
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0 && errno == EINVAL)
		skip(); /* the kernel has no seccomp */
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/worker.policy", dir);
	if (policy_read(LODGE_POLICY_DIR "/default.policy", &text, &len, err,
	    sizeof(err)) < 0)
		fail_msg("%s", err);
	write_file(path, text, len);

	if (seccomp_cache_get(&cache, path, SPAWN_SECCOMP_ENFORCE, TELLTALE,
	    &p1, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_int_equal(cache.compiles, 1);
	assert_int_equal(errno_under(p1, call_sys_getpid), 0);
	/* Rewritten with the same bytes: still the cached filter. */
	write_file(path, text, len);
	assert_int_equal(seccomp_cache_get(&cache, path, SPAWN_SECCOMP_ENFORCE,
	    TELLTALE, &p2, err, sizeof(err)), 0);
	assert_int_equal(cache.compiles, 1);
	assert_ptr_equal(p1, p2);
	/* Another mode or errno is another filter. */
	assert_int_equal(seccomp_cache_get(&cache, path, SPAWN_SECCOMP_LOG,
	    TELLTALE, &p2, err, sizeof(err)), 0);
	assert_int_equal(cache.compiles, 2);
	assert_int_equal(errno_under(p2, call_unlisted), EFAULT);
	assert_int_equal(seccomp_cache_get(&cache, path, SPAWN_SECCOMP_ENFORCE,
	    0, &p2, err, sizeof(err)), 0);
	assert_int_equal(cache.compiles, 3);
	assert_int_equal(errno_under(p2, call_unlisted), EPERM);

	/* One byte: "allow getpid" becomes a comment.  Same size, and
	 * maybe the same mtime: compiled again all the same. */
	line = strstr(text, "\nallow getpid ");
	assert_non_null(line);
	line[1] = '#';
	write_file(path, text, len);
	assert_int_equal(seccomp_cache_get(&cache, path, SPAWN_SECCOMP_ENFORCE,
	    0, &p2, err, sizeof(err)), 0);
	assert_int_equal(cache.compiles, 4);
	assert_int_equal(errno_under(p2, call_sys_getpid), EPERM);

	/* A broken policy fails (the cache is left as it was), and so
	 * does a missing file. */
	write_file(path, "allow getpid\n", 13);
	assert_int_equal(seccomp_cache_get(&cache, path, SPAWN_SECCOMP_ENFORCE,
	    TELLTALE, &p2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "worker.policy:1:"));
	assert_int_equal(cache.compiles, 4);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(seccomp_cache_get(&cache, path, SPAWN_SECCOMP_ENFORCE,
	    TELLTALE, &p2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, strerror(ENOENT)));

	seccomp_cache_clear(&cache);
	assert_null(cache.path);
	free(text);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rows),
	    cmocka_unit_test(test_cache),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
