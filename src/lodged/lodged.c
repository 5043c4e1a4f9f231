/*
 * lodged.c: the launcher.  Runs as root: loads and checks lodge.conf,
 * creates one listening socket per hosted user (SOCKET_DIR/NAME.sock,
 * root:socket_group 0660), and starts that user's sandboxed worker when
 * the first connection arrives (supervise.c); the worker then accepts on
 * the socket itself until it exits.  SIGHUP re-reads the config (a bad one
 * is reported and the old one stays), SIGTERM/SIGINT stop every worker and
 * exit.  It links neither libpython nor an HTTP parser, never reads a
 * byte of a request and never opens a path inside a user's home.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/magic.h>
#include <systemd/sd-daemon.h> /* sd_notify: lodge.service, Type=notify */

#include "control.h"
#include "lodged.h"
#include "log.h"
#include "sandbox.h"

/* The one context of this process, and nothing else global but the
 * logging state (log.c): signals arrive through a signalfd. */
static struct lodged_ctx lodged;

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: lodged [--config FILE] [--foreground]\n"
	    "       lodged [--config FILE] --check-config [FILE]\n"
	    "  --config FILE        the configuration "
	    "(default " CONF_DEFAULT_PATH ")\n"
	    "  --foreground         stay in the foreground (for systemd)\n"
	    "  --check-config       check the configuration, print every "
	    "error and exit\n");
}

static void print_msgs(const char *prefix, const struct conf_msgs *m)
{
	for (size_t i = 0; i < m->n; i++)
		fprintf(stderr, "%s%s\n", prefix, m->msgs[i]);
	if (m->nlost > 0)
		fprintf(stderr, "%s(%zu more messages lost: out of memory)\n",
		    prefix, m->nlost);
}

static void log_msgs(bool is_error, const struct conf_msgs *m)
{
	for (size_t i = 0; i < m->n; i++) {
		if (is_error)
			log_error("%s", m->msgs[i]);
		else
			log_warn("%s", m->msgs[i]);
	}
	if (m->nlost > 0)
		log_error("(%zu more messages lost: out of memory)", m->nlost);
}

/* lodged --check-config [FILE]: every error, then the exit status. */
static int check_config(const char *path)
{
	struct conf_msgs errs = {0}, warns = {0};
	struct conf_hosted h;
	struct conf conf;
	int rc = 1;

	if (conf_load(path, &conf, &errs) == 0) {
		if (conf_resolve(&conf, &h, &errs, &warns) == 0) {
			rc = 0;
			for (size_t i = 0; i < h.nusers; i++)
				printf("%s: hosts %s (uid %u, %u process(es), "
				       "%u thread(s))\n",
				    path, h.users[i].name,
				    (unsigned)h.users[i].uid,
				    h.users[i].limits.processes,
				    h.users[i].limits.threads);
			conf_hosted_free(&h);
		}
		conf_free(&conf);
	}
	print_msgs("warning: ", &warns);
	print_msgs("", &errs);
	if (rc == 0)
		printf("%s: ok\n", path);
	conf_msgs_free(&errs);
	conf_msgs_free(&warns);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Sockets */

void lodged_watch(struct lodged_ctx *ctx, struct lodged_user *u, bool on)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = u};

	if (u->listen_fd < 0 || u->is_watched == on)
		return;
	if (on && u->is_held)
		return; /* lodgectl stop: no connection starts a worker */
	if (epoll_ctl(ctx->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL,
	        u->listen_fd, &ev) < 0) {
		log_error("%s: epoll: %s", u->sock_path, strerror(errno));
		return;
	}
	u->is_watched = on;
}

/*
 * Creates socket_dir (0755, each missing parent too) and checks it: a
 * directory owned by root that nobody else can write, since lodged
 * creates, chowns and replaces files in it.
 */
