/*
 * test_route.c: table-driven unit tests of src/router/route.c: route
 * values ("USER/APP"), host keys, the host map (every kind of bad line,
 * reported with its line number and skipped), and finding the route of
 * HTTP requests and uwsgi packets for each --route source.  Runs as any
 * user; touches only a temporary file.
 */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "route.h"
#include "uwsgi.h"

/* ---------------------------------------------------------------------- */
/* route_parse */

struct parse_case {
	const char *in;
	size_t len;             /* 0: strlen(in) */
	const char *user, *app; /* NULL: refused */
};

static const struct parse_case parse_cases[] = {
    {"alice/blog", 0, "alice", "blog"},
    {"a/b", 0, "a", "b"},
    {"bob_2.x-y/My_App-1.0", 0, "bob_2.x-y", "My_App-1.0"},
    {"abcdefghijklmnopqrstuvwxyz012345/app", 0,
        "abcdefghijklmnopqrstuvwxyz012345", "app"},
    {"alice/a.b", 0, "alice", "a.b"},
    {"alice/-x", 0, "alice", "-x"},
    {"alice/"
     "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.",
        0, "alice",
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_."},
    /* Refused. */
    {"", 0, NULL, NULL},
    {"alice", 0, NULL, NULL},
    {"/blog", 0, NULL, NULL},
    {"alice/", 0, NULL, NULL},
    {"alice/.hidden", 0, NULL, NULL},
    {"alice/.", 0, NULL, NULL},
    {"alice/..", 0, NULL, NULL},
    {"Alice/blog", 0, NULL, NULL},
    {"-alice/blog", 0, NULL, NULL},
    {"al ice/blog", 0, NULL, NULL},
    {"alice/blog/x", 0, NULL, NULL},
    {"alice/../bob", 0, NULL, NULL},
    {"alice/bl og", 0, NULL, NULL},
    {"alice/bl\tog", 0, NULL, NULL},
    {"alice/blög", 0, NULL, NULL},
    {"alice/blog\0x", 11, NULL, NULL},
    {"alice/"
     "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
        0, NULL, NULL},
    {"abcdefghijklmnopqrstuvwxyz0123456/app", 0, NULL, NULL},
    {"alice/blog%2e", 0, NULL, NULL},
    {"alice\\blog", 0, NULL, NULL},
};

static void test_route_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]);
	     i++) {
		const struct parse_case *t = &parse_cases[i];
		size_t len = t->len ? t->len : strlen(t->in);
		struct route r;
		const char *why = NULL;
		int rc = route_parse(t->in, len, &r, &why);

		if (t->user == NULL) {
			if (rc != -1)
				fail_msg("case %zu '%s': accepted as %s/%s", i,
				    t->in, r.user, r.app);
			assert_non_null(why);
			continue;
		}
		if (rc != 0)
			fail_msg("case %zu '%s': refused: %s", i, t->in, why);
		assert_string_equal(r.user, t->user);
		assert_string_equal(r.app, t->app);
	}
}

/* ---------------------------------------------------------------------- */
/* route_host_key */

struct host_case {
	const char *in;
	const char *key; /* NULL: refused */
};

static const struct host_case host_cases[] = {
    {"example.com", "example.com"},
    {"Blog.Example.COM", "blog.example.com"},
    {"example.com:8080", "example.com"},
    {"example.com.", "example.com"},
    {"example.com.:443", "example.com"},
    {"example.com:", "example.com"},
    {"under_score.example", "under_score.example"},
    {"192.0.2.1:80", "192.0.2.1"},
    {"[::1]", "[::1]"},
    {"[::1]:8080", "[::1]"},
    {"[2001:DB8::1]", "[2001:db8::1]"},
    {"[::ffff:192.0.2.1]", "[::ffff:192.0.2.1]"},
    {"localhost", "localhost"},
    /* Refused. */
    {"", NULL},
    {":80", NULL},
    {".", NULL},
    {".example.com", NULL},
    {"exa mple.com", NULL},
    {"example.com:80x", NULL},
    {"example.com:80:80", NULL},
    {"ex/ample.com", NULL},
    {"ex%41mple.com", NULL},
    {"user@example.com", NULL},
    {"[::1", NULL},
    {"[]", NULL},
    {"[zz::1]", NULL},
    {"[::1]x", NULL},
    {"[::1]:8x", NULL},
    {"exämple.com", NULL},
};

