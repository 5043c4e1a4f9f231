/*
 * route.h: which user's worker and which app a front request is for.
 * A route is "USER/APP"; it comes from the X-Lodge-App header (or the
 * uwsgi var HTTP_X_LODGE_APP), from the host map (Host header → route),
 * or from the uwsgi var LODGE_APP set with Apache's SetEnv.
 *
 * Pure code except route_map_load, which reads one file.  Runs in
 * lodge-router (unprivileged, seccomp).
 */
#ifndef LODGE_ROUTE_H
#define LODGE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"
#include "proto.h"
#include "uwsgi.h"

#define ROUTE_MAX_APP 64   /* app names: [A-Za-z0-9_.-]{1,64}, no leading '.' */
#define ROUTE_MAX_HOST 253 /* a host name in the map or a Host header */
#define ROUTE_MAX_LINE 1024 /* a line of the host map */
#define ROUTE_MAX_MAP_FILE (16 * 1024 * 1024)

/* The name of the route header, and of its uwsgi var. */
#define ROUTE_HEADER "X-Lodge-App"
#define ROUTE_HEADER_VAR "HTTP_X_LODGE_APP"
#define ROUTE_VAR "LODGE_APP"

/* Where routes come from (--route). */
enum route_source {
	ROUTE_FROM_HEADER = 0, /* X-Lodge-App, uwsgi HTTP_X_LODGE_APP */
	ROUTE_FROM_HOST,       /* the Host header through the host map */
	ROUTE_FROM_VAR,        /* uwsgi LODGE_APP; http listeners: the header */
};

struct route {
	char user[MSG_MAX_USER + 1];
	char app[ROUTE_MAX_APP + 1];
};

/*
 * Parses "USER/APP" from s[0..len): USER as msg_user_check wants it, APP
 * 1..64 bytes of [A-Za-z0-9_.-] not starting with '.'.  Returns 0 with r
 * filled, or -1 with *errstr_r saying why.  Pure.
 */
int route_parse(
    const char *s, size_t len, struct route *r, const char **errstr_r);

/*
 * Turns a Host value (or a host map key) into the map's key: the port
 * (":8080") and one trailing dot are dropped, letters lower-cased.  Names
 * are [a-z0-9_.-]; an IPv6 literal keeps its brackets ("[::1]").  Writes
 * out (at least ROUTE_MAX_HOST + 1 bytes, NUL-terminated).  Returns 0, or
 * -1 with *errstr_r set when host is empty, too long or holds another
 * byte.  Pure.
 */
int route_host_key(
    const char *host, size_t len, char *out, const char **errstr_r);

/* The host map: a sorted table of host → route. */
struct route_map;

/* Called for each bad line of a host map, which is then skipped. */
typedef void route_map_error_fn(
    void *arg, const char *file, int line, const char *why);

/*
 * Parses a host map text: lines "HOST USER/APP", '#' starts a comment,
 * blank lines are fine.  A bad line (bad host or route, a third field, a
 * host given twice, a line too long, a NUL byte) is reported through
 * on_error (may be NULL) with file and line and skipped.  Returns 0 with
 * *map_r (the caller frees it with route_map_free), or -1 with errno
 * ENOMEM.  Pure.
 */
int route_map_parse(const char *text, size_t len, const char *file,
    route_map_error_fn *on_error, void *arg, struct route_map **map_r);

/*
 * Reads path and parses it as route_map_parse does.  Returns 0 with
 * *map_r, or -1 with errno when the file cannot be read (too big: EFBIG).
 */
int route_map_load(const char *path, route_map_error_fn *on_error, void *arg,
    struct route_map **map_r);

/* The route of a host key (from route_host_key), or NULL.  Pure. */
const struct route *route_map_find(const struct route_map *m, const char *key);

/* Number of hosts in the map; 0 for NULL. */
size_t route_map_size(const struct route_map *m);

/* Frees m; NULL is fine.  Can't fail. */
void route_map_free(struct route_map *m);

/*
 * The route of a parsed HTTP request: source ROUTE_FROM_HOST looks the
 * Host up in map (which may be NULL: no route), the other two read the
 * X-Lodge-App header, which must be given once.  Returns 0 with r filled,
 * or -1 with *errstr_r saying why there is no route (the caller answers
 * 404).  Pure.
 */
int route_from_http(const struct http_request *req, enum route_source src,
    const struct route_map *map, struct route *r, const char **errstr_r);

/* The same for a parsed uwsgi packet (vars HTTP_X_LODGE_APP, HTTP_HOST,
 * LODGE_APP).  Pure. */
int route_from_uwsgi(const struct uwsgi_request *req, enum route_source src,
    const struct route_map *map, struct route *r, const char **errstr_r);

#endif
