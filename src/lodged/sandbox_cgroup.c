/*
 * sandbox_cgroup.c: a worker's resource limits (step 5 of SANDBOX.md §2):
 * the user's cgroup v2 when lodged has a delegated hierarchy with
 * controllers, and rlimits always.  sandbox_cgroup_detect and
 * sandbox_cgroup_prepare run in lodged (root) and only read; join and
 * rlimits run in the sandboxed child as root between fork and exec, with
 * system calls only.  It never chowns a cgroup to a hosted user and never
 * writes outside the delegated directory lodged was given.
 *
 * Layout: <cgroup_dir>/u-<user>, shared by all the workers of a user, so
 * the limits are per user (systemd's CGROUP_DELEGATION.md: no processes in
 * inner nodes; lodged itself must live in a sibling such as supervisor/).
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#define GIB (UINT64_C(1) << 30)

static int read_small(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/* Is word a whole word of the space-separated list? */
static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += n)
		if ((p == list || p[-1] == ' ') &&
		    (p[n] == ' ' || p[n] == '\n' || p[n] == '\0'))
			return true;
	return false;
}

/* Checks that dir/file lists every controller of need (NULL-ended);
 * -1 with why ("cgroup: controller X is not in PATH (fix); ..."). */
static int missing_controller(const char *dir, const char *file,
    const char *const *need, const char *fix, char *why, size_t whysize)
{
	char path[PATH_MAX], list[512];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (read_small(path, list, sizeof(list)) < 0) {
		snprintf(why, whysize, "cgroup: %s: %s; only rlimits apply", path,
		    strerror(errno));
		return -1;
	}
	for (; *need != NULL; need++) {
		if (!has_word(list, *need)) {
			snprintf(why, whysize, "cgroup: controller %s is not in "
			    "%s (%s); only rlimits apply", *need, path, fix);
			return -1;
		}
	}
	return 0;
}

int sandbox_cgroup_detect(const char *dir, char *why, size_t whysize)
{
	static const char *const need[] = {"cpu", "memory", "pids", NULL};
	char path[PATH_MAX];
	struct statfs sfs;

	if (!dir)
		dir = "/sys/fs/cgroup";
	if (statfs(dir, &sfs) < 0) {
		snprintf(why, whysize, "cgroup: %s: %s; only rlimits apply", dir,
		    strerror(errno));
		return -1;
	}
	if (sfs.f_type != CGROUP2_SUPER_MAGIC) {
		struct statfs u;

		snprintf(path, sizeof(path), "%s/unified", dir);
		if (statfs(path, &u) == 0 && u.f_type == CGROUP2_SUPER_MAGIC)
			snprintf(why, whysize, "cgroup v2 at %s has no controllers "
			    "(hybrid mode); only rlimits apply", path);
		else
			snprintf(why, whysize, "cgroup: %s is not a cgroup v2 "
			    "hierarchy; only rlimits apply", dir);
		return -1;
	}
	if (missing_controller(dir, "cgroup.controllers", need,
	    "delegate it: Delegate=yes", why, whysize) < 0 ||
	    missing_controller(dir, "cgroup.subtree_control", need,
	    "write \"+cpu +memory +pids\" to it after moving lodged to a "
	    "child cgroup", why, whysize) < 0)
		return -1;
	if (access(dir, W_OK) < 0) {
		snprintf(why, whysize, "cgroup: %s is not writable: %s", dir,
		    strerror(errno));
		return -1;
	}
	return 0;
}

int sandbox_cgroup_prepare(const struct spawn_req *req,
    struct sandbox_cgroup *cg)
{
	int n;

	memset(cg, 0, sizeof(*cg));
	if (!req->cgroup_dir)
		return 0;
	cg->is_on = true;
	n = snprintf(cg->dir, sizeof(cg->dir), "%s/u-%s", req->cgroup_dir,
	    req->user);
	if (n < 0 || (size_t)n >= sizeof(cg->dir) - 32) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (req->memory_max)
		snprintf(cg->memory_max, sizeof(cg->memory_max), "%" PRIu64,
		    req->memory_max);
	if (req->pids_max)
		snprintf(cg->pids_max, sizeof(cg->pids_max), "%" PRIu64,
		    req->pids_max);
	if (req->cpu_weight)
		snprintf(cg->cpu_weight, sizeof(cg->cpu_weight), "%" PRIu64,
		    req->cpu_weight);
	return 0;
}

