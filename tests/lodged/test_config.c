/*
 * test_config.c: table-driven tests of src/lodged/config.c, lodged's
 * lodge.conf.  Parse rows: a text and either the value one setting must
 * take, or every error it must produce (exact text, line included).
 * Resolve rows use real accounts every Debian system has (root, daemon,
 * nobody) and groups (daemon, www-data); they need no privileges.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

#define F "t.conf"

static void print_msgs(const char *what, const struct conf_msgs *m)
{
	for (size_t i = 0; i < m->n; i++)
		fprintf(stderr, "  %s: %s\n", what, m->msgs[i]);
}

/* ---------------------------------------------------------------------- */
/* Valid settings: the value each must yield. */

/* Fifty characters, for paths that are too long. */
#define A50 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

struct ok_row {
	const char *text;
	const char *field; /* what to check */
	uint64_t num;
	const char *str;
};

static const struct ok_row ok_rows[] = {
    {"", "min_uid", 1000, NULL},
    {"", "apps_dir", 0, "apps"},
    {"", "log_dir", 0, "logs/lodge"},
    {"", "socket_dir", 0, "/run/lodge/users"},
    {"", "socket_group", 0, "www-data"},
    {"", "control_group", 0, NULL},
    {"", "control_socket", 0, "/run/lodge/control.sock"},
    {"", "policy", 0, "/etc/lodge/policy/default.policy"},
    {"", "worker", 0, "/usr/sbin/lodge-worker"},
    {"", "seccomp", CONF_SECCOMP_ENFORCE, NULL},
    {"", "scheduling", CONF_SCHED_BATCH, NULL},
    {"", "network", CONF_NET_HOST, NULL},
    {"", "processes", 1, NULL},
    {"", "threads", 4, NULL},
    {"", "memory_max", 1ULL << 30, NULL},
    {"", "pids_max", 512, NULL},
    {"", "cpu_weight", 100, NULL},
    {"", "nofile", 1024, NULL},
    {"", "request_timeout", 60, NULL},
    {"", "idle_timeout", 600, NULL},
    {"", "nentries", 0, NULL},
    {"[lodge]\nmin_uid = 500\n", "min_uid", 500, NULL},
    {"[lodge]\napps_dir = www/apps\n", "apps_dir", 0, "www/apps"},
    {"[lodge]\nlog_dir = .lodge/logs\n", "log_dir", 0, ".lodge/logs"},
    {"[lodge]\nsocket_dir = /run/x\n", "socket_dir", 0, "/run/x"},
    {"[lodge]\nsocket_group = nginx\n", "socket_group", 0, "nginx"},
    {"[lodge]\ncontrol_group = lodgeadm\n", "control_group", 0, "lodgeadm"},
    {"[lodge]\ncontrol_group =\n", "control_group", 0, NULL},
    {"[lodge]\ncontrol_socket = /run/x.sock\n", "control_socket", 0,
        "/run/x.sock"},
    {"[lodge]\npolicy = /etc/p.policy\n", "policy", 0, "/etc/p.policy"},
    {"[lodge]\nworker = /opt/lw\n", "worker", 0, "/opt/lw"},
    {"[lodge]\nseccomp = log\n", "seccomp", CONF_SECCOMP_LOG, NULL},
    {"[lodge]\nscheduling = normal\n", "scheduling", CONF_SCHED_NORMAL, NULL},
    {"[lodge]\nscheduling = batch\n", "scheduling", CONF_SCHED_BATCH, NULL},
    {"[lodge]\nseccomp = kill\n", "seccomp", CONF_SECCOMP_KILL, NULL},
    {"[lodge]\nseccomp = enforce ; default\n", "seccomp", CONF_SECCOMP_ENFORCE,
        NULL},
    {"[lodge]\nnetwork = loopback\n", "network", CONF_NET_LOOPBACK, NULL},
    {"[lodge]\nprocesses = 64\n", "processes", 64, NULL},
    {"[lodge]\nthreads = 1\n", "threads", 1, NULL},
    {"[lodge]\nmemory_max = 512M\n", "memory_max", 512ULL << 20, NULL},
    {"[lodge]\nmemory_max = max\n", "memory_max", 0, NULL},
    {"[lodge]\npids_max = max\n", "pids_max", 0, NULL},
    {"[lodge]\npids_max = 100\n", "pids_max", 100, NULL},
    {"[lodge]\ncpu_weight = 10000\n", "cpu_weight", 10000, NULL},
    {"[lodge]\nnofile = 4096\n", "nofile", 4096, NULL},
    {"[lodge]\nrequest_timeout = 5\n", "request_timeout", 5, NULL},
    {"[lodge]\nidle_timeout = 0\n", "idle_timeout", 0, NULL},
    {"# comment\n; comment\n\n[lodge]\nusers: alice\n", "nentries", 1, NULL},
    {"[lodge]\nusers = alice, bob @web\n", "nentries", 3, NULL},
    {"[lodge]\nusers = alice,bob,,@web,\n", "nentries", 3, NULL},
    {"[lodge]\nusers = alice\n  bob carol\n\t@web\n", "nentries", 4, NULL},
    {"\xEF\xBB\xBF[lodge]\nthreads = 8\n", "threads", 8, NULL},
    {"[lodge]\r\nthreads = 9\r\n", "threads", 9, NULL},
    {"[lodge]\nthreads = 2\n[lodge]\nprocesses = 3\n", "threads", 2, NULL},
    {"", "nfronts", 0, NULL},
    {"", "route", CONF_ROUTE_HEADER, NULL},
    {"", "queue_max", 64, NULL},
    {"", "queue_timeout", 30, NULL},
    {"", "inflight_max", 64, NULL},
    {"", "front_group", 0, "www-data"},
    {"", "host_map", 0, "/etc/lodge/hosts.map"},
    {"", "router", 0, "/usr/sbin/lodge-router"},
    {"", "router_policy", 0, "/etc/lodge/policy/router.policy"},
    {"", "router_user", 0, "lodge"},
    {"[lodge]\nfront = http:unix:/run/h.sock, uwsgi:tcp:127.0.0.1:9\n",
        "nfronts", 2, NULL},
    {"[lodge]\nfront = http:unix:/run/h.sock uwsgi:tcp:127.0.0.1:9\n",
        "front1", 0, "uwsgi:tcp:127.0.0.1:9"},
    {"[lodge]\nfront = uwsgi:tcp:127.0.0.1:9\n", "front0_kind",
        CONF_FRONT_UWSGI, NULL},
    {"[lodge]\nfront = http:tcp:127.0.0.1:9\n", "front0_trusted", 0, NULL},
    {"[lodge]\nfront_trusted = http:tcp:127.0.0.1:9\n"
     "front = http:tcp:127.0.0.1:9\n",
        "front0_trusted", 1, NULL},
    {"[lodge]\nroute = host\n", "route", CONF_ROUTE_HOST, NULL},
    {"[lodge]\nroute = var\n", "route", CONF_ROUTE_VAR, NULL},
    {"[lodge]\nqueue_max = 5\n", "queue_max", 5, NULL},
    {"[lodge]\nqueue_timeout = 2\n", "queue_timeout", 2, NULL},
    {"[lodge]\ninflight_max = 3\n", "inflight_max", 3, NULL},
    {"[lodge]\nfront_group = apache\n", "front_group", 0, "apache"},
    {"[lodge]\nhost_map = /etc/h\n", "host_map", 0, "/etc/h"},
    {"[lodge]\nrouter = /opt/r\n", "router", 0, "/opt/r"},
    {"[lodge]\nrouter_policy = /etc/r.policy\n", "router_policy", 0,
        "/etc/r.policy"},
    {"[lodge]\nrouter_user = lodge2\n", "router_user", 0, "lodge2"},
};

