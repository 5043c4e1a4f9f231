/*
 * seccomp_exec.c: a test helper that runs a program under a shipped
 * seccomp policy, the way lodged's spawn.c installs it (no_new_privs, the
 * filter, then execve), so tests/integration/test_router.py can run the
 * real lodge-router under policy/router.policy and prove the policy lets
 * it do its whole job.  Usage:
 *
 *   router_seccomp_exec POLICY enforce|kill PROGRAM [ARGS...]
 *
 * In kill mode a system call the policy does not allow kills the
 * process (SIGSYS), so a missing entry cannot hide behind an error path
 * that tolerates EPERM.  Needs no privilege.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "policy.h"
#include "seccomp.h"

int main(int argc, char **argv)
{
	struct policy *p = NULL;
	struct seccomp_prog prog;
	enum spawn_seccomp_mode mode;
	char err[512];

	if (argc < 4) {
		fprintf(stderr,
		    "usage: %s POLICY enforce|kill PROGRAM [ARGS...]\n",
		    argv[0]);
		return 2;
	}
	if (strcmp(argv[2], "enforce") == 0)
		mode = SPAWN_SECCOMP_ENFORCE;
	else if (strcmp(argv[2], "kill") == 0)
		mode = SPAWN_SECCOMP_KILL;
	else {
		fprintf(stderr, "%s: mode '%s' is neither enforce nor kill\n",
		    argv[0], argv[2]);
		return 2;
	}
	if (policy_load(argv[1], &p, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", argv[0], err);
		return 2;
	}
	if (seccomp_compile(p, mode, 0, &prog, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", argv[0], err);
		return 2;
	}
	policy_free(p);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    seccomp_apply(&prog) < 0) {
		fprintf(stderr, "%s: installing the filter: %s\n", argv[0],
		    strerror(errno));
		return 2;
	}
	execv(argv[3], argv + 3);
	/* Only write and exit from here: the filter is in force. */
	fprintf(
	    stderr, "%s: execv %s: %s\n", argv[0], argv[3], strerror(errno));
	return 127;
}
