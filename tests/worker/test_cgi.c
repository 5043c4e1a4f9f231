/*
 * test_cgi.c: table-driven tests of src/worker/cgi.c, the WSGI CGI
 * variables.  Requests are built by hand from a row (method, target,
 * version, header lines), independently of the HTTP parser, and each row
 * lists the variables it must yield (or must not).  Pure: no files, no
 * sockets.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cgi.h"

#define MAX_ROW_HEADERS 12
#define MAX_ROW_EXPECT 16
#define ABSENT NULL

static const struct cgi_server default_srv = {
    .server_name = "srv.example.org",
    .server_port = "80",
    .remote_addr = "192.0.2.1",
    .remote_port = "54321",
    .script_name = "",
};

/* The variables PEP 3333 requires (plus lodge's REQUEST_URI and the
 * remote address), present in every environ, maybe empty. */
static const char *const required_keys[] = {"REQUEST_METHOD", "SCRIPT_NAME",
    "PATH_INFO", "QUERY_STRING", "REQUEST_URI", "SERVER_NAME", "SERVER_PORT",
    "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_PORT"};
#define NREQUIRED (sizeof(required_keys) / sizeof(required_keys[0]))

struct expect {
	const char *key;
	const char *val; /* ABSENT: the variable must not exist */
	size_t len;
};

/* A value given as a string literal, whose size counts embedded NULs. */
/* clang-format off */
#define V(key, val) {key, val, sizeof(val) - 1}
#define NO(key) {key, ABSENT, 0}
/* clang-format on */

struct cgi_row {
	const char *name;
	const char *method;
	const char *target;
	int minor;
	const char *headers[MAX_ROW_HEADERS]; /* "Name: value" lines */
	const struct cgi_server *srv;         /* NULL: default_srv */
	struct expect expect[MAX_ROW_EXPECT];
	const char *order[8]; /* these keys appear in this order */
	size_t nvars;         /* 0: not checked */
};