static uint64_t num_field(const struct conf *c, const char *f)
{
	const struct conf_limits *l = &c->limits;

	if (strcmp(f, "min_uid") == 0)
		return c->min_uid;
	if (strcmp(f, "seccomp") == 0)
		return c->seccomp;
	if (strcmp(f, "scheduling") == 0)
		return c->scheduling;
	if (strcmp(f, "network") == 0)
		return l->network;
	if (strcmp(f, "processes") == 0)
		return l->processes;
	if (strcmp(f, "threads") == 0)
		return l->threads;
	if (strcmp(f, "memory_max") == 0)
		return l->memory_max;
	if (strcmp(f, "pids_max") == 0)
		return l->pids_max;
	if (strcmp(f, "cpu_weight") == 0)
		return l->cpu_weight;
	if (strcmp(f, "nofile") == 0)
		return l->nofile;
	if (strcmp(f, "request_timeout") == 0)
		return l->request_timeout;
	if (strcmp(f, "idle_timeout") == 0)
		return l->idle_timeout;
	if (strcmp(f, "nentries") == 0)
		return c->nentries;
	if (strcmp(f, "nfronts") == 0)
		return c->nfronts;
	if (strcmp(f, "route") == 0)
		return c->route;
	if (strcmp(f, "queue_max") == 0)
		return c->queue_max;
	if (strcmp(f, "queue_timeout") == 0)
		return c->queue_timeout;
	if (strcmp(f, "inflight_max") == 0)
		return c->inflight_max;
	if (strcmp(f, "front0_kind") == 0)
		return c->fronts[0].kind;
	if (strcmp(f, "front0_trusted") == 0)
		return c->fronts[0].is_trusted;
	fail_msg("unknown field %s", f);
	return 0;
}

