/*
 * selfcheck.h: the worker's proof, before any user code runs, that it was
 * born sandboxed (SANDBOX.md §2 step 12): no capabilities, no_new_privs,
 * a seccomp filter, the expected ids and groups.
 */
#ifndef LODGE_SELFCHECK_H
#define LODGE_SELFCHECK_H

#include <stddef.h>
#include <sys/types.h>

struct selfcheck_expect {
	uid_t uid;
	gid_t gid;
	const gid_t *groups;   /* the exact supplementary list, any order */
	int ngroups;
};

/*
 * Checks the text of /proc/self/status: CapEff, CapPrm, CapBnd, CapAmb all
 * 0, NoNewPrivs 1, Seccomp 2, every Uid and Gid field equal to the
 * expected ids, Groups equal to the expected set.  Returns 0, or -1 with a
 * reason in why ("CapBnd is 000001ffffffffff, expected 0").  A missing
 * field is a failure.  Pure.
 */
int selfcheck_status(const char *text, const struct selfcheck_expect *e,
    char *why, size_t whysize);

/* Reads /proc/self/status and checks it as above; -1 with why also when
 * it cannot be read. */
int selfcheck_run(const struct selfcheck_expect *e, char *why,
    size_t whysize);

#endif
