/*
 * test_msg.c: tests of src/common/msg.c, the framing of lodge's internal
 * messages.  msg_decode is pure and gets a table of datagrams (each copied
 * into a buffer of exactly its size, so that AddressSanitizer sees a read
 * past the end): short, unknown types, lengths that disagree with the
 * header, per-type payload and descriptor rules, and a valid message of
 * each type.  msg_send and msg_recv run over real SOCK_SEQPACKET
 * socketpairs: round trips with and without a descriptor (the received one
 * must be new, close-on-exec and refer to the same file), then a hostile
 * peer: garbage datagrams, two or five descriptors, a datagram larger than
 * the buffer, a closed peer and an empty socket; msg_recv_small's batches
 * of small messages likewise.  Every case that drops a
 * descriptor counts the entries of /proc/self/fd before and after, so a
 * leak fails the test.  Runs as any user.
 */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "msg.h"

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))
#define HDR sizeof(struct msg_hdr)
#define RECV_SIZE (HDR + MSG_MAX_PAYLOAD)

/* ---------------------------------------------------------------------- */
/* msg_decode                                                             */
/* ---------------------------------------------------------------------- */

/* A datagram: a header (type, len as written) followed by payload bytes.
 * n_short > 0 gives a datagram of only that many header bytes. */
struct decode_row {
	const char *name;
	uint32_t type;
	uint32_t len;   /* the header's length field */
	size_t payload; /* payload bytes actually present */
	size_t n_short; /* 1..HDR-1: a truncated header of this size */
	bool is_empty;  /* a datagram of 0 bytes */
	int has_fd;
	int ret;
	const char *err; /* a word of *errstr_r when ret is -1 */
	const char *data; /* the payload's bytes; NULL: a pattern */
};

#define OK_ROW(nm, t, l, fd)                                                   \
	{                                                                      \
		.name = nm, .type = t, .len = l, .payload = l, .has_fd = fd,   \
		.ret = 0                                                       \
	}
#define BAD_ROW(nm, t, l, p, fd, e)                                            \
	{                                                                      \
		.name = nm, .type = t, .len = l, .payload = p, .has_fd = fd,   \
		.ret = -1, .err = e                                            \
	}
/* A row whose payload is the bytes of a string literal (a user name, a
 * record with a user name). */
#define NAME_ROW(nm, t, s, fd, r, e)                                           \
	{                                                                      \
		.name = nm, .type = t, .len = sizeof(s) - 1,                   \
		.payload = sizeof(s) - 1, .has_fd = fd, .ret = r, .err = e,    \
		.data = s                                                      \
	}

static const struct decode_row decode_rows[] = {
    {.name = "empty datagram", .is_empty = true, .ret = -1, .err = "shorter"},
    {.name = "1 byte", .n_short = 1, .ret = -1, .err = "shorter"},
    {.name = "header less one byte",
        .n_short = HDR - 1,
        .ret = -1,
        .err = "shorter"},
    BAD_ROW("type 0", 0, 0, 0, 0, "unknown"),
    BAD_ROW("type 0 with a descriptor", 0, 0, 0, 1, "unknown"),
    BAD_ROW("type MSG_TYPE_MAX", MSG_TYPE_MAX, 0, 0, 0, "unknown"),
    BAD_ROW("type 0xffffffff", 0xffffffffu, 0, 0, 0, "unknown"),
    BAD_ROW("type 0x80000001", 0x80000001u, 0, 0, 0, "unknown"),
    BAD_ROW("header claims more than present", MSG_CONN, 10, 5, 1, "length"),
    BAD_ROW("header claims less than present", MSG_CONN, 5, 10, 1, "length"),
    BAD_ROW(
        "header claims a payload, none present", MSG_READY, 1, 0, 0, "length"),
    BAD_ROW("header claims 0xffffffff", MSG_CONN, 0xffffffffu, 16, 1, "length"),
    BAD_ROW("payload over MSG_MAX_PAYLOAD", MSG_CONN, MSG_MAX_PAYLOAD + 1,
        MSG_MAX_PAYLOAD + 1, 1, "length"),
    BAD_ROW("HELLO too short", MSG_HELLO, sizeof(struct msg_hello) - 1,
        sizeof(struct msg_hello) - 1, 0, "HELLO"),
    BAD_ROW("HELLO too long", MSG_HELLO, sizeof(struct msg_hello) + 1,
        sizeof(struct msg_hello) + 1, 0, "HELLO"),
    BAD_ROW("HELLO empty", MSG_HELLO, 0, 0, 0, "HELLO"),
    BAD_ROW("HELLO with a descriptor", MSG_HELLO, sizeof(struct msg_hello),
        sizeof(struct msg_hello), 1, "HELLO"),
    BAD_ROW("READY with a payload", MSG_READY, 1, 1, 0, "carry nothing"),
    BAD_ROW("READY with a descriptor", MSG_READY, 0, 0, 1, "carry nothing"),
    BAD_ROW("DRAIN with a payload", MSG_DRAIN, 4, 4, 0, "carry nothing"),
    BAD_ROW("DRAIN with a descriptor", MSG_DRAIN, 0, 0, 1, "carry nothing"),
    BAD_ROW("RELOAD with a payload", MSG_RELOAD, 8, 8, 0, "carry nothing"),
    BAD_ROW("RELOAD with a descriptor", MSG_RELOAD, 0, 0, 1, "carry nothing"),
    BAD_ROW("CONN without a descriptor", MSG_CONN, 0, 0, 0, "descriptor"),
    BAD_ROW("CONN with bytes, without a descriptor", MSG_CONN, 18, 18, 0,
        "descriptor"),
    OK_ROW("HELLO", MSG_HELLO, sizeof(struct msg_hello), 0),
    OK_ROW("READY", MSG_READY, 0, 0),
    OK_ROW("DRAIN", MSG_DRAIN, 0, 0),
    OK_ROW("RELOAD", MSG_RELOAD, 0, 0),
    OK_ROW("CONN without bytes", MSG_CONN, 0, 1),
    OK_ROW("CONN with bytes", MSG_CONN, 18, 1),
    OK_ROW("CONN with MSG_MAX_PAYLOAD bytes", MSG_CONN, MSG_MAX_PAYLOAD, 1),
    /* The router's messages (proto.h version 2). */
    OK_ROW("FRONT", MSG_FRONT, sizeof(struct msg_front) + 1, 1),
    BAD_ROW("FRONT without a descriptor", MSG_FRONT,
        sizeof(struct msg_front) + 1, sizeof(struct msg_front) + 1, 0, "FRONT"),
    BAD_ROW("FRONT of only its record", MSG_FRONT, sizeof(struct msg_front),
        sizeof(struct msg_front), 1, "FRONT"),
    BAD_ROW("FRONT empty", MSG_FRONT, 0, 0, 1, "FRONT"),
    OK_ROW("DONE", MSG_DONE, sizeof(struct msg_done), 0),
    BAD_ROW("DONE too short", MSG_DONE, sizeof(struct msg_done) - 1,
        sizeof(struct msg_done) - 1, 0, "DONE"),
    BAD_ROW("DONE too long", MSG_DONE, sizeof(struct msg_done) + 1,
        sizeof(struct msg_done) + 1, 0, "DONE"),
    BAD_ROW("DONE with a descriptor", MSG_DONE, sizeof(struct msg_done),
        sizeof(struct msg_done), 1, "DONE"),
    OK_ROW("BADPEER", MSG_BADPEER, sizeof(struct msg_badpeer), 0),
    BAD_ROW("BADPEER empty", MSG_BADPEER, 0, 0, 0, "BADPEER"),
    BAD_ROW("BADPEER too long", MSG_BADPEER, sizeof(struct msg_badpeer) + 4,
        sizeof(struct msg_badpeer) + 4, 0, "BADPEER"),
    BAD_ROW("BADPEER with a descriptor", MSG_BADPEER,
        sizeof(struct msg_badpeer), sizeof(struct msg_badpeer), 1, "BADPEER"),
    NAME_ROW("START", MSG_START, "alice", 0, 0, NULL),
    NAME_ROW("NOUSER", MSG_NOUSER, "bob.smith-2", 0, 0, NULL),
    NAME_ROW("MSG_FAILED", MSG_FAILED, "_carol", 0, 0, NULL),
    NAME_ROW("START empty", MSG_START, "", 0, -1, "user name"),
    NAME_ROW("START with a descriptor", MSG_START, "alice", 1, -1,
        "user name"),
    NAME_ROW("START with an upper-case name", MSG_START, "Alice", 0, -1,
        "user name"),
    NAME_ROW("NOUSER with a NUL", MSG_NOUSER, "bob\0", 0, -1, "user name"),
    NAME_ROW("MSG_FAILED with a slash", MSG_FAILED, "../root", 0, -1,
        "user name"),
    NAME_ROW("MSG_FAILED with a leading dash", MSG_FAILED, "-carol", 0, -1,
        "user name"),
    NAME_ROW("START with 33 bytes", MSG_START,
        "abcdefghijklmnopqrstuvwxyz0123456", 0, -1, "user name"),
    NAME_ROW("START with 32 bytes", MSG_START,
        "abcdefghijklmnopqrstuvwxyz012345", 0, 0, NULL),
    NAME_ROW("WORKER", MSG_WORKER, "\x07\0\0\0alice", 1, 0, NULL),
    NAME_ROW("WORKER without a descriptor", MSG_WORKER, "\x07\0\0\0alice", 0,
        -1, "WORKER"),
    NAME_ROW("WORKER without a name", MSG_WORKER, "\x07\0\0\0", 1, -1,
        "WORKER"),
    NAME_ROW("WORKER shorter than its record", MSG_WORKER, "\x07\0", 1, -1,
        "WORKER"),
    NAME_ROW("WORKER with a bad name", MSG_WORKER, "\x07\0\0\0al ice", 1, -1,
        "WORKER"),
    /* lodged ⇄ worker: RELOAD_APP (STATS has rows of its own below). */
    NAME_ROW("RELOAD_APP", MSG_RELOAD_APP, "blog", 0, 0, NULL),
    NAME_ROW("RELOAD_APP: every allowed kind", MSG_RELOAD_APP,
        "My.app_2-x", 0, 0, NULL),
    NAME_ROW("RELOAD_APP: 64 bytes", MSG_RELOAD_APP,
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_-", 0,
        0, NULL),
    NAME_ROW("RELOAD_APP: 65 bytes", MSG_RELOAD_APP,
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_-x",
        0, -1, "app name"),
    NAME_ROW("RELOAD_APP: empty", MSG_RELOAD_APP, "", 0, -1, "app name"),
    NAME_ROW("RELOAD_APP: with a descriptor", MSG_RELOAD_APP, "blog", 1, -1,
        "app name"),
    NAME_ROW("RELOAD_APP: slash", MSG_RELOAD_APP, "../blog", 0, -1,
        "app name"),
    NAME_ROW("RELOAD_APP: leading dot", MSG_RELOAD_APP, ".blog", 0, -1,
        "app name"),
    NAME_ROW("RELOAD_APP: leading dash", MSG_RELOAD_APP, "-blog", 0, -1,
        "app name"),
    NAME_ROW("RELOAD_APP: trailing NUL", MSG_RELOAD_APP, "blog\0", 0, -1,
        "app name"),
    NAME_ROW("RELOAD_APP: space", MSG_RELOAD_APP, "my blog", 0, -1,
        "app name"),
    NAME_ROW("RELOAD_APP: newline", MSG_RELOAD_APP, "blog\n", 0, -1,
        "app name"),
    NAME_ROW("RELOAD_APP: high byte", MSG_RELOAD_APP, "caf\xc3\xa9", 0, -1,
        "app name"),
    BAD_ROW("STATS empty", MSG_STATS, 0, 0, 0, "STATS"),
    BAD_ROW("STATS shorter than its record", MSG_STATS,
        sizeof(struct msg_stats) - 1, sizeof(struct msg_stats) - 1, 0,
        "STATS"),
};

