/*
 * supervise.c: lodged's workers: their birth (through spawn_worker, which
 * applies the sandbox), their death, and the restarts after a crash with a
 * doubling backoff (1 s to 60 s).  A worker that exits 0 (idle, or drained
 * after SIGTERM) is not restarted: its user's socket is watched again and
 * the next connection starts it.  Runs in lodged as root; builds every
 * worker's command line and limits from the resolved config and never
 * opens a path inside a user's home (the worker creates its own dirs).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control.h"
#include "lodged.h"
#include "log.h"
#include "spawn.h"

static enum spawn_network supervise_network(enum conf_network n)
{
	switch (n) {
	case CONF_NET_HOST:
		return SPAWN_NET_HOST;
	case CONF_NET_LOOPBACK:
		return SPAWN_NET_LOOPBACK;
	}
	abort();
}

static enum spawn_seccomp_mode supervise_seccomp(enum conf_seccomp s)
{
	switch (s) {
	case CONF_SECCOMP_ENFORCE:
		return SPAWN_SECCOMP_ENFORCE;
	case CONF_SECCOMP_LOG:
		return SPAWN_SECCOMP_LOG;
	case CONF_SECCOMP_KILL:
		return SPAWN_SECCOMP_KILL;
	}
	abort();
}

/* Records a crash (or a failed birth) of slot i and schedules its
 * restart: 1 s, 2 s, 4 s ... 60 s after each crash in a row. */
static void supervise_crashed(struct lodged_ctx *ctx, struct lodged_user *u,
    struct lodged_slot *s, int64_t now)
{
	int64_t delay = LODGED_BACKOFF_MIN_MS;
	int64_t took;

	if (u->crashes == 0)
		u->first_crash_ms = now;
	u->crashes++;
	for (unsigned i = 1; i < u->crashes && delay < LODGED_BACKOFF_MAX_MS;
	     i++)
		delay *= 2;
	if (delay > LODGED_BACKOFF_MAX_MS)
		delay = LODGED_BACKOFF_MAX_MS;
	s->restart_at_ms = now + delay;

	if (u->crashes >= LODGED_CRASH_LOOP) {
		took = (now - u->first_crash_ms) / 1000;
		log_error("worker %s keeps crashing (%u times in %lld %s); "
		          "next try in %lld s; see ~%s/%s/*.log",
		    u->cu.name, u->crashes,
		    took < 120 ? (long long)took : (long long)(took / 60),
		    took < 120 ? "s" : "min", (long long)(delay / 1000),
		    u->cu.name, ctx->conf.log_dir);
	} else {
		log_warn("worker %s: restarting in %lld s", u->cu.name,
		    (long long)(delay / 1000));
	}
}

/*
 * What the sandbox hides: the folders holding hosted users' homes (usually
 * just /home), as a whole, so that no other home, hosted or not, is even
 * visible; the sandbox binds the user's own home back.  A home whose
 * folder is a system one (/, /var, /srv/...) is hidden by itself instead.
 */
const char **supervise_hide_list(
    struct lodged_ctx *ctx, const char *own_home, int *n_r)
{
	static const char *const system_dirs[] = {"/", "/var", "/usr", "/etc",
	    "/opt", "/srv", "/lib", "/run", "/tmp", NULL};
	const char **hide = calloc(2 * ctx->nusers + 2, sizeof(*hide));
	char **parents = calloc(ctx->nusers + 1, sizeof(*parents));
	int n = 0;

	if (hide == NULL || parents == NULL) {
		free(hide);
		free(parents);
		return NULL;
	}
	for (size_t i = 0; i < ctx->nusers; i++) {
		const char *home = ctx->users[i]->cu.home;
		const char *slash = strrchr(home, '/');
		bool is_system = false, is_dup = false;
		char parent[UTIL_MAX_PATH];

		if (slash == NULL || slash == home)
			snprintf(parent, sizeof(parent), "/");
		else
			snprintf(parent, sizeof(parent), "%.*s",
			    (int)(slash - home), home);
		for (int k = 0; system_dirs[k] != NULL; k++)
			if (strcmp(parent, system_dirs[k]) == 0)
				is_system = true;
		if (is_system) {
			if (own_home == NULL || strcmp(home, own_home) != 0)
				hide[n++] = home;
			continue;
		}
		for (int k = 0; k < n; k++)
			if (strcmp(hide[k], parent) == 0)
				is_dup = true;
		if (!is_dup) {
			parents[i] = strdup(parent);
			if (parents[i] != NULL)
				hide[n++] = parents[i];
		}
	}
	/* The strings live in the spawn request: freed with the list. */
	hide[2 * ctx->nusers + 1] = (const char *)parents;
	*n_r = n;
	return hide;
}

