/*
 * frontend.c: lodged's side of the front end.  Runs in lodged as root.
 * It opens the front listeners named by `front =` (Unix sockets
 * root:front_group 0660, or TCP) and keeps them open for lodged's whole
 * life; it starts lodge-router as router_user through the same sandbox as
 * the workers (its own policy, no home, a loopback-only network), handing
 * it the listeners, a channel to lodged and a pipe for its log lines; it
 * restarts the router with a short doubling backoff when it dies, on the
 * very same listeners, so a connection waiting in a backlog is never
 * refused.  On the channel it serves the router's requests: START (a
 * request waits for a user with no worker: start them), BADPEER (kill a
 * worker that sent garbage); it answers WORKER (a worker's channel),
 * NOUSER or FAILED.  It never reads a byte of a request: the router
 * parses, lodged only starts processes for names it checks against the
 * hosted users.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netdb.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "lodged.h"
#include "log.h"
#include "msg.h"
#include "spawn.h"

#define FRONTEND_ROUTER_NOFILE 65536
#define FRONTEND_ROUTER_PIDS 16
#define FRONTEND_TMP_SIZE (1ULL << 20)

/*
 * Socket activation (lodge.socket): a front that systemd already listens
 * on is taken from it, matched by address (systemd gives every socket of
 * a unit the same name, and names cannot hold the ':' of our specs).
 * systemd owns such a socket file: lodged never replaces nor removes it,
 * and connections keep queueing in it while lodged restarts.
 */
static int frontend_activated(
    const struct conf_front *f, const struct lodged_ctx *ctx)
{
	for (size_t i = 0; i < ctx->npassed; i++) {
		int fd = ctx->passed[i].fd;

		/* Users' sockets from the fd store are lodged.c's. */
		if (ctx->passed[i].is_used ||
		    strncmp(ctx->passed[i].name, LODGED_FDSTORE_PREFIX,
		        strlen(LODGED_FDSTORE_PREFIX)) == 0)
			continue;
		if (f->ls.kind == UTIL_LISTEN_UNIX) {
			if (sd_is_socket_unix(fd, SOCK_STREAM, 1, f->ls.path,
			        0) > 0)
				return (int)i;
			continue;
		}
		struct addrinfo hints = {.ai_flags = AI_NUMERICHOST |
		    AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
		struct addrinfo *ai = NULL;
		char port[8];

		snprintf(port, sizeof(port), "%d", f->ls.port);
		if (getaddrinfo(f->ls.host, port, &hints, &ai) != 0)
			continue;
		bool is_match = sd_is_socket_sockaddr(fd, SOCK_STREAM,
		    ai->ai_addr, ai->ai_addrlen, 1) > 0;

		freeaddrinfo(ai);
		if (is_match)
			return (int)i;
	}
	return -1;
}

void frontend_open(struct lodged_ctx *ctx)
{
	for (size_t i = 0; i < ctx->conf.nfronts; i++) {
		const struct conf_front *f = &ctx->conf.fronts[i];
		struct lodged_front *lf = &ctx->fronts[i];
		int k = frontend_activated(f, ctx);

		lf->path[0] = '\0';
		if (k >= 0) {
			ctx->passed[k].is_used = true;
			lf->fd = ctx->passed[k].fd;
			util_set_nonblock(lf->fd, true);
			(void)fcntl(lf->fd, F_SETFD, FD_CLOEXEC);
		} else if (f->ls.kind == UTIL_LISTEN_UNIX) {
			lf->fd = lodged_unix_listen(f->ls.path,
			    ctx->front_gid, "the router", &lf->file);
			snprintf(lf->path, sizeof(lf->path), "%s", f->ls.path);
		} else {
			lf->fd = util_listen(&f->ls);
			if (lf->fd < 0)
				log_error("front %s: %s", f->spec,
				    strerror(errno));
		}
		if (lf->fd < 0)
			fatal("front %s: cannot listen; fix 'front =' in %s "
			      "or free the address",
			    f->spec, ctx->config_path);
		ctx->nfronts++;
		log_info("front %s: listening%s%s", f->spec,
		    k >= 0 ? " (from systemd)" : "",
		    f->is_trusted ? " (X-Forwarded-* trusted)" : "");
	}
	for (size_t i = 0; i < ctx->npassed; i++) {
		if (ctx->passed[i].is_used ||
		    strncmp(ctx->passed[i].name, LODGED_FDSTORE_PREFIX,
		        strlen(LODGED_FDSTORE_PREFIX)) == 0)
			continue;
		log_warn("socket activation: descriptor %d matches no 'front =' "
		         "listener of %s; closing it",
		    ctx->passed[i].fd, ctx->config_path);
		close(ctx->passed[i].fd);
		ctx->passed[i].is_used = true;
	}
}

void frontend_close(struct lodged_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nfronts; i++) {
		close(ctx->fronts[i].fd);
		if (ctx->fronts[i].path[0] != '\0')
			lodged_sockfile_unlink(&ctx->fronts[i].file,
			    ctx->fronts[i].path, "front");
	}
	ctx->nfronts = 0;
}

