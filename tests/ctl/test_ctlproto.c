/* Unit tests for ctl/ctlproto.c: the request lines lodged accepts and
 * refuses, the reply heads both ways (including other versions), names,
 * USER/APP targets and the tail of a log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four above first. */
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ctlproto.h"

static const struct {
	const char *in;
	int ok;
	unsigned version;
	const char *cmd;
	int nargs;
	const char *arg0;
	const char *arg1;
} req_rows[] = {
    {"LODGECTL 1 status", 1, 1, "status", 0, NULL, NULL},
    {"LODGECTL 1 status\n", 1, 1, "status", 0, NULL, NULL},
    {"LODGECTL 1 status alice", 1, 1, "status", 1, "alice", NULL},
    {"LODGECTL 1 logs alice/blog 20", 1, 1, "logs", 2, "alice/blog", "20"},
    {"LODGECTL 1 a 1 2 3 4 5 6", 1, 1, "a", 6, "1", "2"},
    /* Another version: parsed so that lodged can answer ERR version. */
    {"LODGECTL 999 status", 1, 999, NULL, 0, NULL, NULL},
    {"LODGECTL 2 whatever the future sends", 1, 2, NULL, 0, NULL, NULL},
    {"LODGECTL 1 a 1 2 3 4 5 6 7", 0, 0, NULL, 0, NULL, NULL},
    {"LODGECTL 1", 0, 0, NULL, 0, NULL, NULL},
    {"LODGECTL", 0, 0, NULL, 0, NULL, NULL},
    {"", 0, 0, NULL, 0, NULL, NULL},
    {"\n", 0, 0, NULL, 0, NULL, NULL},
    {"lodgectl 1 status", 0, 0, NULL, 0, NULL, NULL},
    {"LODGECTL 01 status", 0, 0, NULL, 0, NULL, NULL},
    {"LODGECTL -1 status", 0, 0, NULL, 0, NULL, NULL},
    {"LODGECTL 1x status", 0, 0, NULL, 0, NULL, NULL},
    {"LODGECTL 1  status", 0, 0, NULL, 0, NULL, NULL},
    {"LODGECTL 1 status ", 0, 0, NULL, 0, NULL, NULL},
    {" LODGECTL 1 status", 0, 0, NULL, 0, NULL, NULL},
    {"LODGECTL 1 status\talice", 0, 0, NULL, 0, NULL, NULL},
    {"LODGECTL 1 status al\x1bice", 0, 0, NULL, 0, NULL, NULL},
    {"LODGECTL 1 status al\xc3\xa9", 0, 0, NULL, 0, NULL, NULL},
    {"LODGECTL 1 status\n\n", 0, 0, NULL, 0, NULL, NULL},
    {"GET / HTTP/1.1", 0, 0, NULL, 0, NULL, NULL},
};

static void test_req_parse(void **state)
{
	for (size_t i = 0; i < sizeof(req_rows) / sizeof(req_rows[0]); i++) {
		struct ctlproto_req r;
		const char *err = NULL;
		int rc = ctlproto_req_parse(
		    req_rows[i].in, strlen(req_rows[i].in), &r, &err);

		if (!req_rows[i].ok) {
			if (rc != -1)
				fail_msg("accepted: '%s'", req_rows[i].in);
			assert_non_null(err);
			continue;
		}
		if (rc != 0)
			fail_msg("refused: '%s' (%s)", req_rows[i].in, err);
		assert_int_equal(r.version, req_rows[i].version);
		if (req_rows[i].cmd == NULL)
			continue;
		assert_string_equal(r.cmd, req_rows[i].cmd);
		assert_int_equal(r.nargs, req_rows[i].nargs);
		if (req_rows[i].arg0 != NULL)
			assert_string_equal(r.args[0], req_rows[i].arg0);
		if (req_rows[i].arg1 != NULL)
			assert_string_equal(r.args[1], req_rows[i].arg1);
	}
}

static void test_req_too_long(void **state)
{
	char buf[CTLPROTO_MAX_REQUEST + 2];
	struct ctlproto_req r;
	const char *err = NULL;

	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "LODGECTL 1 status ", 18);
	assert_int_equal(
	    ctlproto_req_parse(buf, CTLPROTO_MAX_REQUEST, &r, &err), 0);
	assert_int_equal(
	    ctlproto_req_parse(buf, CTLPROTO_MAX_REQUEST + 1, &r, &err), -1);
	assert_string_equal(err, "request too long");
}

