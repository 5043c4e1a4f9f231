/*
 * procinfo.h: what /proc says about a worker's processes (RSS, CPU, the
 * worker's pid under its namespace's init), for lodgectl status and
 * metrics.  Runs in lodged as root; reads /proc/PID/stat and
 * /proc/PID/task/TID/children only: kernel files, never a path inside a user's
 * home.  The parsers are pure, so the unit tests feed them text.
 */
#ifndef LODGE_PROCINFO_H
#define LODGE_PROCINFO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROCINFO_MAX_TREE 64 /* processes looked at under one init */

/* The fields of /proc/PID/stat that lodgectl shows. */
struct procinfo_stat {
	char state; /* R, S, D, Z, ... */
	pid_t ppid;
	uint64_t utime; /* clock ticks */
	uint64_t stime;
	int64_t cutime; /* waited-for children, clock ticks */
	int64_t cstime;
	long num_threads;
	uint64_t starttime; /* clock ticks after boot */
	uint64_t rss_pages;
};

/* Pure: parses the text of /proc/PID/stat (the command name may hold
 * spaces and parentheses: the fields start after the last ')').  0 or -1
 * if a field is missing or not a number. */
int procinfo_parse_stat(const char *text, size_t len, struct procinfo_stat *st);

/* Pure: the pids listed in text ("123 456 "), at most max of them into
 * out.  Returns how many, or -1 if text holds something else. */
int procinfo_parse_pids(const char *text, size_t len, pid_t *out, int max);

/* Reads and parses /proc/PID/stat.  0 or -1 (errno; ESRCH-like ENOENT
 * when the process is gone). */
int procinfo_read_stat(pid_t pid, struct procinfo_stat *st);

/* A worker slot's processes: its namespace's init and everything below. */
struct procinfo_tree {
	pid_t worker;       /* the init's first child (the worker), 0: none */
	unsigned nprocs;    /* processes below the init */
	uint64_t rss_bytes; /* sum of their resident sets, init included */
	double cpu_seconds; /* user + system time of them all, and of the
	                       ones that ended (the init's waited-for
	                       children) */
};

/*
 * Walks the processes under init (the pid lodged holds for a worker slot)
 * through /proc/PID/task/TID/children, at most PROCINFO_MAX_TREE of them.
 * Returns 0, or -1 if init itself cannot be read (it ended).  Can't block.
 */
int procinfo_tree(pid_t init, struct procinfo_tree *t);

#endif
