/*
 * route.c: finds the route ("USER/APP") of a front request, from the
 * X-Lodge-App header, from the host map or from a uwsgi var, and reads
 * the host map file.  Runs in lodge-router, as the unprivileged "lodge"
 * user under seccomp.  Everything but route_map_load is pure: no I/O, no
 * global state, so the unit tests drive it with tables.
 *
 * Every byte judged here comes from a client (a header) or from a file
 * the provider wrote (the host map).  A route that is not exactly
 * "USER/APP" with names of the allowed alphabets is refused: the user
 * name goes to lodged in a START message and the app name to the
 * worker, and neither may ever be a path trick ("../x", ".hidden") or
 * carry bytes a log line or a message could be confused by.
 */
#include "route.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msg.h"

struct route_map_entry {
	char host[ROUTE_MAX_HOST + 1];
	struct route route;
	int line;
};

struct route_map {
	struct route_map_entry *entries; /* sorted by host */
	size_t n;
};

static bool is_app_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
}

int route_parse(
    const char *s, size_t len, struct route *r, const char **errstr_r)
{
	const char *slash = memchr(s, '/', len);
	size_t ulen, alen;

	if (slash == NULL) {
		*errstr_r = "route is not USER/APP (no '/')";
		return -1;
	}
	ulen = (size_t)(slash - s);
	alen = len - ulen - 1;
	if (msg_user_check((const uint8_t *)s, ulen) < 0) {
		*errstr_r = "route has a bad user name";
		return -1;
	}
	if (alen == 0 || alen > ROUTE_MAX_APP) {
		*errstr_r = "route's app name is empty or longer than 64 bytes";
		return -1;
	}
	/* A leading dot would name a hidden folder ("."/".." included). */
	if (slash[1] == '.') {
		*errstr_r = "route's app name starts with '.'";
		return -1;
	}
	for (size_t i = 0; i < alen; i++) {
		if (!is_app_char((unsigned char)slash[1 + i])) {
			*errstr_r = "route's app name has a byte other than "
			            "[A-Za-z0-9_.-]";
			return -1;
		}
	}
	memcpy(r->user, s, ulen);
	r->user[ulen] = '\0';
	memcpy(r->app, slash + 1, alen);
	r->app[alen] = '\0';
	return 0;
}

static bool is_name_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '.' || ch == '_';
}

static bool is_v6_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'f') || (ch >= '0' && ch <= '9') ||
	       ch == ':' || ch == '.';
}