static void frontend_watch(struct lodged_ctx *ctx, int fd, enum lodged_ev *ev)
{
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = ev};

	if (epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, fd, &e) < 0)
		log_error("router: epoll: %s", strerror(errno));
}

/* No router, no queue: the depths it reported are gone with it. */
static void frontend_queues_clear(struct lodged_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nusers; i++)
		ctx->users[i]->queued = 0;
}

/* A MSG_QUEUES: adds the router's answers up, sets the queue depths.
 * -1 if it is garbage (errstr_r says why). */
static int frontend_queues(
    struct lodged_ctx *ctx, const struct msg *m, const char **errstr_r)
{
	static struct msg_queue_user users[MSG_QUEUES_MAX_USERS];
	struct msg_queues q;

	if (msg_queues_decode(m, &q, users, errstr_r) < 0)
		return -1;
	if (q.flags & MSG_QUEUES_FIRST)
		frontend_queues_clear(ctx);
	for (int k = 0; k < MSG_QUEUES_NSTATUS; k++)
		ctx->router.answers[k] += q.answers[k];
	for (uint32_t i = 0; i < q.nusers; i++) {
		struct lodged_user *u = lodged_find(ctx, users[i].name);
		/* A name not hosted (the router's 404s) counts as no user's. */
		uint64_t *to = u != NULL ? u->router_answers
		                         : ctx->router.answers;

		for (int k = 0; k < MSG_QUEUES_NSTATUS; k++)
			to[k] += users[i].answers[k];
		if (u != NULL)
			u->queued = users[i].queued;
	}
	return 0;
}

static void frontend_close_chan(struct lodged_ctx *ctx)
{
	struct lodged_router *r = &ctx->router;

	frontend_queues_clear(ctx);
	if (r->chan_fd >= 0) {
		epoll_ctl(ctx->epfd, EPOLL_CTL_DEL, r->chan_fd, NULL);
		close(r->chan_fd);
		r->chan_fd = -1;
	}
}

/* Logs the complete lines of the router's stderr; at EOF, the rest. */
static void frontend_log_lines(struct lodged_ctx *ctx, bool is_eof)
{
	struct lodged_router *r = &ctx->router;
	char *nl;

	while ((nl = memchr(r->logbuf, '\n', r->loglen)) != NULL) {
		*nl = '\0';
		/* The router prefixes its own level and name. */
		log_info("%s", r->logbuf);
		r->loglen -= (size_t)(nl + 1 - r->logbuf);
		memmove(r->logbuf, nl + 1, r->loglen);
	}
	if ((is_eof && r->loglen > 0) || r->loglen == sizeof(r->logbuf)) {
		log_info("%.*s", (int)r->loglen, r->logbuf);
		r->loglen = 0;
	}
}

