/*
 * test_forward.c: table-driven unit tests of src/router/forward.c, the
 * meta a worker is told about a front request (REMOTE_ADDR, REMOTE_PORT,
 * https, SERVER_NAME, SERVER_PORT, SCRIPT_NAME): X-Forwarded-* headers
 * count on a trusted listener only and only their last hop, uwsgi vars
 * are taken when they obey the rules, and whatever comes out is always
 * accepted by msg_front_encode and read back the same by
 * msg_front_decode.  Runs as any user; no I/O.
 */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "forward.h"
#include "http.h"
#include "msg.h"
#include "uwsgi.h"

/* What a worker is told, compared field by field ("-": any note). */
struct want {
	const char *addr, *port, *name, *sport, *script;
	bool is_https;
	const char *note; /* NULL: no note; else a word of it */
};

static const struct forward_peer tcp_peer = {"198.51.100.7", "40000", "8080"};
static const struct forward_peer unix_peer = {"", "", ""};

/* Checks f against w, then the FRONT round trip. */
static void check(
    size_t i, const struct forward *f, const char *note, const struct want *w)
{
	const char *str[MSG_FRONT_NSTR];
	uint8_t buf[8192];
	struct msg m = {.type = MSG_FRONT};
	static struct msg_front_view v;
	const char *why = NULL;
	size_t len;

	if (strcmp(f->remote_addr, w->addr) != 0 ||
	    strcmp(f->remote_port, w->port) != 0 ||
	    strcmp(f->server_name, w->name) != 0 ||
	    strcmp(f->server_port, w->sport) != 0 ||
	    strcmp(f->script_name, w->script) != 0 ||
	    ((f->flags & MSG_FRONT_HTTPS) != 0) != w->is_https)
		fail_msg(
		    "case %zu: got addr '%s' port '%s' name '%s' sport '%s' "
		    "script '%s' https %d",
		    i, f->remote_addr, f->remote_port, f->server_name,
		    f->server_port, f->script_name,
		    (f->flags & MSG_FRONT_HTTPS) != 0);
	if (w->note == NULL && note != NULL)
		fail_msg("case %zu: unexpected note '%s'", i, note);
	if (w->note != NULL && (note == NULL || strstr(note, w->note) == NULL))
		fail_msg("case %zu: note '%s' lacks '%s'", i,
		    note ? note : "(none)", w->note);
	forward_strings(f, "app", str);
	len = msg_front_encode(buf, sizeof(buf), 7, f->flags, str, "x", 1);
	if (len == 0)
		fail_msg("case %zu: msg_front_encode refused the meta", i);
	m.payload = buf;
	m.len = len;
	if (msg_front_decode(&m, &v, &why) < 0)
		fail_msg("case %zu: msg_front_decode: %s", i, why);
	assert_string_equal(v.str[MSG_FRONT_APP], "app");
	assert_string_equal(v.str[MSG_FRONT_REMOTE_ADDR], w->addr);
	assert_string_equal(v.str[MSG_FRONT_REMOTE_PORT], w->port);
	assert_string_equal(v.str[MSG_FRONT_SERVER_NAME], w->name);
	assert_string_equal(v.str[MSG_FRONT_SERVER_PORT], w->sport);
	assert_string_equal(v.str[MSG_FRONT_SCRIPT_NAME], w->script);
}

struct http_case {
	bool is_trusted;
	bool is_unix;
	const char *headers; /* field lines, each ending in CRLF */
	struct want want;
};

