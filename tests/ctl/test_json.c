/* Unit tests for ctl/json.c: the writer's output (escapes, UTF-8, commas,
 * numbers) and the parser (every JSON type, errors, depth), and a round
 * trip of what the writer makes through the parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four above first. */
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* ---- writer ---------------------------------------------------------- */

static void test_writer_structure(void **state)
{
	struct json_out j = {0};

	json_out_obj(&j, NULL);
	json_out_str(&j, "a", "x");
	json_out_arr(&j, "b");
	json_out_int(&j, NULL, -3);
	json_out_uint(&j, NULL, 18446744073709551615ULL);
	json_out_obj(&j, NULL);
	json_out_obj_end(&j);
	json_out_arr_end(&j);
	json_out_null(&j, "c");
	json_out_bool(&j, "d", true);
	json_out_bool(&j, "e", false);
	json_out_str(&j, "f", NULL);
	json_out_obj_end(&j);
	assert_false(j.is_failed);
	assert_string_equal(j.buf,
	    "{\"a\":\"x\",\"b\":[-3,18446744073709551615,"
	    "{}],\"c\":null,\"d\":true,\"e\":false,"
	    "\"f\":null}");
	assert_int_equal(j.len, strlen(j.buf));
	json_out_free(&j);
	assert_null(j.buf);
}

