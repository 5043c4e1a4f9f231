/*
 * http.h: the strict HTTP/1.x request-head parser and chunked-body decoder.
 *
 * Pure code: no I/O, no allocation, no global state.  Used by lodge-worker
 * (as the hosted user) and, later, by lodge-router (unprivileged).  Every
 * byte it sees comes from an untrusted client, so it accepts only what
 * RFC 9112 allows and rejects everything that two parsers could read
 * differently (request smuggling): both Content-Length and
 * Transfer-Encoding, differing duplicate Content-Length, obs-fold, bare LF,
 * control characters in names or values.
 */
#ifndef LODGE_HTTP_H
#define LODGE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits.  The head size limit is a parameter; these are fixed. */
#define HTTP_MAX_HEADERS 100          /* more → 431 */
#define HTTP_DEFAULT_MAX_HEAD 65536   /* default head size limit → 431 */
#define HTTP_MAX_TRAILER 8192         /* total trailer bytes in a chunked body */
#define HTTP_MAX_CHUNK_LINE 1024      /* chunk-size line incl. extensions */

enum http_body_kind {
	HTTP_BODY_NONE = 0, /* no body: no Content-Length, no Transfer-Encoding */
	HTTP_BODY_LENGTH,   /* Content-Length: content_length bytes follow */
	HTTP_BODY_CHUNKED,  /* Transfer-Encoding: chunked */
};

/* One header field as received.  name/value point into the parsed buffer;
 * value has leading and trailing whitespace removed.  line/line_len cover
 * the whole field line including its CRLF (used by the router to cut the
 * route header out of the head). */
struct http_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
	const char *line;
	size_t line_len;
};

struct http_request {
	const char *method;
	size_t method_len;
	const char *target; /* request-target exactly as sent */
	size_t target_len;
	const char *path; /* path part of target (before '?'), not decoded */
	size_t path_len;
	const char *query; /* after '?', without it; "" (len 0) if none */
	size_t query_len;
	int version_minor; /* 0 for HTTP/1.0, 1 for HTTP/1.1 */

	size_t nheaders;
	struct http_header headers[HTTP_MAX_HEADERS];

	size_t head_len; /* bytes of the head, leading CRLFs and final CRLF
	                    CRLF included: the body starts at buf + head_len */

	enum http_body_kind body_kind;
	uint64_t content_length; /* valid when body_kind == HTTP_BODY_LENGTH */
	bool is_keep_alive;      /* from the version and Connection header */
	bool expect_continue;    /* "Expect: 100-continue" in HTTP/1.1 */
	const char *host;        /* the Host header value, NULL if absent */
	size_t host_len;
};

/*
 * Parses a request head at the start of buf[0..len).
 *
 * Returns 1 when the head is complete (req filled, req->head_len set),
 * 0 when more bytes are needed (and len is still below max_head), and -1 on
 * a bad head: *status_r is the HTTP status to answer (400, 431, 501, 505,
 * 417) and *errstr_r a short static reason for the log ("obs-fold in
 * header", "Content-Length with Transfer-Encoding", ...).
 *
 * req points into buf afterwards; buf must outlive req.  Can't fail other
 * than by returning -1; never reads past buf + len.
 */
int http_parse_request(const char *buf, size_t len, size_t max_head,
    struct http_request *req, int *status_r, const char **errstr_r);

/* Finds a header by name, case-insensitively; NULL if absent. */
const struct http_header *http_find_header(const struct http_request *req,
    const char *name);

/* Chunked body decoder state; zero it (or call http_chunked_init) before
 * use.  max_body limits the decoded size (0: unlimited). */
struct http_chunked {
	int state;
	uint64_t remaining;  /* bytes left in the current chunk */
	uint64_t total;      /* decoded bytes so far */
	uint64_t max_body;
	size_t line_len;     /* bytes of the current size/trailer line so far */
	size_t trailer_len;  /* trailer bytes so far */
	int digits;          /* hex digits of the current chunk size */
	bool in_ext;         /* inside chunk extensions */
};

void http_chunked_init(struct http_chunked *c, uint64_t max_body);

enum http_chunked_result {
	HTTP_CHUNKED_ERROR = -1, /* malformed: *errstr_r says why; 400 */
	HTTP_CHUNKED_TOO_BIG = -2, /* decoded body passes max_body; 413 */
	HTTP_CHUNKED_MORE = 0,   /* all input consumed, no data: feed more */
	HTTP_CHUNKED_DATA = 1,   /* *data_r, *data_len_r: body bytes */
	HTTP_CHUNKED_DONE = 2,   /* last chunk and trailers consumed */
};

/*
 * Feeds in[0..in_len) to the decoder.  Consumes *in_used_r bytes and returns
 * at most one run of body bytes, which points into in (zero copy).  Call
 * again with the rest of the input until it returns MORE or DONE.  After
 * DONE, the bytes from in + *in_used_r on belong to the next request.
 */
enum http_chunked_result http_chunked_feed(struct http_chunked *c,
    const char *in, size_t in_len, size_t *in_used_r, const char **data_r,
    size_t *data_len_r, const char **errstr_r);

/* Response-side checks, used on what an application hands back. */

/* True if name is a non-empty token (RFC 9110 tchar). */
bool http_is_token(const char *s, size_t len);
/* True if a field value holds no CR, LF, NUL or other control character
 * except HTAB. */
bool http_is_field_value(const char *s, size_t len);
/* Parses a WSGI status ("200 OK"): three digits, a space, a reason without
 * control characters.  Returns the code (100..999) or -1. */
int http_parse_status(const char *s, size_t len);

/* The standard reason phrase for a status, "Unknown" if none. */
const char *http_reason(int status);

#endif
