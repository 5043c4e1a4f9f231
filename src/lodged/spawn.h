/*
 * spawn.h: the birth of a sandboxed lodge-worker (runs as root, in lodged).
 * One function, spawn_worker(), forks a child that applies every sandbox
 * step of SANDBOX.md §2 in order, then execs lodge-worker.  A failed step
 * stops the birth: the child reports the step and errno through a
 * close-on-exec pipe and lodged logs "worker alice: step 4 (setresuid):
 * Operation not permitted".  No worker ever runs with a partial sandbox.
 */
#ifndef LODGE_SPAWN_H
#define LODGE_SPAWN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct seccomp_cache; /* seccomp.h */

enum spawn_network { SPAWN_NET_HOST = 0, SPAWN_NET_LOOPBACK };
enum spawn_seccomp_mode { SPAWN_SECCOMP_ENFORCE = 0, SPAWN_SECCOMP_LOG,
	SPAWN_SECCOMP_KILL };

/* Everything the child needs, resolved by lodged beforehand (the child
 * only makes system calls: no NSS lookups, no allocation after fork). */
struct spawn_req {
	const char *user;          /* for messages */
	uid_t uid;
	gid_t gid;
	const gid_t *groups;       /* supplementary groups, already filtered:
	                              never 0, the web server's or lodge's */
	int ngroups;
	const char *home;          /* the user's home (bound back, visible) */
	const char *const *hide;   /* other hosted users' homes to hide */
	int nhide;
	enum spawn_network network;
	/* Limits: 0 means "not set". */
	uint64_t memory_max;       /* bytes: cgroup memory.max (and RLIMIT_AS
	                              with a generous margin) */
	uint64_t pids_max;         /* cgroup pids.max and RLIMIT_NPROC */
	uint64_t cpu_weight;       /* cgroup cpu.weight */
	uint64_t nofile;           /* RLIMIT_NOFILE */
	uint64_t fsize;            /* RLIMIT_FSIZE */
	uint64_t tmp_size;         /* size= of the private /tmp, /var/tmp, /dev/shm */
	bool sched_batch;          /* SCHED_BATCH (lodge.conf scheduling) */
	const char *cgroup_dir;    /* delegated parent, NULL: no cgroup limits */
	const char *policy_path;   /* seccomp policy file */
	enum spawn_seccomp_mode seccomp_mode;
	/* The caller's cache of the compiled policy (seccomp.h), reused
	 * while the file keeps its bytes; NULL: compiled for this birth
	 * only. */
	struct seccomp_cache *seccomp_cache;
	/* The worker: path and argv (argv[0] included, NULL-terminated). */
	const char *worker_path;
	char *const *argv;
	/* Descriptors the worker gets, in order, as 3, 4, 5, ...: the
	 * listening socket, channels.  All others are closed. */
	const int *fds;
	int nfds;
	/* > 2: becomes the child's stderr (the write end of a pipe whose
	 * lines lodged logs: the router's messages); otherwise /dev/null.
	 * Never given to a worker: lodged's log must not be writable by user
	 * code. */
	int stderr_fd;
};

/*
 * Forks and sandboxes a worker.  Returns 0 with *pid_r set once the child
 * has exec'd (the report pipe closed on exec with nothing written), or -1
 * with err[0..errsize) saying "step N (name): reason" (the child already
 * reaped).  Runs in lodged as root; blocks only until the exec.
 */
int spawn_worker(const struct spawn_req *req, pid_t *pid_r, char *err,
    size_t errsize);

#endif
