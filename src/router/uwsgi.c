/*
 * uwsgi.c: the uwsgi protocol on lodge-router's uwsgi front sockets: the
 * parser of a request packet (a header and the variables of a CGI-like
 * environment, as Apache's mod_proxy_uwsgi sends them) and its
 * translation into the HTTP/1.1 request head that a worker reads from a
 * MSG_FRONT.  Runs in lodge-router, as the unprivileged "lodge" user under
 * seccomp; pure code: no I/O, no allocation, no global state other than
 * constant tables.  Every byte comes from the front end, which relays what
 * a client sent: the parser never reads past the buffer it was given, and
 * the translation writes nothing that the worker's strict parser
 * (common/http.c) would refuse or read differently, because a worker that
 * framed a request otherwise than the router did is the start of a
 * smuggling attack.
 */
#include "uwsgi.h"

#include <stdbool.h>
#include <string.h>

#include "http.h"

/* A variable's name and its length, so a lookup compares lengths first. */
struct key_name {
	const char *name;
	size_t len;
};

#define KEY(s)                                                                 \
	{                                                                      \
		s, sizeof(s) - 1                                               \
	}

/* The variables the router or the translation reads.  A second copy of
 * one of them is refused: two readers (the router, the worker, a log)
 * could otherwise each take a different one. */
static const struct key_name unique_keys[] = {
    KEY("REQUEST_METHOD"),
    KEY("REQUEST_URI"),
    KEY("CONTENT_LENGTH"),
    KEY("CONTENT_TYPE"),
    KEY("HTTP_HOST"),
    KEY("LODGE_APP"),
    KEY("HTTP_X_LODGE_APP"),
    KEY("REMOTE_ADDR"),
    KEY("REMOTE_PORT"),
    KEY("HTTPS"),
    KEY("SERVER_NAME"),
    KEY("SERVER_PORT"),
    KEY("SCRIPT_NAME"),
    KEY("PATH_INFO"),
    KEY("QUERY_STRING"),
};

#define NUNIQUE (sizeof(unique_keys) / sizeof(unique_keys[0]))
/* uwsgi_parse marks the ones it has seen in the bits of an unsigned. */
_Static_assert(NUNIQUE <= 32, "unique_keys must fit a 32-bit mask");

/*
 * HTTP_* variables that are not copied into the head.  Connection,
 * Keep-Alive, TE, Upgrade and Transfer-Encoding are hop-by-hop: they were
 * about the client's connection to Apache, not this one.  Content-Length
 * and Content-Type come from CONTENT_LENGTH and CONTENT_TYPE only, so the
 * body is framed by exactly one number.  Proxy is the httpoxy header.
 * Expect was answered by Apache, which sends 100 Continue itself when it
 * reads the body; passed on, a worker's interim answer would reach
 * mod_proxy_uwsgi, which takes the first status line it reads as final.
 * Host is written separately, first.
 */
static const struct key_name dropped_keys[] = {
    KEY("HTTP_CONNECTION"),
    KEY("HTTP_KEEP_ALIVE"),
    KEY("HTTP_PROXY"),
    KEY("HTTP_TE"),
    KEY("HTTP_TRANSFER_ENCODING"),
    KEY("HTTP_UPGRADE"),
    KEY("HTTP_CONTENT_LENGTH"),
    KEY("HTTP_CONTENT_TYPE"),
    KEY("HTTP_EXPECT"),
    KEY("HTTP_HOST"),
};

#define NDROPPED (sizeof(dropped_keys) / sizeof(dropped_keys[0]))

static const struct key_name content_length_key = KEY("CONTENT_LENGTH");

static bool key_is(const char *key, size_t key_len, const struct key_name *k)
{
	return k->len == key_len && memcmp(key, k->name, key_len) == 0;
}

static unsigned get_u16le(const unsigned char *p)
{
	return (unsigned)p[0] | (unsigned)p[1] << 8;
}

/* The index of key in unique_keys, or -1. */
static int unique_index(const char *key, size_t key_len)
{
	for (size_t i = 0; i < NUNIQUE; i++) {
		if (key_is(key, key_len, &unique_keys[i]))
			return (int)i;
	}
	return -1;
}

/* CONTENT_LENGTH: empty (no body), or 1..18 digits, which always fit an
 * int64_t.  A sign, a space or a hex digit is refused rather than read
 * the way strtoull would. */