static const char *str_field(const struct conf *c, const char *f)
{
	if (strcmp(f, "apps_dir") == 0)
		return c->apps_dir;
	if (strcmp(f, "log_dir") == 0)
		return c->log_dir;
	if (strcmp(f, "socket_dir") == 0)
		return c->socket_dir;
	if (strcmp(f, "socket_group") == 0)
		return c->socket_group;
	if (strcmp(f, "control_group") == 0)
		return c->control_group;
	if (strcmp(f, "control_socket") == 0)
		return c->control_socket;
	if (strcmp(f, "policy") == 0)
		return c->policy;
	if (strcmp(f, "worker") == 0)
		return c->worker;
	if (strcmp(f, "front_group") == 0)
		return c->front_group;
	if (strcmp(f, "host_map") == 0)
		return c->host_map;
	if (strcmp(f, "router") == 0)
		return c->router;
	if (strcmp(f, "router_policy") == 0)
		return c->router_policy;
	if (strcmp(f, "router_user") == 0)
		return c->router_user;
	if (strcmp(f, "front1") == 0)
		return c->nfronts > 1 ? c->fronts[1].spec : NULL;
	return (const char *)-1;
}

static void test_ok_rows(void **state)
{
	for (size_t i = 0; i < sizeof(ok_rows) / sizeof(ok_rows[0]); i++) {
		const struct ok_row *r = &ok_rows[i];
		struct conf_msgs errs = {0};
		struct conf c;
		const char *s;

		if (conf_parse(F, r->text, &c, &errs) != 0) {
			print_msgs("unexpected", &errs);
			fail_msg("row %zu: '%s' did not parse", i, r->text);
		}
		assert_int_equal(errs.n, 0);
		s = str_field(&c, r->field);
		if (s == (const char *)-1) {
			if (num_field(&c, r->field) != r->num)
				fail_msg("row %zu: %s = %llu, expected %llu", i,
				    r->field,
				    (unsigned long long)num_field(&c, r->field),
				    (unsigned long long)r->num);
		} else if (r->str == NULL) {
			assert_null(s);
		} else {
			assert_non_null(s);
			assert_string_equal(s, r->str);
		}
		conf_free(&c);
		conf_msgs_free(&errs);
	}
}

static void test_users_entries(void **state)
{
	struct conf_msgs errs = {0};
	struct conf c;

	assert_int_equal(
	    conf_parse(F, "[lodge]\nusers = alice @web\n  bob\n", &c, &errs),
	    0);
	assert_int_equal(c.nentries, 3);
	assert_string_equal(c.entries[0].name, "alice");
	assert_false(c.entries[0].is_group);
	assert_int_equal(c.entries[0].line, 2);
	assert_string_equal(c.entries[1].name, "web");
	assert_true(c.entries[1].is_group);
	assert_string_equal(c.entries[2].name, "bob");
	assert_int_equal(c.entries[2].line, 3);
	conf_free(&c);
}

/* ---------------------------------------------------------------------- */
/* Errors: every one, with its line, in order. */

#define MAXERR 4
struct err_row {
	const char *text;
	const char *errs[MAXERR];
};

#define NUM_ERR(line, key, range, got, ex)                                     \
	F ":" #line ": " key ": expected a number from " range ", got '" got   \
	  "'; write e.g. '" key " = " ex "'"