static void frontend_read_log(struct lodged_ctx *ctx)
{
	struct lodged_router *r = &ctx->router;

	for (;;) {
		ssize_t n = read(r->log_fd, r->logbuf + r->loglen,
		    sizeof(r->logbuf) - r->loglen);

		if (n > 0) {
			r->loglen += (size_t)n;
			frontend_log_lines(ctx, false);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		/* EOF: the router (and its namespace's init) are gone. */
		frontend_log_lines(ctx, true);
		epoll_ctl(ctx->epfd, EPOLL_CTL_DEL, r->log_fd, NULL);
		close(r->log_fd);
		r->log_fd = -1;
		return;
	}
}

/* "--listen 4:http:trusted" for each front, in the order of the fds. */
static int frontend_argv(struct lodged_ctx *ctx, const char **argv,
    char (*bufs)[64], char *nums, size_t numsize)
{
	const struct conf *c = &ctx->conf;
	static const char *const routes[] = {"header", "host", "var"};
	int argc = 0;

	argv[argc++] = "lodge-router";
	argv[argc++] = "--lodged-fd";
	argv[argc++] = "3";
	for (size_t i = 0; i < ctx->nfronts; i++) {
		snprintf(bufs[i], 64, "%zu:%s%s", 4 + i,
		    c->fronts[i].kind == CONF_FRONT_HTTP ? "http" : "uwsgi",
		    c->fronts[i].is_trusted ? ":trusted" : "");
		argv[argc++] = "--listen";
		argv[argc++] = bufs[i];
	}
	argv[argc++] = "--route";
	argv[argc++] = routes[c->route];
	if (c->route == CONF_ROUTE_HOST) {
		argv[argc++] = "--host-map";
		argv[argc++] = c->host_map;
	}
	/* Three numbers in one buffer: "64\0" "30\0" "64\0". */
	size_t off = 0;
	const unsigned vals[3] = {c->queue_max, c->queue_timeout,
	    c->inflight_max};
	static const char *const names[3] = {"--queue-max",
	    "--queue-timeout", "--inflight-max"};

	for (int i = 0; i < 3; i++) {
		int n = snprintf(nums + off, numsize - off, "%u", vals[i]);

		argv[argc++] = names[i];
		argv[argc++] = nums + off;
		off += (size_t)n + 1;
	}
	argv[argc] = NULL;
	return argc;
}

void frontend_start(struct lodged_ctx *ctx)
{
	struct lodged_router *r = &ctx->router;
	char bufs[CONF_MAX_FRONTS][64], nums[64], err[512];
	const char *argv[2 * CONF_MAX_FRONTS + 20];
	int fds[1 + CONF_MAX_FRONTS];
	int chan[2], logp[2];
	const char **hide;
	int nhide = 0, rc;
	pid_t pid;

	if (ctx->nfronts == 0 || r->pid != 0 || ctx->is_stopping)
		return;
	r->restart_at_ms = 0;
	/* As many descriptors as lodged may have, up to 65536: raising the
	 * hard limit needs CAP_SYS_RESOURCE, which a container may lack. */
	struct rlimit rl;
	uint64_t nofile = FRONTEND_ROUTER_NOFILE;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
	    rl.rlim_max < nofile)
		nofile = rl.rlim_max;
	frontend_argv(ctx, argv, bufs, nums, sizeof(nums));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan) < 0)
		goto fail_early;
	if (pipe2(logp, O_CLOEXEC) < 0) {
		close(chan[0]);
		close(chan[1]);
		goto fail_early;
	}
	fds[0] = chan[1];
	for (size_t i = 0; i < ctx->nfronts; i++)
		fds[1 + i] = ctx->fronts[i].fd;
	/* The router sees no home at all: every folder holding hosted
	 * homes is hidden, and its own HOME is a path that does not exist. */
	hide = supervise_hide_list(ctx, NULL, &nhide);
	if (hide == NULL) {
		close(chan[0]);
		close(chan[1]);
		close(logp[0]);
		close(logp[1]);
		errno = ENOMEM;
		goto fail_early;
	}
	struct spawn_req req = {
	    .user = ctx->conf.router_user,
	    .uid = r->uid,
	    .gid = r->gid,
	    .groups = NULL,
	    .ngroups = 0,
	    .home = "/nonexistent",
	    .hide = hide,
	    .nhide = nhide,
	    /* The router only accepts on the sockets it is given: it needs
	     * no network of its own. */
	    .network = SPAWN_NET_LOOPBACK,
	    /* No address-space limit: the router's memory is bounded by
	     * design (connections x head buffer), and an AddressSanitizer
	     * build reserves terabytes of address space. */
	    .memory_max = 0,
	    .pids_max = FRONTEND_ROUTER_PIDS,
	    .nofile = nofile,
	    .fsize = 0,
	    .tmp_size = FRONTEND_TMP_SIZE,
	    .sched_batch = ctx->conf.scheduling == CONF_SCHED_BATCH,
	    .cgroup_dir = NULL,
	    .policy_path = ctx->conf.router_policy,
	    .seccomp_mode = ctx->conf.seccomp == CONF_SECCOMP_LOG
	                        ? SPAWN_SECCOMP_LOG
	                    : ctx->conf.seccomp == CONF_SECCOMP_KILL
	                        ? SPAWN_SECCOMP_KILL
	                        : SPAWN_SECCOMP_ENFORCE,
	    .worker_path = ctx->conf.router,
	    .argv = (char *const *)argv,
	    .fds = fds,
	    .nfds = 1 + (int)ctx->nfronts,
	    .stderr_fd = logp[1],
	};
	err[0] = '\0';
	rc = spawn_worker(&req, &pid, err, sizeof(err));
	supervise_hide_free(ctx, hide);
	close(chan[1]);
	close(logp[1]);
	if (rc < 0) {
		close(chan[0]);
		close(logp[0]);
		log_error("router: %s", err[0] ? err : "could not be started");
		goto fail;
	}
	r->pid = pid;
	r->nstarts++;
	r->chan_fd = chan[0];
	r->log_fd = logp[0];
	r->loglen = 0;
	r->is_stopping = false;
	r->started_ms = util_now_ms();
	util_set_nonblock(r->chan_fd, true);
	util_set_nonblock(r->log_fd, true);
	frontend_watch(ctx, r->chan_fd, &r->ev_chan);
	frontend_watch(ctx, r->log_fd, &r->ev_log);
	log_info("router: started (pid %d) as %s on %zu front listener(s)",
	    (int)pid, ctx->conf.router_user, ctx->nfronts);
	/* Workers that already run (started through their own sockets, or
	 * before a router restart) are the router's to use too. */
	for (size_t i = 0; i < ctx->nusers; i++)
		for (unsigned j = 0; j < CONF_MAX_PROCESSES; j++)
			if (ctx->users[i]->slots[j].pid != 0 &&
			    ctx->users[i]->slots[j].router_end >= 0)
				frontend_worker_up(ctx, ctx->users[i],
				    &ctx->users[i]->slots[j]);
	return;

