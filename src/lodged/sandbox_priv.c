/*
 * sandbox_priv.c: from root to the hosted user, for good (steps 6 to 9 of
 * SANDBOX.md §2).  Runs in lodged's sandboxed child between fork and exec,
 * starting as root with every capability: system calls only (libcap's
 * calls here are thin prctl/capset wrappers; the empty cap_t comes from
 * the parent).  It must never leave a way back: every drop is checked,
 * and the checks of step 8 try to get root back and fail the birth if
 * that works.
 */
#include "sandbox.h"

#include <errno.h>
#include <grp.h>
#include <linux/securebits.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <unistd.h>

int sandbox_priv_lock(const char **what_r)
{
	/*
	 * The bounding set limits what any later execve can ever grant;
	 * emptying it needs CAP_SETPCAP, so it happens now, while root
	 * (SANDBOX.md §0 fact 1: after setresuid it fails with EPERM).
	 * cap_drop_bound returns EINVAL past the kernel's last capability.
	 */
	*what_r = "drop bounding set";
	for (cap_value_t c = 0; c < 64; c++) {
		if (cap_drop_bound(c) == 0)
			continue;
		if (errno == EINVAL)
			break;
		return -1;
	}
	for (cap_value_t c = 0; c < 64; c++) {
		int r = prctl(PR_CAPBSET_READ, c, 0, 0, 0);

		if (r < 0)
			break;
		if (r > 0) {
			errno = EPERM;
			return -1;
		}
	}
	/*
	 * Securebits, each locked so no later code can flip it back:
	 * NOROOT (uid 0 and setuid-root files grant no capabilities),
	 * NO_CAP_AMBIENT_RAISE, KEEP_CAPS off.  NO_SETUID_FIXUP stays OFF
	 * and is locked off: the "fixup" is the kernel clearing the
	 * permitted and effective sets when we leave uid 0 at step 7, which
	 * is exactly what we want (with it on, the capabilities would
	 * survive setresuid and step 8's setuid(0) would succeed).
	 */
	*what_r = "securebits";
	return cap_set_secbits(SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
	    SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
	    SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED);
}

/*
 * Group before user (CERT POS36-C), each call checked (POS37-C).  The
 * list is exactly what lodged computed, primary gid included
 * (CVE-2022-36109): nothing inherited from root, never gid 0 (spawn.c
 * refuses it before the fork).
 */
int sandbox_priv_set_ids(uid_t uid, gid_t gid, const gid_t *groups,
    int ngroups, const char **what_r)
{
	*what_r = "setgroups";
	if (setgroups((size_t)ngroups, groups) < 0)
		return -1;
	*what_r = "setresgid";
	if (setresgid(gid, gid, gid) < 0)
		return -1;
	*what_r = "setresuid";
	return setresuid(uid, uid, uid);
}

static bool same_groups(const gid_t *a, int na, const gid_t *b, int nb)
{
	if (na != nb)
		return false;
	for (int i = 0; i < na; i++) {
		bool found = false;

		for (int j = 0; j < nb && !found; j++)
			found = a[i] == b[j];
		if (!found)
			return false;
	}
	return true;
}

/* As OpenSSH's permanently_set_uid and Dovecot's restrict_access: trust
 * nothing, try to get root back. */
int sandbox_priv_verify(uid_t uid, gid_t gid, const gid_t *groups,
    int ngroups, const char **what_r)
{
	gid_t now[SANDBOX_MAX_GROUPS + 1];
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	int n;

	*what_r = "getresuid";
	if (getresuid(&ru, &eu, &su) < 0)
		return -1;
	*what_r = "uids are not the user's";
	if (ru != uid || eu != uid || su != uid)
		goto check_failed;
	*what_r = "getresgid";
	if (getresgid(&rg, &eg, &sg) < 0)
		return -1;
	*what_r = "gids are not the user's";
	if (rg != gid || eg != gid || sg != gid)
		goto check_failed;
	*what_r = "getgroups";
	n = getgroups(SANDBOX_MAX_GROUPS + 1, now);
	if (n < 0)
		return -1;
	*what_r = "groups are not the intended list";
	if (!same_groups(now, n, groups, ngroups) ||
	    !same_groups(groups, ngroups, now, n))
		goto check_failed;
	*what_r = "setuid(0) succeeded";
	if (setuid(0) == 0 || errno != EPERM)
		goto check_failed;
	*what_r = "setgid(0) succeeded";
	if (setgid(0) == 0 || errno != EPERM)
		goto check_failed;
	*what_r = "setgroups() succeeded";
	if (setgroups(0, NULL) == 0 || errno != EPERM)
		goto check_failed;
	return 0;
check_failed:
	errno = 0;
	return -1;
}

int sandbox_priv_clear(cap_t empty, const char **what_r)
{
	/* After leaving uid 0 the kernel already cleared permitted and
	 * effective; this also empties the inheritable set. */
	*what_r = "cap_set_proc(empty)";
	if (cap_set_proc(empty) < 0)
		return -1;
	*what_r = "cap_reset_ambient";
	if (cap_reset_ambient() < 0)
		return -1;
	/* From here no execve can grant anything: setuid bits and file
	 * capabilities are ignored (SANDBOX.md §2, "setuid binaries without
	 * NNP"), and seccomp may be installed without CAP_SYS_ADMIN. */
	*what_r = "PR_SET_NO_NEW_PRIVS";
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}
