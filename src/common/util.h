/*
 * util.h: small helpers shared by every lodge process: listener specs,
 * descriptor flags, clocks, strict number parsing.
 */
#ifndef LODGE_UTIL_H
#define LODGE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UTIL_MAX_PATH 108 /* sun_path */

enum util_listen_kind { UTIL_LISTEN_TCP, UTIL_LISTEN_UNIX };

/* A parsed listener spec: "tcp:HOST:PORT", "tcp:[V6]:PORT" or "unix:PATH". */
struct util_listen_spec {
	enum util_listen_kind kind;
	char host[64]; /* tcp: numeric address */
	int port;      /* tcp: 1..65535 */
	char path[UTIL_MAX_PATH];
};

/* Parses spec; returns 0 or -1 with *errstr_r set to a static reason.
 * Pure. */
int util_parse_listen(const char *spec, struct util_listen_spec *ls,
    const char **errstr_r);

/* Creates, binds and listens (backlog 1024) a non-blocking, close-on-exec
 * socket for ls.  A stale Unix socket file is replaced; a path that is not
 * a socket is never removed.  Returns the descriptor or -1 (errno). */
int util_listen(const struct util_listen_spec *ls);

int util_set_nonblock(int fd, bool on);

/* Milliseconds on the monotonic / real-time clock. */
int64_t util_now_ms(void);
int64_t util_wall_ms(void);
int64_t util_wall_ns(void);

/* Parses a whole decimal string into [min,max]; 0 or -1.  Pure.  Accepts
 * an optional K/M/G suffix (powers of 1024) when has_suffix. */
int util_parse_u64(const char *s, uint64_t min, uint64_t max, bool has_suffix,
    uint64_t *val_r);

#endif
