/*
 * test_uwsgi.c: table-driven unit tests of src/router/uwsgi.c, the uwsgi
 * packet parser and its translation into an HTTP/1.1 head.  Packets are
 * built from rows of variables by a small encoder (build_packet) or given
 * as raw bytes; every input is copied into a buffer of exactly its size,
 * so that AddressSanitizer catches a read past the end.  Every prefix of
 * every valid packet must ask for more bytes; every error has a row.
 * Every head the translation writes is parsed again with the worker's
 * strict parser (common/http.c), which must accept all of it and read the
 * same method, target and Host.  Runs as any user, touches no file and
 * no socket.
 */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "uwsgi.h"

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))

/* A variable of a row; string literals keep their exact length, so a
 * value may hold NUL bytes. */
struct kv {
	const char *key;
	size_t key_len;
	const char *val;
	size_t val_len;
};

#define KV(k, v)                                                               \
	{                                                                      \
		k, sizeof(k) - 1, v, sizeof(v) - 1                             \
	}
#define MAXKV 32

/* The variables Apache 2.4.71 (Debian 12) sends through mod_proxy_uwsgi
 * for a plain GET of http://blog.example.com/blog/x?a=1 behind "ProxyPass
 * /blog uwsgi://..." and "SetEnv LODGE_APP alice/blog", in its order (as
 * captured from a real Apache: SetEnv, PATH_INFO, the header fields,
 * ap_add_common_vars, ap_add_cgi_vars), less the header fields,
 * REQUEST_METHOD and REQUEST_URI, which each row adds. */
#define APACHE_VARS                                                            \
	KV("LODGE_APP", "alice/blog"), KV("PATH_INFO", "/x"),                  \
	    KV("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"),   \
	    KV("SERVER_SIGNATURE", ""),                                        \
	    KV("SERVER_SOFTWARE", "Apache/2.4.71 (Debian)"),                   \
	    KV("SERVER_NAME", "blog.example.com"),                             \
	    KV("SERVER_ADDR", "127.0.0.1"), KV("SERVER_PORT", "80"),           \
	    KV("REMOTE_ADDR", "192.0.2.7"),                                    \
	    KV("DOCUMENT_ROOT", "/var/www/html"),                              \
	    KV("REQUEST_SCHEME", "http"), KV("CONTEXT_PREFIX", ""),            \
	    KV("CONTEXT_DOCUMENT_ROOT", "/var/www/html"),                      \
	    KV("SERVER_ADMIN", "[no address given]"),                          \
	    KV("SCRIPT_FILENAME", "proxy:uwsgi://lodge//x"),                   \
	    KV("REMOTE_PORT", "53412"), KV("GATEWAY_INTERFACE", "CGI/1.1"),    \
	    KV("SERVER_PROTOCOL", "HTTP/1.1"), KV("QUERY_STRING", "a=1"),      \
	    KV("SCRIPT_NAME", "/blog")

static uint8_t *copy_exact(const void *in, size_t len)
{
	/* malloc(0) may return NULL: one spare byte, never handed over. */
	uint8_t *b = malloc(len ? len : 1);

	assert_non_null(b);
	if (len)
		memcpy(b, in, len);
	return b;
}

static size_t nkv(const struct kv *vars, size_t max)
{
	size_t n = 0;

	while (n < max && vars[n].key != NULL)
		n++;
	return n;
}

/* Encodes a uwsgi packet (header, then the variables) into out; returns
 * its length.  The encoder of the test, written from the protocol's
 * description, not from the parser. */
static size_t build_packet(uint8_t *out, size_t size, const struct kv *vars,
    size_t nvars)
{
	size_t off = 4;

	for (size_t i = 0; i < nvars; i++) {
		assert_true(off + 4 + vars[i].key_len + vars[i].val_len <= size);
		out[off++] = (uint8_t)(vars[i].key_len & 0xff);
		out[off++] = (uint8_t)(vars[i].key_len >> 8);
		memcpy(out + off, vars[i].key, vars[i].key_len);
		off += vars[i].key_len;
		out[off++] = (uint8_t)(vars[i].val_len & 0xff);
		out[off++] = (uint8_t)(vars[i].val_len >> 8);
		memcpy(out + off, vars[i].val, vars[i].val_len);
		off += vars[i].val_len;
	}
	assert_true(off - 4 <= 0xffff);
	out[0] = 0;
	out[1] = (uint8_t)((off - 4) & 0xff);
	out[2] = (uint8_t)((off - 4) >> 8);
	out[3] = 0;
	return off;
}

#define PKT_MAX (4 + 0xffff)

/* Parses a packet held in a buffer of exactly len bytes. */
static int parse_exact(const void *pkt, size_t len, struct uwsgi_request *req,
    const char **err, uint8_t **copy_r)
{
	uint8_t *b = copy_exact(pkt, len);

	*copy_r = b;
	return uwsgi_parse(b, len, req, err);
}

/* Every variable of req must be the row's, in order, pointing into buf. */
static void check_vars(const char *name, const struct uwsgi_request *req,
    const uint8_t *buf, size_t len, const struct kv *vars, size_t nvars)
{
	if (req->nvars != nvars)
		fail_msg("case \"%s\": %zu variables, want %zu", name,
		    req->nvars, nvars);
	for (size_t i = 0; i < nvars; i++) {
		const struct uwsgi_var *v = &req->vars[i];

		if (v->key_len != vars[i].key_len ||
		    memcmp(v->key, vars[i].key, v->key_len) != 0 ||
		    v->val_len != vars[i].val_len ||
		    memcmp(v->val, vars[i].val, v->val_len) != 0)
			fail_msg("case \"%s\": variable %zu differs", name, i);
		assert_true((const uint8_t *)v->key >= buf &&
		            (const uint8_t *)v->key + v->key_len <= buf + len);
		assert_true((const uint8_t *)v->val >= buf &&
		            (const uint8_t *)v->val + v->val_len <= buf + len);
	}
}

