/*
 * policy.c: parses seccomp policies (the files in policy/) into entries.  Runs in
 * lodged as root, before any fork, on a file root owns; pure apart from
 * policy_read's read.  It only describes: it never installs a filter
 * (seccomp.c does) and never trusts a line it has not fully understood —
 * any doubt is an error naming the file and line.  The format is in
 * docs/policy-format.md.
 */
#include "policy.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Names a policy may use for an errno(...) action. */
static const struct { const char *name; int value; } errno_names[] = {
	{"EPERM", EPERM}, {"ENOENT", ENOENT}, {"EACCES", EACCES},
	{"EINVAL", EINVAL}, {"ENOSYS", ENOSYS}, {"ENOTTY", ENOTTY},
	{"EAFNOSUPPORT", EAFNOSUPPORT}, {"EOPNOTSUPP", EOPNOTSUPP},
	{"EPROTONOSUPPORT", EPROTONOSUPPORT},
};

/* Symbolic values a condition may use, so policies read as C does.  The
 * numbers are Linux's (x86_64 and the generic ABI agree on these). */
static const struct { const char *name; uint64_t value; } const_names[] = {
	{"AF_UNSPEC", 0}, {"AF_UNIX", 1}, {"AF_INET", 2}, {"AF_INET6", 10},
	{"AF_NETLINK", 16}, {"AF_PACKET", 17}, {"AF_VSOCK", 40},
	{"NETLINK_ROUTE", 0},
	{"TIOCSTI", 0x5412}, {"TIOCLINUX", 0x541C},
	/* Every CLONE_NEW* flag clone(2) accepts: NEWNS, NEWCGROUP, NEWUTS,
	 * NEWIPC, NEWUSER, NEWPID, NEWNET (moby's mask). */
	{"CLONE_NEW_MASK", 0x7E020000},
	{"PER_LINUX", 0}, {"PER_QUERY", 0xffffffff},
};

const char *policy_action_name(enum policy_action a)
{
	switch (a) {
	case POLICY_ALLOW: return "allow";
	case POLICY_DENY: return "deny";
	case POLICY_ERRNO: return "errno";
	}
	return "?";
}

__attribute__((format(printf, 5, 6)))
static int fail(char *err, size_t errsize, const char *file, int line,
    const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(err, errsize, "%s:%d: ", file, line);

	if (n >= 0 && (size_t)n < errsize) {
		va_start(ap, fmt);
		vsnprintf(err + n, errsize - (size_t)n, fmt, ap);
		va_end(ap);
	}
	errno = EINVAL;
	return -1;
}

static bool is_name(const char *s)
{
	if (!*s || strlen(s) >= POLICY_MAX_NAME)
		return false;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) &&
		    *s != '_' && *s != '-')
			return false;
	return true;
}

/* A number (decimal or 0x hex, the whole token) or a known constant. */
static bool parse_value(const char *s, uint64_t *v_r)
{
	char *end;

	for (size_t i = 0; i < sizeof(const_names) / sizeof(const_names[0]); i++)
		if (strcmp(s, const_names[i].name) == 0) {
			*v_r = const_names[i].value;
			return true;
		}
	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	*v_r = strtoull(s, &end, 0);
	return errno == 0 && *end == '\0';
}

/* "argN OP VALUE" or "argN&MASK==VALUE", one token.  Returns a static
 * reason on error, NULL when fine. */