static const struct err_row err_rows[] = {
    {"[lodge]\nusers = al!ce\n",
        {F ":2: users: 'al!ce' is not a user name; write names and @groups "
           "separated by spaces or commas, like 'users = alice bob "
           "@webusers'"}},
    {"[lodge]\nusers = ok @-bad\n",
        {F ":2: users: '@-bad' is not a group name; write names and "
           "@groups separated by spaces or commas, like 'users = alice bob "
           "@webusers'"}},
    {"[lodge]\nusers = 1234\n",
        {F ":2: users: '1234' is not a user name; write names and @groups "
           "separated by spaces or commas, like 'users = alice bob "
           "@webusers'"}},
    {"[lodge]\nmin_uid = 0\n",
        {F ":2: min_uid: expected a uid from 1 to 65533, got '0'; write "
           "e.g. 'min_uid = 1000' (uid 0 is never hosted)"}},
    {"[lodge]\nmin_uid = -5\n",
        {F ":2: min_uid: expected a uid from 1 to 65533, got '-5'; write "
           "e.g. 'min_uid = 1000' (uid 0 is never hosted)"}},
    {"[lodge]\napps_dir = /srv/apps\n",
        {F ":2: apps_dir: expected a path relative to each user's home, "
           "without '..', got '/srv/apps'; write e.g. 'apps_dir = apps'"}},
    {"[lodge]\nlog_dir = ../x\n",
        {F ":2: log_dir: expected a path relative to each user's home, "
           "without '..', got '../x'; write e.g. 'log_dir = logs/lodge'"}},
    {"[lodge]\nlog_dir =\n",
        {F ":2: log_dir: expected a path relative to each user's home, "
           "without '..', got ''; write e.g. 'log_dir = logs/lodge'"}},
    {"[lodge]\nsocket_dir = run/lodge\n",
        {F ":2: socket_dir: expected an absolute path without '..', got "
           "'run/lodge'; write e.g. 'socket_dir = /run/lodge/users'"}},
    {"[lodge]\nsocket_dir = "
     "/run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaa\n",
        {F ":2: socket_dir: '/run/"
           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
           "aaaa' is too long for Unix socket paths (at most 69 characters, "
           "so that DIR/USER.sock fits); write a shorter path like "
           "'/run/lodge/users'"}},
    {"[lodge]\ncontrol_socket = control.sock\n",
        {F ":2: control_socket: expected an absolute path without '..', "
           "got 'control.sock'; write e.g. 'control_socket = "
           "/run/lodge/control.sock'"}},
    {"[lodge]\ncontrol_socket = /run/" A50 A50 "\n",
        {F ":2: control_socket: '/run/" A50 A50 "' is too long for a Unix "
           "socket path (at most 103 characters); write a shorter path "
           "like '/run/lodge/control.sock'"}},
    {"[lodge]\npolicy = /etc/../p\n",
        {F ":2: policy: expected an absolute path without '..', got "
           "'/etc/../p'; write e.g. 'policy = "
           "/etc/lodge/policy/default.policy'"}},
    {"[lodge]\nworker = lodge-worker\n",
        {F ":2: worker: expected an absolute path without '..', got "
           "'lodge-worker'; write e.g. 'worker = /usr/sbin/lodge-worker'"}},
    {"[lodge]\nsocket_group = www data\n",
        {F ":2: socket_group: 'www data' is not a group name; write e.g. "
           "'socket_group = www-data'"}},
    {"[lodge]\ncontrol_group = a/b\n",
        {F ":2: control_group: 'a/b' is not a group name; write e.g. "
           "'control_group = lodgeadm' (or leave it empty: root only)"}},
    {"[lodge]\nscheduling = fifo\n",
        {F ":2: scheduling: expected 'batch' (SCHED_BATCH) or 'normal' "
           "(SCHED_OTHER), got 'fifo'; write 'scheduling = batch' (the "
           "default)"}},
    {"[lodge]\nseccomp = off\n",
        {F ":2: seccomp: expected 'enforce', 'log' or 'kill', got 'off'; "
           "write 'seccomp = enforce'"}},
    {"[lodge]\nnetwork = none\n",
        {F ":2: network: expected 'host' or 'loopback', got 'none'; write "
           "'network = loopback' to give the worker its own loopback "
           "only"}},
    {"[lodge]\nprocesses = 0\n",
        {NUM_ERR(2, "processes", "1 to 64", "0", "1")}},
    {"[lodge]\nprocesses = 65\n",
        {NUM_ERR(2, "processes", "1 to 64", "65", "1")}},
    {"[lodge]\nthreads = many\n",
        {NUM_ERR(2, "threads", "1 to 256", "many", "4")}},
    {"[lodge]\nthreads = 4K\n", {NUM_ERR(2, "threads", "1 to 256", "4K", "4")}},
    {"[lodge]\nmemory_max = 1M\n",
        {F ":2: memory_max: expected a size from 16M to 1048576G (K, M, G "
           "suffixes) or 'max', got '1M'; write e.g. 'memory_max = 1G'"}},
    {"[lodge]\nmemory_max = lots\n",
        {F ":2: memory_max: expected a size from 16M to 1048576G (K, M, G "
           "suffixes) or 'max', got 'lots'; write e.g. 'memory_max = 1G'"}},
    {"[lodge]\npids_max = 2\n",
        {NUM_ERR(2, "pids_max", "8 to 4194304 or 'max'", "2", "512")}},
    {"[lodge]\ncpu_weight = 0\n",
        {NUM_ERR(2, "cpu_weight", "1 to 10000", "0", "100")}},
    {"[lodge]\nnofile = 10\n",
        {NUM_ERR(2, "nofile", "64 to 1048576", "10", "1024")}},
    {"[lodge]\nrequest_timeout = 0\n",
        {NUM_ERR(2, "request_timeout", "1 to 3600", "0", "60")}},
    {"[lodge]\nidle_timeout = 1d\n",
        {NUM_ERR(2, "idle_timeout", "0 to 86400", "1d", "600")}},
    /* Structure. */
    {"threads = 4\n",
        {F ":1: threads: setting outside any section; put it under [lodge] "
           "(or [user NAME] for one user's limits)"}},
    {"[lodge]\ncolour = blue\n",
        {F ":2: colour: unknown setting in [lodge]; the known ones are "
           "users, min_uid, apps_dir, log_dir, socket_dir, socket_group, "
           "control_group, control_socket, policy, seccomp, scheduling, "
           "network, worker, processes, "
           "threads, memory_max, pids_max, cpu_weight, nofile, "
           "request_timeout, idle_timeout, front, front_group, "
           "front_trusted, route, host_map, router, router_policy, "
           "router_user, queue_max, queue_timeout, inflight_max"}},
    {"[lodge]\nfront = ftp:unix:/x\n",
        {F ":2: front: 'ftp:unix:/x' does not start with http: or uwsgi:; "
           "write e.g. 'http:unix:/run/lodge/http.sock' or "
           "'uwsgi:tcp:127.0.0.1:8091'"}},
    {"[lodge]\nfront = http:unix:rel.sock\n",
        {F ":2: front: 'http:unix:rel.sock': unix: needs an absolute path; "
           "write unix:/ABSOLUTE/PATH or tcp:HOST:PORT after the protocol"}},
    {"[lodge]\nfront = http:unix:/run/../x\n",
        {F ":2: front: 'http:unix:/run/../x': a Unix front socket needs an "
           "absolute path without '..', like unix:/run/lodge/http.sock"}},
    {"[lodge]\nfront = http:unix:/a, http:unix:/a\n",
        {F ":2: front: 'http:unix:/a' is listed twice"}},
    {"[lodge]\nfront = http:unix:/a\nfront_trusted = http:unix:/b\n",
        {F ":3: front_trusted: 'http:unix:/b' is not one of the front "
           "listeners; copy it exactly from 'front ='"}},
    {"[lodge]\nroute = path\n",
        {F ":2: route: expected 'header' (X-Lodge-App), 'host' (host_map) "
           "or 'var' (the uwsgi var LODGE_APP), got 'path'"}},
    {"[lodge]\nqueue_max = 0\nqueue_timeout = 9999\n",
        {F ":2: queue_max: expected a number from 1 to 100000, got '0'; "
           "write e.g. 'queue_max = 64'",
            F ":3: queue_timeout: expected a number from 1 to 3600, got "
              "'9999'; write e.g. 'queue_timeout = 30'"}},
    {"[lodge]\nrouter_user = r00t!\nhost_map = maps\n",
        {F ":2: router_user: 'r00t!' is not a user name; write "
           "'router_user = lodge' (a system user of its own: adduser "
           "--system --group lodge)",
            F ":3: host_map: expected an absolute path without '..', got "
              "'maps'; write e.g. 'host_map = /etc/lodge/hosts.map'"}},
    {"[lodge]\nfront = http:tcp:127.0.0.1:99999\n",
        {F ":2: front: 'http:tcp:127.0.0.1:99999': port must be a number "
           "from 1 to 65535; write unix:/ABSOLUTE/PATH or tcp:HOST:PORT "
           "after the protocol"}},
    {"[server]\nthreads = 4\n[lodge]\n",
        {F ":1: [server]: unknown section; write [lodge] for the settings "
           "and [user NAME] for one user's limits"}},
    {"[user]\n",
        {F ":1: [user]: unknown section; write [lodge] for the settings and "
           "[user NAME] for one user's limits"}},
    {"[user a:b]\n",
        {F ":1: [user a:b]: 'a:b' is not a user name; write [user NAME] "
           "with the account's login name, like [user alice]"}},
    {"[user alice]\nthreads = 2\n[user alice]\nthreads = 3\n",
        {F ":3: [user alice]: second section for user 'alice' (the first is "
           "on line 1); merge them into one"}},
    {"[user alice]\napps_dir = x\n",
        {F ":2: apps_dir: cannot be set in [user alice]; a user's section "
           "sets only processes, threads, memory_max, pids_max, "
           "cpu_weight, nofile, network, request_timeout, idle_timeout "
           "(set it in [lodge])"}},
    {"[user alice]\nfoo = x\n",
        {F ":2: foo: unknown setting in [user alice]; a user's section sets "
           "only processes, threads, memory_max, pids_max, cpu_weight, "
           "nofile, network, request_timeout, idle_timeout"}},
    {"[user alice]\nthreads = 0\n",
        {NUM_ERR(2, "threads", "1 to 256", "0", "4")}},
    {"[lodge]\nthreads = 2\nthreads = 3\n",
        {F ":3: threads: set twice (first on line 2); keep only one of "
           "them"}},
    {"[lodge]\nthreads = 2\n[lodge]\nthreads = 3\n",
        {F ":4: threads: set twice (first on line 2); keep only one of "
           "them"}},
    {"[lodge]\nthreads = 2\n  more\n",
        {F ":3: threads: indented line is read as more of the value of "
           "'threads' (only 'users' may span lines); remove the "
           "indentation"}},
    {"[lodge]\njust words\n",
        {F ":2: 'just words': not a setting; write KEY = VALUE, [lodge] or "
           "[user NAME] (comments start with ';' or '#')"}},
    {"[lodge\n",
        {F ":1: '[lodge': not a setting; write KEY = VALUE, [lodge] or "
           "[user NAME] (comments start with ';' or '#')"}},
    /* Every error is collected, each with its own line. */
    {"[lodge]\nthreads = x\nseccomp = no\nbogus\n[user bob]\nnetwork = "
     "wifi\n",
        {NUM_ERR(2, "threads", "1 to 256", "x", "4"),
            F ":3: seccomp: expected 'enforce', 'log' or 'kill', got 'no'; "
              "write 'seccomp = enforce'",
            F ":4: 'bogus': not a setting; write KEY = VALUE, [lodge] or "
              "[user NAME] (comments start with ';' or '#')",
            F ":6: network: expected 'host' or 'loopback', got 'wifi'; "
              "write 'network = loopback' to give the worker its own "
              "loopback only"}},
    {"[nope]\nx = 1\n[lodge]\nprocesses = 99\nmin_uid = 0\n",
        {F ":1: [nope]: unknown section; write [lodge] for the settings "
           "and [user NAME] for one user's limits",
            NUM_ERR(4, "processes", "1 to 64", "99", "1"),
            F ":5: min_uid: expected a uid from 1 to 65533, got '0'; write "
              "e.g. 'min_uid = 1000' (uid 0 is never hosted)"}},
};