static void lodged_socket_dir(const char *dir)
{
	char path[UTIL_MAX_PATH];
	struct stat st;

	snprintf(path, sizeof(path), "%s", dir);
	for (char *s = path + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		/* chmod: the umask (077) would take group and other's x. */
		if (mkdir(path, 0755) == 0)
			(void)chmod(path, 0755);
		else if (errno != EEXIST)
			fatal("socket_dir %s: cannot create %s: %s", dir, path,
			    strerror(errno));
		*s = c;
		if (c == '\0')
			break;
	}
	if (lstat(dir, &st) < 0)
		fatal("socket_dir %s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		fatal("socket_dir %s: not a directory; remove it or set "
		      "socket_dir to another path",
		    dir);
	if (st.st_uid != 0 || (st.st_mode & 022) != 0)
		fatal("socket_dir %s: owned by uid %u with mode %04o; it must "
		      "be root's and writable by root only (chown root %s; "
		      "chmod 755 %s)",
		    dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
		    dir, dir);
}

/*
 * A Unix listening socket at path: bound under a temporary name, given to
 * root:gid 0660, then renamed over path, so the final path never exists
 * with other permissions and a stale socket is replaced in one step.  A
 * path that is not a socket is left alone (an error).
 */
int lodged_sockfile_note(struct lodged_sockfile *f, const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return -1;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	return 0;
}

void lodged_sockfile_unlink(
    const struct lodged_sockfile *f, const char *path, const char *what)
{
	struct stat st;

	if (f->ino == 0 || lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode) ||
	    st.st_dev != f->dev || st.st_ino != f->ino)
		return; /* gone, or another lodged's now: not ours to remove */
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("%s %s: %s", what, path, strerror(errno));
}