static const char *parse_cond(char *tok, struct policy_cond *c)
{
	static const struct { const char *s; enum policy_op op; } ops[] = {
		{"==", POLICY_OP_EQ}, {"!=", POLICY_OP_NE}, {"<=", POLICY_OP_LE},
		{">=", POLICY_OP_GE}, {"<", POLICY_OP_LT}, {">", POLICY_OP_GT},
	};
	char *p, *amp;

	if (strncmp(tok, "arg", 3) != 0 || tok[3] < '0' || tok[3] > '5')
		return "a condition starts with arg0..arg5";
	c->arg = (unsigned)(tok[3] - '0');
	p = tok + 4;
	c->mask = 0;
	if (*p == '&') {
		amp = p + 1;
		p = strstr(amp, "==");
		if (!p)
			return "a masked condition reads argN&MASK==VALUE";
		*p = '\0';
		if (!parse_value(amp, &c->mask) || c->mask == 0)
			return "bad mask";
		c->op = POLICY_OP_MASKED_EQ;
		p += 2;
	} else {
		size_t i;

		for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
			if (strncmp(p, ops[i].s, strlen(ops[i].s)) == 0)
				break;
		if (i == sizeof(ops) / sizeof(ops[0]))
			return "unknown operator (==, !=, <, <=, >, >=, &MASK==)";
		c->op = ops[i].op;
		p += strlen(ops[i].s);
	}
	if (!parse_value(p, &c->value))
		return "bad value (a number, 0xHEX or a known constant)";
	if (c->op == POLICY_OP_MASKED_EQ && (c->value & ~c->mask))
		return "value has bits outside the mask: never matches";
	return NULL;
}

static bool same_conds(const struct policy_entry *a,
    const struct policy_entry *b)
{
	if (a->ncond != b->ncond)
		return false;
	for (unsigned i = 0; i < a->ncond; i++) {
		bool found = false;

		for (unsigned j = 0; j < b->ncond && !found; j++)
			found = a->cond[i].arg == b->cond[j].arg &&
			    a->cond[i].op == b->cond[j].op &&
			    a->cond[i].mask == b->cond[j].mask &&
			    a->cond[i].value == b->cond[j].value;
		if (!found)
			return false;
	}
	return true;
}

/*
 * libseccomp keeps one unconditional rule per syscall and lets it override
 * every conditional rule of that syscall (SANDBOX.md §1: a catch-all
 * EAFNOSUPPORT made every socket() fail).  So an entry may share its
 * syscall with an unconditional one only as an exception: an unconditional
 * allow plus conditional denials, which seccomp.c puts in a second,
 * stacked filter.  Everything else is a mistake in the policy.
 */
static int check_against(const struct policy_entry *e,
    const struct policy_entry *o, const char *file, char *err, size_t errsize)
{
	if (e->action == o->action && e->err == o->err && same_conds(e, o))
		return fail(err, errsize, file, e->line,
		    "duplicate entry for %s (first at line %d)", e->name, o->line);
	if (e->ncond > 0 && o->ncond > 0)
		return 0;
	if (e->ncond == 0 && o->ncond == 0)
		return fail(err, errsize, file, e->line,
		    "%s already has an unconditional rule at line %d", e->name,
		    o->line);
	const struct policy_entry *u = e->ncond == 0 ? e : o;
	const struct policy_entry *c = e->ncond == 0 ? o : e;
	if (u->action == POLICY_ALLOW && c->action != POLICY_ALLOW)
		return 0;
	return fail(err, errsize, file, e->line,
	    "%s: the unconditional rule at line %d would override the "
	    "conditional one at line %d (only 'allow NAME' plus conditional "
	    "denials may be combined)", e->name, u->line, c->line);
}

struct parser {
	const char *file;
	struct policy *p;
	size_t cap_groups, cap_entries;
	char *err;
	size_t errsize;
};

static int check_group_not_empty(struct parser *ps)
{
	struct policy *p = ps->p;

	if (p->ngroups == 0)
		return 0;
	if (p->nentries == 0 || p->entries[p->nentries - 1].group != p->ngroups - 1)
		return fail(ps->err, ps->errsize, ps->file,
		    p->groups[p->ngroups - 1].line, "group '%s' is empty",
		    p->groups[p->ngroups - 1].name);
	return 0;
}

static int add_group(struct parser *ps, int line, char **tok, int ntok)
{
	struct policy *p = ps->p;

	if (ntok != 2 || !is_name(tok[1]))
		return fail(ps->err, ps->errsize, ps->file, line,
		    "a group line reads 'group NAME  # why' (NAME in a-z0-9_-)");
	for (size_t i = 0; i < p->ngroups; i++)
		if (strcmp(p->groups[i].name, tok[1]) == 0)
			return fail(ps->err, ps->errsize, ps->file, line,
			    "duplicate group '%s' (first at line %d)", tok[1],
			    p->groups[i].line);
	if (check_group_not_empty(ps) < 0)
		return -1;
	if (p->ngroups == ps->cap_groups) {
		size_t n = ps->cap_groups ? ps->cap_groups * 2 : 16;
		void *g = realloc(p->groups, n * sizeof(*p->groups));

		if (!g)
			return -1;
		p->groups = g;
		ps->cap_groups = n;
	}
	p->groups[p->ngroups].line = line;
	strcpy(p->groups[p->ngroups].name, tok[1]);
	p->ngroups++;
	return 0;
}

