/*
 * spawn.c: the birth of a sandboxed lodge-worker.  Runs in lodged as root.
 * spawn_worker() prepares everything the child needs (policy compiled to
 * BPF, or taken from the caller's cache while the file is unchanged; mount
 * options, the netlink request, cgroup paths, the environment), clones a
 * child into a new PID namespace, and waits until the child has exec'd or
 * reported the step that failed.  The child, sandbox_child(),
 * reads top to bottom in the order of SANDBOX.md §2; it makes system calls
 * only (no malloc, no stdio: lodged may have other threads) and must never
 * exec the worker with a partial sandbox: every step is fatal.
 *
 * Processes, and which pid lodged gets:
 *
 *   lodged ──clone(CLONE_NEWPID)──► init: host pid P (returned in *pid_r),
 *                                  pid 1 in the worker's PID namespace
 *                                    └─fork─► lodge-worker, pid 2
 *
 * The PID namespace is created by the clone itself rather than by
 * unshare(CLONE_NEWPID) in step 2: after unshare only the caller's
 * *children* enter the namespace, and a fresh /proc (step 3) must be
 * mounted from inside it; cloning straight into it makes lodged's own
 * child the namespace's init, so lodged keeps a direct child to wait for
 * and signal.  That child runs all eleven steps itself (so the init ends
 * up as confined as the worker: the user's ids, no capabilities,
 * no_new_privs, the seccomp filter) and forks the worker at the very end,
 * just before execve.  It then stays as pid 1: it reaps every process
 * orphaned in the namespace, forwards SIGTERM, SIGINT and SIGHUP to the
 * worker, and when the worker ends exits with the worker's exit code (or
 * 128+signal).  lodged signals P; SIGKILL to P ends the whole namespace.
 */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"
#include "seccomp.h"

#define SPAWN_MAX_FDS 64

/* What the child writes to the report pipe when a step fails. */
struct spawn_report {
	int32_t step;
	int32_t err;        /* errno, 0 when a check (not a call) failed */
	char name[56];
};

/* Everything the child needs, built by the parent before the clone. */
struct spawn_plan {
	const struct spawn_req *req;
	int report_fd;                       /* write end, close-on-exec */
	char tmpfs_opts[64];
	struct sandbox_net net;
	struct sandbox_cgroup cgroup;
	gid_t groups[SANDBOX_MAX_GROUPS + 1];
	int ngroups;
	cap_t empty_caps;
	const struct seccomp_prog *prog;     /* in req's cache or own_cache */
	struct seccomp_cache own_cache;
	char env_home[PATH_MAX + 8];
	char env_user[64];
	char *envp[5];
};

/* ---- the child ------------------------------------------------------ */

/* Reports the failed step to lodged and ends the child.  Only write(2). */
__attribute__((noreturn))
static void fail_step(const struct spawn_plan *pl, int step, const char *name,
    int err)
{
	struct spawn_report r = {.step = step, .err = err};
	size_t n = name ? strlen(name) : 0;
	ssize_t w;

	if (n >= sizeof(r.name))
		n = sizeof(r.name) - 1;
	if (n)
		memcpy(r.name, name, n);
	do
		w = write(pl->report_fd, &r, sizeof(r));
	while (w < 0 && errno == EINTR);
	_exit(127);
}

/* STEP(n, call): call sets `what` through &what and returns 0 or -1. */
#define STEP(n, call) do { \
		const char *what = NULL; \
		if ((call) < 0) \
			fail_step(pl, (n), what, errno); \
	} while (0)
#define STEP_NAMED(n, name, call) do { \
		if ((call) < 0) \
			fail_step(pl, (n), (name), errno); \
	} while (0)

/* Is lodged still there?  In the new PID namespace getppid() is 0 whoever
 * the parent is, so ask the report pipe: its read end is lodged's, and a
 * pipe whose readers are gone polls POLLERR. */
