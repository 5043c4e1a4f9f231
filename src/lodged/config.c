/*
 * config.c: lodged's configuration file (see config.h).  conf_parse() is
 * pure: it checks every section, key and value of the text it is given
 * and collects every error (not just the first) as "FILE:LINE: SETTING:
 * what is wrong; what to write instead", so that the provider fixes a
 * broken file in one pass.  conf_resolve() looks the listed users and
 * groups up in the account database and decides who is hosted.  Runs in
 * lodged as root; opens only the config file, never a path inside a home.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ini.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ini_lines.h"
#include "util.h"

#define CONF_OVERFLOW_UID 65534 /* "nobody": owner of unmapped files */
#define CONF_MAX_SOCKET_DIR (UTIL_MAX_PATH - 1 - CONF_MAX_NAME - 6)

/* ---------------------------------------------------------------------- */
/* Messages */

void conf_msgs_add(struct conf_msgs *m, const char *fmt, ...)
{
	va_list ap;
	char **grown;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (msg == NULL) {
		m->nlost++;
		return;
	}
	/* A value may hold any byte: keep each message one clean line. */
	for (char *s = msg; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
	grown = realloc(m->msgs, (m->n + 1) * sizeof(*grown));
	if (grown == NULL) {
		free(msg);
		m->nlost++;
		return;
	}
	m->msgs = grown;
	m->msgs[m->n++] = msg;
}

void conf_msgs_free(struct conf_msgs *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->msgs[i]);
	free(m->msgs);
	memset(m, 0, sizeof(*m));
}

/* ---------------------------------------------------------------------- */
/* Parsing */

enum conf_section_kind {
	CONF_SEC_NONE,
	CONF_SEC_LODGE,
	CONF_SEC_USER,
	CONF_SEC_SKIP
};

struct conf_parse;
typedef void (*conf_set_fn)(struct conf_parse *p, const char *key,
    const char *value, struct conf_limits *lim, unsigned bit);

/* One setting: its name, whether [user NAME] may set it (a limit, with
 * its CONF_SET_* bit), and the function that checks and stores it. */
struct conf_key {
	const char *name;
	unsigned limit_bit; /* 0: [lodge] only */
	conf_set_fn set;
};

struct conf_parse {
	struct ini_lines lines;
	const char *name;
	struct conf *conf;
	struct conf_msgs *errs;
	size_t nerrs_at_start;

	enum conf_section_kind sec;
	size_t cur_user; /* index in conf->sections when sec is USER */
	/* The line each setting of the current section was set on, indexed
	 * like conf_keys, to report a setting given twice. */
	int key_line[48];
	/* Every [lodge] setting's line, kept across [lodge] sections. */
	int lodge_key_line[48];
	/* front_trusted, matched against front at the end. */
	char trusted[CONF_MAX_FRONTS][256];
	size_t ntrusted;
	int line_trusted;
};

static void __attribute__((format(printf, 3, 4)))
conf_err(struct conf_parse *p, const char *key, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (key != NULL)
		conf_msgs_add(p->errs, "%s:%d: %s: %s", p->name,
		    p->lines.lineno, key, reason);
	else
		conf_msgs_add(
		    p->errs, "%s:%d: %s", p->name, p->lines.lineno, reason);
}

static char *conf_strdup(struct conf_parse *p, const char *key, const char *s)
{
	char *copy = strdup(s);

	if (copy == NULL)
		conf_err(p, key, "out of memory");
	return copy;
}

/* A user or group name as useradd/groupadd accept them (with Debian's
 * relaxed NAME_REGEX): letters, digits, '_', '-', '.', a final '$', not
 * starting with '-' or a digit-only name. */
static bool conf_is_account_name(const char *s, size_t len)
{
	bool has_non_digit = false;

	if (len == 0 || len > CONF_MAX_NAME || s[0] == '-' || s[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c >= '0' && c <= '9')
			continue;
		has_non_digit = true;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    c == '_' || c == '-' || c == '.')
			continue;
		if (c == '$' && i == len - 1)
			continue;
		return false;
	}
	return has_non_digit;
}

static void conf_set_users(struct conf_parse *p, const char *key,
    const char *value, struct conf_limits *lim, unsigned bit)
{
	struct conf *conf = p->conf;
	const char *s = value;

	while (*s != '\0') {
		struct conf_entry *grown, *e;
		bool is_group = false;
		size_t len;

		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		if (*s == '\0')
			break;
		len = strcspn(s, " \t,");
		if (*s == '@') {
			is_group = true;
			s++;
			len--;
		}
		if (!conf_is_account_name(s, len)) {
			conf_err(p, key,
			    "'%s%.*s' is not a %s name; write names and "
			    "@groups separated by spaces or commas, like "
			    "'users = alice bob @webusers'",
			    is_group ? "@" : "", (int)len, s,
			    is_group ? "group" : "user");
			s += len;
			continue;
		}
		grown = realloc(conf->entries,
		    (conf->nentries + 1) * sizeof(*conf->entries));
		if (grown == NULL) {
			conf_err(p, key, "out of memory");
			return;
		}
		conf->entries = grown;
		e = &conf->entries[conf->nentries];
		e->name = strndup(s, len);
		if (e->name == NULL) {
			conf_err(p, key, "out of memory");
			return;
		}
		e->is_group = is_group;
		e->line = p->lines.lineno;
		conf->nentries++;
		s += len;
	}
}

static void conf_set_min_uid(struct conf_parse *p, const char *key,
    const char *value, struct conf_limits *lim, unsigned bit)
{
	uint64_t v;

	if (util_parse_u64(value, 1, CONF_OVERFLOW_UID - 1, false, &v) < 0) {
		conf_err(p, key,
		    "expected a uid from 1 to %d, got '%s'; write e.g. "
		    "'min_uid = 1000' (uid 0 is never hosted)",
		    CONF_OVERFLOW_UID - 1, value);
		return;
	}
	p->conf->min_uid = (uid_t)v;
	p->conf->line_min_uid = p->lines.lineno;
}

/* True if path has a ".." component. */
static bool conf_has_dotdot(const char *path)
{
	for (const char *s = path; *s != '\0';) {
		size_t len = strcspn(s, "/");

		if (len == 2 && s[0] == '.' && s[1] == '.')
			return true;
		s += len;
		while (*s == '/')
			s++;
	}
	return false;
}

static void conf_store_str(
    struct conf_parse *p, const char *key, const char *value, char **dst)
{
	char *copy = conf_strdup(p, key, value);