static void test_decode_row(void **state)
{
	const struct decode_row *row = *state;
	size_t n = row->is_empty      ? 0
	           : row->n_short > 0 ? row->n_short
	                              : HDR + row->payload;
	struct msg_hdr h = {.type = row->type, .len = row->len};
	/* malloc(0) may return NULL: one spare byte, never handed over. */
	uint8_t *buf = malloc(n > 0 ? n : 1);
	struct msg m = {.type = 0, .payload = NULL, .len = 0, .fd = 1234};
	const char *err = NULL;
	int rc;

	assert_non_null(buf);
	if (n >= HDR) {
		memcpy(buf, &h, HDR);
		for (size_t i = 0; i < row->payload; i++)
			buf[HDR + i] = row->data != NULL
			                   ? (uint8_t)row->data[i]
			                   : (uint8_t)(i * 7 + 1);
	} else {
		memcpy(buf, &h, n);
	}
	rc = msg_decode(buf, n, row->has_fd, &m, &err);
	if (rc != row->ret)
		fail_msg("case \"%s\": msg_decode returned %d (%s), want %d",
		    row->name, rc, err ? err : "no error", row->ret);
	if (rc < 0) {
		if (err == NULL || strstr(err, row->err) == NULL)
			fail_msg("case \"%s\": error \"%s\", want one with "
			         "\"%s\"",
			    row->name, err ? err : "(null)", row->err);
	} else {
		assert_int_equal(m.type, row->type);
		assert_ptr_equal(m.payload, buf + HDR);
		assert_int_equal(m.len, row->len);
	}
	/* The descriptor is the caller's business. */
	assert_int_equal(m.fd, 1234);
	free(buf);
}

/* ---------------------------------------------------------------------- */
/* Helpers for the socket cases                                            */
/* ---------------------------------------------------------------------- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n;
}

static void seqpacket_pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
}

/* Sends a raw datagram with nfds descriptors (each fd), bypassing msg_send
 * so that the peer can lie. */
static void raw_send(
    int sock, const void *data, size_t len, const int *fds, int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} cm;
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	assert_true(nfds <= 8);
	if (nfds > 0) {
		struct cmsghdr *c;

		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	assert_int_equal(sendmsg(sock, &mh, 0), (ssize_t)len);
}

static uint8_t *recv_buf(void)
{
	uint8_t *b = malloc(RECV_SIZE);

	assert_non_null(b);
	return b;
}

/* The next message on sock must be the well-formed DRAIN sent after a bad
 * one: one bad datagram never spoils the next. */
static void expect_drain_next(int sock, uint8_t *buf)
{
	struct msg m;
	const char *err = NULL;

	assert_int_equal(msg_recv(sock, buf, RECV_SIZE, &m, &err), 1);
	assert_int_equal(m.type, MSG_DRAIN);
	assert_int_equal(m.len, 0);
	assert_int_equal(m.fd, -1);
}

/* ---------------------------------------------------------------------- */
/* Round trips                                                             */
/* ---------------------------------------------------------------------- */

struct trip_row {
	const char *name;
	enum msg_type type;
	size_t len; /* payload bytes (a pattern) */
	bool has_fd;
};

static const struct trip_row trip_rows[] = {
    {"round trip HELLO", MSG_HELLO, sizeof(struct msg_hello), false},
    {"round trip READY", MSG_READY, 0, false},
    {"round trip DRAIN", MSG_DRAIN, 0, false},
    {"round trip RELOAD", MSG_RELOAD, 0, false},
    {"round trip CONN without bytes", MSG_CONN, 0, true},
    {"round trip CONN with bytes", MSG_CONN, 517, true},
    {"round trip CONN with MSG_MAX_PAYLOAD bytes", MSG_CONN, MSG_MAX_PAYLOAD,
        true},
};

static void test_round_trip(void **state)
{
	const struct trip_row *row = *state;
	uint8_t *payload = malloc(row->len + 1), *buf = recv_buf();
	int sv[2], p[2] = {-1, -1}, before;
	struct msg m;
	const char *err = NULL;

	assert_non_null(payload);
	for (size_t i = 0; i < row->len; i++)
		payload[i] = (uint8_t)(i * 13 + 5);
	if (row->type == MSG_HELLO) {
		struct msg_hello hello = {LODGE_PROTO_VERSION, 4242};

		memcpy(payload, &hello, sizeof(hello));
	}
	seqpacket_pair(sv);
	if (row->has_fd)
		assert_int_equal(pipe(p), 0);
	before = count_fds();

	assert_int_equal(msg_send(sv[0], row->type, row->len ? payload : NULL,
	                     row->len, row->has_fd ? p[1] : -1),
	    0);
	assert_int_equal(msg_recv(sv[1], buf, RECV_SIZE, &m, &err), 1);
	assert_int_equal(m.type, row->type);
	assert_int_equal(m.len, row->len);
	assert_ptr_equal(m.payload, buf + HDR);
	assert_memory_equal(m.payload, payload, row->len);
	if (!row->has_fd) {
		assert_int_equal(m.fd, -1);
		assert_int_equal(count_fds(), before);
	} else {
		struct stat st_sent, st_got;
		char out[8];

		/* A new descriptor, close-on-exec, for the same pipe. */
		assert_true(m.fd >= 0);
		assert_int_not_equal(m.fd, p[1]);
		assert_int_not_equal(m.fd, p[0]);
		assert_int_equal(count_fds(), before + 1);
		assert_true(fcntl(m.fd, F_GETFD) & FD_CLOEXEC);
		assert_int_equal(fstat(p[1], &st_sent), 0);
		assert_int_equal(fstat(m.fd, &st_got), 0);
		assert_int_equal(st_got.st_dev, st_sent.st_dev);
		assert_int_equal(st_got.st_ino, st_sent.st_ino);
		/* It works, and keeps working once the sent one is closed. */
		close(p[1]);
		assert_int_equal(write(m.fd, "ping", 4), 4);
		assert_int_equal(read(p[0], out, sizeof(out)), 4);
		assert_memory_equal(out, "ping", 4);
		close(m.fd);
		close(p[0]);
	}
	/* Nothing else arrived. */
	assert_int_equal(msg_recv(sv[1], buf, RECV_SIZE, &m, &err), -1);
	assert_int_equal(errno, EAGAIN);
	close(sv[0]);
	close(sv[1]);
	free(payload);
	free(buf);
}