static void test_req_format(void **state)
{
	char out[CTLPROTO_MAX_REQUEST + 1];
	const char *args[] = {"alice/blog", "20"};
	const char *bad[] = {"a b"};
	const char *empty[] = {""};
	char big[CTLPROTO_MAX_REQUEST];
	const char *bigs[] = {big};
	struct ctlproto_req r;
	const char *err;
	int n;

	n = ctlproto_req_format(out, sizeof(out), "logs", args, 2);
	assert_string_equal(out, "LODGECTL 1 logs alice/blog 20");
	assert_int_equal(n, (int)strlen(out));
	/* What lodgectl formats, lodged parses back. */
	assert_int_equal(ctlproto_req_parse(out, (size_t)n, &r, &err), 0);
	assert_string_equal(r.cmd, "logs");
	assert_int_equal(r.nargs, 2);
	assert_string_equal(r.args[1], "20");

	assert_int_equal(
	    ctlproto_req_format(out, sizeof(out), "status", NULL, 0),
	    (int)strlen("LODGECTL 1 status"));
	assert_int_equal(
	    ctlproto_req_format(out, sizeof(out), "s", bad, 1), -1);
	assert_int_equal(
	    ctlproto_req_format(out, sizeof(out), "s", empty, 1), -1);
	assert_int_equal(
	    ctlproto_req_format(out, sizeof(out), "a b", NULL, 0), -1);
	assert_int_equal(ctlproto_req_format(out, 10, "status", NULL, 0), -1);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(
	    ctlproto_req_format(out, sizeof(out), "s", bigs, 1), -1);
	assert_int_equal(ctlproto_req_format(out, sizeof(out), "s", args,
	                     CTLPROTO_MAX_ARGS + 1),
	    -1);
}

static void test_head_format(void **state)
{
	char out[CTLPROTO_MAX_HEAD];
	char longer[3000];
	size_t n;

	n = ctlproto_head_format(out, sizeof(out), 1, CTLPROTO_OK, "ignored");
	assert_string_equal(out, "LODGECTL 1 OK\n");
	assert_int_equal(n, strlen(out));
	ctlproto_head_format(
	    out, sizeof(out), 1, CTLPROTO_ERR_NOUSER, "bob is not\nhosted\r");
	assert_string_equal(out, "LODGECTL 1 ERR nouser bob is not hosted \n");
	ctlproto_head_format(out, sizeof(out), 1, CTLPROTO_ERR_FAILED, "");
	assert_string_equal(out, "LODGECTL 1 ERR failed (no reason)\n");
	/* Too long: cut, still one line ending in LF. */
	memset(longer, 'z', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	n = ctlproto_head_format(
	    out, sizeof(out), 1, CTLPROTO_ERR_FAILED, longer);
	assert_int_equal(n, sizeof(out) - 1);
	assert_int_equal(out[n - 1], '\n');
	assert_null(memchr(out, '\n', n - 1));
}

static void test_err_names(void **state)
{
	for (int k = 1; k < CTLPROTO_ERR_MAX; k++)
		assert_int_equal(
		    ctlproto_err_parse(ctlproto_err_name((enum ctlproto_err)k)),
		    k);
	assert_null(ctlproto_err_name(CTLPROTO_OK));
	/* A kind from a newer lodged reads as a failure. */
	assert_int_equal(ctlproto_err_parse("exploded"), CTLPROTO_ERR_FAILED);
}

static void test_reply_parse(void **state)
{
	struct ctlproto_reply r;
	const char *err = NULL;
	const char *ok = "LODGECTL 1 OK\n{\"a\":1}";
	const char *bad = "LODGECTL 1 ERR denied permission denied: uid 5\n{}";
	const char *future = "LODGECTL 7 ERR version this lodgectl speaks 1\n";
	const char *future_ok = "LODGECTL 7 OK\n{}";
	const char *unknown = "LODGECTL 1 ERR melted the thing\n";

	assert_int_equal(ctlproto_reply_parse(ok, strlen(ok), &r, &err), 0);
	assert_int_equal(r.kind, CTLPROTO_OK);
	assert_int_equal(r.version, 1);
	assert_int_equal(r.body_len, 7);
	assert_memory_equal(r.body, "{\"a\":1}", 7);

	assert_int_equal(ctlproto_reply_parse(bad, strlen(bad), &r, &err), 0);
	assert_int_equal(r.kind, CTLPROTO_ERR_DENIED);
	assert_string_equal(r.message, "permission denied: uid 5");
	assert_int_equal(r.body_len, 2);

	/* Another version's ERR is still read (the sentence is shown). */
	assert_int_equal(
	    ctlproto_reply_parse(future, strlen(future), &r, &err), 0);
	assert_int_equal(r.version, 7);
	assert_int_equal(r.kind, CTLPROTO_ERR_VERSION);
	assert_string_equal(r.message, "this lodgectl speaks 1");
	assert_int_equal(r.body_len, 0);
	assert_int_equal(
	    ctlproto_reply_parse(future_ok, strlen(future_ok), &r, &err), 0);
	assert_int_equal(r.version, 7);
	assert_int_equal(
	    ctlproto_reply_parse(unknown, strlen(unknown), &r, &err), 0);
	assert_int_equal(r.kind, CTLPROTO_ERR_FAILED);
	assert_string_equal(r.message, "the thing");

	static const char *const garbage[] = {"", "LODGECTL 1 OK",
	    "HTTP/1.1 200 OK\r\n\r\n", "LODGECTL x OK\n", "LODGECTL 1\n",
	    "LODGECTL 1 MAYBE\n", "LODGECTL1 OK\n"};
	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		err = NULL;
		assert_int_equal(ctlproto_reply_parse(
		                     garbage[i], strlen(garbage[i]), &r, &err),
		    -1);
		assert_non_null(err);
	}
	/* A head line longer than the limit is not a head line. */
	char huge[CTLPROTO_MAX_HEAD + 20];
	memset(huge, 'a', sizeof(huge));
	memcpy(huge, "LODGECTL 1 ERR failed ", 22);
	huge[sizeof(huge) - 1] = '\n';
	assert_int_equal(
	    ctlproto_reply_parse(huge, sizeof(huge), &r, &err), -1);
}