static const struct {
	const char *in;
	size_t len; /* 0: strlen */
	const char *want;
} str_rows[] = {
    {"plain", 0, "\"plain\""},
    {"q\"b\\s/", 0, "\"q\\\"b\\\\s/\""},
    {"nl\ntab\tcr\r", 0, "\"nl\\ntab\\tcr\\r\""},
    {"\x1b[31mred\x7f", 0, "\"\\u001b[31mred\\u007f\""},
    {"nul\0in", 6, "\"nul\\u0000in\""},
    {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 0,
        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
    /* Not UTF-8: each bad byte becomes U+FFFD. */
    {"a\xff"
     "b",
        0, "\"a\\ufffdb\""},
    {"\xc3", 0, "\"\\ufffd\""},                       /* cut short */
    {"\xc0\xaf", 0, "\"\\ufffd\\ufffd\""},            /* overlong '/' */
    {"\xed\xa0\x80", 0, "\"\\ufffd\\ufffd\\ufffd\""}, /* a surrogate */
    {"\xf4\x90\x80\x80", 0, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""}, /* >10FFFF */
    {"\xe2\x82", 0, "\"\\ufffd\\ufffd\""},
};

static void test_writer_strings(void **state)
{
	for (size_t i = 0; i < sizeof(str_rows) / sizeof(str_rows[0]); i++) {
		struct json_out j = {0};
		size_t len =
		    str_rows[i].len ? str_rows[i].len : strlen(str_rows[i].in);

		json_out_strn(&j, NULL, str_rows[i].in, len);
		assert_false(j.is_failed);
		assert_string_equal(j.buf, str_rows[i].want);
		json_out_free(&j);
	}
}

static const struct {
	double v;
	const char *want;
} num_rows[] = {
    {0, "0"},
    {1.5, "1.5"},
    {0.045, "0.045"},
    {-2.25, "-2.25"},
    {1e-9, "0"},
    {-1e-9, "0"},
    {123456789.0, "123456789"},
    {0.1234567, "0.123457"},
    {NAN, "null"},
    {INFINITY, "null"},
};

static void test_writer_numbers(void **state)
{
	for (size_t i = 0; i < sizeof(num_rows) / sizeof(num_rows[0]); i++) {
		struct json_out j = {0};

		json_out_num(&j, NULL, num_rows[i].v);
		assert_string_equal(j.buf, num_rows[i].want);
		json_out_free(&j);
	}
}

static void test_writer_misuse(void **state)
{
	struct json_out j = {0};

	/* More closed than opened: a bug, reported, not a crash. */
	json_out_obj(&j, NULL);
	json_out_obj_end(&j);
	json_out_obj_end(&j);
	assert_true(j.is_failed);
	json_out_free(&j);

	/* Deeper than JSON_MAX_DEPTH. */
	for (int i = 0; i <= JSON_MAX_DEPTH; i++)
		json_out_arr(&j, NULL);
	assert_true(j.is_failed);
	json_out_int(&j, NULL, 1); /* a no-op now */
	json_out_free(&j);
}

/* ---- parser ---------------------------------------------------------- */

static struct json_val *parse(const char *s)
{
	const char *err = NULL;
	size_t off = 0;
	struct json_val *v = json_parse(s, strlen(s), &err, &off);

	if (v == NULL)
		print_message("parse error: %s at %zu in %s\n", err, off, s);
	return v;
}

static void test_parse_types(void **state)
{
	struct json_val *v =
	    parse(" {\"n\": -1.5e2, \"s\": \"a\\u00e9\\ud83d\\ude00\\n\\\"\", "
	          "\"t\": true, \"f\": false, \"z\": null, \"a\": [1, [], {}], "
	          "\"o\": {\"k\": \"v\"}, \"u\": \"\\u0000x\", \"n\": 2} ");
	const struct json_val *a, *o, *u;
	double num = 0;
	bool b = false;

	assert_non_null(v);
	assert_int_equal(v->type, JSON_OBJ);
	assert_int_equal(v->n, 9);
	/* Duplicate keys: the first one wins. */
	assert_true(json_get_num(v, "n", &num));
	assert_true(num == -150.0);
	assert_string_equal(
	    json_get_str(v, "s"), "a\xc3\xa9\xf0\x9f\x98\x80\n\"");
	assert_true(json_get_bool(v, "t", &b) && b);
	assert_true(json_get_bool(v, "f", &b) && !b);
	assert_int_equal(json_get(v, "z")->type, JSON_NULL);
	a = json_get_arr(v, "a");
	assert_non_null(a);
	assert_int_equal(a->n, 3);
	assert_int_equal(a->items[1].type, JSON_ARR);
	assert_int_equal(a->items[2].type, JSON_OBJ);
	o = json_get_obj(v, "o");
	assert_string_equal(json_get_str(o, "k"), "v");
	u = json_get(v, "u");
	assert_int_equal(u->str_len, 2);
	assert_memory_equal(u->str, "\0x", 2);
	/* Wrong types and absent keys are not found. */
	assert_null(json_get_str(v, "n"));
	assert_false(json_get_num(v, "s", &num));
	assert_null(json_get_arr(v, "o"));
	assert_null(json_get_obj(v, "a"));
	assert_null(json_get(v, "missing"));
	assert_null(json_get(a, "n"));
	json_free(v);

	v = parse("\"\\ud800x\""); /* a lone surrogate */
	assert_non_null(v);
	assert_string_equal(v->str, "\xef\xbf\xbdx");
	json_free(v);
}

static const char *const bad_rows[] = {
    "",
    "   ",
    "{",
    "{\"a\"}",
    "{\"a\":}",
    "{\"a\":1,}",
    "[1,]",
    "[1 2]",
    "{a:1}",
    "\"unterminated",
    "\"ctl\x01\"",
    "\"bad \\x escape\"",
    "\"\\u12\"",
    "\"\\u12g4\"",
    "01",
    "-",
    "1.",
    "1e",
    ".5",
    "tru",
    "nul",
    "falsey",
    "{} []",
    "[1]x",
    "1111111111111111111111111111111111111111111111111111111111111111111",
};

static void test_parse_errors(void **state)
{
	for (size_t i = 0; i < sizeof(bad_rows) / sizeof(bad_rows[0]); i++) {
		const char *err = NULL;
		size_t off = 99999;
		struct json_val *v =
		    json_parse(bad_rows[i], strlen(bad_rows[i]), &err, &off);

		if (v != NULL)
			fail_msg("parsed: %s", bad_rows[i]);
		assert_non_null(err);
		assert_true(off <= strlen(bad_rows[i]));
	}
}

static void test_parse_depth(void **state)
{
	char deep[JSON_PARSE_MAX_DEPTH * 2 + 8];
	struct json_val *v;
	const char *err = NULL;
	size_t off, n = 0;

	for (int i = 0; i < JSON_PARSE_MAX_DEPTH; i++)
		deep[n++] = '[';
	for (int i = 0; i < JSON_PARSE_MAX_DEPTH; i++)
		deep[n++] = ']';
	v = json_parse(deep, n, &err, &off);
	assert_non_null(v);
	json_free(v);

	n = 0;
	for (int i = 0; i <= JSON_PARSE_MAX_DEPTH; i++)
		deep[n++] = '[';
	for (int i = 0; i <= JSON_PARSE_MAX_DEPTH; i++)
		deep[n++] = ']';
	v = json_parse(deep, n, &err, &off);
	assert_null(v);
	assert_string_equal(err, "nested too deeply");
}

/* Whatever the writer makes, the parser reads back the same: every byte
 * value in a string, and a cut at any point is an error, not a crash. */
static void test_round_trip(void **state)
{
	char raw[256];
	struct json_out j = {0};
	struct json_val *v;
	const char *err;
	size_t off;

	for (int i = 0; i < 256; i++)
		raw[i] = (char)i;
	json_out_obj(&j, NULL);
	json_out_strn(&j, "ascii", raw, 128);
	json_out_num(&j, "x", 3.25);
	json_out_obj_end(&j);
	v = json_parse(j.buf, j.len, &err, &off);
	assert_non_null(v);
	assert_int_equal(json_get(v, "ascii")->str_len, 128);
	assert_memory_equal(json_get(v, "ascii")->str, raw, 128);
	json_free(v);
	for (size_t cut = 0; cut < j.len; cut++) {
		v = json_parse(j.buf, cut, &err, &off);
		assert_null(v);
	}
	json_out_free(&j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_writer_structure),
	    cmocka_unit_test(test_writer_strings),
	    cmocka_unit_test(test_writer_numbers),
	    cmocka_unit_test(test_writer_misuse),
	    cmocka_unit_test(test_parse_types),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_parse_depth),
	    cmocka_unit_test(test_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