static void check_errs(const char *text, const char *const *want, size_t i)
{
	struct conf_msgs errs = {0};
	struct conf c;
	size_t nwant = 0;

	while (nwant < MAXERR && want[nwant] != NULL)
		nwant++;
	if (conf_parse(F, text, &c, &errs) == 0)
		fail_msg("row %zu: '%s' parsed, expected errors", i, text);
	if (errs.n != nwant) {
		print_msgs("got", &errs);
		fail_msg("row %zu: %zu errors, expected %zu", i, errs.n, nwant);
	}
	for (size_t j = 0; j < nwant; j++) {
		if (strcmp(errs.msgs[j], want[j]) != 0) {
			print_msgs("got", &errs);
			fail_msg("row %zu error %zu:\n got  %s\n want %s", i, j,
			    errs.msgs[j], want[j]);
		}
	}
	conf_msgs_free(&errs);
}

static void test_err_rows(void **state)
{
	for (size_t i = 0; i < sizeof(err_rows) / sizeof(err_rows[0]); i++)
		check_errs(err_rows[i].text, err_rows[i].errs, i);
}

/* Lines longer than libinih's buffer and NUL bytes are refused on their
 * own line, and the lines after them are still checked. */
static void test_long_line(void **state)
{
	char text[600];
	char want0[128];
	const char *want[MAXERR] = {
	    want0, NUM_ERR(4, "threads", "1 to 256", "0", "4")};

	snprintf(want0, sizeof(want0),
	    F ":2: line too long (at most 199 characters); split a long users "
	      "list over indented lines that follow it");
	strcpy(text, "[lodge]\nusers = ");
	memset(text + strlen(text), 'a', 300);
	strcpy(text + 16 + 300, "\nprocesses = 2\nthreads = 0\n");
	check_errs(text, want, 0);

	/* 199 characters and a newline fit. */
	strcpy(text, "[lodge]\nusers = ");
	memset(text + 16, 'b', 199 - 8);
	for (int i = 16 + 20; i < 16 + 191; i += 21)
		text[i] = ' ';
	strcpy(text + 16 + 191, "\n");
	{
		struct conf_msgs errs = {0};
		struct conf c;

		assert_int_equal(conf_parse(F, text, &c, &errs), 0);
		conf_free(&c);
	}
}

