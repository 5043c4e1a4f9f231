/*
 * seccomp.c: turns a parsed policy into BPF.  Runs in lodged as root:
 * seccomp_compile before fork (libseccomp allocates, so it must never run
 * in the child), seccomp_apply in the sandboxed child as its last step
 * before execve.  It must never install a filter that is looser than the
 * policy: any libseccomp error fails the whole compilation, and rules that
 * libseccomp would silently merge are rejected earlier by policy.c.
 *
 * seccomp_cache_get keeps the last compilation for the next birth, keyed
 * by the policy file's exact bytes: a policy edited on disk is compiled
 * again, so caching never lets a worker start under an older policy than
 * the file says.
 *
 * Why export BPF instead of calling seccomp_load() in the child:
 * seccomp_load generates the program with malloc, and the child is born
 * by a raw clone (spawn.c) after which malloc may deadlock if another
 * lodged thread held its lock.  So the parent exports the program once,
 * and the child makes one seccomp(2) call per filter.
 */
#include "seccomp.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint32_t entry_action(const struct policy_entry *e, int deny_errno)
{
	switch (e->action) {
	case POLICY_ALLOW:
		return SCMP_ACT_ALLOW;
	case POLICY_DENY:
		return SCMP_ACT_ERRNO((uint16_t)deny_errno);
	case POLICY_ERRNO:
		return SCMP_ACT_ERRNO((uint16_t)e->err);
	}
	abort(); /* a new action without its case */
}

/* True when e is a conditional denial of a syscall the policy otherwise
 * allows unconditionally: it goes into the stacked exceptions filter. */
static bool is_exception(const struct policy *p, const struct policy_entry *e)
{
	if (e->action == POLICY_ALLOW || e->ncond == 0)
		return false;
	for (size_t i = 0; i < p->nentries; i++)
		if (p->entries[i].nr == e->nr && p->entries[i].ncond == 0 &&
		    p->entries[i].action == POLICY_ALLOW)
			return true;
	return false;
}

static int add_rule(scmp_filter_ctx ctx, uint32_t def,
    const struct policy_entry *e, int deny_errno)
{
	static const enum scmp_compare ops[] = {
		[POLICY_OP_EQ] = SCMP_CMP_EQ, [POLICY_OP_NE] = SCMP_CMP_NE,
		[POLICY_OP_LT] = SCMP_CMP_LT, [POLICY_OP_LE] = SCMP_CMP_LE,
		[POLICY_OP_GT] = SCMP_CMP_GT, [POLICY_OP_GE] = SCMP_CMP_GE,
		[POLICY_OP_MASKED_EQ] = SCMP_CMP_MASKED_EQ,
	};
	struct scmp_arg_cmp cmp[POLICY_MAX_ARGS];
	uint32_t action = entry_action(e, deny_errno);

	/* A name libseccomp knows but this architecture lacks (vm86 on
	 * x86_64) cannot be called natively, and other architectures are
	 * killed: nothing to add. */
	if (e->nr < 0)
		return 0;
	/* An entry that says what the default says is documentation
	 * (libseccomp refuses it with EACCES). */
	if (action == def)
		return 0;
	for (unsigned i = 0; i < e->ncond; i++) {
		const struct policy_cond *c = &e->cond[i];

		cmp[i] = (struct scmp_arg_cmp){.arg = c->arg, .op = ops[c->op],
		    .datum_a = c->op == POLICY_OP_MASKED_EQ ? c->mask : c->value,
		    .datum_b = c->op == POLICY_OP_MASKED_EQ ? c->value : 0};
	}
	return seccomp_rule_add_exact_array(ctx, action, e->nr, e->ncond, cmp);
}

/* Exports ctx's BPF into a malloc'd array. */
static int export_bpf(scmp_filter_ctx ctx, struct sock_filter **bpf_r,
    unsigned short *n_r)
{
	struct stat st;
	ssize_t got;
	int fd, rc;

	fd = memfd_create("lodge-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = seccomp_export_bpf(ctx, fd);
	if (rc == 0 && fstat(fd, &st) < 0)
		rc = -errno;
	if (rc == 0 && (st.st_size == 0 ||
	    st.st_size % sizeof(struct sock_filter) != 0 ||
	    st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS))
		rc = -E2BIG;
	if (rc == 0 && !(*bpf_r = malloc((size_t)st.st_size)))
		rc = -ENOMEM;
	if (rc == 0) {
		got = pread(fd, *bpf_r, (size_t)st.st_size, 0);
		if (got != st.st_size) {
			rc = got < 0 ? -errno : -EIO;
			free(*bpf_r);
			*bpf_r = NULL;
		} else {
			*n_r = (unsigned short)(st.st_size /
			    sizeof(struct sock_filter));
		}
	}
	close(fd);
	return rc;
}

static scmp_filter_ctx new_ctx(uint32_t def, int *rc)
{
	scmp_filter_ctx ctx = seccomp_init(def);

	if (!ctx) {
		*rc = -ENOMEM;
		return NULL;
	}
	/* Native architecture only (seccomp_init adds it); a call made
	 * through another ABI (x32, int 0x80) kills the whole process. */
	*rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (*rc == 0)
		*rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1);
	return ctx;
}

