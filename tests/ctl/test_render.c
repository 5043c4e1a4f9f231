/* Unit tests for ctl/render.c: lodgectl's screens from fixed JSON replies
 * (the shapes lodged sends, and the per-app fields it will send once the
 * workers report them), the Prometheus exposition, and that nothing from
 * a reply puts a control character on the terminal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four above first. */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"

/* Renders text (JSON) for the command line argv and returns the output
 * (malloc'ed); *rc_r gets render_reply's result. */
static char *render(const char *json, const char *cmd, const char *target,
    bool is_err, int *rc_r)
{
	char *argv[] = {"lodgectl", (char *)cmd, (char *)target, NULL};
	struct json_val *body;
	const char *err = NULL;
	char perr[256];
	size_t off, size = 0;
	struct cli c;
	char *out = NULL;
	FILE *f;

	assert_int_equal(cli_parse(target != NULL ? 3 : 2, argv, NULL, &c, perr,
	                     sizeof(perr)),
	    0);
	body = json_parse(json, strlen(json), &err, &off);
	if (body == NULL)
		fail_msg("bad test JSON: %s at %zu", err, off);
	f = open_memstream(&out, &size);
	assert_non_null(f);
	/* "now": 2026-01-01T00:01:00Z */
	*rc_r = render_reply(f, &c, body, 1767225660, is_err);
	fclose(f);
	json_free(body);
	return out;
}

static void assert_has(const char *out, const char *piece)
{
	if (strstr(out, piece) == NULL)
		fail_msg("output lacks '%s':\n%s", piece, out);
}