/* ---------------------------------------------------------------------- */
/* uwsgi_parse: packets built from variables                               */
/* ---------------------------------------------------------------------- */

struct parse_row {
	const char *name;
	struct kv vars[MAXKV];
	int ret;
	const char *err;     /* a part of *errstr_r when ret is -1 */
	uint64_t clen;       /* content_length when ret is 1 */
};

static const struct parse_row parse_rows[] = {
    {"Apache GET", {APACHE_VARS, KV("REQUEST_METHOD", "GET"),
                       KV("REQUEST_URI", "/blog/x?a=1"),
                       KV("HTTP_HOST", "blog.example.com")},
        1, NULL, 0},
    {"one variable", {KV("A", "")}, 1, NULL, 0},
    {"key of every printable byte",
        {KV("!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ"
            "[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~",
            "x")},
        1, NULL, 0},
    {"values may hold any byte",
        {KV("A", "\0\r\n\x7f\xff"), KV("B", "\x01 \t")}, 1, NULL, 0},
    {"empty CONTENT_LENGTH", {KV("CONTENT_LENGTH", "")}, 1, NULL, 0},
    {"CONTENT_LENGTH 0", {KV("CONTENT_LENGTH", "0")}, 1, NULL, 0},
    {"CONTENT_LENGTH 007", {KV("CONTENT_LENGTH", "007")}, 1, NULL, 7},
    {"CONTENT_LENGTH of 18 digits",
        {KV("CONTENT_LENGTH", "999999999999999999")}, 1, NULL,
        999999999999999999ull},
    {"repeated variable nobody relies on",
        {KV("HTTP_COOKIE", "a=1"), KV("HTTP_COOKIE", "b=2")}, 1, NULL, 0},
    {"CONTENT_LENGTH of 19 digits",
        {KV("CONTENT_LENGTH", "1000000000000000000")}, -1, "CONTENT_LENGTH",
        0},
    {"CONTENT_LENGTH with a letter", {KV("CONTENT_LENGTH", "12a")}, -1,
        "CONTENT_LENGTH", 0},
    {"CONTENT_LENGTH hex", {KV("CONTENT_LENGTH", "0x10")}, -1,
        "CONTENT_LENGTH", 0},
    {"CONTENT_LENGTH negative", {KV("CONTENT_LENGTH", "-1")}, -1,
        "CONTENT_LENGTH", 0},
    {"CONTENT_LENGTH with a plus", {KV("CONTENT_LENGTH", "+1")}, -1,
        "CONTENT_LENGTH", 0},
    {"CONTENT_LENGTH with a leading space", {KV("CONTENT_LENGTH", " 1")}, -1,
        "CONTENT_LENGTH", 0},
    {"CONTENT_LENGTH with a trailing space", {KV("CONTENT_LENGTH", "1 ")},
        -1, "CONTENT_LENGTH", 0},
    {"CONTENT_LENGTH with a NUL", {KV("CONTENT_LENGTH", "1\0")}, -1,
        "CONTENT_LENGTH", 0},
    {"CONTENT_LENGTH list", {KV("CONTENT_LENGTH", "1,1")}, -1,
        "CONTENT_LENGTH", 0},
    {"key with a space", {KV("A B", "x")}, -1, "invalid byte", 0},
    {"key with a tab", {KV("A\tB", "x")}, -1, "invalid byte", 0},
    {"key with a NUL", {KV("A\0", "x")}, -1, "invalid byte", 0},
    {"key with DEL", {KV("A\x7f", "x")}, -1, "invalid byte", 0},
    {"key with a high byte", {KV("\xc3\xa9", "x")}, -1, "invalid byte", 0},
    {"key with CR LF", {KV("A\r\nB", "x")}, -1, "invalid byte", 0},
    {"empty key", {KV("A", "1"), KV("", "x")}, -1, "empty", 0},
};

static void test_parse_row(void **state)
{
	const struct parse_row *row = *state;
	static uint8_t pkt[PKT_MAX + 16];
	static struct uwsgi_request req;
	size_t nvars = nkv(row->vars, MAXKV);
	size_t len = build_packet(pkt, sizeof(pkt), row->vars, nvars);
	const char *err = NULL;
	uint8_t *b;
	int rc;

	rc = parse_exact(pkt, len, &req, &err, &b);
	if (rc != row->ret)
		fail_msg("case \"%s\": uwsgi_parse returned %d (%s), want %d",
		    row->name, rc, err ? err : "no error", row->ret);
	if (rc < 0) {
		if (err == NULL || strstr(err, row->err) == NULL)
			fail_msg("case \"%s\": error \"%s\", want one with "
			         "\"%s\"",
			    row->name, err ? err : "(null)", row->err);
	} else {
		assert_int_equal(req.packet_len, len);
		assert_int_equal(req.content_length, row->clen);
		check_vars(row->name, &req, b, len, row->vars, nvars);
	}
	free(b);
}

/* Every prefix of a valid packet asks for more bytes, and the whole packet
 * followed by a body is complete with the body left alone. */
static void test_parse_prefixes(void **state)
{
	static uint8_t pkt[PKT_MAX + 16];
	static struct uwsgi_request req;

	for (size_t r = 0; r < NROWS(parse_rows); r++) {
		const struct parse_row *row = &parse_rows[r];
		size_t nvars = nkv(row->vars, MAXKV);
		size_t len = build_packet(pkt, sizeof(pkt), row->vars, nvars);
		const char *err = NULL;
		uint8_t *b;
		int rc;

		if (row->ret != 1)
			continue;
		for (size_t n = 0; n < len; n++) {
			rc = parse_exact(pkt, n, &req, &err, &b);
			free(b);
			if (rc != 0)
				fail_msg("case \"%s\": prefix of %zu of %zu "
				         "bytes gave %d (%s), want 0",
				    row->name, n, len, rc, err ? err : "");
		}
		memcpy(pkt + len, "BODY\0\x01", 6);
		rc = parse_exact(pkt, len + 6, &req, &err, &b);
		if (rc != 1)
			fail_msg("case \"%s\": with a body: %d", row->name, rc);
		assert_int_equal(req.packet_len, len);
		assert_memory_equal(b + req.packet_len, "BODY\0\x01", 6);
		check_vars(row->name, &req, b, len + 6, row->vars, nvars);
		free(b);
	}
}

