/*
 * control.c: lodged's control socket, the server side of lodgectl.  Runs
 * in lodged as root, in its event loop.  It serves one command per
 * connection on a SOCK_SEQPACKET socket (control_socket, root:control_group
 * 0660, or 0600 without a group) in the protocol of src/ctl/ctlproto.h,
 * and checks on every connection, from the kernel's credentials of the
 * peer (SO_PEERCRED, SO_PEERGROUPS), that it is root or a member of
 * control_group.  It answers from what lodged knows: its users, their
 * worker slots, the router, and /proc for the resident set and CPU time.
 * Commands change lodged's state only through lodged.c and supervise.c
 * (signals, starts, the config reload).  It never opens a path inside a
 * user's home: `logs` forks a child that becomes the user (ids only, no
 * namespaces) before it opens the log, so a symlink there leads nowhere
 * the user could not go, and the content reaches lodged through a pipe.
 * The file holds the socket, the connections and the commands that act;
 * status and metrics are in control_status.c, logs in control_logs.c.
 */
#include "control_int.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "msg.h"

/* ---------------------------------------------------------------------- */
/* The socket */

/*
 * The control socket at path: bound under PATH.new, given its owner and
 * mode, listening, then renamed into place, so that the path never exists
 * with other permissions.  Its folder must be root's and writable by root
 * only (or anyone could replace the socket); it is created if missing.
 */
static int control_listen(const char *path, bool has_gid, gid_t gid,
    struct lodged_sockfile *file_r)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char tmp[UTIL_MAX_PATH + 8], dir[UTIL_MAX_PATH];
	const char *slash = strrchr(path, '/');
	struct stat st;
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.new", path) >=
	        (int)sizeof(sun.sun_path) ||
	    slash == NULL) {
		log_error("control socket %s: path too long or not absolute; "
		          "set control_socket to a shorter path",
		    path);
		return -1;
	}
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (dir[0] == '\0')
		strcpy(dir, "/");
	if (mkdir(dir, 0755) == 0)
		(void)chmod(dir, 0755); /* the umask is 077 */
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & 022) != 0) {
		log_error("control socket %s: its folder %s must be a "
		          "directory of root's, writable by root only (chown "
		          "root %s; chmod 755 %s); lodgectl will not work",
		    path, dir, dir, dir);
		return -1;
	}
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		log_error("control socket %s: exists and is not a socket; "
		          "remove it and restart lodged (lodgectl will not "
		          "work until then)",
		    path);
		return -1;
	}
	if (lstat(tmp, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(tmp);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("control socket %s: %s", path, strerror(errno));
		return -1;
	}
	strcpy(sun.sun_path, tmp);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    lodged_sockfile_note(file_r, tmp) < 0 ||
	    chown(tmp, 0, has_gid ? gid : 0) < 0 ||
	    chmod(tmp, has_gid ? 0660 : 0600) < 0 || listen(fd, 16) < 0 ||
	    rename(tmp, path) < 0) {
		log_error("control socket %s: %s; lodgectl will not work", path,
		    strerror(errno));
		unlink(tmp);
		close(fd);
		return -1;
	}
	return fd;
}

void control_open(struct lodged_ctx *ctx)
{
	struct control *cs = calloc(1, sizeof(*cs));
	struct epoll_event e = {.events = EPOLLIN};

	if (cs == NULL)
		fatal("control socket: out of memory");
	cs->hdr.ev = LODGED_EV_CONTROL;
	cs->hdr.kind = CONTROL_LISTENER;
	cs->started_ms = util_now_ms();
	cs->started_wall_ms = util_wall_ms();
	cs->has_gid = ctx->has_control_gid;
	cs->gid = ctx->control_gid;
	snprintf(cs->path, sizeof(cs->path), "%s", ctx->conf.control_socket);
	ctx->control = cs;
	cs->fd = control_listen(cs->path, cs->has_gid, cs->gid, &cs->file);
	if (cs->fd < 0)
		return;
	e.data.ptr = &cs->hdr;
	if (epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, cs->fd, &e) < 0) {
		log_error(
		    "control socket %s: epoll: %s", cs->path, strerror(errno));
		close(cs->fd);
		cs->fd = -1;
		return;
	}
	log_info("control socket %s: lodgectl may connect as root%s%s",
	    cs->path, cs->has_gid ? " or as a member of " : "",
	    cs->has_gid ? ctx->conf.control_group : "");
}

