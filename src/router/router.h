/*
 * router.h: lodge-router's state, shared by its files: router.c (start,
 * options, the event loop, timers, signals, the lodged channel), front.c
 * (listeners, front connections, request heads, the router's own
 * answers) and backend.c (users, their queues, workers and their
 * channels).  One thread, one epoll loop, everything non-blocking.
 */
#ifndef LODGE_ROUTER_H
#define LODGE_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "forward.h"
#include "proto.h"
#include "route.h"

#define ROUTER_MAX_LISTENERS 8
/* The most bytes read before the head must be complete: an HTTP head of
 * up to 64 KiB (more is a 431), or a whole uwsgi packet (4 + 65535). */
#define ROUTER_MAX_HEAD 65536
#define ROUTER_READ_MAX (4 + 65535)
#define ROUTER_CONN_BUCKETS 4096   /* id → connection hash, a power of two */
#define ROUTER_USER_BUCKETS 1024   /* name → user hash, a power of two */
#define ROUTER_START_EVERY_MS 1000 /* START at most this often per user */
#define ROUTER_START_AGAIN_MS 2000 /* ask again while requests wait */
#define ROUTER_USER_IDLE_MS 10000  /* an empty user is forgotten then */
#define ROUTER_LINGER_MS 2000      /* reading what follows our answer */
#define ROUTER_LINGER_BYTES (1 << 20)
#define ROUTER_EMFILE_PAUSE_MS 100 /* no descriptor left: pause accepting */
#define ROUTER_STOP_MS 10000       /* SIGTERM: what is queued gets this */
#define ROUTER_TICK_MS 500         /* housekeeping while requests wait */
#define ROUTER_REPORT_MS 1000      /* MSG_QUEUES at most this often */

/* An intrusive doubly-linked list; a head is a node linked to itself. */
struct list_node {
	struct list_node *prev, *next;
};

#define LIST_ENTRY(ptr, type, member)                                          \
	((type *)((char *)(ptr)-offsetof(type, member)))

void list_init(struct list_node *head);
bool list_is_empty(const struct list_node *head);
void list_append(struct list_node *head, struct list_node *n);
/* Unlinks n (and makes it a list of its own, so a second removal is
 * harmless). */
void list_remove(struct list_node *n);

/* What an epoll event belongs to: the first member of each owner. */
enum ev_kind {
	EV_LISTENER = 1,
	EV_CONN,
	EV_WORKER,
	EV_LODGED,
	EV_SIGNAL,
	EV_DEAD, /* freed at the end of this round of events */
};

struct ev {
	enum ev_kind kind;
};

enum listener_kind { LISTENER_HTTP, LISTENER_UWSGI };

struct listener {
	struct ev ev;
	int fd;
	enum listener_kind kind;
	bool is_trusted; /* X-Forwarded-* headers are the front end's */
	bool is_tcp;
	char port[FORWARD_MAX_PORT + 1]; /* TCP: its port; Unix: "" */
};

enum conn_state {
	CONN_HEAD,     /* reading the request head */
	CONN_QUEUED,   /* routed, waiting for a worker of its user */
	CONN_INFLIGHT, /* handed to a worker: our copy waits for DONE */
	CONN_LINGER,   /* answered by us: reading the rest away, then close */
};

struct user;
struct worker;

struct conn {
	struct ev ev;
	int fd;
	uint32_t id; /* never 0; the FRONT's id */
	enum conn_state state;
	struct listener *listener;
	int64_t since_ms;       /* entered its state (for the timeouts) */
	struct list_node timer; /* heads, queued or lingers list */
	struct list_node node;  /* user->queue or worker->inflight */
	struct conn *hash_next; /* id hash chain */
	struct user *user;      /* QUEUED, INFLIGHT */
	struct worker *worker;  /* INFLIGHT */
	bool is_polled;         /* registered with epoll */
	bool is_head_method;    /* a HEAD request: answers carry no body */
	char *buf;              /* HEAD: bytes read */
	size_t len, cap;
	unsigned nparses; /* HEAD: times the parser ran */
	uint8_t *front;   /* QUEUED: the FRONT payload */
	size_t front_len;
	size_t lingered; /* LINGER: bytes read away */
	char app[ROUTE_MAX_APP + 1];
	struct forward_peer peer;
};

struct user {
	char name[MSG_MAX_USER + 1];
	struct user *hash_next;
	struct list_node queue; /* conns waiting, oldest first */
	size_t nqueued;
	struct list_node workers; /* struct worker.node */
	size_t ninflight;         /* over all its workers */
	int64_t last_start_ms;    /* last START sent; 0: never */
	int64_t idle_since_ms;    /* when it last had nothing */
	int answer_status;        /* lodged's last NOUSER (404) or FAILED */
	int64_t answer_until_ms;  /* (502), repeated to new requests until */
	/* For lodged's MSG_QUEUES (backend_report): our answers to this
	 * user's requests since the last report, and whether the user must
	 * be in the next one (its queue or answers changed). */
	uint64_t answers[MSG_QUEUES_NSTATUS];
	bool is_reportable;
};

struct worker {
	struct ev ev;
	int fd;      /* the router's end of the worker's channel */
	uint32_t id; /* lodged's name for it */
	pid_t pid;   /* from its HELLO; 0 before */
	struct user *user;
	struct list_node node;     /* in user->workers */
	struct list_node all;      /* in router.workers */
	struct list_node inflight; /* conns handed to it */
	size_t ninflight;
	bool has_hello;
	bool is_draining;   /* it sent DRAIN: send it nothing more */
	bool is_blocked;    /* its channel is full: wait for EPOLLOUT */
	bool has_drain_due; /* our DRAIN answer is still to be sent */
};