/* ---------------------------------------------------------------------- */
/* uwsgi_parse: raw packets                                                */
/* ---------------------------------------------------------------------- */

struct raw_row {
	const char *name;
	const char *in;
	size_t in_len;
	int ret;
	const char *err;
};

#define RAW(nm, b, r, e)                                                       \
	{                                                                      \
		nm, b, sizeof(b) - 1, r, e                                     \
	}

static const struct raw_row raw_rows[] = {
    RAW("nothing", "", 0, NULL),
    RAW("three bytes of a header", "\x00\x06\x00", 0, NULL),
    RAW("header only", "\x00\x06\x00\x00", 0, NULL),
    RAW("header and part of the variables", "\x00\x06\x00\x00\x01\x00", 0,
        NULL),
    RAW("smallest packet", "\x00\x05\x00\x00\x01\x00" "A" "\x00\x00", 1,
        NULL),
    RAW("modifier1 5", "\x05\x06\x00\x00\x01\x00" "A" "\x01\x00" "B", -1,
        "modifier1"),
    RAW("modifier1 0xff", "\xff\x06\x00\x00\x01\x00" "A" "\x01\x00" "B", -1,
        "modifier1"),
    RAW("modifier2 1", "\x00\x06\x00\x01\x01\x00" "A" "\x01\x00" "B", -1,
        "modifier2"),
    RAW("HTTP on a uwsgi socket", "GET / HTTP/1.1\r\n", -1, "modifier1"),
    RAW("datasize 0", "\x00\x00\x00\x00", -1, "without variables"),
    RAW("datasize 0 and more bytes", "\x00\x00\x00\x00\x01\x00" "A", -1,
        "without variables"),
    RAW("one byte of junk after the variables",
        "\x00\x06\x00\x00\x01\x00" "A" "\x00\x00" "X", -1, "past"),
    RAW("key length past the packet", "\x00\x03\x00\x00\x05\x00" "A", -1,
        "past"),
    RAW("key length 0xffff", "\x00\x04\x00\x00\xff\xff" "AB", -1, "past"),
    RAW("no room for the value length", "\x00\x03\x00\x00\x01\x00" "A", -1,
        "past"),
    RAW("half a value length", "\x00\x04\x00\x00\x01\x00" "A" "\x00", -1,
        "past"),
    RAW("value length past the packet",
        "\x00\x06\x00\x00\x01\x00" "A" "\x05\x00" "B", -1, "past"),
    RAW("value length 0xffff", "\x00\x06\x00\x00\x01\x00" "A" "\xff\xff" "B",
        -1, "past"),
    RAW("value length past the packet into the body",
        "\x00\x06\x00\x00\x01\x00" "A" "\x02\x00" "BC", -1, "past"),
    RAW("empty key", "\x00\x04\x00\x00\x00\x00\x00\x00", -1, "empty"),
    RAW("key with a space", "\x00\x05\x00\x00\x01\x00 \x00\x00", -1,
        "invalid byte"),
};

static void test_raw_row(void **state)
{
	const struct raw_row *row = *state;
	struct uwsgi_request *req = malloc(sizeof(*req));
	const char *err = NULL;
	uint8_t *b;
	int rc;

	assert_non_null(req);
	rc = parse_exact(row->in, row->in_len, req, &err, &b);
	if (rc != row->ret)
		fail_msg("case \"%s\": uwsgi_parse returned %d (%s), want %d",
		    row->name, rc, err ? err : "no error", row->ret);
	if (rc < 0 && (err == NULL || strstr(err, row->err) == NULL))
		fail_msg("case \"%s\": error \"%s\", want one with \"%s\"",
		    row->name, err ? err : "(null)", row->err);
	if (rc == 1)
		assert_int_equal(req->packet_len, row->in_len);
	free(b);
	free(req);
}

/* The variables that may not repeat, as documented in uwsgi.h. */
static const char *const unique_keys[] = {
    "REQUEST_METHOD",
    "REQUEST_URI",
    "CONTENT_LENGTH",
    "CONTENT_TYPE",
    "HTTP_HOST",
    "LODGE_APP",
    "HTTP_X_LODGE_APP",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "HTTPS",
    "SERVER_NAME",
    "SERVER_PORT",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
};

/* Each once is fine; each twice, anywhere in the packet, is refused. */
static void test_duplicates(void **state)
{
	static uint8_t pkt[PKT_MAX];
	static struct uwsgi_request req;
	struct kv vars[5];
	const char *err = NULL;
	uint8_t *b;
	size_t len;
	int rc;

	for (size_t i = 0; i < NROWS(unique_keys); i++) {
		const char *k = unique_keys[i];
		struct kv v = {k, strlen(k), "1", 1};

		vars[0] = (struct kv)KV("X", "");
		vars[1] = v;
		vars[2] = (struct kv)KV("Y", "");
		vars[3] = v;
		vars[4] = (struct kv)KV("Z", "");
		len = build_packet(pkt, sizeof(pkt), vars, 3);
		rc = parse_exact(pkt, len, &req, &err, &b);
		free(b);
		if (rc != 1)
			fail_msg("%s once: %d (%s)", k, rc, err ? err : "");
		len = build_packet(pkt, sizeof(pkt), vars, 5);
		err = NULL;
		rc = parse_exact(pkt, len, &req, &err, &b);
		free(b);
		if (rc != -1 || err == NULL || strstr(err, "repeated") == NULL)
			fail_msg("%s twice: %d (%s)", k, rc, err ? err : "");
		/* A longer or shorter key is another variable. */
		vars[3].key_len--;
		len = build_packet(pkt, sizeof(pkt), vars, 5);
		rc = parse_exact(pkt, len, &req, &err, &b);
		free(b);
		if (rc != 1)
			fail_msg("%s and a prefix of it: %d", k, rc);
	}
	/* The bit set behind the check must not wrap: all of them at once,
	 * then the last one again. */
	{
		struct kv all[NROWS(unique_keys) + 1];

		for (size_t i = 0; i < NROWS(unique_keys); i++)
			all[i] = (struct kv){unique_keys[i],
			    strlen(unique_keys[i]), "1", 1};
		len = build_packet(
		    pkt, sizeof(pkt), all, NROWS(unique_keys));
		rc = parse_exact(pkt, len, &req, &err, &b);
		free(b);
		assert_int_equal(rc, 1);
		all[NROWS(unique_keys)] = all[NROWS(unique_keys) - 1];
		len = build_packet(
		    pkt, sizeof(pkt), all, NROWS(unique_keys) + 1);
		rc = parse_exact(pkt, len, &req, &err, &b);
		free(b);
		assert_int_equal(rc, -1);
	}
}