void control_reconfigured(struct lodged_ctx *ctx)
{
	struct control *cs = ctx->control;

	if (cs == NULL)
		return;
	if (strcmp(cs->path, ctx->conf.control_socket) != 0)
		log_warn("%s: control_socket changed to %s; this takes effect "
		         "when lodged restarts (the socket stays at %s)",
		    ctx->config_path, ctx->conf.control_socket, cs->path);
	if (cs->has_gid == ctx->has_control_gid &&
	    (!cs->has_gid || cs->gid == ctx->control_gid))
		return;
	cs->has_gid = ctx->has_control_gid;
	cs->gid = ctx->control_gid;
	if (cs->fd < 0)
		return;
	/* Connections come through the file's permissions first, and every
	 * one is checked again against the new group. */
	if (chown(cs->path, 0, cs->has_gid ? cs->gid : 0) < 0 ||
	    chmod(cs->path, cs->has_gid ? 0660 : 0600) < 0)
		log_error("control socket %s: %s", cs->path, strerror(errno));
	else
		log_info("control socket %s: now for root%s%s", cs->path,
		    cs->has_gid ? " and the members of " : " only",
		    cs->has_gid ? ctx->conf.control_group : "");
}

/* Out of the epoll set explicitly before close: a child forked meanwhile
 * (a worker's birth, a log reader) may still hold a copy of the
 * descriptor, and epoll forgets it only when the last copy closes, which
 * would leave an event pointing to freed memory. */
void control_forget_fd(struct lodged_ctx *ctx, int fd)
{
	(void)epoll_ctl(ctx->epfd, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
}

static void control_conn_free(struct lodged_ctx *ctx, struct control_conn *c)
{
	if (c->fd >= 0)
		control_forget_fd(ctx, c->fd);
	/* A log reader still at work gets EPIPE or its alarm; it is never
	 * killed by pid, which may already belong to another process. */
	if (c->logs.fd >= 0)
		control_forget_fd(ctx, c->logs.fd);
	free(c->logs.buf);
	free(c->out);
	free(c);
}

void control_close(struct lodged_ctx *ctx)
{
	struct control *cs = ctx->control;

	if (cs == NULL)
		return;
	for (int i = 0; i < CONTROL_MAX_CONNS; i++)
		if (cs->conns[i] != NULL)
			control_conn_free(ctx, cs->conns[i]);
	if (cs->fd >= 0) {
		close(cs->fd);
		lodged_sockfile_unlink(&cs->file, cs->path, "control socket");
	}
	free(cs);
	ctx->control = NULL;
}

/* ---------------------------------------------------------------------- */
/* Who may connect */

/*
 * Root, or a member of control_group: the peer's gid or one of its
 * supplementary groups as the kernel recorded them at connect(2), so no
 * race with the peer changing its identity or exiting.
 */
static bool control_is_allowed(
    const struct control *cs, int fd, const struct ucred *cr)
{
	gid_t small[64], *groups = small;
	socklen_t len = sizeof(small);
	bool is_member = false;

	if (cr->uid == 0)
		return true;
	if (!cs->has_gid)
		return false;
	if (cr->gid == cs->gid)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
		if (errno != ERANGE || len == 0 || len > 65536 * sizeof(gid_t))
			return false;
		groups = malloc(len);
		if (groups == NULL || getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS,
		                          groups, &len) < 0) {
			free(groups);
			return false;
		}
	}
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		is_member |= groups[i] == cs->gid;
	if (groups != small)
		free(groups);
	return is_member;
}

/* ---------------------------------------------------------------------- */
/* Replies */

/* Sets the events c is watched for (0: out of the set). */
void control_watch(
    struct lodged_ctx *ctx, struct control_conn *c, uint32_t events)
{
	struct epoll_event e = {.events = events, .data.ptr = &c->hdr};
	int op;

	if (c->fd < 0 || c->watched == events)
		return;
	op = events == 0       ? EPOLL_CTL_DEL
	     : c->watched == 0 ? EPOLL_CTL_ADD
	                       : EPOLL_CTL_MOD;
	if (epoll_ctl(ctx->epfd, op, c->fd, &e) < 0) {
		log_warn("control: epoll: %s", strerror(errno));
		c->state = CONTROL_DEAD;
		return;
	}
	c->watched = events;
}

/* Sends what is left of the reply; the connection ends with it. */
static void control_flush(struct lodged_ctx *ctx, struct control_conn *c)
{
	while (c->outoff < c->outlen) {
		size_t n = c->outlen - c->outoff;
		ssize_t w;

		if (n > CTLPROTO_CHUNK)
			n = CTLPROTO_CHUNK;
		w = send(
		    c->fd, c->out + c->outoff, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			control_watch(ctx, c, EPOLLOUT);
			return;
		}
		if (w <= 0) {
			/* lodgectl gave up (a timeout, ^C): nothing to do. */
			c->state = CONTROL_DEAD;
			return;
		}
		c->outoff += (size_t)w;
	}
	c->state = CONTROL_DEAD;
}

/* Sends head line + body (j's buffer, taken over; NULL: an empty
 * object). */
void control_send(struct lodged_ctx *ctx, struct control_conn *c,
    enum ctlproto_err kind, const char *sentence, struct json_out *j)
{
	char head[CTLPROTO_MAX_HEAD];
	size_t hlen = ctlproto_head_format(
	    head, sizeof(head), CTLPROTO_VERSION, kind, sentence);
	const char *body = "{}";
	size_t blen = 2;

