/*
 * cgi.h: turns a parsed request into the CGI variables of a WSGI environ
 * (PEP 3333): REQUEST_METHOD, SCRIPT_NAME, PATH_INFO, QUERY_STRING,
 * CONTENT_TYPE, CONTENT_LENGTH, SERVER_NAME, SERVER_PORT, SERVER_PROTOCOL,
 * REMOTE_ADDR, REMOTE_PORT, REQUEST_URI and one HTTP_* per header.
 *
 * Pure code, runs in lodge-worker outside the GIL; the worker turns each
 * value into a Python str by decoding it as latin-1 (PEP 3333's
 * "bytes-in-str").  Values are raw bytes and may contain any byte a valid
 * request can carry.
 */
#ifndef LODGE_CGI_H
#define LODGE_CGI_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

#define CGI_MAX_VARS (HTTP_MAX_HEADERS + 16)
#define CGI_ROUTE_HEADER "X-Lodge-App"

/* Where the connection came from and what it reached: filled by the
 * worker from the socket, or from the router's MSG_FRONT record. */
struct cgi_server {
	const char *server_name; /* used when the request has no Host */
	const char *server_port; /* "80", or the listening port */
	const char *remote_addr; /* "127.0.0.1"; "" for a Unix socket peer */
	const char *remote_port; /* "54321"; "" if none */
	const char *script_name; /* mount point, "" for the root */
	bool is_server_name_set; /* server_name wins over Host (the front
	                            end named the site) */
	bool is_https;           /* HTTPS=on */
};

struct cgi_var {
	const char *key; /* NUL-terminated */
	const char *val; /* val_len bytes, not NUL-terminated */
	size_t val_len;
};

/*
 * The variables, in an arena that owns every byte they point to (decoded
 * PATH_INFO, HTTP_* names, joined duplicate headers).
 */
struct cgi_env {
	size_t nvars;
	struct cgi_var vars[CGI_MAX_VARS];
	size_t arena_used;
	char arena[HTTP_DEFAULT_MAX_HEAD * 2 + 4096];
};

/*
 * Fills env from req and srv.  Headers whose names contain '_' are dropped
 * (a client could otherwise forge HTTP_X_FORWARDED_FOR as X_Forwarded-For);
 * the route header X-Lodge-App is dropped; Content-Type and Content-Length
 * become CONTENT_TYPE/CONTENT_LENGTH; repeated headers are joined with ", "
 * (Cookie with "; ").  SERVER_NAME comes from Host (without the port) when
 * present, unless srv->is_server_name_set.  PATH_INFO is the path
 * percent-decoded byte by byte (an invalid escape is kept as is).
 * SCRIPT_NAME is srv->script_name without trailing slashes ("/" is the
 * root, ""); when the decoded path is that mount point or starts with it
 * followed by '/', PATH_INFO is the rest ("/blog" and "/blog/a" give ""
 * and "/a"; "/blogger" stays whole).  HTTPS is "on" with srv->is_https,
 * absent otherwise.
 *
 * Returns 0, or -1 if the arena is too small (can't happen for a head that
 * the parser accepted with the default head limit).  req and srv must
 * outlive env.
 */
int cgi_build(const struct http_request *req, const struct cgi_server *srv,
    struct cgi_env *env);

/* Looks up a variable by key; NULL if absent. */
const struct cgi_var *cgi_get(const struct cgi_env *env, const char *key);

/* Percent-decodes in[0..len) into out (at least len bytes); an invalid
 * escape is copied as is.  Returns the decoded length.  Pure. */
size_t cgi_percent_decode(const char *in, size_t len, char *out);

#endif