static int parse_content_length(const struct uwsgi_var *v, uint64_t *len_r)
{
	uint64_t x = 0;

	if (v->val_len > UWSGI_MAX_CL_DIGITS)
		return -1;
	for (size_t i = 0; i < v->val_len; i++) {
		if (v->val[i] < '0' || v->val[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(v->val[i] - '0');
	}
	*len_r = x;
	return 0;
}

int uwsgi_parse(const void *buf, size_t len, struct uwsgi_request *req,
    const char **errstr_r)
{
	const unsigned char *p = buf, *end;
	unsigned seen = 0;
	size_t datasize;

	req->packet_len = 0;
	req->content_length = 0;
	req->nvars = 0;
	if (len < UWSGI_HEADER_LEN)
		return 0;
	/* modifier1 0 is a WSGI request; every other value names another
	 * uWSGI plugin or a control packet, none of which lodge serves. */
	if (p[0] != 0) {
		*errstr_r = "uwsgi packet with modifier1 other than 0";
		return -1;
	}
	if (p[3] != 0) {
		*errstr_r = "uwsgi packet with modifier2 other than 0";
		return -1;
	}
	datasize = get_u16le(p + 1);
	if (datasize == 0) {
		*errstr_r = "uwsgi packet without variables";
		return -1;
	}
	if (len - UWSGI_HEADER_LEN < datasize)
		return 0;
	end = p + UWSGI_HEADER_LEN + datasize;
	p += UWSGI_HEADER_LEN;

	/* The whole packet is here: from now on a length that runs past
	 * its end is an error, not a reason to wait. */
	while (p < end) {
		struct uwsgi_var *v;
		size_t key_len, val_len;
		int u;

		if (req->nvars == UWSGI_MAX_VARS) {
			*errstr_r = "too many uwsgi variables";
			return -1;
		}
		if (end - p < 2) {
			*errstr_r = "uwsgi variable runs past the packet";
			return -1;
		}
		key_len = get_u16le(p);
		p += 2;
		if (key_len == 0) {
			*errstr_r = "empty uwsgi variable name";
			return -1;
		}
		if ((size_t)(end - p) < key_len + 2) {
			*errstr_r = "uwsgi variable runs past the packet";
			return -1;
		}
		for (size_t i = 0; i < key_len; i++) {
			if (p[i] < 0x21 || p[i] > 0x7e) {
				*errstr_r =
				    "invalid byte in uwsgi variable name";
				return -1;
			}
		}
		v = &req->vars[req->nvars];
		v->key = (const char *)p;
		v->key_len = key_len;
		p += key_len;
		val_len = get_u16le(p);
		p += 2;
		if ((size_t)(end - p) < val_len) {
			*errstr_r = "uwsgi variable runs past the packet";
			return -1;
		}
		v->val = (const char *)p;
		v->val_len = val_len;
		p += val_len;
		req->nvars++;

		if ((u = unique_index(v->key, v->key_len)) >= 0) {
			if (seen & 1u << u) {
				*errstr_r = "repeated uwsgi variable";
				return -1;
			}
			seen |= 1u << u;
		}
		if (key_is(v->key, v->key_len, &content_length_key) &&
		    parse_content_length(v, &req->content_length) < 0) {
			*errstr_r = "invalid CONTENT_LENGTH";
			return -1;
		}
	}
	req->packet_len = UWSGI_HEADER_LEN + datasize;
	return 1;
}

const struct uwsgi_var *uwsgi_get(
    const struct uwsgi_request *req, const char *key)
{
	size_t key_len = strlen(key);

	for (size_t i = 0; i < req->nvars; i++) {
		const struct uwsgi_var *v = &req->vars[i];

		if (v->key_len == key_len && memcmp(v->key, key, key_len) == 0)
			return v;
	}
	return NULL;
}

/*
 * The translation.  Bytes go through a small bounded writer: once the
 * head does not fit, is_full is set and nothing more is written, so the
 * code that composes the head need not check every step.
 */
struct writer {
	char *out;
	size_t size;
	size_t len;
	bool is_full;
};

static void put(struct writer *w, const void *s, size_t n)
{
	if (w->is_full || n > w->size - w->len) {
		w->is_full = true;
		return;
	}
	memcpy(w->out + w->len, s, n);
	w->len += n;
}

static void put_str(struct writer *w, const char *s)
{
	put(w, s, strlen(s));
}

static void put_char(struct writer *w, char c)
{
	put(w, &c, 1);
}

static void put_pct(struct writer *w, unsigned char c)
{
	static const char hex[] = "0123456789ABCDEF";
	char enc[3] = {'%', hex[c >> 4], hex[c & 0xf]};

	put(w, enc, sizeof(enc));
}

/* The characters that may stand unencoded in a path segment or as "/"
 * (RFC 3986 pchar, less pct-encoded): unreserved, sub-delims, ":", "@". */
static bool is_path_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("-._~!$&'()*+,;=:@/", c) != NULL);
}

/* A decoded path (SCRIPT_NAME, PATH_INFO) re-encoded for a request-target:
 * what the worker decodes again is what the front end sent.  "%", "?"
 * and "#" are encoded too, so they can't start an escape, a query or a
 * fragment. */