int lodged_unix_listen(const char *path, gid_t gid, const char *what,
    struct lodged_sockfile *file_r)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char tmp[UTIL_MAX_PATH + 8];
	struct stat st;
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.new", path) >=
	    (int)sizeof(sun.sun_path)) {
		log_error("socket %s: path too long (%s gets no socket)", path,
		    what);
		return -1;
	}
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		log_error("socket %s: exists and is not a socket; remove it "
		          "(%s gets no socket until then)",
		    path, what);
		return -1;
	}
	if (lstat(tmp, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_error("socket %s: %s exists and is not a socket; "
			          "remove it",
			    path, tmp);
			return -1;
		}
		unlink(tmp);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("socket %s: %s", path, strerror(errno));
		return -1;
	}
	strcpy(sun.sun_path, tmp);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    lodged_sockfile_note(file_r, tmp) < 0 || chown(tmp, 0, gid) < 0 ||
	    chmod(tmp, 0660) < 0 || listen(fd, 1024) < 0 ||
	    rename(tmp, path) < 0) {
		log_error("socket %s: %s", path, strerror(errno));
		unlink(tmp);
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Systemd's fd store (lodge.service: FileDescriptorStoreMax) keeps a copy
 * of each user's socket while lodged restarts, as lodge.socket keeps the
 * fronts: a connection that comes meanwhile waits in its backlog for the
 * next lodged, which takes the socket back (lodged_take_stored) instead
 * of making a new one.  Without systemd (no NOTIFY_SOCKET) none of this
 * happens: the socket ends with lodged.
 */
static void lodged_fdstore_remove(struct lodged_ctx *ctx, const char *name)
{
	char msg[300];

	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	if (ctx->has_fdstore)
		(void)sd_notify(0, msg);
}

static void lodged_fdstore(struct lodged_ctx *ctx, struct lodged_user *u)
{
	char msg[300];
	int rc;

	if (!ctx->has_fdstore || u->sock_file.ino == 0)
		return;
	snprintf(u->fdname, sizeof(u->fdname),
	    LODGED_FDSTORE_PREFIX "%s@%jx-%jx", u->cu.name,
	    (uintmax_t)u->sock_file.dev, (uintmax_t)u->sock_file.ino);
	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", u->fdname);
	rc = sd_pid_notify_with_fds(0, 0, msg, &u->listen_fd, 1);
	u->is_stored = rc > 0;
	if (rc <= 0)
		log_warn("socket %s: systemd's fd store: %s", u->sock_path,
		    rc < 0 ? strerror(-rc) : "no notify socket");
}

/* u's socket as the previous lodged left it in the fd store, if it is
 * still the socket at u's path: 0 (u->listen_fd set), or -1. */
static int lodged_take_stored(struct lodged_ctx *ctx, struct lodged_user *u)
{
	char prefix[256];
	size_t len;
	struct stat st;

	len = (size_t)snprintf(prefix, sizeof(prefix),
	    LODGED_FDSTORE_PREFIX "%s@", u->cu.name);
	for (size_t i = 0; i < ctx->npassed; i++) {
		struct lodged_passed *p = &ctx->passed[i];
		uintmax_t dev = 0, ino = 0;
		char end = 0;

		if (p->is_used || strncmp(p->name, prefix, len) != 0)
			continue;
		p->is_used = true;
		if (sscanf(p->name + len, "%jx-%jx%c", &dev, &ino, &end) != 2 ||
		    sd_is_socket(p->fd, AF_UNIX, SOCK_STREAM, 1) <= 0 ||
		    lstat(u->sock_path, &st) < 0 || !S_ISSOCK(st.st_mode) ||
		    (uintmax_t)st.st_dev != dev || (uintmax_t)st.st_ino != ino) {
			/* Its file is gone or another socket's now (lodged was
			 * run by hand meanwhile, socket_dir changed): a new
			 * socket, and this one out of the store. */
			log_info("socket %s: the one systemd kept is not the "
			         "one at that path any more; making a new one",
			    u->sock_path);
			close(p->fd);
			lodged_fdstore_remove(ctx, p->name);
			continue;
		}
		u->sock_file.dev = st.st_dev;
		u->sock_file.ino = st.st_ino;
		snprintf(u->fdname, sizeof(u->fdname), "%s", p->name);
		util_set_nonblock(p->fd, true);
		(void)fcntl(p->fd, F_SETFD, FD_CLOEXEC);
		if (chown(u->sock_path, 0, ctx->socket_gid) < 0)
			log_error("socket %s: chown: %s", u->sock_path,
			    strerror(errno));
		u->listen_fd = p->fd;
		u->is_stored = true;
		return 0;
	}
	return -1;
}

static int lodged_socket_open(struct lodged_ctx *ctx, struct lodged_user *u)
{
	snprintf(u->sock_path, sizeof(u->sock_path), "%s/%s.sock",
	    ctx->conf.socket_dir, u->cu.name);
	if (lodged_take_stored(ctx, u) == 0)
		return 0;
	u->listen_fd = lodged_unix_listen(u->sock_path, ctx->socket_gid,
	    u->cu.name, &u->sock_file);
	if (u->listen_fd < 0)
		return -1;
	lodged_fdstore(ctx, u);
	return 0;
}

/* is_gone: the user is no longer hosted (the socket, its file and its
 * copy in the fd store go); else lodged is exiting, and a socket systemd
 * keeps stays, file and all, for the next lodged. */
static void lodged_socket_close(
    struct lodged_ctx *ctx, struct lodged_user *u, bool is_gone)
{
	if (u->listen_fd < 0)
		return;
	lodged_watch(ctx, u, false);
	if (is_gone && u->is_stored)
		lodged_fdstore_remove(ctx, u->fdname);
	close(u->listen_fd);
	u->listen_fd = -1;
	if (is_gone || !u->is_stored)
		lodged_sockfile_unlink(&u->sock_file, u->sock_path, "socket");
}

/* At start: what systemd passed (lodge.socket's fronts, the fd store's
 * users' sockets), with their names. */
static void lodged_take_passed(struct lodged_ctx *ctx)
{
	char **names = NULL;
	int n = sd_listen_fds_with_names(1, &names);

	ctx->has_fdstore = getenv("NOTIFY_SOCKET") != NULL;
	if (n < 0) {
		log_warn("socket activation: %s; lodged opens every socket "
		         "itself",
		    strerror(-n));
		n = 0;
	}
	ctx->passed = n > 0 ? calloc((size_t)n, sizeof(*ctx->passed)) : NULL;
	if (n > 0 && ctx->passed == NULL)
		fatal("out of memory");
	for (int i = 0; i < n; i++) {
		ctx->passed[i].fd = SD_LISTEN_FDS_START + i;
		snprintf(ctx->passed[i].name, sizeof(ctx->passed[i].name),
		    "%s", names != NULL && names[i] != NULL ? names[i] : "");
	}
	ctx->npassed = (size_t)n;
	if (names != NULL) {
		for (int i = 0; i < n; i++)
			free(names[i]);
		free(names);
	}
}

/* After start: a stored socket of a user no longer hosted is closed, and
 * leaves the store. */
static void lodged_drop_passed(struct lodged_ctx *ctx)
{
	for (size_t i = 0; i < ctx->npassed; i++) {
		struct lodged_passed *p = &ctx->passed[i];

		if (p->is_used)
			continue;
		log_info("socket %s kept by systemd: no such hosted user; "
		         "closing it",
		    p->name);
		close(p->fd);
		lodged_fdstore_remove(ctx, p->name);
	}
	free(ctx->passed);
	ctx->passed = NULL;
	ctx->npassed = 0;
}

/* A new hosted user: takes cu (moved, the source zeroed), opens its
 * socket and watches it. */
static void lodged_add_user(struct lodged_ctx *ctx, struct conf_user *cu)
{
	struct lodged_user **grown;
	struct lodged_user *u = calloc(1, sizeof(*u));

	grown = realloc(ctx->users, (ctx->nusers + 1) * sizeof(*grown));
	if (u == NULL || grown == NULL) {
		log_error("user %s: out of memory; not hosted", cu->name);
		free(u);
		if (grown != NULL)
			ctx->users = grown;
		return;
	}
	ctx->users = grown;
	u->ev = LODGED_EV_USER;
	u->cu = *cu;
	memset(cu, 0, sizeof(*cu));
	u->listen_fd = -1;
	for (unsigned i = 0; i < CONF_MAX_PROCESSES; i++)
		u->slots[i].router_end = -1;
	ctx->users[ctx->nusers++] = u;
	if (lodged_socket_open(ctx, u) == 0) {
		lodged_watch(ctx, u, true);
		log_info("user %s (uid %u): listening on %s", u->cu.name,
		    (unsigned)u->cu.uid, u->sock_path);
	}
}

struct lodged_user *lodged_find(struct lodged_ctx *ctx, const char *name)
{
	for (size_t i = 0; i < ctx->nusers; i++)
		if (!ctx->users[i]->is_removed &&
		    strcmp(ctx->users[i]->cu.name, name) == 0)
			return ctx->users[i];
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* Configuration */

/* Loads and resolves path: 0, or -1 (conf and h hold nothing then).
 * Every error and warning is logged and appended to errs and warns (the
 * caller frees them). */
static int lodged_load(const char *path, struct conf *conf,
    struct conf_hosted *h, struct conf_msgs *errs, struct conf_msgs *warns)
{
	struct stat st;
	int rc = -1;

	/* The config names the binary lodged runs as each user and the
	 * policy that confines it: only root may be able to change it. */
	if (stat(path, &st) == 0 && (st.st_uid != 0 || (st.st_mode & 022))) {
		conf_msgs_add(errs,
		    "%s: owned by uid %u with mode %04o; it must be root's and "
		    "writable by root only (chown root %s; chmod 644 %s)",
		    path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
		    path, path);
		log_msgs(true, errs);
		return -1;
	}
	if (conf_load(path, conf, errs) == 0) {
		if (conf_resolve(conf, h, errs, warns) == 0)
			rc = 0;
		else
			conf_free(conf);
	}
	log_msgs(false, warns);
	log_msgs(true, errs);
	return rc;
}

static size_t lodged_nhosted(const struct lodged_ctx *ctx)
{
	size_t n = 0;

	for (size_t i = 0; i < ctx->nusers; i++)
		n += !ctx->users[i]->is_removed;
	return n;
}

/*
 * SIGHUP (and lodgectl reload-config): the new config replaces the old
 * one only if it is entirely valid.  Users no longer listed lose their
 * socket and workers; new ones get a socket; users whose workers would
 * start differently get their workers drained (SIGTERM), and the next
 * connection starts new ones.
 */
int lodged_reload(struct lodged_ctx *ctx, struct conf_msgs *errs_r,
    struct conf_msgs *warns_r)
{
	struct conf_msgs errs = {0}, warns = {0};
	struct conf conf;
	struct conf_hosted h;
	bool is_global_changed;
	int rc;

	/* systemd: "reloading" until the READY=1 below (either one). */
	(void)sd_notify(0, "RELOADING=1\nSTATUS=Reloading the configuration");
	log_info("SIGHUP: reading %s", ctx->config_path);
	rc = lodged_load(ctx->config_path, &conf, &h, &errs, &warns);
	/* lodgectl reload-config shows them to whoever asked, too. */
	if (errs_r != NULL) {
		*errs_r = errs;
		errs = (struct conf_msgs){0};
	}
	if (warns_r != NULL) {
		*warns_r = warns;
		warns = (struct conf_msgs){0};
	}
	conf_msgs_free(&errs);
	conf_msgs_free(&warns);
	if (rc < 0) {
		log_error("%s: not loaded; the previous configuration stays "
		          "in force",
		    ctx->config_path);
		(void)sd_notifyf(0, "READY=1\nSTATUS=%zu user(s) hosted; "
		                    "the last reload failed (%s has errors, "
		                    "see the log)",
		    lodged_nhosted(ctx), ctx->config_path);
		return -1;
	}
	if (strcmp(conf.socket_dir, ctx->conf.socket_dir) != 0) {
		log_warn("%s: socket_dir changed to %s; this takes effect when "
		         "lodged restarts (sockets stay in %s)",
		    ctx->config_path, conf.socket_dir, ctx->conf.socket_dir);
		free(conf.socket_dir);
		conf.socket_dir = strdup(ctx->conf.socket_dir);
		if (conf.socket_dir == NULL)
			fatal("out of memory");
	}
	is_global_changed = strcmp(conf.worker, ctx->conf.worker) != 0 ||
	                    strcmp(conf.policy, ctx->conf.policy) != 0 ||
	                    conf.seccomp != ctx->conf.seccomp ||
	                    conf.scheduling != ctx->conf.scheduling;

	/* Users no longer hosted. */
	for (size_t i = 0; i < ctx->nusers; i++) {
		struct lodged_user *u = ctx->users[i];
		bool is_kept = false;

		if (u->is_removed)
			continue;
		for (size_t j = 0; j < h.nusers; j++)
			is_kept |= strcmp(h.users[j].name, u->cu.name) == 0;
		if (is_kept)
			continue;
		log_info("user %s: no longer hosted; stopping its workers",
		    u->cu.name);
		lodged_socket_close(ctx, u, true);
		supervise_signal_user(ctx, u, SIGTERM);
		u->is_removed = true;
	}
	for (size_t i = 0; i < ctx->nusers;) {
		if (ctx->users[i]->is_removed && ctx->users[i]->nrunning == 0) {
			supervise_free_user(ctx->users[i]);
			memmove(&ctx->users[i], &ctx->users[i + 1],
			    (ctx->nusers - i - 1) * sizeof(*ctx->users));
			ctx->nusers--;
		} else {
			i++;
		}
	}

	/* The socket group applies to existing sockets too. */
	if (h.socket_gid != ctx->socket_gid) {
		ctx->socket_gid = h.socket_gid;
		for (size_t i = 0; i < ctx->nusers; i++)
			if (ctx->users[i]->listen_fd >= 0 &&
			    chown(ctx->users[i]->sock_path, 0, h.socket_gid) <
			        0)
				log_error("socket %s: chown: %s",
				    ctx->users[i]->sock_path, strerror(errno));
	}

	/* Replace the config before starting anything with it. */
	struct conf old_conf = ctx->conf;

	ctx->conf = conf;
	/* The control socket follows control_group at once. */
	ctx->has_control_gid = h.has_control_gid;
	ctx->control_gid = h.control_gid;
	control_reconfigured(ctx);
	if (h.router_uid != ctx->router.uid || h.router_gid != ctx->router.gid)
		is_global_changed = true; /* the router restarts */
	ctx->router.uid = h.router_uid;
	ctx->router.gid = h.router_gid;
	frontend_reload(ctx, &old_conf);
	conf_free(&old_conf);

	for (size_t j = 0; j < h.nusers; j++) {
		struct conf_user *cu = &h.users[j];
		struct lodged_user *u = lodged_find(ctx, cu->name);
		struct conf_user old;

		if (u == NULL) {
			lodged_add_user(ctx, cu);
			continue;
		}
		if (u->listen_fd < 0 && lodged_socket_open(ctx, u) == 0 &&
		    u->nrunning == 0)
			lodged_watch(ctx, u, true);
		if (!is_global_changed && conf_user_equal(&u->cu, cu))
			continue;
		old = u->cu;
		u->cu = *cu;
		*cu = old; /* freed with h below */
		if (u->nrunning > 0) {
			log_info("user %s: settings changed; replacing its "
			         "workers (they drain, the next connection "
			         "starts new ones)",
			    u->cu.name);
			supervise_signal_user(ctx, u, SIGTERM);
		}
	}
	conf_hosted_free(&h);
	log_info("%s: loaded; %zu user(s) hosted", ctx->config_path,
	    lodged_nhosted(ctx));
	(void)sd_notifyf(0, "READY=1\nSTATUS=%zu user(s) hosted (reloaded)",
	    lodged_nhosted(ctx));
	return 0;
}

/* ---------------------------------------------------------------------- */
/* cgroups */

/* Writes s to path (a cgroup file); 0 or -1 (errno). */
static int lodged_write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int saved;

	if (fd < 0)
		return -1;
	n = write(fd, s, strlen(s));
	saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

/*
 * Decides once, at start, whether workers get cgroup limits.  They need
 * a unified (v2) hierarchy where lodged's own cgroup was delegated to it
 * (lodge.service with Delegate=yes).  Then, following systemd's
 * CGROUP_DELEGATION.md (no processes in inner nodes), lodged moves itself
 * into <own>/supervisor and enables cpu, memory and pids for the
 * children, and the sandbox puts each user's workers in <own>/u-USER.
 * Anything else (hybrid or v1 host, the root cgroup, no controllers):
 * only rlimits apply, and lodged says why once.
 */
static void lodged_detect_cgroups(struct lodged_ctx *ctx)
{
	static char dir[PATH_MAX];
	char why[512], line[PATH_MAX], path[PATH_MAX + 32], pid[32];
	struct statfs sfs;
	FILE *f;

	ctx->cgroup_dir = NULL;
	why[0] = '\0';
	if (statfs("/sys/fs/cgroup", &sfs) < 0 ||
	    sfs.f_type != CGROUP2_SUPER_MAGIC) {
		if (sandbox_cgroup_detect(NULL, why, sizeof(why)) < 0) {
			log_warn("cgroup limits are off: %s", why);
			return;
		}
	}
	/* Our own cgroup: the "0::/path" line of /proc/self/cgroup. */
	dir[0] = '\0';
	f = fopen("/proc/self/cgroup", "re");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "0::/", 4) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(dir, sizeof(dir), "/sys/fs/cgroup%s",
			    strcmp(line + 3, "/") == 0 ? "" : line + 3);
		}
	}
	if (f != NULL)
		fclose(f);
	if (dir[0] == '\0' || strcmp(dir, "/sys/fs/cgroup") == 0) {
		log_warn("cgroup limits are off: lodged runs in the root "
		         "cgroup (run it as lodge.service with Delegate=yes); "
		         "only rlimits apply");
		return;
	}
	snprintf(path, sizeof(path), "%s/supervisor", dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		log_warn("cgroup limits are off: mkdir %s: %s (is the cgroup "
		         "delegated?); only rlimits apply",
		    path, strerror(errno));
		return;
	}
	snprintf(path, sizeof(path), "%s/supervisor/cgroup.procs", dir);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if (lodged_write_file(path, pid) < 0) {
		log_warn("cgroup limits are off: %s: %s; only rlimits apply",
		    path, strerror(errno));
		return;
	}
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
	if (lodged_write_file(path, "+cpu +memory +pids") < 0) {
		log_warn("cgroup limits are off: %s: %s (other processes in "
		         "%s?); only rlimits apply",
		    path, strerror(errno), dir);
		return;
	}
	if (sandbox_cgroup_detect(dir, why, sizeof(why)) < 0) {
		log_warn("cgroup limits are off: %s", why);
		return;
	}
	ctx->cgroup_dir = dir;
	log_info("cgroup limits are on: users' workers go in %s/u-USER", dir);
}