/* Several messages queued: each msg_recv returns exactly one, in order. */
static void test_boundaries(void **state)
{
	uint8_t *buf = recv_buf();
	struct msg_hello hello = {LODGE_PROTO_VERSION, 7};
	int sv[2], p[2];
	struct msg m;
	const char *err = NULL;

	seqpacket_pair(sv);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(
	    msg_send(sv[0], MSG_HELLO, &hello, sizeof(hello), -1), 0);
	assert_int_equal(msg_send(sv[0], MSG_CONN, "abc", 3, p[0]), 0);
	assert_int_equal(msg_send(sv[0], MSG_READY, NULL, 0, -1), 0);

	assert_int_equal(msg_recv(sv[1], buf, RECV_SIZE, &m, &err), 1);
	assert_int_equal(m.type, MSG_HELLO);
	assert_int_equal(m.fd, -1);
	assert_memory_equal(m.payload, &hello, sizeof(hello));
	assert_int_equal(msg_recv(sv[1], buf, RECV_SIZE, &m, &err), 1);
	assert_int_equal(m.type, MSG_CONN);
	assert_int_equal(m.len, 3);
	assert_memory_equal(m.payload, "abc", 3);
	assert_true(m.fd >= 0);
	close(m.fd);
	assert_int_equal(msg_recv(sv[1], buf, RECV_SIZE, &m, &err), 1);
	assert_int_equal(m.type, MSG_READY);
	assert_int_equal(m.fd, -1);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
	free(buf);
}

static void test_send_too_large(void **state)
{
	char *big = calloc(1, MSG_MAX_PAYLOAD + 1);
	uint8_t *buf = recv_buf();
	int sv[2];
	struct msg m;
	const char *err = NULL;

	assert_non_null(big);
	seqpacket_pair(sv);
	errno = 0;
	assert_int_equal(
	    msg_send(sv[0], MSG_CONN, big, MSG_MAX_PAYLOAD + 1, 0), -1);
	assert_int_equal(errno, EMSGSIZE);
	/* Nothing went out. */
	assert_int_equal(msg_recv(sv[1], buf, RECV_SIZE, &m, &err), -1);
	assert_int_equal(errno, EAGAIN);
	close(sv[0]);
	close(sv[1]);
	free(big);
	free(buf);
}

/* The receiver went away: -1 with EPIPE, and no SIGPIPE (lodge's
 * processes must survive a dead peer whatever their signal setup).
 * SIGPIPE is blocked around the call, so that one raised would be seen
 * pending instead of killing the test or vanishing into SIG_IGN. */
static void test_send_peer_gone(void **state)
{
	struct timespec zero = {0, 0};
	sigset_t pipe_set, old, pending;
	int sv[2];

	seqpacket_pair(sv);
	close(sv[1]);
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	assert_int_equal(pthread_sigmask(SIG_BLOCK, &pipe_set, &old), 0);
	errno = 0;
	assert_int_equal(msg_send(sv[0], MSG_READY, NULL, 0, -1), -1);
	assert_int_equal(errno, EPIPE);
	sigpending(&pending);
	if (sigismember(&pending, SIGPIPE)) {
		sigtimedwait(&pipe_set, NULL, &zero);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		fail_msg("msg_send raised SIGPIPE");
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(sv[0]);
}

/* ---------------------------------------------------------------------- */
/* A hostile peer                                                          */
/* ---------------------------------------------------------------------- */

struct garbage_row {
	const char *name;
	size_t len;       /* datagram bytes */
	uint32_t type;    /* when len >= HDR */
	uint32_t hdr_len; /* the header's length field */
	int nfds;         /* descriptors attached (copies of a pipe's end) */
	size_t recv_size; /* 0: RECV_SIZE */
	const char *err;  /* a word of *errstr_r */
	bool is_passcred; /* the receiver asks for SCM_CREDENTIALS */
};

static const struct garbage_row garbage_rows[] = {
    {"garbage: 3 bytes", 3, 0, 0, 0, 0, "shorter", false},
    {"garbage: 3 bytes with a descriptor", 3, 0, 0, 1, 0, "shorter", false},
    {"garbage: header claims a longer payload", HDR + 4, MSG_CONN, 100, 1, 0,
        "length", false},
    {"garbage: header claims a shorter payload", HDR + 100, MSG_CONN, 4, 1, 0,
        "length", false},
    {"garbage: unknown type", HDR, 99, 0, 0, 0, "unknown", false},
    {"garbage: HELLO with a descriptor", HDR + sizeof(struct msg_hello),
        MSG_HELLO, sizeof(struct msg_hello), 1, 0, "HELLO", false},
    {"garbage: DRAIN with a descriptor", HDR, MSG_DRAIN, 0, 1, 0,
        "carry nothing", false},
    {"garbage: CONN without a descriptor", HDR + 4, MSG_CONN, 4, 0, 0,
        "descriptor", false},
    {"garbage: two descriptors", HDR + 4, MSG_CONN, 4, 2, 0, "more than one",
        false},
    {"garbage: two descriptors on READY", HDR, MSG_READY, 0, 2, 0,
        "more than one", false},
    {"garbage: five descriptors (control data truncated)", HDR + 4, MSG_CONN, 4,
        5, 0, "truncated", false},
    {"garbage: datagram larger than the buffer", HDR + MSG_MAX_PAYLOAD + 1,
        MSG_CONN, MSG_MAX_PAYLOAD + 1, 0, 0, "truncated", false},
    {"garbage: datagram larger than the buffer, with a descriptor",
        HDR + MSG_MAX_PAYLOAD + 1, MSG_CONN, MSG_MAX_PAYLOAD + 1, 1, 0,
        "truncated", false},
    {"garbage: valid CONN larger than a small buffer", HDR + 64, MSG_CONN, 64,
        1, HDR + 32, "truncated", false},
    {"garbage: empty datagram with a descriptor", 0, 0, 0, 1, 0, "shorter",
        false},
    {"garbage: credentials", HDR, MSG_READY, 0, 0, 0, "unexpected", true},
    {"garbage: credentials and a descriptor", HDR + 4, MSG_CONN, 4, 1, 0,
        "truncated", true},
};

static void test_garbage(void **state)
{
	const struct garbage_row *row = *state;
	size_t recv_size = row->recv_size ? row->recv_size : RECV_SIZE;
	uint8_t *data = calloc(1, row->len + 1), *buf = recv_buf();
	struct msg_hdr h = {.type = row->type, .len = row->hdr_len};
	struct msg m = {.fd = 1234};
	int sv[2], p[2], fds[8], before, rc;
	const char *err = NULL;

	assert_non_null(data);
	if (row->len >= HDR)
		memcpy(data, &h, HDR);
	else
		memcpy(data, "\x01\x02\x03", row->len);
	seqpacket_pair(sv);
	assert_int_equal(pipe(p), 0);
	for (int i = 0; i < row->nfds; i++)
		fds[i] = i % 2 ? p[0] : p[1];
	if (row->is_passcred) {
		int on = 1;

		assert_int_equal(
		    setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)),
		    0);
	}
	before = count_fds();

	raw_send(sv[0], data, row->len, fds, row->nfds);
	assert_int_equal(msg_send(sv[0], MSG_DRAIN, NULL, 0, -1), 0);
	rc = msg_recv(sv[1], buf, recv_size, &m, &err);
	if (rc != -2)
		fail_msg("case \"%s\": msg_recv returned %d, want -2",
		    row->name, rc);
	if (err == NULL || strstr(err, row->err) == NULL)
		fail_msg("case \"%s\": error \"%s\", want one with \"%s\"",
		    row->name, err ? err : "(null)", row->err);
	/* Every descriptor that came with it is closed already. */
	if (count_fds() != before)
		fail_msg("case \"%s\": %d descriptors open, %d before",
		    row->name, count_fds(), before);
	assert_int_equal(m.fd, 1234);
	if (row->is_passcred) {
		int off = 0;

		assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED,
		                     &off, sizeof(off)),
		    0);
	}
	expect_drain_next(sv[1], buf);
	assert_int_equal(count_fds(), before);

	/* The pipe's ends the sender kept still work: a received copy was
	 * closed, not the original. */
	assert_int_equal(write(p[1], "x", 1), 1);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
	free(data);
	free(buf);
}