static int parent_alive(const struct spawn_plan *pl, const char **what_r)
{
	struct pollfd p = {.fd = pl->report_fd, .events = POLLOUT};

	*what_r = "lodged is gone";
	if (poll(&p, 1, 0) < 0)
		return -1;
	if (p.revents & (POLLERR | POLLHUP)) {
		errno = ESRCH;
		return -1;
	}
	return 0;
}

/* Step 1: die with lodged, own session, clean signal state. */
static int child_init(const struct spawn_plan *pl, const char **what_r)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigset_t none;

	/* A worker must not outlive its launcher.  The signal comes when
	 * the *thread* that cloned us ends: call spawn_worker from a thread
	 * that lives as long as lodged.  Then check lodged did not die
	 * before the prctl. */
	*what_r = "PR_SET_PDEATHSIG";
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return -1;
	if (parent_alive(pl, what_r) < 0)
		return -1;
	/* No controlling terminal: TIOCSTI on lodged's tty is impossible. */
	*what_r = "setsid";
	if (setsid() < 0)
		return -1;
	*what_r = "reset signals";
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &dfl, NULL); /* EINVAL for glibc's own */
	sigemptyset(&none);
	return sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Step 10: req->fds become 3, 4, 5, ...; the report pipe sits right above
 * them (still close-on-exec); stdin and stdout are /dev/null, and so is
 * stderr unless req->stderr_fd names the pipe lodged logs (the router);
 * everything else is closed.  Sources may overlap targets (fds[0] == 4, fds[1] == 3), so every
 * source is first copied above all of them. */
static int place_fds(struct spawn_plan *pl, const char **what_r)
{
	const struct spawn_req *req = pl->req;
	int tmp[SPAWN_MAX_FDS], hi = 3 + req->nfds + 1, report, devnull;
	int err_fd = -1;

	for (int i = 0; i < req->nfds; i++)
		if (req->fds[i] >= hi)
			hi = req->fds[i] + 1;
	if (pl->report_fd >= hi)
		hi = pl->report_fd + 1;
	if (req->stderr_fd > 2 && req->stderr_fd >= hi)
		hi = req->stderr_fd + 1;
	*what_r = "copy descriptors";
	if (req->stderr_fd > 2 &&
	    (err_fd = fcntl(req->stderr_fd, F_DUPFD_CLOEXEC, hi)) < 0)
		return -1;
	for (int i = 0; i < req->nfds; i++)
		if ((tmp[i] = fcntl(req->fds[i], F_DUPFD_CLOEXEC, hi)) < 0)
			return -1;
	if ((report = fcntl(pl->report_fd, F_DUPFD_CLOEXEC, hi)) < 0)
		return -1;
	pl->report_fd = report;
	*what_r = "dup2 descriptors";
	for (int i = 0; i < req->nfds; i++)
		if (dup2(tmp[i], 3 + i) < 0)  /* dup2 clears close-on-exec */
			return -1;
	if (dup3(report, 3 + req->nfds, O_CLOEXEC) < 0)
		return -1;
	pl->report_fd = 3 + req->nfds;
	/* stdout and stderr too: lodged's own log must never be writable
	 * by user code (a worker logs to a file of its own, as the user). */
	*what_r = "stdio /dev/null";
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 ||
	    dup2(err_fd >= 0 ? err_fd : devnull, 2) < 0)
		return -1;
	/* Leaked descriptors are how runc's CVE-2024-21626 escaped, and how
	 * a naive launcher let a worker read /etc/shadow (SANDBOX.md §2). */
	*what_r = "close_range";
	return close_range((unsigned)pl->report_fd + 1, ~0U, 0);
}