int seccomp_compile(const struct policy *p, enum spawn_seccomp_mode mode,
    int deny_errno, struct seccomp_prog *prog_r, char *err, size_t errsize)
{
	scmp_filter_ctx main_ctx = NULL, except_ctx = NULL;
	struct seccomp_prog prog = {.flags = SECCOMP_FILTER_FLAG_LOG};
	uint32_t def;
	const char *what = "seccomp_init";
	int rc = 0, bad_line = 0;

	if (deny_errno <= 0)
		deny_errno = EPERM;
	switch (mode) {
	case SPAWN_SECCOMP_ENFORCE: def = SCMP_ACT_ERRNO((uint16_t)deny_errno); break;
	case SPAWN_SECCOMP_LOG: def = SCMP_ACT_LOG; break;
	case SPAWN_SECCOMP_KILL: def = SCMP_ACT_KILL_PROCESS; break;
	default:
		snprintf(err, errsize, "seccomp: unknown mode %d", (int)mode);
		errno = EINVAL;
		return -1;
	}
	main_ctx = new_ctx(def, &rc);
	for (size_t i = 0; rc == 0 && i < p->nentries; i++) {
		const struct policy_entry *e = &p->entries[i];

		what = "rule";
		bad_line = e->line;
		if (!is_exception(p, e)) {
			rc = add_rule(main_ctx, def, e, deny_errno);
			continue;
		}
		if (!except_ctx && !(except_ctx = new_ctx(SCMP_ACT_ALLOW, &rc)))
			break;
		if (rc == 0)
			rc = add_rule(except_ctx, SCMP_ACT_ALLOW, e, deny_errno);
	}
	if (rc == 0) {
		what = "export";
		bad_line = 0;
		rc = export_bpf(main_ctx, &prog.main, &prog.nmain);
	}
	if (rc == 0 && except_ctx)
		rc = export_bpf(except_ctx, &prog.except, &prog.nexcept);
	seccomp_release(main_ctx);
	if (except_ctx)
		seccomp_release(except_ctx);
	if (rc < 0) {
		if (bad_line)
			snprintf(err, errsize, "seccomp: %s at policy line %d: %s",
			    what, bad_line, strerror(-rc));
		else
			snprintf(err, errsize, "seccomp: %s: %s", what, strerror(-rc));
		seccomp_prog_free(&prog);
		errno = -rc;
		return -1;
	}
	*prog_r = prog;
	return 0;
}

/*
 * The last step before execve.  From here on every system call of this
 * process and of everything it starts is filtered; the kernel refuses the
 * call unless no_new_privs is set, so a filter can never be the only thing
 * standing between a setuid binary and root.
 */
int seccomp_apply(const struct seccomp_prog *prog)
{
	struct sock_fprog f;

	if (prog->except) {
		f = (struct sock_fprog){.len = prog->nexcept, .filter = prog->except};
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, prog->flags, &f) < 0)
			return -1;
	}
	f = (struct sock_fprog){.len = prog->nmain, .filter = prog->main};
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, prog->flags, &f) < 0
	    ? -1 : 0;
}

void seccomp_prog_free(struct seccomp_prog *prog)
{
	free(prog->main);
	free(prog->except);
	prog->main = prog->except = NULL;
	prog->nmain = prog->nexcept = 0;
}

void seccomp_cache_clear(struct seccomp_cache *cache)
{
	free(cache->path);
	free(cache->text);
	seccomp_prog_free(&cache->prog);
	cache->path = cache->text = NULL;
	cache->len = 0;
}

int seccomp_cache_get(struct seccomp_cache *cache, const char *path,
    enum spawn_seccomp_mode mode, int deny_errno,
    const struct seccomp_prog **prog_r, char *err, size_t errsize)
{
	struct seccomp_prog prog;
	struct policy *policy;
	char *text, *path_copy;
	size_t len;
	int rc;

	if (deny_errno <= 0)
		deny_errno = EPERM;
	if (policy_read(path, &text, &len, err, errsize) < 0)
		return -1;
	if (cache->path != NULL && strcmp(cache->path, path) == 0 &&
	    cache->mode == mode && cache->deny_errno == deny_errno &&
	    cache->len == len && memcmp(cache->text, text, len) == 0) {
		free(text);
		*prog_r = &cache->prog;
		return 0;
	}
	/* Parsed from the very bytes kept as the key: the file may change
	 * again at any time, and the key must describe what was compiled. */
	if (policy_parse(text, len, path, &policy, err, errsize) < 0) {
		free(text);
		return -1;
	}
	rc = seccomp_compile(policy, mode, deny_errno, &prog, err, errsize);
	policy_free(policy);
	path_copy = rc == 0 ? strdup(path) : NULL;
	if (rc == 0 && path_copy == NULL) {
		seccomp_prog_free(&prog);
		snprintf(err, errsize, "seccomp: %s", strerror(ENOMEM));
		errno = ENOMEM;
		rc = -1;
	}
	if (rc < 0) {
		free(text);
		return -1;
	}
	seccomp_cache_clear(cache);
	cache->path = path_copy;
	cache->text = text;
	cache->len = len;
	cache->mode = mode;
	cache->deny_errno = deny_errno;
	cache->prog = prog;
	cache->compiles++;
	*prog_r = &cache->prog;
	return 0;
}