/* [user NAME] limits start from [lodge]'s, wherever [lodge] is. */
static void test_user_sections(void **state)
{
	struct conf_msgs errs = {0};
	struct conf c;

	assert_int_equal(conf_parse(F,
	                     "[user alice]\nprocesses = 3\nnetwork = loopback\n"
	                     "idle_timeout = 5\n"
	                     "[lodge]\nthreads = 8\nmemory_max = 256M\n"
	                     "[user bob]\nmemory_max = max\n",
	                     &c, &errs),
	    0);
	assert_int_equal(c.nsections, 2);
	assert_string_equal(c.sections[0].name, "alice");
	assert_int_equal(c.sections[0].line, 1);
	assert_int_equal(c.sections[0].limits.processes, 3);
	assert_int_equal(c.sections[0].limits.network, CONF_NET_LOOPBACK);
	assert_int_equal(c.sections[0].limits.idle_timeout, 5);
	assert_int_equal(c.sections[0].limits.threads, 8);
	assert_int_equal(c.sections[0].limits.memory_max, 256ULL << 20);
	assert_string_equal(c.sections[1].name, "bob");
	assert_int_equal(c.sections[1].limits.memory_max, 0);
	assert_int_equal(c.sections[1].limits.threads, 8);
	assert_int_equal(c.sections[1].limits.processes, 1);
	assert_int_equal(c.limits.threads, 8);
	assert_int_equal(c.limits.processes, 1);
	conf_free(&c);
}