	if (copy != NULL) {
		free(*dst);
		*dst = copy;
	}
}

static char **conf_str_field(struct conf *conf, const char *key)
{
	if (strcmp(key, "apps_dir") == 0)
		return &conf->apps_dir;
	if (strcmp(key, "log_dir") == 0)
		return &conf->log_dir;
	if (strcmp(key, "socket_dir") == 0)
		return &conf->socket_dir;
	if (strcmp(key, "control_socket") == 0)
		return &conf->control_socket;
	if (strcmp(key, "policy") == 0)
		return &conf->policy;
	if (strcmp(key, "worker") == 0)
		return &conf->worker;
	if (strcmp(key, "socket_group") == 0)
		return &conf->socket_group;
	if (strcmp(key, "front_group") == 0)
		return &conf->front_group;
	if (strcmp(key, "host_map") == 0)
		return &conf->host_map;
	if (strcmp(key, "router") == 0)
		return &conf->router;
	if (strcmp(key, "router_policy") == 0)
		return &conf->router_policy;
	if (strcmp(key, "router_user") == 0)
		return &conf->router_user;
	return &conf->control_group;
}

/* apps_dir, log_dir: inside each home. */
static void conf_set_home_path(struct conf_parse *p, const char *key,
    const char *value, struct conf_limits *lim, unsigned bit)
{
	if (*value == '\0' || *value == '/' || conf_has_dotdot(value) ||
	    strlen(value) > 200) {
		conf_err(p, key,
		    "expected a path relative to each user's home, without "
		    "'..', got '%s'; write e.g. '%s = %s'",
		    value, key,
		    strcmp(key, "apps_dir") == 0 ? "apps" : "logs/lodge");
		return;
	}
	conf_store_str(p, key, value, conf_str_field(p->conf, key));
}

/* socket_dir, policy, worker: absolute paths on the host. */
static void conf_set_abs_path(struct conf_parse *p, const char *key,
    const char *value, struct conf_limits *lim, unsigned bit)
{
	const char *example =
	    strcmp(key, "socket_dir") == 0      ? "/run/lodge/users"
	    : strcmp(key, "control_socket") == 0 ? "/run/lodge/control.sock"
	    : strcmp(key, "policy") == 0        ? "/etc/lodge/policy/default.policy"
	    : strcmp(key, "router_policy") == 0 ? "/etc/lodge/policy/router.policy"
	    : strcmp(key, "host_map") == 0      ? "/etc/lodge/hosts.map"
	    : strcmp(key, "router") == 0        ? "/usr/sbin/lodge-router"
	                                        : "/usr/sbin/lodge-worker";

	if (*value != '/' || conf_has_dotdot(value) ||
	    strlen(value) >= PATH_MAX) {
		conf_err(p, key,
		    "expected an absolute path without '..', got '%s'; "
		    "write e.g. '%s = %s'",
		    value, key, example);
		return;
	}
	if (strcmp(key, "socket_dir") == 0 &&
	    strlen(value) > CONF_MAX_SOCKET_DIR) {
		conf_err(p, key,
		    "'%s' is too long for Unix socket paths (at most %d "
		    "characters, so that DIR/USER.sock fits); write a "
		    "shorter path like '/run/lodge/users'",
		    value, CONF_MAX_SOCKET_DIR);
		return;
	}
	/* lodged binds PATH.new and renames it: both fit in sun_path. */
	if (strcmp(key, "control_socket") == 0 &&
	    strlen(value) > UTIL_MAX_PATH - 1 - 4) {
		conf_err(p, key,
		    "'%s' is too long for a Unix socket path (at most %d "
		    "characters); write a shorter path like "
		    "'/run/lodge/control.sock'",
		    value, UTIL_MAX_PATH - 1 - 4);
		return;
	}
	conf_store_str(p, key, value, conf_str_field(p->conf, key));
}

static void conf_set_group(struct conf_parse *p, const char *key,
    const char *value, struct conf_limits *lim, unsigned bit)
{
	bool is_control = strcmp(key, "control_group") == 0;
	bool is_front = strcmp(key, "front_group") == 0;

	if (is_control && *value == '\0') {
		free(p->conf->control_group);
		p->conf->control_group = NULL;
		p->conf->line_control_group = p->lines.lineno;
		return;
	}
	if (!conf_is_account_name(value, strlen(value))) {
		conf_err(p, key,
		    "'%s' is not a group name; write e.g. '%s = %s'%s", value,
		    key, is_control ? "lodgeadm" : "www-data",
		    is_control ? " (or leave it empty: root only)" : "");
		return;
	}
	conf_store_str(p, key, value, conf_str_field(p->conf, key));
	if (is_control)
		p->conf->line_control_group = p->lines.lineno;
	else if (is_front)
		p->conf->line_front_group = p->lines.lineno;
	else
		p->conf->line_socket_group = p->lines.lineno;
}

/* A word a setting may take, the value it stands for, and a gloss for
 * the error message ("" or " (what it means)"). */
struct conf_word {
	const char *word;
	int value;
	const char *gloss;
};

/*
 * The value of the word in words (ended by a NULL word) that value is, or
 * -1 after the error "expected 'a', 'b' or 'c', got 'value'" and then
 * hint ("" or "; what to write").
 */
static int conf_word(struct conf_parse *p, const char *key, const char *value,
    const struct conf_word *words, const char *hint)
{
	char expected[256];
	size_t n = 0, len = 0;

	for (; words[n].word != NULL; n++)
		if (strcmp(value, words[n].word) == 0)
			return words[n].value;
	for (size_t i = 0; i < n && len < sizeof(expected); i++) {
		int w = snprintf(expected + len, sizeof(expected) - len,
		    "%s'%s'%s", i == 0 ? "" : i + 1 == n ? " or " : ", ",
		    words[i].word, words[i].gloss);

		len += w > 0 ? (size_t)w : 0;
	}
	conf_err(p, key, "expected %s, got '%s'%s", expected, value, hint);
	return -1;
}

static void conf_set_seccomp(struct conf_parse *p, const char *key,
    const char *value, struct conf_limits *lim, unsigned bit)
{
	static const struct conf_word words[] = {
	    {"enforce", CONF_SECCOMP_ENFORCE, ""},
	    {"log", CONF_SECCOMP_LOG, ""},
	    {"kill", CONF_SECCOMP_KILL, ""},
	    {NULL, 0, NULL},
	};
	int v = conf_word(p, key, value, words, "; write 'seccomp = enforce'");

	if (v >= 0)
		p->conf->seccomp = v;
}

