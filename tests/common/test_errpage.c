/*
 * test_errpage.c: table-driven unit tests of src/common/errpage.c, the
 * error pages lodge answers with.  Runs as any user, touches no file and
 * no socket.  Each rendered response is read back as a client would: the
 * status line, the header fields, a Content-Length that matches the body
 * to the byte, and nothing that reveals the server.
 */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errpage.h"
#include "http.h"

struct page_case {
	int status;         /* asked for */
	int want_status;    /* on the status line */
	const char *reason; /* on the status line and in the page */
	const char *sentence;
};

static const struct page_case page_cases[] = {
    {400, 400, "Bad Request", "The request was malformed."},
    {404, 404, "Not Found", "No application is served at this address."},
    {405, 405, "Method Not Allowed", "This method is not allowed here."},
    {408, 408, "Request Timeout", "The request took too long to arrive."},
    {411, 411, "Length Required", "The request needs a Content-Length."},
    {413, 413, "Content Too Large", "The request body is too large."},
    {414, 414, "URI Too Long", "The request address is too long."},
    {417, 417, "Expectation Failed",
        "The request's Expect header cannot be met."},
    {429, 429, "Too Many Requests", "Too many requests; retry shortly."},
    {431, 431, "Request Header Fields Too Large",
        "The request headers are too large."},
    {500, 500, "Internal Server Error",
        "The application failed to answer this request."},
    {501, 501, "Not Implemented",
        "The request uses a feature this server does not implement."},
    {502, 502, "Bad Gateway", "The application could not be reached."},
    {503, 503, "Service Unavailable",
        "The application is overloaded; retry shortly."},
    {504, 504, "Gateway Timeout", "The application did not answer in time."},
    {505, 505, "HTTP Version Not Supported",
        "The HTTP version of the request is not supported."},
    /* Statuses without a sentence of their own. */
    {403, 403, "Forbidden", "The request could not be completed."},
    {410, 410, "Gone", "The request could not be completed."},
    {599, 599, "Unknown", "The request could not be completed."},
    {200, 200, "OK", "The request could not be completed."},
    /* Statuses that cannot carry a page become a 500. */
    {100, 500, "Internal Server Error",
        "The application failed to answer this request."},
    {204, 500, "Internal Server Error",
        "The application failed to answer this request."},
    {304, 500, "Internal Server Error",
        "The application failed to answer this request."},
    {0, 500, "Internal Server Error",
        "The application failed to answer this request."},
    {-404, 500, "Internal Server Error",
        "The application failed to answer this request."},
    {1000, 500, "Internal Server Error",
        "The application failed to answer this request."},
};

/* The flag combinations every status is rendered with. */
static const struct {
	bool is_head;
	bool keep_alive;
	int retry_after;
} variants[] = {
    {false, false, 0},
    {false, true, 0},
    {true, false, 0},
    {true, true, 0},
    {false, false, 30},
    {true, true, 1},
    {false, true, -5},
    {false, false, INT_MAX},
};

static bool contains(const char *s, size_t len, const char *needle)
{
	return memmem(s, len, needle, strlen(needle)) != NULL;
}

/* Returns the value of header name in head[0..head_len), NUL-terminated
 * into out, or NULL if absent. */
static const char *header_value(const char *head, size_t head_len,
    const char *name, char *out, size_t out_size)
{
	char needle[64];
	const char *p, *e;

	snprintf(needle, sizeof(needle), "\r\n%s: ", name);
	p = memmem(head, head_len, needle, strlen(needle));
	if (p == NULL)
		return NULL;
	p += strlen(needle);
	e = memmem(p, head + head_len - p, "\r\n", 2);
	assert_non_null(e);
	assert_true((size_t)(e - p) < out_size);
	memcpy(out, p, e - p);
	out[e - p] = '\0';
	return out;
}

