/*
 * userlog.h: a hosted app's log file (LOGDIR/NAME.log): its print() and
 * logging output, wsgi.errors, and lodge's own lines about it (import
 * errors, tracebacks).  Runs in lodge-worker as the hosted user, so the file
 * is opened as that user (never by root).  Every line gets a timestamp;
 * output is line-buffered so that a partial line waits for its end (or a
 * flush) and concurrent writers never mix inside one line.
 */
#ifndef LODGE_USERLOG_H
#define LODGE_USERLOG_H

#include <pthread.h>
#include <stddef.h>

#define USERLOG_MAX_PARTIAL 8192 /* a longer line without LF is cut there */

struct userlog {
	int fd; /* O_APPEND; -1: write to stderr */
	pthread_mutex_t lock;
	size_t partial_len;
	char partial[USERLOG_MAX_PARTIAL];
};

/* Opens (creating 0640, O_APPEND|O_CLOEXEC) dir/name.log.  dir NULL: the
 * log goes to stderr.  Returns NULL with errno set on failure. */
struct userlog *userlog_open(const char *dir, const char *name);

/* Appends data; each complete line is written with a timestamp prefix.
 * Thread-safe.  Returns 0 or -1 (errno; the data is dropped). */
int userlog_write(struct userlog *ul, const char *data, size_t len);

/* Writes a pending partial line, if any, as a line of its own. */
void userlog_flush(struct userlog *ul);

/* printf-style: one or more complete lines ("lodge: " prefix added). */
void userlog_printf(struct userlog *ul, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void userlog_close(struct userlog *ul);

/*
 * Pure: formats one line "TIMESTAMP text\n" into out (size bytes).  A
 * trailing LF in text is not repeated; CR and other control characters
 * except TAB are replaced by '?' so a line can't forge another.  ms is
 * milliseconds since the epoch.  Returns the length written (truncated to
 * fit, always ending in LF).  size must be at least 32.
 */
size_t userlog_format_line(char *out, size_t size, long long ms,
    const char *text, size_t len);

#endif
