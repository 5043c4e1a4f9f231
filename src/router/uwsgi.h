/*
 * uwsgi.h: the uwsgi protocol as Apache's mod_proxy_uwsgi speaks it, on
 * lodge-router's uwsgi front sockets.  A request is one packet: a 4-byte
 * header (modifier1 = 0 for a WSGI request, datasize as u16
 * little-endian, modifier2 = 0), then datasize bytes of variables, each
 * {u16 LE key length, key, u16 LE value length, value}.  The request body,
 * if any, follows the packet raw: mod_proxy_uwsgi refuses chunked requests
 * itself (411), so a body is always exactly CONTENT_LENGTH bytes.
 *
 * Pure code: no I/O, no allocation, no global state.  Everything here
 * comes from the front end and is checked before use.
 */
#ifndef LODGE_UWSGI_H
#define LODGE_UWSGI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define UWSGI_HEADER_LEN 4
#define UWSGI_MAX_VARS 256
/* Longest CONTENT_LENGTH accepted: 18 digits always fit an int64_t. */
#define UWSGI_MAX_CL_DIGITS 18

/* One variable.  key and val point into the parsed buffer and are not
 * NUL-terminated; a value may hold any byte, NUL included. */
struct uwsgi_var {
	const char *key;
	size_t key_len;
	const char *val;
	size_t val_len;
};

struct uwsgi_request {
	size_t packet_len;       /* 4 + datasize: where the body starts */
	uint64_t content_length; /* CONTENT_LENGTH, 0 if absent or empty */
	size_t nvars;
	struct uwsgi_var vars[UWSGI_MAX_VARS];
};

/*
 * Parses the uwsgi packet at the start of buf[0..len).  Returns 1 when it
 * is complete and well formed (req filled; the body starts at
 * buf + req->packet_len), 0 when more bytes are needed, and -1 when it is
 * bad (*errstr_r: a static reason for the log; answer 400 and close).
 *
 * Bad: modifier1 or modifier2 not 0, datasize 0, variables that do not
 * fill datasize exactly, an empty key or one with a byte outside
 * 0x21..0x7e, more than UWSGI_MAX_VARS variables, a repeated variable the
 * router or the translation relies on (REQUEST_METHOD, REQUEST_URI,
 * CONTENT_LENGTH, CONTENT_TYPE, HTTP_HOST, LODGE_APP, HTTP_X_LODGE_APP,
 * REMOTE_ADDR, REMOTE_PORT, HTTPS, SERVER_NAME, SERVER_PORT, SCRIPT_NAME,
 * PATH_INFO, QUERY_STRING), a CONTENT_LENGTH that is neither empty nor
 * 1..18 digits.  Other variables may repeat; uwsgi_get finds the first.
 *
 * req points into buf afterwards: buf must outlive it.  Never reads past
 * buf + len; can't fail other than by returning -1.
 */
int uwsgi_parse(const void *buf, size_t len, struct uwsgi_request *req,
    const char **errstr_r);

/* The first variable named key (a NUL-terminated string), or NULL.  The
 * result points into req. */
const struct uwsgi_var *uwsgi_get(
    const struct uwsgi_request *req, const char *key);

/*
 * Writes into out[0..size) the HTTP/1.1 request head a worker expects in
 * a MSG_FRONT, built from the variables of req:
 *
 *   REQUEST_METHOD REQUEST_URI HTTP/1.1
 *   Host: HTTP_HOST (or SERVER_NAME without it; the authority of an
 *         absolute-form REQUEST_URI, as RFC 9112 3.2.2 says, with it)
 *   one field per other HTTP_* variable, HTTP_X_FOO_BAR -> X-Foo-Bar
 *   Content-Type: CONTENT_TYPE, Content-Length: CONTENT_LENGTH (if set)
 *   Connection: close
 *
 * Without REQUEST_URI (or with an empty one) the target is SCRIPT_NAME +
 * PATH_INFO, percent-encoded (they are decoded paths), then "?" and
 * QUERY_STRING when it is not empty.  Hop-by-hop and framing fields the
 * front end already dealt with are dropped: HTTP_CONNECTION,
 * HTTP_KEEP_ALIVE, HTTP_PROXY (httpoxy), HTTP_TE, HTTP_TRANSFER_ENCODING,
 * HTTP_UPGRADE, HTTP_CONTENT_LENGTH, HTTP_CONTENT_TYPE, and HTTP_EXPECT
 * (Apache answers 100-continue to the client itself; a worker's interim
 * "100 Continue" would be taken by mod_proxy_uwsgi as the final status).
 *
 * Everything written is accepted by http_parse_request (common/http.h)
 * with a max_head of at least the returned length; give size <=
 * HTTP_DEFAULT_MAX_HEAD so a worker with the default limit accepts it.
 *
 * Returns the head's length, or -1 with *errstr_r set: no REQUEST_METHOD,
 * a method that is not a token or is CONNECT, no target, a target with a
 * byte outside 0x21..0x7e or of a form the worker does not serve, no Host
 * to be had, an HTTP_* name with a byte other than A-Z, 0-9 and '_' (what
 * Apache sends; lower case could spell a second Content-Length), a value
 * with CR, LF, NUL or another control byte, more than HTTP_MAX_HEADERS
 * fields, or a head larger than size.  out is left undefined then.  Pure.
 */
ssize_t uwsgi_to_http(const struct uwsgi_request *req, char *out, size_t size,
    const char **errstr_r);

#endif
