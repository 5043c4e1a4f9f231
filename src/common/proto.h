/*
 * proto.h: every message lodge processes send each other, in one place
 * (STYLE.md rule 1).  Messages travel over SOCK_SEQPACKET socketpairs: one
 * datagram is one message, a fixed header (type, payload length) and a
 * payload, with at most one descriptor passed as SCM_RIGHTS.  Receivers
 * check everything (msg.c): a peer that sends garbage is cut off.
 *
 * The channels:
 *   worker ⇄ worker   (a process-mode app's process, a successor):
 *                     HELLO, READY, CONN, DRAIN, RELOAD, FRONT
 *   router ⇄ lodged   one, made by lodged at the router's birth:
 *                     router → lodged: HELLO, START, BADPEER
 *                     lodged → router: WORKER, NOUSER, FAILED
 *   router ⇄ worker   one per worker process, made by lodged at the
 *                     worker's birth (lodged keeps a copy of the router's
 *                     end, so a restarted router gets it again):
 *                     router → worker: FRONT, DRAIN (the answer to the
 *                     worker's DRAIN)
 *                     worker → router: HELLO, DONE, DRAIN (I am leaving:
 *                     send nothing more)
 *   lodged ⇄ worker   one per worker process, made by lodged at the
 *                     worker's birth (--lodged-fd; a successor inherits
 *                     it and the old process stops using it):
 *                     worker → lodged: STATS (counters and apps, at most
 *                     once a second, and right after a reload)
 *                     lodged → worker: RELOAD_APP (lodgectl reload
 *                     USER/APP)
 *
 * Bump LODGE_PROTO_VERSION on any change here.
 */
#ifndef LODGE_PROTO_H
#define LODGE_PROTO_H

#include <stdint.h>

#define LODGE_PROTO_VERSION 3

