/*
 * forward.c: the meta of a front request that the worker puts in the
 * WSGI environ (REMOTE_ADDR, REMOTE_PORT, wsgi.url_scheme and HTTPS,
 * SERVER_NAME, SERVER_PORT, SCRIPT_NAME), chosen by lodge-router
 * (unprivileged, seccomp).  Pure code: no I/O, no allocation, no state.
 *
 * The rule it exists for: these values come from the front end, never
 * from a visitor.  On a plain listener every X-Forwarded-* header is a
 * visitor's word and is ignored (the worker still sees it as an ordinary
 * HTTP_ header); only a listener the provider marked trusted (Apache's
 * own socket) may set them, and only the last hop of each list counts,
 * because that is the one the trusted front end appended.  Every value
 * is checked against the rules of a MSG_FRONT string before use, so
 * nothing here can make msg_front_encode refuse a request.
 */
#include "forward.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

static bool is_ows(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* Printable ASCII without spaces, the alphabet of MSG_FRONT strings. */
static bool is_front_str(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

/* Copies s[0..len) into dst (size bytes) if it fits; 0 or -1. */
static int copy_str(char *dst, size_t size, const char *s, size_t len)
{
	if (len >= size || !is_front_str(s, len))
		return -1;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

/* A port: 1..5 digits, 1..65535, no leading zero. */
static int copy_port(char *dst, const char *s, size_t len)
{
	unsigned long v = 0;

	if (len == 0 || len > FORWARD_MAX_PORT || s[0] == '0')
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

/* A numeric IPv4 or IPv6 address, as inet_pton reads it. */
static int copy_addr(char *dst, const char *s, size_t len)
{
	char tmp[FORWARD_MAX_ADDR + 1];
	unsigned char bin[16];

	if (len == 0 || len > FORWARD_MAX_ADDR)
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (inet_pton(AF_INET, tmp, bin) != 1 &&
	    inet_pton(AF_INET6, tmp, bin) != 1)
		return -1;
	memcpy(dst, tmp, len + 1);
	return 0;
}

/* A mount point: "" or "/" and more, printable, no trailing slash ("/"
 * alone is the root, which is ""). */
static int copy_script_name(char *dst, const char *s, size_t len)
{
	if (len > 0 && s[0] != '/')
		return -1;
	while (len > 0 && s[len - 1] == '/')
		len--;
	return copy_str(dst, MSG_FRONT_MAX_STR + 1, s, len);
}

/* Splits "host[:port]" or "[v6][:port]"; 0 with the parts, or -1. */
static int split_host(const char *s, size_t len, size_t *host_len_r,
    const char **port_r, size_t *port_len_r)
{
	size_t end;

	if (len == 0)
		return -1;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (close == NULL)
			return -1;
		end = (size_t)(close - s) + 1;
	} else {
		const char *colon = memchr(s, ':', len);

		end = colon != NULL ? (size_t)(colon - s) : len;
	}
	if (end == 0)
		return -1;
	*host_len_r = end;
	*port_r = NULL;
	*port_len_r = 0;
	if (end < len) {
		if (s[end] != ':')
			return -1;
		*port_r = s + end + 1;
		*port_len_r = len - end - 1;
	}
	return 0;
}

/*
 * The last element of the last field named name: for a list a proxy
 * chain appends to ("X-Forwarded-For: client, proxy1"), the element the
 * nearest hop, our trusted front end, added.  Returns false if absent or
 * empty.
 */
static bool last_element(const struct http_request *req, const char *name,
    const char **v_r, size_t *len_r)
{
	const struct http_header *found = NULL;
	size_t nlen = strlen(name);
	const char *v;
	size_t len, start;

	for (size_t i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];

		if (h->name_len == nlen &&
		    strncasecmp(h->name, name, nlen) == 0)
			found = h;
	}
	if (found == NULL)
		return false;
	v = found->value;
	len = found->value_len;
	start = len;
	while (start > 0 && v[start - 1] != ',')
		start--;
	v += start;
	len -= start;
	while (len > 0 && is_ows(v[0])) {
		v++;
		len--;
	}
	while (len > 0 && is_ows(v[len - 1]))
		len--;
	if (len == 0)
		return false;
	*v_r = v;
	*len_r = len;
	return true;
}

/* The untrusted meta: only what the socket says. */
static void from_peer(const struct forward_peer *peer, struct forward *f)
{
	memset(f, 0, sizeof(*f));
	strcpy(f->remote_addr, peer->addr);
	strcpy(f->remote_port, peer->port);
	strcpy(f->server_port, peer->listen_port);
}

void forward_from_http(const struct http_request *req, bool is_trusted,
    const struct forward_peer *peer, struct forward *f, const char **note_r)
{
	const char *v, *port;
	size_t len, hlen, plen;
	bool has_scheme = false, has_port = false;

	from_peer(peer, f);
	*note_r = NULL;
	if (!is_trusted)
		return;
	if (last_element(req, "X-Forwarded-For", &v, &len)) {
		if (copy_addr(f->remote_addr, v, len) == 0)
			/* The visitor's port is not forwarded; the peer's
			 * port is the front end's, which would mislead. */
			f->remote_port[0] = '\0';
		else
			*note_r = "X-Forwarded-For is not an IP address";
	}
	if (last_element(req, "X-Forwarded-Proto", &v, &len)) {
		if (len == 5 && strncasecmp(v, "https", 5) == 0) {
			f->flags |= MSG_FRONT_HTTPS;
			has_scheme = true;
		} else if (len == 4 && strncasecmp(v, "http", 4) == 0) {
			has_scheme = true;
		} else {
			*note_r = "X-Forwarded-Proto is neither http nor https";
		}
	}
	if (last_element(req, "X-Forwarded-Host", &v, &len)) {
		char name[FORWARD_MAX_NAME + 1];

		if (split_host(v, len, &hlen, &port, &plen) < 0 ||
		    copy_str(name, sizeof(name), v, hlen) < 0 ||
		    (port != NULL &&
		        copy_port(f->server_port, port, plen) < 0)) {
			*note_r = "X-Forwarded-Host is not host[:port]";
		} else {
			strcpy(f->server_name, name);
			has_port = port != NULL;
		}
	}
	if (last_element(req, "X-Forwarded-Port", &v, &len)) {
		if (copy_port(f->server_port, v, len) == 0)
			has_port = true;
		else
			*note_r = "X-Forwarded-Port is not a port";
	}
	/* A front end that tells the scheme or the host but not the port
	 * serves the scheme's default port, not ours. */
	if (!has_port && (has_scheme || f->server_name[0] != '\0'))
		strcpy(f->server_port,
		    (f->flags & MSG_FRONT_HTTPS) ? "443" : "80");
	if (last_element(req, "X-Forwarded-Prefix", &v, &len) &&
	    copy_script_name(f->script_name, v, len) < 0)
		*note_r = "X-Forwarded-Prefix is not a path";
}

/* The value of a uwsgi var, or false if absent or empty. */
static bool var(const struct uwsgi_request *req, const char *key,
    const char **v_r, size_t *len_r)
{
	const struct uwsgi_var *v = uwsgi_get(req, key);

	if (v == NULL || v->val_len == 0)
		return false;
	*v_r = v->val;
	*len_r = v->val_len;
	return true;
}

void forward_from_uwsgi(const struct uwsgi_request *req,
    const struct forward_peer *peer, struct forward *f, const char **note_r)
{
	const char *v;
	size_t len;

	/* The peer of a uwsgi connection is the front end itself: its
	 * address says nothing about the visitor, so nothing of it is
	 * used, not even the listener's port. */
	(void)peer;
	memset(f, 0, sizeof(*f));
	*note_r = NULL;
	if (var(req, "REMOTE_ADDR", &v, &len) &&
	    copy_addr(f->remote_addr, v, len) < 0)
		*note_r = "REMOTE_ADDR is not an IP address";
	if (var(req, "REMOTE_PORT", &v, &len) &&
	    copy_port(f->remote_port, v, len) < 0)
		*note_r = "REMOTE_PORT is not a port";
	if (var(req, "HTTPS", &v, &len) &&
	    ((len == 2 && strncasecmp(v, "on", 2) == 0) ||
	        (len == 1 && v[0] == '1')))
		f->flags |= MSG_FRONT_HTTPS;
	if ((var(req, "REQUEST_SCHEME", &v, &len) ||
	        var(req, "UWSGI_SCHEME", &v, &len)) &&
	    len == 5 && strncasecmp(v, "https", 5) == 0)
		f->flags |= MSG_FRONT_HTTPS;
	if (var(req, "SERVER_NAME", &v, &len) &&
	    copy_str(f->server_name, sizeof(f->server_name), v, len) < 0)
		*note_r = "SERVER_NAME is not a host name";
	if (var(req, "SERVER_PORT", &v, &len) &&
	    copy_port(f->server_port, v, len) < 0)
		*note_r = "SERVER_PORT is not a port";
	if (var(req, "SCRIPT_NAME", &v, &len) &&
	    copy_script_name(f->script_name, v, len) < 0) {
		f->script_name[0] = '\0';
		*note_r = "SCRIPT_NAME is not a printable path";
	}
}

void forward_strings(
    const struct forward *f, const char *app, const char *str_r[MSG_FRONT_NSTR])
{
	str_r[MSG_FRONT_APP] = app;
	str_r[MSG_FRONT_REMOTE_ADDR] = f->remote_addr;
	str_r[MSG_FRONT_REMOTE_PORT] = f->remote_port;
	str_r[MSG_FRONT_SERVER_NAME] = f->server_name;
	str_r[MSG_FRONT_SERVER_PORT] = f->server_port;
	str_r[MSG_FRONT_SCRIPT_NAME] = f->script_name;
}