void supervise_hide_free(struct lodged_ctx *ctx, const char **hide)
{
	char **parents = (char **)hide[2 * ctx->nusers + 1];

	for (size_t i = 0; i < ctx->nusers; i++)
		free(parents[i]);
	free(parents);
	free(hide);
}

/* "1001,1002": the user's groups as the worker's --expect-groups. */
static int supervise_groups_arg(
    const struct conf_user *cu, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (int i = 0; i < cu->ngroups; i++) {
		int n = snprintf(buf + len, size - len, "%s%u", i ? "," : "",
		    (unsigned)cu->groups[i]);

		if (n < 0 || (size_t)n >= size - len)
			return -1;
		len += (size_t)n;
	}
	return 0;
}

#define SUPERVISE_TMP_SIZE (128ULL << 20) /* each private tmpfs */
#define SUPERVISE_FSIZE (1ULL << 30)      /* RLIMIT_FSIZE */

/* Starts slot s of u: 0, or -1 after logging why (a crash is recorded). */
static int supervise_spawn(struct lodged_ctx *ctx, struct lodged_user *u,
    struct lodged_slot *s, int64_t now)
{
	char threads[16], idle[16], err[512], groups[1024], maxmem[24];
	char timeout[16], lodged_fd[16];
	const char *argv[26];
	int argc = 0;
	int nhide = 0;
	const char **hide;
	int fds[3], nfds = 0, chan[2] = {-1, -1}, wchan[2] = {-1, -1};
	pid_t pid;
	int rc;