static void conf_set_scheduling(struct conf_parse *p, const char *key,
    const char *value, struct conf_limits *lim, unsigned bit)
{
	static const struct conf_word words[] = {
	    {"batch", CONF_SCHED_BATCH, " (SCHED_BATCH)"},
	    {"normal", CONF_SCHED_NORMAL, " (SCHED_OTHER)"},
	    {NULL, 0, NULL},
	};
	int v = conf_word(p, key, value, words,
	    "; write 'scheduling = batch' (the default)");

	if (v >= 0)
		p->conf->scheduling = v;
}

static void conf_set_network(struct conf_parse *p, const char *key,
    const char *value, struct conf_limits *lim, unsigned bit)
{
	static const struct conf_word words[] = {
	    {"host", CONF_NET_HOST, ""},
	    {"loopback", CONF_NET_LOOPBACK, ""},
	    {NULL, 0, NULL},
	};
	int v = conf_word(p, key, value, words,
	    "; write 'network = loopback' to give the worker its own "
	    "loopback only");

	if (v >= 0)
		lim->network = v;
}

/* router_user: the account lodge-router runs as. */
static void conf_set_router_user(struct conf_parse *p, const char *key,
    const char *value, struct conf_limits *lim, unsigned bit)
{
	if (!conf_is_account_name(value, strlen(value))) {
		conf_err(p, key,
		    "'%s' is not a user name; write 'router_user = lodge' "
		    "(a system user of its own: adduser --system --group "
		    "lodge)",
		    value);
		return;
	}
	conf_store_str(p, key, value, &p->conf->router_user);
	p->conf->line_router_user = p->lines.lineno;
}

/* One "KIND:ADDRESS" item of front or front_trusted. */
static int conf_parse_front(struct conf_parse *p, const char *key,
    const char *item, struct conf_front *f)
{
	const char *errstr = NULL;
	const char *addr;

	memset(f, 0, sizeof(*f));
	if (strncmp(item, "http:", 5) == 0) {
		f->kind = CONF_FRONT_HTTP;
		addr = item + 5;
	} else if (strncmp(item, "uwsgi:", 6) == 0) {
		f->kind = CONF_FRONT_UWSGI;
		addr = item + 6;
	} else {
		conf_err(p, key,
		    "'%s' does not start with http: or uwsgi:; write e.g. "
		    "'http:unix:/run/lodge/http.sock' or "
		    "'uwsgi:tcp:127.0.0.1:8091'",
		    item);
		return -1;
	}
	if (util_parse_listen(addr, &f->ls, &errstr) < 0) {
		conf_err(p, key,
		    "'%s': %s; write unix:/ABSOLUTE/PATH or tcp:HOST:PORT "
		    "after the protocol",
		    item, errstr);
		return -1;
	}
	if (f->ls.kind == UTIL_LISTEN_UNIX &&
	    (f->ls.path[0] != '/' || conf_has_dotdot(f->ls.path))) {
		conf_err(p, key,
		    "'%s': a Unix front socket needs an absolute path without "
		    "'..', like unix:/run/lodge/http.sock",
		    item);
		return -1;
	}
	return 0;
}

/* Splits a comma/space separated list, calling fn on each item. */
static void conf_each_item(struct conf_parse *p, const char *key,
    const char *value,
    void (*fn)(struct conf_parse *, const char *, const char *))
{
	const char *s = value;

	while (*s != '\0') {
		char item[256];
		size_t len;

		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		if (*s == '\0')
			break;
		len = strcspn(s, " \t,");
		if (len >= sizeof(item)) {
			conf_err(p, key, "'%.40s...' is too long", s);
			return;
		}
		memcpy(item, s, len);
		item[len] = '\0';
		fn(p, key, item);
		s += len;
	}
}

static void conf_add_front(struct conf_parse *p, const char *key,
    const char *item)
{
	struct conf *conf = p->conf;
	struct conf_front f;

	if (conf_parse_front(p, key, item, &f) < 0)
		return;
	for (size_t i = 0; i < conf->nfronts; i++) {
		if (strcmp(conf->fronts[i].spec, item) == 0) {
			conf_err(p, key, "'%s' is listed twice", item);
			return;
		}
	}
	if (conf->nfronts == CONF_MAX_FRONTS) {
		conf_err(p, key, "more than %d front listeners",
		    CONF_MAX_FRONTS);
		return;
	}
	f.spec = conf_strdup(p, key, item);
	if (f.spec != NULL)
		conf->fronts[conf->nfronts++] = f;
}

static void conf_set_fronts(struct conf_parse *p, const char *key,
    const char *value, struct conf_limits *lim, unsigned bit)
{
	conf_each_item(p, key, value, conf_add_front);
}

/* front_trusted names listeners of front; it may come before front in
 * the file, so the names are matched at the end (conf_trusted_check). */
static void conf_add_trusted(struct conf_parse *p, const char *key,
    const char *item)
{
	struct conf_front f;

	if (conf_parse_front(p, key, item, &f) < 0)
		return;
	if (p->ntrusted == CONF_MAX_FRONTS) {
		conf_err(p, key, "more than %d listeners", CONF_MAX_FRONTS);
		return;
	}
	snprintf(p->trusted[p->ntrusted++], sizeof(p->trusted[0]), "%s",
	    item);
}

static void conf_set_trusted(struct conf_parse *p, const char *key,
    const char *value, struct conf_limits *lim, unsigned bit)
{
	p->line_trusted = p->lines.lineno;
	conf_each_item(p, key, value, conf_add_trusted);
}

static void conf_trusted_check(struct conf_parse *p)
{
	for (size_t i = 0; i < p->ntrusted; i++) {
		bool is_found = false;

		for (size_t j = 0; j < p->conf->nfronts; j++) {
			if (strcmp(p->conf->fronts[j].spec, p->trusted[i]) ==
			    0) {
				p->conf->fronts[j].is_trusted = true;
				is_found = true;
			}
		}
		if (!is_found)
			conf_msgs_add(p->errs,
			    "%s:%d: front_trusted: '%s' is not one of the "
			    "front listeners; copy it exactly from 'front ='",
			    p->name, p->line_trusted, p->trusted[i]);
	}
}

static void conf_set_route(struct conf_parse *p, const char *key,
    const char *value, struct conf_limits *lim, unsigned bit)
{
	static const struct conf_word words[] = {
	    {"header", CONF_ROUTE_HEADER, " (X-Lodge-App)"},
	    {"host", CONF_ROUTE_HOST, " (host_map)"},
	    {"var", CONF_ROUTE_VAR, " (the uwsgi var LODGE_APP)"},
	    {NULL, 0, NULL},
	};
	int v = conf_word(p, key, value, words, "");

	if (v >= 0)
		p->conf->route = v;
}

