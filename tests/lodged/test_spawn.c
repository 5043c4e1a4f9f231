/* Behaviour tests for lodged/spawn.c, as root: spawn_worker starts
 * /bin/sh as user nobody with the default policy, in loopback mode, and
 * the script reports what it sees through the descriptor it was given
 * (fd 3): /proc/self/status (checked with worker/selfcheck.c), its ids,
 * its descriptors, the mounts, the network.  Then forced failures must
 * come back as "step N (name): reason", and the namespace's init must
 * forward SIGTERM and exit with the worker's status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "selfcheck.h"
#include "spawn.h"

static char base[64];          /* /run/lodge-spawn-XXXXXX */
static char homes[96], alice[128], bob[128];
static uid_t nobody_uid;
static gid_t nogroup_gid;

static const char script[] =
    "echo \"uid=$(id -u) gid=$(id -g) groups=$(id -G) pid=$$\"\n"
    "echo \"homes=$(ls \"$HOMES\" | tr '\\n' ' ')\"\n"
    "echo \"hello=$(cat \"$HOME/hello\")\"\n"
    "cat \"$HOMES/bob/secret\" 2>/dev/null && echo bob=readable || echo bob=hidden\n"
    "touch /tmp/x && touch /dev/shm/x && echo tmp=writable\n"
    "echo \"tmpcount=$(ls -A /tmp | wc -l)\"\n"
    "echo \"procs=$(ls /proc | grep -c '^[0-9]')\"\n"
    "echo \"fds=$(ls /proc/self/fd | tr '\\n' ' ')\"\n"
    "echo \"stdin=$(readlink /proc/self/fd/0)\"\n"
    "echo \"netdevs=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ' ')\"\n"
    "echo \"secret=${LODGE_TEST_SECRET:-unset}\"\n"
    "echo \"run_lodge=$(ls -A /run/lodge 2>&1 | head -c 120)\"\n"
    "echo ---status\n"
    "cat /proc/self/status\n";

