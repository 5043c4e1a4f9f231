/*
 * cgi.c: turns a parsed request head into the CGI variables of a WSGI
 * environ (PEP 3333), once per request.  Runs in lodge-worker as the hosted
 * user, on a pool thread and outside the GIL, over bytes that come from an
 * untrusted client (already checked by the parser in common/http.c).  It
 * must never allocate (every byte it makes lives in the cgi_env's arena),
 * never write past that arena, and never let a client choose the name of a
 * variable that the server sets itself: headers spelled with '_' and the
 * route header are dropped, and CONTENT_* only come from their own headers.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "cgi.h"

/*
 * Decisions the header leaves open, taken here:
 *  - An asterisk-form target ("OPTIONS * HTTP/1.1") gives REQUEST_URI "*"
 *    and PATH_INFO "": the request is about the server, not a path below
 *    the mount point.
 *  - Content-Type and Content-Length are single-valued: when repeated (the
 *    parser only lets through identical Content-Lengths) the first one
 *    wins instead of being joined into something no app can parse.
 *  - CONTENT_TYPE and CONTENT_LENGTH are absent when their header is, as
 *    PEP 3333 allows; every other variable is always present, maybe empty.
 *  - Variables come in a fixed order, then one per header in the order of
 *    each header's first appearance.
 */

/*
 * Takes n bytes of the arena.  Its worst case is a head of
 * HTTP_DEFAULT_MAX_HEAD bytes whose path is decoded (at most as long as
 * it was), whose header names grow by "HTTP_" and a NUL (less than the
 * ": " and CRLF of their line), and whose repeated values are copied once
 * more to be joined: under twice the head, and the arena holds more, so
 * running out stays a can't-happen for a head the parser accepted.
 */
static char *cgi_alloc(struct cgi_env *env, size_t n)
{
	char *p;

	if (n > sizeof(env->arena) - env->arena_used)
		return NULL;
	p = env->arena + env->arena_used;
	env->arena_used += n;
	return p;
}

static int cgi_add(
    struct cgi_env *env, const char *key, const char *val, size_t val_len)
{
	struct cgi_var *var;

	if (env->nvars == CGI_MAX_VARS)
		return -1;
	var = &env->vars[env->nvars++];
	var->key = key;
	var->val = val;
	var->val_len = val_len;
	return 0;
}

static int cgi_add_str(struct cgi_env *env, const char *key, const char *val)
{
	if (val == NULL)
		val = "";
	return cgi_add(env, key, val, strlen(val));
}

static char cgi_upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* Header names are ASCII tokens, compared without regard to case (RFC
 * 9110, 5.1); the locale must not change that, hence no strncasecmp. */
static bool cgi_name_eq(
    const char *a, size_t a_len, const char *b, size_t b_len)
{
	if (a_len != b_len)
		return false;
	for (size_t i = 0; i < a_len; i++)
		if (cgi_upper(a[i]) != cgi_upper(b[i]))
			return false;
	return true;
}

static bool cgi_header_is(const struct http_header *h, const char *name)
{
	return cgi_name_eq(h->name, h->name_len, name, strlen(name));
}

static int cgi_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t cgi_percent_decode(const char *in, size_t len, char *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (in[i] == '%' && i + 2 < len &&
		    (hi = cgi_hex((unsigned char)in[i + 1])) >= 0 &&
		    (lo = cgi_hex((unsigned char)in[i + 2])) >= 0) {
			out[n++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[n++] = in[i];
		}
	}
	return n;
}

/* SERVER_NAME: the Host header without its port ("[::1]:8080" gives
 * "[::1]"), or the server's own name when there is no usable Host. */
static int cgi_add_server_name(struct cgi_env *env,
    const struct http_request *req, const struct cgi_server *srv)
{
	const char *host = req->host;
	size_t len = req->host_len;
	const char *end;

	if (host != NULL && len > 0) {
		if (host[0] == '[') {
			end = memchr(host, ']', len);
			if (end != NULL)
				len = (size_t)(end - host) + 1;
		} else {
			end = memchr(host, ':', len);
			if (end != NULL)
				len = (size_t)(end - host);
		}
		if (len > 0 &&
		    !(srv->is_server_name_set && srv->server_name != NULL &&
		        srv->server_name[0] != '\0'))
			return cgi_add(env, "SERVER_NAME", host, len);
	}
	return cgi_add_str(env, "SERVER_NAME", srv->server_name);
}

/* "HTTP_" + the name in capitals with '-' as '_', NUL-terminated. */
static const char *cgi_http_key(
    struct cgi_env *env, const struct http_header *h)
{
	char *key = cgi_alloc(env, 5 + h->name_len + 1);

	if (key == NULL)
		return NULL;
	memcpy(key, "HTTP_", 5);
	for (size_t i = 0; i < h->name_len; i++)
		key[5 + i] = h->name[i] == '-' ? '_' : cgi_upper(h->name[i]);
	key[5 + h->name_len] = '\0';
	return key;
}

/*
 * Adds HTTP_NAME for headers[first] and every later header of the same
 * name, their values joined in order.  A single header's value is not
 * copied: it points into the request, which outlives env.
 */