/* The namespace's init, once the worker is forked: see the top of file. */
__attribute__((noreturn))
static void ns_init(pid_t worker, const sigset_t *fwd)
{
	siginfo_t si;
	int status;
	pid_t p;

	/* Holds nothing: the worker's sockets must close when it dies, and
	 * lodged must see EOF on the report pipe when the worker execs. */
	close_range(0, ~0U, 0);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* The worker may replace itself by a fresh copy (its own child,
	 * which becomes ours when the old one exits): the namespace lives
	 * until its last process has exited, and signals go to every
	 * process in it (kill(-1) from pid 1 spares only the init). */
	(void)worker;
	for (;;) {
		int last = 0;

		if (sigwaitinfo(fwd, &si) < 0)
			continue;
		if (si.si_signo != SIGCHLD) {
			kill(-1, si.si_signo);
			continue;
		}
		while ((p = waitpid(-1, &status, WNOHANG)) > 0)
			last = status;
		if (p < 0 && errno == ECHILD)
			_exit(WIFEXITED(last) ? WEXITSTATUS(last)
			    : 128 + WTERMSIG(last));
	}
}

/* The worker's side of step 11, in a child that shares the init's memory
 * (see below) on a stack of its own: system calls only, then execve or
 * _exit.  Not instrumented under ASan: the stack is not a thread's. */
__attribute__((no_sanitize_address))
static int exec_worker(void *arg)
{
	struct spawn_plan *pl = arg;
	const struct spawn_req *req = pl->req;
	sigset_t stop;

	/* The stop signals stay blocked through the execve: the worker (and
	 * the router) take them with sigwait or a signalfd, and one that
	 * comes before they are ready (lodged stops right after a birth)
	 * waits for them instead of killing them with what they were
	 * handed.  SIGCHLD is the init's own. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	STEP_NAMED(11, "signal mask", sigprocmask(SIG_SETMASK, &stop, NULL));
	execve(req->worker_path, req->argv, pl->envp);
	fail_step(pl, 11, "execve", errno);
}

__attribute__((noreturn))
static void sandbox_child(struct spawn_plan *pl)
{
	const struct spawn_req *req = pl->req;
	int ns_flags = CLONE_NEWNS | CLONE_NEWIPC;
	/* exec_worker's stack: it makes three calls. */
	char stack[64 * 1024] __attribute__((aligned(16)));
	sigset_t fwd;
	pid_t worker;

	if (req->network == SPAWN_NET_LOOPBACK)
		ns_flags |= CLONE_NEWNET;

	/* 1. Die with lodged; new session; clean signal state. */
	STEP(1, child_init(pl, &what));

	/* 2. Mount, IPC (and network) namespaces; the PID namespace came
	 * with the clone (we are its pid 1). */
	STEP_NAMED(2, "unshare", unshare(ns_flags));

	/* 3. The file system: private mounts, private tmp dirs, other homes
	 * and /run/lodge hidden, fresh /proc. */
	STEP(3, sandbox_ns_setup(req, pl->tmpfs_opts, &what));

	/* 4. Loopback only: lo up in the new network namespace. */
	if (req->network == SPAWN_NET_LOOPBACK)
		STEP(4, sandbox_net_lo_up(&pl->net, &what));

	/* 5. The user's cgroup (when delegated) and rlimits. */
	STEP(5, sandbox_cgroup_join(&pl->cgroup, &what));
	STEP(5, sandbox_cgroup_rlimits(req, &what));

	/* 6. While root: empty bounding set, locked securebits. */
	STEP(6, sandbox_priv_lock(&what));

	/* 7. setgroups → setresgid → setresuid. */
	STEP(7, sandbox_priv_set_ids(req->uid, req->gid, pl->groups,
	    pl->ngroups, &what));

	/* 8. Trust nothing: the ids are right, root cannot come back. */
	STEP(8, sandbox_priv_verify(req->uid, req->gid, pl->groups,
	    pl->ngroups, &what));

	/* 9. No capabilities at all, no new privileges ever.  The uid change
	 * cleared the parent-death signal: arm it again, and check lodged
	 * did not die in between. */
	STEP(9, sandbox_priv_clear(pl->empty_caps, &what));
	STEP_NAMED(9, "PR_SET_PDEATHSIG again",
	    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0));
	STEP(9, parent_alive(pl, &what));

	/* 10. Only the worker's descriptors survive. */
	STEP(10, place_fds(pl, &what));

	/* 11. The seccomp filter, last; then the worker is forked and exec'd
	 * while this process stays as the namespace's init.  The signals the
	 * init forwards are blocked before the fork so none is lost. */
	STEP_NAMED(11, "seccomp", seccomp_apply(pl->prog));
	sigemptyset(&fwd);
	sigaddset(&fwd, SIGTERM);
	sigaddset(&fwd, SIGINT);
	sigaddset(&fwd, SIGHUP);
	sigaddset(&fwd, SIGCHLD);
	STEP_NAMED(11, "block signals", sigprocmask(SIG_SETMASK, &fwd, NULL));
	/*
	 * The worker is born the way posix_spawn does it: CLONE_VM |
	 * CLONE_VFORK, on a stack of its own, this process suspended until
	 * the execve.  A copy of the address space (a fork) would cost page
	 * tables now and their teardown in the execve, 2-3 ms of a cold
	 * start on a VM, for memory the worker never uses.  glibc's clone()
	 * takes no lock (glibc's fork() would run atfork handlers and take
	 * locks other lodged threads may have held when we were cloned), and
	 * plain clone flags pass every policy (vfork(2) is a syscall of its
	 * own, which router.policy does not allow).
	 */
	worker = clone(exec_worker, stack + sizeof(stack),
	    CLONE_VM | CLONE_VFORK | SIGCHLD, pl);
	if (worker < 0)
		fail_step(pl, 11, "fork worker", errno);
	ns_init(worker, &fwd);
}