fail_early:
	log_error("router: cannot start: %s", strerror(errno));
fail:
	r->crashes++;
	{
		int64_t delay = LODGED_ROUTER_BACKOFF_MIN_MS;

		for (unsigned i = 1; i < r->crashes &&
		     delay < LODGED_ROUTER_BACKOFF_MAX_MS; i++)
			delay *= 2;
		if (delay > LODGED_ROUTER_BACKOFF_MAX_MS)
			delay = LODGED_ROUTER_BACKOFF_MAX_MS;
		r->restart_at_ms = util_now_ms() + delay;
	}
}

/* Sends one message to the router; a full or broken channel is logged
 * (the router restarts and asks again). */
static void frontend_send(struct lodged_ctx *ctx, enum msg_type type,
    const void *payload, size_t len, int fd)
{
	if (ctx->router.chan_fd < 0)
		return;
	if (msg_send(ctx->router.chan_fd, type, payload, len, fd) < 0)
		log_warn("router: cannot send it a message: %s",
		    strerror(errno));
}

void frontend_worker_up(
    struct lodged_ctx *ctx, struct lodged_user *u, struct lodged_slot *s)
{
	uint8_t buf[sizeof(struct msg_worker) + MSG_MAX_USER];
	struct msg_worker w = {.id = s->id};
	size_t len = strlen(u->cu.name);