static void test_names(void **state)
{
	char user[CTLPROTO_MAX_USER + 1], app[CTLPROTO_MAX_APP + 1];
	const char *err;

	assert_int_equal(ctlproto_user_check("alice"), 0);
	assert_int_equal(ctlproto_user_check("a.b-c_D9"), 0);
	assert_int_equal(ctlproto_user_check("machine$"), 0);
	assert_int_equal(ctlproto_user_check(""), -1);
	assert_int_equal(ctlproto_user_check("-x"), -1);
	assert_int_equal(ctlproto_user_check("$"), -1);
	assert_int_equal(ctlproto_user_check("a$b"), -1);
	assert_int_equal(ctlproto_user_check("a/b"), -1);
	assert_int_equal(
	    ctlproto_user_check("abcdefghijabcdefghijabcdefghijabc"), -1);
	assert_int_equal(ctlproto_app_check("blog"), 0);
	assert_int_equal(ctlproto_app_check("my-app_2.0"), 0);
	assert_int_equal(ctlproto_app_check(".hidden"), -1);
	assert_int_equal(ctlproto_app_check(".."), -1);
	assert_int_equal(ctlproto_app_check("a/b"), -1);
	assert_int_equal(ctlproto_app_check(""), -1);

	assert_int_equal(ctlproto_target_split("alice", user, app, &err), 0);
	assert_string_equal(user, "alice");
	assert_string_equal(app, "");
	assert_int_equal(
	    ctlproto_target_split("alice/blog", user, app, &err), 0);
	assert_string_equal(user, "alice");
	assert_string_equal(app, "blog");
	assert_int_equal(
	    ctlproto_target_split("alice/../bob", user, app, &err), -1);
	assert_int_equal(ctlproto_target_split("alice/", user, app, &err), -1);
	assert_int_equal(ctlproto_target_split("/blog", user, app, &err), -1);
	assert_int_equal(
	    ctlproto_target_split("alice/a/b", user, app, &err), -1);
	assert_int_equal(
	    ctlproto_target_split("alice/.env", user, app, &err), -1);
}

static const struct {
	const char *text;
	bool is_cut;
	unsigned n;
	const char *want;
} tail_rows[] = {
    {"a\nb\nc\n", false, 2, "b\nc\n"},
    {"a\nb\nc\n", false, 3, "a\nb\nc\n"},
    {"a\nb\nc\n", false, 10, "a\nb\nc\n"},
    {"a\nb\nc", false, 2, "b\nc"}, /* the last line still growing */
    {"a\nb\nc\n", false, 1, "c\n"},
    {"", false, 5, ""},
    {"\n", false, 1, "\n"},
    {"\n\n\n", false, 2, "\n\n"},
    {"a\nb\n", false, 0, ""},
    /* Cut: the first, partial line goes. */
    {"tial\nb\nc\n", true, 10, "b\nc\n"},
    {"tial\nb\nc\n", true, 1, "c\n"},
    {"only part of one line", true, 3, "only part of one line"},
    {"only part of one line\n", true, 3, "only part of one line\n"},
};

static void test_tail(void **state)
{
	for (size_t i = 0; i < sizeof(tail_rows) / sizeof(tail_rows[0]); i++) {
		const char *t = tail_rows[i].text;
		size_t off = ctlproto_tail(
		    t, strlen(t), tail_rows[i].is_cut, tail_rows[i].n);

		if (strcmp(t + off, tail_rows[i].want) != 0)
			fail_msg("row %zu: got '%s', want '%s'", i, t + off,
			    tail_rows[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_req_parse),
	    cmocka_unit_test(test_req_too_long),
	    cmocka_unit_test(test_req_format),
	    cmocka_unit_test(test_head_format),
	    cmocka_unit_test(test_err_names),
	    cmocka_unit_test(test_reply_parse),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_tail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