struct router_opts {
	int lodged_fd;
	enum route_source route;
	const char *host_map_path;
	unsigned queue_max;
	unsigned inflight_max;
	unsigned queue_timeout_s;
	unsigned head_timeout_s;
	unsigned max_conns;
	bool is_verbose;
};

/*
 * The process's one context (STYLE.md rule 7): everything lives here and
 * is reached through the pointer every function takes.
 */
struct router {
	struct router_opts opts;
	int epfd;
	int sigfd;
	struct ev lodged_ev, signal_ev;
	struct listener listeners[ROUTER_MAX_LISTENERS];
	size_t nlisteners;
	bool is_accepting;          /* listeners registered with epoll */
	int64_t accept_pause_until; /* EMFILE: accept again then; 0: not */
	struct route_map *host_map;
	size_t nconns; /* every conn we hold a descriptor of */
	uint32_t next_id;
	struct conn *conn_hash[ROUTER_CONN_BUCKETS];
	struct user *user_hash[ROUTER_USER_BUCKETS];
	size_t nusers;
	struct list_node heads;   /* CONN_HEAD, oldest first */
	struct list_node queued;  /* CONN_QUEUED, oldest first */
	struct list_node lingers; /* CONN_LINGER, oldest first */
	struct list_node workers; /* every worker */
	struct list_node dead_conns, dead_workers; /* freed after the round */
	bool is_stopping;
	int64_t stop_deadline;
	int64_t next_tick; /* backend housekeeping, when due */
	bool is_tick_due;
	uint8_t *msgbuf; /* one received message */
	size_t msgbuf_size;
	/* MSG_QUEUES: our answers to no user's requests since the last
	 * report; a report is due (something changed); the last one sent. */
	uint64_t answers[MSG_QUEUES_NSTATUS];
	bool is_report_due;
	int64_t last_report_ms;
};

/* router.c */
/* Adds, changes or removes fd's epoll registration; 0 or -1 (logged). */
int router_poll(
    struct router *r, int op, int fd, uint32_t events, struct ev *ev);
/* Sends a message to lodged (non-blocking; a full channel drops it with
 * a warning, the queue's timer asks again).  0, or -1 if dropped. */
int router_tell_lodged(
    struct router *r, enum msg_type type, const void *payload, size_t len);

/* front.c */
/* Checks that fd is a listening stream socket, makes it non-blocking and
 * fills l; 0, or -1 with *errstr_r. */
int front_listener_init(struct listener *l, int fd, enum listener_kind kind,
    bool is_trusted, const char **errstr_r);
/* Registers every listener with epoll; 0 or -1 (logged). */
int front_listeners_setup(struct router *r);
void front_accept_pause(struct router *r);
void front_accept_resume(struct router *r);
/* Handles an event on a listener or a front connection. */
void front_listener_event(struct router *r, struct listener *l);
void front_conn_event(struct router *r, struct conn *c, uint32_t events);
/* Times out heads and lingering connections; returns the next deadline
 * (0: none). */
int64_t front_timers(struct router *r, int64_t now);
/*
 * Answers c with a page of status (Retry-After: 1 for 503), logs why at
 * a level fitting the status, and closes it (after reading away what the
 * client still sends, for a connection still in our hands).  c may be in
 * any state but LINGER; it is gone afterwards.
 */
void front_answer(struct router *r, struct conn *c, int status, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));
/* Closes c and forgets it (freed after the round); can't fail. */
void front_close(struct router *r, struct conn *c);
/* The connection with that id, or NULL. */
struct conn *front_find(struct router *r, uint32_t id);
/* Frees the conns closed during this round. */
void front_reap(struct router *r);

/* backend.c */
/*
 * Takes a routed connection (state HEAD, front payload built): queues it
 * for user (created on demand), answers 503 if that user's queue is
 * full, dispatches what it can and asks lodged for a worker if none is
 * usable.
 */
void backend_submit(struct router *r, struct conn *c, const char *user);
/* Handles an event on a worker's channel. */
void backend_worker_event(struct router *r, struct worker *w, uint32_t events);
/* lodged's messages: a new worker channel (takes fd), a user not hosted,
 * a user whose workers cannot start. */
void backend_worker_new(
    struct router *r, uint32_t id, const char *user, int fd);
void backend_user_failed(
    struct router *r, const char *user, int status, const char *why);
/* Called when a connection leaves a user's queue or a worker. */
void backend_conn_left(struct router *r, struct conn *c);
/* Times out queued connections, asks lodged again for users still
 * waiting, forgets idle users; returns the next deadline (0: none). */
int64_t backend_timers(struct router *r, int64_t now);
/* Counts an answer of ours to a request of u (NULL: of no user) for
 * lodged's MSG_QUEUES. */
void backend_count_answer(struct router *r, struct user *u, int status);
/* Sends lodged a MSG_QUEUES if one is due and the last went at least
 * ROUTER_REPORT_MS ago (or now, if is_final); returns the next deadline
 * (0: none). */
int64_t backend_report(struct router *r, int64_t now, bool is_final);
/* SIGTERM: answers everything still queued with status. */
void backend_flush(struct router *r, int status, const char *why);
/* Frees the workers closed during this round. */
void backend_reap(struct router *r);

#endif
