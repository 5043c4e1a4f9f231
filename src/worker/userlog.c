/*
 * userlog.c: a hosted app's own log file (LOGDIR/NAME.log), fed by the
 * app's print() and logging output, wsgi.errors, and lodge's lines about
 * the app.  Runs in lodge-worker as the hosted user, so the file is created
 * and written with that user's rights only, and it is called from many
 * threads (and, with processes = N, many processes) at once.  It cuts the
 * output into lines and writes each one, timestamped, with a single
 * write(2)/writev(2) on an O_APPEND descriptor, so that lines of different
 * writers never interleave.  It must never let the app's bytes forge a
 * line (CR and other control characters become '?'), never truncate a
 * complete line, and never block anything but the writing thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "userlog.h"

#define USERLOG_TS_LEN 24       /* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
#define USERLOG_STACK_LINE 4096 /* longer lines are cleaned on the heap */
#define USERLOG_LODGE_PREFIX "lodge: " /* lodge's own lines */

struct userlog *userlog_open(const char *dir, const char *name)
{
	struct userlog *ul;
	char path[4096];
	int fd = -1;
	int saved;
	int n;

	if (dir != NULL) {
		/* The app name comes from a folder name; a '/' in it would
		 * put the log somewhere else. */
		if (name == NULL || *name == '\0' ||
		    strchr(name, '/') != NULL) {
			errno = EINVAL;
			return NULL;
		}
		n = snprintf(path, sizeof(path), "%s/%s.log", dir, name);
		if (n < 0 || (size_t)n >= sizeof(path)) {
			errno = ENAMETOOLONG;
			return NULL;
		}
		fd =
		    open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (fd == -1)
			return NULL;
	}
	ul = calloc(1, sizeof(*ul));
	if (ul == NULL) {
		saved = errno;
		if (fd != -1)
			close(fd);
		errno = saved;
		return NULL;
	}
	ul->fd = fd;
	pthread_mutex_init(&ul->lock, NULL);
	return ul;
}

/* CR would let an app's output rewrite what a terminal shows of the line
 * before it, LF would start a fake line, ESC would send terminal
 * commands to whoever reads the log with cat or tail: all become '?'.
 * TAB is harmless and common in tracebacks and tables. */
static void userlog_clean(char *dst, const char *src, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[i] = (c < 0x20 && c != '\t') || c == 0x7f ? '?' : (char)c;
	}
}

static long long userlog_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t userlog_format_line(
    char *out, size_t size, long long ms, const char *text, size_t len)
{
	size_t room;

	if (size < 32) {
		if (size > 0)
			out[0] = '\0';
		return 0;
	}
	if (len > 0 && text[len - 1] == '\n')
		len--;
	/* Timestamp, space, text, LF and a NUL for callers that print it. */
	room = size - (USERLOG_TS_LEN + 1) - 2;
	if (len > room)
		len = room;
	log_format_time(out, ms);
	out[USERLOG_TS_LEN] = ' ';
	userlog_clean(out + USERLOG_TS_LEN + 1, text, len);
	out[USERLOG_TS_LEN + 1 + len] = '\n';
	out[USERLOG_TS_LEN + 2 + len] = '\0';
	return USERLOG_TS_LEN + 2 + len;
}

/*
 * Writes all of iov with one writev(2) when the kernel takes it whole,
 * which on an O_APPEND regular file it does: the file's lock is held for
 * the whole call, so another process's line can't land inside this one.
 * A short write (disk full, a signal, a pipe) is continued, since half a
 * line followed by the rest is better than half a line.
 */