	/* Hosted names are account names; the protocol is stricter (no
	 * capitals, no '$'): such a user is reachable through its own
	 * socket only. */
	if (msg_user_check((const uint8_t *)u->cu.name, len) < 0) {
		log_warn("user %s: the name cannot be routed by the router "
		         "(use lower-case letters, digits, '.', '_', '-')",
		    u->cu.name);
		return;
	}
	memcpy(buf, &w, sizeof(w));
	memcpy(buf + sizeof(w), u->cu.name, len);
	frontend_send(ctx, MSG_WORKER, buf, sizeof(w) + len, s->router_end);
}

/* START from the router: requests wait for user name. */
static void frontend_start_user(
    struct lodged_ctx *ctx, const uint8_t *name, size_t len)
{
	char user[MSG_MAX_USER + 1];
	struct lodged_user *u;

	memcpy(user, name, len);
	user[len] = '\0';
	u = lodged_find(ctx, user);
	/* Stopping, lodged still starts workers while the router runs: it
	 * drains what it accepted (SIGTERM reaches the workers after it). */
	if (u == NULL || u->listen_fd < 0) {
		if (u == NULL)
			log_info("router: asked for user %s, who is not "
			         "hosted",
			    user);
		frontend_send(ctx, u == NULL ? MSG_NOUSER : MSG_FAILED, name,
		    len, -1);
		return;
	}
	/* Stopped with lodgectl stop: 502 until lodgectl start. */
	if (u->is_held || supervise_start_for_router(ctx, u) == 0)
		frontend_send(ctx, MSG_FAILED, name, len, -1);
}

/* The router sent garbage: it is broken or taken over (it is unprivileged
 * and parses the internet's bytes).  Cut off and replace it. */
static void frontend_router_bad(struct lodged_ctx *ctx, const char *why)
{
	log_error("router: bad message (%s); restarting it", why);
	if (ctx->router.pid != 0)
		kill(ctx->router.pid, SIGKILL);
	frontend_close_chan(ctx);
}

