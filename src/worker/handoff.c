/*
 * handoff.c: connections that move between lodge-worker processes, and the
 * graceful replacement of a worker process by a fresh copy of itself.
 *
 * Runs in lodge-worker as the hosted user.  A connection moves as its
 * descriptor (SCM_RIGHTS) plus the bytes already read from it, in one
 * MSG_CONN message over a SOCK_SEQPACKET channel (proto.h, msg.c): from a
 * worker to a process-mode app's process and back after each response,
 * and from a worker being replaced to its successor.  A front connection
 * (from lodge-router, front.c) moves as a MSG_FRONT instead, with what the
 * router said about it, and never comes back.  An app's process also
 * reports what it served on its channel (MSG_STATS, kept by stats.c).
 * Everything a peer sends is checked by msg_recv; a peer that sends
 * garbage is cut off (an app's process, killed).  The router channel
 * itself is read here too, its messages handled by front.c.
 *
 * Replacement (the backstop for what a sub-interpreter can't clean: a
 * parked interpreter whose threads never ended, memory above
 * --max-memory; and SIGHUP): the old process starts a successor with the
 * listening sockets inherited, waits until it has imported every app and
 * says READY, stops accepting, and hands it every idle keep-alive
 * connection, and each busy one once its response is out.  No connection
 * is ever reset while a request may be arriving on it, so a front end
 * that pools connections never sees a failure.  The successor inherits
 * the router channel as well (its own HELLO on it); the old process stops
 * reading it once the successor is ready.  Then the old process exits.
 */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "msg.h"
#include "stats.h"
#include "util.h"

#define HANDOFF_READY_TIMEOUT_MS 120000
#define HANDOFF_SEND_TIMEOUT_S 2

static const char *replace_err = "";