/* queue_max, queue_timeout, inflight_max: the router's per-user bounds. */
static void conf_set_router_num(struct conf_parse *p, const char *key,
    const char *value, struct conf_limits *lim, unsigned bit)
{
	bool is_timeout = strcmp(key, "queue_timeout") == 0;
	uint64_t max = is_timeout ? 3600 : 100000;
	uint64_t v;

	if (util_parse_u64(value, 1, max, false, &v) < 0) {
		conf_err(p, key,
		    "expected a number from 1 to %llu, got '%s'; write e.g. "
		    "'%s = %s'",
		    (unsigned long long)max, value, key,
		    is_timeout ? "30" : "64");
		return;
	}
	if (is_timeout)
		p->conf->queue_timeout = (unsigned)v;
	else if (strcmp(key, "queue_max") == 0)
		p->conf->queue_max = (unsigned)v;
	else
		p->conf->inflight_max = (unsigned)v;
}

/* The numeric limits, as data: range, whether K/M/G and "max" (no
 * limit, stored as 0) are accepted, and an example. */
struct conf_num {
	const char *name;
	uint64_t min, max;
	bool has_suffix;
	bool has_max_word;
	const char *example;
};

static const struct conf_num conf_nums[] = {
    {"processes", 1, CONF_MAX_PROCESSES, false, false, "1"},
    {"threads", 1, CONF_MAX_THREADS, false, false, "4"},
    {"memory_max", 16ULL << 20, 1ULL << 50, true, true, "1G"},
    {"pids_max", 8, 4194304, false, true, "512"},
    {"cpu_weight", 1, 10000, false, false, "100"},
    {"nofile", 64, 1048576, false, false, "1024"},
    {"request_timeout", 1, 3600, false, false, "60"},
    {"idle_timeout", 0, 86400, false, false, "600"},
};

static void conf_set_num(struct conf_parse *p, const char *key,
    const char *value, struct conf_limits *lim, unsigned bit)
{
	const struct conf_num *n = NULL;
	uint64_t v;

	for (size_t i = 0; i < sizeof(conf_nums) / sizeof(conf_nums[0]); i++)
		if (strcmp(conf_nums[i].name, key) == 0)
			n = &conf_nums[i];
	if (n->has_max_word && strcmp(value, "max") == 0) {
		v = 0;
	} else if (util_parse_u64(value, n->min, n->max, n->has_suffix, &v) <
	           0) {
		if (n->has_suffix)
			conf_err(p, key,
			    "expected a size from 16M to 1048576G (K, M, G "
			    "suffixes) or 'max', got '%s'; write e.g. '%s = "
			    "%s'",
			    value, key, n->example);
		else
			conf_err(p, key,
			    "expected a number from %llu to %llu%s, got '%s'; "
			    "write e.g. '%s = %s'",
			    (unsigned long long)n->min,
			    (unsigned long long)n->max,
			    n->has_max_word ? " or 'max'" : "", value, key,
			    n->example);
		return;
	}
	switch (bit) {
	case CONF_SET_PROCESSES:
		lim->processes = (unsigned)v;
		break;
	case CONF_SET_THREADS:
		lim->threads = (unsigned)v;
		break;
	case CONF_SET_MEMORY_MAX:
		lim->memory_max = v;
		break;
	case CONF_SET_PIDS_MAX:
		lim->pids_max = v;
		break;
	case CONF_SET_CPU_WEIGHT:
		lim->cpu_weight = v;
		break;
	case CONF_SET_NOFILE:
		lim->nofile = v;
		break;
	case CONF_SET_REQUEST_TIMEOUT:
		lim->request_timeout = (unsigned)v;
		break;
	case CONF_SET_IDLE_TIMEOUT:
		lim->idle_timeout = (unsigned)v;
		break;
	default:
		abort(); /* a limit in conf_keys without its case */
	}
}

#define CONF_KNOWN_LODGE                                                       \
	"users, min_uid, apps_dir, log_dir, socket_dir, socket_group, "        \
	"control_group, control_socket, policy, seccomp, scheduling, "         \
	"network, worker, processes, "                                         \
	"threads, memory_max, pids_max, cpu_weight, nofile, "                  \
	"request_timeout, idle_timeout, front, front_group, front_trusted, "  \
	"route, host_map, router, router_policy, router_user, queue_max, "     \
	"queue_timeout, inflight_max"
#define CONF_KNOWN_USER                                                        \
	"processes, threads, memory_max, pids_max, cpu_weight, nofile, "       \
	"network, request_timeout, idle_timeout"

static const struct conf_key conf_keys[] = {
    {"users", 0, conf_set_users},
    {"min_uid", 0, conf_set_min_uid},
    {"apps_dir", 0, conf_set_home_path},
    {"log_dir", 0, conf_set_home_path},
    {"socket_dir", 0, conf_set_abs_path},
    {"socket_group", 0, conf_set_group},
    {"control_group", 0, conf_set_group},
    {"control_socket", 0, conf_set_abs_path},
    {"policy", 0, conf_set_abs_path},
    {"seccomp", 0, conf_set_seccomp},
    {"scheduling", 0, conf_set_scheduling},
    {"worker", 0, conf_set_abs_path},
    {"network", CONF_SET_NETWORK, conf_set_network},
    {"processes", CONF_SET_PROCESSES, conf_set_num},
    {"threads", CONF_SET_THREADS, conf_set_num},
    {"memory_max", CONF_SET_MEMORY_MAX, conf_set_num},
    {"pids_max", CONF_SET_PIDS_MAX, conf_set_num},
    {"cpu_weight", CONF_SET_CPU_WEIGHT, conf_set_num},
    {"nofile", CONF_SET_NOFILE, conf_set_num},
    {"request_timeout", CONF_SET_REQUEST_TIMEOUT, conf_set_num},
    {"idle_timeout", CONF_SET_IDLE_TIMEOUT, conf_set_num},
    {"front", 0, conf_set_fronts},
    {"front_group", 0, conf_set_group},
    {"front_trusted", 0, conf_set_trusted},
    {"route", 0, conf_set_route},
    {"host_map", 0, conf_set_abs_path},
    {"router", 0, conf_set_abs_path},
    {"router_policy", 0, conf_set_abs_path},
    {"router_user", 0, conf_set_router_user},
    {"queue_max", 0, conf_set_router_num},
    {"queue_timeout", 0, conf_set_router_num},
    {"inflight_max", 0, conf_set_router_num},
};
#define CONF_NKEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