static void assert_no_ctl(const char *out)
{
	for (const char *p = out; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t')
			fail_msg("control character 0x%02x in output:\n%s",
			    (unsigned char)*p, out);
}

/* The shape of lodged's status reply: alice runs two workers, bob is
 * idle (3 requests wait for it in the router), carol waits out a crash
 * backoff, dave was stopped. */
#define LODGED_PART                                                            \
	"\"lodged\":{\"version\":\"0.1.0\",\"protocol\":1,\"pid\":812,"        \
	"\"uptime_s\":11100,\"config\":\"/etc/lodge/lodge.conf\","             \
	"\"stopping\":false,\"users_hosted\":4,\"workers_running\":2}"
#define WORKER(slot, state, pid, up, rss)                                      \
	"{\"slot\":" #slot ",\"state\":\"" state "\",\"pid\":" #pid            \
	",\"init_pid\":900,\"uptime_s\":" #up ",\"rss_bytes\":" #rss           \
	",\"cpu_seconds\":1.7,\"processes\":1,\"starts\":2,\"restarts\":1,"    \
	"\"failed_starts\":0,\"crashes\":1,\"spawn_seconds\":0.023,"           \
	"\"restart_in_s\":null,\"requests_served\":null,"                      \
	"\"requests_inflight\":null}"
#define IDLE(slot)                                                             \
	"{\"slot\":" #slot ",\"state\":\"idle\",\"pid\":null,"                 \
	"\"init_pid\":null,\"uptime_s\":null,\"rss_bytes\":null,"              \
	"\"cpu_seconds\":null,\"processes\":null,\"starts\":0,"                \
	"\"restarts\":0,\"failed_starts\":0,\"crashes\":0,"                    \
	"\"restart_in_s\":null}"

static const char status_json[] =
    "{" LODGED_PART ",\"router\":{\"state\":\"running\",\"pid\":820,"
    "\"uptime_s\":11090,\"rss_bytes\":3145728,\"restarts\":2,"
    "\"crashes_in_a_row\":0},\"users\":["
    "{\"name\":\"alice\",\"uid\":1001,\"state\":\"running\",\"running\":2,"
    "\"processes\":2,\"workers\":[" WORKER(
        0, "running", 1301, 312, 32505856) "," WORKER(1, "running", 1302, 45,
        1048576) "],\"restarts\":2,"
                 "\"crashes\":2,\"crashes_in_a_row\":0,\"apps\":null},"
                 "{\"name\":\"bob\",\"uid\":1002,\"state\":\"idle\","
                 "\"running\":0,\"queue_depth\":3,"
                 "\"processes\":1,\"workers\":[" IDLE(
                     0) "],\"restarts\":0,\"crashes\":0,"
                        "\"crashes_in_a_row\":0,\"apps\":null},"
                        "{\"name\":\"carol\",\"uid\":1003,\"state\":"
                        "\"backoff\",\"running\":0,"
                        "\"processes\":1,\"workers\":[{\"slot\":0,\"state\":"
                        "\"backoff\","
                        "\"pid\":null,\"restarts\":3,\"crashes\":4,\"restart_"
                        "in_s\":8}],"
                        "\"restarts\":3,\"crashes\":4,\"crashes_in_a_row\":4,"
                        "\"restart_in_s\":8,\"apps\":null},"
                        "{\"name\":\"dave\\u001b[2J\",\"uid\":1004,\"state\":"
                        "\"stopped\","
                        "\"running\":0,\"processes\":1,\"workers\":[" IDLE(
                            0) "],"
                               "\"restarts\":0,\"crashes\":0,\"crashes_in_a_"
                               "row\":0,\"apps\":null}"
                               "]}";

static void test_status_overview(void **state)
{
	int rc;
	char *out = render(status_json, "status", NULL, false, &rc);

	assert_int_equal(rc, 0);
	assert_has(out, "lodged 0.1.0 (pid 812), up 3h05m, config "
	                "/etc/lodge/lodge.conf\n");
	assert_has(out, "router: running (pid 820), up 3h04m, RSS 3.0M, 2 "
	                "restart(s)\n");
	assert_has(out, "users: 4 hosted, 1 with workers running, 1 stopped "
	                "by lodgectl; 2 worker(s) running\n");
	assert_has(out, "USER      STATE    W  PID   UPTIME  RSS    CPU    "
	                "REQS  INFL  RESTARTS  CRASHES  NOTE\n");
	/* One row per running worker; requests unknown yet: "-". */
	assert_has(out, "alice     running  0  1301  5m12s   31.0M  1.70s  "
	                "-     -     1         1\n");
	assert_has(out, "alice     running  1  1302  45s     1.0M   1.70s  "
	                "-     -     1         1\n");
	/* Requests waiting in the router for a worker of bob's. */
	assert_has(out, "bob       idle     -  -     -       -      -      "
	                "-     -     0         0        3 request(s) waiting "
	                "in the router\n");
	assert_has(out, "carol     backoff  0  -     -       -      -      "
	                "-     -     3         4        crashed 4 time(s) in "
	                "a row; next try in 8s; lodgectl logs carol\n");
	/* A name with an escape sequence is shown, defused. */
	assert_has(out, "dave?[2J  stopped");
	assert_has(out, "stopped by lodgectl: lodgectl start dave?[2J\n");
	assert_has(out, "apps: - (not reported by the workers yet");
	assert_no_ctl(out);
	free(out);
}

/* The per-app fields the workers will report: rendered when present. */
static void test_status_apps(void **state)
{
	static const char json[] =
	    "{" LODGED_PART ",\"router\":null,\"users\":[{\"name\":\"alice\","
	    "\"state\":\"running\",\"running\":1,\"workers\":[],\"apps\":["
	    "{\"name\":\"blog\",\"mode\":\"sub\",\"version\":3,"
	    "\"state\":\"ok\",\"last_reload\":{\"when\":1767225600,"
	    "\"ok\":true,\"reason\":null}},"
	    "{\"name\":\"shop\",\"mode\":\"process\",\"version\":1,"
	    "\"state\":\"ok\",\"last_reload\":{\"when\":1767225657,"
	    "\"ok\":false,\"reason\":\"SyntaxError: invalid syntax "
	    "(views.py, line 3)\"}},"
	    "{\"name\":\"new\",\"mode\":\"sub\",\"version\":1,"
	    "\"state\":\"ok\",\"last_reload\":null}]}]}";
	int rc;
	char *out = render(json, "status", NULL, false, &rc);

	assert_int_equal(rc, 0);
	assert_has(out, "router: none (no front sockets");
	assert_has(out, "USER   APP   MODE     VERSION  STATE  LAST RELOAD\n");
	assert_has(out, "alice  blog  sub      3        ok     ok 1m00s ago\n");
	assert_has(out, "alice  shop  process  1        ok     FAILED 3s ago: "
	                "SyntaxError: invalid syntax (views.py, line 3)\n");
	assert_has(out, "alice  new   sub      1        ok     -\n");
	free(out);
}

static void test_status_user(void **state)
{
	static const char json[] =
	    "{" LODGED_PART ",\"router\":null,\"users\":[{\"name\":\"alice\","
	    "\"uid\":1001,\"state\":\"running\",\"held\":false,"
	    "\"socket\":\"/run/lodge/users/alice.sock\",\"processes\":2,"
	    "\"running\":1,\"workers\":[" WORKER(0, "running", 1301, 312,
	        32505856) ",{\"slot\":1,\"state\":\"backoff\",\"pid\":null,"
	                  "\"starts\":0,\"crashes\":2,\"restart_in_s\":4}],"
	                  "\"rss_bytes\":32505856,\"cpu_seconds\":1.7,"
	                  "\"starts\":2,"
	                  "\"restarts\":1,\"failed_starts\":0,\"crashes\":3,"
	                  "\"crashes_in_a_row\":2,\"restart_in_s\":4,\"apps\":"
	                  "null,"
	                  "\"home\":\"/home/alice\",\"apps_dir\":\"/home/alice/"
	                  "apps\","
	                  "\"log_dir\":\"/home/alice/logs/lodge\",\"limits\":{"
	                  "\"processes\":2,\"threads\":4,\"memory_max\":"
	                  "1073741824,"
	                  "\"pids_max\":0,\"cpu_weight\":100,\"nofile\":1024,"
	                  "\"network\":\"loopback\",\"request_timeout\":60,"
	                  "\"idle_timeout\":0}}]}";
	int rc;
	char *out = render(json, "status", "alice", false, &rc);

	assert_int_equal(rc, 0);
	assert_has(out, "alice (uid 1001): running, 1 of 2 worker(s) "
	                "running\n");
	assert_has(out, "  socket   /run/lodge/users/alice.sock\n");
	assert_has(out, "memory_max 1.0G, pids_max max,");
	assert_has(out, "network loopback, request_timeout 60s, idle_timeout "
	                "never\n");
	assert_has(out, "  totals   RSS 31.0M, CPU 1.70s, 2 start(s), 1 "
	                "restart(s), 0 failed start(s), 3 crash(es), 2 in a "
	                "row\n");
	assert_has(out, "W  STATE    PID   INIT  UPTIME  RSS    CPU    PROCS  "
	                "REQS  INFL  STARTS  CRASHES  SPAWN  NOTE\n");
	assert_has(out, "0  running  1301  900   5m12s   31.0M  1.70s  1      "
	                "-     -     2       1        23ms\n");
	assert_has(out, "1  backoff  -     -     -       -      -      -      "
	                "-     -     0       2        -      next try in 4s\n");
	free(out);
}

static const char metrics_json[] =
    "{\"format\":\"lodge metrics 1\",\"metrics\":["
    "{\"name\":\"lodge_workers\",\"type\":\"gauge\",\"help\":\"Worker "
    "processes running.\",\"samples\":[{\"labels\":{\"user\":\"alice\"},"
    "\"value\":2},{\"labels\":{\"user\":\"b\\\"o\\\\b\\n\"},\"value\":0}]},"
    "{\"name\":\"lodge_worker_spawn_seconds\",\"type\":\"histogram\","
    "\"help\":\"Births.\",\"samples\":["
    "{\"suffix\":\"_bucket\",\"labels\":{\"le\":\"0.05\"},\"value\":1},"
    "{\"suffix\":\"_bucket\",\"labels\":{\"le\":\"+Inf\"},\"value\":2},"
    "{\"suffix\":\"_sum\",\"labels\":{},\"value\":0.125},"
    "{\"suffix\":\"_count\",\"labels\":{},\"value\":2}]}]}";

static void test_metrics(void **state)
{
	int rc;
	char *out = render(metrics_json, "metrics", NULL, false, &rc);

	assert_int_equal(rc, 0);
	assert_string_equal(out,
	    "# HELP lodge_workers Worker processes running.\n"
	    "# TYPE lodge_workers gauge\n"
	    "lodge_workers{user=\"alice\"} 2\n"
	    "lodge_workers{user=\"b\\\"o\\\\b\\n\"} 0\n"
	    "# HELP lodge_worker_spawn_seconds Births.\n"
	    "# TYPE lodge_worker_spawn_seconds histogram\n"
	    "lodge_worker_spawn_seconds_bucket{le=\"0.05\"} 1\n"
	    "lodge_worker_spawn_seconds_bucket{le=\"+Inf\"} 2\n"
	    "lodge_worker_spawn_seconds_sum 0.125\n"
	    "lodge_worker_spawn_seconds_count 2\n");
	free(out);
}

static void test_metrics_refused(void **state)
{
	/* Names that would break the exposition are not printed. */
	static const char *const bad[] = {
	    "{\"metrics\":[{\"name\":\"bad name\",\"type\":\"gauge\","
	    "\"samples\":[]}]}",
	    "{\"metrics\":[{\"name\":\"x\",\"type\":\"gauge\",\"samples\":["
	    "{\"labels\":{\"a-b\":\"v\"},\"value\":1}]}]}",
	    "{\"metrics\":[{\"name\":\"x\",\"type\":\"gauge\",\"samples\":["
	    "{\"suffix\":\" 1\\n\",\"value\":1}]}]}",
	    "{\"metrics\":[{\"name\":\"x\",\"type\":\"gauge\",\"samples\":["
	    "{\"labels\":{},\"value\":null}]}]}",
	    "{\"metrics\":{}}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc;
		char *out = render(bad[i], "metrics", NULL, false, &rc);

		assert_int_equal(rc, -1);
		free(out);
	}
}

static void test_logs(void **state)
{
	static const char json[] =
	    "{\"user\":\"alice\",\"app\":\"blog\",\"file\":\"/x.log\","
	    "\"size\":99,\"truncated\":false,\"lines\":[\"one\",\"two\\ttab\","
	    "\"evil \\u001b]0;title\\u0007 \\r end\"]}";
	int rc;
	char *out = render(json, "logs", "alice/blog", false, &rc);

	assert_int_equal(rc, 0);
	assert_string_equal(out, "one\ntwo\ttab\nevil ?]0;title? ? end\n");
	free(out);
}

static void test_config(void **state)
{
	static const char ok[] =
	    "{\"message\":\"/etc/lodge/lodge.conf is valid; lodgectl "
	    "reload-config puts it in force\",\"config\":"
	    "\"/etc/lodge/lodge.conf\",\"ok\":true,\"errors\":[],"
	    "\"warnings\":[\"/etc/lodge/lodge.conf:3: users: no user 'zed' on "
	    "this system; not hosted\"],\"users\":[{\"name\":\"alice\","
	    "\"uid\":1001,\"processes\":2,\"threads\":4}]}";
	static const char bad[] =
	    "{\"error\":{\"kind\":\"failed\",\"message\":\"has errors\"},"
	    "\"config\":\"/etc/lodge/lodge.conf\",\"ok\":false,\"errors\":["
	    "\"/etc/lodge/lodge.conf:2: threads: expected a number\"],"
	    "\"warnings\":[],\"users\":[]}";
	int rc;
	char *out = render(ok, "check-config", NULL, false, &rc);

	assert_int_equal(rc, 0);
	assert_string_equal(out,
	    "/etc/lodge/lodge.conf: hosts alice (uid 1001, 2 process(es), 4 "
	    "thread(s))\n"
	    "warning: /etc/lodge/lodge.conf:3: users: no user 'zed' on this "
	    "system; not hosted\n"
	    "/etc/lodge/lodge.conf is valid; lodgectl reload-config puts it "
	    "in force\n");
	free(out);
	out = render(bad, "reload-config", NULL, true, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(
	    out, "/etc/lodge/lodge.conf:2: threads: expected a number\n");
	free(out);
}

static void test_messages(void **state)
{
	int rc;
	char *out = render(
	    "{\"message\":\"alice is stopped\"}", "stop", "alice", false, &rc);

	assert_int_equal(rc, 0);
	assert_string_equal(out, "alice is stopped\n");
	free(out);
	/* A reply without what the screen needs is an error. */
	out = render("{\"nothing\":1}", "stop", "alice", false, &rc);
	assert_int_equal(rc, -1);
	free(out);
	out = render("{\"nothing\":1}", "status", NULL, false, &rc);
	assert_int_equal(rc, -1);
	free(out);
	out = render("[]", "status", NULL, false, &rc);
	assert_int_equal(rc, -1);
	free(out);
}

static const struct {
	double v;
	const char *want;
} bytes_rows[] = {
    {0, "0"},
    {1023, "1023"},
    {1024, "1.0K"},
    {1536, "1.5K"},
    {32505856, "31.0M"},
    {1073741824, "1.0G"},
    {1.5 * 1099511627776.0, "1.5T"},
};

static const struct {
	double s;
	const char *want;
} dur_rows[] = {
    {0, "0s"},
    {59.9, "59s"},
    {60, "1m00s"},
    {312, "5m12s"},
    {3600, "1h00m"},
    {11100, "3h05m"},
    {86400 * 2 + 3 * 3600 + 59, "2d03h"},
    {-5, "0s"},
};

static void test_units(void **state)
{
	char buf[32];

	for (size_t i = 0; i < sizeof(bytes_rows) / sizeof(bytes_rows[0]);
	     i++) {
		render_bytes(buf, sizeof(buf), bytes_rows[i].v);
		assert_string_equal(buf, bytes_rows[i].want);
	}
	for (size_t i = 0; i < sizeof(dur_rows) / sizeof(dur_rows[0]); i++) {
		render_duration(buf, sizeof(buf), dur_rows[i].s);
		assert_string_equal(buf, dur_rows[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_status_overview),
	    cmocka_unit_test(test_status_apps),
	    cmocka_unit_test(test_status_user),
	    cmocka_unit_test(test_metrics),
	    cmocka_unit_test(test_metrics_refused),
	    cmocka_unit_test(test_logs),
	    cmocka_unit_test(test_config),
	    cmocka_unit_test(test_messages),
	    cmocka_unit_test(test_units),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
