/*
 * selfcheck.c: the worker checks its own sandbox from /proc/self/status.
 * Runs in lodge-worker, as the hosted user, with no capabilities, before
 * any user code; the parsing is pure so it is tested on status texts.  It
 * must never let a worker that fails a check go on: its caller refuses to
 * run user code when it returns -1.
 */
#include "selfcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SELFCHECK_MAX_GROUPS 256

/* The value of "Key:\t..." (up to the end of its line), or NULL. */
static const char *field(const char *text, const char *key, size_t *len_r)
{
	size_t klen = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
		if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
			const char *v = p + klen + 1, *end;

			while (*v == ' ' || *v == '\t')
				v++;
			end = strchr(v, '\n');
			*len_r = end ? (size_t)(end - v) : strlen(v);
			while (*len_r && (v[*len_r - 1] == ' ' ||
			    v[*len_r - 1] == '\t' || v[*len_r - 1] == '\r'))
				(*len_r)--;
			return v;
		}
	}
	return NULL;
}

/* Parses up to max unsigned numbers (base 10 or 16) separated by blanks;
 * the count, or -1 when something else is there. */
static int numbers(const char *v, size_t len, int base, uint64_t *out, int max)
{
	char buf[4096];
	char *p, *end;
	int n = 0;

	if (len >= sizeof(buf))
		return -1;
	memcpy(buf, v, len);
	buf[len] = '\0';
	for (p = buf; *p;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		if (n == max || !((*p >= '0' && *p <= '9') ||
		    (base == 16 && ((*p >= 'a' && *p <= 'f') ||
		    (*p >= 'A' && *p <= 'F')))))
			return -1;
		errno = 0;
		out[n++] = strtoull(p, &end, base);
		if (errno || (*end && *end != ' ' && *end != '\t'))
			return -1;
		p = end;
	}
	return n;
}

__attribute__((format(printf, 3, 4)))
static int fail(char *why, size_t whysize, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whysize, fmt, ap);
	va_end(ap);
	return -1;
}

static int expect_one(const char *text, const char *key, int base,
    uint64_t want, char *why, size_t whysize)
{
	uint64_t v;
	size_t len;
	const char *s = field(text, key, &len);

	if (!s)
		return fail(why, whysize, "%s is missing from /proc/self/status", key);
	if (numbers(s, len, base, &v, 1) != 1)
		return fail(why, whysize, "%s: cannot parse '%.*s'", key, (int)len, s);
	if (v != want)
		return fail(why, whysize, "%s is %.*s, expected %" PRIu64, key,
		    (int)len, s, want);
	return 0;
}

static int expect_ids(const char *text, const char *key, uint64_t want,
    char *why, size_t whysize)
{
	uint64_t v[4];
	size_t len;
	const char *s = field(text, key, &len);

	if (!s)
		return fail(why, whysize, "%s is missing from /proc/self/status", key);
	if (numbers(s, len, 10, v, 4) != 4)
		return fail(why, whysize, "%s: cannot parse '%.*s'", key, (int)len, s);
	for (int i = 0; i < 4; i++)
		if (v[i] != want)
			return fail(why, whysize, "%s is '%.*s', expected %" PRIu64
			    " four times", key, (int)len, s, want);
	return 0;
}

static bool in_list(uint64_t v, const uint64_t *list, int n)
{
	for (int i = 0; i < n; i++)
		if (list[i] == v)
			return true;
	return false;
}

int selfcheck_status(const char *text, const struct selfcheck_expect *e,
    char *why, size_t whysize)
{
	static const char *const caps[] = {"CapEff", "CapPrm", "CapBnd", "CapAmb"};
	uint64_t groups[SELFCHECK_MAX_GROUPS], want[SELFCHECK_MAX_GROUPS];
	const char *s;
	size_t len;
	int n;

	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		if (expect_one(text, caps[i], 16, 0, why, whysize) < 0)
			return -1;
	if (expect_one(text, "NoNewPrivs", 10, 1, why, whysize) < 0 ||
	    expect_one(text, "Seccomp", 10, 2, why, whysize) < 0 ||
	    expect_ids(text, "Uid", e->uid, why, whysize) < 0 ||
	    expect_ids(text, "Gid", e->gid, why, whysize) < 0)
		return -1;
	s = field(text, "Groups", &len);
	if (!s)
		return fail(why, whysize, "Groups is missing from /proc/self/status");
	n = numbers(s, len, 10, groups, SELFCHECK_MAX_GROUPS);
	if (n < 0 || e->ngroups < 0 || e->ngroups > SELFCHECK_MAX_GROUPS)
		return fail(why, whysize, "Groups: cannot parse '%.*s'", (int)len, s);
	for (int i = 0; i < e->ngroups; i++)
		want[i] = e->groups[i];
	for (int i = 0; i < n; i++)
		if (!in_list(groups[i], want, e->ngroups))
			return fail(why, whysize, "Groups has %" PRIu64 ", which "
			    "was not asked for", groups[i]);
	for (int i = 0; i < e->ngroups; i++)
		if (!in_list(want[i], groups, n))
			return fail(why, whysize, "Groups lacks %" PRIu64, want[i]);
	return 0;
}

int selfcheck_run(const struct selfcheck_expect *e, char *why, size_t whysize)
{
	char buf[8192];
	size_t got = 0;
	ssize_t n;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fail(why, whysize, "/proc/self/status: %s", strerror(errno));
	while (got < sizeof(buf) - 1 &&
	    (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	return selfcheck_status(buf, e, why, whysize);
}
