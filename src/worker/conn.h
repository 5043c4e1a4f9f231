/*
 * conn.h: one client connection of lodge-worker and the request being
 * served on it: reading the head, streaming the body to the app, writing
 * the response.  Everything here runs without the GIL.
 */
#ifndef LODGE_CONN_H
#define LODGE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "http.h"

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

struct conn {
	enum ev_kind ev_kind; /* EV_CONN; first, see enum ev_kind */
	int fd;
	bool is_unix;
	enum conn_state state;
	int64_t idle_since;   /* monotonic ms of the last activity */
	bool head_started;    /* some bytes of a head arrived */
	char remote_addr[64];
	char remote_port[8];
	char server_port[8];
	char server_name[64];

	char *buf; /* input: head, then raw body bytes, then pipelined bytes */
	size_t buf_len;
	size_t buf_size;

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
void conn_free(struct conn *c);

/* Fills the peer and local address fields from the socket. */
void conn_describe(struct conn *c);

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
