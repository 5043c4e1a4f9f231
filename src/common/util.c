/*
 * util.c: small helpers shared by every lodge process.  Nothing here keeps
 * state; the listener helpers are used by whoever owns the sockets (the
 * worker in standalone mode, the launcher later).
 */
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int util_parse_listen(const char *spec, struct util_listen_spec *ls,
    const char **errstr_r)
{
	const char *hp, *colon;
	uint64_t port;
	size_t hlen;

	memset(ls, 0, sizeof(*ls));
	if (strncmp(spec, "unix:", 5) == 0) {
		const char *p = spec + 5;

		if (*p != '/') {
			*errstr_r = "unix: needs an absolute path";
			return -1;
		}
		if (strlen(p) >= sizeof(ls->path)) {
			*errstr_r = "unix socket path too long (max 107 bytes)";
			return -1;
		}
		ls->kind = UTIL_LISTEN_UNIX;
		strcpy(ls->path, p);
		return 0;
	}
	if (strncmp(spec, "tcp:", 4) != 0) {
		*errstr_r = "expected tcp:HOST:PORT or unix:PATH";
		return -1;
	}
	hp = spec + 4;
	if (*hp == '[') {
		const char *end = strchr(hp, ']');

		if (end == NULL || end[1] != ':') {
			*errstr_r = "expected tcp:[IPV6]:PORT";
			return -1;
		}
		hlen = (size_t)(end - hp - 1);
		hp++;
		colon = end + 1;
	} else {
		colon = strrchr(hp, ':');
		if (colon == NULL) {
			*errstr_r = "expected tcp:HOST:PORT";
			return -1;
		}
		hlen = (size_t)(colon - hp);
	}
	if (hlen == 0 || hlen >= sizeof(ls->host)) {
		*errstr_r = "missing or too long host in tcp:HOST:PORT";
		return -1;
	}
	memcpy(ls->host, hp, hlen);
	ls->host[hlen] = '\0';
	{
		struct in_addr a4;
		struct in6_addr a6;

		if (inet_pton(AF_INET, ls->host, &a4) != 1 &&
		    inet_pton(AF_INET6, ls->host, &a6) != 1) {
			*errstr_r = "host must be a numeric IPv4 or IPv6 address";
			return -1;
		}
	}
	if (util_parse_u64(colon + 1, 1, 65535, false, &port) < 0) {
		*errstr_r = "port must be a number from 1 to 65535";
		return -1;
	}
	ls->kind = UTIL_LISTEN_TCP;
	ls->port = (int)port;
	return 0;
}

int util_listen(const struct util_listen_spec *ls)
{
	int fd, one = 1, saved;

	if (ls->kind == UTIL_LISTEN_UNIX) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		struct stat st;

		strcpy(sun.sun_path, ls->path);
		/* Replace a stale socket, never anything else. */
		if (lstat(ls->path, &st) == 0) {
			if (!S_ISSOCK(st.st_mode)) {
				errno = EEXIST;
				return -1;
			}
			unlink(ls->path);
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
			goto fail;
	} else {
		struct sockaddr_storage ss;
		socklen_t sl;

		memset(&ss, 0, sizeof(ss));
		if (strchr(ls->host, ':') != NULL) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons((uint16_t)ls->port);
			inet_pton(AF_INET6, ls->host, &s6->sin6_addr);
			sl = sizeof(*s6);
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

			s4->sin_family = AF_INET;
			s4->sin_port = htons((uint16_t)ls->port);
			inet_pton(AF_INET, ls->host, &s4->sin_addr);
			sl = sizeof(*s4);
		}
		fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
			goto fail;
	}
	if (listen(fd, 1024) < 0)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int util_set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -1;
	fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	return fcntl(fd, F_SETFL, fl);
}

int64_t util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int util_parse_u64(const char *s, uint64_t min, uint64_t max, bool has_suffix,
    uint64_t *val_r)
{
	uint64_t v = 0, mult = 1;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (has_suffix && *p != '\0' && p[1] == '\0') {
		switch (*p) {
		case 'K': case 'k': mult = 1024ULL; p++; break;
		case 'M': case 'm': mult = 1024ULL * 1024; p++; break;
		case 'G': case 'g': mult = 1024ULL * 1024 * 1024; p++; break;
		default: return -1;
		}
	}
	if (*p != '\0')
		return -1;
	if (v != 0 && v > UINT64_MAX / mult)
		return -1;
	v *= mult;
	if (v < min || v > max)
		return -1;
	*val_r = v;
	return 0;
}