	if (j != NULL && !j->is_failed && j->buf != NULL) {
		body = j->buf;
		blen = j->len;
	} else if (j != NULL) {
		/* Out of memory building the body: say so instead. */
		hlen = ctlproto_head_format(head, sizeof(head),
		    CTLPROTO_VERSION, CTLPROTO_ERR_FAILED,
		    "lodged ran out of memory building the reply; try again");
	}
	free(c->out);
	c->out = malloc(hlen + blen + 1);
	if (c->out == NULL) {
		log_error("control: out of memory for a reply");
		c->state = CONTROL_DEAD;
	} else {
		memcpy(c->out, head, hlen);
		memcpy(c->out + hlen, body, blen);
		c->outlen = hlen + blen;
		c->outoff = 0;
		c->state = CONTROL_WRITE;
		control_flush(ctx, c);
	}
	if (j != NULL)
		json_out_free(j);
}

/* Opens the body of an ERR reply: {"error": {"kind", "message"}, ...}; the
 * caller may add members, then closes it with json_out_obj_end. */
void control_err_body(
    struct json_out *j, enum ctlproto_err kind, const char *sentence)
{
	json_out_obj(j, NULL);
	json_out_obj(j, "error");
	json_out_str(j, "kind", ctlproto_err_name(kind));
	json_out_str(j, "message", sentence);
	json_out_obj_end(j);
}

void control_fail(struct lodged_ctx *ctx, struct control_conn *c,
    enum ctlproto_err kind, const char *fmt, ...)
{
	struct json_out j = {0};
	char msg[CTLPROTO_MAX_HEAD - 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	control_err_body(&j, kind, msg);
	json_out_obj_end(&j);
	control_send(ctx, c, kind, msg, &j);
}

/* An OK reply whose body is {"message": ..., more}: opened here, the
 * caller adds members and calls control_ok_end. */
void control_ok_begin(struct json_out *j, const char *message)
{
	json_out_obj(j, NULL);
	json_out_str(j, "message", message);
}

void control_ok_end(
    struct lodged_ctx *ctx, struct control_conn *c, struct json_out *j)
{
	json_out_obj_end(j);
	control_send(ctx, c, CTLPROTO_OK, NULL, j);
}

/* ---------------------------------------------------------------------- */
/* Connections */

/* Too many connections: the newcomer gets ERR busy and is closed.  Its
 * request is read first, if it came, so that closing does not reset the
 * connection before lodgectl has read the answer. */
static void control_refuse_busy(int fd)
{
	static const char msg[] = "lodged is serving 16 lodgectl commands "
	                          "already; try again in a moment";
	char buf[CTLPROTO_MAX_REQUEST + 1], head[CTLPROTO_MAX_HEAD];
	struct json_out j = {0};
	size_t hlen;

	/* lodgectl sends its request right after connecting: wait a moment
	 * for it (only when 16 commands are already being served). */
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	(void)poll(&pfd, 1, 200);
	(void)recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	hlen = ctlproto_head_format(
	    head, sizeof(head), CTLPROTO_VERSION, CTLPROTO_ERR_BUSY, msg);
	control_err_body(&j, CTLPROTO_ERR_BUSY, msg);
	json_out_obj_end(&j);
	if (send(fd, head, hlen, MSG_DONTWAIT | MSG_NOSIGNAL) ==
	        (ssize_t)hlen &&
	    !j.is_failed)
		(void)send(fd, j.buf, j.len, MSG_DONTWAIT | MSG_NOSIGNAL);
	json_out_free(&j);
	close(fd);
}

/*
 * A free place for a connection: its index; -1 if there is none; -2 if
 * there is none but the oldest connection that has waited too long (for
 * a request, or for a log reader stuck on a hung file system) now gives
 * way.  It is only marked dead: a later event of this batch may point to
 * it, so control_run frees it, and the newcomer is accepted after that.
 */
static int control_slot(struct control *cs)
{
	int64_t now = util_now_ms();
	int oldest = -1;

	for (int i = 0; i < CONTROL_MAX_CONNS; i++) {
		struct control_conn *c = cs->conns[i];

		if (c == NULL)
			return i;
		if ((c->state == CONTROL_READ ||
		        c->state == CONTROL_LOGS_WAIT) &&
		    now - c->opened_ms > CONTROL_STALE_MS &&
		    (oldest < 0 || c->opened_ms < cs->conns[oldest]->opened_ms))
			oldest = i;
	}
	if (oldest >= 0) {
		log_warn("control: dropping a lodgectl connection idle for "
		         "%lld s",
		    (long long)((now - cs->conns[oldest]->opened_ms) / 1000));
		cs->conns[oldest]->state = CONTROL_DEAD;
		return -2;
	}
	return -1;
}

static void control_accept(struct lodged_ctx *ctx, struct control *cs)
{
	for (int k = 0; k < CONTROL_MAX_CONNS; k++) {
		socklen_t len = sizeof(struct ucred);
		struct control_conn *c;
		int i = control_slot(cs);
		int fd;

		if (i == -2)
			return; /* the next turn of the loop accepts it */
		fd = accept4(cs->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && errno == EINTR)
			continue;
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != ECONNABORTED)
				log_warn("control socket: accept: %s",
				    strerror(errno));
			return;
		}
		if (i < 0) {
			control_refuse_busy(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->hdr.ev = LODGED_EV_CONTROL;
		c->hdr.kind = CONTROL_CONN;
		c->logs.hdr.ev = LODGED_EV_CONTROL;
		c->logs.hdr.kind = CONTROL_LOGS;
		c->logs.fd = -1;
		c->fd = fd;
		c->opened_ms = util_now_ms();
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) <
		    0) {
			log_warn("control: SO_PEERCRED: %s", strerror(errno));
			control_conn_free(ctx, c);
			continue;
		}
		c->is_allowed = control_is_allowed(cs, fd, &c->cred);
		cs->conns[i] = c;
		control_watch(ctx, c, EPOLLIN);
	}
}