static void check_page(const struct page_case *c, size_t v)
{
	char buf[512], line[128], val[64], want[64];
	const char *end;
	size_t len, head_len, body_len;
	bool is_head = variants[v].is_head;
	int retry_after = variants[v].retry_after;

	memset(buf, 0x5a, sizeof(buf));
	len = errpage_render(buf, sizeof(buf), c->status, is_head,
	    variants[v].keep_alive, retry_after);
	assert_true(len > 0 && len <= sizeof(buf));

	/* Status line. */
	snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", c->want_status,
	    c->reason);
	if (len < strlen(line) || memcmp(buf, line, strlen(line)) != 0)
		fail_msg(
		    "status %d: bad status line \"%.40s\"", c->status, buf);

	/* Head and body. */
	end = memmem(buf, len, "\r\n\r\n", 4);
	assert_non_null(end);
	head_len = end + 4 - buf;
	body_len = len - head_len;

	assert_non_null(
	    header_value(buf, head_len, "Content-Type", val, sizeof(val)));
	assert_string_equal(val, "text/html; charset=utf-8");
	assert_non_null(
	    header_value(buf, head_len, "Connection", val, sizeof(val)));
	assert_string_equal(
	    val, variants[v].keep_alive ? "keep-alive" : "close");
	if (retry_after > 0) {
		snprintf(want, sizeof(want), "%d", retry_after);
		assert_non_null(header_value(
		    buf, head_len, "Retry-After", val, sizeof(val)));
		assert_string_equal(val, want);
	} else {
		assert_false(contains(buf, head_len, "Retry-After"));
	}
	assert_non_null(
	    header_value(buf, head_len, "Content-Length", val, sizeof(val)));

	if (is_head) {
		/* HEAD: no body, but the length of the one GET would get. */
		char full[512];
		size_t full_len;

		assert_int_equal(body_len, 0);
		full_len = errpage_render(full, sizeof(full), c->status, false,
		    variants[v].keep_alive, retry_after);
		assert_true(full_len > len);
		assert_memory_equal(full, buf, len);
		snprintf(want, sizeof(want), "%zu", full_len - len);
		assert_string_equal(val, want);
	} else {
		snprintf(want, sizeof(want), "%zu", body_len);
		assert_string_equal(val, want);
		snprintf(
		    line, sizeof(line), "%d %s", c->want_status, c->reason);
		assert_true(contains(buf + head_len, body_len, line));
		assert_true(contains(buf + head_len, body_len, c->sentence));
		assert_true(contains(buf + head_len, body_len, "<html"));
		assert_true(contains(buf + head_len, body_len, "</html>"));
	}

	/* The only header fields are the five documented ones; nothing
	 * names the server or its version. */
	assert_false(contains(buf, head_len, "\r\nServer:"));
	assert_false(contains(buf, len, "lodge"));
	assert_false(contains(buf, len, "Python"));
	/* Nothing after what was reported as written. */
	if (len < sizeof(buf))
		assert_int_equal((unsigned char)buf[len], 0x5a);
}

static void test_each_status(void **state)
{
	size_t i, v;

	for (i = 0; i < sizeof(page_cases) / sizeof(page_cases[0]); i++) {
		for (v = 0; v < sizeof(variants) / sizeof(variants[0]); v++)
			check_page(&page_cases[i], v);
	}
}

/* 512 bytes is always enough, whatever the status and flags. */
static void test_512_is_enough(void **state)
{
	char buf[512];
	int status;
	size_t v;

	for (status = -1; status <= 1001; status++) {
		for (v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
			size_t len = errpage_render(buf, sizeof(buf), status,
			    variants[v].is_head, variants[v].keep_alive,
			    variants[v].retry_after);

			if (len == 0)
				fail_msg(
				    "status %d does not fit 512 bytes", status);
		}
	}
}

/* A buffer one byte too small gives 0 and is left untouched; the exact
 * size works.  Each buffer is malloc'd at its exact size so that
 * AddressSanitizer sees an overflow. */
static void test_small_buffer(void **state)
{
	static const int statuses[] = {400, 404, 431, 503};
	char full[512];
	size_t i, j, v, size, len;

	for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		for (v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
			len = errpage_render(full, sizeof(full), statuses[i],
			    variants[v].is_head, variants[v].keep_alive,
			    variants[v].retry_after);
			assert_true(len > 0);
			for (size = 0; size <= len + 1; size++) {
				char *b = malloc(size ? size : 1);
				size_t got;

				assert_non_null(b);
				memset(b, 0x5a, size);
				got = errpage_render(b, size, statuses[i],
				    variants[v].is_head, variants[v].keep_alive,
				    variants[v].retry_after);
				if (size < len) {
					assert_int_equal(got, 0);
					for (j = 0; j < size; j++)
						assert_int_equal(
						    (unsigned char)b[j], 0x5a);
				} else {
					assert_int_equal(got, len);
					assert_memory_equal(b, full, len);
				}
				free(b);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_each_status),
	    cmocka_unit_test(test_512_is_enough),
	    cmocka_unit_test(test_small_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