static void test_host_key(void **state)
{
	char key[ROUTE_MAX_HOST + 1], longhost[300];

	(void)state;
	for (size_t i = 0; i < sizeof(host_cases) / sizeof(host_cases[0]);
	     i++) {
		const struct host_case *t = &host_cases[i];
		const char *why = NULL;
		int rc = route_host_key(t->in, strlen(t->in), key, &why);

		if (t->key == NULL) {
			if (rc != -1)
				fail_msg("case %zu '%s': accepted as '%s'", i,
				    t->in, key);
			assert_non_null(why);
			continue;
		}
		if (rc != 0)
			fail_msg("case %zu '%s': refused: %s", i, t->in, why);
		assert_string_equal(key, t->key);
	}
	/* 253 bytes is the longest name; 254 is refused. */
	memset(longhost, 'a', sizeof(longhost));
	assert_int_equal(
	    route_host_key(longhost, 253, key, &(const char *){0}), 0);
	assert_int_equal(strlen(key), 253);
	assert_int_equal(
	    route_host_key(longhost, 254, key, &(const char *){0}), -1);
}

/* ---------------------------------------------------------------------- */
/* The host map */

struct map_errors {
	int lines[64];
	char why[64][128];
	int n;
};

static void collect(void *arg, const char *file, int line, const char *why)
{
	struct map_errors *e = arg;

	assert_string_equal(file, "hosts.map");
	assert_true(e->n < 64);
	e->lines[e->n] = line;
	snprintf(e->why[e->n], sizeof(e->why[0]), "%s", why);
	e->n++;
}

static void check_route(const struct route_map *m, const char *host,
    const char *user, const char *app)
{
	const struct route *r = route_map_find(m, host);

	if (user == NULL) {
		if (r != NULL)
			fail_msg(
			    "host '%s' found as %s/%s", host, r->user, r->app);
		return;
	}
	if (r == NULL)
		fail_msg("host '%s' not found", host);
	assert_string_equal(r->user, user);
	assert_string_equal(r->app, app);
}