/* Reads the request; a good one waits for control_run. */
static void control_read(struct lodged_ctx *ctx, struct control_conn *c)
{
	char buf[CTLPROTO_MAX_REQUEST + 2];
	const char *err = NULL;
	ssize_t n;

	n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		c->state = CONTROL_DEAD;
		return;
	}
	/* Nothing is run for, nor told to, a peer that may not connect:
	 * whatever it sent, the answer is the same. */
	if (!c->is_allowed) {
		log_warn("control: refused uid %u (pid %d): neither root nor "
		         "in control_group",
		    (unsigned)c->cred.uid, (int)c->cred.pid);
		control_fail(ctx, c, CTLPROTO_ERR_DENIED,
		    "permission denied: uid %u may not use lodged's control "
		    "socket; run lodgectl as root%s%s%s",
		    (unsigned)c->cred.uid,
		    ctx->conf.control_group != NULL
		        ? ", or add the user to the group "
		        : " (lodge.conf names no control_group, so only root "
		          "may; set control_group = GROUP to let a group in)",
		    ctx->conf.control_group != NULL ? ctx->conf.control_group
		                                    : "",
		    ctx->conf.control_group != NULL ? " and log in again" : "");
		return;
	}
	if (ctlproto_req_parse(buf, (size_t)n, &c->req, &err) < 0) {
		control_fail(ctx, c, CTLPROTO_ERR_USAGE,
		    "lodged cannot read this request (%s); use lodgectl", err);
		return;
	}
	if (c->req.version != CTLPROTO_VERSION) {
		control_fail(ctx, c, CTLPROTO_ERR_VERSION,
		    "this lodgectl speaks control protocol %u and lodged "
		    "speaks %u; use the lodgectl installed with this lodged "
		    "(the same lodge package)",
		    c->req.version, CTLPROTO_VERSION);
		return;
	}
	c->state = CONTROL_RUN;
}

/* ---------------------------------------------------------------------- */
/* Actions on a user's workers */

struct lodged_user *control_user(
    struct lodged_ctx *ctx, struct control_conn *c, const char *name)
{
	struct lodged_user *u = lodged_find(ctx, name);

	if (u == NULL)
		control_fail(ctx, c, CTLPROTO_ERR_NOUSER,
		    "%s is not a hosted user: lodgectl status lists them, and "
		    "users = in %s sets them",
		    name, ctx->config_path);
	return u;
}

/* The user named by the only argument (USER, or USER/APP when is_app_ok);
 * NULL after replying the error.  app_r gets the app ("" for none). */
struct lodged_user *control_target(
    struct lodged_ctx *ctx, struct control_conn *c, bool is_app_ok, char *app_r)
{
	char user[CTLPROTO_MAX_USER + 1];
	const char *err = NULL;

	if (ctlproto_target_split(c->req.args[0], user, app_r, &err) < 0 ||
	    (!is_app_ok && app_r[0] != '\0')) {
		control_fail(ctx, c, CTLPROTO_ERR_USAGE,
		    "'%s': %s; write lodgectl %s USER%s", c->req.args[0],
		    err != NULL ? err : "an app is not allowed here",
		    c->req.cmd, is_app_ok ? "[/APP]" : "");
		return NULL;
	}
	return control_user(ctx, c, user);
}

/* Commands that start or stop workers are refused while lodged stops. */
static bool control_is_stopping(struct lodged_ctx *ctx, struct control_conn *c)
{
	if (!ctx->is_stopping)
		return false;
	control_fail(ctx, c, CTLPROTO_ERR_FAILED,
	    "lodged is shutting down: no worker starts or stops on request "
	    "now; start lodged again (systemctl start lodge) when it has "
	    "stopped");
	return true;
}

/* reload USER/APP: MSG_RELOAD_APP to each of u's workers, which reloads
 * that app as if its code changed (a new version beside the old one; a
 * failed import leaves the old one serving). */
