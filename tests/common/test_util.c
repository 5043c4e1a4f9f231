/* Unit tests for common/util.c: listener specs and strict numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "util.h"

static const struct {
	const char *spec;
	int ok;
	enum util_listen_kind kind;
	const char *host_or_path;
	int port;
} listen_rows[] = {
    {"tcp:127.0.0.1:8080", 1, UTIL_LISTEN_TCP, "127.0.0.1", 8080},
    {"tcp:0.0.0.0:1", 1, UTIL_LISTEN_TCP, "0.0.0.0", 1},
    {"tcp:[::1]:65535", 1, UTIL_LISTEN_TCP, "::1", 65535},
    {"unix:/run/lodge/x.sock", 1, UTIL_LISTEN_UNIX, "/run/lodge/x.sock", 0},
    {"unix:relative.sock", 0, 0, NULL, 0},
    {"unix:", 0, 0, NULL, 0},
    {"tcp:127.0.0.1", 0, 0, NULL, 0},
    {"tcp:127.0.0.1:0", 0, 0, NULL, 0},
    {"tcp:127.0.0.1:65536", 0, 0, NULL, 0},
    {"tcp:127.0.0.1:80x", 0, 0, NULL, 0},
    {"tcp:127.0.0.1:-1", 0, 0, NULL, 0},
    {"tcp:localhost:80", 0, 0, NULL, 0},
    {"tcp::80", 0, 0, NULL, 0},
    {"tcp:[::1:80", 0, 0, NULL, 0},
    {"http:127.0.0.1:80", 0, 0, NULL, 0},
    {"", 0, 0, NULL, 0},
    {"unix:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock", 0, 0, NULL, 0},
};

static void test_parse_listen(void **state)
{
	for (size_t i = 0; i < sizeof(listen_rows) / sizeof(listen_rows[0]);
	     i++) {
		struct util_listen_spec ls;
		const char *err = NULL;
		int rc = util_parse_listen(listen_rows[i].spec, &ls, &err);

		if (!listen_rows[i].ok) {
			assert_int_equal(rc, -1);
			assert_non_null(err);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_int_equal(ls.kind, listen_rows[i].kind);
		if (ls.kind == UTIL_LISTEN_TCP) {
			assert_string_equal(ls.host, listen_rows[i].host_or_path);
			assert_int_equal(ls.port, listen_rows[i].port);
		} else {
			assert_string_equal(ls.path, listen_rows[i].host_or_path);
		}
	}
}

static const struct {
	const char *s;
	uint64_t min, max;
	int suffix;
	int ok;
	uint64_t want;
} num_rows[] = {
    {"0", 0, 10, 0, 1, 0},
    {"10", 0, 10, 0, 1, 10},
    {"11", 0, 10, 0, 0, 0},
    {"", 0, 10, 0, 0, 0},
    {"-1", 0, 10, 0, 0, 0},
    {"+1", 0, 10, 0, 0, 0},
    {" 1", 0, 10, 0, 0, 0},
    {"1 ", 0, 10, 0, 0, 0},
    {"0x10", 0, 100, 0, 0, 0},
    {"18446744073709551615", 0, UINT64_MAX, 0, 1, UINT64_MAX},
    {"18446744073709551616", 0, UINT64_MAX, 0, 0, 0},
    {"4K", 0, UINT64_MAX, 1, 1, 4096},
    {"4k", 0, UINT64_MAX, 1, 1, 4096},
    {"10M", 0, UINT64_MAX, 1, 1, 10485760},
    {"1G", 0, UINT64_MAX, 1, 1, 1073741824},
    {"4K", 0, UINT64_MAX, 0, 0, 0},
    {"4KB", 0, UINT64_MAX, 1, 0, 0},
    {"4T", 0, UINT64_MAX, 1, 0, 0},
    {"K", 0, UINT64_MAX, 1, 0, 0},
    {"17179869184G", 0, UINT64_MAX, 1, 0, 0},
    {"1K", 2048, UINT64_MAX, 1, 0, 0},
};

static void test_parse_u64(void **state)
{
	for (size_t i = 0; i < sizeof(num_rows) / sizeof(num_rows[0]); i++) {
		uint64_t v = 12345;
		int rc = util_parse_u64(num_rows[i].s, num_rows[i].min,
		    num_rows[i].max, num_rows[i].suffix, &v);

		if (num_rows[i].ok) {
			assert_int_equal(rc, 0);
			assert_true(v == num_rows[i].want);
		} else {
			assert_int_equal(rc, -1);
			assert_true(v == 12345);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_listen),
	    cmocka_unit_test(test_parse_u64),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