static int setup(void **state)
{
	struct passwd *pw;
	struct group *gr;
	int fd;

	(void)state;
	if (geteuid() != 0)
		return 0;
	pw = getpwnam("nobody");
	gr = getgrnam("nogroup");
	if (!pw || !gr)
		return 0;
	nobody_uid = pw->pw_uid;
	nogroup_gid = gr->gr_gid;
	/* Under /run, not /tmp: the sandbox replaces /tmp. */
	snprintf(base, sizeof(base), "/run/lodge-spawn-XXXXXX");
	if (!mkdtemp(base))
		return -1;
	chmod(base, 0755);
	snprintf(homes, sizeof(homes), "%s/home", base);
	snprintf(alice, sizeof(alice), "%s/alice", homes);
	snprintf(bob, sizeof(bob), "%s/bob", homes);
	if (mkdir(homes, 0755) < 0 || mkdir(alice, 0755) < 0 ||
	    mkdir(bob, 0755) < 0)
		return -1;
	fd = open(strcat(strcpy((char[256]){0}, alice), "/hello"),
	    O_WRONLY | O_CREAT, 0644);
	if (fd < 0 || write(fd, "hi", 2) != 2)
		return -1;
	close(fd);
	fd = open(strcat(strcpy((char[256]){0}, bob), "/secret"),
	    O_WRONLY | O_CREAT, 0644);
	if (fd < 0 || write(fd, "pw", 2) != 2)
		return -1;
	close(fd);
	setenv("LODGE_TEST_SECRET", "leaked", 1);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	if (base[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
		if (system(cmd) != 0)
			return -1;
	}
	return 0;
}

static void need_root(void)
{
	if (geteuid() != 0 || !base[0]) {
		fprintf(stderr, "skip: spawning a sandboxed worker needs root "
		    "and user nobody / group nogroup\n");
		skip();
	}
}

static void base_req(struct spawn_req *req, char *const *argv,
    const char *const *hide)
{
	static const gid_t no_groups[1];

	memset(req, 0, sizeof(*req));
	req->user = "alice";
	req->uid = nobody_uid;
	req->gid = nogroup_gid;
	req->groups = no_groups;
	req->ngroups = 0;
	req->home = alice;
	req->hide = hide;
	req->nhide = 1;
	req->network = SPAWN_NET_LOOPBACK;
	req->nofile = 256;
	req->fsize = 1 << 30;
	req->tmp_size = 8 << 20;
	req->policy_path = LODGE_POLICY_DIR "/default.policy";
	req->worker_path = "/bin/sh";
	req->argv = argv;
}

static const char *line(const char *out, const char *key)
{
	const char *p = strstr(out, key);

	if (!p)
		fail_msg("no '%s' in the worker's output:\n%s", key, out);
	return p + strlen(key);
}

static void expect_line(const char *out, const char *key, const char *value)
{
	const char *v = line(out, key);

	if (strncmp(v, value, strlen(value)) != 0 || v[strlen(value)] != '\n')
		fail_msg("%s'%.*s', expected '%s'", key, (int)strcspn(v, "\n"), v,
		    value);
}

static void test_sandboxed_worker(void **state)
{
	static char out[65536];
	char *argv[] = {"sh", "-c", (char *)script, NULL};
	const char *hide[] = {homes};
	struct spawn_req req;
	char err[512] = "", env_homes[4096], expect_ids[128], why[256];
	int p[2], fds[1], status;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	(void)state;
	need_root();
	/* The script finds the homes' parent through $HOMES: put it in
	 * argv, since the environment is cleared. */
	snprintf(env_homes, sizeof(env_homes), "HOMES=%s; %s", homes, script);
	argv[2] = env_homes;
	base_req(&req, argv, hide);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	fds[0] = p[1];
	req.fds = fds;
	req.nfds = 1;
	/* The worker writes its report to fd 3; stdout is ours. */
	char *wrapped = malloc(strlen(env_homes) + 16);
	snprintf(wrapped, strlen(env_homes) + 16, "exec >&3; %s", env_homes);
	argv[2] = wrapped;
	if (spawn_worker(&req, &pid, err, sizeof(err)) < 0)
		fail_msg("spawn_worker: %s", err);
	close(p[1]);
	while (got < sizeof(out) - 1 &&
	    (n = read(p[0], out + got, sizeof(out) - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(p[0]);
	free(wrapped);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("init ended with status 0x%x; output:\n%s", status, out);

	snprintf(expect_ids, sizeof(expect_ids), "uid=%u gid=%u groups=%u pid=2",
	    (unsigned)nobody_uid, (unsigned)nogroup_gid, (unsigned)nogroup_gid);
	expect_line(out, "uid=", expect_ids + 4);
	expect_line(out, "homes=", "alice ");
	expect_line(out, "hello=", "hi");
	expect_line(out, "bob=", "hidden");
	expect_line(out, "tmp=", "writable");
	expect_line(out, "tmpcount=", "1");
	/* pid 1 (init), 2 (sh), and the pipeline's processes: few. */
	if (atoi(line(out, "procs=")) > 6)
		fail_msg("the worker sees too many processes:\n%s", out);
	/* 0, 1, 2, 3 and ls's own directory descriptor. */
	expect_line(out, "fds=", "0 1 2 3 4 ");
	expect_line(out, "stdin=", "/dev/null");
	expect_line(out, "netdevs=", "lo ");
	expect_line(out, "secret=", "unset");
	/* /run/lodge does not exist on a test machine; where it does, it is
	 * an empty mode-0 tmpfs. */
	const char *rl = line(out, "run_lodge=");
	size_t rl_len = strcspn(rl, "\n");
	if (rl_len != 0 && !memmem(rl, rl_len, "No such file", 12) &&
	    !memmem(rl, rl_len, "Permission denied", 17))
		fail_msg("/run/lodge visible: %s", out);

	gid_t groups[1] = {nogroup_gid};
	struct selfcheck_expect e = {nobody_uid, nogroup_gid, groups, 1};
	if (selfcheck_status(line(out, "---status\n"), &e, why, sizeof(why)) < 0)
		fail_msg("selfcheck: %s\n%s", why, out);
}

/* The line of /proc/PID/status that starts with key (its value, up to
 * the newline, in buf), or "" if there is none. */
static const char *proc_status(pid_t pid, const char *key, char *buf,
    size_t size)
{
	char path[64], all[8192];
	const char *p;
	ssize_t n;
	int fd;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return buf;
	n = read(fd, all, sizeof(all) - 1);
	close(fd);
	all[n > 0 ? n : 0] = '\0';
	p = strstr(all, key);
	if (p != NULL)
		snprintf(buf, size, "%.*s", (int)strcspn(p + strlen(key), "\n"),
		    p + strlen(key));
	return buf;
}

static void test_sigterm_forwarded(void **state)
{
	/* The worker is born with the stop signals blocked (it takes them
	 * with sigwait or a signalfd when it is ready; one that comes
	 * before waits for it): sleep never unblocks them, so SIGTERM,
	 * forwarded by the init, stays pending. */
	char *argv[] = {"/bin/sleep", "30", NULL};
	char path[64], kids[64], buf[64];
	pid_t worker = 0;
	int fd;
	ssize_t n;
	const char *hide[] = {homes};
	struct spawn_req req;
	char err[512];
	int status;
	pid_t pid;

	(void)state;
	need_root();
	base_req(&req, argv, hide);
	req.network = SPAWN_NET_HOST;
	req.worker_path = argv[0];
	if (spawn_worker(&req, &pid, err, sizeof(err)) < 0)
		fail_msg("spawn_worker: %s", err);
	usleep(200 * 1000);
	/* The worker is the init's one child. */
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid,
	    (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	n = read(fd, kids, sizeof(kids) - 1);
	close(fd);
	kids[n > 0 ? n : 0] = '\0';
	worker = (pid_t)atoi(kids);
	assert_true(worker > 0);
	/* SIGHUP, SIGINT and SIGTERM: bits 1, 2 and 15. */
	assert_string_equal(proc_status(worker, "SigBlk:\t", buf, sizeof(buf)),
	    "0000000000004003");
	assert_int_equal(kill(pid, SIGTERM), 0);
	for (int i = 0; i < 200; i++) {
		if (strtoull(proc_status(worker, "ShdPnd:\t", buf, sizeof(buf)),
		        NULL, 16) & (1ULL << (SIGTERM - 1)))
			break;
		usleep(10 * 1000);
	}
	assert_true(strtoull(proc_status(worker, "ShdPnd:\t", buf, sizeof(buf)),
	    NULL, 16) & (1ULL << (SIGTERM - 1)));
	/* The init ends the namespace with it. */
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
}

static void test_failures(void **state)
{
	char *argv[] = {"sh", "-c", "exit 0", NULL};
	const char *hide[] = {homes};
	const char *bad_hide[] = {"/nonexistent-lodge-dir"};
	static const struct {
		const char *what;
		int field;
		const char *err;
	} rows[] = {
	    {"missing policy", 0, "step 11 (seccomp policy): /nonexistent.policy: "
	     "No such file or directory"},
	    {"missing worker", 1, "step 11 (execve): No such file or directory"},
	    {"missing hidden dir", 2, "step 3 (hide homes (tmpfs)): No such file "
	     "or directory"},
	    {"uid 0", 3, "step 7 (ids): uid 0"},
	    {"group 0", 4, "step 7 (setgroups): group 0 in the list of user alice"},
	};

	(void)state;
	need_root();
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		static const gid_t root_group[1] = {0};
		struct spawn_req req;
		char err[512] = "";
		pid_t pid = 0;

		base_req(&req, argv, hide);
		switch (rows[i].field) {
		case 0: req.policy_path = "/nonexistent.policy"; break;
		case 1: req.worker_path = "/nonexistent/lodge-worker"; break;
		case 2: req.hide = bad_hide; break;
		case 3: req.uid = 0; break;
		case 4: req.groups = root_group; req.ngroups = 1; break;
		}
		if (spawn_worker(&req, &pid, err, sizeof(err)) != -1)
			fail_msg("%s: spawn_worker succeeded", rows[i].what);
		if (strncmp(err, rows[i].err, strlen(rows[i].err)) != 0)
			fail_msg("%s: '%s', expected '%s'", rows[i].what, err,
			    rows[i].err);
	}
	/* Every child was reaped by spawn_worker. */
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sandboxed_worker),
	    cmocka_unit_test(test_sigterm_forwarded),
	    cmocka_unit_test(test_failures),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