static void test_load_file(void **state)
{
	char path[] = "/tmp/test_config.XXXXXX";
	struct conf_msgs errs = {0};
	struct conf c;
	int fd = mkstemp(path);
	static const char text[] = "[lodge]\nthreads = 7\nbad\n";

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), sizeof(text) - 1);
	close(fd);
	assert_int_equal(conf_load(path, &c, &errs), -1);
	assert_int_equal(errs.n, 1);
	assert_non_null(strstr(errs.msgs[0], ":3: 'bad': not a setting"));
	assert_memory_equal(errs.msgs[0], path, strlen(path));
	conf_msgs_free(&errs);

	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "[lodge]\nthreads = 7\n", 20), 20);
	close(fd);
	assert_int_equal(conf_load(path, &c, &errs), 0);
	assert_int_equal(c.limits.threads, 7);
	assert_string_equal(c.path, path);
	conf_free(&c);

	/* A NUL byte: the line is named. */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "[lodge]\nthr\0eads = 7\n", 21), 21);
	close(fd);
	assert_int_equal(conf_load(path, &c, &errs), -1);
	assert_int_equal(errs.n, 1);
	assert_non_null(strstr(errs.msgs[0], ":2: line contains a NUL byte"));
	conf_msgs_free(&errs);
	unlink(path);

	assert_int_equal(conf_load("/nonexistent/lodge.conf", &c, &errs), -1);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msgs[0],
	    "/nonexistent/lodge.conf: cannot open: No such file or directory");
	conf_msgs_free(&errs);
}

/* ---------------------------------------------------------------------- */
/* Resolving against the real account database. */

struct resolve_row {
	const char *text;
	int rc;
	const char *hosted;  /* space-separated names, in order */
	const char *message; /* a substring of the one warning or error */
};

static const struct resolve_row resolve_rows[] = {
    {"[lodge]\nusers = root\n", 0, "",
        F ":2: users: user 'root' has uid 0, root; never hosted"},
    {"[lodge]\nmin_uid = 1\nusers = root\n", 0, "",
        "user 'root' has uid 0, root; never hosted"},
    {"[lodge]\nusers = daemon\n", 0, "",
        F ":2: users: user 'daemon' has uid 1, below min_uid (a system "
          "account); never hosted"},
    {"[lodge]\nusers =\n  nobody\n", 0, "",
        F ":3: users: user 'nobody' has uid 65534, the overflow uid "
          "(nobody); never hosted"},
    {"[lodge]\nusers = lodge-no-such-user\n", 0, "",
        F ":2: users: no user 'lodge-no-such-user' on this system; not "
          "hosted (remove the name or create the account)"},
    {"[lodge]\nusers = @lodge-no-such-group\n", 0, "",
        F ":2: users: no group 'lodge-no-such-group' on this system; "
          "nobody is hosted through it"},
    {"[lodge]\nusers = @daemon\n", 0, "",
        "user 'daemon' (member of @daemon) has uid 1, below min_uid"},
    {"[lodge]\nmin_uid = 1\nusers = daemon\n", 0, "daemon", NULL},
    {"[lodge]\nmin_uid = 1\nusers = @daemon daemon\n", 0, "daemon", NULL},
    {"[lodge]\nmin_uid = 1\nusers = daemon\ncontrol_group = daemon\n", 0, "",
        "user 'daemon' has primary group 1 (root, the web server's or "
        "an administrative group); not hosted"},
    {"[lodge]\nsocket_group = lodge-no-such-group\n", -1, "",
        F ":2: socket_group: no group 'lodge-no-such-group' on this "
          "system; name the web server's group (Debian's Apache: "
          "www-data)"},
    {"[lodge]\ncontrol_group = lodge-no-such-group\n", -1, "",
        F ":2: control_group: no group 'lodge-no-such-group' on this "
          "system; create it (groupadd lodge-no-such-group) or leave "
          "control_group empty"},
    {"[lodge]\nmin_uid = 1\nusers = daemon\n[user bin]\nthreads = 2\n", 0,
        "daemon",
        F ":4: [user bin]: 'bin' is not hosted (not in users, or refused "
          "above); the section has no effect"},
};

