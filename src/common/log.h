/*
 * log.h: the daemon's own log (not a hosted app's log: see worker/userlog.h).
 * Lines go to stderr as "TIMESTAMP PROG[PID]: LEVEL: message", one write(2)
 * per line so concurrent threads never interleave.  Used by every process.
 */
#ifndef LODGE_LOG_H
#define LODGE_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

/* Sets the program name shown in each line and the lowest level shown.
 * Call once at start-up, before any thread exists. */
void log_init(const char *prog, enum log_level min_level);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Logs at error level and exits 1.  Only at start-up or in a child before
 * exec (STYLE.md rule 4). */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Formats "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 bytes + NUL) for a time in
 * milliseconds since the epoch into buf (at least 25 bytes).  Pure. */
void log_format_time(char *buf, long long ms);

#endif