static int parse_action(const char *tok, struct policy_entry *e)
{
	size_t n;

	if (strcmp(tok, "allow") == 0) {
		e->action = POLICY_ALLOW;
		return 0;
	}
	if (strcmp(tok, "deny") == 0) {
		e->action = POLICY_DENY;
		e->err = EPERM;
		return 0;
	}
	if (strncmp(tok, "errno(", 6) != 0)
		return -1;
	n = strlen(tok);
	if (n < 8 || tok[n - 1] != ')')
		return -1;
	for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
		if (strlen(errno_names[i].name) == n - 7 &&
		    strncmp(tok + 6, errno_names[i].name, n - 7) == 0) {
			e->action = POLICY_ERRNO;
			e->err = errno_names[i].value;
			return 0;
		}
	return -2;
}

static int add_entry(struct parser *ps, int line, char **tok, int ntok)
{
	struct policy *p = ps->p;
	struct policy_entry e;
	int rc;

	memset(&e, 0, sizeof(e));
	e.line = line;
	if (p->ngroups == 0)
		return fail(ps->err, ps->errsize, ps->file, line,
		    "entry before any 'group NAME' line");
	e.group = p->ngroups - 1;
	rc = parse_action(tok[0], &e);
	if (rc == -2)
		return fail(ps->err, ps->errsize, ps->file, line,
		    "unknown errno in '%s' (EPERM, ENOSYS, EAFNOSUPPORT, ...)",
		    tok[0]);
	if (rc < 0)
		return fail(ps->err, ps->errsize, ps->file, line,
		    "unknown action '%s' (allow, deny, errno(ENAME))", tok[0]);
	if (ntok < 2)
		return fail(ps->err, ps->errsize, ps->file, line,
		    "missing syscall name after '%s'", tok[0]);
	if (!is_name(tok[1]))
		return fail(ps->err, ps->errsize, ps->file, line,
		    "bad syscall name '%s'", tok[1]);
	strcpy(e.name, tok[1]);
	e.nr = seccomp_syscall_resolve_name(e.name);
	if (e.nr == __NR_SCMP_ERROR)
		return fail(ps->err, ps->errsize, ps->file, line,
		    "unknown syscall '%s' (libseccomp does not know it)", e.name);
	if (ntok - 2 > POLICY_MAX_ARGS)
		return fail(ps->err, ps->errsize, ps->file, line,
		    "too many conditions (at most one per argument)");
	for (int i = 2; i < ntok; i++) {
		struct policy_cond *c = &e.cond[e.ncond];
		char copy[POLICY_MAX_LINE];
		const char *why;

		snprintf(copy, sizeof(copy), "%s", tok[i]);
		why = parse_cond(tok[i], c);
		if (why)
			return fail(ps->err, ps->errsize, ps->file, line,
			    "bad condition '%s': %s", copy, why);
		for (unsigned j = 0; j < e.ncond; j++)
			if (e.cond[j].arg == c->arg)
				return fail(ps->err, ps->errsize, ps->file, line,
				    "bad condition '%s': arg%u already has a "
				    "condition (libseccomp allows one per argument "
				    "and rule; write two entries)", copy, c->arg);
		e.ncond++;
	}
	for (size_t i = 0; i < p->nentries; i++)
		if (p->entries[i].nr == e.nr &&
		    check_against(&e, &p->entries[i], ps->file, ps->err,
		    ps->errsize) < 0)
			return -1;
	if (p->nentries == ps->cap_entries) {
		size_t n = ps->cap_entries ? ps->cap_entries * 2 : 64;
		void *m = realloc(p->entries, n * sizeof(*p->entries));

		if (!m)
			return -1;
		p->entries = m;
		ps->cap_entries = n;
	}
	p->entries[p->nentries++] = e;
	return 0;
}

