/*
 * log.c: the daemon's own log lines, on stderr.  Runs in every lodge
 * process (root launcher, unprivileged router, workers as the hosted user);
 * it never opens a file, so it can't be pointed at one by anybody.  Each
 * line is formatted in full and written with a single write(2) so that
 * lines of concurrent threads and processes never interleave.
 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Logging state: set once by log_init before threads start, read after. */
static const char *log_prog = "lodge";
static enum log_level log_min = LOG_LVL_INFO;

void log_init(const char *prog, enum log_level min_level)
{
	log_prog = prog;
	log_min = min_level;
}

void log_format_time(char *buf, long long ms)
{
	time_t sec = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&sec, &tm);
	snprintf(buf, 25, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
	static const char *const names[] = {"debug", "info", "warning",
	    "error"};
	char line[4096];
	char ts[32];
	struct timespec now;
	int saved = errno;
	int n, m;

	if (lvl < log_min)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	log_format_time(ts, (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
	n = snprintf(line, sizeof(line), "%s %s[%d]: %s: ", ts, log_prog,
	    (int)getpid(), names[lvl]);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* A failed write to stderr has nowhere to be reported. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		(void)0;
	errno = saved;
}

#define LOG_FN(fn, lvl)                                                   \
	void fn(const char *fmt, ...)                                     \
	{                                                                 \
		va_list ap;                                               \
		va_start(ap, fmt);                                        \
		log_vmsg(lvl, fmt, ap);                                   \
		va_end(ap);                                               \
	}
LOG_FN(log_debug, LOG_LVL_DEBUG)
LOG_FN(log_info, LOG_LVL_INFO)
LOG_FN(log_warn, LOG_LVL_WARN)
LOG_FN(log_error, LOG_LVL_ERROR)

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}
