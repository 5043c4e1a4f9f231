/*
 * seccomp.h: compiles a parsed policy (policy.h) into seccomp BPF with
 * libseccomp, in lodged before the fork, and installs it in the child with
 * one system call (no allocation after fork).
 */
#ifndef LODGE_SECCOMP_H
#define LODGE_SECCOMP_H

#include <linux/filter.h>
#include <stddef.h>

#include "policy.h"
#include "spawn.h"

/*
 * A compiled policy: the main filter (the policy's default action, its
 * rules) and, when the policy has exceptions ("allow ioctl" plus
 * conditional denials of ioctl), a second filter stacked on it whose
 * default is allow.  The kernel runs both and keeps the most restrictive
 * answer, which is what libseccomp cannot express in one filter.
 */
struct seccomp_prog {
	struct sock_filter *main;
	unsigned short nmain;
	struct sock_filter *except;   /* NULL: no exceptions */
	unsigned short nexcept;
	unsigned int flags;           /* SECCOMP_FILTER_FLAG_* for seccomp(2) */
};

/*
 * Compiles p for mode: default ERRNO(deny_errno) in enforce mode,
 * SCMP_ACT_LOG in log mode, KILL_PROCESS in kill mode; native architecture
 * only, any other architecture (x32, i386) is KILL_PROCESS; denials are
 * logged (SECCOMP_FILTER_FLAG_LOG).  deny_errno 0 means EPERM; tests pass
 * EUCLEAN, a telltale no syscall of theirs returns otherwise, so a denial
 * is attributed to the filter.  The errno of "errno(E)" entries is kept.
 * Returns 0 with *prog_r filled (free with seccomp_prog_free) or -1 with
 * err set.  Runs before fork (libseccomp allocates).
 */
int seccomp_compile(const struct policy *p, enum spawn_seccomp_mode mode,
    int deny_errno, struct seccomp_prog *prog_r, char *err, size_t errsize);

/*
 * Installs prog in the calling thread: the exceptions filter first, then
 * the main one (which may deny seccomp(2) itself).  Needs no_new_privs or
 * CAP_SYS_ADMIN.  Only system calls: safe between fork and exec.  Returns
 * 0 or -1 with errno.
 */
int seccomp_apply(const struct seccomp_prog *prog);

/* Frees what seccomp_compile allocated; a zeroed prog is fine. */
void seccomp_prog_free(struct seccomp_prog *prog);

/*
 * The last policy file compiled, kept by lodged between births: every
 * worker gets the same policy, and reading, parsing and compiling the
 * default one took 1-3 ms of each cold start.  The key is the file's exact
 * bytes (not its size or times, which an edit can leave unchanged) with
 * the path, mode and deny errno, so an edited policy is compiled again at
 * the next birth, as it always was.  A zeroed struct is an empty cache;
 * one entry is enough (workers share one policy).
 */
struct seccomp_cache {
	char *path;                   /* NULL: empty */
	char *text;                   /* the file's bytes when compiled */
	size_t len;
	enum spawn_seccomp_mode mode;
	int deny_errno;
	struct seccomp_prog prog;
	unsigned long compiles;       /* how many compilations (tests) */
};

/*
 * Reads the policy at path and sets *prog_r to its compilation for mode
 * and deny_errno (as seccomp_compile): the cached one when the file still
 * has the same bytes, else a new one that replaces the cache's.  *prog_r
 * belongs to the cache and stays valid until the next call or
 * seccomp_cache_clear.  -1 with err set ("PATH: why" or "seccomp: ...")
 * when the file is unreadable, wrong or does not compile; the cache then
 * keeps what it had.  Runs before fork (allocates).
 */
int seccomp_cache_get(struct seccomp_cache *cache, const char *path,
    enum spawn_seccomp_mode mode, int deny_errno,
    const struct seccomp_prog **prog_r, char *err, size_t errsize);

/* Empties the cache and frees what it held.  Can't fail. */
void seccomp_cache_clear(struct seccomp_cache *cache);

#endif