/* ---------------------------------------------------------------------- */
/* The loop */

static void lodged_reap(struct lodged_ctx *ctx)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		if (!frontend_reaped(ctx, pid, status))
			supervise_reaped(ctx, pid, status);
}

static size_t lodged_nrunning(const struct lodged_ctx *ctx)
{
	size_t n = 0;

	for (size_t i = 0; i < ctx->nusers; i++)
		n += ctx->users[i]->nrunning;
	return n;
}

/*
 * SIGTERM to every worker that has not had it, once the router is gone.
 * The ends of the router channels that lodged keeps for a restarted
 * router are closed first: no router will answer a worker's DRAIN any
 * more, and the EOF tells the worker so (it would wait for the answer).
 */
static void lodged_stop_workers(struct lodged_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nusers; i++) {
		struct lodged_user *u = ctx->users[i];
		bool is_due = false;

		for (unsigned j = 0; j < CONF_MAX_PROCESSES; j++) {
			struct lodged_slot *s = &u->slots[j];

			if (s->router_end >= 0) {
				close(s->router_end);
				s->router_end = -1;
			}
			is_due |= s->pid != 0 && !s->is_stopping;
		}
		if (is_due)
			supervise_signal_user(ctx, u, SIGTERM);
	}
}

static void lodged_begin_stop(struct lodged_ctx *ctx, int sig)
{
	if (ctx->is_stopping)
		return;
	log_info(
	    "%s: stopping %zu worker(s)", strsignal(sig), lodged_nrunning(ctx));
	ctx->is_stopping = true;
	(void)sd_notify(0, "STOPPING=1\nSTATUS=Stopping the workers");
	ctx->stop_deadline_ms = util_now_ms() + LODGED_STOP_TIMEOUT_MS;
	for (size_t i = 0; i < ctx->nusers; i++)
		lodged_watch(ctx, ctx->users[i], false);
	/* The router first: it accepts no more, and what it has accepted
	 * (a head still coming in, a queue) still finds the workers
	 * running.  They get SIGTERM once it has exited (lodged_run).  A
	 * connection that comes meanwhile waits in the front sockets'
	 * backlog for the next lodged's router (lodge.socket). */
	if (!frontend_stop(ctx, SIGTERM))
		lodged_stop_workers(ctx);
}