static void control_reload_app(struct lodged_ctx *ctx, struct control_conn *c,
    struct lodged_user *u, const char *app)
{
	const struct lodged_slot *newest = workerchan_newest(u);
	struct json_out j = {0};
	unsigned n = 0, nrunning = 0;
	bool is_known = newest == NULL;
	char msg[512];

	if (newest != NULL)
		for (uint32_t i = 0; i < newest->wchan.stats.napps; i++)
			is_known |= strcmp(newest->wchan.apps[i].name, app) == 0;
	/* Names the workers' reports never hold can't be an app. */
	if (msg_app_check((const uint8_t *)app, strlen(app)) < 0 ||
	    !is_known) {
		control_fail(ctx, c, CTLPROTO_ERR_NOFILE,
		    "%s has no app named '%s': lodgectl status %s lists them "
		    "(an app is a folder of %s with wsgi.py, app.wsgi or "
		    "lodge.ini)",
		    u->cu.name, app, u->cu.name, u->cu.apps_dir);
		return;
	}
	for (unsigned i = 0; i < CONF_MAX_PROCESSES; i++) {
		struct lodged_slot *s = &u->slots[i];

		if (s->pid == 0 || s->is_stopping)
			continue;
		nrunning++;
		if (workerchan_reload_app(s, app) < 0) {
			log_warn("worker %s (pid %d): cannot ask for a reload "
			         "of %s: %s",
			    u->cu.name, (int)s->pid, app, strerror(errno));
			continue;
		}
		n++;
	}
	if (nrunning > 0 && n == 0) {
		control_fail(ctx, c, CTLPROTO_ERR_FAILED,
		    "%s's workers could not be asked (see lodged's log); "
		    "lodgectl reload %s replaces them gracefully instead",
		    u->cu.name, u->cu.name);
		return;
	}
	if (n == 0)
		snprintf(msg, sizeof(msg),
		    "%s has no worker running: nothing to reload (the next "
		    "request starts one with the current code)",
		    u->cu.name);
	else
		snprintf(msg, sizeof(msg),
		    "%s/%s: reload asked of %u worker(s): each imports the app "
		    "anew beside the version serving and switches when it is "
		    "ready (if the import fails, the old version keeps "
		    "serving); lodgectl status %s shows the version and the "
		    "result",
		    u->cu.name, app, n, u->cu.name);
	log_info("control: reload %s/%s: %u worker(s) asked (uid %u)",
	    u->cu.name, app, n, (unsigned)c->cred.uid);
	control_ok_begin(&j, msg);
	json_out_str(&j, "user", u->cu.name);
	json_out_str(&j, "app", app);
	json_out_uint(&j, "workers", n);
	control_ok_end(ctx, c, &j);
}

static void control_reload(struct lodged_ctx *ctx, struct control_conn *c)
{
	char app[CTLPROTO_MAX_APP + 1], msg[512];
	struct lodged_user *u = control_target(ctx, c, true, app);
	pid_t pids[CONF_MAX_PROCESSES];
	struct json_out j = {0};
	unsigned n = 0;

	if (u == NULL || control_is_stopping(ctx, c))
		return;
	if (u->is_held) {
		control_fail(ctx, c, CTLPROTO_ERR_FAILED,
		    "%s is stopped (lodgectl stop): lodgectl start %s starts "
		    "it with the current code",
		    u->cu.name, u->cu.name);
		return;
	}
	if (app[0] != '\0') {
		control_reload_app(ctx, c, u, app);
		return;
	}
	/* SIGHUP to a worker's namespace init reaches the worker, which
	 * starts a fresh copy of itself that imports every app and takes
	 * over when ready (docs/worker.md): no request is lost. */
	for (unsigned i = 0; i < CONF_MAX_PROCESSES; i++) {
		struct lodged_slot *s = &u->slots[i];

		if (s->pid == 0 || s->is_stopping)
			continue;
		if (kill(s->pid, SIGHUP) < 0) {
			log_warn("worker %s (pid %d): kill: %s", u->cu.name,
			    (int)s->pid, strerror(errno));
			continue;
		}
		pids[n++] = s->pid;
	}
	if (n == 0)
		snprintf(msg, sizeof(msg),
		    "%s has no worker running: nothing to reload (the next "
		    "request starts one with the current code)",
		    u->cu.name);
	else
		snprintf(msg, sizeof(msg),
		    "%s: %u worker process(es) are being replaced gracefully: "
		    "each starts a fresh copy that imports every app and takes "
		    "over when it is ready, so no request is lost; lodgectl "
		    "status %s shows the new pids",
		    u->cu.name, n, u->cu.name);
	log_info("control: reload %s: %u worker(s) signalled (uid %u)",
	    u->cu.name, n, (unsigned)c->cred.uid);
	control_ok_begin(&j, msg);
	json_out_str(&j, "user", u->cu.name);
	json_out_arr(&j, "init_pids");
	for (unsigned i = 0; i < n; i++)
		json_out_int(&j, NULL, pids[i]);
	json_out_arr_end(&j);
	control_ok_end(ctx, c, &j);
}

