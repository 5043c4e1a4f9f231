/* Unit tests for lodged/policy.c: the policy format, every error path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"

#define G "group g  # why\n"

/* Texts that must be refused, and the message they must give. */
static const struct {
	const char *text;
	const char *err;
} bad_rows[] = {
    {"allow read  # why\n", "t.policy:1: entry before any 'group NAME' line"},
    {G "allow read\n", "t.policy:2: missing '# why' comment"},
    {G "allow read  #   \n", "t.policy:2: missing '# why' comment"},
    {"group g\n", "t.policy:1: missing '# why' comment"},
    {"group  # why\nallow read # r\n", "t.policy:1: a group line reads"},
    {"group a b  # why\n", "t.policy:1: a group line reads"},
    {"group Big  # why\n", "t.policy:1: a group line reads"},
    {G "allow read # r\ngroup g  # again\n",
     "t.policy:3: duplicate group 'g' (first at line 1)"},
    {G "group h  # why\nallow read # r\n", "t.policy:1: group 'g' is empty"},
    {G "allow read # r\ngroup h  # why\n", "t.policy:3: group 'h' is empty"},
    {G "permit read  # why\n", "t.policy:2: unknown action 'permit'"},
    {G "errno(ENOPE) read  # why\n", "t.policy:2: unknown errno in 'errno(ENOPE)'"},
    {G "errno() read  # why\n", "t.policy:2: unknown action 'errno()'"},
    {G "errno(EPERM read  # why\n", "t.policy:2: unknown action 'errno(EPERM'"},
    {G "allow  # why\n", "t.policy:2: missing syscall name after 'allow'"},
    {G "allow Read  # why\n", "t.policy:2: bad syscall name 'Read'"},
    {G "allow no_such_call  # why\n",
     "t.policy:2: unknown syscall 'no_such_call' (libseccomp does not know it)"},
    {G "allow socket foo==1  # why\n",
     "t.policy:2: bad condition 'foo==1': a condition starts with arg0..arg5"},
    {G "allow socket arg6==1  # why\n",
     "t.policy:2: bad condition 'arg6==1': a condition starts with arg0..arg5"},
    {G "allow socket arg0~1  # why\n",
     "t.policy:2: bad condition 'arg0~1': unknown operator"},
    {G "allow socket arg0==  # why\n",
     "t.policy:2: bad condition 'arg0==': bad value"},
    {G "allow socket arg0==12x  # why\n",
     "t.policy:2: bad condition 'arg0==12x': bad value"},
    {G "allow socket arg0==AF_NOPE  # why\n",
     "t.policy:2: bad condition 'arg0==AF_NOPE': bad value"},
    {G "allow socket arg0==99999999999999999999  # why\n",
     "t.policy:2: bad condition 'arg0==99999999999999999999': bad value"},
    {G "allow ioctl arg1&0xff  # why\n",
     "t.policy:2: bad condition 'arg1&0xff': a masked condition reads"},
    {G "allow ioctl arg1&0==0  # why\n", "t.policy:2: bad condition 'arg1&0==0': bad mask"},
    {G "allow ioctl arg1&zz==0  # why\n", "t.policy:2: bad condition 'arg1&zz==0': bad mask"},
    {G "allow ioctl arg1&0xf==0x10  # why\n",
     "t.policy:2: bad condition 'arg1&0xf==0x10': value has bits outside the mask"},
    {G "allow socket arg0==1 arg0==2  # why\n",
     "t.policy:2: bad condition 'arg0==2': arg0 already has a condition"},
    {G "allow read arg0==1 arg1==1 arg2==1 arg3==1 arg4==1 arg5==1 arg5==2  # why\n",
     "t.policy:2: too many conditions"},
    {G "allow read # r\nallow read # again\n",
     "t.policy:3: duplicate entry for read (first at line 2)"},
    {G "allow socket arg0==1 # r\nallow socket arg0==1 # again\n",
     "t.policy:3: duplicate entry for socket (first at line 2)"},
    {G "allow read # r\ndeny read # no\n",
     "t.policy:3: read already has an unconditional rule at line 2"},
    {G "deny socket # r\nallow socket arg0==1 # no\n",
     "t.policy:3: socket: the unconditional rule at line 2 would override"},
    {G "errno(EAFNOSUPPORT) socket arg0==17 # r\nerrno(EAFNOSUPPORT) socket # all\n",
     "t.policy:3: socket: the unconditional rule at line 3 would override"},
    {G "allow ioctl # r\nallow ioctl arg1==5 # redundant\n",
     "t.policy:3: ioctl: the unconditional rule at line 2 would override"},
    {"# only a comment\n\n", "t.policy:2: no entries"},
    {"", "t.policy:0: no entries"},
};

static void test_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_rows) / sizeof(bad_rows[0]); i++) {
		struct policy *p = NULL;
		char err[512] = "";
		int rc = policy_parse(bad_rows[i].text, strlen(bad_rows[i].text),
		    "t.policy", &p, err, sizeof(err));

		if (rc != -1 || strncmp(err, bad_rows[i].err,
		    strlen(bad_rows[i].err)) != 0)
			fail_msg("row %zu: rc %d, err '%s', want '%s'", i, rc, err,
			    bad_rows[i].err);
		assert_null(p);
	}
}

