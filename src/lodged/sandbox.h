/*
 * sandbox.h: the steps of a worker's birth (SANDBOX.md §2), one file per
 * kind: sandbox_ns.c (mounts), sandbox_net.c (loopback), sandbox_cgroup.c
 * (cgroup v2 and rlimits), sandbox_priv.c (capabilities, ids).  spawn.c
 * calls them in order in the child.
 *
 * Conventions: functions named *_prepare run in lodged before the fork and
 * may allocate; every other function runs in the child between fork and
 * exec, makes system calls only (no malloc, no stdio), and returns 0 or -1
 * with errno set and *what_r naming the exact operation that failed
 * ("mount /tmp"), which lodged prints as the step's name.
 */
#ifndef LODGE_SANDBOX_H
#define LODGE_SANDBOX_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/capability.h>
#include <sys/types.h>

#include "spawn.h"

#define SANDBOX_RUN_DIR "/run/lodge"  /* lodged's sockets: hidden */
#define SANDBOX_MAX_GROUPS 64

/* sandbox_ns.c ------------------------------------------------------- */

/* Mount options of the private /tmp, /var/tmp, /dev/shm, built before the
 * fork.  0 or -1 (ENAMETOOLONG). */
int sandbox_ns_prepare(const struct spawn_req *req, char *tmpfs_opts,
    size_t size);

/* Step 3: private propagation, private tmp dirs, hidden homes and
 * /run/lodge, a fresh /proc (hidepid=invisible).  Needs CLONE_NEWNS, and a
 * PID namespace of which the caller is a member for /proc. */
int sandbox_ns_setup(const struct spawn_req *req, const char *tmpfs_opts,
    const char **what_r);

/* sandbox_net.c ------------------------------------------------------ */

struct nl_sock;
struct nl_msg;
struct sandbox_net {
	struct nl_sock *sk;   /* libnl socket, not yet connected */
	struct nl_msg *msg;   /* RTM_NEWLINK lo IFF_UP, built by libnl */
};

/* Builds the request with libnl's route API.  0, or -1 with err set. */
int sandbox_net_prepare(struct sandbox_net *net, char *err, size_t errsize);

/* Step 4: sends the request in the new network namespace and checks the
 * kernel's answer.  Needs CAP_NET_ADMIN there. */
int sandbox_net_lo_up(struct sandbox_net *net, const char **what_r);

/* Frees what prepare allocated; a zeroed net is fine. */
void sandbox_net_release(struct sandbox_net *net);

/* sandbox_cgroup.c --------------------------------------------------- */

struct sandbox_cgroup {
	bool is_on;
	char dir[PATH_MAX];        /* <cgroup_dir>/u-<user> */
	char memory_max[24];       /* "" when not set */
	char pids_max[24];
	char cpu_weight[24];
};

/*
 * Called by lodged once at start: is dir (NULL: /sys/fs/cgroup) a cgroup
 * v2 hierarchy where lodged can create children with the memory, pids and
 * cpu controllers?  0 if so; -1 with a one-line reason in why (e.g.
 * "cgroup v2 at /sys/fs/cgroup/unified has no controllers (hybrid mode);
 * only rlimits apply").  Only reads.
 */
int sandbox_cgroup_detect(const char *dir, char *why, size_t whysize);

/* Paths and values for the child; cg->is_on false when req has no
 * cgroup_dir.  0 or -1 (ENAMETOOLONG). */
int sandbox_cgroup_prepare(const struct spawn_req *req,
    struct sandbox_cgroup *cg);

/* Step 5a: creates the user's cgroup (if needed), writes its limits and
 * moves the caller into it.  Needs root. */
int sandbox_cgroup_join(const struct sandbox_cgroup *cg, const char **what_r);

/* Step 5b: RLIMIT_CORE 0 always; NOFILE, NPROC, FSIZE and AS (memory_max
 * + 1 GiB) when set in req; SCHED_BATCH when req says so. */
int sandbox_cgroup_rlimits(const struct spawn_req *req, const char **what_r);

/* sandbox_priv.c ----------------------------------------------------- */

/* Step 6, while root: empties the capability bounding set and sets and
 * locks the securebits. */
int sandbox_priv_lock(const char **what_r);

/* Step 7: setgroups(exactly groups) → setresgid → setresuid. */
int sandbox_priv_set_ids(uid_t uid, gid_t gid, const gid_t *groups,
    int ngroups, const char **what_r);

/* Step 8: the ids and groups are the intended ones and setuid(0),
 * setgid(0) and setgroups() fail.  -1 with errno 0 when a check failed
 * (what_r says which), with errno set when a call did. */
int sandbox_priv_verify(uid_t uid, gid_t gid, const gid_t *groups,
    int ngroups, const char **what_r);

/* Step 9: empty capability sets (empty, from cap_init() before the fork),
 * ambient set cleared, no_new_privs. */
int sandbox_priv_clear(cap_t empty, const char **what_r);

#endif