/* The reply to start and restart when workers were started now. */
static void control_started(struct lodged_ctx *ctx, struct control_conn *c,
    struct lodged_user *u, const char *what)
{
	struct json_out j = {0};
	char msg[512];

	if (u->nrunning == 0) {
		int64_t next = -1, now = util_now_ms();

		for (unsigned i = 0; i < CONF_MAX_PROCESSES; i++)
			if (u->slots[i].restart_at_ms != 0 &&
			    (next < 0 || u->slots[i].restart_at_ms < next))
				next = u->slots[i].restart_at_ms;
		control_fail(ctx, c, CTLPROTO_ERR_FAILED,
		    "%s: no worker could be started; lodged's log names the "
		    "step that failed (journalctl -u lodge)%s%lld%s",
		    u->cu.name, next >= 0 ? " and it tries again in " : "",
		    next >= 0 ? (long long)control_ceil_s(next - now) : 0LL,
		    next >= 0 ? " s" : "");
		return;
	}
	snprintf(msg, sizeof(msg), "%s: %s; %u of %u worker(s) running",
	    u->cu.name, what, u->nrunning, u->cu.limits.processes);
	control_ok_begin(&j, msg);
	json_out_str(&j, "user", u->cu.name);
	json_out_uint(&j, "running", u->nrunning);
	json_out_uint(&j, "processes", u->cu.limits.processes);
	control_ok_end(ctx, c, &j);
}

static void control_start(struct lodged_ctx *ctx, struct control_conn *c)
{
	char app[CTLPROTO_MAX_APP + 1];
	struct lodged_user *u = control_target(ctx, c, false, app);
	unsigned before, ndraining = 0;
	struct json_out j = {0};
	char msg[512];
	bool was_held;

	if (u == NULL || control_is_stopping(ctx, c))
		return;
	if (u->listen_fd < 0) {
		control_fail(ctx, c, CTLPROTO_ERR_FAILED,
		    "%s has no socket (creating %s failed, see lodged's "
		    "log); fix the cause and run lodgectl reload-config",
		    u->cu.name, u->sock_path);
		return;
	}
	was_held = u->is_held;
	before = u->nrunning;
	u->is_held = false;
	for (unsigned i = 0; i < CONF_MAX_PROCESSES; i++)
		ndraining += u->slots[i].pid != 0 && u->slots[i].is_stopping;
	if (ndraining > 0 && ndraining == u->nrunning) {
		/* Stopped a moment ago and still draining: new workers start
		 * when the old ones have gone, as for a restart. */
		u->is_restarting = true;
		snprintf(msg, sizeof(msg),
		    "%s: %u worker(s) still finish their requests; new ones "
		    "start as soon as they have exited",
		    u->cu.name, ndraining);
		control_ok_begin(&j, msg);
		json_out_str(&j, "user", u->cu.name);
		json_out_uint(&j, "running", u->nrunning);
		json_out_uint(&j, "processes", u->cu.limits.processes);
		control_ok_end(ctx, c, &j);
		return;
	}
	/* The provider asks for it now: a worker waiting out a crash
	 * backoff is tried at once. */
	for (unsigned i = 0; i < u->cu.limits.processes; i++)
		if (u->slots[i].pid == 0)
			u->slots[i].restart_at_ms = 0;
	supervise_start(ctx, u);
	log_info("control: start %s (uid %u): %u worker(s) running", u->cu.name,
	    (unsigned)c->cred.uid, u->nrunning);
	control_started(ctx, c, u,
	    was_held                ? "started again (it was stopped)"
	    : before == u->nrunning ? "already running"
	                            : "started");
}

static void control_restart(struct lodged_ctx *ctx, struct control_conn *c)
{
	char app[CTLPROTO_MAX_APP + 1], msg[512];
	struct lodged_user *u = control_target(ctx, c, false, app);
	struct json_out j = {0};
	unsigned n;

	if (u == NULL || control_is_stopping(ctx, c))
		return;
	if (u->is_held) {
		control_fail(ctx, c, CTLPROTO_ERR_FAILED,
		    "%s is stopped (lodgectl stop): run lodgectl start %s "
		    "instead",
		    u->cu.name, u->cu.name);
		return;
	}
	if (u->nrunning == 0) {
		supervise_start(ctx, u);
		control_started(ctx, c, u, "had no worker running, started");
		return;
	}
	n = u->nrunning;
	/* They drain (finish their requests, hand the router back what it
	 * queued) and exit; supervise.c starts new ones when the last has
	 * gone. */
	u->is_restarting = true;
	supervise_signal_user(ctx, u, SIGTERM);
	log_info("control: restart %s (uid %u): %u worker(s) draining",
	    u->cu.name, (unsigned)c->cred.uid, n);
	snprintf(msg, sizeof(msg),
	    "%s: %u worker(s) finish their requests and exit, and new ones "
	    "start as soon as they have; lodgectl status %s shows them",
	    u->cu.name, n, u->cu.name);
	control_ok_begin(&j, msg);
	json_out_str(&j, "user", u->cu.name);
	json_out_uint(&j, "draining", n);
	control_ok_end(ctx, c, &j);
}