static void lodged_signals(struct lodged_ctx *ctx)
{
	struct signalfd_siginfo si;

	while (read(ctx->sigfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			lodged_reap(ctx);
			break;
		case SIGHUP:
			if (!ctx->is_stopping)
				(void)lodged_reload(ctx, NULL, NULL);
			break;
		case SIGTERM:
		case SIGINT:
			lodged_begin_stop(ctx, (int)si.ssi_signo);
			break;
		default:
			break;
		}
	}
	/* A SIGCHLD may have been merged with one read above. */
	lodged_reap(ctx);
}

static void lodged_run(struct lodged_ctx *ctx)
{
	struct epoll_event evs[64];

	for (;;) {
		int64_t now = util_now_ms();
		int timeout = supervise_timers(ctx, now);
		int rtimeout = frontend_timers(ctx, now);
		int n;

		if (rtimeout >= 0 && (timeout < 0 || rtimeout < timeout))
			timeout = rtimeout;
		if (ctx->is_stopping) {
			if (ctx->router.pid == 0)
				lodged_stop_workers(ctx);
			if (lodged_nrunning(ctx) == 0 && ctx->router.pid == 0)
				return;
			if (now >= ctx->stop_deadline_ms && !ctx->has_killed) {
				log_warn("workers still running after %d s: "
				         "killing them",
				    LODGED_STOP_TIMEOUT_MS / 1000);
				for (size_t i = 0; i < ctx->nusers; i++)
					supervise_signal_user(
					    ctx, ctx->users[i], SIGKILL);
				(void)frontend_stop(ctx, SIGKILL);
				ctx->has_killed = true;
			}
			timeout = ctx->has_killed
			              ? 1000
			              : (int)(ctx->stop_deadline_ms - now);
		}
		n = epoll_wait(ctx->epfd, evs, 64, timeout);
		if (n < 0 && errno != EINTR)
			fatal("epoll_wait: %s", strerror(errno));
		/* Connections first, signals last: a signal may free a
		 * user (SIGHUP removing it, SIGCHLD for its last worker)
		 * that a later event of this batch would point to. */
		bool has_signal = false;

		for (int i = 0; i < n; i++) {
			enum lodged_ev *ev = evs[i].data.ptr;
			struct lodged_user *u;

			if (ev == NULL) {
				has_signal = true;
				continue;
			}
			switch (*ev) {
			case LODGED_EV_USER:
				/* A connection waits on u's socket, and no
				 * worker of u runs (the socket is watched
				 * only then). */
				u = (struct lodged_user *)ev;
				if (u->is_watched && !ctx->is_stopping)
					supervise_start(ctx, u);
				break;
			case LODGED_EV_ROUTER_CHAN:
			case LODGED_EV_ROUTER_LOG:
				frontend_event(ctx, ev);
				break;
			case LODGED_EV_CONTROL:
				control_event(ctx, ev);
				break;
			case LODGED_EV_WORKER_CHAN:
				workerchan_event(ctx, ev);
				break;
			}
		}
		/* lodgectl's commands run after the batch too, for the same
		 * reason (reload-config may free a user). */
		control_run(ctx);
		if (has_signal)
			lodged_signals(ctx);
	}
}