/* ---- the parent ----------------------------------------------------- */

static void plan_free(struct spawn_plan *pl)
{
	if (!pl)
		return;
	sandbox_net_release(&pl->net);
	seccomp_cache_clear(&pl->own_cache);
	if (pl->empty_caps)
		cap_free(pl->empty_caps);
	free(pl);
}

/* Checks req and builds the plan.  -1 with err "step N (name): why". */
static int plan_build(const struct spawn_req *req, struct spawn_plan *pl,
    char *err, size_t errsize)
{
	char why[512];

	pl->req = req;
	pl->report_fd = -1;
	if (req->uid == 0 || req->gid == 0 || req->uid == (uid_t)-1 ||
	    req->gid == (gid_t)-1) {
		snprintf(err, errsize, "step 7 (ids): uid %d gid %d: never "
		    "root, never -1", (int)req->uid, (int)req->gid);
		return -1;
	}
	/* The supplementary list: the primary gid first (CVE-2022-36109),
	 * then the caller's, never 0. */
	if (req->ngroups < 0 || req->ngroups > SANDBOX_MAX_GROUPS) {
		snprintf(err, errsize, "step 7 (setgroups): %d groups (max %d)",
		    req->ngroups, SANDBOX_MAX_GROUPS);
		return -1;
	}
	pl->groups[pl->ngroups++] = req->gid;
	for (int i = 0; i < req->ngroups; i++) {
		bool dup = false;

		if (req->groups[i] == 0) {
			snprintf(err, errsize, "step 7 (setgroups): group 0 in "
			    "the list of user %s", req->user);
			return -1;
		}
		for (int j = 0; j < pl->ngroups; j++)
			dup = dup || pl->groups[j] == req->groups[i];
		if (!dup)
			pl->groups[pl->ngroups++] = req->groups[i];
	}
	if (req->nfds < 0 || req->nfds > SPAWN_MAX_FDS) {
		snprintf(err, errsize, "step 10 (descriptors): %d (max %d)",
		    req->nfds, SPAWN_MAX_FDS);
		return -1;
	}
	if (!req->home || req->home[0] != '/' || !req->worker_path ||
	    !req->argv || !req->argv[0] || !req->user) {
		snprintf(err, errsize, "step 3 (request): home, user, "
		    "worker_path and argv are required, home absolute");
		return -1;
	}
	for (int i = 0; i < req->nhide; i++)
		if (req->hide[i][0] != '/' || strcmp(req->hide[i], req->home) == 0) {
			snprintf(err, errsize, "step 3 (hide): '%s' is not "
			    "absolute or is the user's own home", req->hide[i]);
			return -1;
		}
	if (sandbox_ns_prepare(req, pl->tmpfs_opts, sizeof(pl->tmpfs_opts)) < 0 ||
	    sandbox_cgroup_prepare(req, &pl->cgroup) < 0) {
		snprintf(err, errsize, "step 5 (prepare): %s", strerror(errno));
		return -1;
	}
	if (req->network == SPAWN_NET_LOOPBACK &&
	    sandbox_net_prepare(&pl->net, why, sizeof(why)) < 0) {
		snprintf(err, errsize, "step 4 (network): %s", why);
		return -1;
	}
	if (!(pl->empty_caps = cap_init())) {
		snprintf(err, errsize, "step 9 (cap_init): %s", strerror(errno));
		return -1;
	}
	/* The filter is compiled here, in the parent: libseccomp allocates.
	 * The file is read at every birth; it is compiled again only when
	 * its bytes changed (seccomp_cache_get). */
	if (!req->policy_path ||
	    seccomp_cache_get(req->seccomp_cache ? req->seccomp_cache :
	    &pl->own_cache, req->policy_path, req->seccomp_mode, 0, &pl->prog,
	    why, sizeof(why)) < 0) {
		snprintf(err, errsize, "step 11 (seccomp policy): %s",
		    req->policy_path ? why : "no policy_path");
		return -1;
	}
	/* The worker's whole environment. */
	snprintf(pl->env_home, sizeof(pl->env_home), "HOME=%s", req->home);
	snprintf(pl->env_user, sizeof(pl->env_user), "USER=%s", req->user);
	pl->envp[0] = "PATH=/usr/bin:/bin";
	pl->envp[1] = pl->env_home;
	pl->envp[2] = pl->env_user;
	pl->envp[3] = "LANG=C.UTF-8";
	pl->envp[4] = NULL;
	return 0;
}