static void test_long_line_and_nul(void **state)
{
	char text[POLICY_MAX_LINE + 64];
	char err[256];
	struct policy *p = NULL;

	(void)state;
	memset(text, 'a', sizeof(text));
	memcpy(text, G, strlen(G));
	text[sizeof(text) - 1] = '\n';
	assert_int_equal(policy_parse(text, sizeof(text), "t.policy", &p, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "t.policy:2: line longer than 512 bytes");
	assert_int_equal(policy_parse(G "allow re\0ad # x\n", sizeof(G) + 15,
	    "t.policy", &p, err, sizeof(err)), -1);
	assert_string_equal(err, "t.policy:2: NUL byte in line");
}

static void test_good(void **state)
{
	static const char text[] =
	    "# a comment\n"
	    "\n"
	    "group files  # files\n"
	    "allow read   # reading\n"
	    "allow ioctl  # terminals\n"
	    "deny ioctl arg1&0xffffffff==TIOCSTI  # CVE-2017-5226\n"
	    "group net  # sockets\n"
	    "  allow socket arg0==AF_UNIX # local\n"
	    "allow socket arg0==AF_NETLINK arg2==0  # getaddrinfo\n"
	    "errno(EAFNOSUPPORT) socket arg0>=17  # the rest\n"
	    "errno(ENOSYS) clone3  # glibc falls back\n"
	    "allow personality arg0!=0x0200000 # (made up)\n"
	    "allow mmap arg2<8 # (made up)\n"
	    "allow mprotect arg2<=7 # (made up)\n"
	    "allow munmap arg1>0 # (made up)\n"
	    "allow brk arg0>=0 # (made up)\n";
	struct policy *p = NULL;
	char err[256] = "";

	(void)state;
	assert_int_equal(policy_parse(text, strlen(text), "t.policy", &p, err,
	    sizeof(err)), 0);
	assert_int_equal(p->ngroups, 2);
	assert_string_equal(p->groups[0].name, "files");
	assert_int_equal(p->groups[1].line, 7);
	assert_int_equal(p->nentries, 12);
	assert_string_equal(p->entries[0].name, "read");
	assert_int_equal(p->entries[0].action, POLICY_ALLOW);
	assert_int_equal(p->entries[0].ncond, 0);
	assert_int_equal(p->entries[2].action, POLICY_DENY);
	assert_int_equal(p->entries[2].err, EPERM);
	assert_int_equal(p->entries[2].cond[0].arg, 1);
	assert_int_equal(p->entries[2].cond[0].op, POLICY_OP_MASKED_EQ);
	assert_int_equal(p->entries[2].cond[0].mask, 0xffffffff);
	assert_int_equal(p->entries[2].cond[0].value, 0x5412);
	assert_int_equal(p->entries[3].group, 1);
	assert_int_equal(p->entries[3].cond[0].value, 1);
	assert_int_equal(p->entries[4].ncond, 2);
	assert_int_equal(p->entries[4].cond[1].arg, 2);
	assert_int_equal(p->entries[5].action, POLICY_ERRNO);
	assert_int_equal(p->entries[5].err, EAFNOSUPPORT);
	assert_int_equal(p->entries[5].cond[0].op, POLICY_OP_GE);
	assert_int_equal(p->entries[6].err, ENOSYS);
	assert_int_equal(p->entries[7].cond[0].op, POLICY_OP_NE);
	assert_int_equal(p->entries[7].cond[0].value, 0x200000);
	assert_int_equal(p->entries[8].cond[0].op, POLICY_OP_LT);
	assert_int_equal(p->entries[9].cond[0].op, POLICY_OP_LE);
	assert_int_equal(p->entries[10].cond[0].op, POLICY_OP_GT);
	assert_true(p->entries[0].nr >= 0);
	policy_free(p);
	policy_free(NULL);
	assert_string_equal(policy_action_name(POLICY_ERRNO), "errno");
}

static void test_load_errors(void **state)
{
	char path[] = "/tmp/lodge-test-policy-XXXXXX";
	struct policy *p = NULL;
	char err[256];
	int fd;

	(void)state;
	assert_int_equal(policy_load("/nonexistent/x.policy", &p, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "/nonexistent/x.policy: No such file or directory");
	assert_int_equal(policy_load("/tmp", &p, err, sizeof(err)), -1);
	assert_string_equal(err, "/tmp: Invalid argument");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, G "allow nosuchcall # x\n", strlen(G) + 22),
	    (ssize_t)(strlen(G) + 22));
	close(fd);
	assert_int_equal(policy_load(path, &p, err, sizeof(err)), -1);
	char want[300];
	snprintf(want, sizeof(want), "%s:2: unknown syscall 'nosuchcall'", path);
	assert_memory_equal(err, want, strlen(want));
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_long_line_and_nul),
	    cmocka_unit_test(test_good),
	    cmocka_unit_test(test_load_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
