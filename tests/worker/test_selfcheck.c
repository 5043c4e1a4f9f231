/* Unit tests for worker/selfcheck.c: /proc/self/status texts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "selfcheck.h"

#define UIDS "Uid:\t1000\t1000\t1000\t1000\n"
#define GIDS "Gid:\t1000\t1000\t1000\t1000\n"
#define GROUPS "Groups:\t1000 27 \n"
#define CAPS "CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\n" \
    "CapEff:\t0000000000000000\nCapBnd:\t0000000000000000\n" \
    "CapAmb:\t0000000000000000\n"
#define NNP "NoNewPrivs:\t1\n"
#define SECCOMP "Seccomp:\t2\nSeccomp_filters:\t2\n"
#define HEAD "Name:\tlodge-worker\nUmask:\t0022\nState:\tS (sleeping)\n"

static const gid_t groups[] = {27, 1000};
static const struct selfcheck_expect expect = {1000, 1000, groups, 2};

static const struct {
	const char *text;
	const char *why; /* NULL: passes */
} rows[] = {
    {HEAD UIDS GIDS GROUPS CAPS NNP SECCOMP, NULL},
    {HEAD UIDS GIDS "Groups:\t27 1000\n" CAPS NNP SECCOMP, NULL},
    {HEAD UIDS GIDS GROUPS CAPS NNP "Seccomp:\t0\n", "Seccomp is 0, expected 2"},
    {HEAD UIDS GIDS GROUPS CAPS NNP "Seccomp:\t1\n", "Seccomp is 1, expected 2"},
    {HEAD UIDS GIDS GROUPS CAPS "NoNewPrivs:\t0\n" SECCOMP,
     "NoNewPrivs is 0, expected 1"},
    {HEAD UIDS GIDS GROUPS CAPS SECCOMP,
     "NoNewPrivs is missing from /proc/self/status"},
    {HEAD UIDS GIDS GROUPS "CapEff:\t0000000000000400\nCapPrm:\t0\nCapBnd:\t0\n"
     "CapAmb:\t0\n" NNP SECCOMP, "CapEff is 0000000000000400, expected 0"},
    {HEAD UIDS GIDS GROUPS "CapEff:\t0\nCapPrm:\t0\nCapBnd:\t000001ffffffffff\n"
     "CapAmb:\t0\n" NNP SECCOMP, "CapBnd is 000001ffffffffff, expected 0"},
    {HEAD UIDS GIDS GROUPS "CapEff:\t0\nCapPrm:\t1\nCapBnd:\t0\nCapAmb:\t0\n"
     NNP SECCOMP, "CapPrm is 1, expected 0"},
    {HEAD UIDS GIDS GROUPS "CapEff:\t0\nCapPrm:\t0\nCapBnd:\t0\nCapAmb:\t80\n"
     NNP SECCOMP, "CapAmb is 80, expected 0"},
    {HEAD UIDS GIDS GROUPS "CapEff:\t0\nCapPrm:\t0\nCapBnd:\t0\n" NNP SECCOMP,
     "CapAmb is missing"},
    {HEAD UIDS GIDS GROUPS "CapEff:\tzz\nCapPrm:\t0\nCapBnd:\t0\nCapAmb:\t0\n"
     NNP SECCOMP, "CapEff: cannot parse 'zz'"},
    {HEAD "Uid:\t1000\t0\t1000\t1000\n" GIDS GROUPS CAPS NNP SECCOMP,
     "Uid is '1000\t0\t1000\t1000', expected 1000 four times"},
    {HEAD "Uid:\t1000\t1000\t1000\n" GIDS GROUPS CAPS NNP SECCOMP,
     "Uid: cannot parse"},
    {HEAD UIDS "Gid:\t1000\t1000\t1000\t0\n" GROUPS CAPS NNP SECCOMP,
     "Gid is '1000\t1000\t1000\t0', expected 1000 four times"},
    {HEAD GIDS GROUPS CAPS NNP SECCOMP, "Uid is missing"},
    {HEAD UIDS GIDS "Groups:\t1000 27 0\n" CAPS NNP SECCOMP,
     "Groups has 0, which was not asked for"},
    {HEAD UIDS GIDS "Groups:\t1000\n" CAPS NNP SECCOMP, "Groups lacks 27"},
    {HEAD UIDS GIDS "Groups:\t\n" CAPS NNP SECCOMP, "Groups lacks 27"},
    {HEAD UIDS GIDS "Groups:\t1000 x\n" CAPS NNP SECCOMP, "Groups: cannot parse"},
    {HEAD UIDS GIDS CAPS NNP SECCOMP, "Groups is missing"},
    {"", "CapEff is missing"},
};

static void test_rows(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char why[256] = "";
		int rc = selfcheck_status(rows[i].text, &expect, why, sizeof(why));

		if (!rows[i].why) {
			if (rc != 0)
				fail_msg("row %zu: unexpected failure: %s", i, why);
			continue;
		}
		if (rc != -1 || strncmp(why, rows[i].why, strlen(rows[i].why)) != 0)
			fail_msg("row %zu: rc %d, why '%s', want '%s'", i, rc, why,
			    rows[i].why);
	}
}

/* Empty expected groups and an empty Groups line agree. */
static void test_no_groups(void **state)
{
	static const struct selfcheck_expect e = {1000, 1000, NULL, 0};
	char why[256];

	(void)state;
	assert_int_equal(selfcheck_status(HEAD UIDS GIDS "Groups:\t\n" CAPS NNP
	    SECCOMP, &e, why, sizeof(why)), 0);
}

/* This test process is not sandboxed: the real file must fail. */
static void test_run_unsandboxed(void **state)
{
	char why[256] = "";

	(void)state;
	assert_int_equal(selfcheck_run(&expect, why, sizeof(why)), -1);
	assert_true(why[0] != '\0');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rows),
	    cmocka_unit_test(test_no_groups),
	    cmocka_unit_test(test_run_unsandboxed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
