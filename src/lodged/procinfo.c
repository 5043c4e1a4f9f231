/*
 * procinfo.c: a worker slot's processes as /proc shows them: the worker's
 * pid (the child of the PID namespace's init that lodged holds), the
 * resident set and CPU time of everything in that namespace.  Runs in
 * lodged as root, for lodgectl status and metrics; it reads kernel files
 * under /proc/PID only (never a path inside a user's home, never a
 * symlink a user controls) and never blocks.
 */
#include "procinfo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads a small /proc file into buf (NUL-terminated); its length or -1. */
static ssize_t procinfo_read(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	size_t len = 0;
	int saved;

	if (fd < 0)
		return -1;
	while (len < size - 1) {
		ssize_t n = read(fd, buf + len, size - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

/* The next space-separated field of s[*pos..len) as a signed number. */
static int procinfo_field(const char *s, size_t len, size_t *pos, int64_t *v_r)
{
	size_t i = *pos;
	bool is_neg = false;
	uint64_t v = 0;

	while (i < len && s[i] == ' ')
		i++;
	if (i < len && s[i] == '-') {
		is_neg = true;
		i++;
	}
	if (i >= len || s[i] < '0' || s[i] > '9')
		return -1;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (i < len && s[i] != ' ' && s[i] != '\n')
		return -1;
	if (v > INT64_MAX)
		v = INT64_MAX;
	*v_r = is_neg ? -(int64_t)v : (int64_t)v;
	*pos = i;
	return 0;
}

int procinfo_parse_stat(const char *text, size_t len, struct procinfo_stat *st)
{
	/* Fields 3..24 of proc(5), counted from 3 (the state). */
	enum {
		F_PPID = 4,
		F_UTIME = 14,
		F_STIME,
		F_CUTIME,
		F_CSTIME,
		F_THREADS = 20,
		F_START = 22,
		F_RSS = 24
	};
	const char *paren = NULL;
	size_t pos;
	int64_t v;

	for (size_t i = 0; i < len; i++)
		if (text[i] == ')')
			paren = text + i;
	if (paren == NULL)
		return -1;
	pos = (size_t)(paren - text) + 1;
	if (pos + 2 > len || text[pos] != ' ')
		return -1;
	memset(st, 0, sizeof(*st));
	st->state = text[pos + 1];
	pos += 2;
	for (int field = F_PPID; field <= F_RSS; field++) {
		if (procinfo_field(text, len, &pos, &v) < 0)
			return -1;
		switch (field) {
		case F_PPID:
			st->ppid = (pid_t)v;
			break;
		case F_UTIME:
			st->utime = v < 0 ? 0 : (uint64_t)v;
			break;
		case F_STIME:
			st->stime = v < 0 ? 0 : (uint64_t)v;
			break;
		case F_CUTIME:
			st->cutime = v;
			break;
		case F_CSTIME:
			st->cstime = v;
			break;
		case F_THREADS:
			st->num_threads = (long)v;
			break;
		case F_START:
			st->starttime = v < 0 ? 0 : (uint64_t)v;
			break;
		case F_RSS:
			st->rss_pages = v < 0 ? 0 : (uint64_t)v;
			break;
		default:
			break;
		}
	}
	return 0;
}

int procinfo_parse_pids(const char *text, size_t len, pid_t *out, int max)
{
	size_t pos = 0;
	int n = 0;

	for (;;) {
		int64_t v;

		while (pos < len && (text[pos] == ' ' || text[pos] == '\n'))
			pos++;
		if (pos >= len)
			return n;
		if (procinfo_field(text, len, &pos, &v) < 0 || v <= 0 ||
		    v > INT32_MAX)
			return -1;
		if (n < max)
			out[n++] = (pid_t)v;
	}
}

int procinfo_read_stat(pid_t pid, struct procinfo_stat *st)
{
	char path[64], buf[1024];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	n = procinfo_read(path, buf, sizeof(buf));
	if (n < 0)
		return -1;
	if (procinfo_parse_stat(buf, (size_t)n, st) < 0) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/*
 * The children of every thread of pid: the kernel lists a child under
 * the thread that forked it, and a worker forks from its serving threads
 * too (a successor, an app's own process).
 */
static int procinfo_children(pid_t pid, pid_t *out, int max)
{
	char path[96], buf[4096];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (d == NULL)
		return 0;
	while (n < max && (de = readdir(d)) != NULL) {
		ssize_t len;
		int got;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.20s/children",
		    (int)pid, de->d_name);
		len = procinfo_read(path, buf, sizeof(buf));
		if (len <= 0)
			continue;
		got = procinfo_parse_pids(buf, (size_t)len, out + n, max - n);
		if (got > 0)
			n += got;
	}
	closedir(d);
	return n;
}

/* A process's CPU time and that of the children it waited for: summed
 * over the live processes of a namespace, that counts every process that
 * ever ran in it once (a replaced worker, an app's old process). */
static uint64_t procinfo_ticks(const struct procinfo_stat *st)
{
	return st->utime + st->stime +
	       (uint64_t)(st->cutime > 0 ? st->cutime : 0) +
	       (uint64_t)(st->cstime > 0 ? st->cstime : 0);
}

int procinfo_tree(pid_t init, struct procinfo_tree *t)
{
	pid_t todo[PROCINFO_MAX_TREE];
	struct procinfo_stat st;
	long tick = sysconf(_SC_CLK_TCK);
	long page = sysconf(_SC_PAGESIZE);
	uint64_t ticks;
	int ntodo, done;

	memset(t, 0, sizeof(*t));
	if (tick <= 0)
		tick = 100;
	if (procinfo_read_stat(init, &st) < 0)
		return -1;
	ticks = procinfo_ticks(&st);
	t->rss_bytes = st.rss_pages * (uint64_t)page;
	ntodo = procinfo_children(init, todo, PROCINFO_MAX_TREE);
	if (ntodo > 0)
		t->worker = todo[0];
	/* Breadth first: the list grows at its end while it is walked. */
	for (done = 0; done < ntodo; done++) {
		if (procinfo_read_stat(todo[done], &st) < 0)
			continue; /* it ended meanwhile */
		t->nprocs++;
		ticks += procinfo_ticks(&st);
		t->rss_bytes += st.rss_pages * (uint64_t)page;
		ntodo += procinfo_children(
		    todo[done], todo + ntodo, PROCINFO_MAX_TREE - ntodo);
	}
	t->cpu_seconds = (double)ticks / (double)tick;
	return 0;
}
