/* Checks the shipped policies (every .policy file in policy/) as data: they parse (so
 * every name is one libseccomp knows, with no duplicates or conflicts),
 * entries are sorted by name within each group, every group and entry says
 * why, the calls SANDBOX.md §1 requires are where they must be, and each
 * compiles in the three modes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "policy.h"
#include "seccomp.h"

#ifndef LODGE_POLICY_DIR
#error "LODGE_POLICY_DIR must name the source tree's policy/ directory"
#endif

static struct policy *load(const char *name)
{
	char path[512], err[512];
	struct policy *p = NULL;

	snprintf(path, sizeof(path), "%s/%s", LODGE_POLICY_DIR, name);
	if (policy_load(path, &p, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	return p;
}

static void check_sorted(const char *file, const struct policy *p)
{
	for (size_t i = 1; i < p->nentries; i++) {
		const struct policy_entry *a = &p->entries[i - 1], *b = &p->entries[i];

		if (a->group == b->group && strcmp(a->name, b->name) > 0)
			fail_msg("%s:%d: '%s' comes after '%s' (line %d): keep each "
			    "group sorted", file, b->line, b->name, a->name, a->line);
	}
}

static void test_all_files(void **state)
{
	DIR *d = opendir(LODGE_POLICY_DIR);
	struct dirent *de;
	int n = 0;

	(void)state;
	assert_non_null(d);
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		struct policy *p;

		if (len < 8 || strcmp(de->d_name + len - 7, ".policy") != 0)
			continue;
		p = load(de->d_name);
		check_sorted(de->d_name, p);
		for (int mode = SPAWN_SECCOMP_ENFORCE; mode <= SPAWN_SECCOMP_KILL;
		    mode++) {
			struct seccomp_prog prog;
			char err[512];

			if (seccomp_compile(p, mode, 0, &prog, err, sizeof(err)) < 0)
				fail_msg("%s: mode %d: %s", de->d_name, mode, err);
			assert_true(prog.nmain > 0);
			seccomp_prog_free(&prog);
		}
		policy_free(p);
		n++;
	}
	closedir(d);
	assert_true(n >= 1);
}

static const struct policy_entry *find(const struct policy *p,
    const char *name, unsigned ncond)
{
	for (size_t i = 0; i < p->nentries; i++)
		if (strcmp(p->entries[i].name, name) == 0 &&
		    p->entries[i].ncond == ncond)
			return &p->entries[i];
	return NULL;
}

/* What SANDBOX.md §1 asks of the default policy. */
static void test_default_shape(void **state)
{
	static const char *const denied[] = {
	    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
	    "kcmp", "mount", "umount2", "fsopen", "open_tree", "move_mount",
	    "pivot_root", "chroot", "unshare", "setns", "bpf",
	    "perf_event_open", "userfaultfd", "io_uring_setup",
	    "io_uring_enter", "io_uring_register", "add_key", "keyctl",
	    "request_key", "init_module", "finit_module", "kexec_load",
	    "reboot", "swapon", "acct", "quotactl", "syslog", "clock_settime",
	    "settimeofday", "sethostname", "iopl", "ioperm",
	    "open_by_handle_at", "modify_ldt", "mbind", "set_mempolicy",
	};
	static const char *const allowed[] = {
	    "read", "write", "mmap", "futex", "epoll_wait", "eventfd2",
	    "inotify_add_watch", "sendmsg", "recvmsg", "prctl",
	    "prlimit64", "close_range", "execve", "wait4", "accept4",
	    "getrandom", "ioctl", "rt_sigtimedwait", "kill",
	};
	struct policy *p = load("default.policy");
	const struct policy_entry *e;

	(void)state;
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		e = find(p, denied[i], 0);
		if (!e || e->action != POLICY_DENY)
			fail_msg("default.policy must deny %s explicitly", denied[i]);
	}
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		e = find(p, allowed[i], 0);
		if (!e || e->action != POLICY_ALLOW)
			fail_msg("default.policy must allow %s", allowed[i]);
	}
	e = find(p, "clone3", 0);
	assert_non_null(e);
	assert_int_equal(e->action, POLICY_ERRNO);
	assert_int_equal(e->err, ENOSYS);
	e = find(p, "clone", 1);
	assert_non_null(e);
	assert_int_equal(e->cond[0].op, POLICY_OP_MASKED_EQ);
	assert_int_equal(e->cond[0].mask, 0x7E020000);
	assert_int_equal(e->cond[0].value, 0);
	assert_null(find(p, "clone", 0));
	assert_null(find(p, "socket", 0));
	assert_non_null(find(p, "socketpair", 1));
	assert_null(find(p, "socketpair", 0));
	assert_null(find(p, "personality", 0));
	policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_all_files),
	    cmocka_unit_test(test_default_shape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