/* A section header: [lodge] or [user NAME]. */
static void conf_section(struct conf_parse *p, const char *text)
{
	struct conf *conf = p->conf;
	struct conf_user_section *grown, *s;
	const char *name;
	size_t len;

	memset(p->key_line, 0, sizeof(p->key_line));
	p->sec = CONF_SEC_SKIP;
	if (strcmp(text, "lodge") == 0) {
		p->sec = CONF_SEC_LODGE;
		return;
	}
	if (strncmp(text, "user", 4) != 0 ||
	    (text[4] != ' ' && text[4] != '\t')) {
		conf_err(p, NULL,
		    "[%s]: unknown section; write [lodge] for the settings "
		    "and [user NAME] for one user's limits",
		    text);
		return;
	}
	name = text + 4;
	while (*name == ' ' || *name == '\t')
		name++;
	len = strlen(name);
	while (len > 0 && (name[len - 1] == ' ' || name[len - 1] == '\t'))
		len--;
	if (!conf_is_account_name(name, len)) {
		conf_err(p, NULL,
		    "[%s]: '%.*s' is not a user name; write [user NAME] with "
		    "the account's login name, like [user alice]",
		    text, (int)len, name);
		return;
	}
	for (size_t i = 0; i < conf->nsections; i++) {
		if (strlen(conf->sections[i].name) == len &&
		    strncmp(conf->sections[i].name, name, len) == 0) {
			conf_err(p, NULL,
			    "[%s]: second section for user '%.*s' (the first "
			    "is on line %d); merge them into one",
			    text, (int)len, name, conf->sections[i].line);
			return;
		}
	}
	grown = realloc(
	    conf->sections, (conf->nsections + 1) * sizeof(*conf->sections));
	if (grown == NULL) {
		conf_err(p, NULL, "out of memory");
		return;
	}
	conf->sections = grown;
	s = &conf->sections[conf->nsections];
	memset(s, 0, sizeof(*s));
	s->name = strndup(name, len);
	if (s->name == NULL) {
		conf_err(p, NULL, "out of memory");
		return;
	}
	s->line = p->lines.lineno;
	p->cur_user = conf->nsections++;
	p->sec = CONF_SEC_USER;
}

/* The reader's view of each line, before libinih handles it: sections
 * and what libinih would misread are dealt with here. */
static bool conf_on_line(
    void *user, int lineno, enum ini_line_kind kind, const char *text)
{
	struct conf_parse *p = user;

	switch (kind) {
	case INI_LINE_BLANK:
	case INI_LINE_COMMENT:
	case INI_LINE_PAIR:
	case INI_LINE_CONTINUATION:
		break;
	case INI_LINE_SECTION:
		conf_section(p, text);
		break;
	case INI_LINE_SYNTAX:
		conf_err(p, NULL,
		    "'%s': not a setting; write KEY = VALUE, [lodge] or "
		    "[user NAME] (comments start with ';' or '#')",
		    text);
		break;
	case INI_LINE_TOO_LONG:
		conf_err(p, NULL,
		    "line too long (at most %d characters); split a long "
		    "users list over indented lines that follow it",
		    p->lines.max_len);
		break;
	case INI_LINE_NUL:
		conf_err(p, NULL, "line contains a NUL byte; remove it");
		break;
	}
	return true;
}

/* libinih's handler: one call per key line and per continuation line.
 * Always returns 1: errors are collected in p, and the parse goes on. */
static int conf_handler(
    void *user, const char *section, const char *key, const char *value)
{
	struct conf_parse *p = user;
	const struct conf_key *k = NULL;
	struct conf_user_section *us = NULL;
	struct conf_limits *lim = &p->conf->limits;
	int *key_line;
	size_t i;

	if (key == NULL || value == NULL)
		return 1;
	for (i = 0; i < CONF_NKEYS; i++) {
		if (strcmp(conf_keys[i].name, key) == 0) {
			k = &conf_keys[i];
			break;
		}
	}
	switch (p->sec) {
	case CONF_SEC_SKIP:
		return 1; /* the section header was reported */
	case CONF_SEC_NONE:
		conf_err(p, key,
		    "setting outside any section; put it under [lodge] (or "
		    "[user NAME] for one user's limits)");
		return 1;
	case CONF_SEC_LODGE:
		if (k == NULL) {
			conf_err(p, key,
			    "unknown setting in [lodge]; the known ones are "
			    "" CONF_KNOWN_LODGE);
			return 1;
		}
		key_line = &p->lodge_key_line[i];
		break;
	case CONF_SEC_USER:
		us = &p->conf->sections[p->cur_user];
		if (k == NULL || k->limit_bit == 0) {
			conf_err(p, key,
			    "%s in [user %s]; a user's section sets only "
			    "" CONF_KNOWN_USER "%s",
			    k == NULL ? "unknown setting" : "cannot be set",
			    us->name, k == NULL ? "" : " (set it in [lodge])");
			return 1;
		}
		key_line = &p->key_line[i];
		lim = &us->limits;
		break;
	default:
		abort();
	}

	if (p->lines.kind == INI_LINE_CONTINUATION) {
		/* Only the users list may go on over indented lines: it may
		 * be longer than a line. */
		if (strcmp(key, "users") == 0) {
			conf_set_users(p, key, value, lim, 0);
			return 1;
		}
		conf_err(p, key,
		    "indented line is read as more of the value of '%s' "
		    "(only 'users' may span lines); remove the indentation",
		    key);
		return 1;
	}
	if (*key_line != 0) {
		conf_err(p, key,
		    "set twice (first on line %d); keep only one of them",
		    *key_line);
		return 1;
	}
	*key_line = p->lines.lineno;
	k->set(p, key, value, lim, k->limit_bit);
	if (us != NULL)
		us->set |= k->limit_bit;
	return 1;
}