/* ---------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct lodged_ctx *ctx = &lodged;
	struct conf_hosted h;
	const char *check_path = NULL;
	bool is_check = false;
	bool is_foreground = false;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	sigset_t mask;

	log_init("lodged", LOG_LVL_INFO);
	ctx->config_path = CONF_DEFAULT_PATH;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			ctx->config_path = argv[++i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			ctx->config_path = argv[i] + 9;
		} else if (strcmp(argv[i], "--foreground") == 0) {
			is_foreground = true;
		} else if (strcmp(argv[i], "--check-config") == 0) {
			is_check = true;
			if (i + 1 < argc && argv[i + 1][0] != '-')
				check_path = argv[++i];
		} else if (strncmp(argv[i], "--check-config=", 15) == 0) {
			is_check = true;
			check_path = argv[i] + 15;
		} else if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(
			    stderr, "lodged: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (is_check)
		return check_config(check_path ? check_path : ctx->config_path);

	if (geteuid() != 0)
		fatal("must run as root (it starts each user's worker as "
		      "that user)");
	umask(077);
	struct conf_msgs errs = {0}, warns = {0};

	if (lodged_load(ctx->config_path, &ctx->conf, &h, &errs, &warns) < 0)
		fatal("%s: not loaded; fix the errors above (lodged "
		      "--check-config shows them)",
		    ctx->config_path);
	conf_msgs_free(&errs);
	conf_msgs_free(&warns);
	ctx->socket_gid = h.socket_gid;
	ctx->has_control_gid = h.has_control_gid;
	ctx->control_gid = h.control_gid;
	ctx->front_gid = h.front_gid;
	ctx->router.uid = h.router_uid;
	ctx->router.gid = h.router_gid;
	ctx->router.chan_fd = ctx->router.log_fd = -1;
	ctx->router.ev_chan = LODGED_EV_ROUTER_CHAN;
	ctx->router.ev_log = LODGED_EV_ROUTER_LOG;
	lodged_detect_cgroups(ctx);
	lodged_socket_dir(ctx->conf.socket_dir);
	lodged_take_passed(ctx);
	frontend_open(ctx);
	if (!is_foreground && daemon(0, 1) < 0)
		fatal("daemon: %s", strerror(errno));

	/* Signals arrive through a signalfd, read in the loop; children
	 * get their own mask from spawn_worker (the stop signals blocked
	 * until the worker or the router takes them). */
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		fatal("sigprocmask: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	ctx->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	ctx->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ctx->sigfd < 0 || ctx->epfd < 0 ||
	    epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, ctx->sigfd, &ev) < 0)
		fatal("signalfd/epoll: %s", strerror(errno));
	control_open(ctx);

	for (size_t i = 0; i < h.nusers; i++)
		lodged_add_user(ctx, &h.users[i]);
	conf_hosted_free(&h);
	lodged_drop_passed(ctx);
	frontend_start(ctx);
	log_info("ready: %zu user(s) hosted, sockets in %s%s", ctx->nusers,
	    ctx->conf.socket_dir,
	    ctx->nfronts > 0 ? ", router on the front sockets" : "");
	/* systemd (Type=notify): ready only now, with every listener open
	 * and the router started.  A no-op without NOTIFY_SOCKET. */
	(void)sd_notifyf(0, "READY=1\nSTATUS=%zu user(s) hosted%s",
	    ctx->nusers, ctx->nfronts > 0 ? ", router on the front sockets" : "");

	lodged_run(ctx);

	for (size_t i = 0; i < ctx->nusers; i++) {
		lodged_socket_close(ctx, ctx->users[i], false);
		supervise_free_user(ctx->users[i]);
	}
	frontend_close(ctx);
	control_close(ctx);
	free(ctx->users);
	conf_free(&ctx->conf);
	log_info("stopped");
	return 0;
}
