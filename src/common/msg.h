/*
 * msg.h: framing of the messages of proto.h: send and receive one message
 * with an optional descriptor, and the pure decoder that checks a received
 * datagram before anybody looks at it.
 */
#ifndef LODGE_MSG_H
#define LODGE_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* A decoded message; payload points into the receive buffer. */
struct msg {
	enum msg_type type;
	const uint8_t *payload;
	size_t len;
	int fd; /* the descriptor that came with it, or -1 */
};

/*
 * Pure: checks a datagram of n bytes in buf (header, type, length, the
 * per-type payload rules, whether a descriptor is required or forbidden
 * given has_fd) and fills m (m->fd untouched).  Returns 0, or -1 with
 * *errstr_r saying what was wrong.
 */
int msg_decode(const void *buf, size_t n, int has_fd, struct msg *m,
    const char **errstr_r);

/* 0 if name[0..len) is a valid user name for START, WORKER, NOUSER and
 * FAILED (proto.h), else -1.  Pure. */
int msg_user_check(const uint8_t *name, size_t len);

/* 0 if name[0..len) is a valid app name for RELOAD_APP (MSG_MAX_APP in
 * proto.h), else -1.  Pure. */
int msg_app_check(const uint8_t *name, size_t len);

/*
 * Pure: checks the payload of a MSG_STATS (m from msg_decode or
 * msg_recv: its size is already exact) against the rules of proto.h:
 * zero padding, served equal to the sum of the buckets, modes and states
 * known, every string NUL-terminated inside its field, zero after the
 * NUL and printable before it, each app's name a valid app name.  Copies
 * the record to st and the st->napps app records to apps (room for
 * MSG_STATS_MAX_APPS; apps may be NULL when the caller wants only st).
 * 0, or -1 with *errstr_r set (the worker sent garbage).
 */
int msg_stats_decode(const struct msg *m, struct msg_stats *st,
    struct msg_stats_app *apps, const char **errstr_r);

/*
 * Pure: checks the payload of a MSG_QUEUES (m from msg_decode or
 * msg_recv) against the rules of proto.h: flags known, zero padding,
 * every name a valid user name NUL-terminated inside its field with zero
 * after the NUL.  Copies the record to q and the q->nusers user records
 * to users (room for MSG_QUEUES_MAX_USERS; NULL when only q is wanted).
 * 0, or -1 with *errstr_r set (the router sent garbage).
 */
int msg_queues_decode(const struct msg *m, struct msg_queues *q,
    struct msg_queue_user *users, const char **errstr_r);

/* A decoded MSG_FRONT: the strings copied and NUL-terminated; bytes
 * points into the message. */
struct msg_front_view {
	uint32_t id;
	uint32_t flags;
	char str[MSG_FRONT_NSTR][MSG_FRONT_MAX_STR + 1];
	size_t str_len[MSG_FRONT_NSTR];
	const uint8_t *bytes;
	size_t nbytes;
};

/*
 * Pure: checks the payload of a MSG_FRONT (m from msg_decode or msg_recv)
 * against the rules of proto.h and fills v.  0, or -1 with *errstr_r set
 * (cut the peer off).
 */
int msg_front_decode(const struct msg *m, struct msg_front_view *v,
    const char **errstr_r);

/*
 * Pure: builds the payload of a MSG_FRONT in out[0..size): the record,
 * the strings str[0..MSG_FRONT_NSTR) (NUL-terminated, same rules as the
 * decoder), then bytes[0..nbytes).  Returns its length, or 0 if a string
 * breaks the rules, id is 0, nbytes is 0, or it does not fit in size or
 * MSG_MAX_PAYLOAD.
 */
size_t msg_front_encode(uint8_t *out, size_t size, uint32_t id,
    uint32_t flags, const char *const str[MSG_FRONT_NSTR],
    const void *bytes, size_t nbytes);

/* Sends one message (with fd if fd >= 0).  Non-blocking sockets give -1
 * with EAGAIN when full.  Returns 0 or -1 (errno). */
int msg_send(int sock, enum msg_type type, const void *payload, size_t len,
    int fd);

/*
 * Receives one message into buf (at least sizeof(struct msg_hdr) +
 * MSG_MAX_PAYLOAD bytes).  Descriptors arrive close-on-exec; extra ones,
 * truncated control data and descriptors on a bad message are closed.
 * Returns 1 with m filled (the caller owns m->fd), 0 when the peer closed,
 * -1 on a socket error (errno; EAGAIN when there is nothing), -2 when the
 * peer sent garbage (*errstr_r says what): cut it off.
 */
int msg_recv(int sock, void *buf, size_t size, struct msg *m,
    const char **errstr_r);

/* Room for one small message (a worker's HELLO, DONE, DRAIN: anything
 * larger is truncated, hence bad) and what became of it. */
#define MSG_SMALL_SIZE 64
#define MSG_SMALL_MAX 32
struct msg_small {
	uint8_t buf[MSG_SMALL_SIZE];
	union {
		char buf[64]; /* CMSG_SPACE of 4 descriptors, and more */
		uint64_t align;
	} cm;
	int rc;          /* as msg_recv's: 1, 0 (end) or -2 (why says) */
	struct msg m;    /* rc 1: the message (payload points into buf) */
	const char *why; /* rc -2 */
};

/*
 * Receives up to nslots (at most MSG_SMALL_MAX) small messages in one
 * recvmmsg, with msg_recv's checks on each.  Returns how many slots were
 * filled, the last of them possibly the end of the channel (rc 0) or a
 * bad message (rc -2; what came after it is dropped, its descriptors
 * closed); fewer than nslots, all with rc 1, means nothing more is
 * waiting.  -1 on a socket error (errno; EAGAIN when nothing waits).
 */
int msg_recv_small(int sock, struct msg_small *slots, unsigned nslots);

#endif
