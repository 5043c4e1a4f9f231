/* Unit tests for common/log.c: the timestamp format every log line uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "log.h"

static const struct {
	long long ms;
	const char *want;
} time_rows[] = {
    {0, "1970-01-01T00:00:00.000Z"},
    {1, "1970-01-01T00:00:00.001Z"},
    {999, "1970-01-01T00:00:00.999Z"},
    {1000, "1970-01-01T00:00:01.000Z"},
    {951782400123LL, "2000-02-29T00:00:00.123Z"}, /* leap day */
    {1795564800000LL, "2026-11-25T00:00:00.000Z"},
    {4102444799999LL, "2099-12-31T23:59:59.999Z"},
};

static void test_format_time(void **state)
{
	for (size_t i = 0; i < sizeof(time_rows) / sizeof(time_rows[0]); i++) {
		char buf[32];

		memset(buf, 'x', sizeof(buf));
		log_format_time(buf, time_rows[i].ms);
		assert_string_equal(buf, time_rows[i].want);
		assert_int_equal(strlen(buf), 24);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_format_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