int spawn_worker(const struct spawn_req *req, pid_t *pid_r, char *err,
    size_t errsize)
{
	struct spawn_plan *pl = calloc(1, sizeof(*pl));
	struct spawn_report r;
	int pipefd[2], status;
	ssize_t n;
	size_t got = 0;
	pid_t pid;

	if (!pl) {
		snprintf(err, errsize, "spawn: out of memory");
		return -1;
	}
	if (plan_build(req, pl, err, errsize) < 0)
		goto fail;
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		snprintf(err, errsize, "spawn: pipe: %s", strerror(errno));
		goto fail;
	}
	pl->report_fd = pipefd[1];
	/*
	 * A raw clone into a new PID namespace, with fork semantics (no
	 * CLONE_VM, a copy of this stack).  glibc's fork() is not used: the
	 * namespace must come with the process (see the top of the file),
	 * and the child avoids everything that could need glibc's fork
	 * bookkeeping.
	 */
	pid = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0) {
		close(pipefd[0]);
		sandbox_child(pl);
	}
	close(pipefd[1]);
	if (pid < 0) {
		snprintf(err, errsize, "step 2 (clone CLONE_NEWPID): %s",
		    strerror(errno));
		close(pipefd[0]);
		goto fail;
	}
	while (got < sizeof(r)) {
		n = read(pipefd[0], (char *)&r + got, sizeof(r) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(pipefd[0]);
	plan_free(pl);
	if (got == 0) {
		*pid_r = pid;
		return 0;
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (got != sizeof(r)) {
		snprintf(err, errsize, "spawn: short report from the child "
		    "(%zu bytes)", got);
		return -1;
	}
	r.name[sizeof(r.name) - 1] = '\0';
	if (r.err)
		snprintf(err, errsize, "step %d (%s): %s", (int)r.step, r.name,
		    strerror(r.err));
	else
		snprintf(err, errsize, "step %d (%s): check failed, refusing to "
		    "start", (int)r.step, r.name);
	errno = r.err ? r.err : EPERM;
	return -1;
fail:
	plan_free(pl);
	return -1;
}