static const struct http_case http_cases[] = {
    /* Untrusted: the socket only, whatever the headers say. */
    {false, false, "", {"198.51.100.7", "40000", "", "8080", "", false, NULL}},
    {false, false,
        "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n"
        "X-Forwarded-Host: evil.example\r\nX-Forwarded-Port: 1\r\n"
        "X-Forwarded-Prefix: /evil\r\n",
        {"198.51.100.7", "40000", "", "8080", "", false, NULL}},
    {false, true, "X-Forwarded-For: 203.0.113.9\r\n",
        {"", "", "", "", "", false, NULL}},
    /* Trusted, nothing forwarded: the socket. */
    {true, false, "", {"198.51.100.7", "40000", "", "8080", "", false, NULL}},
    /* Trusted: the last hop of each header. */
    {true, false, "X-Forwarded-For: 203.0.113.9\r\n",
        {"203.0.113.9", "", "", "8080", "", false, NULL}},
    {true, false, "X-Forwarded-For: 10.9.9.9, 203.0.113.9\r\n",
        {"203.0.113.9", "", "", "8080", "", false, NULL}},
    {true, false,
        "X-Forwarded-For: 10.9.9.9\r\nX-Forwarded-For: 2001:db8::5 \r\n",
        {"2001:db8::5", "", "", "8080", "", false, NULL}},
    {true, false, "X-Forwarded-For: 203.0.113.9, \r\n",
        {"198.51.100.7", "40000", "", "8080", "", false, NULL}},
    {true, false, "X-Forwarded-For: unknown\r\n",
        {"198.51.100.7", "40000", "", "8080", "", false, "X-Forwarded-For"}},
    {true, false, "X-Forwarded-For: 203.0.113.9:5555\r\n",
        {"198.51.100.7", "40000", "", "8080", "", false, "X-Forwarded-For"}},
    {true, false, "X-Forwarded-Proto: https\r\n",
        {"198.51.100.7", "40000", "", "443", "", true, NULL}},
    {true, false, "X-Forwarded-Proto: HTTPS\r\n",
        {"198.51.100.7", "40000", "", "443", "", true, NULL}},
    {true, false, "X-Forwarded-Proto: https, http\r\n",
        {"198.51.100.7", "40000", "", "80", "", false, NULL}},
    {true, false, "X-Forwarded-Proto: gopher\r\n",
        {"198.51.100.7", "40000", "", "8080", "", false, "Proto"}},
    {true, false, "X-Forwarded-Host: blog.example.com\r\n",
        {"198.51.100.7", "40000", "blog.example.com", "80", "", false, NULL}},
    {true, false,
        "X-Forwarded-Host: blog.example.com:8443\r\n"
        "X-Forwarded-Proto: https\r\n",
        {"198.51.100.7", "40000", "blog.example.com", "8443", "", true, NULL}},
    {true, false, "X-Forwarded-Host: [2001:db8::1]:8443\r\n",
        {"198.51.100.7", "40000", "[2001:db8::1]", "8443", "", false, NULL}},
    {true, false, "X-Forwarded-Host: a.example, b.example\r\n",
        {"198.51.100.7", "40000", "b.example", "80", "", false, NULL}},
    {true, false, "X-Forwarded-Host: blog.example.com:http\r\n",
        {"198.51.100.7", "40000", "", "8080", "", false, "Host"}},
    {true, false, "X-Forwarded-Host: blog.example.com:99999\r\n",
        {"198.51.100.7", "40000", "", "8080", "", false, "Host"}},
    {true, false,
        "X-Forwarded-Host: blog.example.com\r\nX-Forwarded-Port: 8443\r\n",
        {"198.51.100.7", "40000", "blog.example.com", "8443", "", false, NULL}},
    {true, false, "X-Forwarded-Port: 0\r\n",
        {"198.51.100.7", "40000", "", "8080", "", false, "Port"}},
    {true, false, "X-Forwarded-Port: 65536\r\n",
        {"198.51.100.7", "40000", "", "8080", "", false, "Port"}},
    {true, false, "X-Forwarded-Port: 444\r\n",
        {"198.51.100.7", "40000", "", "444", "", false, NULL}},
    {true, false, "X-Forwarded-Prefix: /blog\r\n",
        {"198.51.100.7", "40000", "", "8080", "/blog", false, NULL}},
    {true, false, "X-Forwarded-Prefix: /blog/\r\n",
        {"198.51.100.7", "40000", "", "8080", "/blog", false, NULL}},
    {true, false, "X-Forwarded-Prefix: /\r\n",
        {"198.51.100.7", "40000", "", "8080", "", false, NULL}},
    {true, false, "X-Forwarded-Prefix: blog\r\n",
        {"198.51.100.7", "40000", "", "8080", "", false, "Prefix"}},
    {true, false, "X-Forwarded-Prefix: /my blog\r\n",
        {"198.51.100.7", "40000", "", "8080", "", false, "Prefix"}},
    /* A trusted Unix listener: the front end is all there is. */
    {true, true,
        "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n"
        "X-Forwarded-Host: shop.example\r\nX-Forwarded-Prefix: /shop\r\n",
        {"203.0.113.9", "", "shop.example", "443", "/shop", true, NULL}},
    {true, true, "", {"", "", "", "", "", false, NULL}},
};

static void test_http(void **state)
{
	static struct http_request req;

	(void)state;
	for (size_t i = 0; i < sizeof(http_cases) / sizeof(http_cases[0]);
	     i++) {
		const struct http_case *t = &http_cases[i];
		char head[2048];
		const char *why = NULL, *note = (const char *)1;
		struct forward f;
		int status, n;

		n = snprintf(head, sizeof(head),
		    "GET / HTTP/1.1\r\nHost: h.example\r\n%s\r\n", t->headers);
		if (http_parse_request(
		        head, (size_t)n, 0, &req, &status, &why) != 1)
			fail_msg(
			    "case %zu: the head does not parse: %s", i, why);
		memset(&f, 0x55, sizeof(f));
		forward_from_http(&req, t->is_trusted,
		    t->is_unix ? &unix_peer : &tcp_peer, &f, &note);
		check(i, &f, note, &t->want);
	}
}

/* A uwsgi packet of the key/value pairs in kv (NULL-terminated). */
static size_t packet(uint8_t *out, size_t size, const char *const *kv)
{
	size_t off = 4;

	for (size_t i = 0; kv[i] != NULL; i++) {
		size_t len = strlen(kv[i]);

		assert_true(off + 2 + len <= size);
		out[off] = (uint8_t)(len & 0xff);
		out[off + 1] = (uint8_t)(len >> 8);
		memcpy(out + off + 2, kv[i], len);
		off += 2 + len;
	}
	out[0] = 0;
	out[1] = (uint8_t)((off - 4) & 0xff);
	out[2] = (uint8_t)((off - 4) >> 8);
	out[3] = 0;
	return off;
}