/* UWSGI_MAX_VARS variables are fine, one more is refused; the largest
 * datasize (0xffff) is read whole. */
static void test_limits(void **state)
{
	static uint8_t pkt[PKT_MAX + 8];
	static struct uwsgi_request req;
	static struct kv vars[UWSGI_MAX_VARS + 1];
	static char big[0xffff];
	const char *err = NULL;
	uint8_t *b;
	size_t len;
	int rc;

	for (size_t i = 0; i <= UWSGI_MAX_VARS; i++)
		vars[i] = (struct kv)KV("A", "");
	len = build_packet(pkt, sizeof(pkt), vars, UWSGI_MAX_VARS);
	rc = parse_exact(pkt, len, &req, &err, &b);
	free(b);
	assert_int_equal(rc, 1);
	assert_int_equal(req.nvars, UWSGI_MAX_VARS);
	len = build_packet(pkt, sizeof(pkt), vars, UWSGI_MAX_VARS + 1);
	rc = parse_exact(pkt, len, &req, &err, &b);
	free(b);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, "too many"));

	/* One variable filling datasize 0xffff: key "K", 0xffff - 5 bytes of
	 * value. */
	memset(big, 'v', sizeof(big));
	vars[0] = (struct kv){"K", 1, big, 0xffff - 5};
	len = build_packet(pkt, sizeof(pkt), vars, 1);
	assert_int_equal(len, 4 + 0xffff);
	assert_int_equal(pkt[1], 0xff);
	assert_int_equal(pkt[2], 0xff);
	rc = parse_exact(pkt, len, &req, &err, &b);
	assert_int_equal(rc, 1);
	assert_int_equal(req.packet_len, 4 + 0xffff);
	assert_int_equal(req.vars[0].val_len, 0xffff - 5);
	free(b);
	rc = parse_exact(pkt, len - 1, &req, &err, &b);
	assert_int_equal(rc, 0);
	free(b);
}

static void test_get(void **state)
{
	static uint8_t pkt[1024];
	static struct uwsgi_request req;
	const struct kv vars[] = {KV("HTTP_HOST", "a"), KV("HTTP_HOSTS", "b"),
	    KV("HTTP_COOKIE", "1"), KV("HTTP_COOKIE", "2"), KV("E", "")};
	const struct uwsgi_var *v;
	const char *err = NULL;
	size_t len = build_packet(pkt, sizeof(pkt), vars, NROWS(vars));

	assert_int_equal(uwsgi_parse(pkt, len, &req, &err), 1);
	v = uwsgi_get(&req, "HTTP_HOST");
	assert_non_null(v);
	assert_int_equal(v->val_len, 1);
	assert_memory_equal(v->val, "a", 1);
	v = uwsgi_get(&req, "HTTP_HOSTS");
	assert_non_null(v);
	assert_memory_equal(v->val, "b", 1);
	/* The first of two. */
	v = uwsgi_get(&req, "HTTP_COOKIE");
	assert_non_null(v);
	assert_memory_equal(v->val, "1", 1);
	v = uwsgi_get(&req, "E");
	assert_non_null(v);
	assert_int_equal(v->val_len, 0);
	assert_null(uwsgi_get(&req, "HTTP_HOS"));
	assert_null(uwsgi_get(&req, "http_host"));
	assert_null(uwsgi_get(&req, "HTTP_HOSTSS"));
	assert_null(uwsgi_get(&req, ""));
}

/* ---------------------------------------------------------------------- */
/* uwsgi_to_http                                                           */
/* ---------------------------------------------------------------------- */

struct http_row {
	const char *name;
	struct kv vars[MAXKV];
	const char *head; /* the whole expected head; NULL: an error */
	const char *err;  /* a part of *errstr_r for an error */
	size_t size;      /* of out; 0: HTTP_DEFAULT_MAX_HEAD */
};

#define GET_URI(u) KV("REQUEST_METHOD", "GET"), KV("REQUEST_URI", u)
#define GET_ROOT GET_URI("/"), KV("HTTP_HOST", "h")