static void test_peer_closed(void **state)
{
	uint8_t *buf = recv_buf();
	int sv[2];
	struct msg m;
	const char *err = NULL;

	seqpacket_pair(sv);
	/* A message queued before the close is still delivered. */
	assert_int_equal(msg_send(sv[0], MSG_RELOAD, NULL, 0, -1), 0);
	close(sv[0]);
	assert_int_equal(msg_recv(sv[1], buf, RECV_SIZE, &m, &err), 1);
	assert_int_equal(m.type, MSG_RELOAD);
	assert_int_equal(msg_recv(sv[1], buf, RECV_SIZE, &m, &err), 0);
	assert_int_equal(msg_recv(sv[1], buf, RECV_SIZE, &m, &err), 0);
	close(sv[1]);
	free(buf);
}

/* An empty datagram from a live peer can't be told from the end of the
 * stream by recvmsg: msg_recv may call it either the end (0) or garbage
 * (-2), both of which cut the peer off, but never a message. */
static void test_empty_datagram(void **state)
{
	uint8_t *buf = recv_buf();
	int sv[2], rc;
	struct msg m;
	const char *err = NULL;

	seqpacket_pair(sv);
	raw_send(sv[0], "", 0, NULL, 0);
	rc = msg_recv(sv[1], buf, RECV_SIZE, &m, &err);
	assert_true(rc == 0 || rc == -2);
	close(sv[0]);
	close(sv[1]);
	free(buf);
}