static const struct cgi_row cgi_rows[] = {
    {.name = "GET with a query",
        .method = "GET",
        .target = "/blog/post?id=1&q=a%20b+c",
        .minor = 1,
        .headers = {"Host: example.com"},
        .expect = {V("REQUEST_METHOD", "GET"), V("SCRIPT_NAME", ""),
            V("PATH_INFO", "/blog/post"), V("QUERY_STRING", "id=1&q=a%20b+c"),
            V("REQUEST_URI", "/blog/post?id=1&q=a%20b+c"),
            V("SERVER_NAME", "example.com"), V("SERVER_PORT", "80"),
            V("SERVER_PROTOCOL", "HTTP/1.1"), V("REMOTE_ADDR", "192.0.2.1"),
            V("REMOTE_PORT", "54321"), V("HTTP_HOST", "example.com"),
            NO("CONTENT_TYPE"), NO("CONTENT_LENGTH")},
        .nvars = 11},
    {.name = "fixed variables come first, in order",
        .method = "GET",
        .target = "/",
        .minor = 1,
        .headers = {"Accept: */*", "Host: h"},
        .order = {"REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING",
            "REQUEST_URI", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL"}},
    {.name = "empty query",
        .method = "GET",
        .target = "/a?",
        .minor = 1,
        .expect = {V("PATH_INFO", "/a"), V("QUERY_STRING", ""),
            V("REQUEST_URI", "/a?")}},
    {.name = "query is not decoded",
        .method = "GET",
        .target = "/?a=%2F%00",
        .minor = 1,
        .expect = {V("QUERY_STRING", "a=%2F%00"), V("PATH_INFO", "/")}},
    {.name = "path decoded: UTF-8 and %2F",
        .method = "GET",
        .target = "/caf%C3%A9/a%2Fb%2f",
        .minor = 1,
        .expect = {V("PATH_INFO", "/caf\xC3\xA9/a/b/"),
            V("REQUEST_URI", "/caf%C3%A9/a%2Fb%2f")}},
    {.name = "path decoded: %00",
        .method = "GET",
        .target = "/a%00b",
        .minor = 1,
        .expect = {V("PATH_INFO", "/a\0b")}},
    {.name = "path decoded: latin-1 byte",
        .method = "GET",
        .target = "/%E9t%E9",
        .minor = 1,
        .expect = {V("PATH_INFO", "/\xE9t\xE9")}},
    {.name = "path decoded: invalid escapes kept",
        .method = "GET",
        .target = "/%zz/%4G/%%41/%4",
        .minor = 1,
        .expect = {V("PATH_INFO", "/%zz/%4G/%A/%4")}},
    {.name = "header names mapped",
        .method = "GET",
        .target = "/",
        .minor = 1,
        .headers = {"User-Agent: curl/8.0", "accept-language: fr",
            "X-Custom-Header: 1", "DNT: 1", "X-Empty:"},
        .expect = {V("HTTP_USER_AGENT", "curl/8.0"),
            V("HTTP_ACCEPT_LANGUAGE", "fr"), V("HTTP_X_CUSTOM_HEADER", "1"),
            V("HTTP_DNT", "1"), V("HTTP_X_EMPTY", ""), NO("HTTP_HOST")},
        .order = {"HTTP_USER_AGENT", "HTTP_ACCEPT_LANGUAGE",
            "HTTP_X_CUSTOM_HEADER", "HTTP_DNT", "HTTP_X_EMPTY"},
        .nvars = 15},
    {.name = "header with '_' dropped",
        .method = "GET",
        .target = "/",
        .minor = 1,
        .headers = {"X_Forwarded-For: 6.6.6.6", "X-Forwarded-For: 198.51.100.7",
            "Content_Type: evil", "Content_Length: 9"},
        .expect = {V("HTTP_X_FORWARDED_FOR", "198.51.100.7"),
            NO("CONTENT_TYPE"), NO("CONTENT_LENGTH"), NO("HTTP_CONTENT_TYPE")},
        .nvars = 11},
    {.name = "route header dropped",
        .method = "GET",
        .target = "/",
        .minor = 1,
        .headers = {"X-Lodge-App: alice/blog", "x-lodge-app: bob/shop",
            "X-Lodge-Apps: kept"},
        .expect = {NO("HTTP_X_LODGE_APP"), V("HTTP_X_LODGE_APPS", "kept")},
        .nvars = 11},
    {.name = "repeated headers joined in order",
        .method = "GET",
        .target = "/",
        .minor = 1,
        .headers = {"Accept: text/html", "X-A: 1", "accept: text/plain",
            "ACCEPT: */*", "X-B: 2", "x-a: 3"},
        .expect = {V("HTTP_ACCEPT", "text/html, text/plain, */*"),
            V("HTTP_X_A", "1, 3"), V("HTTP_X_B", "2")},
        .order = {"HTTP_ACCEPT", "HTTP_X_A", "HTTP_X_B"},
        .nvars = 13},
    {.name = "Cookie joined with '; '",
        .method = "GET",
        .target = "/",
        .minor = 1,
        .headers = {"Cookie: a=1", "X-A: 1", "cookie: b=2; c=3", "Cookie: d=4"},
        .expect = {V("HTTP_COOKIE", "a=1; b=2; c=3; d=4")},
        .order = {"HTTP_COOKIE", "HTTP_X_A"}},
    {.name = "Host with a port",
        .method = "GET",
        .target = "/",
        .minor = 1,
        .headers = {"Host: example.com:8080"},
        .expect = {V("SERVER_NAME", "example.com"), V("SERVER_PORT", "80"),
            V("HTTP_HOST", "example.com:8080")}},
    {.name = "IPv6 Host with a port",
        .method = "GET",
        .target = "/",
        .minor = 1,
        .headers = {"Host: [::1]:8080"},
        .expect = {V("SERVER_NAME", "[::1]"), V("HTTP_HOST", "[::1]:8080")}},
    {.name = "IPv6 Host without a port",
        .method = "GET",
        .target = "/",
        .minor = 1,
        .headers = {"Host: [2001:db8::1]"},
        .expect = {V("SERVER_NAME", "[2001:db8::1]")}},
    {.name = "no Host in HTTP/1.0",
        .method = "GET",
        .target = "/",
        .minor = 0,
        .expect = {V("SERVER_NAME", "srv.example.org"),
            V("SERVER_PROTOCOL", "HTTP/1.0"), NO("HTTP_HOST")},
        .nvars = 10},
    {.name = "empty Host",
        .method = "GET",
        .target = "/",
        .minor = 1,
        .headers = {"Host:"},
        .expect = {V("SERVER_NAME", "srv.example.org"), V("HTTP_HOST", "")}},
    {.name = "Host that is only a port",
        .method = "GET",
        .target = "/",
        .minor = 1,
        .headers = {"Host: :81"},
        .expect = {V("SERVER_NAME", "srv.example.org")}},
    {.name = "CONTENT_TYPE and CONTENT_LENGTH",
        .method = "POST",
        .target = "/form",
        .minor = 1,
        .headers = {"Host: h",
            "content-type: application/x-www-form-urlencoded",
            "Content-Length: 11"},
        .expect = {V("REQUEST_METHOD", "POST"),
            V("CONTENT_TYPE", "application/x-www-form-urlencoded"),
            V("CONTENT_LENGTH", "11"), NO("HTTP_CONTENT_TYPE"),
            NO("HTTP_CONTENT_LENGTH")},
        .order = {"HTTP_HOST", "CONTENT_TYPE", "CONTENT_LENGTH"},
        .nvars = 13},
    {.name = "repeated Content-Length not joined",
        .method = "POST",
        .target = "/",
        .minor = 1,
        .headers = {"Content-Length: 5", "Content-Length: 5",
            "Content-Type: text/plain", "Content-Type: text/html"},
        .expect = {V("CONTENT_LENGTH", "5"), V("CONTENT_TYPE", "text/plain")},
        .nvars = 12},
    {.name = "asterisk-form target",
        .method = "OPTIONS",
        .target = "*",
        .minor = 1,
        .headers = {"Host: h"},
        .expect = {V("PATH_INFO", ""), V("REQUEST_URI", "*"),
            V("QUERY_STRING", "")}},
    {.name = "absolute-form target",
        .method = "GET",
        .target = "http://example.com/a%20b?q=1",
        .minor = 1,
        .headers = {"Host: example.com"},
        .expect = {V("PATH_INFO", "/a b"), V("QUERY_STRING", "q=1"),
            V("REQUEST_URI", "http://example.com/a%20b?q=1")}},
    {.name = "mount point and Unix socket peer",
        .method = "GET",
        .target = "/blog/x",
        .minor = 1,
        .srv = &(const struct cgi_server){.server_name = "localhost",
            .server_port = "443",
            .remote_addr = "",
            .remote_port = "",
            .script_name = "/blog"},
        .expect = {V("SCRIPT_NAME", "/blog"), V("PATH_INFO", "/x"),
            V("SERVER_NAME", "localhost"), V("SERVER_PORT", "443"),
            V("REMOTE_ADDR", ""), V("REMOTE_PORT", "")}},
    {.name = "server fields left NULL are empty",
        .method = "GET",
        .target = "/",
        .minor = 1,
        .srv = &(const struct cgi_server){0},
        .expect = {V("SCRIPT_NAME", ""), V("SERVER_NAME", ""),
            V("SERVER_PORT", ""), V("REMOTE_ADDR", ""), V("REMOTE_PORT", "")},
        .nvars = 10},
    /* Behind the router (front.c): the front end's mount point, site
     * name and scheme. */
    {.name = "front: SCRIPT_NAME split off PATH_INFO",
        .method = "GET",
        .target = "/blog/post/1?x=2",
        .minor = 1,
        .srv = &(const struct cgi_server){.server_name = "",
            .server_port = "443",
            .remote_addr = "",
            .remote_port = "",
            .script_name = "/blog"},
        .expect = {V("SCRIPT_NAME", "/blog"), V("PATH_INFO", "/post/1"),
            V("QUERY_STRING", "x=2"), V("REQUEST_URI", "/blog/post/1?x=2"),
            NO("HTTPS")}},
    {.name = "front: the mount point itself",
        .method = "GET",
        .target = "/blog",
        .minor = 1,
        .srv = &(const struct cgi_server){.script_name = "/blog"},
        .expect = {V("SCRIPT_NAME", "/blog"), V("PATH_INFO", "")}},
    {.name = "front: the mount point and a slash",
        .method = "GET",
        .target = "/blog/",
        .minor = 1,
        .srv = &(const struct cgi_server){.script_name = "/blog"},
        .expect = {V("SCRIPT_NAME", "/blog"), V("PATH_INFO", "/")}},
    {.name = "front: a prefix that is no segment stays whole",
        .method = "GET",
        .target = "/blogger/x",
        .minor = 1,
        .srv = &(const struct cgi_server){.script_name = "/blog"},
        .expect = {V("SCRIPT_NAME", "/blog"), V("PATH_INFO", "/blogger/x")}},
    {.name = "front: a path outside the mount point stays whole",
        .method = "GET",
        .target = "/other/x",
        .minor = 1,
        .srv = &(const struct cgi_server){.script_name = "/blog"},
        .expect = {V("SCRIPT_NAME", "/blog"), V("PATH_INFO", "/other/x")}},
    {.name = "front: SCRIPT_NAME's trailing slash goes",
        .method = "GET",
        .target = "/blog/x",
        .minor = 1,
        .srv = &(const struct cgi_server){.script_name = "/blog//"},
        .expect = {V("SCRIPT_NAME", "/blog"), V("PATH_INFO", "/x")}},
    {.name = "front: SCRIPT_NAME / is the root",
        .method = "GET",
        .target = "/x",
        .minor = 1,
        .srv = &(const struct cgi_server){.script_name = "/"},
        .expect = {V("SCRIPT_NAME", ""), V("PATH_INFO", "/x")}},
    {.name = "front: the split is on the decoded path",
        .method = "GET",
        .target = "/my%20app/a%2Fb",
        .minor = 1,
        .srv = &(const struct cgi_server){.script_name = "/my app"},
        .expect = {V("SCRIPT_NAME", "/my app"), V("PATH_INFO", "/a/b")}},
    {.name = "front: HTTPS on",
        .method = "GET",
        .target = "/",
        .minor = 1,
        .srv = &(const struct cgi_server){.is_https = true},
        .expect = {V("HTTPS", "on")},
        .nvars = 11},
    {.name = "front: SERVER_NAME from the front end wins over Host",
        .method = "GET",
        .target = "/",
        .minor = 1,
        .headers = {"Host: evil.example:81"},
        .srv = &(const struct cgi_server){.server_name = "blog.example.com",
            .server_port = "443",
            .is_server_name_set = true},
        .expect = {V("SERVER_NAME", "blog.example.com"),
            V("SERVER_PORT", "443"), V("HTTP_HOST", "evil.example:81")}},
    {.name = "front: an empty fixed SERVER_NAME falls back to Host",
        .method = "GET",
        .target = "/",
        .minor = 1,
        .headers = {"Host: site.example:81"},
        .srv = &(const struct cgi_server){.server_name = "",
            .is_server_name_set = true},
        .expect = {V("SERVER_NAME", "site.example")}},
    {.name = "front: a client's HTTPS header is no HTTPS variable",
        .method = "GET",
        .target = "/",
        .minor = 1,
        .headers = {"HTTPS: on"},
        .expect = {NO("HTTPS"), V("HTTP_HTTPS", "on")}},
};

/* Builds a request from a row the way the parser would fill it. */
static void build_request(const struct cgi_row *row, struct http_request *req)
{
	const char *t = row->target;
	const char *q;

	memset(req, 0, sizeof(*req));
	req->method = row->method;
	req->method_len = strlen(row->method);
	req->target = t;
	req->target_len = strlen(t);
	req->version_minor = row->minor;
	if (strncmp(t, "http://", 7) == 0)
		t = strchr(t + 7, '/');
	q = strchr(t, '?');
	req->path = t;
	req->path_len = q != NULL ? (size_t)(q - t) : strlen(t);
	req->query = q != NULL ? q + 1 : "";
	req->query_len = strlen(req->query);

	for (size_t i = 0; i < MAX_ROW_HEADERS && row->headers[i] != NULL;
	     i++) {
		struct http_header *h = &req->headers[req->nheaders++];
		const char *line = row->headers[i];
		const char *colon = strchr(line, ':');
		const char *v = colon + 1;

		assert_non_null(colon);
		while (*v == ' ')
			v++;
		h->name = line;
		h->name_len = (size_t)(colon - line);
		h->value = v;
		h->value_len = strlen(v);
		h->line = line;
		h->line_len = strlen(line);
		if (req->host == NULL && h->name_len == 4 &&
		    strncasecmp(line, "host", 4) == 0) {
			req->host = h->value;
			req->host_len = h->value_len;
		}
	}
}

static size_t var_index(const struct cgi_env *env, const char *key)
{
	const struct cgi_var *var = cgi_get(env, key);

	assert_non_null(var);
	return (size_t)(var - env->vars);
}

static void test_row(void **state)
{
	const struct cgi_row *row = *state;
	const struct cgi_server *srv = row->srv ? row->srv : &default_srv;
	static struct http_request req;
	static struct cgi_env env;

	build_request(row, &req);
	assert_int_equal(cgi_build(&req, srv, &env), 0);

	for (size_t i = 0; i < NREQUIRED; i++)
		assert_non_null(cgi_get(&env, required_keys[i]));
	for (size_t i = 0; i < MAX_ROW_EXPECT && row->expect[i].key; i++) {
		const struct expect *e = &row->expect[i];
		const struct cgi_var *var = cgi_get(&env, e->key);
		size_t len = e->len;

		if (e->val == ABSENT) {
			if (var != NULL)
				fail_msg("%s is present", e->key);
			continue;
		}
		if (var == NULL)
			fail_msg("%s is missing", e->key);
		if (var->val_len != len || memcmp(var->val, e->val, len) != 0)
			fail_msg("%s is '%.*s' (%zu bytes), expected '%s'",
			    e->key, (int)var->val_len, var->val, var->val_len,
			    e->val);
	}
	for (size_t i = 1; i < 8 && row->order[i] != NULL; i++)
		assert_true(var_index(&env, row->order[i - 1]) <
		            var_index(&env, row->order[i]));
	if (row->order[0] != NULL &&
	    strcmp(row->order[0], "REQUEST_METHOD") == 0)
		assert_int_equal(var_index(&env, row->order[0]), 0);
	if (row->nvars != 0)
		assert_int_equal(env.nvars, row->nvars);
	/* Every key is a NUL-terminated C string with no lower case. */
	for (size_t i = 0; i < env.nvars; i++)
		for (const char *k = env.vars[i].key; *k != '\0'; k++)
			assert_false(*k >= 'a' && *k <= 'z');
}

/* cgi_percent_decode on its own. */

struct decode_row {
	const char *name;
	const char *in;
	const char *out;
	size_t out_len;
};

static const struct decode_row decode_rows[] = {
    {"decode: empty", "", "", 0},
    {"decode: plain", "/a/b", "/a/b", 4},
    {"decode: space", "a%20b", "a b", 3},
    {"decode: %2F is a slash", "%2F", "/", 1},
    {"decode: lower-case hex", "%2f%e9", "/\xE9", 2},
    {"decode: %00", "a%00b", "a\0b", 3},
    {"decode: latin-1 %E9", "caf%E9", "caf\xE9", 4},
    {"decode: %FF", "%FF", "\xFF", 1},
    {"decode: plus kept", "a+b", "a+b", 3},
    {"decode: invalid digits", "%zz", "%zz", 3},
    {"decode: one bad digit", "%4G", "%4G", 3},
    {"decode: trailing %4", "a%4", "a%4", 3},
    {"decode: trailing %", "a%", "a%", 2},
    {"decode: %% then escape", "%%41", "%A", 2},
    {"decode: no double decoding", "%2541", "%41", 3},
};

static void test_decode(void **state)
{
	const struct decode_row *row = *state;
	char out[64];
	size_t n;

	memset(out, '#', sizeof(out));
	n = cgi_percent_decode(row->in, strlen(row->in), out);
	assert_int_equal(n, row->out_len);
	assert_memory_equal(out, row->out, n);
	assert_int_equal(out[n], '#'); /* nothing written past the result */
}

/* Limits. */

static void test_many_headers(void **state)
{
	static char values[HTTP_MAX_HEADERS][600];
	static struct http_request req;
	static struct cgi_env env;
	const struct cgi_var *var;

	/* The parser's worst case: 100 headers of one name in a 64 KiB head,
	 * joined into one value. */
	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.method_len = 3;
	req.target = req.path = "/";
	req.target_len = req.path_len = 1;
	req.query = "";
	req.version_minor = 1;
	for (size_t i = 0; i < HTTP_MAX_HEADERS; i++) {
		memset(values[i], 'a' + (int)(i % 26), sizeof(values[i]));
		req.headers[i].name = "X-Big";
		req.headers[i].name_len = 5;
		req.headers[i].value = values[i];
		req.headers[i].value_len = sizeof(values[i]);
	}
	req.nheaders = HTTP_MAX_HEADERS;
	assert_int_equal(cgi_build(&req, &default_srv, &env), 0);
	var = cgi_get(&env, "HTTP_X_BIG");
	assert_non_null(var);
	assert_int_equal(var->val_len, HTTP_MAX_HEADERS * (600 + 2) - 2);
	assert_memory_equal(var->val + 600, ", b", 3);
	assert_int_equal(env.nvars, 11);

	/* Far past what the parser accepts: refused, not overrun. */
	static char huge[HTTP_DEFAULT_MAX_HEAD];
	memset(huge, 'x', sizeof(huge));
	for (size_t i = 0; i < HTTP_MAX_HEADERS; i++) {
		req.headers[i].value = huge;
		req.headers[i].value_len = sizeof(huge);
	}
	errno = 0;
	assert_int_equal(cgi_build(&req, &default_srv, &env), -1);
	assert_int_equal(errno, ENOBUFS);
	assert_true(env.arena_used <= sizeof(env.arena));

	/* 100 distinct names: one variable each, plus the fixed ones. */
	static char names[HTTP_MAX_HEADERS][16];
	for (size_t i = 0; i < HTTP_MAX_HEADERS; i++) {
		snprintf(names[i], sizeof(names[i]), "X-H%zu", i);
		req.headers[i].name = names[i];
		req.headers[i].name_len = strlen(names[i]);
		req.headers[i].value = "v";
		req.headers[i].value_len = 1;
	}
	assert_int_equal(cgi_build(&req, &default_srv, &env), 0);
	assert_int_equal(env.nvars, 10 + HTTP_MAX_HEADERS);
	assert_non_null(cgi_get(&env, "HTTP_X_H99"));
	assert_null(cgi_get(&env, "HTTP_X_H100"));
}

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))

int main(void)
{
	struct CMUnitTest tests[NROWS(cgi_rows) + NROWS(decode_rows) + 1];
	size_t n = 0;

	for (size_t i = 0; i < NROWS(cgi_rows); i++)
		tests[n++] = (struct CMUnitTest){.name = cgi_rows[i].name,
		    .test_func = test_row,
		    .initial_state = (void *)&cgi_rows[i]};
	for (size_t i = 0; i < NROWS(decode_rows); i++)
		tests[n++] = (struct CMUnitTest){.name = decode_rows[i].name,
		    .test_func = test_decode,
		    .initial_state = (void *)&decode_rows[i]};
	tests[n++] = (struct CMUnitTest){
	    .name = "many headers", .test_func = test_many_headers};
	return _cmocka_run_group_tests("cgi", tests, n, NULL, NULL);
}
