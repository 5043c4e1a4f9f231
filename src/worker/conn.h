/*
 * conn.h: one client connection of lodge-worker and the request being
 * served on it: reading the head, streaming the body to the app, writing
 * the response.  Everything here runs without the GIL.
 */
#ifndef LODGE_CONN_H
#define LODGE_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "http.h"
#include "proto.h"

#define CONN_BUF_MIN 4096        /* initial input buffer */
#define CONN_BODY_ROOM 8192      /* free room kept after a head for body bytes */
#define CONN_OUT_SIZE 65536      /* response bytes buffered before a send */

enum conn_state {
	CONN_IDLE = 0, /* armed in epoll, nobody works on it */
	CONN_BUSY,     /* a thread serves it */
	CONN_GONE,     /* handed to a successor while idle (never freed) */
};

/* What an epoll event's data points at: each kind starts with this. */
enum ev_kind {
	EV_LISTEN = 1, /* a listening socket */
	EV_CONN,       /* a client connection */
	EV_CHAN,       /* a SEQPACKET channel to another lodge process */
};

/*
 * What the router said about a front connection (front.c): its MSG_FRONT
 * record and strings (NUL-terminated copies).  A front connection carries
 * one request and is closed after its response: the router's next
 * request on the same front end connection may be another user's.
 */
struct conn_front {
	uint32_t id;           /* the router's name for it, never 0 */
	uint32_t flags;        /* MSG_FRONT_* */
	atomic_bool owes_done; /* this process tells the router when it's done */
	char *str[MSG_FRONT_NSTR];
	char text[];           /* the strings, back to back */
};

/* The request clock (--request-timeout): conn.clock holds the monotonic
 * ms at which the running request's head arrived, shifted left by two,
 * with one of these in the low bits; 0 between requests. */
enum conn_clock_state {
	CONN_CLOCK_RUNNING = 1, /* no byte of the response went out yet */
	CONN_CLOCK_SENDING = 2, /* the response started */
	CONN_CLOCK_EXPIRED = 3, /* timed out: the checker owns the answer */
};

struct conn {
	enum ev_kind ev_kind; /* EV_CONN; first, see enum ev_kind */
	int fd;
	bool is_unix;
	enum conn_state state;
	int64_t idle_since;   /* monotonic ms of the last activity */
	bool head_started;    /* some bytes of a head arrived */
	bool is_passed;       /* sent to another process: close our copy only */
	bool is_polled;       /* ever added to the epoll set (conn_arm) */
	bool is_described;    /* server_name/port/is_unix are the socket's */
	bool may_block;       /* O_NONBLOCK not checked yet (a passed
	                         descriptor): conn.c's reads and writes say
	                         MSG_DONTWAIT, sendfile checks it first */
	char remote_addr[64];
	char remote_port[8];
	char server_port[8];
	char server_name[64];
	struct conn_front *front; /* from the router; NULL for our listeners */

	char *buf; /* input: head, then raw body bytes, then pipelined bytes */
	size_t buf_len;
	size_t buf_size;

	/* The request clock (see enum conn_clock_state), and what the
	 * timeout's log line names; the method and path point into buf,
	 * which does not move while the request runs. */
	atomic_llong clock;
	void *clock_app;
	const char *clock_method, *clock_path;
	size_t clock_method_len, clock_path_len;

	struct conn *prev, *next; /* the worker's registry of connections */
};

/* The request in progress on a connection: owned by the thread serving
 * it, reset for each request. */
struct req {
	struct conn *c;
	struct http_request http;
	bool is_head;

	/* Request body, decoded on demand. */
	size_t raw_off;      /* first unread raw body byte in c->buf */
	uint64_t body_left;  /* Content-Length bytes not yet read */
	struct http_chunked chunked;
	bool body_done;      /* the whole body was read */
	bool body_failed;    /* bad chunk, timeout or client gone */
	int body_status;     /* 400 or 413 if the body was refused */
	bool continue_sent;
	uint64_t max_body;

	/* Response. */
	int status;
	bool headers_set;     /* start_response was called */
	bool headers_sent;
	bool keep_alive;
	bool chunked_out;     /* Transfer-Encoding: chunked on the wire */
	bool close_after;     /* body framing by closing the connection */
	bool no_body;         /* HEAD, 1xx, 204, 304 */
	bool app_close;       /* the app asked for Connection: close */
	bool client_gone;     /* a write failed: stop sending */
	int64_t content_length; /* declared by the app, -1 if not */
	uint64_t body_sent;
	char *head;   /* status line and app headers, without framing */
	size_t head_len;
	size_t head_size;
	char *out;    /* buffered response bytes, CONN_OUT_SIZE */
	size_t out_len;
	int64_t started_ms;