	if (u->listen_fd < 0)
		return -1;
	/* With a router, each worker gets a channel of its own: the worker
	 * reads front connections from it; the router gets the other end,
	 * and lodged keeps a copy of that end for a restarted router. */
	if (ctx->nfronts > 0 &&
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan) < 0) {
		log_error("worker %s: socketpair: %s", u->cu.name,
		    strerror(errno));
		supervise_crashed(ctx, u, s, now);
		return -1;
	}
	/* And a channel to lodged: the worker reports its requests and apps
	 * on it (workerchan.c) and takes lodgectl's app reloads. */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, wchan) < 0) {
		log_error("worker %s: socketpair: %s", u->cu.name,
		    strerror(errno));
		goto fail;
	}
	/* They become descriptors 3, 4 (and 5) in the worker. */
	fds[nfds++] = u->listen_fd;
	if (chan[1] >= 0)
		fds[nfds++] = chan[1];
	fds[nfds++] = wchan[1];
	snprintf(lodged_fd, sizeof(lodged_fd), "%d", 3 + nfds - 1);
	snprintf(timeout, sizeof(timeout), "%u", u->cu.limits.request_timeout);
	snprintf(threads, sizeof(threads), "%u", u->cu.limits.threads);
	snprintf(idle, sizeof(idle), "%u", u->cu.limits.idle_timeout);
	argv[argc++] = "lodge-worker";
	argv[argc++] = "--apps";
	argv[argc++] = u->cu.apps_dir;
	argv[argc++] = "--listen-fd";
	argv[argc++] = "3";
	argv[argc++] = "--log-dir";
	argv[argc++] = u->cu.log_dir;
	argv[argc++] = "--threads";
	argv[argc++] = threads;
	argv[argc++] = "--request-timeout";
	argv[argc++] = timeout;
	if (chan[1] >= 0) {
		argv[argc++] = "--router-fd";
		argv[argc++] = "4";
	}
	argv[argc++] = "--lodged-fd";
	argv[argc++] = lodged_fd;
	if (u->cu.limits.idle_timeout > 0) {
		argv[argc++] = "--idle-exit";
		argv[argc++] = idle;
	}
	/* The worker checks, before any user code, that it runs with
	 * exactly these groups (and no capability, no_new_privs, seccomp). */
	/* The worker replaces itself gracefully before the hard limit
	 * (memory.max / RLIMIT_AS) is reached: at 3/4 of memory_max. */
	if (u->cu.limits.memory_max >= (64ULL << 20)) {
		snprintf(maxmem, sizeof(maxmem), "%llu",
		    (unsigned long long)(u->cu.limits.memory_max / 4 * 3));
		argv[argc++] = "--max-memory";
		argv[argc++] = maxmem;
	}
	argv[argc++] = "--sandboxed";
	argv[argc++] = "--expect-groups";
	argv[argc++] = groups;
	argv[argc] = NULL;
	if (supervise_groups_arg(&u->cu, groups, sizeof(groups)) < 0) {
		log_error("worker %s: too many groups (%d) for the command "
		          "line",
		    u->cu.name, u->cu.ngroups);
		goto fail;
	}

	hide = supervise_hide_list(ctx, u->cu.home, &nhide);
	if (hide == NULL) {
		log_error("worker %s: out of memory", u->cu.name);
		goto fail;
	}
	struct spawn_req req = {
	    .user = u->cu.name,
	    .uid = u->cu.uid,
	    .gid = u->cu.gid,
	    .groups = u->cu.groups,
	    .ngroups = u->cu.ngroups,
	    .home = u->cu.home,
	    .hide = hide,
	    .nhide = nhide,
	    .network = supervise_network(u->cu.limits.network),
	    .memory_max = u->cu.limits.memory_max,
	    .pids_max = u->cu.limits.pids_max,
	    .cpu_weight = u->cu.limits.cpu_weight,
	    .nofile = u->cu.limits.nofile,
	    /* RAM-backed /tmp, /var/tmp, /dev/shm are bounded, and so is any
	     * one file (a full disk is everybody's problem). */
	    .tmp_size = SUPERVISE_TMP_SIZE,
	    .fsize = SUPERVISE_FSIZE,
	    .sched_batch = ctx->conf.scheduling == CONF_SCHED_BATCH,
	    .cgroup_dir = ctx->cgroup_dir,
	    .policy_path = ctx->conf.policy,
	    .seccomp_mode = supervise_seccomp(ctx->conf.seccomp),
	    .seccomp_cache = &ctx->worker_policy,
	    .worker_path = ctx->conf.worker,
	    .argv = (char *const *)argv,
	    .fds = fds,
	    .nfds = nfds,
	};
	err[0] = '\0';
	int64_t t0 = util_now_ms();
	rc = spawn_worker(&req, &pid, err, sizeof(err));
	control_spawn_done(ctx, s, util_now_ms() - t0, rc == 0);
	supervise_hide_free(ctx, hide);
	if (rc < 0) {
		log_error("worker %s: %s", u->cu.name,
		    err[0] != '\0' ? err : "could not be started");
		goto fail;
	}
	if (chan[1] >= 0)
		close(chan[1]);
	close(wchan[1]);
	s->router_end = chan[0];
	s->id = ++ctx->next_worker_id;
	if (s->id == 0)
		s->id = ++ctx->next_worker_id;
	s->pid = pid;
	s->is_stopping = false;
	s->started_ms = now;
	s->restart_at_ms = 0;
	u->nrunning++;
	workerchan_open(ctx, u, s, wchan[0]);
	log_info("worker %s: started (pid %d, slot %d)", u->cu.name, (int)pid,
	    (int)(s - u->slots));
	if (s->router_end >= 0)
		frontend_worker_up(ctx, u, s);
	return 0;

fail:
	if (chan[0] >= 0) {
		close(chan[0]);
		close(chan[1]);
	}
	if (wchan[0] >= 0) {
		close(wchan[0]);
		close(wchan[1]);
	}
	supervise_crashed(ctx, u, s, now);
	return -1;
}

