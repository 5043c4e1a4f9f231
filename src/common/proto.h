/*
 * proto.h: every message lodge processes send each other, in one place
 * (STYLE.md rule 1).  Messages travel over SOCK_SEQPACKET socketpairs: one
 * datagram is one message, a fixed header (type, payload length) and a
 * payload, with at most one descriptor passed as SCM_RIGHTS.  Receivers
 * check everything (msg.c): a peer that sends garbage is cut off.
 *
 * Bump LODGE_PROTO_VERSION on any change here.
 */
#ifndef LODGE_PROTO_H
#define LODGE_PROTO_H

#include <stdint.h>

#define LODGE_PROTO_VERSION 1

enum msg_type {
	MSG_HELLO = 1, /* first message on a channel: struct msg_hello */
	MSG_READY,     /* a new worker process imported its apps and serves */
	MSG_CONN,      /* a connection: its descriptor, and as payload the
	                  bytes already read from it (possibly none) */
	MSG_DRAIN,     /* stop taking connections, finish, exit (no payload) */
	MSG_RELOAD,    /* an app's process saw its code change: replace me */
	MSG_TYPE_MAX,
};

struct msg_hdr {
	uint32_t type;
	uint32_t len; /* payload bytes following the header */
};

struct msg_hello {
	uint32_t version; /* LODGE_PROTO_VERSION */
	uint32_t pid;
};

/* Largest payload of any message: a connection's bytes already read (a
 * request head up to 64 KiB plus what followed it). */
#define MSG_MAX_PAYLOAD (128 * 1024)

#endif