/* One line, already cut at its end.  Modifies it in place. */
static int parse_line(struct parser *ps, int line, char *s)
{
	char *hash, *why, *tok[2 + POLICY_MAX_ARGS + 1];
	int ntok = 0;

	while (isspace((unsigned char)*s))
		s++;
	if (*s == '\0' || *s == '#')
		return 0;
	hash = strchr(s, '#');
	why = hash ? hash + 1 : NULL;
	while (why && isspace((unsigned char)*why))
		why++;
	if (!why || !*why)
		return fail(ps->err, ps->errsize, ps->file, line,
		    "missing '# why' comment (every group and entry says why)");
	*hash = '\0';
	for (char *t = strtok(s, " \t\r"); t; t = strtok(NULL, " \t\r")) {
		if (ntok == (int)(sizeof(tok) / sizeof(tok[0])))
			return fail(ps->err, ps->errsize, ps->file, line,
			    "too many conditions (at most one per argument)");
		tok[ntok++] = t;
	}
	if (ntok == 0)
		return 0;
	if (strcmp(tok[0], "group") == 0)
		return add_group(ps, line, tok, ntok);
	return add_entry(ps, line, tok, ntok);
}

int policy_parse(const char *text, size_t len, const char *file,
    struct policy **policy_r, char *err, size_t errsize)
{
	struct parser ps = {.file = file, .err = err, .errsize = errsize};
	char buf[POLICY_MAX_LINE + 1];
	size_t pos = 0;
	int line = 0;

	ps.p = calloc(1, sizeof(*ps.p));
	if (!ps.p)
		goto nomem;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;

		line++;
		if (n > POLICY_MAX_LINE) {
			fail(err, errsize, file, line, "line longer than %d bytes",
			    POLICY_MAX_LINE);
			goto out;
		}
		if (memchr(text + pos, '\0', n)) {
			fail(err, errsize, file, line, "NUL byte in line");
			goto out;
		}
		memcpy(buf, text + pos, n);
		buf[n] = '\0';
		pos += n + (nl ? 1 : 0);
		errno = 0;
		if (parse_line(&ps, line, buf) < 0) {
			if (errno == ENOMEM)
				goto nomem;
			goto out;
		}
	}
	if (check_group_not_empty(&ps) < 0)
		goto out;
	if (ps.p->nentries == 0) {
		fail(err, errsize, file, line, "no entries: an empty policy "
		    "would deny everything");
		goto out;
	}
	*policy_r = ps.p;
	return 0;
nomem:
	snprintf(err, errsize, "%s: out of memory", file);
	errno = ENOMEM;
out:
	policy_free(ps.p);
	return -1;
}

int policy_read(const char *path, char **text_r, size_t *len_r, char *err,
    size_t errsize)
{
	struct stat st;
	char *text = NULL;
	ssize_t n = 0;
	size_t got = 0;
	int fd, saved;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		goto syserr;
	errno = S_ISREG(st.st_mode) ? (st.st_size > 1 << 20 ? EFBIG : 0) : EINVAL;
	if (errno)
		goto syserr;
	text = malloc((size_t)st.st_size + 1);
	if (!text)
		goto syserr;
	while (got < (size_t)st.st_size &&
	    (n = read(fd, text + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	if (n < 0)
		goto syserr;
	close(fd);
	text[got] = '\0';
	*text_r = text;
	*len_r = got;
	return 0;
syserr:
	saved = errno;
	snprintf(err, errsize, "%s: %s", path, strerror(saved));
	if (fd >= 0)
		close(fd);
	free(text);
	errno = saved;
	return -1;
}

int policy_load(const char *path, struct policy **policy_r, char *err,
    size_t errsize)
{
	char *text;
	size_t len;
	int rc, saved;

	if (policy_read(path, &text, &len, err, errsize) < 0)
		return -1;
	rc = policy_parse(text, len, path, policy_r, err, errsize);
	saved = errno;
	free(text);
	errno = saved;
	return rc;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	free(p->groups);
	free(p->entries);
	free(p);
}