static void put_path(struct writer *w, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (is_path_char(c))
			put_char(w, (char)c);
		else
			put_pct(w, c);
	}
}

/* QUERY_STRING is sent as received (still encoded); a byte that may not
 * stand in a request-target is encoded. */
static void put_query(struct writer *w, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x21 && c <= 0x7e)
			put_char(w, (char)c);
		else
			put_pct(w, c);
	}
}

/* The characters of a Host value or an authority, as common/http.c
 * accepts them: unreserved, sub-delims, "%", ":", "[" and "]". */
static bool is_host(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') ||
		        (c != '\0' &&
		            strchr("-._~!$&'()*+,;=%:[]", c) != NULL)))
			return false;
	}
	return true;
}

static bool is_vchars(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	}
	return true;
}

static bool prefix_icase(const char *s, size_t n, const char *lit)
{
	size_t k = strlen(lit);

	if (n < k)
		return false;
	for (size_t i = 0; i < k; i++) {
		char c = s[i] >= 'A' && s[i] <= 'Z' ? s[i] + ('a' - 'A') : s[i];

		if (c != lit[i])
			return false;
	}
	return true;
}

/*
 * Checks REQUEST_URI against the request-target forms a worker serves
 * (the rules of parse_target in common/http.c): origin-form, "*" with
 * OPTIONS, or absolute-form http(s)://authority[/path][?query], whose
 * authority is returned in *auth_r (NULL for the other forms).
 */
static int check_target(const char *t, size_t n, const char *method,
    size_t method_len, const char **auth_r, size_t *auth_len_r,
    const char **errstr_r)
{
	size_t skip, i;

	*auth_r = NULL;
	*auth_len_r = 0;
	if (!is_vchars(t, n)) {
		*errstr_r = "invalid byte in REQUEST_URI";
		return -1;
	}
	if (t[0] == '/')
		return 0;
	if (n == 1 && t[0] == '*') {
		if (method_len != 7 || memcmp(method, "OPTIONS", 7) != 0) {
			*errstr_r = "REQUEST_URI * without OPTIONS";
			return -1;
		}
		return 0;
	}
	if (n > 7 && prefix_icase(t, n, "http://"))
		skip = 7;
	else if (n > 8 && prefix_icase(t, n, "https://"))
		skip = 8;
	else {
		*errstr_r = "unsupported form of REQUEST_URI";
		return -1;
	}
	for (i = skip; i < n && t[i] != '/' && t[i] != '?'; i++)
		;
	if (i == skip || !is_host(t + skip, i - skip)) {
		*errstr_r = "invalid authority in REQUEST_URI";
		return -1;
	}
	*auth_r = t + skip;
	*auth_len_r = i - skip;
	return 0;
}

/* The target from SCRIPT_NAME, PATH_INFO and QUERY_STRING, for a front
 * end that sends no REQUEST_URI. */
static int put_cgi_target(
    struct writer *w, const struct uwsgi_request *req, const char **errstr_r)
{
	const struct uwsgi_var *sn = uwsgi_get(req, "SCRIPT_NAME");
	const struct uwsgi_var *pi = uwsgi_get(req, "PATH_INFO");
	const struct uwsgi_var *qs = uwsgi_get(req, "QUERY_STRING");
	size_t sn_len = sn != NULL ? sn->val_len : 0;
	size_t pi_len = pi != NULL ? pi->val_len : 0;
	char first;

	if (sn_len + pi_len == 0) {
		put_char(w, '/');
	} else {
		first = sn_len > 0 ? sn->val[0] : pi->val[0];
		if (first != '/') {
			*errstr_r = "SCRIPT_NAME and PATH_INFO do not start "
			            "with /";
			return -1;
		}
		put_path(w, sn != NULL ? sn->val : "", sn_len);
		put_path(w, pi != NULL ? pi->val : "", pi_len);
	}
	if (qs != NULL && qs->val_len > 0) {
		put_char(w, '?');
		put_query(w, qs->val, qs->val_len);
	}
	return 0;
}

/* The name of the field an HTTP_* variable stands for: "HTTP_X_FOO_BAR"
 * is "X-Foo-Bar".  Only the bytes Apache writes are accepted (A-Z, 0-9,
 * '_'): with lower case, "HTTP_Content_Length" would be a second
 * Content-Length that no drop rule catches. */
static int put_field_name(
    struct writer *w, const char *name, size_t n, const char **errstr_r)
{
	bool is_word_start = true;

	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (c == '_') {
			put_char(w, '-');
			is_word_start = true;
			continue;
		}
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
			*errstr_r = "invalid byte in an HTTP_ variable name";
			return -1;
		}
		if (!is_word_start && c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		put_char(w, c);
		is_word_start = false;
	}
	return 0;
}

