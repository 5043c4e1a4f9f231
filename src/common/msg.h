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

#endif
