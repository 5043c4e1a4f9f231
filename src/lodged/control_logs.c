/*
 * control_logs.c: lodgectl logs: the end of a user's worker.log or of an
 * app's log.  Runs in lodged as root, and must never open a path inside a
 * user's home as root: it forks a child that takes the user's ids first
 * (groups, gid, uid, checked; no capability survives the uid change),
 * which opens the file, reads at most its last 64 KiB and writes them to
 * a pipe.  lodged reads the pipe in its event loop and never blocks on
 * the file: a FIFO, a hung file system or a huge file cost the child
 * (killed by its alarm), not lodged.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control_int.h"
#include "sandbox.h"

/* The child's report: one line, then the bytes. */
static void control_logs_say(
    int fd, const char *head, const void *data, size_t len)
{
	if (write(fd, head, strlen(head)) < 0)
		_exit(1);
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(1);
		data = (const char *)data + n;
		len -= (size_t)n;
	}
}

static void __attribute__((noreturn))
control_logs_fail(int fd, int err, const char *step)
{
	char head[CONTROL_LOGS_HEAD];

	snprintf(head, sizeof(head), "ERR %d %s\n", err, step);
	control_logs_say(fd, head, NULL, 0);
	_exit(0);
}

/*
 * The log reader, in a child of lodged: becomes the user (its own groups,
 * gid, uid; root cannot come back, and the kernel drops every capability
 * with the uid), then opens the log.  Permissions and symlinks in the
 * user's home are therefore judged as for the user: a link to
 * /etc/shadow fails with EACCES.  It makes system calls and one
 * allocation only, writes to the pipe only (never to lodged's log), and
 * lives at most CONTROL_LOGS_ALARM_S seconds.
 */
static void __attribute__((noreturn))
control_logs_child(int wfd, const struct conf_user *cu, const char *path)
{
	char head[CONTROL_LOGS_HEAD];
	char *buf;
	const char *what = NULL;
	struct stat st;
	off_t off;
	size_t len = 0, want;
	int fd, null_fd;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		_exit(1);
	alarm(CONTROL_LOGS_ALARM_S);
	/* Only the pipe survives, as 3; stdio goes to /dev/null (stdio
	 * first: the null descriptor may be 3 itself). */
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd < 0)
		_exit(1);
	for (int i = 0; i < 3; i++)
		if (dup2(null_fd, i) < 0)
			_exit(1);
	if (dup2(wfd, 3) < 0)
		_exit(1);
	close_range(4, ~0U, 0);
	wfd = 3;
	if (chdir("/") < 0)
		control_logs_fail(wfd, errno, "chdir");
	if (sandbox_priv_set_ids(
	        cu->uid, cu->gid, cu->groups, cu->ngroups, &what) < 0 ||
	    sandbox_priv_verify(
	        cu->uid, cu->gid, cu->groups, cu->ngroups, &what) < 0)
		control_logs_fail(wfd, errno, "ids");
	/* The uid change cleared the parent-death signal: again. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		_exit(1);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);

	/* O_NONBLOCK: a FIFO put there does not block the open. */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		control_logs_fail(wfd, errno, "open");
	if (fstat(fd, &st) < 0)
		control_logs_fail(wfd, errno, "fstat");
	if (!S_ISREG(st.st_mode))
		control_logs_fail(wfd, 0, "notfile");
	off = st.st_size > CTLPROTO_LOG_BYTES ? st.st_size - CTLPROTO_LOG_BYTES
	                                      : 0;
	want = (size_t)(st.st_size - off);
	buf = malloc(want + 1);
	if (buf == NULL)
		control_logs_fail(wfd, ENOMEM, "read");
	while (len < want) {
		ssize_t n = pread(fd, buf + len, want - len, off + (off_t)len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			control_logs_fail(wfd, errno, "read");
		if (n == 0)
			break; /* truncated meanwhile */
		len += (size_t)n;
	}
	snprintf(head, sizeof(head), "OK %lld %lld\n", (long long)st.st_size,
	    (long long)off);
	control_logs_say(wfd, head, buf, len);
	_exit(0);
}

void control_logs(struct lodged_ctx *ctx, struct control_conn *c)
{
	struct control_logs *lg = &c->logs;
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = &lg->hdr};
	struct lodged_user *u;
	uint64_t nlines = CTLPROTO_LOG_LINES_DEFAULT;
	int p[2];
	pid_t pid;

	if (c->req.nargs == 2 &&
	    util_parse_u64(c->req.args[1], 1, CTLPROTO_LOG_LINES_MAX, false,
	        &nlines) < 0) {
		control_fail(ctx, c, CTLPROTO_ERR_USAGE,
		    "'%s' is not a number of lines from 1 to %d",
		    c->req.args[1], CTLPROTO_LOG_LINES_MAX);
		return;
	}
	u = control_target(ctx, c, true, lg->app);
	if (u == NULL)
		return;
	snprintf(lg->user, sizeof(lg->user), "%s", u->cu.name);
	snprintf(lg->path, sizeof(lg->path), "%s/%s.log", u->cu.log_dir,
	    lg->app[0] != '\0' ? lg->app : "worker");
	lg->nlines = (unsigned)nlines;
	lg->buf = malloc(CONTROL_LOGS_HEAD + CTLPROTO_LOG_BYTES);
	if (lg->buf == NULL || pipe2(p, O_CLOEXEC) < 0) {
		control_fail(ctx, c, CTLPROTO_ERR_FAILED,
		    "lodged cannot start the log reader (%s); try again",
		    lg->buf == NULL ? "out of memory" : strerror(errno));
		return;
	}
	/* lodged has one thread: fork() is safe, and the child only makes
	 * system calls and one malloc before it exits. */
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		control_fail(ctx, c, CTLPROTO_ERR_FAILED,
		    "lodged cannot start the log reader (fork: %s); try again",
		    strerror(errno));
		return;
	}
	if (pid == 0)
		control_logs_child(p[1], &u->cu, lg->path);
	close(p[1]);
	lg->fd = p[0];
	util_set_nonblock(lg->fd, true);
	if (epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, lg->fd, &e) < 0) {
		close(lg->fd);
		lg->fd = -1;
		control_fail(ctx, c, CTLPROTO_ERR_FAILED,
		    "lodged cannot watch the log reader (epoll: %s); try "
		    "again",
		    strerror(errno));
		return;
	}
	/* The child is reaped by lodged's SIGCHLD handling like any other;
	 * its end is the pipe's EOF.  The connection waits out of the epoll
	 * set (a hang-up would wake it for nothing). */
	control_watch(ctx, c, 0);
	c->state = CONTROL_LOGS_WAIT;
}