int chan_add(struct chan *ch)
{
	struct epoll_event ev = {
	    .events = EPOLLIN | EPOLLONESHOT,
	    .data.ptr = ch,
	};

	util_set_nonblock(ch->fd, false);
	{
		/* Sends block at most this long: a stuck peer costs one
		 * connection, never a thread for good. */
		struct timeval tv = {.tv_sec = HANDOFF_SEND_TIMEOUT_S};

		setsockopt(ch->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	return epoll_ctl(wctx.epfd, EPOLL_CTL_ADD, ch->fd, &ev);
}

int conn_send_fd(struct chan *ch, struct conn *c)
{
	if (atomic_load(&ch->is_closed) || c->buf_len > MSG_MAX_PAYLOAD) {
		errno = EMSGSIZE;
		return -1;
	}
	/* A front connection travels with what the router said about it. */
	if (c->front != NULL)
		return front_send_conn(ch->fd, c);
	return msg_send(ch->fd, MSG_CONN, c->buf, c->buf_len, c->fd);
}

int conn_send(struct chan *ch, struct conn *c)
{
	if (conn_send_fd(ch, c) < 0)
		return -1;
	/* The peer has its own copy of the descriptor now: ours is closed,
	 * never shut down.  Who says DONE for a front connection: the
	 * successor shares our router channel and says it when it is done;
	 * an app's own process has no router channel, so conn_close says it
	 * now (if that process dies with the request, the router can't
	 * answer 502 for it: the visitor sees the connection close). */
	c->is_passed = true;
	if (c->front != NULL && ch == wctx.successor)
		atomic_store(&c->front->owes_done, false);
	conn_close(c);
	return 0;
}

void conn_release(struct conn *c)
{
	/* An app's own process keeps no idle connection: the worker that
	 * routes decides where the next request goes.  A front connection
	 * never goes back (it carries one request, which is ours): only one
	 * whose head is still arriving gets here, and waits for it. */
	if (wctx.app_process != NULL && c->front == NULL) {
		if (conn_send(wctx.up, c) < 0)
			conn_close(c);
		return;
	}
	if (atomic_load(&wctx.is_draining) && wctx.successor != NULL) {
		if (conn_send(wctx.successor, c) < 0) {
			log_warn("handoff: cannot pass a connection to the new "
			    "process; closing it");
			conn_close(c);
		}
		return;
	}
	conn_arm(c, false, c->buf_len > 0);
}

/* A connection arrived from another process of ours. */
static void conn_received(struct msg *m)
{
	struct conn *c = conn_new(m->fd, m->payload, m->len);

	if (c == NULL) {
		close(m->fd);
		return;
	}
	{
		int type = 0;
		socklen_t tl = sizeof(type);

		/* Only a stream socket can be a client connection. */
		if (getsockopt(c->fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
		    type != SOCK_STREAM) {
			log_warn("handoff: a peer passed a descriptor that is "
			    "not a stream socket; dropped");
			conn_free(c);
			return;
		}
	}
	conn_describe(c);
	conn_register(c);
	conn_arm(c, true, m->len > 0);
}

/* A front connection from our predecessor (idle, its head still
 * arriving) or, in an app's process, from the worker that routes.  0, or
 * -1 for a bad message. */
static int front_received(struct msg *m, const char **errstr_r)
{
	/* DONE goes to the router from whoever holds its channel: we do if
	 * we inherited it (a successor), never an app's process. */
	struct conn *c = front_conn_new(m, wctx.router != NULL, errstr_r);

	if (c == NULL)
		return errno == EPROTO ? -1 : 0;
	conn_register(c);
	conn_arm(c, true, true);
	return 0;
}

struct conn *chan_readable(struct chan *ch)
{
	static _Thread_local uint8_t *buf;
	struct epoll_event ev = {
	    .events = EPOLLIN | EPOLLONESHOT,
	    .data.ptr = ch,
	};
	const char *bad = NULL;
	struct conn *serve = NULL;

	if (buf == NULL) {
		buf = malloc(sizeof(struct msg_hdr) + MSG_MAX_PAYLOAD);
		if (buf == NULL)
			goto rearm;
	}
	for (int i = 0; i < 64; i++) {
		const char *err = NULL;
		struct msg m;
		int rc = msg_recv(ch->fd, buf,
		    sizeof(struct msg_hdr) + MSG_MAX_PAYLOAD, &m, &err);

		if (rc == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (rc <= 0 || rc == -2) {
			if (rc == -2)
				bad = err;
			goto closed;
		}
		if (ch->is_router) {
			if (front_message(ch, &m, &serve, &err) < 0) {
				bad = err;
				goto closed;
			}
			/* We serve this one: the channel goes back to the
			 * epoll set first, so another thread takes the
			 * next FRONT meanwhile. */
			if (serve != NULL)
				break;
			continue;
		}
		switch (m.type) {
		case MSG_CONN:
			conn_received(&m);
			break;
		case MSG_FRONT:
			/* Never from an app's process: they hand nothing
			 * back but plain connections. */
			if (ch->proc != NULL) {
				close(m.fd);
				break;
			}
			if (front_received(&m, &err) < 0) {
				bad = err;
				goto closed;
			}
			break;
		case MSG_DRAIN:
			if (ch->is_up && wctx.app_process != NULL) {
				/* Our parent has a newer process for this
				 * app: finish what we have, then leave. */
				log_info("draining: a new process serves the "
				    "app");
				atomic_store(&wctx.stopping, true);
			}
			break;
		case MSG_RELOAD:
			if (ch->proc != NULL)
				procmode_reload_asked(ch->proc);
			break;
		case MSG_STATS:
			/* An app's process reports what it served; our own
			 * report to lodged adds it.  It runs the user's
			 * code: a report that does not add up cuts it off.
			 * (From any other peer: not expected, ignored.) */
			if (ch->proc != NULL &&
			    stats_proc_report(ch->proc, &m, &err) < 0) {
				bad = err;
				goto closed;
			}
			break;
		case MSG_HELLO:
		case MSG_READY:
		case MSG_DONE:
		case MSG_START:
		case MSG_WORKER:
		case MSG_NOUSER:
		case MSG_FAILED:
		case MSG_BADPEER:
		case MSG_RELOAD_APP:
		case MSG_QUEUES:
		case MSG_TYPE_MAX:
			/* Not expected here: ignore, the channel is fine (a
			 * descriptor that came with it is not kept). */
			if (m.fd >= 0)
				close(m.fd);
			break;
		}
	}
rearm:
	/* Fails once the channel was handed to a successor (front.c): then
	 * it is meant to stay out of our epoll set. */
	epoll_ctl(wctx.epfd, EPOLL_CTL_MOD, ch->fd, &ev);
	return serve;
closed:
	if (ch->is_router) {
		front_closed(ch, bad);
		return NULL;
	}
	if (bad != NULL && ch->proc != NULL) {
		/* An app's process that sends garbage is killed, not just
		 * ignored: it would never see its channel close (we keep our
		 * end open), and procmode_chan_closed waits for it. */
		log_warn("app %s: its process %d sent a bad message (%s); "
		    "killing it", ch->proc->app->name, (int)ch->proc->pid, bad);
		kill(ch->proc->pid, SIGKILL);
	} else if (bad != NULL) {
		log_warn("handoff: a peer process sent a bad message (%s); "
		    "cutting it off", bad);
	}
	atomic_store(&ch->is_closed, true);
	epoll_ctl(wctx.epfd, EPOLL_CTL_DEL, ch->fd, NULL);
	if (ch->proc != NULL) {
		procmode_chan_closed(ch->proc);
	} else if (ch->is_up && wctx.app_process != NULL) {
		/* The worker that routes to us is gone: nobody can send us
		 * requests nor take our connections back. */
		log_warn("the parent worker is gone; exiting");
		_exit(0);
	}
	/* The predecessor's channel closes when it exits: nothing to do.
	 * The descriptor stays open (harmless) so that no other thread
	 * can be handed a reused number by mistake. */
	return NULL;
}

pid_t handoff_spawn(const char *const *extra, const int *keep, int nkeep,
    int *chan_r)
{
	static const char *const internal[] = {"--inherit-listen",
	    "--handoff-fd", "--app-process", "--listen-fd", "--router-fd",
	    "--lodged-fd", NULL};
	char fdbuf[16], exe[4096];
	const char **args;
	int sv[2], n = 0, i, k;
	pid_t pid;

	for (i = 0; wctx.argv[i] != NULL; i++)
		n++;
	for (i = 0; extra[i] != NULL; i++)
		n++;
	args = calloc((size_t)n + 4, sizeof(*args));
	if (args == NULL)
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		free(args);
		return -1;
	}
	/* Our own command line without the internal options, then the new
	 * process's. */
	/* The binary by its real name (so ps shows lodge-worker), which is
	 * also the newest one if the package was upgraded meanwhile. */
	ssize_t el = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (el <= 0 || (size_t)el >= sizeof(exe) - 1 ||
	    strstr(exe, " (deleted)") != NULL)
		snprintf(exe, sizeof(exe), "%s", wctx.argv[0]);
	else
		exe[el] = '\0';
	n = 0;
	args[n++] = exe;
	for (i = 1; wctx.argv[i] != NULL; i++) {
		bool skip = false;

		for (k = 0; internal[k] != NULL; k++) {
			size_t l = strlen(internal[k]);

			if (strcmp(wctx.argv[i], internal[k]) == 0) {
				skip = true;
				i++; /* and its value */
				break;
			}
			if (strncmp(wctx.argv[i], internal[k], l) == 0 &&
			    wctx.argv[i][l] == '=') {
				skip = true;
				break;
			}
		}
		if (wctx.argv[i] == NULL)
			break;
		if (!skip)
			args[n++] = wctx.argv[i];
	}
	for (i = 0; extra[i] != NULL; i++)
		args[n++] = extra[i];
	snprintf(fdbuf, sizeof(fdbuf), "%d", sv[1]);
	args[n++] = "--handoff-fd";
	args[n++] = fdbuf;
	args[n] = NULL;

	pid = fork();
	if (pid == 0) {
		sigset_t none;

		/* Only async-signal-safe calls until exec: we were
		 * multi-threaded. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		fcntl(sv[1], F_SETFD, 0);
		for (i = 0; i < nkeep; i++)
			fcntl(keep[i], F_SETFD, 0);
		execv(exe, (char *const *)args);
		_exit(127);
	}
	free(args);
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return -1;
	}
	*chan_r = sv[0];
	return pid;
}

int handoff_wait_ready(int fd, int timeout_ms, char *why, size_t why_size)
{
	int64_t deadline = util_now_ms() + timeout_ms;
	static uint8_t buf[sizeof(struct msg_hdr) + MSG_MAX_PAYLOAD];

	snprintf(why, why_size, "the new process exited before it was ready");
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int64_t left = deadline - util_now_ms();
		const char *err = NULL;
		struct msg m;
		int rc;

		if (left <= 0) {
			snprintf(why, why_size, "the new process was not ready "
			    "after %d s", timeout_ms / 1000);
			return -1;
		}
		struct pollfd cp = {.fd = control_fd(), .events = POLLIN};

		/* The control socket keeps answering meanwhile (this runs on
		 * the watcher thread, which serves it). */
		if (cp.fd >= 0 && poll(&cp, 1, 0) > 0)
			control_serve();
		if (poll(&p, 1, (int)(left < 50 ? left : 50)) <= 0)
			continue;
		rc = msg_recv(fd, buf, sizeof(buf), &m, &err);
		if (rc == -1 && errno == EAGAIN)
			continue;
		if (rc <= 0)
			return 0;
		if (rc == -2) {
			snprintf(why, why_size, "the new process sent a bad "
			    "message: %s", err);
			return 0;
		}
		if (m.type == MSG_READY)
			return 1;
		if (m.fd >= 0)
			close(m.fd);
	}
}

const char *replace_error(void)
{
	return replace_err;
}

int replace_request(const char *why)
{
	const char *extra[6 + 2 * WORKER_MAX_LISTEN] = {NULL};
	char fdlist[WORKER_MAX_LISTEN * 8] = "", reason[256];
	char fdargs[WORKER_MAX_LISTEN][12], routerarg[12], lodgedarg[12];
	int nextra = 0;
	int keep[WORKER_MAX_LISTEN + 2], nkeep = 0, chan, rc, i;
	int router_fd = front_fd(), lodged_fd = stats_inherit_fd();
	pid_t pid;

	if (wctx.successor != NULL || wctx.app_process != NULL) {
		replace_err = "a replacement is already under way";
		return -1;
	}
	if (atomic_load(&wctx.stopping)) {
		replace_err = "the worker is stopping";
		return -1;
	}
	/* Listeners from --listen specs are inherited in their order;
	 * those from --listen-fd are passed on the same way. */
	for (i = 0; i < wctx.nlisten; i++) {
		struct listener *l = &wctx.listeners[i];

		keep[nkeep++] = l->fd;
		if (l->is_from_fd) {
			snprintf(fdargs[i], sizeof(fdargs[i]), "%d", l->fd);
			extra[nextra++] = "--listen-fd";
			extra[nextra++] = fdargs[i];
		} else {
			size_t len = strlen(fdlist);

			snprintf(fdlist + len, sizeof(fdlist) - len, "%s%d",
			    fdlist[0] ? "," : "", l->fd);
		}
	}
	if (fdlist[0] != '\0') {
		extra[nextra++] = "--inherit-listen";
		extra[nextra++] = fdlist;
	}
	/* The router channel too: the successor says HELLO on it, and reads
	 * it once it is ready; the router never notices the change. */
	if (router_fd >= 0) {
		snprintf(routerarg, sizeof(routerarg), "%d", router_fd);
		keep[nkeep++] = router_fd;
		extra[nextra++] = "--router-fd";
		extra[nextra++] = routerarg;
	}
	/* And lodged's: the successor reports from the moment it is
	 * ready (stats_handover below). */
	if (lodged_fd >= 0) {
		snprintf(lodgedarg, sizeof(lodgedarg), "%d", lodged_fd);
		keep[nkeep++] = lodged_fd;
		extra[nextra++] = "--lodged-fd";
		extra[nextra++] = lodgedarg;
	}
	log_info("replacing the worker process: %s", why);
	pid = handoff_spawn(extra, keep, nkeep, &chan);
	if (pid < 0) {
		replace_err = "cannot start a new process";
		log_error("replace: %s: %s", replace_err, strerror(errno));
		return -1;
	}
	/* A stop (SIGTERM, on the main thread) that comes while the
	 * successor starts wins: it must not outlive us, alone in the
	 * namespace with nobody to stop it.  Either we see the stop here or
	 * below, or the stop sees the pid (both sides are seq_cst). */
	atomic_store(&wctx.successor_starting, (int)pid);
	rc = atomic_load(&wctx.stopping) ? 0 :
	    handoff_wait_ready(chan, HANDOFF_READY_TIMEOUT_MS, reason,
	        sizeof(reason));
	if (atomic_load(&wctx.stopping)) {
		atomic_store(&wctx.successor_starting, 0);
		log_info("replace: the worker is stopping; the new process "
		    "(pid %d) is not needed", (int)pid);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(chan);
		replace_err = "the worker is stopping";
		return -1;
	}
	if (rc != 1) {
		atomic_store(&wctx.successor_starting, 0);
		/* Keep serving: a failed successor must cost nothing. */
		log_error("replace: %s; this process keeps serving", reason);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(chan);
		replace_err = "the new process failed to start (see the log)";
		return -1;
	}
	atomic_store(&wctx.successor_starting, 0);
	wctx.successor = calloc(1, sizeof(*wctx.successor));
	if (wctx.successor == NULL) {
		kill(pid, SIGTERM);
		close(chan);
		return -1;
	}
	wctx.successor->ev_kind = EV_CHAN;
	wctx.successor->fd = chan;
	front_handover();
	stats_handover();
	{
		struct timeval tv = {.tv_sec = HANDOFF_SEND_TIMEOUT_S};

		setsockopt(chan, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	snprintf(wctx.replace_why, sizeof(wctx.replace_why), "%s", why);
	/* From here on the successor accepts; we only finish and hand
	 * over. */
	atomic_store(&wctx.is_draining, true);
	for (i = 0; i < wctx.nlisten; i++) {
		struct listener *l = &wctx.listeners[i];

		epoll_ctl(wctx.epfd, EPOLL_CTL_DEL, l->fd, NULL);
		close(l->fd);
		l->fd = -1;
	}
	wctx.drain_deadline = util_now_ms() + wctx.drain_timeout_ms;
	/* The successor owns the control socket's path now; answer what
	 * already queued on ours, then close it. */
	control_close();
	drain_claim_idle();
	procmode_drain_all();
	log_info("replace: process %d serves now; handing over connections",
	    (int)pid);
	return 0;
}

/* Resident memory of this process, in bytes. */
static uint64_t rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

void replace_tick(void)
{
	static int64_t last_rss_check;
	int64_t now = util_now_ms();

	if (wctx.app_process != NULL && atomic_load(&wctx.stopping)) {
		int nconns;

		/* An app process told to drain: leave once every
		 * connection went back to the worker. */
		pthread_mutex_lock(&wctx.conns_lock);
		nconns = wctx.nconns;
		pthread_mutex_unlock(&wctx.conns_lock);
		if (nconns == 0) {
			/* What we served since the last report: the worker
			 * reads it before it sees us gone. */
			stats_up_final();
			userlog_flush(wctx.apps[0]->log);
			log_info("drained: exiting");
			_exit(0);
		}
		return;
	}
	if (atomic_load(&wctx.is_draining)) {
		int nconns;

		pthread_mutex_lock(&wctx.conns_lock);
		nconns = wctx.nconns;
		pthread_mutex_unlock(&wctx.conns_lock);
		drain_claim_idle();
		pthread_mutex_lock(&wctx.conns_lock);
		nconns = wctx.nconns;
		pthread_mutex_unlock(&wctx.conns_lock);
		if ((nconns == 0 && procmode_all_gone()) ||
		    now > wctx.drain_deadline) {
			if (nconns > 0) {
				log_warn("replace: %d connection(s) still busy "
				    "at the deadline; leaving anyway", nconns);
				worker_abandon_fronts();
			}
			for (int i = 0; i < wctx.napps; i++)
				userlog_flush(wctx.apps[i]->log);
			log_info("replaced (%s): old process exits",
			    wctx.replace_why);
			_exit(0);
		}
		return;
	}
	if (wctx.app_process != NULL || now - last_rss_check < 2000)
		return;
	last_rss_check = now;
	if (wctx.max_memory > 0 && rss_bytes() > wctx.max_memory) {
		char why[128];

		snprintf(why, sizeof(why), "resident memory %llu MiB is above "
		    "--max-memory %llu MiB",
		    (unsigned long long)(rss_bytes() >> 20),
		    (unsigned long long)(wctx.max_memory >> 20));
		replace_request(why);
	}
}