static void test_resolve_rows(void **state)
{
	for (size_t i = 0; i < sizeof(resolve_rows) / sizeof(resolve_rows[0]);
	     i++) {
		const struct resolve_row *r = &resolve_rows[i];
		struct conf_msgs errs = {0}, warns = {0};
		struct conf_hosted h;
		struct conf c;
		char names[256] = "";
		bool found = r->message == NULL;
		int rc;

		assert_int_equal(conf_parse(F, r->text, &c, &errs), 0);
		rc = conf_resolve(&c, &h, &errs, &warns);
		if (rc != r->rc) {
			print_msgs("error", &errs);
			print_msgs("warning", &warns);
			fail_msg("row %zu: rc %d, expected %d", i, rc, r->rc);
		}
		if (rc == 0) {
			for (size_t j = 0; j < h.nusers; j++)
				snprintf(names + strlen(names),
				    sizeof(names) - strlen(names), "%s%s",
				    j ? " " : "", h.users[j].name);
			conf_hosted_free(&h);
		}
		assert_string_equal(names, r->hosted);
		for (size_t j = 0; j < errs.n; j++)
			found |= r->message && strstr(errs.msgs[j], r->message);
		for (size_t j = 0; j < warns.n; j++)
			found |=
			    r->message && strstr(warns.msgs[j], r->message);
		if (!found) {
			print_msgs("error", &errs);
			print_msgs("warning", &warns);
			fail_msg(
			    "row %zu: no message with '%s'", i, r->message);
		}
		conf_msgs_free(&errs);
		conf_msgs_free(&warns);
		conf_free(&c);
	}
}

static void test_resolve_user(void **state)
{
	struct conf_msgs errs = {0}, warns = {0};
	struct conf_hosted h, h2;
	struct conf c;
	struct conf_user *u;

	assert_int_equal(conf_parse(F,
	                     "[lodge]\nmin_uid = 1\nusers = daemon\n"
	                     "apps_dir = www\nthreads = 3\n"
	                     "[user daemon]\nprocesses = 2\n",
	                     &c, &errs),
	    0);
	assert_int_equal(conf_resolve(&c, &h, &errs, &warns), 0);
	assert_int_equal(h.nusers, 1);
	u = &h.users[0];
	assert_string_equal(u->name, "daemon");
	assert_int_equal(u->uid, 1);
	assert_int_equal(u->gid, 1);
	assert_string_equal(u->home, "/usr/sbin");
	assert_string_equal(u->apps_dir, "/usr/sbin/www");
	assert_string_equal(u->log_dir, "/usr/sbin/logs/lodge");
	assert_int_equal(u->limits.processes, 2);
	assert_int_equal(u->limits.threads, 3);
	/* The primary group is in the list; never 0 nor www-data. */
	assert_true(u->ngroups >= 1);
	assert_int_equal(u->groups[0], 1);
	for (int i = 0; i < u->ngroups; i++) {
		assert_int_not_equal(u->groups[i], 0);
		assert_int_not_equal(u->groups[i], h.socket_gid);
	}
	assert_int_equal(h.socket_gid, 33);
	assert_false(h.has_control_gid);

	assert_int_equal(conf_resolve(&c, &h2, &errs, &warns), 0);
	assert_true(conf_user_equal(&h.users[0], &h2.users[0]));
	h2.users[0].limits.threads = 9;
	assert_false(conf_user_equal(&h.users[0], &h2.users[0]));
	conf_hosted_free(&h2);
	conf_hosted_free(&h);
	conf_free(&c);
	assert_int_equal(errs.n, 0);
	conf_msgs_free(&warns);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ok_rows),
	    cmocka_unit_test(test_users_entries),
	    cmocka_unit_test(test_err_rows),
	    cmocka_unit_test(test_long_line),
	    cmocka_unit_test(test_user_sections),
	    cmocka_unit_test(test_load_file),
	    cmocka_unit_test(test_resolve_rows),
	    cmocka_unit_test(test_resolve_user),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