static bool is_digits(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

int route_host_key(
    const char *host, size_t len, char *out, const char **errstr_r)
{
	size_t n = 0, end;

	if (len == 0) {
		*errstr_r = "empty host";
		return -1;
	}
	if (host[0] == '[') {
		/* An IPv6 literal: "[" hex, ':' and '.' "]", then maybe a
		 * port.  Letters are lower-cased like any host name. */
		const char *close = memchr(host, ']', len);

		if (close == NULL) {
			*errstr_r = "IPv6 host without ']'";
			return -1;
		}
		end = (size_t)(close - host) + 1;
		for (size_t i = 1; i + 1 < end; i++) {
			unsigned char ch = (unsigned char)host[i];

			if (ch >= 'A' && ch <= 'F')
				ch = (unsigned char)(ch + ('a' - 'A'));
			if (!is_v6_char(ch)) {
				*errstr_r = "bad byte in an IPv6 host";
				return -1;
			}
		}
		if (end < 3) {
			*errstr_r = "empty IPv6 host";
			return -1;
		}
	} else {
		const char *colon = memchr(host, ':', len);

		end = colon != NULL ? (size_t)(colon - host) : len;
	}
	/* What follows the name may only be a port: ":" and digits. */
	if (end < len &&
	    (host[end] != ':' || !is_digits(host + end + 1, len - end - 1))) {
		*errstr_r = "host has something other than a port after it";
		return -1;
	}
	if (host[0] != '[' && end > 1 && host[end - 1] == '.')
		end--;
	if (host[0] == '.') {
		*errstr_r = "host starts with '.'";
		return -1;
	}
	if (end == 0 || end > ROUTE_MAX_HOST) {
		*errstr_r = "host is empty or longer than 253 bytes";
		return -1;
	}
	for (size_t i = 0; i < end; i++) {
		unsigned char ch = (unsigned char)host[i];

		if (ch >= 'A' && ch <= 'Z')
			ch = (unsigned char)(ch + ('a' - 'A'));
		if (host[0] != '[' && !is_name_char(ch)) {
			*errstr_r = "host has a byte other than [A-Za-z0-9_.-]";
			return -1;
		}
		out[n++] = (char)ch;
	}
	out[n] = '\0';
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct route_map_entry *x = a, *y = b;
	int c = strcmp(x->host, y->host);

	/* Equal hosts sort by line, so the first one given is kept. */
	return c != 0 ? c : (x->line > y->line) - (x->line < y->line);
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

/* Splits line[0..len) (comment already cut) into at most 3 fields; the
 * count found, capped at 3. */
static int split_fields(
    const char *line, size_t len, const char *f[3], size_t flen[3])
{
	int n = 0;
	size_t i = 0;

	while (i < len && n < 3) {
		size_t start;

		while (i < len && is_space(line[i]))
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && !is_space(line[i]))
			i++;
		f[n] = line + start;
		flen[n] = i - start;
		n++;
	}
	return n;
}

/* Parses one line into e; 1 for an entry, 0 for a blank or comment line,
 * -1 with *why_r for a bad one. */
static int parse_line(
    const char *line, size_t len, struct route_map_entry *e, const char **why_r)
{
	const char *hash = memchr(line, '#', len);
	const char *f[3];
	size_t flen[3];
	int n;

	if (memchr(line, '\0', len) != NULL) {
		*why_r = "NUL byte in the line";
		return -1;
	}
	if (len > ROUTE_MAX_LINE) {
		*why_r = "line longer than 1024 bytes";
		return -1;
	}
	if (hash != NULL)
		len = (size_t)(hash - line);
	n = split_fields(line, len, f, flen);
	if (n == 0)
		return 0;
	if (n != 2) {
		*why_r = "expected 'HOST USER/APP'";
		return -1;
	}
	if (memchr(f[0], ':', flen[0]) != NULL && f[0][0] != '[') {
		*why_r = "host with a port (the map matches host names only)";
		return -1;
	}
	if (route_host_key(f[0], flen[0], e->host, why_r) < 0)
		return -1;
	if (e->host[0] == '[' && f[0][flen[0] - 1] != ']') {
		*why_r = "host with a port (the map matches host names only)";
		return -1;
	}
	if (route_parse(f[1], flen[1], &e->route, why_r) < 0)
		return -1;
	return 1;
}

int route_map_parse(const char *text, size_t len, const char *file,
    route_map_error_fn *on_error, void *arg, struct route_map **map_r)
{
	struct route_map *m = calloc(1, sizeof(*m));
	size_t cap = 0, pos = 0, out;
	int lineno = 0;

	if (m == NULL)
		return -1;
	while (pos < len) {
		const char *line = text + pos, *nl;
		size_t llen;
		struct route_map_entry e;
		const char *why = NULL;
		int r;

		nl = memchr(line, '\n', len - pos);
		llen = nl != NULL ? (size_t)(nl - line) : len - pos;
		pos += llen + (nl != NULL);
		lineno++;
		r = parse_line(line, llen, &e, &why);
		if (r < 0 && on_error != NULL)
			on_error(arg, file, lineno, why);
		if (r <= 0)
			continue;
		e.line = lineno;
		if (m->n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct route_map_entry *ne =
			    realloc(m->entries, ncap * sizeof(*ne));

			if (ne == NULL) {
				route_map_free(m);
				errno = ENOMEM;
				return -1;
			}
			m->entries = ne;
			cap = ncap;
		}
		m->entries[m->n++] = e;
	}
	/* Sorted for bsearch; a host given twice keeps its first line and
	 * every later one is reported, whichever order the file has. */
	if (m->n > 0)
		qsort(m->entries, m->n, sizeof(*m->entries), entry_cmp);
	out = 0;
	for (size_t i = 0; i < m->n; i++) {
		if (out > 0 &&
		    strcmp(m->entries[out - 1].host, m->entries[i].host) == 0) {
			if (on_error != NULL)
				on_error(arg, file, m->entries[i].line,
				    "host given twice (the first line wins)");
			continue;
		}
		m->entries[out++] = m->entries[i];
	}
	m->n = out;
	*map_r = m;
	return 0;
}

int route_map_load(const char *path, route_map_error_fn *on_error, void *arg,
    struct route_map **map_r)
{
	struct stat st;
	char *text;
	size_t len = 0;
	int fd, r, saved;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	if (st.st_size > ROUTE_MAX_MAP_FILE) {
		close(fd);
		errno = EFBIG;
		return -1;
	}
	/* One byte more than the size, to notice a file that grows while
	 * it is read (it is then read again on the next SIGHUP). */
	text = malloc((size_t)st.st_size + 1);
	if (text == NULL) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	for (;;) {
		ssize_t n = read(fd, text + len, (size_t)st.st_size + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			saved = errno;
			free(text);
			close(fd);
			errno = saved;
			return -1;
		}
		if (n == 0 || len + (size_t)n > (size_t)st.st_size)
			break;
		len += (size_t)n;
	}
	close(fd);
	r = route_map_parse(text, len, path, on_error, arg, map_r);
	saved = errno;
	free(text);
	errno = saved;
	return r;
}

const struct route *route_map_find(const struct route_map *m, const char *key)
{
	size_t lo = 0, hi;

	if (m == NULL)
		return NULL;
	hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(key, m->entries[mid].host);

		if (c == 0)
			return &m->entries[mid].route;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

size_t route_map_size(const struct route_map *m)
{
	return m != NULL ? m->n : 0;
}

void route_map_free(struct route_map *m)
{
	if (m == NULL)
		return;
	free(m->entries);
	free(m);
}

/* The route of a host value through the map. */
static int route_by_host(const char *host, size_t len,
    const struct route_map *map, struct route *r, const char **errstr_r)
{
	char key[ROUTE_MAX_HOST + 1];
	const struct route *found;

	if (host == NULL) {
		*errstr_r = "no Host to look up in the host map";
		return -1;
	}
	if (route_host_key(host, len, key, errstr_r) < 0)
		return -1;
	found = route_map_find(map, key);
	if (found == NULL) {
		*errstr_r = "host not in the host map";
		return -1;
	}
	*r = *found;
	return 0;
}

int route_from_http(const struct http_request *req, enum route_source src,
    const struct route_map *map, struct route *r, const char **errstr_r)
{
	const struct http_header *found = NULL;

	if (src == ROUTE_FROM_HOST)
		return route_by_host(
		    req->host, req->host_len, map, r, errstr_r);
	/* Two route headers would let a client that can add one header
	 * next to the front end's choose between them; refuse. */
	for (size_t i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];

		if (h->name_len != sizeof(ROUTE_HEADER) - 1 ||
		    strncasecmp(h->name, ROUTE_HEADER, h->name_len) != 0)
			continue;
		if (found != NULL) {
			*errstr_r = "X-Lodge-App given more than once";
			return -1;
		}
		found = h;
	}
	if (found == NULL) {
		*errstr_r = "no X-Lodge-App header";
		return -1;
	}
	return route_parse(found->value, found->value_len, r, errstr_r);
}

int route_from_uwsgi(const struct uwsgi_request *req, enum route_source src,
    const struct route_map *map, struct route *r, const char **errstr_r)
{
	const struct uwsgi_var *v;

	switch (src) {
	case ROUTE_FROM_HOST:
		v = uwsgi_get(req, "HTTP_HOST");
		return route_by_host(v != NULL ? v->val : NULL,
		    v != NULL ? v->val_len : 0, map, r, errstr_r);
	case ROUTE_FROM_HEADER:
		v = uwsgi_get(req, ROUTE_HEADER_VAR);
		if (v == NULL) {
			*errstr_r = "no HTTP_X_LODGE_APP var";
			return -1;
		}
		break;
	case ROUTE_FROM_VAR:
		v = uwsgi_get(req, ROUTE_VAR);
		if (v == NULL) {
			*errstr_r = "no LODGE_APP var";
			return -1;
		}
		break;
	default:
		*errstr_r = "unknown route source";
		return -1;
	}
	return route_parse(v->val, v->val_len, r, errstr_r);
}