/* The reader is done: the reply from what it wrote. */
static void control_logs_done(struct lodged_ctx *ctx, struct control_conn *c)
{
	struct control_logs *lg = &c->logs;
	char *nl = memchr(lg->buf, '\n',
	    lg->len < CONTROL_LOGS_HEAD ? lg->len : CONTROL_LOGS_HEAD);
	const char *what = lg->app[0] != '\0' ? lg->app : "worker";
	long long size = 0, off = 0;
	char step[16] = "";
	struct json_out j = {0};
	int err = 0;

	control_forget_fd(ctx, lg->fd);
	lg->fd = -1;
	if (nl == NULL || lg->is_overflow) {
		control_fail(ctx, c, CTLPROTO_ERR_FAILED,
		    "the reader of %s (as %s) ended without an answer (it "
		    "is stopped after %d s: a hung file system?); try "
		    "again",
		    lg->path, lg->user, CONTROL_LOGS_ALARM_S);
		return;
	}
	*nl = '\0';
	if (sscanf(lg->buf, "ERR %d %15s", &err, step) == 2) {
		if (strcmp(step, "open") == 0 && err == ENOENT)
			control_fail(ctx, c, CTLPROTO_ERR_NOFILE,
			    "%s has no log %s.log yet (%s does not exist): %s",
			    lg->user, what, lg->path,
			    lg->app[0] != '\0'
			        ? "the app has not written anything, or there "
			          "is no such app (lodgectl status lists the "
			          "users; the apps are folders in the user's "
			          "apps dir)"
			        : "the worker has not started yet");
		else if (strcmp(step, "notfile") == 0)
			control_fail(ctx, c, CTLPROTO_ERR_FAILED,
			    "%s is not a regular file; lodge writes a plain "
			    "file there, so remove what is at that path",
			    lg->path);
		else if (strcmp(step, "ids") == 0)
			control_fail(ctx, c, CTLPROTO_ERR_FAILED,
			    "lodged could not take %s's identity to read the "
			    "log (%s); lodged's log may say more",
			    lg->user, strerror(err));
		else
			control_fail(ctx, c, CTLPROTO_ERR_FAILED,
			    "cannot read %s as %s: %s; logs are read with the "
			    "user's rights only, so the file must be the "
			    "user's (chown %s %s)",
			    lg->path, lg->user, strerror(err), lg->user,
			    lg->path);
		return;
	}
	if (sscanf(lg->buf, "OK %lld %lld", &size, &off) != 2) {
		control_fail(ctx, c, CTLPROTO_ERR_FAILED,
		    "the log reader sent something unexpected; try again");
		return;
	}
	const char *data = nl + 1;
	size_t len = lg->len - (size_t)(data - lg->buf);
	size_t start = ctlproto_tail(data, len, off > 0, lg->nlines);

	json_out_obj(&j, NULL);
	json_out_str(&j, "user", lg->user);
	json_out_str(&j, "app", lg->app[0] != '\0' ? lg->app : NULL);
	json_out_str(&j, "file", lg->path);
	json_out_int(&j, "size", size);
	json_out_bool(&j, "truncated", off > 0 || start > 0);
	json_out_arr(&j, "lines");
	for (size_t i = start; i < len;) {
		const char *e = memchr(data + i, '\n', len - i);
		size_t n = e != NULL ? (size_t)(e - (data + i)) : len - i;

		json_out_strn(&j, NULL, data + i, n);
		i += n + 1;
	}
	json_out_arr_end(&j);
	control_ok_end(ctx, c, &j);
}

void control_logs_read(struct lodged_ctx *ctx, struct control_conn *c)
{
	struct control_logs *lg = &c->logs;
	size_t cap = CONTROL_LOGS_HEAD + CTLPROTO_LOG_BYTES;

	for (;;) {
		char sink[4096];
		ssize_t n;

		if (lg->len < cap)
			n = read(lg->fd, lg->buf + lg->len, cap - lg->len);
		else
			n = read(lg->fd, sink, sizeof(sink));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0)
			break;
		if (lg->len < cap)
			lg->len += (size_t)n;
		else
			lg->is_overflow = true;
	}
	control_logs_done(ctx, c);
}