static void frontend_read_chan(struct lodged_ctx *ctx)
{
	static uint8_t buf[sizeof(struct msg_hdr) + MSG_MAX_PAYLOAD];
	struct lodged_router *r = &ctx->router;

	for (int i = 0; i < 256 && r->chan_fd >= 0; i++) {
		const char *err = NULL;
		struct msg m;
		int rc = msg_recv(r->chan_fd, buf, sizeof(buf), &m, &err);

		if (rc == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (rc == -2) {
			frontend_router_bad(ctx, err);
			return;
		}
		if (rc <= 0) {
			frontend_close_chan(ctx);
			return;
		}
		if (m.fd >= 0) {
			close(m.fd); /* the router never sends descriptors */
			m.fd = -1;
		}
		switch (m.type) {
		case MSG_HELLO: {
			struct msg_hello h;

			memcpy(&h, m.payload, sizeof(h));
			if (h.version != LODGE_PROTO_VERSION) {
				log_error("router: protocol version %u, lodged "
				          "speaks %u; install matching "
				          "binaries",
				    h.version, LODGE_PROTO_VERSION);
				kill(r->pid, SIGKILL);
				frontend_close_chan(ctx);
				return;
			}
			break;
		}
		case MSG_START:
			frontend_start_user(ctx, m.payload, m.len);
			break;
		case MSG_BADPEER: {
			struct msg_badpeer b;

			memcpy(&b, m.payload, sizeof(b));
			supervise_bad_peer(ctx, b.id);
			break;
		}
		case MSG_QUEUES:
			if (frontend_queues(ctx, &m, &err) < 0) {
				frontend_router_bad(ctx, err);
				return;
			}
			break;
		case MSG_READY:
		case MSG_CONN:
		case MSG_DRAIN:
		case MSG_RELOAD:
		case MSG_FRONT:
		case MSG_DONE:
		case MSG_WORKER:
		case MSG_NOUSER:
		case MSG_FAILED:
		case MSG_STATS:
		case MSG_RELOAD_APP:
		case MSG_TYPE_MAX:
			log_error("router: unexpected message %u; restarting "
			          "it",
			    (unsigned)m.type);
			if (r->pid != 0)
				kill(r->pid, SIGKILL);
			frontend_close_chan(ctx);
			return;
		}
	}
}

void frontend_event(struct lodged_ctx *ctx, enum lodged_ev *ev)
{
	if (*ev == LODGED_EV_ROUTER_LOG && ctx->router.log_fd >= 0)
		frontend_read_log(ctx);
	else if (*ev == LODGED_EV_ROUTER_CHAN && ctx->router.chan_fd >= 0)
		frontend_read_chan(ctx);
}

bool frontend_reaped(struct lodged_ctx *ctx, pid_t pid, int status)
{
	struct lodged_router *r = &ctx->router;
	int64_t now = util_now_ms();

	if (r->pid == 0 || pid != r->pid)
		return false;
	r->pid = 0;
	frontend_close_chan(ctx);
	if (r->log_fd >= 0)
		frontend_read_log(ctx); /* its last words */
	if (ctx->is_stopping) {
		log_info("router: stopped");
		return true;
	}
	if (r->is_stopping && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0) {
		log_info("router: exited; starting it again");
		r->restart_at_ms = now;
		return true;
	}
	if (now - r->started_ms > 60000)
		r->crashes = 0;
	r->crashes++;
	int64_t delay = LODGED_ROUTER_BACKOFF_MIN_MS;

	for (unsigned i = 1;
	     i < r->crashes && delay < LODGED_ROUTER_BACKOFF_MAX_MS; i++)
		delay *= 2;
	if (delay > LODGED_ROUTER_BACKOFF_MAX_MS)
		delay = LODGED_ROUTER_BACKOFF_MAX_MS;
	if (WIFSIGNALED(status))
		log_error("router (pid %d): killed by signal %d (%s); "
		          "restarting in %lld ms on the same sockets",
		    (int)pid, WTERMSIG(status), strsignal(WTERMSIG(status)),
		    (long long)delay);
	else
		log_error("router (pid %d): exited with status %d; "
		          "restarting in %lld ms on the same sockets",
		    (int)pid, WEXITSTATUS(status), (long long)delay);
	r->restart_at_ms = now + delay;
	return true;
}

int frontend_timers(struct lodged_ctx *ctx, int64_t now)
{
	struct lodged_router *r = &ctx->router;

	if (ctx->is_stopping || r->pid != 0 || r->restart_at_ms == 0)
		return -1;
	if (r->restart_at_ms <= now) {
		frontend_start(ctx);
		if (r->restart_at_ms == 0)
			return -1;
	}
	return (int)(r->restart_at_ms - now);
}

void frontend_reload(struct lodged_ctx *ctx, const struct conf *old)
{
	const struct conf *c = &ctx->conf;
	struct lodged_router *r = &ctx->router;
	bool is_same = c->nfronts == old->nfronts;

	for (size_t i = 0; is_same && i < c->nfronts; i++)
		is_same = strcmp(c->fronts[i].spec, old->fronts[i].spec) == 0 &&
		          c->fronts[i].is_trusted == old->fronts[i].is_trusted;
	if (!is_same)
		log_warn("%s: front listeners changed; this takes effect "
		         "when lodged restarts (the router keeps the old "
		         "ones)",
		    ctx->config_path);
	if (r->pid == 0)
		return;
	if (c->route != old->route || c->queue_max != old->queue_max ||
	    c->queue_timeout != old->queue_timeout ||
	    c->inflight_max != old->inflight_max ||
	    strcmp(c->host_map, old->host_map) != 0 ||
	    strcmp(c->router, old->router) != 0 ||
	    strcmp(c->router_policy, old->router_policy) != 0 ||
	    strcmp(c->router_user, old->router_user) != 0 ||
	    c->seccomp != old->seccomp || c->scheduling != old->scheduling) {
		/* The router hands over what it queued and exits; a new one
		 * starts at once on the same sockets (frontend_reaped). */
		log_info("router: settings changed; replacing it");
		r->is_stopping = true;
		kill(r->pid, SIGTERM);
		return;
	}
	/* Same settings: the router re-reads its host map. */
	kill(r->pid, SIGHUP);
}

bool frontend_stop(struct lodged_ctx *ctx, int sig)
{
	struct lodged_router *r = &ctx->router;

	r->restart_at_ms = 0;
	if (r->pid == 0)
		return false;
	r->is_stopping = true;
	kill(r->pid, sig);
	return true;
}