	/* Called around every wait for the socket (poll), never around a
	 * non-blocking read or write: the WSGI layer releases the GIL there
	 * and only there, so a request that needs no wait takes the GIL
	 * once (EMBEDDING.md §4: every handoff of the shared GIL costs). */
	void (*block_begin)(struct req *r);
	void (*block_end)(struct req *r);
	void *block_arg;
};

/* Allocates a connection for fd (takes the descriptor; conn_free closes
 * it).  initial/len are bytes already read from fd (by the router), may be
 * NULL/0.  Returns NULL on ENOMEM. */
struct conn *conn_new(int fd, const void *initial, size_t len);
/* Closes the descriptor (if any) and frees c and its front record. */
void conn_free(struct conn *c);

/*
 * The request clock, a lock-free handshake between the thread serving a
 * request and the thread that enforces --request-timeout: whoever moves
 * the clock out of RUNNING first owns the start of the response, so a
 * 504 from the checker and the app's own response never mix on the wire.
 */
/* Starts it: the request's head arrived at started_ms; app (opaque) and
 * the method and path of http are kept for the log line. */
void conn_clock_start(struct conn *c, int64_t started_ms, void *app,
    const struct http_request *http);
/* Before a byte of the response: 1 if this call moved the clock from
 * RUNNING to SENDING, 0 if it was SENDING or not running, -1 if the
 * request timed out (nothing may be written).  Can't fail otherwise. */
int conn_clock_claim(struct conn *c);
/* After an interim response (100 Continue) that conn_clock_claim
 * claimed with 1: back to RUNNING, so a timeout may still answer 504. */
void conn_clock_unclaim(struct conn *c);
/* Ends the request's clock; true if the request had timed out. */
bool conn_clock_stop(struct conn *c);
/* The checker: if the request has run timeout_ms or longer by now_ms,
 * marks it EXPIRED and returns the state it had (RUNNING: answer 504;
 * SENDING: cut the response), else 0. */
int conn_clock_expire(struct conn *c, int64_t now_ms, int64_t timeout_ms);

/* Fills the peer and local address fields from the socket. */
void conn_describe(struct conn *c);
/* Only the local ones (server name and port, is_unix; sets is_described):
 * for a front connection, whose client the router names, when its head
 * needs them (conn_read_head). */
void conn_describe_local(struct conn *c);

enum conn_read_result {
	CONN_READ_HEAD = 1,   /* a complete head is parsed into r->http */
	CONN_READ_AGAIN = 0,  /* no complete head yet and no byte waiting */
	CONN_READ_CLOSED = -1, /* peer closed or error: close silently */
	CONN_READ_BAD = -2,   /* bad head: *status_r, *errstr_r say why */
};

/* Reads what is available (non-blocking) and parses the head.  Returns
 * CONN_READ_HEAD with r reset for the new request. */
enum conn_read_result conn_read_head(struct conn *c, struct req *r,
    size_t max_head, uint64_t max_body, int *status_r,
    const char **errstr_r);

/* Reads up to n decoded body bytes into dst, blocking up to timeout_ms
 * between bytes.  Sends "100 Continue" first if the client expects it.
 * Returns the number of bytes (0: end of body) or -1 (r->body_failed is
 * set, r->body_status says 400/413 for a body the client got wrong). */
ssize_t conn_body_read(struct req *r, char *dst, size_t n, int timeout_ms);

/* After the response: reads and drops what is left of the body (up to a
 * limit) so that the connection can carry the next request.  Returns 0 if
 * the connection may be kept, -1 if it must be closed. */
int conn_body_discard(struct req *r);

/* Moves pipelined bytes that follow this request to the start of the
 * buffer.  Returns true if some are waiting. */
bool conn_next_request(struct req *r);

/* Writes all of data (blocking up to timeout_ms between progress).
 * Returns 0 or -1 (r->client_gone set). */
int conn_write_all(struct req *r, const void *data, size_t len, int timeout_ms);
int conn_writev_all(struct req *r, struct iovec *iov, int iovcnt, int timeout_ms);

/* Sends a complete error page and marks the connection to be closed
 * unless keep is true. */
void conn_send_error(struct req *r, int status, bool keep);

/* Response assembly.  conn_resp_begin sets the status line and app
 * headers (already validated); conn_resp_body queues body bytes (flushing
 * when the buffer is full or flush is true); conn_resp_end finishes the
 * framing.  All return 0 or -1 (the client is gone or the app broke the
 * framing: the connection must be closed). */
int conn_resp_body(struct req *r, const char *data, size_t len, bool flush);
int conn_resp_end(struct req *r);
/* Sends the file from its current offset with sendfile(2); len -1: to EOF. */
int conn_resp_sendfile(struct req *r, int fd, int64_t len);

/* Default timeouts, milliseconds. */
#define CONN_IO_TIMEOUT_MS 30000    /* body read / response write stall */
#define CONN_HEAD_TIMEOUT_MS 10000  /* a head that started must end */
#define CONN_IDLE_TIMEOUT_MS 15000  /* keep-alive idle */

#endif
