/* Unit tests for ctl/cli.c: lodgectl's command lines, good and bad, and
 * the exit status of each kind of reply. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four above first. */
#include <cmocka.h>

#include <string.h>

#include "cli.h"

#define MAX_ARGV 10

static const struct {
	const char *argv[MAX_ARGV]; /* after "lodgectl", NULL-terminated */
	const char *env;
	int ok;
	enum cli_cmd cmd;
	const char *word;
	int nargs;
	const char *arg0;
	const char *arg1;
	bool is_json;
	const char *socket;
	unsigned timeout;
	const char *err; /* a piece of the error */
} rows[] = {
    {{NULL}, NULL, 1, CLI_STATUS, "status", 0, NULL, NULL, false,
        CTLPROTO_DEFAULT_SOCKET, CLI_TIMEOUT_DEFAULT, NULL},
    {{"status"}, NULL, 1, CLI_STATUS, "status", 0, NULL, NULL, false, NULL, 0,
        NULL},
    {{"status", "alice"}, NULL, 1, CLI_STATUS, "status", 1, "alice", NULL,
        false, NULL, 0, NULL},
    {{"--json", "status", "alice"}, NULL, 1, CLI_STATUS, "status", 1, "alice",
        NULL, true, NULL, 0, NULL},
    {{"status", "--json"}, NULL, 1, CLI_STATUS, "status", 0, NULL, NULL, true,
        NULL, 0, NULL},
    {{"status"}, "/tmp/env.sock", 1, CLI_STATUS, "status", 0, NULL, NULL, false,
        "/tmp/env.sock", 0, NULL},
    {{"status"}, "", 1, CLI_STATUS, "status", 0, NULL, NULL, false,
        CTLPROTO_DEFAULT_SOCKET, 0, NULL},
    {{"--socket", "/x.sock", "status"}, "/tmp/env.sock", 1, CLI_STATUS,
        "status", 0, NULL, NULL, false, "/x.sock", 0, NULL},
    {{"--socket=/y.sock", "status"}, NULL, 1, CLI_STATUS, "status", 0, NULL,
        NULL, false, "/y.sock", 0, NULL},
    {{"--timeout", "5", "metrics"}, NULL, 1, CLI_METRICS, "metrics", 0, NULL,
        NULL, false, NULL, 5, NULL},
    {{"reload", "alice/blog"}, NULL, 1, CLI_RELOAD, "reload", 1, "alice/blog",
        NULL, false, NULL, 0, NULL},
    {{"reload", "alice"}, NULL, 1, CLI_RELOAD, "reload", 1, "alice", NULL,
        false, NULL, 0, NULL},
    {{"restart", "alice"}, NULL, 1, CLI_RESTART, "restart", 1, "alice", NULL,
        false, NULL, 0, NULL},
    {{"stop", "alice"}, NULL, 1, CLI_STOP, "stop", 1, "alice", NULL, false,
        NULL, 0, NULL},
    {{"start", "alice"}, NULL, 1, CLI_START, "start", 1, "alice", NULL, false,
        NULL, 0, NULL},
    {{"check-config"}, NULL, 1, CLI_CHECK_CONFIG, "check-config", 0, NULL, NULL,
        false, NULL, 0, NULL},
    {{"reload-config"}, NULL, 1, CLI_RELOAD_CONFIG, "reload-config", 0, NULL,
        NULL, false, NULL, 0, NULL},
    {{"logs", "alice"}, NULL, 1, CLI_LOGS, "logs", 1, "alice", NULL, false,
        NULL, 0, NULL},
    {{"logs", "alice/blog", "-n", "20"}, NULL, 1, CLI_LOGS, "logs", 2,
        "alice/blog", "20", false, NULL, 0, NULL},
    {{"logs", "--lines=5", "alice"}, NULL, 1, CLI_LOGS, "logs", 2, "alice", "5",
        false, NULL, 0, NULL},
    {{"metrics"}, NULL, 1, CLI_METRICS, "metrics", 0, NULL, NULL, false, NULL,
        0, NULL},
    {{"version"}, NULL, 1, CLI_VERSION, "version", 0, NULL, NULL, false, NULL,
        0, NULL},
    {{"help"}, NULL, 1, CLI_HELP, "help", 0, NULL, NULL, false, NULL, 0, NULL},
    {{"stop", "-h"}, NULL, 1, CLI_HELP, "help", 0, NULL, NULL, false, NULL, 0,
        NULL},
    {{"--", "status"}, NULL, 1, CLI_STATUS, "status", 0, NULL, NULL, false,
        NULL, 0, NULL},
    /* Wrong. */
    {{"frobnicate"}, NULL, 0, 0, NULL, 0, NULL, NULL, false, NULL, 0,
        "unknown command 'frobnicate'"},
    {{"--frob"}, NULL, 0, 0, NULL, 0, NULL, NULL, false, NULL, 0,
        "unknown option '--frob'"},
    {{"stop"}, NULL, 0, 0, NULL, 0, NULL, NULL, false, NULL, 0,
        "missing argument; write lodgectl stop USER"},
    {{"stop", "a", "b"}, NULL, 0, 0, NULL, 0, NULL, NULL, false, NULL, 0,
        "too many arguments"},
    {{"stop", "alice/blog"}, NULL, 0, 0, NULL, 0, NULL, NULL, false, NULL, 0,
        "an app is not allowed here"},
    {{"restart", "alice/blog"}, NULL, 0, 0, NULL, 0, NULL, NULL, false, NULL, 0,
        "lodgectl restart USER"},
    {{"status", "alice/blog"}, NULL, 0, 0, NULL, 0, NULL, NULL, false, NULL, 0,
        "an app is not allowed here"},
    {{"status", "al ice"}, NULL, 0, 0, NULL, 0, NULL, NULL, false, NULL, 0,
        "not a user name"},
    {{"logs", "alice/.ssh"}, NULL, 0, 0, NULL, 0, NULL, NULL, false, NULL, 0,
        "not an app name"},
    {{"logs", "alice/../bob"}, NULL, 0, 0, NULL, 0, NULL, NULL, false, NULL, 0,
        "not an app name"},
    {{"check-config", "x"}, NULL, 0, 0, NULL, 0, NULL, NULL, false, NULL, 0,
        "too many arguments"},
    {{"status", "-n", "5"}, NULL, 0, 0, NULL, 0, NULL, NULL, false, NULL, 0,
        "for the logs command only"},
    {{"logs", "alice", "-n", "0"}, NULL, 0, 0, NULL, 0, NULL, NULL, false, NULL,
        0, "from 1 to 10000"},
    {{"logs", "alice", "-n", "10001"}, NULL, 0, 0, NULL, 0, NULL, NULL, false,
        NULL, 0, "from 1 to 10000"},
    {{"logs", "alice", "-n"}, NULL, 0, 0, NULL, 0, NULL, NULL, false, NULL, 0,
        "-n needs a number"},
    {{"--timeout", "0", "status"}, NULL, 0, 0, NULL, 0, NULL, NULL, false, NULL,
        0, "--timeout needs"},
    {{"--timeout", "x", "status"}, NULL, 0, 0, NULL, 0, NULL, NULL, false, NULL,
        0, "--timeout needs"},
    {{"status", "--socket"}, NULL, 0, 0, NULL, 0, NULL, NULL, false, NULL, 0,
        "--socket needs a path"},
    {{"--socket="}, NULL, 0, 0, NULL, 0, NULL, NULL, false, NULL, 0,
        "--socket needs a path"},
};