static void conf_defaults(struct conf_parse *p)
{
	struct conf *conf = p->conf;

	conf->min_uid = 1000;
	conf->apps_dir = conf_strdup(p, "apps_dir", "apps");
	conf->log_dir = conf_strdup(p, "log_dir", "logs/lodge");
	conf->socket_dir = conf_strdup(p, "socket_dir", "/run/lodge/users");
	conf->socket_group = conf_strdup(p, "socket_group", "www-data");
	conf->control_socket =
	    conf_strdup(p, "control_socket", "/run/lodge/control.sock");
	conf->policy =
	    conf_strdup(p, "policy", "/etc/lodge/policy/default.policy");
	conf->worker = conf_strdup(p, "worker", "/usr/sbin/lodge-worker");
	conf->front_group = conf_strdup(p, "front_group", "www-data");
	conf->host_map = conf_strdup(p, "host_map", "/etc/lodge/hosts.map");
	conf->router = conf_strdup(p, "router", "/usr/sbin/lodge-router");
	conf->router_policy = conf_strdup(
	    p, "router_policy", "/etc/lodge/policy/router.policy");
	conf->router_user = conf_strdup(p, "router_user", "lodge");
	conf->route = CONF_ROUTE_HEADER;
	conf->queue_max = 64;
	conf->queue_timeout = 30;
	conf->inflight_max = 64;
	conf->seccomp = CONF_SECCOMP_ENFORCE;
	conf->scheduling = CONF_SCHED_BATCH;
	conf->limits = (struct conf_limits){
	    .processes = 1,
	    .threads = 4,
	    .memory_max = 1ULL << 30,
	    .pids_max = 512,
	    .cpu_weight = 100,
	    .nofile = 1024,
	    .network = CONF_NET_HOST,
	    .request_timeout = 60,
	    .idle_timeout = 600,
	};
}

int conf_parse(const char *name, const char *text, struct conf *conf,
    struct conf_msgs *errs)
{
	struct conf_parse p = {.name = name, .conf = conf, .errs = errs};
	int rc;

	memset(conf, 0, sizeof(*conf));
	p.nerrs_at_start = errs->n + errs->nlost;
	p.lines.text = text;
	p.lines.on_line = conf_on_line;
	p.lines.user = &p;
	conf->path = conf_strdup(&p, "config", name);
	conf_defaults(&p);

	rc = ini_lines_parse(&p.lines, conf_handler, &p);
	if (rc < 0)
		conf_msgs_add(errs, "%s: out of memory", name);
	conf_trusted_check(&p);

	/* [user NAME] limits start from the [lodge] ones, wherever in the
	 * file [lodge] is. */
	for (size_t i = 0; i < conf->nsections; i++) {
		struct conf_user_section *s = &conf->sections[i];
		struct conf_limits l = conf->limits;

		if (s->set & CONF_SET_PROCESSES)
			l.processes = s->limits.processes;
		if (s->set & CONF_SET_THREADS)
			l.threads = s->limits.threads;
		if (s->set & CONF_SET_MEMORY_MAX)
			l.memory_max = s->limits.memory_max;
		if (s->set & CONF_SET_PIDS_MAX)
			l.pids_max = s->limits.pids_max;
		if (s->set & CONF_SET_CPU_WEIGHT)
			l.cpu_weight = s->limits.cpu_weight;
		if (s->set & CONF_SET_NOFILE)
			l.nofile = s->limits.nofile;
		if (s->set & CONF_SET_NETWORK)
			l.network = s->limits.network;
		if (s->set & CONF_SET_REQUEST_TIMEOUT)
			l.request_timeout = s->limits.request_timeout;
		if (s->set & CONF_SET_IDLE_TIMEOUT)
			l.idle_timeout = s->limits.idle_timeout;
		s->limits = l;
	}

	if (errs->n + errs->nlost != p.nerrs_at_start) {
		conf_free(conf);
		return -1;
	}
	return 0;
}

