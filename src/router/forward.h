/*
 * forward.h: what a worker is told about a front connection besides its
 * bytes (the strings of a MSG_FRONT): the visitor's address and port,
 * the scheme, the server name and port, the mount point.  They come from
 * the uwsgi vars, from X-Forwarded-* headers on a listener marked
 * trusted, or from the socket itself, never from a client otherwise.
 *
 * Pure code.  Runs in lodge-router (unprivileged, seccomp).
 */
#ifndef LODGE_FORWARD_H
#define LODGE_FORWARD_H

#include <stdbool.h>
#include <stdint.h>

#include "http.h"
#include "proto.h"
#include "uwsgi.h"

#define FORWARD_MAX_ADDR 63 /* a numeric IPv4 or IPv6 address */
#define FORWARD_MAX_PORT 5
#define FORWARD_MAX_NAME 255

/* What the router knows of a connection by itself.  addr/port are the TCP
 * peer ("" for a Unix peer), listen_port the listener's TCP port ("" for
 * a Unix listener). */
struct forward_peer {
	char addr[FORWARD_MAX_ADDR + 1];
	char port[FORWARD_MAX_PORT + 1];
	char listen_port[FORWARD_MAX_PORT + 1];
};

/* The strings and flags of a MSG_FRONT (APP aside).  Every string obeys
 * proto.h's rules: printable ASCII without spaces, ports digits only. */
struct forward {
	uint32_t flags; /* MSG_FRONT_HTTPS */
	char remote_addr[FORWARD_MAX_ADDR + 1];
	char remote_port[FORWARD_MAX_PORT + 1];
	char server_name[FORWARD_MAX_NAME + 1];
	char server_port[FORWARD_MAX_PORT + 1];
	char script_name[MSG_FRONT_MAX_STR + 1];
};

/*
 * An HTTP request's meta.  Untrusted listener: the peer's address and
 * port, server name "" (the worker takes Host), the listener's port,
 * SCRIPT_NAME "", http.  Trusted listener: the last address of
 * X-Forwarded-For (port ""), X-Forwarded-Proto https, the host and port
 * of X-Forwarded-Host, X-Forwarded-Port, X-Forwarded-Prefix as
 * SCRIPT_NAME; where a header is absent or unusable the untrusted value
 * stays.  *note_r is NULL, or says which header was unusable (for a
 * debug line).  Can't fail.
 */
void forward_from_http(const struct http_request *req, bool is_trusted,
    const struct forward_peer *peer, struct forward *f, const char **note_r);

/*
 * A uwsgi request's meta, from the vars REMOTE_ADDR, REMOTE_PORT, HTTPS
 * ("on" or "1"), REQUEST_SCHEME / UWSGI_SCHEME ("https"), SERVER_NAME,
 * SERVER_PORT, SCRIPT_NAME.  The front end wrote them, so they are used
 * as given when they obey the rules; an unusable one is left "" and named
 * in *note_r.  Can't fail.
 */
void forward_from_uwsgi(const struct uwsgi_request *req,
    const struct forward_peer *peer, struct forward *f, const char **note_r);

/* The strings of f (and app) in the order of enum msg_front_str, for
 * msg_front_encode.  Pointers into f; can't fail. */
void forward_strings(const struct forward *f, const char *app,
    const char *str_r[MSG_FRONT_NSTR]);

#endif