/* Writes value to dir/file; no allocation. */
static int write_file(const char *dir, const char *file, const char *value)
{
	char path[PATH_MAX];
	size_t d = strlen(dir), f = strlen(file), v = strlen(value);
	ssize_t n;
	int fd;

	if (d + 1 + f >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(path, dir, d);
	path[d] = '/';
	memcpy(path + d + 1, file, f + 1);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = write(fd, value, v);
	if (n != (ssize_t)v) {
		int saved = n < 0 ? errno : EIO;

		close(fd);
		errno = saved;
		return -1;
	}
	return close(fd);
}

int sandbox_cgroup_join(const struct sandbox_cgroup *cg, const char **what_r)
{
	if (!cg->is_on)
		return 0;
	*what_r = "cgroup mkdir";
	if (mkdir(cg->dir, 0755) < 0 && errno != EEXIST)
		return -1;
	*what_r = "cgroup memory.max";
	if (cg->memory_max[0] && write_file(cg->dir, "memory.max", cg->memory_max) < 0)
		return -1;
	/* An OOM kill takes the whole worker, never half of it. */
	*what_r = "cgroup memory.oom.group";
	if (write_file(cg->dir, "memory.oom.group", "1") < 0)
		return -1;
	*what_r = "cgroup pids.max";
	if (cg->pids_max[0] && write_file(cg->dir, "pids.max", cg->pids_max) < 0)
		return -1;
	*what_r = "cgroup cpu.weight";
	if (cg->cpu_weight[0] && write_file(cg->dir, "cpu.weight", cg->cpu_weight) < 0)
		return -1;
	/* "0" means the writing process; everything it starts follows. */
	*what_r = "cgroup.procs";
	return write_file(cg->dir, "cgroup.procs", "0");
}

static int set_limit(int resource, uint64_t value)
{
	struct rlimit rl = {.rlim_cur = value, .rlim_max = value};

	return setrlimit(resource, &rl);
}

int sandbox_cgroup_rlimits(const struct spawn_req *req, const char **what_r)
{
	*what_r = "RLIMIT_CORE";
	if (set_limit(RLIMIT_CORE, 0) < 0)
		return -1;
	*what_r = "RLIMIT_NOFILE";
	if (req->nofile && set_limit(RLIMIT_NOFILE, req->nofile) < 0)
		return -1;
	/* Counted per real uid over the whole host, and checked again by
	 * execve after the uid change (EAGAIN when over): SANDBOX.md §4. */
	*what_r = "RLIMIT_NPROC";
	if (req->pids_max && set_limit(RLIMIT_NPROC, req->pids_max) < 0)
		return -1;
	*what_r = "RLIMIT_FSIZE";
	if (req->fsize && set_limit(RLIMIT_FSIZE, req->fsize) < 0)
		return -1;
	/* Address space, not memory: glibc reserves ~64 MiB per malloc
	 * arena plus thread stacks, so leave a generous margin. */
	*what_r = "RLIMIT_AS";
	if (req->memory_max && set_limit(RLIMIT_AS, req->memory_max + GIB) < 0)
		return -1;
	/* A server's processes are woken for every request: SCHED_BATCH
	 * keeps a woken one from preempting the process that woke it (the
	 * web server, the router), which then finishes its work first.  The
	 * share of CPU is the same; every thread and child inherits it, and
	 * user code cannot change it (the policy refuses
	 * sched_setscheduler). */
	*what_r = "sched_setscheduler SCHED_BATCH";
	if (req->sched_batch &&
	    sched_setscheduler(0, SCHED_BATCH, &(struct sched_param){0}) < 0)
		return -1;
	return 0;
}