int conf_load(const char *path, struct conf *conf, struct conf_msgs *errs)
{
	struct stat st;
	char *text;
	ssize_t n;
	size_t len = 0;
	int fd;
	int rc;

	memset(conf, 0, sizeof(*conf));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1) {
		conf_msgs_add(
		    errs, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		conf_msgs_add(errs, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (st.st_size > CONF_MAX_SIZE) {
		conf_msgs_add(errs,
		    "%s: larger than %d bytes; is this the "
		    "right file?",
		    path, CONF_MAX_SIZE);
		close(fd);
		return -1;
	}
	text = malloc(CONF_MAX_SIZE + 1);
	if (text == NULL) {
		conf_msgs_add(errs, "%s: out of memory", path);
		close(fd);
		return -1;
	}
	while (len < CONF_MAX_SIZE &&
	       (n = read(fd, text + len, CONF_MAX_SIZE - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			conf_msgs_add(
			    errs, "%s: cannot read: %s", path, strerror(errno));
			free(text);
			close(fd);
			return -1;
		}
		len += (size_t)n;
	}
	close(fd);
	text[len] = '\0';
	if (strlen(text) != len) {
		/* A NUL would end the string early: report its line. */
		int line = 1;

		for (size_t i = 0; i < len && text[i] != '\0'; i++)
			if (text[i] == '\n')
				line++;
		conf_msgs_add(errs,
		    "%s:%d: line contains a NUL byte; remove it", path, line);
		free(text);
		return -1;
	}
	rc = conf_parse(path, text, conf, errs);
	free(text);
	return rc;
}

void conf_free(struct conf *conf)
{
	for (size_t i = 0; i < conf->nentries; i++)
		free(conf->entries[i].name);
	free(conf->entries);
	for (size_t i = 0; i < conf->nsections; i++)
		free(conf->sections[i].name);
	free(conf->sections);
	free(conf->path);
	free(conf->apps_dir);
	free(conf->log_dir);
	free(conf->socket_dir);
	free(conf->socket_group);
	free(conf->control_group);
	free(conf->control_socket);
	free(conf->policy);
	free(conf->worker);
	for (size_t i = 0; i < conf->nfronts; i++)
		free(conf->fronts[i].spec);
	free(conf->front_group);
	free(conf->host_map);
	free(conf->router);
	free(conf->router_policy);
	free(conf->router_user);
	memset(conf, 0, sizeof(*conf));
}

/* ---------------------------------------------------------------------- */
/* Resolving users against the account database */

/* "FILE:LINE: SETTING" or, for a default, "FILE: SETTING (default)". */
static void conf_where(
    char *buf, size_t size, const struct conf *conf, int line, const char *key)
{
	if (line > 0)
		snprintf(buf, size, "%s:%d: %s", conf->path, line, key);
	else
		snprintf(buf, size, "%s: %s (default)", conf->path, key);
}

/* A candidate: a name from the list, with the line that brought it. */
struct conf_cand {
	char *name;
	int line;
	const char *via; /* the @group, or NULL */
};

struct conf_cands {
	struct conf_cand *v;
	size_t n;
};

static int conf_cand_add(
    struct conf_cands *c, const char *name, int line, const char *via)
{
	struct conf_cand *grown;

	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->v[i].name, name) == 0)
			return 0; /* listed twice: the first line wins */
	grown = realloc(c->v, (c->n + 1) * sizeof(*grown));
	if (grown == NULL)
		return -1;
	c->v = grown;
	c->v[c->n].name = strdup(name);
	if (c->v[c->n].name == NULL)
		return -1;
	c->v[c->n].line = line;
	c->v[c->n].via = via;
	c->n++;
	return 0;
}

/* Members of @group: those it lists, and those whose primary group it
 * is (the account database does not list them in the group). */
static int conf_group_members(const struct conf *conf,
    const struct conf_entry *e, struct conf_cands *c, struct conf_msgs *warns)
{
	struct group *gr;
	struct passwd *pw;
	gid_t gid;
	char where[512];

	conf_where(where, sizeof(where), conf, e->line, "users");
	errno = 0;
	gr = getgrnam(e->name);
	if (gr == NULL) {
		conf_msgs_add(warns,
		    "%s: no group '%s' on this system; nobody is hosted "
		    "through it (create the group or remove '@%s')",
		    where, e->name, e->name);
		return 0;
	}
	gid = gr->gr_gid;
	for (char **m = gr->gr_mem; *m != NULL; m++)
		if (conf_cand_add(c, *m, e->line, e->name) < 0)
			return -1;
	setpwent();
	while ((pw = getpwent()) != NULL)
		if (pw->pw_gid == gid &&
		    conf_cand_add(c, pw->pw_name, e->line, e->name) < 0) {
			endpwent();
			return -1;
		}
	endpwent();
	return 0;
}

static bool conf_gid_is_forbidden(
    const struct conf_hosted *h, gid_t gid, const gid_t *deny, size_t ndeny)
{
	if (gid == 0 || gid == h->socket_gid ||
	    (h->has_control_gid && gid == h->control_gid))
		return true;
	for (size_t i = 0; i < ndeny; i++)
		if (gid == deny[i])
			return true;
	return false;
}

static char *conf_join(const char *home, const char *rel)
{
	char *s;
	size_t hl = strlen(home);

	while (hl > 1 && home[hl - 1] == '/')
		hl--;
	if (asprintf(&s, "%.*s/%s", (int)hl, home, rel) < 0)
		return NULL;
	return s;
}

static void conf_user_free(struct conf_user *u)
{
	free(u->name);
	free(u->groups);
	free(u->home);
	free(u->apps_dir);
	free(u->log_dir);
	memset(u, 0, sizeof(*u));
}

/* Looks one candidate up and, if it may be hosted, fills u: 1 hosted,
 * 0 skipped (warned), -1 out of memory. */
static int conf_resolve_user(const struct conf *conf,
    const struct conf_hosted *h, const struct conf_cand *cand,
    const gid_t *deny, size_t ndeny, struct conf_user *u,
    struct conf_msgs *warns)
{
	char where[512];
	char via[CONF_MAX_NAME + 16] = "";
	struct passwd *pw;
	gid_t *groups = NULL;
	int ngroups = 64;
	int n = 0;

	conf_where(where, sizeof(where), conf, cand->line, "users");
	if (cand->via != NULL)
		snprintf(via, sizeof(via), " (member of @%s)", cand->via);
	errno = 0;
	pw = getpwnam(cand->name);
	if (pw == NULL) {
		conf_msgs_add(warns,
		    "%s: no user '%s'%s on this system; not hosted (remove "
		    "the name or create the account)",
		    where, cand->name, via);
		return 0;
	}
	if (pw->pw_uid == 0 || pw->pw_uid < conf->min_uid ||
	    pw->pw_uid == CONF_OVERFLOW_UID) {
		conf_msgs_add(warns,
		    "%s: user '%s'%s has uid %u, %s; never hosted", where,
		    cand->name, via, (unsigned)pw->pw_uid,
		    pw->pw_uid == 0 ? "root"
		    : pw->pw_uid == CONF_OVERFLOW_UID
		        ? "the overflow uid (nobody)"
		        : "below min_uid (a system account)");
		return 0;
	}
	if (pw->pw_dir == NULL || pw->pw_dir[0] != '/' ||
	    strcmp(pw->pw_dir, "/") == 0 || conf_has_dotdot(pw->pw_dir)) {
		conf_msgs_add(warns,
		    "%s: user '%s'%s has home '%s', not an absolute path of "
		    "its own; not hosted (usermod -d)",
		    where, cand->name, via, pw->pw_dir ? pw->pw_dir : "");
		return 0;
	}
	if (conf_gid_is_forbidden(h, pw->pw_gid, deny, ndeny)) {
		conf_msgs_add(warns,
		    "%s: user '%s'%s has primary group %u (root, the web "
		    "server's or an administrative group); not hosted "
		    "(usermod -g)",
		    where, cand->name, via, (unsigned)pw->pw_gid);
		return 0;
	}

	/* The supplementary groups, filtered: the ones that would give the
	 * worker the web server's sockets, root's files or the logs are
	 * dropped, the primary group stays (CVE-2022-36109). */
	for (;;) {
		gid_t *grown = realloc(groups, (size_t)ngroups * sizeof(gid_t));
		int got = ngroups;

		if (grown == NULL) {
			free(groups);
			return -1;
		}
		groups = grown;
		if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &got) >= 0) {
			ngroups = got;
			break;
		}
		if (got <= ngroups)
			got = ngroups * 2;
		if (got > 65536) {
			free(groups);
			return -1;
		}
		ngroups = got;
	}
	for (int i = 0; i < ngroups; i++) {
		bool is_dup = false;

		for (int j = 0; j < n; j++)
			is_dup |= groups[j] == groups[i];
		if (!is_dup &&
		    !conf_gid_is_forbidden(h, groups[i], deny, ndeny))
			groups[n++] = groups[i];
	}

	memset(u, 0, sizeof(*u));
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	u->groups = groups;
	u->ngroups = n;
	u->name = strdup(pw->pw_name);
	u->home = strdup(pw->pw_dir);
	u->apps_dir = conf_join(pw->pw_dir, conf->apps_dir);
	u->log_dir = conf_join(pw->pw_dir, conf->log_dir);
	u->limits = conf->limits;
	for (size_t i = 0; i < conf->nsections; i++)
		if (strcmp(conf->sections[i].name, pw->pw_name) == 0)
			u->limits = conf->sections[i].limits;
	if (u->name == NULL || u->home == NULL || u->apps_dir == NULL ||
	    u->log_dir == NULL) {
		conf_user_free(u);
		return -1;
	}
	return 1;
}