static void test_map_parse(void **state)
{
	char text[4096], longline[1100];
	struct map_errors e = {0};
	struct route_map *m = NULL;
	size_t len;
	/* The line number of each bad line, in the order they are reported
	 * (bad lines as read, then the duplicates found after sorting). */
	static const int bad[] = {
	    5, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18, 19, 20, 9};
	static const char *const why_has[] = {"expected", "expected", "'.'",
	    "port", "user", "byte", "longer", "NUL", "port", "expected", "port",
	    "'/'", "byte", "twice"};

	(void)state;
	memset(longline, 'a', sizeof(longline));
	memcpy(longline + 1025 - 8, " alice/x", 8);
	longline[1025] = '\0';
	len = (size_t)snprintf(text, sizeof(text),
	    "# the host map\n"                             /* 1 */
	    "\n"                                           /* 2 */
	    "blog.example.com alice/blog\n"                /* 3 */
	    "  Shop.Example.COM   bob/shop   # the shop\n" /* 4 */
	    "bad host!.com alice/x\n"                      /* 5 */
	    "onlyhost\n"                                   /* 6 */
	    "a.example.com alice/.x\n"                     /* 7 */
	    "b.example.com:8080 alice/x\n"                 /* 8 */
	    "blog.example.com carol/dup\n"                 /* 9 */
	    "c.example.com ALICE/x\n"                      /* 10 */
	    "h\x01.example.com alice/x\n"                  /* 11 */
	    "%s\n"                                         /* 12 */
	    "nul.example.com alice/x@\n"                   /* 13 */
	    "[::1] alice/local\n"                          /* 14 */
	    "[::1]:80 alice/x\n"                           /* 15 */
	    "\t\tspaced.example.com\talice/tabbed\r\n"     /* 16 */
	    "x.example.com alice/x extra\n"                /* 17 */
	    "[::2]:8 alice/x\n"                            /* 18 */
	    "d.example.com alice\n"                        /* 19 */
	    "e.example.com alice/a+b\n"                    /* 20 */
	    "   # only a comment\n"                        /* 21 */
	    "last.example.com. carol/last",                /* 22, no LF */
	    longline);
	/* Line 13 gets a NUL byte in place of its '@'. */
	*strchr(text, '@') = '\0';
	assert_int_equal(
	    route_map_parse(text, len, "hosts.map", collect, &e, &m), 0);
	assert_int_equal(route_map_size(m), 5);
	check_route(m, "blog.example.com", "alice", "blog");
	check_route(m, "shop.example.com", "bob", "shop");
	check_route(m, "[::1]", "alice", "local");
	check_route(m, "spaced.example.com", "alice", "tabbed");
	check_route(m, "last.example.com", "carol", "last");
	check_route(
	    m, "Shop.Example.COM", NULL, NULL); /* keys are lower case */
	check_route(m, "b.example.com", NULL, NULL);
	check_route(m, "a.example.com", NULL, NULL);
	check_route(m, "x.example.com", NULL, NULL);
	check_route(m, "nosuch.example.com", NULL, NULL);
	if (e.n != (int)(sizeof(bad) / sizeof(bad[0]))) {
		for (int i = 0; i < e.n; i++)
			print_message("line %d: %s\n", e.lines[i], e.why[i]);
		fail_msg("%d errors, expected %zu", e.n,
		    sizeof(bad) / sizeof(bad[0]));
	}
	for (int i = 0; i < e.n; i++) {
		assert_int_equal(e.lines[i], bad[i]);
		if (strstr(e.why[i], why_has[i]) == NULL)
			fail_msg("line %d: '%s' lacks '%s'", e.lines[i],
			    e.why[i], why_has[i]);
	}
	route_map_free(m);

	/* Empty and comment-only maps; a NULL map finds nothing; a NULL
	 * error callback is fine. */
	assert_int_equal(
	    route_map_parse("", 0, "hosts.map", collect, &e, &m), 0);
	assert_int_equal(route_map_size(m), 0);
	check_route(m, "blog.example.com", NULL, NULL);
	route_map_free(m);
	assert_int_equal(route_map_parse("x y z\n", 6, "f", NULL, NULL, &m), 0);
	assert_int_equal(route_map_size(m), 0);
	route_map_free(m);
	assert_null(route_map_find(NULL, "x"));
	assert_int_equal(route_map_size(NULL), 0);
	route_map_free(NULL);
}

/* Many hosts, given in reverse order: every one is found (the table is
 * sorted and searched). */
static void test_map_many(void **state)
{
	size_t size = 1000 * 40, len = 0;
	char *text = malloc(size);
	struct route_map *m;

	(void)state;
	for (int i = 999; i >= 0; i--)
		len += (size_t)snprintf(text + len, size - len,
		    "h%d.example.org u%d/app%d\n", i, i % 7, i);
	assert_int_equal(route_map_parse(text, len, "f", NULL, NULL, &m), 0);
	assert_int_equal(route_map_size(m), 1000);
	for (int i = 0; i < 1000; i++) {
		char host[64], user[16], app[16];

		snprintf(host, sizeof(host), "h%d.example.org", i);
		snprintf(user, sizeof(user), "u%d", i % 7);
		snprintf(app, sizeof(app), "app%d", i);
		check_route(m, host, user, app);
	}
	route_map_free(m);
	free(text);
}