static int userlog_writev_all(int fd, struct iovec *iov, int iovcnt)
{
	while (iovcnt > 0) {
		ssize_t n = writev(fd, iov, iovcnt);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/*
 * Writes one line: "TIMESTAMP " + tag + head + raw + LF.  head is already
 * clean (the pending partial line); raw is cleaned here, into a stack
 * buffer or, for a long line, a heap one, so that a long line is written
 * whole and in one call.  Called with ul->lock held.
 */
static int userlog_emit(struct userlog *ul, const char *tag, const char *head,
    size_t head_len, const char *raw, size_t raw_len)
{
	char stack_buf[USERLOG_STACK_LINE];
	char ts[USERLOG_TS_LEN + 2];
	char *clean = stack_buf;
	struct iovec iov[5];
	int iovcnt = 0;
	int saved;
	int rc;

	if (raw_len > sizeof(stack_buf)) {
		clean = malloc(raw_len);
		if (clean == NULL)
			return -1;
	}
	userlog_clean(clean, raw, raw_len);

	log_format_time(ts, userlog_now_ms());
	ts[USERLOG_TS_LEN] = ' ';
	iov[iovcnt++] = (struct iovec){ts, USERLOG_TS_LEN + 1};
	if (tag != NULL)
		iov[iovcnt++] = (struct iovec){(char *)tag, strlen(tag)};
	if (head_len > 0)
		iov[iovcnt++] = (struct iovec){(char *)head, head_len};
	if (raw_len > 0)
		iov[iovcnt++] = (struct iovec){clean, raw_len};
	iov[iovcnt++] = (struct iovec){(char *)"\n", 1};

	rc = userlog_writev_all(
	    ul->fd != -1 ? ul->fd : STDERR_FILENO, iov, iovcnt);
	saved = errno;
	if (clean != stack_buf)
		free(clean);
	errno = saved;
	return rc;
}

/* Writes the pending partial line, if any; called with ul->lock held. */
static int userlog_emit_partial(struct userlog *ul)
{
	int rc = 0;

	if (ul->partial_len > 0)
		rc = userlog_emit(
		    ul, NULL, ul->partial, ul->partial_len, NULL, 0);
	ul->partial_len = 0;
	return rc;
}

int userlog_write(struct userlog *ul, const char *data, size_t len)
{
	int rc = 0;

	if (ul == NULL) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&ul->lock);
	while (len > 0 && rc == 0) {
		const char *nl = memchr(data, '\n', len);
		size_t n;

		if (nl != NULL) {
			/* A complete line: the partial, then this piece. */
			n = (size_t)(nl - data);
			rc = userlog_emit(
			    ul, NULL, ul->partial, ul->partial_len, data, n);
			ul->partial_len = 0;
			data += n + 1;
			len -= n + 1;
			continue;
		}
		/* No end of line yet: keep the bytes.  A partial line that
		 * outgrows its buffer is written as a line of its own (an
		 * app writing megabytes without LF must not grow us), but
		 * only when more bytes come, so that a line of exactly the
		 * buffer's size followed by LF stays one line. */
		if (ul->partial_len == USERLOG_MAX_PARTIAL) {
			rc = userlog_emit_partial(ul);
			if (rc == -1)
				break;
		}
		n = USERLOG_MAX_PARTIAL - ul->partial_len;
		if (n > len)
			n = len;
		userlog_clean(ul->partial + ul->partial_len, data, n);
		ul->partial_len += n;
		data += n;
		len -= n;
	}
	pthread_mutex_unlock(&ul->lock);
	return rc;
}

void userlog_flush(struct userlog *ul)
{
	if (ul == NULL)
		return;
	pthread_mutex_lock(&ul->lock);
	(void)userlog_emit_partial(ul);
	pthread_mutex_unlock(&ul->lock);
}

void userlog_printf(struct userlog *ul, const char *fmt, ...)
{
	char buf[1024];
	char *msg = buf;
	va_list ap;
	size_t len;
	int n;

	if (ul == NULL)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	len = (size_t)n;
	if (len >= sizeof(buf)) {
		msg = malloc(len + 1);
		if (msg != NULL) {
			va_start(ap, fmt);
			vsnprintf(msg, len + 1, fmt, ap);
			va_end(ap);
		} else {
			msg = buf; /* better cut than lost */
			len = sizeof(buf) - 1;
		}
	}

	pthread_mutex_lock(&ul->lock);
	/* The app's unfinished line goes first, so that the log reads in the
	 * order things happened ("Loading..." before the traceback). */
	(void)userlog_emit_partial(ul);
	for (size_t start = 0; start < len;) {
		const char *nl = memchr(msg + start, '\n', len - start);
		size_t end = nl != NULL ? (size_t)(nl - msg) : len;

		if (userlog_emit(ul, USERLOG_LODGE_PREFIX, NULL, 0, msg + start,
		        end - start) == -1)
			break;
		start = end + 1;
	}
	pthread_mutex_unlock(&ul->lock);
	if (msg != buf)
		free(msg);
}

void userlog_close(struct userlog *ul)
{
	if (ul == NULL)
		return;
	userlog_flush(ul);
	if (ul->fd != -1)
		close(ul->fd);
	pthread_mutex_destroy(&ul->lock);
	free(ul);
}