static int conf_user_cmp(const void *a, const void *b)
{
	return strcmp(((const struct conf_user *)a)->name,
	    ((const struct conf_user *)b)->name);
}

int conf_resolve(const struct conf *conf, struct conf_hosted *h,
    struct conf_msgs *errs, struct conf_msgs *warns)
{
	static const char *const deny_names[] = {
	    "lodge", "adm", "shadow", "disk", "sudo", "www-data"};
	gid_t deny[sizeof(deny_names) / sizeof(deny_names[0])];
	struct conf_cands cands = {0};
	char where[512];
	struct group *gr;
	size_t ndeny = 0;
	size_t nerrs = errs->n + errs->nlost;

	memset(h, 0, sizeof(*h));
	conf_where(where, sizeof(where), conf, conf->line_socket_group,
	    "socket_group");
	gr = getgrnam(conf->socket_group);
	if (gr == NULL)
		conf_msgs_add(errs,
		    "%s: no group '%s' on this system; name the web server's "
		    "group (Debian's Apache: www-data)",
		    where, conf->socket_group);
	else
		h->socket_gid = gr->gr_gid;
	if (conf->control_group != NULL) {
		conf_where(where, sizeof(where), conf, conf->line_control_group,
		    "control_group");
		gr = getgrnam(conf->control_group);
		if (gr == NULL) {
			conf_msgs_add(errs,
			    "%s: no group '%s' on this system; create it "
			    "(groupadd %s) or leave control_group empty",
			    where, conf->control_group, conf->control_group);
		} else {
			h->has_control_gid = true;
			h->control_gid = gr->gr_gid;
		}
	}
	if (conf->nfronts > 0) {
		struct passwd *pw;

		conf_where(where, sizeof(where), conf, conf->line_front_group,
		    "front_group");
		gr = getgrnam(conf->front_group);
		if (gr == NULL)
			conf_msgs_add(errs,
			    "%s: no group '%s' on this system; name the web "
			    "server's group (Debian's Apache: www-data)",
			    where, conf->front_group);
		else
			h->front_gid = gr->gr_gid;
		conf_where(where, sizeof(where), conf, conf->line_router_user,
		    "router_user");
		pw = getpwnam(conf->router_user);
		if (pw == NULL)
			conf_msgs_add(errs,
			    "%s: no user '%s' on this system; create it "
			    "(adduser --system --group --no-create-home %s)",
			    where, conf->router_user, conf->router_user);
		else if (pw->pw_uid == 0 || pw->pw_gid == 0)
			conf_msgs_add(errs,
			    "%s: '%s' is root or in group root; the router "
			    "must run as an unprivileged user of its own",
			    where, conf->router_user);
		else {
			h->router_uid = pw->pw_uid;
			h->router_gid = pw->pw_gid;
		}
	}
	if (errs->n + errs->nlost != nerrs)
		return -1;
	for (size_t i = 0; i < sizeof(deny_names) / sizeof(deny_names[0]); i++)
		if ((gr = getgrnam(deny_names[i])) != NULL)
			deny[ndeny++] = gr->gr_gid;

	for (size_t i = 0; i < conf->nentries; i++) {
		const struct conf_entry *e = &conf->entries[i];
		int rc = e->is_group
		             ? conf_group_members(conf, e, &cands, warns)
		             : conf_cand_add(&cands, e->name, e->line, NULL);

		if (rc < 0)
			goto oom;
	}
	h->users = calloc(cands.n + 1, sizeof(*h->users));
	if (h->users == NULL)
		goto oom;
	for (size_t i = 0; i < cands.n; i++) {
		int rc = conf_resolve_user(conf, h, &cands.v[i], deny, ndeny,
		    &h->users[h->nusers], warns);

		if (rc < 0)
			goto oom;
		h->nusers += (size_t)rc;
	}
	qsort(h->users, h->nusers, sizeof(*h->users), conf_user_cmp);

	for (size_t i = 0; i < conf->nsections; i++) {
		const struct conf_user_section *s = &conf->sections[i];
		bool is_hosted = false;

		for (size_t j = 0; j < h->nusers; j++)
			is_hosted |= strcmp(h->users[j].name, s->name) == 0;
		if (!is_hosted)
			conf_msgs_add(warns,
			    "%s:%d: [user %s]: '%s' is not hosted (not in "
			    "users, or refused above); the section has no "
			    "effect",
			    conf->path, s->line, s->name, s->name);
	}
	if (h->nusers == 0)
		conf_msgs_add(warns,
		    "%s: users: nobody is hosted; list users "
		    "or @groups in [lodge], like 'users = alice @webusers'",
		    conf->path);
	for (size_t i = 0; i < cands.n; i++)
		free(cands.v[i].name);
	free(cands.v);
	return 0;

oom:
	conf_msgs_add(errs, "%s: users: out of memory", conf->path);
	for (size_t i = 0; i < cands.n; i++)
		free(cands.v[i].name);
	free(cands.v);
	conf_hosted_free(h);
	return -1;
}

void conf_hosted_free(struct conf_hosted *h)
{
	for (size_t i = 0; i < h->nusers; i++)
		conf_user_free(&h->users[i]);
	free(h->users);
	memset(h, 0, sizeof(*h));
}

bool conf_user_equal(const struct conf_user *a, const struct conf_user *b)
{
	return strcmp(a->name, b->name) == 0 && a->uid == b->uid &&
	       a->gid == b->gid && a->ngroups == b->ngroups &&
	       memcmp(a->groups, b->groups,
	           (size_t)a->ngroups * sizeof(gid_t)) == 0 &&
	       strcmp(a->home, b->home) == 0 &&
	       strcmp(a->apps_dir, b->apps_dir) == 0 &&
	       strcmp(a->log_dir, b->log_dir) == 0 &&
	       a->limits.processes == b->limits.processes &&
	       a->limits.threads == b->limits.threads &&
	       a->limits.memory_max == b->limits.memory_max &&
	       a->limits.pids_max == b->limits.pids_max &&
	       a->limits.cpu_weight == b->limits.cpu_weight &&
	       a->limits.nofile == b->limits.nofile &&
	       a->limits.network == b->limits.network &&
	       a->limits.request_timeout == b->limits.request_timeout &&
	       a->limits.idle_timeout == b->limits.idle_timeout;
}
