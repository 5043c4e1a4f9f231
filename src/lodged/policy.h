/*
 * policy.h: seccomp policies as data (the files in policy/, docs/policy-format.md).
 * Pure: parses text into a list of entries, resolving syscall names with
 * libseccomp; compiling them into a filter is seccomp.c's job.
 */
#ifndef LODGE_POLICY_H
#define LODGE_POLICY_H

#include <stddef.h>
#include <stdint.h>

#define POLICY_MAX_NAME 48   /* syscall and group names */
#define POLICY_MAX_ARGS 6    /* a syscall has at most six arguments */
#define POLICY_MAX_LINE 512

enum policy_action {
	POLICY_ALLOW = 0,    /* allow */
	POLICY_DENY,         /* deny: EPERM (the default, written down) */
	POLICY_ERRNO,        /* errno(ENAME): fail with that errno */
};

enum policy_op {
	POLICY_OP_EQ = 0, POLICY_OP_NE, POLICY_OP_LT, POLICY_OP_LE,
	POLICY_OP_GT, POLICY_OP_GE,
	POLICY_OP_MASKED_EQ, /* (arg & mask) == value */
};

struct policy_cond {
	unsigned arg;        /* 0..5 */
	enum policy_op op;
	uint64_t mask;       /* POLICY_OP_MASKED_EQ only */
	uint64_t value;
};

struct policy_entry {
	int line;
	size_t group;        /* index into policy.groups */
	enum policy_action action;
	int err;             /* POLICY_ERRNO: the errno; POLICY_DENY: EPERM */
	char name[POLICY_MAX_NAME];
	int nr;              /* libseccomp's number (negative: not on this arch) */
	unsigned ncond;
	struct policy_cond cond[POLICY_MAX_ARGS];
};

struct policy_group {
	int line;
	char name[POLICY_MAX_NAME];
};

struct policy {
	struct policy_group *groups;
	size_t ngroups;
	struct policy_entry *entries;
	size_t nentries;
};

/*
 * Parses a whole policy text; file names the source in messages.  Returns 0
 * with *policy_r (free with policy_free), or -1 with err holding
 * "FILE:LINE: what is wrong" (errno EINVAL, or ENOMEM).  Pure.
 */
int policy_parse(const char *text, size_t len, const char *file,
    struct policy **policy_r, char *err, size_t errsize);

/* Reads the whole file at path (a regular file of at most 1 MiB) into a
 * malloc'd, NUL-terminated *text_r of *len_r bytes, which the caller frees;
 * -1 with "PATH: strerror" when unreadable. */
int policy_read(const char *path, char **text_r, size_t *len_r, char *err,
    size_t errsize);

/* Reads path and parses it; -1 with "PATH: strerror" when unreadable. */
int policy_load(const char *path, struct policy **policy_r, char *err,
    size_t errsize);

/* Frees p and everything it holds; NULL is fine.  Can't fail. */
void policy_free(struct policy *p);

/* "allow", "deny", "errno": for messages and tests.  Can't fail. */
const char *policy_action_name(enum policy_action a);

#endif