static int cgi_add_header(
    struct cgi_env *env, const struct http_request *req, size_t first)
{
	const struct http_header *h = &req->headers[first];
	const char *sep = cgi_header_is(h, "Cookie") ? "; " : ", ";
	size_t total = h->value_len;
	size_t count = 1;
	const char *key;
	char *val;
	size_t n;

	for (size_t i = first + 1; i < req->nheaders; i++) {
		const struct http_header *o = &req->headers[i];
		if (cgi_name_eq(o->name, o->name_len, h->name, h->name_len)) {
			total += 2 + o->value_len;
			count++;
		}
	}
	key = cgi_http_key(env, h);
	if (key == NULL)
		return -1;
	if (count == 1)
		return cgi_add(env, key, h->value, h->value_len);

	val = cgi_alloc(env, total);
	if (val == NULL)
		return -1;
	memcpy(val, h->value, h->value_len);
	n = h->value_len;
	for (size_t i = first + 1; i < req->nheaders; i++) {
		const struct http_header *o = &req->headers[i];
		if (!cgi_name_eq(o->name, o->name_len, h->name, h->name_len))
			continue;
		memcpy(val + n, sep, 2);
		memcpy(val + n + 2, o->value, o->value_len);
		n += 2 + o->value_len;
	}
	return cgi_add(env, key, val, n);
}

static int cgi_add_headers(struct cgi_env *env, const struct http_request *req)
{
	for (size_t i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];
		bool is_repeat = false;
		int rc;

		/* "X_Forwarded-For" would become HTTP_X_FORWARDED_FOR, a
		 * name the front end may vouch for; nginx and Apache drop
		 * such headers for the same reason.  The route header is
		 * lodge's, not the app's. */
		if (memchr(h->name, '_', h->name_len) != NULL ||
		    cgi_header_is(h, CGI_ROUTE_HEADER))
			continue;
		for (size_t j = 0; j < i && !is_repeat; j++)
			is_repeat = cgi_name_eq(req->headers[j].name,
			    req->headers[j].name_len, h->name, h->name_len);
		if (is_repeat)
			continue; /* joined under its first occurrence */

		if (cgi_header_is(h, "Content-Type"))
			rc = cgi_add(
			    env, "CONTENT_TYPE", h->value, h->value_len);
		else if (cgi_header_is(h, "Content-Length"))
			rc = cgi_add(
			    env, "CONTENT_LENGTH", h->value, h->value_len);
		else
			rc = cgi_add_header(env, req, i);
		if (rc == -1)
			return -1;
	}
	return 0;
}

int cgi_build(const struct http_request *req, const struct cgi_server *srv,
    struct cgi_env *env)
{
	bool is_asterisk = req->target_len == 1 && req->target[0] == '*';
	const char *script = srv->script_name != NULL ? srv->script_name : "";
	size_t script_len = strlen(script);
	char *path_info;
	size_t path_len = 0;
	int rc = 0;

	env->nvars = 0;
	env->arena_used = 0;

	path_info = cgi_alloc(env, is_asterisk ? 0 : req->path_len);
	if (path_info == NULL) {
		errno = ENOBUFS;
		return -1;
	}
	if (!is_asterisk)
		path_len =
		    cgi_percent_decode(req->path, req->path_len, path_info);
	/* The mount point the front end routed by: PEP 3333 wants the app
	 * to see only what lies below it.  A trailing slash would leave a
	 * PATH_INFO without its leading one, so it goes. */
	while (script_len > 0 && script[script_len - 1] == '/')
		script_len--;
	if (script_len > 0 && path_len >= script_len &&
	    memcmp(path_info, script, script_len) == 0 &&
	    (path_len == script_len || path_info[script_len] == '/')) {
		path_info += script_len;
		path_len -= script_len;
	}

	rc |= cgi_add(env, "REQUEST_METHOD", req->method, req->method_len);
	rc |= cgi_add(env, "SCRIPT_NAME", script, script_len);
	rc |= cgi_add(env, "PATH_INFO", path_info, path_len);
	rc |= cgi_add(env, "QUERY_STRING", req->query != NULL ? req->query : "",
	    req->query != NULL ? req->query_len : 0);
	rc |= cgi_add(env, "REQUEST_URI", req->target, req->target_len);
	rc |= cgi_add_server_name(env, req, srv);
	rc |= cgi_add_str(env, "SERVER_PORT", srv->server_port);
	rc |= cgi_add_str(env, "SERVER_PROTOCOL",
	    req->version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1");
	rc |= cgi_add_str(env, "REMOTE_ADDR", srv->remote_addr);
	rc |= cgi_add_str(env, "REMOTE_PORT", srv->remote_port);
	if (srv->is_https)
		rc |= cgi_add_str(env, "HTTPS", "on");
	if (rc != 0 || cgi_add_headers(env, req) == -1) {
		errno = ENOBUFS;
		return -1;
	}
	return 0;
}

const struct cgi_var *cgi_get(const struct cgi_env *env, const char *key)
{
	for (size_t i = 0; i < env->nvars; i++)
		if (strcmp(env->vars[i].key, key) == 0)
			return &env->vars[i];
	return NULL;
}