static void control_stop(struct lodged_ctx *ctx, struct control_conn *c)
{
	char app[CTLPROTO_MAX_APP + 1], msg[512];
	struct lodged_user *u = control_target(ctx, c, false, app);
	struct json_out j = {0};
	unsigned n;

	if (u == NULL || control_is_stopping(ctx, c))
		return;
	n = u->nrunning;
	u->is_held = true;
	u->is_restarting = false;
	lodged_watch(ctx, u, false);
	supervise_signal_user(ctx, u, SIGTERM);
	log_info("control: stop %s (uid %u): %u worker(s) stopping; held "
	         "until lodgectl start",
	    u->cu.name, (unsigned)c->cred.uid, n);
	snprintf(msg, sizeof(msg),
	    "%s is stopped: %u worker(s) finish their requests and exit, and "
	    "none starts again until lodgectl start %s (until lodged "
	    "restarts); meanwhile the router answers 502",
	    u->cu.name, n, u->cu.name);
	control_ok_begin(&j, msg);
	json_out_str(&j, "user", u->cu.name);
	json_out_uint(&j, "stopping", n);
	control_ok_end(ctx, c, &j);
}

/* ---------------------------------------------------------------------- */
/* check-config, reload-config */

static void control_msgs_json(
    struct json_out *j, const char *key, const struct conf_msgs *m)
{
	json_out_arr(j, key);
	for (size_t i = 0; i < m->n; i++)
		json_out_str(j, NULL, m->msgs[i]);
	if (m->nlost > 0) {
		char lost[96];

		snprintf(lost, sizeof(lost),
		    "(%zu more messages lost: out of memory)", m->nlost);
		json_out_str(j, NULL, lost);
	}
	json_out_arr_end(j);
}

static void control_check_config(struct lodged_ctx *ctx, struct control_conn *c)
{
	struct conf_msgs errs = {0}, warns = {0};
	const char *path = ctx->config_path;
	struct conf_hosted h = {0};
	struct json_out j = {0};
	bool has_hosted = false;
	struct conf conf;
	struct stat st;
	char msg[512];

	/* The same checks as a reload: the file's owner and mode, the
	 * settings, the accounts. */
	if (stat(path, &st) == 0 && (st.st_uid != 0 || (st.st_mode & 022)))
		conf_msgs_add(&errs,
		    "%s: owned by uid %u with mode %04o; it must be root's and "
		    "writable by root only (chown root %s; chmod 644 %s)",
		    path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
		    path, path);
	if (conf_load(path, &conf, &errs) == 0) {
		has_hosted = conf_resolve(&conf, &h, &errs, &warns) == 0;
		conf_free(&conf);
	}
	if (errs.n + errs.nlost > 0) {
		snprintf(msg, sizeof(msg),
		    "%s has %zu error(s): fix them and run lodgectl "
		    "check-config again; the running configuration is "
		    "unchanged",
		    path, errs.n + errs.nlost);
		control_err_body(&j, CTLPROTO_ERR_FAILED, msg);
	} else {
		snprintf(msg, sizeof(msg),
		    "%s is valid; lodgectl reload-config puts it in force",
		    path);
		control_ok_begin(&j, msg);
	}
	json_out_str(&j, "config", path);
	json_out_bool(&j, "ok", errs.n + errs.nlost == 0);
	control_msgs_json(&j, "errors", &errs);
	control_msgs_json(&j, "warnings", &warns);
	json_out_arr(&j, "users");
	for (size_t i = 0; has_hosted && i < h.nusers; i++) {
		json_out_obj(&j, NULL);
		json_out_str(&j, "name", h.users[i].name);
		json_out_uint(&j, "uid", h.users[i].uid);
		json_out_uint(&j, "processes", h.users[i].limits.processes);
		json_out_uint(&j, "threads", h.users[i].limits.threads);
		json_out_obj_end(&j);
	}
	json_out_arr_end(&j);
	json_out_obj_end(&j);
	if (has_hosted)
		conf_hosted_free(&h);
	control_send(ctx, c,
	    errs.n + errs.nlost > 0 ? CTLPROTO_ERR_FAILED : CTLPROTO_OK,
	    errs.n + errs.nlost > 0 ? msg : NULL, &j);
	conf_msgs_free(&errs);
	conf_msgs_free(&warns);
}

static void control_reload_config(
    struct lodged_ctx *ctx, struct control_conn *c)
{
	struct conf_msgs errs = {0}, warns = {0};
	struct json_out j = {0};
	char msg[512];
	int rc;