static void test_map_load(void **state)
{
	char path[] = "/tmp/lodge-test-route-XXXXXX";
	const char *text = "blog.example.com alice/blog\nbad line here x\n";
	struct map_errors e = {0};
	struct route_map *m = NULL;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	/* Errors name the file as given. */
	assert_int_equal(route_map_load(path, NULL, NULL, &m), 0);
	assert_int_equal(route_map_size(m), 1);
	check_route(m, "blog.example.com", "alice", "blog");
	route_map_free(m);
	unlink(path);
	errno = 0;
	assert_int_equal(route_map_load(path, collect, &e, &m), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(route_map_load("/tmp", collect, &e, &m), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(e.n, 0);
}

/* ---------------------------------------------------------------------- */
/* route_from_http */

struct http_case {
	enum route_source src;
	const char *head;
	const char *user, *app; /* NULL: no route */
};

static const struct http_case http_cases[] = {
    {ROUTE_FROM_HEADER,
        "GET / HTTP/1.1\r\nHost: x\r\nX-Lodge-App: alice/blog\r\n\r\n", "alice",
        "blog"},
    {ROUTE_FROM_HEADER,
        "GET / HTTP/1.1\r\nHost: x\r\nx-lodge-app:   bob/shop  \r\n\r\n", "bob",
        "shop"},
    {ROUTE_FROM_HEADER, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", NULL, NULL},
    {ROUTE_FROM_HEADER,
        "GET / HTTP/1.1\r\nHost: x\r\nX-Lodge-App: alice/blog\r\n"
        "X-Lodge-App: alice/blog\r\n\r\n",
        NULL, NULL},
    {ROUTE_FROM_HEADER,
        "GET / HTTP/1.1\r\nHost: x\r\nX-Lodge-App: alice/../x\r\n\r\n", NULL,
        NULL},
    {ROUTE_FROM_HEADER,
        "GET / HTTP/1.1\r\nHost: x\r\nX-Lodge-App: root/x y\r\n\r\n", NULL,
        NULL},
    {ROUTE_FROM_HEADER,
        "GET / HTTP/1.1\r\nHost: x\r\nX-Lodge-Apps: alice/blog\r\n\r\n", NULL,
        NULL},
    /* var: an HTTP listener has no vars, so the header counts. */
    {ROUTE_FROM_VAR,
        "GET / HTTP/1.1\r\nHost: x\r\nX-Lodge-App: alice/blog\r\n\r\n", "alice",
        "blog"},
    {ROUTE_FROM_VAR, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", NULL, NULL},
    /* host: through the map below. */
    {ROUTE_FROM_HOST, "GET / HTTP/1.1\r\nHost: blog.example.com\r\n\r\n",
        "alice", "blog"},
    {ROUTE_FROM_HOST, "GET / HTTP/1.1\r\nHost: BLOG.Example.com:8080\r\n\r\n",
        "alice", "blog"},
    {ROUTE_FROM_HOST, "GET / HTTP/1.1\r\nHost: blog.example.com.\r\n\r\n",
        "alice", "blog"},
    {ROUTE_FROM_HOST,
        "GET http://shop.example.com/x HTTP/1.1\r\nHost: shop.example.com\r\n"
        "\r\n",
        "bob", "shop"},
    {ROUTE_FROM_HOST, "GET / HTTP/1.0\r\n\r\n", NULL, NULL},
    {ROUTE_FROM_HOST, "GET / HTTP/1.1\r\nHost: other.example.com\r\n\r\n", NULL,
        NULL},
    /* The header does not count when routes come from the map. */
    {ROUTE_FROM_HOST,
        "GET / HTTP/1.1\r\nHost: other.example.com\r\n"
        "X-Lodge-App: alice/blog\r\n\r\n",
        NULL, NULL},
};

static void test_from_http(void **state)
{
	const char *maptext = "blog.example.com alice/blog\n"
	                      "shop.example.com bob/shop\n";
	struct route_map *m;
	static struct http_request req;

	(void)state;
	assert_int_equal(
	    route_map_parse(maptext, strlen(maptext), "f", NULL, NULL, &m), 0);
	for (size_t i = 0; i < sizeof(http_cases) / sizeof(http_cases[0]);
	     i++) {
		const struct http_case *t = &http_cases[i];
		const char *why = NULL;
		struct route r;
		int status, rc;

		rc = http_parse_request(
		    t->head, strlen(t->head), 0, &req, &status, &why);
		if (rc != 1)
			fail_msg(
			    "case %zu: the head does not parse: %s", i, why);
		why = NULL;
		rc = route_from_http(&req, t->src, m, &r, &why);
		if (t->user == NULL) {
			if (rc != -1)
				fail_msg("case %zu: routed to %s/%s", i, r.user,
				    r.app);
			assert_non_null(why);
			continue;
		}
		if (rc != 0)
			fail_msg("case %zu: no route: %s", i, why);
		assert_string_equal(r.user, t->user);
		assert_string_equal(r.app, t->app);
	}
	/* Host routes without a map: none. */
	{
		const char *head =
		    "GET / HTTP/1.1\r\nHost: blog.example.com\r\n\r\n";
		const char *why = NULL;
		struct route r;
		int status;

		assert_int_equal(http_parse_request(head, strlen(head), 0, &req,
		                     &status, &why),
		    1);
		assert_int_equal(
		    route_from_http(&req, ROUTE_FROM_HOST, NULL, &r, &why), -1);
	}
	route_map_free(m);
}

/* ---------------------------------------------------------------------- */
/* route_from_uwsgi */

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
	enum route_source src;
	const char *kv[12];
	const char *user, *app;
};

#define BASE "REQUEST_METHOD", "GET", "REQUEST_URI", "/"

static const struct uwsgi_case uwsgi_cases[] = {
    {ROUTE_FROM_HEADER, {BASE, "HTTP_X_LODGE_APP", "alice/blog", NULL}, "alice",
        "blog"},
    {ROUTE_FROM_HEADER, {BASE, "LODGE_APP", "alice/blog", NULL}, NULL, NULL},
    {ROUTE_FROM_HEADER, {BASE, "HTTP_X_LODGE_APP", "alice/.x", NULL}, NULL,
        NULL},
    {ROUTE_FROM_VAR, {BASE, "LODGE_APP", "bob/shop", NULL}, "bob", "shop"},
    /* var: no fallback to the header a client could have sent. */
    {ROUTE_FROM_VAR, {BASE, "HTTP_X_LODGE_APP", "alice/blog", NULL}, NULL,
        NULL},
    {ROUTE_FROM_VAR, {BASE, "LODGE_APP", "", NULL}, NULL, NULL},
    {ROUTE_FROM_HOST, {BASE, "HTTP_HOST", "Shop.Example.com:443", NULL}, "bob",
        "shop"},
    {ROUTE_FROM_HOST, {BASE, "HTTP_HOST", "nope.example.com", NULL}, NULL,
        NULL},
    {ROUTE_FROM_HOST, {BASE, "SERVER_NAME", "shop.example.com", NULL}, NULL,
        NULL},
};

static void test_from_uwsgi(void **state)
{
	const char *maptext = "shop.example.com bob/shop\n";
	struct route_map *m;
	static struct uwsgi_request req;

	(void)state;
	assert_int_equal(
	    route_map_parse(maptext, strlen(maptext), "f", NULL, NULL, &m), 0);
	for (size_t i = 0; i < sizeof(uwsgi_cases) / sizeof(uwsgi_cases[0]);
	     i++) {
		const struct uwsgi_case *t = &uwsgi_cases[i];
		uint8_t buf[1024];
		size_t len = packet(buf, sizeof(buf), t->kv);
		const char *why = NULL;
		struct route r;
		int rc;

		if (uwsgi_parse(buf, len, &req, &why) != 1)
			fail_msg(
			    "case %zu: the packet does not parse: %s", i, why);
		rc = route_from_uwsgi(&req, t->src, m, &r, &why);
		if (t->user == NULL) {
			if (rc != -1)
				fail_msg("case %zu: routed to %s/%s", i, r.user,
				    r.app);
			assert_non_null(why);
			continue;
		}
		if (rc != 0)
			fail_msg("case %zu: no route: %s", i, why);
		assert_string_equal(r.user, t->user);
		assert_string_equal(r.app, t->app);
	}
	route_map_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_route_parse),
	    cmocka_unit_test(test_host_key),
	    cmocka_unit_test(test_map_parse),
	    cmocka_unit_test(test_map_many),
	    cmocka_unit_test(test_map_load),
	    cmocka_unit_test(test_from_http),
	    cmocka_unit_test(test_from_uwsgi),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