/* Workers that run and are not draining: the ones that take work. */
static unsigned supervise_nactive(const struct lodged_user *u)
{
	unsigned n = 0;

	for (unsigned i = 0; i < CONF_MAX_PROCESSES; i++)
		n += u->slots[i].pid != 0 && !u->slots[i].is_stopping;
	return n;
}

static unsigned supervise_npending(const struct lodged_user *u)
{
	unsigned n = 0;

	for (unsigned i = 0; i < CONF_MAX_PROCESSES; i++)
		n += u->slots[i].pid == 0 && u->slots[i].restart_at_ms != 0;
	return n;
}

void supervise_start(struct lodged_ctx *ctx, struct lodged_user *u)
{
	int64_t now = util_now_ms();
	unsigned want;

	/* The workers accept from now on; lodged looks at the socket again
	 * when none of them takes work any more. */
	lodged_watch(ctx, u, false);
	if (u->is_held)
		return; /* lodgectl stop: none until lodgectl start */
	/*
	 * Up to `processes` workers that take work, in any free slot: the
	 * ones still draining after a settings change (their idle keep-alive
	 * connections may keep them for a while) hold slots of their own, so
	 * the new ones start beside them at once.
	 */
	want = u->cu.limits.processes;
	for (unsigned i = 0; i < CONF_MAX_PROCESSES; i++) {
		if (supervise_nactive(u) + supervise_npending(u) >= want)
			break;
		if (u->slots[i].pid == 0 && u->slots[i].restart_at_ms == 0)
			(void)supervise_spawn(ctx, u, &u->slots[i], now);
	}
}

unsigned supervise_start_for_router(
    struct lodged_ctx *ctx, struct lodged_user *u)
{
	for (unsigned i = 0; i < CONF_MAX_PROCESSES; i++)
		if (u->slots[i].pid != 0 && !u->slots[i].is_stopping &&
		    u->slots[i].router_end >= 0)
			frontend_worker_up(ctx, u, &u->slots[i]);
	/* A worker that crashed once (killed by the OOM killer, say) is
	 * started again at once when requests wait for it: the backoff is
	 * for crash loops. */
	if (u->crashes <= 1)
		for (unsigned i = 0; i < CONF_MAX_PROCESSES; i++)
			u->slots[i].restart_at_ms = 0;
	if (supervise_nactive(u) < u->cu.limits.processes)
		supervise_start(ctx, u);
	return supervise_nactive(u);
}

void supervise_bad_peer(struct lodged_ctx *ctx, uint32_t id)
{
	for (size_t i = 0; i < ctx->nusers; i++) {
		for (unsigned j = 0; j < CONF_MAX_PROCESSES; j++) {
			struct lodged_slot *s = &ctx->users[i]->slots[j];

			if (s->pid == 0 || s->id != id)
				continue;
			/* Its code sent the router garbage: it may be
			 * compromised.  Killed, it counts as a crash. */
			log_error("worker %s (pid %d): cut off by the router "
			          "(it sent a bad message); killing it",
			    ctx->users[i]->cu.name, (int)s->pid);
			kill(s->pid, SIGKILL);
			return;
		}
	}
}

/* Takes u out of ctx->users and frees it, once nothing of it runs. */
static void supervise_forget(struct lodged_ctx *ctx, struct lodged_user *u)
{
	for (size_t i = 0; i < ctx->nusers; i++) {
		if (ctx->users[i] == u) {
			memmove(&ctx->users[i], &ctx->users[i + 1],
			    (ctx->nusers - i - 1) * sizeof(*ctx->users));
			ctx->nusers--;
			break;
		}
	}
	supervise_free_user(u);
}

static bool supervise_has_pending(const struct lodged_user *u)
{
	for (unsigned i = 0; i < CONF_MAX_PROCESSES; i++)
		if (u->slots[i].restart_at_ms != 0)
			return true;
	return false;
}

