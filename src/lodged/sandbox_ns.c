/*
 * sandbox_ns.c: the worker's view of the file system (step 3 of
 * SANDBOX.md §2).  Runs in lodged's sandboxed child, as root with every
 * capability, inside fresh mount and PID namespaces, between fork and
 * exec: system calls only, no allocation.  It must never change a mount
 * that the host sees (hence private propagation before anything else),
 * and it never opens a file inside a user's home: the own home is moved
 * as a mount, not read.
 *
 * Hiding homes: each path in req->hide gets an empty read-only tmpfs over
 * it.  When the user's own home lies below a hidden path (lodged passes
 * the homes' common parent, say /home), the home is first cloned as a
 * detached mount (open_tree), marked nosuid,nodev, and attached again on
 * a directory made in the tmpfs.  Passing the parent is what we
 * recommend: one mount per worker instead of one per hosted user, and
 * non-hosted users' homes are hidden too; passing each other home works
 * as well (an empty tmpfs over each).
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

int sandbox_ns_prepare(const struct spawn_req *req, char *tmpfs_opts,
    size_t size)
{
	int n;

	if (req->tmp_size)
		n = snprintf(tmpfs_opts, size, "size=%" PRIu64 ",mode=1777",
		    req->tmp_size);
	else
		n = snprintf(tmpfs_opts, size, "mode=1777");
	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Is path strictly below dir ("/home/alice" below "/home")? */
static bool is_below(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	return strncmp(path, dir, n) == 0 && path[n] == '/' && path[n + 1];
}

/* mkdir -p of path's components after the first skip bytes (which exist). */
static int make_dirs(const char *path, size_t skip)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, n + 1);
	for (size_t i = skip + 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -1;
		buf[i] = path[i];
	}
	return 0;
}

/* An empty tmpfs over dir; if home is below it, home comes back. */
static int hide_dir(const char *dir, const char *home, const char **what_r)
{
	const unsigned long ro = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID |
	    MS_NODEV | MS_NOEXEC;
	int tree = -1;

	if (is_below(home, dir)) {
		struct mount_attr attr = {
			.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
		};

		/* Clone the home's mount tree before covering it: the
		 * clone is detached, so it stays reachable through the fd. */
		*what_r = "clone own home";
		tree = open_tree(AT_FDCWD, home, OPEN_TREE_CLONE |
		    OPEN_TREE_CLOEXEC | AT_RECURSIVE);
		if (tree < 0)
			return -1;
		*what_r = "own home nosuid,nodev";
		if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
		    sizeof(attr)) < 0)
			goto fail;
	}
	*what_r = "hide homes (tmpfs)";
	if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	    tree >= 0 ? "mode=0755,size=64k" : "mode=0000,size=4k") < 0)
		goto fail;
	if (tree >= 0) {
		*what_r = "mkdir own home";
		if (make_dirs(home, strlen(dir)) < 0)
			goto fail;
		*what_r = "bind own home back";
		if (move_mount(tree, "", AT_FDCWD, home,
		    MOVE_MOUNT_F_EMPTY_PATH) < 0)
			goto fail;
		close(tree);
		tree = -1;
	}
	*what_r = "hide homes (read-only)";
	if (mount(NULL, dir, NULL, ro, NULL) < 0)
		goto fail;
	return 0;
fail:
	if (tree >= 0) {
		int saved = errno;

		close(tree);
		errno = saved;
	}
	return -1;
}

int sandbox_ns_setup(const struct spawn_req *req, const char *tmpfs_opts,
    const char **what_r)
{
	static const char *const tmp_dirs[] = {"/tmp", "/var/tmp", "/dev/shm"};
	const unsigned long nosuid_nodev = MS_NOSUID | MS_NODEV;

	/*
	 * First of all: stop mount events from propagating to the host.
	 * systemd makes / shared, so without this every mount below would
	 * appear in the host's namespace too (SANDBOX.md §0 fact 3).
	 */
	*what_r = "make / private";
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -1;

	/* Private, size-limited, world-writable (sticky) temporary dirs: a
	 * user can neither see others' temp files nor fill the host's RAM. */
	for (size_t i = 0; i < sizeof(tmp_dirs) / sizeof(tmp_dirs[0]); i++) {
		*what_r = tmp_dirs[i];
		if (mount("tmpfs", tmp_dirs[i], "tmpfs", nosuid_nodev,
		    tmpfs_opts) < 0)
			return -1;
	}

	/* Other users' homes, then lodged's own sockets, disappear. */
	for (int i = 0; i < req->nhide; i++)
		if (hide_dir(req->hide[i], req->home, what_r) < 0)
			return -1;
	*what_r = "hide " SANDBOX_RUN_DIR;
	if (mount("tmpfs", SANDBOX_RUN_DIR, "tmpfs", MS_NOSUID | MS_NODEV |
	    MS_NOEXEC | MS_RDONLY, "mode=0000,size=4k") < 0 && errno != ENOENT)
		return -1;

	/*
	 * A fresh /proc for this PID namespace, where only the worker's own
	 * processes exist, with hidepid=invisible on top: the host's /proc
	 * shows every user's command lines (§0 facts 4, 5).  The old one is
	 * detached first (with its submounts) so nothing of it remains
	 * reachable below the new one.
	 */
	*what_r = "detach host /proc";
	if (umount2("/proc", MNT_DETACH) < 0)
		return -1;
	*what_r = "mount /proc";
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	    "hidepid=invisible") < 0)
		return -1;

	/* No working directory inherited from lodged (CVE-2024-21626). */
	*what_r = "chdir /";
	return chdir("/");
}