struct uwsgi_case {
	const char *kv[20];
	struct want want;
};

#define BASE "REQUEST_METHOD", "GET", "REQUEST_URI", "/"

static const struct uwsgi_case uwsgi_cases[] = {
    /* Nothing: nothing (the peer is the front end, not the visitor). */
    {{BASE, NULL}, {"", "", "", "", "", false, NULL}},
    {{BASE, "REMOTE_ADDR", "203.0.113.9", "REMOTE_PORT", "51000", "SERVER_NAME",
         "blog.example.com", "SERVER_PORT", "443", "HTTPS", "on", "SCRIPT_NAME",
         "/blog", NULL},
        {"203.0.113.9", "51000", "blog.example.com", "443", "/blog", true,
            NULL}},
    {{BASE, "HTTPS", "1", NULL}, {"", "", "", "", "", true, NULL}},
    {{BASE, "HTTPS", "off", NULL}, {"", "", "", "", "", false, NULL}},
    {{BASE, "REQUEST_SCHEME", "https", NULL}, {"", "", "", "", "", true, NULL}},
    {{BASE, "UWSGI_SCHEME", "https", NULL}, {"", "", "", "", "", true, NULL}},
    {{BASE, "REQUEST_SCHEME", "http", NULL}, {"", "", "", "", "", false, NULL}},
    {{BASE, "REMOTE_ADDR", "2001:db8::7", NULL},
        {"2001:db8::7", "", "", "", "", false, NULL}},
    {{BASE, "REMOTE_ADDR", "not-an-address", NULL},
        {"", "", "", "", "", false, "REMOTE_ADDR"}},
    {{BASE, "REMOTE_PORT", "x1", NULL},
        {"", "", "", "", "", false, "REMOTE_PORT"}},
    {{BASE, "SERVER_PORT", "0", NULL},
        {"", "", "", "", "", false, "SERVER_PORT"}},
    {{BASE, "SERVER_NAME", "bad name", NULL},
        {"", "", "", "", "", false, "SERVER_NAME"}},
    {{BASE, "SCRIPT_NAME", "/", NULL}, {"", "", "", "", "", false, NULL}},
    {{BASE, "SCRIPT_NAME", "/a/b/", NULL},
        {"", "", "", "", "/a/b", false, NULL}},
    {{BASE, "SCRIPT_NAME", "/my app", NULL},
        {"", "", "", "", "", false, "SCRIPT_NAME"}},
    {{BASE, "SCRIPT_NAME", "relative", NULL},
        {"", "", "", "", "", false, "SCRIPT_NAME"}},
    /* Empty vars are absent ones. */
    {{BASE, "REMOTE_ADDR", "", "SERVER_PORT", "", NULL},
        {"", "", "", "", "", false, NULL}},
};

static void test_uwsgi(void **state)
{
	static struct uwsgi_request req;

	(void)state;
	for (size_t i = 0; i < sizeof(uwsgi_cases) / sizeof(uwsgi_cases[0]);
	     i++) {
		const struct uwsgi_case *t = &uwsgi_cases[i];
		uint8_t buf[2048];
		size_t len = packet(buf, sizeof(buf), t->kv);
		const char *why = NULL, *note = (const char *)1;
		struct forward f;

		if (uwsgi_parse(buf, len, &req, &why) != 1)
			fail_msg(
			    "case %zu: the packet does not parse: %s", i, why);
		memset(&f, 0x55, sizeof(f));
		forward_from_uwsgi(&req, &tcp_peer, &f, &note);
		check(i, &f, note, &t->want);
	}
}

/* A SCRIPT_NAME of the longest length a FRONT string may have is taken;
 * one byte more is not. */
static void test_long_script_name(void **state)
{
	static struct uwsgi_request req;
	static char script[MSG_FRONT_MAX_STR + 2];
	const char *kv[] = {BASE, "SCRIPT_NAME", script, NULL};
	uint8_t buf[4096];
	const char *why = NULL, *note = NULL;
	struct forward f;
	size_t len;

	(void)state;
	memset(script, 'a', MSG_FRONT_MAX_STR + 1);
	script[0] = '/';
	script[MSG_FRONT_MAX_STR] = '\0';
	len = packet(buf, sizeof(buf), kv);
	assert_int_equal(uwsgi_parse(buf, len, &req, &why), 1);
	forward_from_uwsgi(&req, &tcp_peer, &f, &note);
	assert_null(note);
	assert_int_equal(strlen(f.script_name), MSG_FRONT_MAX_STR);
	script[MSG_FRONT_MAX_STR] = 'a';
	len = packet(buf, sizeof(buf), kv);
	assert_int_equal(uwsgi_parse(buf, len, &req, &why), 1);
	forward_from_uwsgi(&req, &tcp_peer, &f, &note);
	assert_non_null(note);
	assert_string_equal(f.script_name, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_http),
	    cmocka_unit_test(test_uwsgi),
	    cmocka_unit_test(test_long_script_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