void supervise_reaped(struct lodged_ctx *ctx, pid_t pid, int status)
{
	int64_t now = util_now_ms();
	struct lodged_user *u = NULL;
	struct lodged_slot *s = NULL;
	char how[64];

	for (size_t i = 0; i < ctx->nusers && s == NULL; i++) {
		for (unsigned j = 0; j < CONF_MAX_PROCESSES; j++) {
			if (ctx->users[i]->slots[j].pid == pid) {
				u = ctx->users[i];
				s = &u->slots[j];
				break;
			}
		}
	}
	if (s == NULL)
		return; /* not a worker */
	s->pid = 0;
	u->nrunning--;
	if (s->router_end >= 0) {
		close(s->router_end);
		s->router_end = -1;
	}
	workerchan_close(ctx, s);

	if (WIFEXITED(status))
		snprintf(how, sizeof(how), "exited with status %d",
		    WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(how, sizeof(how), "killed by signal %d (%s)",
		    WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(how, sizeof(how), "ended (status 0x%x)", status);

	if (s->is_stopping || ctx->is_stopping || u->is_removed) {
		log_info("worker %s (pid %d): stopped, %s", u->cu.name,
		    (int)pid, how);
		s->is_stopping = false;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		log_info("worker %s (pid %d): exited (idle or drained)",
		    u->cu.name, (int)pid);
		u->crashes = 0;
	} else {
		/* A worker that ran for a while before it crashed starts a
		 * new row: the backoff is for crash loops. */
		if (now - s->started_ms >= LODGED_HEALTHY_MS)
			u->crashes = 0;
		s->ncrashes++;
		log_error("worker %s (pid %d): %s", u->cu.name, (int)pid, how);
		supervise_crashed(ctx, u, s, now);
	}

	if (ctx->is_stopping)
		return;
	if (u->is_removed) {
		if (u->nrunning == 0)
			supervise_forget(ctx, u);
		return;
	}
	if (u->is_restarting && u->nrunning == 0) {
		/* lodgectl restart: the old workers have drained. */
		u->is_restarting = false;
		supervise_start(ctx, u);
		return;
	}
	if (supervise_nactive(u) == 0 && !supervise_has_pending(u))
		lodged_watch(ctx, u, true);
}

int supervise_timers(struct lodged_ctx *ctx, int64_t now)
{
	int64_t next = -1;

	if (ctx->is_stopping)
		return -1;
	for (size_t i = 0; i < ctx->nusers; i++) {
		struct lodged_user *u = ctx->users[i];

		for (unsigned j = 0; j < CONF_MAX_PROCESSES; j++) {
			struct lodged_slot *s = &u->slots[j];

			if (s->restart_at_ms == 0)
				continue;
			if (u->is_removed || supervise_nactive(u) >=
			    u->cu.limits.processes) {
				s->restart_at_ms = 0; /* no longer wanted */
				continue;
			}
			if (s->restart_at_ms <= now) {
				s->restart_at_ms = 0;
				(void)supervise_spawn(ctx, u, s, now);
			}
			if (s->restart_at_ms != 0 &&
			    (next < 0 || s->restart_at_ms - now < next))
				next = s->restart_at_ms - now;
		}
		/* Nothing takes work and nothing is due: wait for a
		 * connection. */
		if (supervise_nactive(u) == 0 && !u->is_removed &&
		    !supervise_has_pending(u) && !u->is_watched)
			lodged_watch(ctx, u, true);
	}
	if (next > 0x7fffffff)
		next = 0x7fffffff;
	return (int)next;
}

void supervise_signal_user(
    struct lodged_ctx *ctx, struct lodged_user *u, int sig)
{
	for (unsigned i = 0; i < CONF_MAX_PROCESSES; i++) {
		struct lodged_slot *s = &u->slots[i];

		s->restart_at_ms = 0;
		if (s->pid == 0)
			continue;
		s->is_stopping = true;
		if (kill(s->pid, sig) < 0 && errno != ESRCH)
			log_warn("worker %s (pid %d): kill: %s", u->cu.name,
			    (int)s->pid, strerror(errno));
	}
	u->crashes = 0;
	/* The next connection starts new workers beside the draining ones
	 * (not for a removed, held or stopping user: lodged_watch knows). */
	if (!ctx->is_stopping && !u->is_removed)
		lodged_watch(ctx, u, true);
}

void supervise_free_user(struct lodged_user *u)
{
	free(u->cu.name);
	free(u->cu.groups);
	free(u->cu.home);
	free(u->cu.apps_dir);
	free(u->cu.log_dir);
	free(u);
}