enum msg_type {
	MSG_HELLO = 1, /* first message on a channel: struct msg_hello */
	MSG_READY,     /* a new worker process imported its apps and serves */
	MSG_CONN,      /* a connection: its descriptor, and as payload the
	                  bytes already read from it (possibly none) */
	MSG_DRAIN,     /* stop taking connections, finish, exit (no payload) */
	MSG_RELOAD,    /* an app's process saw its code change: replace me */
	MSG_FRONT,     /* a front connection routed to a worker: descriptor,
	                  struct msg_front, its strings, then the bytes
	                  already read (the request head, as HTTP/1.1) */
	MSG_DONE,      /* worker → router: struct msg_done: the worker has
	                  answered and closed that front connection */
	MSG_START,     /* router → lodged: payload a user name: start that
	                  user's workers (requests are waiting) */
	MSG_WORKER,    /* lodged → router: descriptor = the router's end of a
	                  worker's channel; struct msg_worker + user name */
	MSG_NOUSER,    /* lodged → router: payload a user name: not hosted */
	MSG_FAILED,    /* lodged → router: payload a user name: no worker can
	                  be started now (crash backoff, spawn failure) */
	MSG_BADPEER,   /* router → lodged: struct msg_badpeer: that worker
	                  sent garbage and was cut off */
	MSG_STATS,     /* worker → lodged: struct msg_stats, then napps
	                  struct msg_stats_app */
	MSG_RELOAD_APP, /* lodged → worker: payload an app name (rules of
	                  MSG_MAX_APP): reload that app now */
	MSG_QUEUES,    /* router → lodged: struct msg_queues, then nusers
	                  struct msg_queue_user (queue depths, answers) */
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

/* The strings of a MSG_FRONT, in this order after struct msg_front. */
enum msg_front_str {
	MSG_FRONT_APP,         /* the app's name in the user's apps dir */
	MSG_FRONT_REMOTE_ADDR, /* "192.0.2.1", "" if unknown (Unix peer) */
	MSG_FRONT_REMOTE_PORT, /* "54321", "" if unknown */
	MSG_FRONT_SERVER_NAME, /* "blog.example.com", "" → from Host */
	MSG_FRONT_SERVER_PORT, /* "443", "" → the worker's default */
	MSG_FRONT_SCRIPT_NAME, /* "" or "/blog": the mount point */
	MSG_FRONT_NSTR,
};

#define MSG_FRONT_HTTPS 0x1u /* wsgi.url_scheme https, HTTPS=on */

/*
 * Payload of MSG_FRONT: this record, then the MSG_FRONT_NSTR strings
 * back to back (lengths in len[], no terminators), then the bytes already
 * read from the connection (at least one byte: a complete request head).
 * Every string is printable ASCII without spaces (0x21..0x7e), within
 * MSG_FRONT_MAX_STR bytes; ports are digits only.  The worker answers one
 * request on the connection and closes it (Connection: close).
 */
struct msg_front {
	uint32_t id;    /* the router's name for the connection, never 0 */
	uint32_t flags; /* MSG_FRONT_* */
	uint16_t len[MSG_FRONT_NSTR];
	uint16_t pad[2]; /* zero; makes the size 24 with no hidden padding */
};

_Static_assert(sizeof(struct msg_front) == 24, "struct msg_front layout");

#define MSG_FRONT_MAX_STR 1024

struct msg_done {
	uint32_t id; /* of the MSG_FRONT */
};

/* User names in START, WORKER, NOUSER, FAILED: 1..32 bytes of
 * [a-z0-9_.-] (first byte not '-'), no terminator. */
#define MSG_MAX_USER 32

struct msg_worker {
	uint32_t id; /* lodged's name for the worker process, never 0 */
	/* then the user name */
};

struct msg_badpeer {
	uint32_t id; /* of the MSG_WORKER */
};

/* App names in RELOAD_APP and the stats: 1..64 bytes of
 * [A-Za-z0-9._-], first byte neither '.' nor '-' (the worker's rule for
 * an app folder's name), no terminator in RELOAD_APP. */
#define MSG_MAX_APP 64

/*
 * The request-latency histogram of MSG_STATS: the upper bounds of its
 * buckets in microseconds (a request counts in the first bucket whose
 * bound it does not exceed); the last bucket, past the last bound, is
 * +Inf.  Latency runs from the moment the worker has a request's whole
 * head to the end of its response.
 */
#define MSG_STATS_NBOUNDS 12
#define MSG_STATS_NBUCKETS (MSG_STATS_NBOUNDS + 1)
#define MSG_STATS_BOUNDS_US                                                    \
	{1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,        \
	    1000000, 2500000, 5000000}

/* Status classes counted: 1xx .. 5xx (index = status / 100 - 1); a
 * request that ended with no status (the client left before one was
 * chosen) counts in served and the histogram only. */
#define MSG_STATS_NCLASSES 5

#define MSG_STATS_MAX_APPS 256

/*
 * Payload of MSG_STATS: this record, then napps struct msg_stats_app,
 * nothing else (the length is exact).  Counters are the sending
 * process's since it started; served is the sum of buckets[] (the
 * histogram's count), by construction.  No descriptor.
 */
struct msg_stats {
	uint32_t pid;      /* the sender, as it sees itself (lodged notices a
	                      successor by a change) */
	uint32_t napps;    /* 0 .. MSG_STATS_MAX_APPS */
	uint32_t inflight; /* requests being served now */
	uint32_t pad;      /* zero */
	uint64_t served;   /* requests answered: == sum of buckets[] */
	uint64_t status[MSG_STATS_NCLASSES]; /* by class, 1xx .. 5xx */
	uint64_t buckets[MSG_STATS_NBUCKETS]; /* not cumulative */
	uint64_t latency_sum_us;
};

_Static_assert(sizeof(struct msg_stats) == 176, "struct msg_stats layout");

enum msg_stats_mode {
	MSG_STATS_MODE_SUB = 0,     /* a sub-interpreter in the worker */
	MSG_STATS_MODE_PROCESS = 1, /* a process of its own (process mode) */
};

enum msg_stats_state {
	MSG_STATS_APP_OK = 0,     /* a version serves */
	MSG_STATS_APP_BROKEN = 1, /* no version serves: 500s (reason says why) */
};

/* Strings in the stats are NUL-terminated inside their field, the rest
 * of the field zero, printable ASCII (0x20..0x7e) before the NUL. */
#define MSG_STATS_NAME 72 /* an app name (MSG_MAX_APP) and its NUL, padded */
#define MSG_STATS_REASON 200

struct msg_stats_app {
	char name[MSG_STATS_NAME];
	uint8_t mode;         /* enum msg_stats_mode */
	uint8_t state;        /* enum msg_stats_state */
	uint8_t is_last_ok;   /* the last reload worked (if last_reload_ms) */
	uint8_t pad;          /* zero */
	uint32_t version;     /* serving now; 0: none */
	int64_t last_reload_ms; /* wall clock of the last reload; 0: none */
	uint32_t reloads_ok;
	uint32_t reloads_failed;
	uint64_t requests;    /* answered by this process for this app */
	char reason[MSG_STATS_REASON]; /* one line: why the last reload
	                                  failed or why the app is broken */
};

_Static_assert(sizeof(struct msg_stats_app) == 304,
    "struct msg_stats_app layout");

/*
 * The router's own answers counted in MSG_QUEUES, by status: index i
 * counts status MSG_QUEUES_STATUSES[i]; the last index counts any other.
 */
#define MSG_QUEUES_STATUSES {400, 404, 408, 413, 431, 502, 503, 504}
#define MSG_QUEUES_NSTATUS 9 /* the 8 above, then "other" */
#define MSG_QUEUES_MAX_USERS 1000
#define MSG_QUEUES_FIRST 0x1u /* the first message of a report */

/*
 * Payload of MSG_QUEUES (router → lodged): this record, then nusers
 * struct msg_queue_user, nothing else (the length is exact).  The router
 * sends a report at most once a second, when something changed; a report
 * longer than MSG_QUEUES_MAX_USERS users is split over several messages,
 * the first flagged MSG_QUEUES_FIRST.  Answers are counted since the
 * previous message (lodged adds them up, so its totals survive a router
 * restart); queued is a gauge: a report names every user with requests
 * waiting (and any whose count fell to 0 since the last report), a user a
 * report leaves out has none.  No descriptor.
 */
struct msg_queues {
	uint32_t nusers; /* 0 .. MSG_QUEUES_MAX_USERS */
	uint32_t flags;  /* MSG_QUEUES_FIRST, or 0 */
	/* The router's answers to requests no user was found for (bad
	 * heads, unknown routes), since the previous message: */
	uint64_t answers[MSG_QUEUES_NSTATUS];
};

_Static_assert(sizeof(struct msg_queues) == 80, "struct msg_queues layout");

struct msg_queue_user {
	char name[MSG_MAX_USER + 8]; /* NUL-terminated user name (rules of
	                                START), zero after the NUL */
	uint32_t queued;             /* requests waiting for a worker now */
	uint32_t pad;                /* zero */
	/* The router's answers to this user's requests (404 not hosted,
	 * 502, 503 queue full, 504 no worker in time), since the previous
	 * message: */
	uint64_t answers[MSG_QUEUES_NSTATUS];
};

_Static_assert(sizeof(struct msg_queue_user) == 120,
    "struct msg_queue_user layout");

/* Largest payload of any message: a connection's bytes already read (a
 * request head up to 64 KiB plus what followed it) and its front record. */
#define MSG_MAX_PAYLOAD (128 * 1024)

_Static_assert(sizeof(struct msg_stats) +
        MSG_STATS_MAX_APPS * sizeof(struct msg_stats_app) <= MSG_MAX_PAYLOAD,
    "the largest MSG_STATS fits in a message");

_Static_assert(sizeof(struct msg_queues) +
        MSG_QUEUES_MAX_USERS * sizeof(struct msg_queue_user) <=
        MSG_MAX_PAYLOAD,
    "the largest MSG_QUEUES fits in a message");

#endif