	if (control_is_stopping(ctx, c))
		return;
	log_info("control: reload-config (uid %u)", (unsigned)c->cred.uid);
	rc = lodged_reload(ctx, &errs, &warns);
	if (rc < 0) {
		snprintf(msg, sizeof(msg),
		    "%s has errors and was not loaded; the previous "
		    "configuration stays in force: fix the errors and run "
		    "lodgectl reload-config again",
		    ctx->config_path);
		control_err_body(&j, CTLPROTO_ERR_FAILED, msg);
	} else {
		snprintf(msg, sizeof(msg), "%s loaded; %zu user(s) hosted",
		    ctx->config_path, control_nhosted(ctx));
		control_ok_begin(&j, msg);
	}
	json_out_str(&j, "config", ctx->config_path);
	json_out_bool(&j, "loaded", rc == 0);
	json_out_uint(&j, "users_hosted", control_nhosted(ctx));
	control_msgs_json(&j, "errors", &errs);
	control_msgs_json(&j, "warnings", &warns);
	json_out_obj_end(&j);
	control_send(ctx, c, rc < 0 ? CTLPROTO_ERR_FAILED : CTLPROTO_OK,
	    rc < 0 ? msg : NULL, &j);
	conf_msgs_free(&errs);
	conf_msgs_free(&warns);
}

static void control_version(struct lodged_ctx *ctx, struct control_conn *c)
{
	struct json_out j = {0};

	json_out_obj(&j, NULL);
	json_out_str(&j, "version", LODGE_VERSION);
	json_out_uint(&j, "protocol", CTLPROTO_VERSION);
	json_out_obj_end(&j);
	control_send(ctx, c, CTLPROTO_OK, NULL, &j);
}

/* ---------------------------------------------------------------------- */
/* Dispatch */

static const struct control_cmd {
	const char *name;
	int min_args;
	int max_args;
	const char *usage;
	void (*run)(struct lodged_ctx *ctx, struct control_conn *c);
} control_cmds[] = {
    {"status", 0, 1, "status [USER]", control_status},
    {"reload", 1, 1, "reload USER[/APP]", control_reload},
    {"restart", 1, 1, "restart USER", control_restart},
    {"stop", 1, 1, "stop USER", control_stop},
    {"start", 1, 1, "start USER", control_start},
    {"check-config", 0, 0, "check-config", control_check_config},
    {"reload-config", 0, 0, "reload-config", control_reload_config},
    {"logs", 1, 2, "logs USER[/APP] [LINES]", control_logs},
    {"metrics", 0, 0, "metrics", control_metrics},
    {"version", 0, 0, "version", control_version},
};

static void control_exec(struct lodged_ctx *ctx, struct control_conn *c)
{
	const struct ctlproto_req *r = &c->req;

	for (size_t i = 0; i < sizeof(control_cmds) / sizeof(control_cmds[0]);
	     i++) {
		const struct control_cmd *cmd = &control_cmds[i];

		if (strcmp(cmd->name, r->cmd) != 0)
			continue;
		if (r->nargs < cmd->min_args || r->nargs > cmd->max_args) {
			control_fail(ctx, c, CTLPROTO_ERR_USAGE,
			    "%s takes %s; write lodgectl %s", cmd->name,
			    cmd->max_args == 0   ? "no argument"
			    : cmd->min_args == 0 ? "at most one argument"
			    : cmd->max_args == 1 ? "one argument"
			                         : "one or two arguments",
			    cmd->usage);
			return;
		}
		cmd->run(ctx, c);
		return;
	}
	control_fail(ctx, c, CTLPROTO_ERR_USAGE,
	    "lodged does not know the command '%s' (a newer lodgectl?); "
	    "lodgectl --help lists the commands",
	    r->cmd);
}

void control_event(struct lodged_ctx *ctx, enum lodged_ev *ev)
{
	struct control_ev *h = (struct control_ev *)ev;
	struct control_conn *c;

	switch (h->kind) {
	case CONTROL_LISTENER:
		control_accept(ctx, (struct control *)h);
		break;
	case CONTROL_CONN:
		c = (struct control_conn *)h;
		if (c->state == CONTROL_READ)
			control_read(ctx, c);
		else if (c->state == CONTROL_WRITE)
			control_flush(ctx, c);
		break;
	case CONTROL_LOGS:
		c = (struct control_conn *)((char *)h -
		                            offsetof(
		                                struct control_conn, logs));
		if (c->state == CONTROL_LOGS_WAIT && c->logs.fd >= 0)
			control_logs_read(ctx, c);
		break;
	}
}

void control_run(struct lodged_ctx *ctx)
{
	struct control *cs = ctx->control;

	if (cs == NULL)
		return;
	for (int i = 0; i < CONTROL_MAX_CONNS; i++)
		if (cs->conns[i] != NULL && cs->conns[i]->state == CONTROL_RUN)
			control_exec(ctx, cs->conns[i]);
	for (int i = 0; i < CONTROL_MAX_CONNS; i++) {
		if (cs->conns[i] != NULL &&
		    cs->conns[i]->state == CONTROL_DEAD) {
			control_conn_free(ctx, cs->conns[i]);
			cs->conns[i] = NULL;
		}
	}
}