static void test_parse_rows(void **state)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *argv[MAX_ARGV + 1] = {"lodgectl"};
		int argc = 1;
		struct cli c;
		char err[512] = "";
		int rc;

		for (int k = 0; rows[i].argv[k] != NULL; k++)
			argv[argc++] = (char *)rows[i].argv[k];
		rc = cli_parse(argc, argv, rows[i].env, &c, err, sizeof(err));
		if (!rows[i].ok) {
			if (rc != -1)
				fail_msg("row %zu accepted", i);
			if (strstr(err, rows[i].err) == NULL)
				fail_msg("row %zu: '%s' lacks '%s'", i, err,
				    rows[i].err);
			continue;
		}
		if (rc != 0)
			fail_msg("row %zu refused: %s", i, err);
		assert_int_equal(c.cmd, rows[i].cmd);
		assert_string_equal(c.word, rows[i].word);
		if (c.cmd == CLI_HELP)
			continue;
		assert_int_equal(c.nargs, rows[i].nargs);
		if (rows[i].arg0 != NULL)
			assert_string_equal(c.args[0], rows[i].arg0);
		if (rows[i].arg1 != NULL)
			assert_string_equal(c.args[1], rows[i].arg1);
		assert_int_equal(c.is_json, rows[i].is_json);
		if (rows[i].socket != NULL)
			assert_string_equal(c.socket, rows[i].socket);
		if (rows[i].timeout != 0)
			assert_int_equal(c.timeout_s, rows[i].timeout);
	}
}

static void test_version_flag(void **state)
{
	char *argv[] = {"lodgectl", "--version"};
	struct cli c;
	char err[128];

	assert_int_equal(cli_parse(2, argv, NULL, &c, err, sizeof(err)), 0);
	assert_true(c.is_version_flag);
}

static void test_exit_codes(void **state)
{
	assert_int_equal(cli_exit_for(CTLPROTO_OK), 0);
	assert_int_equal(cli_exit_for(CTLPROTO_ERR_FAILED), 1);
	assert_int_equal(cli_exit_for(CTLPROTO_ERR_NOTYET), 1);
	assert_int_equal(cli_exit_for(CTLPROTO_ERR_BUSY), 1);
	assert_int_equal(cli_exit_for(CTLPROTO_ERR_USAGE), 2);
	assert_int_equal(cli_exit_for(CTLPROTO_ERR_DENIED), 4);
	assert_int_equal(cli_exit_for(CTLPROTO_ERR_NOUSER), 5);
	assert_int_equal(cli_exit_for(CTLPROTO_ERR_NOFILE), 5);
	assert_int_equal(cli_exit_for(CTLPROTO_ERR_VERSION), 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_rows),
	    cmocka_unit_test(test_version_flag),
	    cmocka_unit_test(test_exit_codes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