/* clang-format off */
static const struct http_row http_rows[] = {
    /* What Apache sends. */
    {"Apache GET", {APACHE_VARS, KV("REQUEST_METHOD", "GET"),
        KV("REQUEST_URI", "/blog/x?a=1"), KV("HTTP_HOST", "blog.example.com"),
        KV("HTTP_USER_AGENT", "curl/7.88.1"), KV("HTTP_ACCEPT", "*/*"),
        KV("HTTP_X_LODGE_APP", "alice/blog"),
        KV("HTTP_X_FORWARDED_FOR", "198.51.100.2")},
        "GET /blog/x?a=1 HTTP/1.1\r\n"
        "Host: blog.example.com\r\n"
        "User-Agent: curl/7.88.1\r\n"
        "Accept: */*\r\n"
        "X-Lodge-App: alice/blog\r\n"
        "X-Forwarded-For: 198.51.100.2\r\n"
        "Connection: close\r\n\r\n", NULL, 0},
    {"Apache POST", {APACHE_VARS, KV("REQUEST_METHOD", "POST"),
        KV("REQUEST_URI", "/blog/form"), KV("HTTP_HOST", "blog.example.com"),
        KV("CONTENT_TYPE", "application/x-www-form-urlencoded"),
        KV("CONTENT_LENGTH", "11"), KV("HTTP_COOKIE", "s=1; t=2")},
        "POST /blog/form HTTP/1.1\r\n"
        "Host: blog.example.com\r\n"
        "Cookie: s=1; t=2\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        "Content-Length: 11\r\n"
        "Connection: close\r\n\r\n", NULL, 0},
    {"CONTENT_LENGTH 0", {GET_ROOT, KV("CONTENT_LENGTH", "0")},
        "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n", NULL, 0},
    {"empty CONTENT_LENGTH and CONTENT_TYPE",
        {GET_ROOT, KV("CONTENT_LENGTH", ""), KV("CONTENT_TYPE", "")},
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", NULL, 0},
    {"field names", {GET_ROOT, KV("HTTP_X_FOO_BAR", "1"), KV("HTTP_DNT", "1"),
        KV("HTTP_X__A1", "2"), KV("HTTP_SEC_CH_UA_MOBILE", "?0"),
        KV("HTTP_AUTHORIZATION", "Basic YTpi")},
        "GET / HTTP/1.1\r\nHost: h\r\nX-Foo-Bar: 1\r\nDnt: 1\r\n"
        "X--A1: 2\r\nSec-Ch-Ua-Mobile: ?0\r\nAuthorization: Basic YTpi\r\n"
        "Connection: close\r\n\r\n", NULL, 0},
    {"repeated field kept in order", {GET_ROOT, KV("HTTP_X_A", "1"),
        KV("HTTP_X_B", "2"), KV("HTTP_X_A", "3")},
        "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nX-B: 2\r\nX-A: 3\r\n"
        "Connection: close\r\n\r\n", NULL, 0},
    {"hop-by-hop and framing fields dropped", {GET_ROOT,
        KV("HTTP_CONNECTION", "keep-alive, Upgrade"),
        KV("HTTP_KEEP_ALIVE", "300"), KV("HTTP_PROXY", "http://evil:3128"),
        KV("HTTP_TE", "trailers"), KV("HTTP_TRANSFER_ENCODING", "chunked"),
        KV("HTTP_UPGRADE", "websocket"), KV("HTTP_CONTENT_LENGTH", "5"),
        KV("HTTP_CONTENT_TYPE", "text/evil"), KV("HTTP_EXPECT", "100-continue"),
        KV("HTTP_X_KEPT", "yes")},
        "GET / HTTP/1.1\r\nHost: h\r\nX-Kept: yes\r\n"
        "Connection: close\r\n\r\n", NULL, 0},
    {"Expect other than 100-continue dropped",
        {GET_ROOT, KV("HTTP_EXPECT", "teapot")},
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", NULL, 0},
    {"variables that are not HTTP_ fields", {GET_ROOT, KV("HTTPS", "on"),
        KV("HTTP", "x"), KV("HTTP_", "x"), KV("LODGE_APP", "a/b"),
        KV("http_x", "y")},
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", NULL, 0},
    {"values: obs-text, tab, inner spaces, empty", {GET_ROOT,
        KV("HTTP_X_A", "caf\xc3\xa9"), KV("HTTP_X_B", "a\tb"),
        KV("HTTP_X_C", "a  b"), KV("HTTP_X_D", "")},
        "GET / HTTP/1.1\r\nHost: h\r\nX-A: caf\xc3\xa9\r\nX-B: a\tb\r\n"
        "X-C: a  b\r\nX-D: \r\nConnection: close\r\n\r\n", NULL, 0},
    {"other methods", {KV("REQUEST_METHOD", "PROPFIND"),
        KV("REQUEST_URI", "/dav/"), KV("HTTP_HOST", "h")},
        "PROPFIND /dav/ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        NULL, 0},
    {"OPTIONS *", {KV("REQUEST_METHOD", "OPTIONS"), KV("REQUEST_URI", "*"),
        KV("HTTP_HOST", "h")},
        "OPTIONS * HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", NULL, 0},
    {"target with every VCHAR", {GET_URI("/!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`"
        "az{|}~"), KV("HTTP_HOST", "h")},
        "GET /!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~ HTTP/1.1\r\n"
        "Host: h\r\nConnection: close\r\n\r\n", NULL, 0},
    {"Host of every allowed byte", {GET_URI("/"),
        KV("HTTP_HOST", "aZ09-._~!$&'()*+,;=%:[]")},
        "GET / HTTP/1.1\r\nHost: aZ09-._~!$&'()*+,;=%:[]\r\n"
        "Connection: close\r\n\r\n", NULL, 0},
    {"IPv6 Host with a port", {GET_URI("/"), KV("HTTP_HOST", "[::1]:8080")},
        "GET / HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n",
        NULL, 0},
    {"empty Host kept", {GET_URI("/"), KV("HTTP_HOST", "")},
        "GET / HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n", NULL, 0},
    {"no HTTP_HOST: SERVER_NAME", {GET_URI("/"),
        KV("SERVER_NAME", "blog.example.com"), KV("SERVER_PORT", "80")},
        "GET / HTTP/1.1\r\nHost: blog.example.com\r\n"
        "Connection: close\r\n\r\n", NULL, 0},
    {"absolute-form: Host from the target", {GET_URI("http://Example.COM:81/x?y"),
        KV("HTTP_HOST", "other.example")},
        "GET http://Example.COM:81/x?y HTTP/1.1\r\nHost: Example.COM:81\r\n"
        "Connection: close\r\n\r\n", NULL, 0},
    {"absolute-form https without a path", {GET_URI("HTTPS://h.example")},
        "GET HTTPS://h.example HTTP/1.1\r\nHost: h.example\r\n"
        "Connection: close\r\n\r\n", NULL, 0},
    {"absolute-form with only a query", {GET_URI("http://h?q=1")},
        "GET http://h?q=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        NULL, 0},
    /* No REQUEST_URI: the target from the CGI variables. */
    {"from SCRIPT_NAME, PATH_INFO, QUERY_STRING",
        {KV("REQUEST_METHOD", "GET"), KV("SCRIPT_NAME", "/blog"),
        KV("PATH_INFO", "/a b/%?#\xc3\xa9\"<>\\^`{|}[]\x01\x7f/~:@!$&'()*+,;="),
        KV("QUERY_STRING", "x=1 2&y=%41\xff#"), KV("HTTP_HOST", "h")},
        "GET /blog/a%20b/%25%3F%23%C3%A9%22%3C%3E%5C%5E%60%7B%7C%7D%5B%5D"
        "%01%7F/~:@!$&'()*+,;=?x=1%202&y=%41%FF# HTTP/1.1\r\n"
        "Host: h\r\nConnection: close\r\n\r\n", NULL, 0},
    {"PATH_INFO with a NUL", {KV("REQUEST_METHOD", "GET"),
        KV("PATH_INFO", "/a\0b"), KV("HTTP_HOST", "h")},
        "GET /a%00b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", NULL, 0},
    {"empty REQUEST_URI: CGI variables", {KV("REQUEST_METHOD", "GET"),
        KV("REQUEST_URI", ""), KV("PATH_INFO", "/p"), KV("HTTP_HOST", "h")},
        "GET /p HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", NULL, 0},
    {"only SCRIPT_NAME", {KV("REQUEST_METHOD", "GET"),
        KV("SCRIPT_NAME", "/app"), KV("QUERY_STRING", ""), KV("HTTP_HOST", "h")},
        "GET /app HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", NULL, 0},
    {"no path at all: /", {KV("REQUEST_METHOD", "GET"),
        KV("QUERY_STRING", "q"), KV("HTTP_HOST", "h")},
        "GET /?q HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", NULL, 0},
    {"SCRIPT_NAME without a slash", {KV("REQUEST_METHOD", "GET"),
        KV("SCRIPT_NAME", "blog"), KV("PATH_INFO", "/x"), KV("HTTP_HOST", "h")},
        NULL, "start with /", 0},
    {"PATH_INFO without a slash", {KV("REQUEST_METHOD", "GET"),
        KV("PATH_INFO", "x"), KV("HTTP_HOST", "h")},
        NULL, "start with /", 0},

    /* Method. */
    {"no REQUEST_METHOD", {KV("REQUEST_URI", "/"), KV("HTTP_HOST", "h")},
        NULL, "REQUEST_METHOD", 0},
    {"empty REQUEST_METHOD", {KV("REQUEST_METHOD", ""), KV("REQUEST_URI", "/"),
        KV("HTTP_HOST", "h")}, NULL, "REQUEST_METHOD", 0},
    {"method with a space", {KV("REQUEST_METHOD", "GET /evil HTTP/1.1\r\nX:"),
        KV("REQUEST_URI", "/"), KV("HTTP_HOST", "h")}, NULL,
        "REQUEST_METHOD", 0},
    {"method with a slash", {KV("REQUEST_METHOD", "G/T"),
        KV("REQUEST_URI", "/"), KV("HTTP_HOST", "h")}, NULL,
        "REQUEST_METHOD", 0},
    {"method with a NUL", {KV("REQUEST_METHOD", "GET\0"),
        KV("REQUEST_URI", "/"), KV("HTTP_HOST", "h")}, NULL,
        "REQUEST_METHOD", 0},
    {"CONNECT", {KV("REQUEST_METHOD", "CONNECT"),
        KV("REQUEST_URI", "/"), KV("HTTP_HOST", "h")}, NULL, "CONNECT", 0},

    /* Target. */
    {"target with a space", {GET_URI("/a b"), KV("HTTP_HOST", "h")}, NULL,
        "REQUEST_URI", 0},
    {"target splitting the request line",
        {GET_URI("/ HTTP/1.1\r\nHost: evil\r\n\r\nGET /"), KV("HTTP_HOST", "h")},
        NULL, "REQUEST_URI", 0},
    {"target with LF", {GET_URI("/\n"), KV("HTTP_HOST", "h")}, NULL,
        "REQUEST_URI", 0},
    {"target with a NUL", {GET_URI("/\0"), KV("HTTP_HOST", "h")}, NULL,
        "REQUEST_URI", 0},
    {"target with DEL", {GET_URI("/\x7f"), KV("HTTP_HOST", "h")}, NULL,
        "REQUEST_URI", 0},
    {"target with a high byte", {GET_URI("/\xc3\xa9"), KV("HTTP_HOST", "h")},
        NULL, "REQUEST_URI", 0},
    {"relative target", {GET_URI("x"), KV("HTTP_HOST", "h")}, NULL,
        "form", 0},
    {"* without OPTIONS", {GET_URI("*"), KV("HTTP_HOST", "h")}, NULL,
        "OPTIONS", 0},
    {"*x with OPTIONS", {KV("REQUEST_METHOD", "OPTIONS"), KV("REQUEST_URI", "*x"),
        KV("HTTP_HOST", "h")}, NULL, "form", 0},
    {"ftp target", {GET_URI("ftp://h/x"), KV("HTTP_HOST", "h")}, NULL,
        "form", 0},
    {"http:// alone", {GET_URI("http://"), KV("HTTP_HOST", "h")}, NULL,
        "form", 0},
    {"https:// alone", {GET_URI("https://"), KV("HTTP_HOST", "h")}, NULL,
        "form", 0},
    {"empty authority", {GET_URI("http:///x"), KV("HTTP_HOST", "h")}, NULL,
        "authority", 0},
    {"empty authority before a query", {GET_URI("http://?x"),
        KV("HTTP_HOST", "h")}, NULL, "authority", 0},
    {"userinfo in the authority", {GET_URI("http://u@h/x"),
        KV("HTTP_HOST", "h")}, NULL, "authority", 0},
    {"authority with a backslash", {GET_URI("http://a\\b/x"),
        KV("HTTP_HOST", "h")}, NULL, "authority", 0},

    /* Host. */
    {"no Host at all", {GET_URI("/")}, NULL, "SERVER_NAME", 0},
    {"empty SERVER_NAME", {GET_URI("/"), KV("SERVER_NAME", "")}, NULL,
        "SERVER_NAME", 0},
    {"Host with a space", {GET_URI("/"), KV("HTTP_HOST", "a b")}, NULL,
        "HTTP_HOST", 0},
    {"Host with a slash", {GET_URI("/"), KV("HTTP_HOST", "a/b")}, NULL,
        "HTTP_HOST", 0},
    {"Host with a userinfo", {GET_URI("/"), KV("HTTP_HOST", "u@h")}, NULL,
        "HTTP_HOST", 0},
    {"Host with CR LF", {GET_URI("/"),
        KV("HTTP_HOST", "h\r\nTransfer-Encoding: chunked")}, NULL,
        "HTTP_HOST", 0},
    {"Host with a NUL", {GET_URI("/"), KV("HTTP_HOST", "h\0")}, NULL,
        "HTTP_HOST", 0},
    {"SERVER_NAME with a space", {GET_URI("/"), KV("SERVER_NAME", "a b")},
        NULL, "SERVER_NAME", 0},

    /* Injection through names and values. */
    {"value with CR LF", {GET_ROOT,
        KV("HTTP_X_A", "1\r\nTransfer-Encoding: chunked")}, NULL, "control", 0},
    {"value with a bare LF", {GET_ROOT, KV("HTTP_X_A", "1\nX-B: 2")}, NULL,
        "control", 0},
    {"value with a bare CR", {GET_ROOT, KV("HTTP_X_A", "1\rX-B: 2")}, NULL,
        "control", 0},
    {"value with a NUL", {GET_ROOT, KV("HTTP_X_A", "a\0b")}, NULL, "control",
        0},
    {"value with DEL", {GET_ROOT, KV("HTTP_X_A", "a\x7f")}, NULL, "control", 0},
    {"value with ESC", {GET_ROOT, KV("HTTP_X_A", "\x1b[31m")}, NULL,
        "control", 0},
    {"CONTENT_TYPE with CR LF", {GET_ROOT,
        KV("CONTENT_TYPE", "text/plain\r\nContent-Length: 5")}, NULL,
        "control", 0},
    {"lower-case name spelling Content-Length", {GET_ROOT,
        KV("HTTP_Content_Length", "5")}, NULL, "HTTP_ variable name", 0},
    {"lower-case name spelling Transfer-Encoding", {GET_ROOT,
        KV("HTTP_TRANSFER_encoding", "chunked")}, NULL, "HTTP_ variable name",
        0},
    {"name with a dash", {GET_ROOT, KV("HTTP_X-A", "1")}, NULL,
        "HTTP_ variable name", 0},
    {"name with a colon", {GET_ROOT, KV("HTTP_X:A", "1")}, NULL,
        "HTTP_ variable name", 0},
    {"name with a dot", {GET_ROOT, KV("HTTP_X.A", "1")}, NULL,
        "HTTP_ variable name", 0},
    {"dropped name with a bad value is still dropped", {GET_ROOT,
        KV("HTTP_CONNECTION", "a\r\nb")},
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", NULL, 0},

    /* Size. */
    {"exactly the size of out", {GET_ROOT},
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", NULL, 46},
    {"one byte too small", {GET_ROOT}, NULL, "too large", 45},
    {"far too small", {GET_ROOT}, NULL, "too large", 3},
    {"no room at all", {GET_ROOT}, NULL, "too large", 1},
};
/* clang-format on */

/* Parses head[0..len) with the worker's parser; it must take all of it. */
static void check_strict(const char *name, const char *head, size_t len,
    const struct uwsgi_request *req)
{
	struct http_request *hr = malloc(sizeof(*hr));
	const struct uwsgi_var *m = uwsgi_get(req, "REQUEST_METHOD");
	char *copy = (char *)copy_exact(head, len);
	const char *err = NULL;
	int status = 0, rc;

	assert_non_null(hr);
	rc = http_parse_request(copy, len, len, hr, &status, &err);
	if (rc != 1 || hr->head_len != len)
		fail_msg("case \"%s\": strict parser: %d (%d %s), head_len %zu "
		         "of %zu",
		    name, rc, status, err ? err : "", hr->head_len, len);
	assert_non_null(m);
	assert_int_equal(hr->method_len, m->val_len);
	assert_memory_equal(hr->method, m->val, m->val_len);
	assert_false(hr->is_keep_alive);
	assert_non_null(hr->host);
	if (req->content_length > 0) {
		assert_int_equal(hr->body_kind, HTTP_BODY_LENGTH);
		assert_int_equal(hr->content_length, req->content_length);
	} else {
		const struct uwsgi_var *cl = uwsgi_get(req, "CONTENT_LENGTH");

		assert_int_equal(hr->body_kind, cl != NULL && cl->val_len > 0
		                                    ? HTTP_BODY_LENGTH
		                                    : HTTP_BODY_NONE);
	}
	free(copy);
	free(hr);
}

static void test_http_row(void **state)
{
	const struct http_row *row = *state;
	static uint8_t pkt[PKT_MAX];
	static struct uwsgi_request req;
	size_t nvars = nkv(row->vars, MAXKV);
	size_t len = build_packet(pkt, sizeof(pkt), row->vars, nvars);
	size_t size = row->size ? row->size : HTTP_DEFAULT_MAX_HEAD;
	char *out = malloc(size);
	const char *err = NULL;
	ssize_t n;

	assert_non_null(out);
	if (uwsgi_parse(pkt, len, &req, &err) != 1)
		fail_msg("case \"%s\": the packet does not parse: %s",
		    row->name, err);
	n = uwsgi_to_http(&req, out, size, &err);
	if (row->head == NULL) {
		if (n != -1)
			fail_msg("case \"%s\": translated to \"%.*s\", want an "
			         "error",
			    row->name, (int)(n > 0 ? n : 0), out);
		if (err == NULL || strstr(err, row->err) == NULL)
			fail_msg("case \"%s\": error \"%s\", want one with "
			         "\"%s\"",
			    row->name, err ? err : "(null)", row->err);
	} else {
		if (n < 0)
			fail_msg("case \"%s\": error \"%s\"", row->name, err);
		if ((size_t)n != strlen(row->head) ||
		    memcmp(out, row->head, (size_t)n) != 0)
			fail_msg("case \"%s\": got\n%.*s\nwant\n%s", row->name,
			    (int)n, out, row->head);
		check_strict(row->name, out, (size_t)n, &req);
	}
	free(out);
}

/* HTTP_MAX_HEADERS fields in all (Host, the HTTP_* ones, Connection) are
 * fine; one more is refused, as the worker would refuse it (431). */
static void test_field_count(void **state)
{
	static uint8_t pkt[PKT_MAX];
	static struct uwsgi_request req;
	static struct kv vars[HTTP_MAX_HEADERS + 4];
	static char names[HTTP_MAX_HEADERS][16];
	static char out[HTTP_DEFAULT_MAX_HEAD];
	const char *err = NULL;
	size_t n = 0, len, nfields = HTTP_MAX_HEADERS - 2;
	ssize_t hl;

	vars[n++] = (struct kv)KV("REQUEST_METHOD", "GET");
	vars[n++] = (struct kv)KV("REQUEST_URI", "/");
	vars[n++] = (struct kv)KV("HTTP_HOST", "h");
	for (size_t i = 0; i <= nfields; i++) {
		snprintf(names[i], sizeof(names[i]), "HTTP_X_%zu", i);
		vars[n++] = (struct kv){names[i], strlen(names[i]), "v", 1};
	}
	len = build_packet(pkt, sizeof(pkt), vars, n - 1);
	assert_int_equal(uwsgi_parse(pkt, len, &req, &err), 1);
	hl = uwsgi_to_http(&req, out, sizeof(out), &err);
	assert_true(hl > 0);
	check_strict("HTTP_MAX_HEADERS fields", out, (size_t)hl, &req);

	len = build_packet(pkt, sizeof(pkt), vars, n);
	assert_int_equal(uwsgi_parse(pkt, len, &req, &err), 1);
	assert_int_equal(uwsgi_to_http(&req, out, sizeof(out), &err), -1);
	assert_non_null(strstr(err, "too many"));
}

/* The largest packet gives a head of about the same size: within
 * HTTP_DEFAULT_MAX_HEAD it is accepted, in a smaller out refused. */
static void test_large_head(void **state)
{
	static uint8_t pkt[PKT_MAX];
	static struct uwsgi_request req;
	static char big[0xffff], out[HTTP_DEFAULT_MAX_HEAD];
	struct kv vars[4] = {KV("REQUEST_METHOD", "GET"),
	    KV("REQUEST_URI", "/"), KV("HTTP_HOST", "h")};
	/* The other variables take 21 + 16 + 14 bytes, HTTP_COOKIE 15 and
	 * its value. */
	size_t fixed = 21 + 16 + 14 + 15;
	const char *err = NULL;
	size_t len;
	ssize_t n;

	memset(big, 'c', sizeof(big));
	vars[3] = (struct kv){"HTTP_COOKIE", 11, big, 0xffff - fixed};
	len = build_packet(pkt, sizeof(pkt), vars, 4);
	assert_int_equal(len, PKT_MAX);
	assert_int_equal(uwsgi_parse(pkt, len, &req, &err), 1);
	n = uwsgi_to_http(&req, out, sizeof(out), &err);
	if (n < 0)
		fail_msg("largest packet: %s", err);
	check_strict("largest packet", out, (size_t)n, &req);
	assert_int_equal(uwsgi_to_http(&req, out, (size_t)n - 1, &err), -1);
	assert_int_equal(uwsgi_to_http(&req, out, (size_t)n, &err), n);
}

int main(void)
{
	struct CMUnitTest tests[NROWS(parse_rows) + NROWS(raw_rows) +
	                        NROWS(http_rows) + 8];
	size_t n = 0;

	for (size_t i = 0; i < NROWS(parse_rows); i++)
		tests[n++] = (struct CMUnitTest){.name = parse_rows[i].name,
		    .test_func = test_parse_row,
		    .initial_state = (void *)&parse_rows[i]};
	tests[n++] = (struct CMUnitTest){.name = "every prefix needs more",
	    .test_func = test_parse_prefixes};
	for (size_t i = 0; i < NROWS(raw_rows); i++)
		tests[n++] = (struct CMUnitTest){.name = raw_rows[i].name,
		    .test_func = test_raw_row,
		    .initial_state = (void *)&raw_rows[i]};
	tests[n++] = (struct CMUnitTest){
	    .name = "repeated variables", .test_func = test_duplicates};
	tests[n++] = (struct CMUnitTest){
	    .name = "variable count and datasize", .test_func = test_limits};
	tests[n++] = (struct CMUnitTest){
	    .name = "uwsgi_get", .test_func = test_get};
	for (size_t i = 0; i < NROWS(http_rows); i++)
		tests[n++] = (struct CMUnitTest){.name = http_rows[i].name,
		    .test_func = test_http_row,
		    .initial_state = (void *)&http_rows[i]};
	tests[n++] = (struct CMUnitTest){
	    .name = "field count", .test_func = test_field_count};
	tests[n++] = (struct CMUnitTest){
	    .name = "largest packet", .test_func = test_large_head};
	return _cmocka_run_group_tests("uwsgi", tests, n, NULL, NULL);
}