static void test_nothing_to_read(void **state)
{
	uint8_t *buf = recv_buf();
	int sv[2];
	struct msg m;
	const char *err = NULL;

	/* A blocking socket: msg_recv must still not wait. */
	seqpacket_pair(sv);
	errno = 0;
	assert_int_equal(msg_recv(sv[1], buf, RECV_SIZE, &m, &err), -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	close(sv[0]);
	close(sv[1]);
	free(buf);
}

/* ---------------------------------------------------------------------- */
/* msg_recv_small: many small messages per recvmmsg                        */
/* ---------------------------------------------------------------------- */

static void send_done(int sock, uint32_t id)
{
	struct msg_done d = {.id = id};

	assert_int_equal(msg_send(sock, MSG_DONE, &d, sizeof(d), -1), 0);
}

static uint32_t done_id(const struct msg_small *s)
{
	struct msg_done d;

	assert_int_equal(s->rc, 1);
	assert_int_equal(s->m.type, MSG_DONE);
	assert_int_equal(s->m.len, sizeof(d));
	assert_int_equal(s->m.fd, -1);
	memcpy(&d, s->m.payload, sizeof(d));
	return d.id;
}

/* Fewer messages than slots: all of them in one call, which says by its
 * count that nothing more waits; as many as slots: a full batch, and
 * the rest next time. */
static void test_small_batches(void **state)
{
	static struct msg_small slots[8];
	int sv[2];

	(void)state;
	seqpacket_pair(sv);
	for (uint32_t id = 1; id <= 3; id++)
		send_done(sv[0], id);
	assert_int_equal(msg_recv_small(sv[1], slots, 8), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(done_id(&slots[i]), (uint32_t)i + 1);
	errno = 0;
	assert_int_equal(msg_recv_small(sv[1], slots, 8), -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	for (uint32_t id = 10; id < 20; id++)
		send_done(sv[0], id);
	assert_int_equal(msg_recv_small(sv[1], slots, 8), 8);
	for (int i = 0; i < 8; i++)
		assert_int_equal(done_id(&slots[i]), (uint32_t)i + 10);
	assert_int_equal(msg_recv_small(sv[1], slots, 8), 2);
	assert_int_equal(done_id(&slots[0]), 18);
	assert_int_equal(done_id(&slots[1]), 19);
	close(sv[0]);
	close(sv[1]);
}

/* What was sent before the peer closed comes first, then the end. */
static void test_small_peer_closed(void **state)
{
	static struct msg_small slots[8];
	int sv[2];

	(void)state;
	seqpacket_pair(sv);
	send_done(sv[0], 7);
	assert_int_equal(msg_send(sv[0], MSG_DRAIN, NULL, 0, -1), 0);
	close(sv[0]);
	assert_int_equal(msg_recv_small(sv[1], slots, 8), 3);
	assert_int_equal(done_id(&slots[0]), 7);
	assert_int_equal(slots[1].rc, 1);
	assert_int_equal(slots[1].m.type, MSG_DRAIN);
	assert_int_equal(slots[2].rc, 0);
	/* And the end again, for as long as one asks. */
	assert_int_equal(msg_recv_small(sv[1], slots, 8), 1);
	assert_int_equal(slots[0].rc, 0);
	close(sv[1]);
}

/* A message too large for a slot is bad (truncated), as is a DONE with a
 * descriptor; the batch stops there, and every descriptor that came in
 * it, with the bad message or after it, is closed. */
static void test_small_bad(void **state)
{
	static struct msg_small slots[8];
	uint8_t big[HDR + 2 * MSG_SMALL_SIZE];
	struct msg_hdr h = {.type = MSG_CONN, .len = sizeof(big) - HDR};
	struct msg_done d = {.id = 5};
	int sv[2], fds_before, fd;

	(void)state;
	memset(big, 'x', sizeof(big));
	memcpy(big, &h, sizeof(h));
	seqpacket_pair(sv);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	fds_before = count_fds();
	send_done(sv[0], 4);
	raw_send(sv[0], big, sizeof(big), &fd, 1);
	assert_int_equal(msg_send(sv[0], MSG_CONN, "x", 1, fd), 0);
	assert_int_equal(msg_recv_small(sv[1], slots, 8), 2);
	assert_int_equal(done_id(&slots[0]), 4);
	assert_int_equal(slots[1].rc, -2);
	assert_non_null(slots[1].why);
	assert_int_equal(count_fds(), fds_before);
	/* A DONE that brings a descriptor. */
	h = (struct msg_hdr){.type = MSG_DONE, .len = sizeof(d)};
	memcpy(big, &h, sizeof(h));
	memcpy(big + HDR, &d, sizeof(d));
	raw_send(sv[0], big, HDR + sizeof(d), &fd, 1);
	assert_int_equal(msg_recv_small(sv[1], slots, 8), 1);
	assert_int_equal(slots[0].rc, -2);
	assert_int_equal(count_fds(), fds_before);
	close(fd);
	close(sv[0]);
	close(sv[1]);
}

/* ---------------------------------------------------------------------- */
/* msg_user_check                                                          */
/* ---------------------------------------------------------------------- */

struct user_row {
	const char *name;
	const char *user;
	size_t len;
	int ret;
};

#define USER(nm, u, r)                                                         \
	{                                                                      \
		nm, u, sizeof(u) - 1, r                                        \
	}

static const struct user_row user_rows[] = {
    USER("user: one letter", "a", 0),
    USER("user: plain", "alice", 0),
    USER("user: every allowed kind", "bob.smith_2-x", 0),
    USER("user: digits only", "1000", 0),
    USER("user: leading underscore", "_apt", 0),
    USER("user: leading dot", ".x", 0),
    USER("user: 32 bytes", "abcdefghijklmnopqrstuvwxyz012345", 0),
    USER("user: empty", "", -1),
    USER("user: 33 bytes", "abcdefghijklmnopqrstuvwxyz0123456", -1),
    USER("user: leading dash", "-alice", -1),
    USER("user: upper case", "Alice", -1),
    USER("user: space", "al ice", -1),
    USER("user: slash", "a/b", -1),
    USER("user: colon", "a:b", -1),
    USER("user: at", "a@b", -1),
    USER("user: NUL inside", "a\0b", -1),
    USER("user: trailing NUL", "alice\0", -1),
    USER("user: newline", "alice\n", -1),
    USER("user: high byte", "\xc3\xa9t\xc3\xa9", -1),
    USER("user: DEL", "a\x7f", -1),
};

static void test_user_row(void **state)
{
	const struct user_row *row = *state;
	/* An exact copy, so a read past len is seen. */
	uint8_t *b = malloc(row->len ? row->len : 1);

	assert_non_null(b);
	memcpy(b, row->user, row->len);
	if (msg_user_check(b, row->len) != row->ret)
		fail_msg("case \"%s\": want %d", row->name, row->ret);
	free(b);
}

/* ---------------------------------------------------------------------- */
/* msg_front_encode and msg_front_decode                                   */
/* ---------------------------------------------------------------------- */

#define FRONT_REC sizeof(struct msg_front)

static const char *const good_strs[MSG_FRONT_NSTR] = {
    "blog", "192.0.2.7", "53412", "blog.example.com", "443", "/blog"};
static const char *const empty_strs[MSG_FRONT_NSTR] = {
    "", "", "", "", "", ""};
#define HEAD "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
#define GOOD_LEN (FRONT_REC + 4 + 9 + 5 + 16 + 3 + 5 + sizeof(HEAD) - 1)

struct encode_row {
	const char *name;
	uint32_t id;
	uint32_t flags;
	const char *str[MSG_FRONT_NSTR]; /* NULL: good_strs */
	size_t nbytes;                  /* of HEAD; ~0: all of it */
	size_t size;                    /* of out */
	size_t ret;                     /* 0: refused */
};

#define ALL_HEAD ((size_t)-1)

static const struct encode_row encode_rows[] = {
    {"encode: good", 7, 0, {NULL}, ALL_HEAD, GOOD_LEN, GOOD_LEN},
    {"encode: https flag", 1, MSG_FRONT_HTTPS, {NULL}, ALL_HEAD, GOOD_LEN + 9,
        GOOD_LEN},
    {"encode: id 0xffffffff", 0xffffffffu, 0, {NULL}, ALL_HEAD, GOOD_LEN,
        GOOD_LEN},
    {"encode: empty strings", 7, 0, {"", "", "", "", "", ""}, 1,
        FRONT_REC + 1, FRONT_REC + 1},
    {"encode: five-digit ports", 7, 0,
        {"a", "::1", "65535", "h", "00080", "/"}, 1, 4096,
        FRONT_REC + 1 + 3 + 5 + 1 + 5 + 1 + 1},
    {"encode: id 0", 0, 0, {NULL}, ALL_HEAD, 4096, 0},
    {"encode: no bytes", 7, 0, {NULL}, 0, 4096, 0},
    {"encode: a space in APP", 7, 0, {"a b", "", "", "", "", ""}, 1, 4096, 0},
    {"encode: a tab in REMOTE_ADDR", 7, 0, {"a", "1\t2", "", "", "", ""}, 1,
        4096, 0},
    {"encode: CR LF in SERVER_NAME", 7, 0, {"a", "", "", "h\r\n", "", ""}, 1,
        4096, 0},
    {"encode: DEL in SCRIPT_NAME", 7, 0, {"a", "", "", "", "", "/\x7f"}, 1,
        4096, 0},
    {"encode: high byte in APP", 7, 0, {"\xc3\xa9", "", "", "", "", ""}, 1,
        4096, 0},
    {"encode: letter in REMOTE_PORT", 7, 0, {"a", "", "8a", "", "", ""}, 1,
        4096, 0},
    {"encode: sign in SERVER_PORT", 7, 0, {"a", "", "", "", "-1", ""}, 1,
        4096, 0},
    {"encode: six-digit port", 7, 0, {"a", "", "123456", "", "", ""}, 1,
        4096, 0},
    {"encode: one byte short", 7, 0, {NULL}, ALL_HEAD, GOOD_LEN - 1, 0},
    {"encode: room for the strings only", 7, 0, {NULL}, ALL_HEAD,
        GOOD_LEN - (sizeof(HEAD) - 1), 0},
    {"encode: room for the record only", 7, 0, {NULL}, ALL_HEAD, FRONT_REC, 0},
    {"encode: smaller than the record", 7, 0, {NULL}, ALL_HEAD,
        FRONT_REC - 1, 0},
    {"encode: 4 bytes", 7, 0, {"", "", "", "", "", ""}, 1, 4, 0},
    {"encode: no room at all", 7, 0, {NULL}, ALL_HEAD, 0, 0},
};

/* Encodes into a buffer of exactly row->size bytes (AddressSanitizer
 * sees a write past it); a good one must decode back to the same. */
static void test_encode_row(void **state)
{
	const struct encode_row *row = *state;
	const char *const *str = row->str[0] != NULL ? row->str : good_strs;
	size_t nbytes = row->nbytes == ALL_HEAD ? sizeof(HEAD) - 1 : row->nbytes;
	uint8_t *out = malloc(row->size ? row->size : 1);
	static uint8_t dgram[HDR + MSG_MAX_PAYLOAD];
	static struct msg_front_view v;
	struct msg_hdr h = {.type = MSG_FRONT};
	struct msg m;
	const char *err = NULL;
	size_t n;

	assert_non_null(out);
	n = msg_front_encode(out, row->size, row->id, row->flags, str, HEAD,
	    nbytes);
	if (n != row->ret)
		fail_msg("case \"%s\": returned %zu, want %zu", row->name, n,
		    row->ret);
	if (n > 0) {
		h.len = (uint32_t)n;
		memcpy(dgram, &h, HDR);
		memcpy(dgram + HDR, out, n);
		assert_int_equal(msg_decode(dgram, HDR + n, 1, &m, &err), 0);
		if (msg_front_decode(&m, &v, &err) != 0)
			fail_msg("case \"%s\": decode: %s", row->name, err);
		assert_int_equal(v.id, row->id);
		assert_int_equal(v.flags, row->flags);
		for (int i = 0; i < MSG_FRONT_NSTR; i++) {
			assert_string_equal(v.str[i], str[i]);
			assert_int_equal(v.str_len[i], strlen(str[i]));
		}
		assert_int_equal(v.nbytes, nbytes);
		assert_memory_equal(v.bytes, HEAD, nbytes);
		assert_ptr_equal(v.bytes, m.payload + n - nbytes);
	}
	free(out);
}

/* A string at MSG_FRONT_MAX_STR is fine, one byte more is refused on
 * both sides; the payload may reach MSG_MAX_PAYLOAD and no further. */
static void test_front_limits(void **state)
{
	static char long_str[MSG_FRONT_MAX_STR + 2];
	static uint8_t out[MSG_MAX_PAYLOAD + 64], big[MSG_MAX_PAYLOAD];
	static struct msg_front_view v;
	const char *str[MSG_FRONT_NSTR] = {long_str, "", "", "", "", ""};
	struct msg_front f = {.id = 1, .len = {MSG_FRONT_MAX_STR + 1}};
	struct msg m = {.type = MSG_FRONT, .payload = out};
	const char *err = NULL;
	size_t n;

	memset(long_str, 'a', MSG_FRONT_MAX_STR);
	n = msg_front_encode(out, sizeof(out), 1, 0, str, "x", 1);
	assert_int_equal(n, FRONT_REC + MSG_FRONT_MAX_STR + 1);
	m.len = n;
	assert_int_equal(msg_front_decode(&m, &v, &err), 0);
	assert_int_equal(v.str_len[MSG_FRONT_APP], MSG_FRONT_MAX_STR);
	assert_int_equal(strlen(v.str[MSG_FRONT_APP]), MSG_FRONT_MAX_STR);

	long_str[MSG_FRONT_MAX_STR] = 'a';
	assert_int_equal(msg_front_encode(out, sizeof(out), 1, 0, str, "x", 1),
	    0);
	/* The decoder, given the same by hand. */
	memcpy(out, &f, sizeof(f));
	memset(out + FRONT_REC, 'a', MSG_FRONT_MAX_STR + 1);
	out[FRONT_REC + MSG_FRONT_MAX_STR + 1] = 'x';
	m.len = FRONT_REC + MSG_FRONT_MAX_STR + 2;
	assert_int_equal(msg_front_decode(&m, &v, &err), -1);
	assert_non_null(strstr(err, "string"));

	memset(big, 'b', sizeof(big));
	n = msg_front_encode(out, sizeof(out), 1, 0, empty_strs, big,
	    MSG_MAX_PAYLOAD - FRONT_REC);
	assert_int_equal(n, MSG_MAX_PAYLOAD);
	assert_int_equal(msg_front_encode(out, sizeof(out), 1, 0, empty_strs,
	                     big, MSG_MAX_PAYLOAD - FRONT_REC + 1),
	    0);
}

/* Payloads built by hand, as a hostile peer would: the record's fields,
 * then tail bytes (strings and request bytes). */
struct front_bad_row {
	const char *name;
	enum msg_type type; /* 0: MSG_FRONT */
	uint32_t id;
	uint32_t flags;
	uint16_t len[MSG_FRONT_NSTR];
	uint16_t pad;
	const char *tail;
	size_t tail_len;
	size_t cut; /* > 0: the payload is only this many bytes */
	const char *err; /* NULL: accepted */
};

#define TAIL(s) .tail = (s), .tail_len = sizeof(s) - 1

static const struct front_bad_row front_bad_rows[] = {
    {"decode: good", .id = 5, .len = {1, 1, 1, 1, 1, 1}, TAIL("ab1d2fX")},
    {"decode: good, no strings", .id = 5, .flags = MSG_FRONT_HTTPS,
        TAIL("X")},
    {"decode: id 0", .id = 0, TAIL("X"), .err = "id"},
    {"decode: flags 2", .id = 5, .flags = 2, TAIL("X"), .err = "flags"},
    {"decode: flags with the high bit", .id = 5, .flags = 0x80000001u,
        TAIL("X"), .err = "flags"},
    {"decode: pad not 0", .id = 5, .pad = 1, TAIL("X"), .err = "flags"},
    {"decode: space in APP", .id = 5, .len = {3}, TAIL("a bX"),
        .err = "string"},
    {"decode: NUL in APP", .id = 5, .len = {2}, TAIL("a\0X"),
        .err = "string"},
    {"decode: tab in REMOTE_ADDR", .id = 5, .len = {0, 3}, TAIL("1\t2X"),
        .err = "string"},
    {"decode: LF in SERVER_NAME", .id = 5, .len = {0, 0, 0, 2},
        TAIL("h\nX"), .err = "string"},
    {"decode: DEL in SCRIPT_NAME", .id = 5, .len = {0, 0, 0, 0, 0, 2},
        TAIL("/\x7fX"), .err = "string"},
    {"decode: high byte in APP", .id = 5, .len = {1}, TAIL("\xffX"),
        .err = "string"},
    {"decode: letter in REMOTE_PORT", .id = 5, .len = {0, 0, 2},
        TAIL("8aX"), .err = "string"},
    {"decode: colon in SERVER_PORT", .id = 5, .len = {0, 0, 0, 0, 3},
        TAIL(":80X"), .err = "string"},
    {"decode: six-digit SERVER_PORT", .id = 5, .len = {0, 0, 0, 0, 6},
        TAIL("123456X"), .err = "string"},
    {"decode: first string runs past the end", .id = 5, .len = {100},
        TAIL("abcX"), .err = "string"},
    {"decode: last string runs past the end", .id = 5,
        .len = {1, 1, 1, 1, 1, 3}, TAIL("ab1d2fX"), .err = "string"},
    {"decode: length 0xffff", .id = 5, .len = {0xffff}, TAIL("X"),
        .err = "string"},
    {"decode: strings take every byte", .id = 5, .len = {1, 1, 1, 1, 1, 1},
        TAIL("ab1d2f"), .err = "bytes"},
    {"decode: record only", .id = 5, .err = "shorter"},
    {"decode: part of a record", .id = 5, TAIL("X"), .cut = 7,
        .err = "shorter"},
    {"decode: no bytes at all", .id = 5, TAIL("X"), .cut = (size_t)-1,
        .err = "shorter"},
    {"decode: not a FRONT", .type = MSG_CONN, .id = 5, TAIL("X"),
        .err = "shorter"},
};

static void test_front_bad_row(void **state)
{
	const struct front_bad_row *row = *state;
	struct msg_front f = {.id = row->id, .flags = row->flags, .pad = {row->pad, 0}};
	size_t len = FRONT_REC + row->tail_len;
	static struct msg_front_view v;
	struct msg m = {.type = row->type ? row->type : MSG_FRONT, .fd = -1};
	const char *err = NULL;
	uint8_t *p;
	int rc;

	memcpy(f.len, row->len, sizeof(f.len));
	if (row->cut == (size_t)-1)
		len = 0;
	else if (row->cut > 0)
		len = row->cut;
	p = malloc(FRONT_REC + row->tail_len);
	assert_non_null(p);
	memcpy(p, &f, FRONT_REC);
	if (row->tail_len > 0)
		memcpy(p + FRONT_REC, row->tail, row->tail_len);
	m.payload = p;
	m.len = len;
	rc = msg_front_decode(&m, &v, &err);
	if (row->err == NULL) {
		if (rc != 0)
			fail_msg("case \"%s\": refused: %s", row->name, err);
		assert_int_equal(v.id, row->id);
		assert_int_equal(v.nbytes, 1);
		assert_int_equal(v.bytes[0], 'X');
	} else if (rc != -1 || err == NULL || strstr(err, row->err) == NULL) {
		fail_msg("case \"%s\": returned %d (%s), want an error with "
		         "\"%s\"",
		    row->name, rc, err ? err : "no error", row->err);
	}
	free(p);
}

/*
 * A datagram of type with the payload p[0..len) (copied: ncopy bytes of
 * it, the rest zero), exactly its size so that a read past the end is
 * seen, given to msg_decode into m.  The datagram, or NULL when msg_decode
 * refused it as the row wants (decode_err); any other outcome fails case
 * name.
 */
static uint8_t *decode_copy(const char *name, uint32_t type,
    const uint8_t *p, size_t len, size_t ncopy, int has_fd,
    const char *decode_err, struct msg *m)
{
	uint8_t *buf = calloc(1, HDR + len);
	const char *err = NULL;
	int rc;

	assert_non_null(buf);
	memcpy(buf, &(struct msg_hdr){.type = type, .len = (uint32_t)len},
	    HDR);
	memcpy(buf + HDR, p, ncopy);
	rc = msg_decode(buf, HDR + len, has_fd, m, &err);
	if (decode_err != NULL) {
		if (rc != -1 || strstr(err, decode_err) == NULL)
			fail_msg("case \"%s\": msg_decode returned %d (%s)",
			    name, rc, err ? err : "no error");
		free(buf);
		return NULL;
	}
	if (rc != 0)
		fail_msg("case \"%s\": msg_decode refused: %s", name, err);
	return buf;
}

/* ---------------------------------------------------------------------- */
/* MSG_STATS: msg_decode's size rule, then msg_stats_decode                */
/* ---------------------------------------------------------------------- */

/* What a row changes in an otherwise good STATS of napps apps. */
enum stats_change {
	SC_NONE = 0,
	SC_PAD,            /* the record's pad is not zero */
	SC_SERVED,         /* served is not the sum of the buckets */
	SC_WRAP,           /* buckets whose sum wraps around to served */
	SC_NAME_NO_NUL,    /* an app name fills its field */
	SC_NAME_EMPTY,
	SC_NAME_SLASH,
	SC_NAME_DOT,       /* a leading dot */
	SC_NAME_65,        /* 65 bytes: fits the field, not the rule */
	SC_NAME_64,        /* 64 bytes: good */
	SC_NAME_JUNK,      /* a byte after the NUL */
	SC_REASON_NO_NUL,  /* the reason fills its field */
	SC_REASON_CTRL,    /* a newline in the reason */
	SC_REASON_HIGH,    /* a byte above 0x7e */
	SC_REASON_JUNK,    /* a byte after the NUL */
	SC_REASON_199,     /* the longest reason: good */
	SC_MODE,           /* mode 2 */
	SC_STATE,          /* state 2 */
	SC_LAST_OK,        /* is_last_ok 2 */
	SC_APP_PAD,
	SC_WHEN,           /* a negative reload time */
	SC_NAPPS_MORE,     /* napps says one more app than present */
	SC_NAPPS_LESS,     /* napps says one fewer */
	SC_NAPPS_MAX,      /* napps 257 (with 257 records) */
	SC_TAIL,           /* one byte after the last app */
	SC_FD,             /* with a descriptor */
};

struct stats_row {
	const char *name;
	uint32_t napps;
	enum stats_change change;
	const char *decode_err; /* msg_decode refuses, with this word */
	const char *stats_err;  /* msg_stats_decode refuses, with this word */
};

static const struct stats_row stats_rows[] = {
    {"STATS: no app", 0, SC_NONE, NULL, NULL},
    {"STATS: one app", 1, SC_NONE, NULL, NULL},
    {"STATS: three apps", 3, SC_NONE, NULL, NULL},
    {"STATS: 256 apps", MSG_STATS_MAX_APPS, SC_NONE, NULL, NULL},
    {"STATS: a 64-byte app name", 1, SC_NAME_64, NULL, NULL},
    {"STATS: a 199-byte reason", 2, SC_REASON_199, NULL, NULL},
    {"STATS: 257 apps", MSG_STATS_MAX_APPS + 1, SC_NAPPS_MAX, "STATS", NULL},
    {"STATS: napps one too many", 2, SC_NAPPS_MORE, "STATS", NULL},
    {"STATS: napps one too few", 2, SC_NAPPS_LESS, "STATS", NULL},
    {"STATS: a byte after the apps", 1, SC_TAIL, "STATS", NULL},
    {"STATS: with a descriptor", 1, SC_FD, "STATS", NULL},
    {"STATS: nonzero pad", 1, SC_PAD, NULL, "pad"},
    {"STATS: served not the sum of the buckets", 1, SC_SERVED, NULL,
        "served"},
    {"STATS: buckets that wrap around", 0, SC_WRAP, NULL, "overflow"},
    {"STATS: app name without its NUL", 1, SC_NAME_NO_NUL, NULL, "name"},
    {"STATS: empty app name", 2, SC_NAME_EMPTY, NULL, "name"},
    {"STATS: app name with a slash", 1, SC_NAME_SLASH, NULL, "name"},
    {"STATS: app name with a leading dot", 1, SC_NAME_DOT, NULL, "name"},
    {"STATS: 65-byte app name", 1, SC_NAME_65, NULL, "name"},
    {"STATS: junk after an app name's NUL", 1, SC_NAME_JUNK, NULL, "name"},
    {"STATS: reason without its NUL", 1, SC_REASON_NO_NUL, NULL, "reason"},
    {"STATS: newline in a reason", 3, SC_REASON_CTRL, NULL, "reason"},
    {"STATS: high byte in a reason", 1, SC_REASON_HIGH, NULL, "reason"},
    {"STATS: junk after a reason's NUL", 1, SC_REASON_JUNK, NULL, "reason"},
    {"STATS: unknown mode", 1, SC_MODE, NULL, "app record"},
    {"STATS: unknown state", 1, SC_STATE, NULL, "app record"},
    {"STATS: is_last_ok 2", 1, SC_LAST_OK, NULL, "app record"},
    {"STATS: nonzero app pad", 1, SC_APP_PAD, NULL, "app record"},
    {"STATS: negative reload time", 1, SC_WHEN, NULL, "app record"},
};

/* A good STATS of napps apps (the payload, malloc'd; *len_r its size). */
static uint8_t *stats_build(uint32_t napps, size_t *len_r)
{
	struct msg_stats st = {.pid = 42, .napps = napps, .inflight = 3};
	size_t len = sizeof(st) + napps * sizeof(struct msg_stats_app);
	uint8_t *p = calloc(1, len);

	assert_non_null(p);
	for (int i = 0; i < MSG_STATS_NBUCKETS; i++) {
		st.buckets[i] = (uint64_t)i * 3;
		st.served += st.buckets[i];
	}
	st.status[1] = st.served - 2;
	st.status[3] = 2;
	st.latency_sum_us = 123456;
	memcpy(p, &st, sizeof(st));
	for (uint32_t i = 0; i < napps; i++) {
		struct msg_stats_app a = {
		    .mode = i % 2, .state = 0, .is_last_ok = 1, .version = i + 1,
		    .last_reload_ms = 1700000000000LL + i, .reloads_ok = i,
		    .reloads_failed = 1, .requests = 100 + i};

		snprintf(a.name, sizeof(a.name), "app%u", i);
		snprintf(a.reason, sizeof(a.reason), "SyntaxError: invalid "
		    "syntax (wsgi.py, line %u)", i);
		memcpy(p + sizeof(st) + i * sizeof(a), &a, sizeof(a));
	}
	*len_r = len;
	return p;
}

static void stats_change(const struct stats_row *row, uint8_t *p, size_t *len)
{
	struct msg_stats st;
	struct msg_stats_app a;
	uint8_t *last = p + sizeof(st) +
	    (row->napps > 0 ? row->napps - 1 : 0) * sizeof(a);

	memcpy(&st, p, sizeof(st));
	if (row->napps > 0)
		memcpy(&a, last, sizeof(a));
	switch (row->change) {
	case SC_NONE:
	case SC_FD:
	case SC_NAPPS_MAX:
		break;
	case SC_PAD:
		st.pad = 1;
		break;
	case SC_SERVED:
		st.served++;
		break;
	case SC_WRAP:
		st.buckets[0] = UINT64_MAX;
		st.buckets[1] = 2;
		st.served = 1 + (st.served - 3);
		break;
	case SC_NAME_NO_NUL:
		memset(a.name, 'a', sizeof(a.name));
		break;
	case SC_NAME_EMPTY:
		memset(a.name, 0, sizeof(a.name));
		break;
	case SC_NAME_SLASH:
		memcpy(a.name, "a/b", 4);
		break;
	case SC_NAME_DOT:
		memcpy(a.name, ".blog", 6);
		break;
	case SC_NAME_65:
		memset(a.name, 'x', 65);
		break;
	case SC_NAME_64:
		memset(a.name, 'x', 64);
		break;
	case SC_NAME_JUNK:
		a.name[sizeof(a.name) - 1] = 'z';
		break;
	case SC_REASON_NO_NUL:
		memset(a.reason, 'r', sizeof(a.reason));
		break;
	case SC_REASON_CTRL:
		a.reason[3] = '\n';
		break;
	case SC_REASON_HIGH:
		a.reason[0] = (char)0xc3;
		break;
	case SC_REASON_JUNK:
		a.reason[sizeof(a.reason) - 1] = 'z';
		break;
	case SC_REASON_199:
		memset(a.reason, '~', sizeof(a.reason) - 1);
		break;
	case SC_MODE:
		a.mode = 2;
		break;
	case SC_STATE:
		a.state = 2;
		break;
	case SC_LAST_OK:
		a.is_last_ok = 2;
		break;
	case SC_APP_PAD:
		a.pad = 1;
		break;
	case SC_WHEN:
		a.last_reload_ms = -1;
		break;
	case SC_NAPPS_MORE:
		st.napps++;
		break;
	case SC_NAPPS_LESS:
		st.napps--;
		break;
	case SC_TAIL:
		(*len)++;
		break;
	}
	memcpy(p, &st, sizeof(st));
	if (row->napps > 0)
		memcpy(last, &a, sizeof(a));
}

static void test_stats_row(void **state)
{
	const struct stats_row *row = *state;
	static struct msg_stats_app apps[MSG_STATS_MAX_APPS];
	struct msg_stats st;
	struct msg m = {.fd = -1};
	const char *err = NULL;
	size_t len;
	uint8_t *p = stats_build(row->napps, &len), *buf;
	int rc;

	stats_change(row, p, &len);
	buf = decode_copy(row->name, MSG_STATS, p, len,
	    len - (row->change == SC_TAIL), row->change == SC_FD,
	    row->decode_err, &m);
	if (buf == NULL)
		goto out;
	rc = msg_stats_decode(&m, &st, apps, &err);
	if (row->stats_err != NULL) {
		if (rc != -1 || strstr(err, row->stats_err) == NULL)
			fail_msg("case \"%s\": msg_stats_decode returned %d "
			    "(%s), want an error with \"%s\"", row->name, rc,
			    err ? err : "no error", row->stats_err);
		goto out;
	}
	if (rc != 0)
		fail_msg("case \"%s\": msg_stats_decode refused: %s", row->name,
		    err);
	/* What was accepted is exactly what was sent. */
	assert_int_equal(st.pid, 42);
	assert_int_equal(st.napps, row->napps);
	assert_int_equal(st.inflight, 3);
	assert_memory_equal(&st, p, sizeof(st));
	for (uint32_t i = 0; i < row->napps; i++)
		assert_memory_equal(&apps[i], p + sizeof(st) + i * sizeof(apps[0]),
		    sizeof(apps[0]));
	/* Without room for the apps, the record alone. */
	memset(&st, 0, sizeof(st));
	assert_int_equal(msg_stats_decode(&m, &st, NULL, &err), 0);
	assert_int_equal(st.napps, row->napps);
out:
	free(buf);
	free(p);
}

/* msg_stats_decode checks its own sizes too: it may be given a message
 * that did not come through msg_decode. */
static void test_stats_sizes(void **state)
{
	struct msg_stats st;
	const char *err = NULL;
	size_t len;
	uint8_t *p = stats_build(2, &len);
	struct msg m = {.type = MSG_STATS, .payload = p, .len = len, .fd = -1};

	(void)state;
	assert_int_equal(msg_stats_decode(&m, &st, NULL, &err), 0);
	m.len = len - 1;
	assert_int_equal(msg_stats_decode(&m, &st, NULL, &err), -1);
	m.len = sizeof(st) - 1;
	assert_int_equal(msg_stats_decode(&m, &st, NULL, &err), -1);
	m.len = len;
	m.type = MSG_DONE;
	assert_int_equal(msg_stats_decode(&m, &st, NULL, &err), -1);
	free(p);
}

/* ---------------------------------------------------------------------- */
/* MSG_QUEUES: msg_decode's size rule, then msg_queues_decode               */
/* ---------------------------------------------------------------------- */

enum queues_change {
	QC_NONE = 0,
	QC_FLAGS,        /* an unknown flag */
	QC_PAD,          /* a user's pad is not zero */
	QC_NAME_EMPTY,
	QC_NAME_NO_NUL,  /* a name fills its field */
	QC_NAME_JUNK,    /* a byte after the NUL */
	QC_NAME_UPPER,   /* not a user name (START's rules) */
	QC_NAME_32,      /* 32 bytes: the longest user name, good */
	QC_NAME_33,      /* 33 bytes: fits the field, not the rule */
	QC_NUSERS_MORE,  /* nusers says one more than present */
	QC_NUSERS_MAX,   /* nusers 1001 (with 1001 records) */
	QC_TAIL,         /* one byte after the last user */
	QC_FD,           /* with a descriptor */
};

struct queues_row {
	const char *name;
	uint32_t nusers;
	enum queues_change change;
	const char *decode_err; /* msg_decode refuses, with this word */
	const char *queues_err; /* msg_queues_decode refuses, with this */
};

static const struct queues_row queues_rows[] = {
    {"QUEUES: no user", 0, QC_NONE, NULL, NULL},
    {"QUEUES: two users", 2, QC_NONE, NULL, NULL},
    {"QUEUES: 1000 users", MSG_QUEUES_MAX_USERS, QC_NONE, NULL, NULL},
    {"QUEUES: a 32-byte user name", 1, QC_NAME_32, NULL, NULL},
    {"QUEUES: unknown flag", 1, QC_FLAGS, NULL, "flags"},
    {"QUEUES: nonzero pad", 2, QC_PAD, NULL, "pad"},
    {"QUEUES: empty name", 1, QC_NAME_EMPTY, NULL, "user name"},
    {"QUEUES: name without NUL", 1, QC_NAME_NO_NUL, NULL, "user name"},
    {"QUEUES: junk after the name", 1, QC_NAME_JUNK, NULL, "user name"},
    {"QUEUES: upper-case name", 1, QC_NAME_UPPER, NULL, "user name"},
    {"QUEUES: a 33-byte user name", 1, QC_NAME_33, NULL, "user name"},
    {"QUEUES: one user missing", 2, QC_NUSERS_MORE, "size", NULL},
    {"QUEUES: 1001 users", MSG_QUEUES_MAX_USERS + 1, QC_NUSERS_MAX, "size",
        NULL},
    {"QUEUES: a byte too many", 1, QC_TAIL, "size", NULL},
    {"QUEUES: with a descriptor", 1, QC_FD, "malformed", NULL},
};

/* A good QUEUES payload of n users ("user0", "user1" ...); *len_r its
 * length. */
static uint8_t *queues_build(uint32_t n, size_t *len_r)
{
	struct msg_queues q = {.nusers = n, .flags = MSG_QUEUES_FIRST};
	size_t len = sizeof(q) + (size_t)n * sizeof(struct msg_queue_user);
	uint8_t *p = calloc(1, len + 1);

	assert_non_null(p);
	q.answers[1] = 7;
	memcpy(p, &q, sizeof(q));
	for (uint32_t i = 0; i < n; i++) {
		struct msg_queue_user u = {.queued = i};

		snprintf(u.name, sizeof(u.name), "user%u", (unsigned)i);
		u.answers[6] = i + 1;
		memcpy(p + sizeof(q) + i * sizeof(u), &u, sizeof(u));
	}
	*len_r = len;
	return p;
}

static void queues_change(const struct queues_row *row, uint8_t *p,
    size_t *len)
{
	struct msg_queues q;
	struct msg_queue_user u = {0};
	uint8_t *first = p + sizeof(q);

	memcpy(&q, p, sizeof(q));
	if (row->nusers > 0)
		memcpy(&u, first, sizeof(u));
	switch (row->change) {
	case QC_FLAGS:
		q.flags |= 0x4;
		break;
	case QC_PAD:
		u.pad = 1;
		break;
	case QC_NAME_EMPTY:
		memset(u.name, 0, sizeof(u.name));
		break;
	case QC_NAME_NO_NUL:
		memset(u.name, 'a', sizeof(u.name));
		break;
	case QC_NAME_JUNK:
		u.name[sizeof(u.name) - 1] = 'x';
		break;
	case QC_NAME_UPPER:
		memcpy(u.name, "Alice", 6);
		break;
	case QC_NAME_32:
	case QC_NAME_33:
		memset(u.name, 0, sizeof(u.name));
		memset(u.name, 'a', row->change == QC_NAME_32 ? 32 : 33);
		break;
	case QC_NUSERS_MORE:
		q.nusers++;
		break;
	case QC_TAIL:
		(*len)++;
		break;
	case QC_NONE:
	case QC_NUSERS_MAX:
	case QC_FD:
		break;
	}
	memcpy(p, &q, sizeof(q));
	if (row->nusers > 0)
		memcpy(first, &u, sizeof(u));
}

static void test_queues_row(void **state)
{
	const struct queues_row *row = *state;
	static struct msg_queue_user users[MSG_QUEUES_MAX_USERS];
	struct msg_queues q;
	struct msg m = {.fd = -1};
	const char *err = NULL;
	size_t len;
	uint8_t *p = queues_build(row->nusers, &len), *buf;
	int rc;

	queues_change(row, p, &len);
	buf = decode_copy(row->name, MSG_QUEUES, p, len, len,
	    row->change == QC_FD, row->decode_err, &m);
	if (buf == NULL)
		goto out;
	rc = msg_queues_decode(&m, &q, users, &err);
	if (row->queues_err != NULL) {
		if (rc != -1 || strstr(err, row->queues_err) == NULL)
			fail_msg("case \"%s\": msg_queues_decode returned %d "
			    "(%s), want an error with \"%s\"", row->name, rc,
			    err ? err : "no error", row->queues_err);
		goto out;
	}
	if (rc != 0)
		fail_msg("case \"%s\": msg_queues_decode refused: %s",
		    row->name, err);
	/* What was accepted is exactly what was sent. */
	assert_int_equal(q.nusers, row->nusers);
	assert_memory_equal(&q, p, sizeof(q));
	for (uint32_t i = 0; i < row->nusers; i++)
		assert_memory_equal(&users[i], p + sizeof(q) + i * sizeof(users[0]),
		    sizeof(users[0]));
	assert_int_equal(msg_queues_decode(&m, &q, NULL, &err), 0);
	/* Given directly (not through msg_decode), its sizes are checked. */
	m.len--;
	assert_int_equal(msg_queues_decode(&m, &q, NULL, &err), -1);
out:
	free(buf);
	free(p);
}

int main(void)
{
	struct CMUnitTest tests[NROWS(decode_rows) + NROWS(trip_rows) +
	                        NROWS(garbage_rows) + NROWS(user_rows) +
	                        NROWS(encode_rows) + NROWS(front_bad_rows) +
	                        NROWS(stats_rows) + NROWS(queues_rows) + 13];
	size_t n = 0;

	for (size_t i = 0; i < NROWS(decode_rows); i++)
		tests[n++] = (struct CMUnitTest){.name = decode_rows[i].name,
		    .test_func = test_decode_row,
		    .initial_state = (void *)&decode_rows[i]};
	for (size_t i = 0; i < NROWS(trip_rows); i++)
		tests[n++] = (struct CMUnitTest){.name = trip_rows[i].name,
		    .test_func = test_round_trip,
		    .initial_state = (void *)&trip_rows[i]};
	tests[n++] = (struct CMUnitTest){
	    .name = "message boundaries", .test_func = test_boundaries};
	tests[n++] = (struct CMUnitTest){.name = "send: payload too large",
	    .test_func = test_send_too_large};
	tests[n++] = (struct CMUnitTest){
	    .name = "send: peer gone", .test_func = test_send_peer_gone};
	for (size_t i = 0; i < NROWS(garbage_rows); i++)
		tests[n++] = (struct CMUnitTest){.name = garbage_rows[i].name,
		    .test_func = test_garbage,
		    .initial_state = (void *)&garbage_rows[i]};
	tests[n++] = (struct CMUnitTest){
	    .name = "peer closed", .test_func = test_peer_closed};
	tests[n++] = (struct CMUnitTest){
	    .name = "empty datagram", .test_func = test_empty_datagram};
	tests[n++] = (struct CMUnitTest){
	    .name = "nothing to read", .test_func = test_nothing_to_read};
	tests[n++] = (struct CMUnitTest){
	    .name = "small: batches", .test_func = test_small_batches};
	tests[n++] = (struct CMUnitTest){
	    .name = "small: peer closed", .test_func = test_small_peer_closed};
	tests[n++] = (struct CMUnitTest){
	    .name = "small: bad", .test_func = test_small_bad};
	for (size_t i = 0; i < NROWS(user_rows); i++)
		tests[n++] = (struct CMUnitTest){.name = user_rows[i].name,
		    .test_func = test_user_row,
		    .initial_state = (void *)&user_rows[i]};
	for (size_t i = 0; i < NROWS(encode_rows); i++)
		tests[n++] = (struct CMUnitTest){.name = encode_rows[i].name,
		    .test_func = test_encode_row,
		    .initial_state = (void *)&encode_rows[i]};
	tests[n++] = (struct CMUnitTest){
	    .name = "FRONT limits", .test_func = test_front_limits};
	for (size_t i = 0; i < NROWS(front_bad_rows); i++)
		tests[n++] = (struct CMUnitTest){.name = front_bad_rows[i].name,
		    .test_func = test_front_bad_row,
		    .initial_state = (void *)&front_bad_rows[i]};
	for (size_t i = 0; i < NROWS(stats_rows); i++)
		tests[n++] = (struct CMUnitTest){.name = stats_rows[i].name,
		    .test_func = test_stats_row,
		    .initial_state = (void *)&stats_rows[i]};
	tests[n++] = (struct CMUnitTest){
	    .name = "STATS: sizes", .test_func = test_stats_sizes};
	for (size_t i = 0; i < NROWS(queues_rows); i++)
		tests[n++] = (struct CMUnitTest){.name = queues_rows[i].name,
		    .test_func = test_queues_row,
		    .initial_state = (void *)&queues_rows[i]};
	return _cmocka_run_group_tests("msg", tests, n, NULL, NULL);
}