static bool is_dropped(const struct uwsgi_var *v)
{
	for (size_t i = 0; i < NDROPPED; i++) {
		if (key_is(v->key, v->key_len, &dropped_keys[i]))
			return true;
	}
	return false;
}

static int put_field(struct writer *w, const char *name, const char *val,
    size_t val_len, const char **errstr_r)
{
	if (!http_is_field_value(val, val_len)) {
		*errstr_r = "control byte in a uwsgi variable's value";
		return -1;
	}
	put_str(w, name);
	put(w, ": ", 2);
	put(w, val, val_len);
	put(w, "\r\n", 2);
	return 0;
}

ssize_t uwsgi_to_http(const struct uwsgi_request *req, char *out, size_t size,
    const char **errstr_r)
{
	struct writer w = {.out = out, .size = size};
	const struct uwsgi_var *method = uwsgi_get(req, "REQUEST_METHOD");
	const struct uwsgi_var *uri = uwsgi_get(req, "REQUEST_URI");
	const struct uwsgi_var *host = uwsgi_get(req, "HTTP_HOST");
	const struct uwsgi_var *ct = uwsgi_get(req, "CONTENT_TYPE");
	const struct uwsgi_var *cl = uwsgi_get(req, "CONTENT_LENGTH");
	const char *auth = NULL, *host_val;
	size_t auth_len = 0, host_len, nfields;

	if (method == NULL || !http_is_token(method->val, method->val_len)) {
		*errstr_r = "missing or invalid REQUEST_METHOD";
		return -1;
	}
	/* common/http.c answers CONNECT with 501; no front end forwards it
	 * over uwsgi, so it is refused here rather than passed on. */
	if (method->val_len == 7 && memcmp(method->val, "CONNECT", 7) == 0) {
		*errstr_r = "REQUEST_METHOD CONNECT";
		return -1;
	}
	put(&w, method->val, method->val_len);
	put_char(&w, ' ');
	if (uri != NULL && uri->val_len > 0) {
		if (check_target(uri->val, uri->val_len, method->val,
		        method->val_len, &auth, &auth_len, errstr_r) < 0)
			return -1;
		put(&w, uri->val, uri->val_len);
	} else if (put_cgi_target(&w, req, errstr_r) < 0) {
		return -1;
	}
	put_str(&w, " HTTP/1.1\r\n");

	/* Host, first.  An absolute-form target names the host itself
	 * (RFC 9112 3.2.2), and the worker refuses a Host that differs from
	 * it, so the client's Host is replaced.  A front end that relays an
	 * HTTP/1.0 request without Host still names its virtual host. */
	if (auth != NULL) {
		host_val = auth;
		host_len = auth_len;
	} else if (host != NULL) {
		host_val = host->val;
		host_len = host->val_len;
	} else {
		const struct uwsgi_var *sn = uwsgi_get(req, "SERVER_NAME");

		if (sn == NULL || sn->val_len == 0) {
			*errstr_r = "neither HTTP_HOST nor SERVER_NAME";
			return -1;
		}
		host_val = sn->val;
		host_len = sn->val_len;
	}
	if (!is_host(host_val, host_len)) {
		*errstr_r = "invalid HTTP_HOST or SERVER_NAME";
		return -1;
	}
	put_str(&w, "Host: ");
	put(&w, host_val, host_len);
	put(&w, "\r\n", 2);
	nfields = 1;

	for (size_t i = 0; i < req->nvars; i++) {
		const struct uwsgi_var *v = &req->vars[i];

		if (v->key_len <= 5 || memcmp(v->key, "HTTP_", 5) != 0 ||
		    is_dropped(v))
			continue;
		if (!http_is_field_value(v->val, v->val_len)) {
			*errstr_r = "control byte in a uwsgi variable's value";
			return -1;
		}
		if (put_field_name(&w, v->key + 5, v->key_len - 5, errstr_r) <
		    0)
			return -1;
		put(&w, ": ", 2);
		put(&w, v->val, v->val_len);
		put(&w, "\r\n", 2);
		nfields++;
	}
	if (ct != NULL && ct->val_len > 0) {
		if (put_field(
		        &w, "Content-Type", ct->val, ct->val_len, errstr_r) < 0)
			return -1;
		nfields++;
	}
	/* uwsgi_parse has checked the digits. */
	if (cl != NULL && cl->val_len > 0) {
		put_field(&w, "Content-Length", cl->val, cl->val_len, errstr_r);
		nfields++;
	}
	/* A front connection carries one request (DESIGN.md: a connection
	 * given to a worker never carries another user's request). */
	put_str(&w, "Connection: close\r\n\r\n");
	nfields++;

	if (nfields > HTTP_MAX_HEADERS) {
		*errstr_r = "too many header fields in uwsgi request";
		return -1;
	}
	if (w.is_full) {
		*errstr_r = "uwsgi request head too large";
		return -1;
	}
	return (ssize_t)w.len;
}
