/*
 * config.h: lodged's configuration, /etc/lodge/lodge.conf (INI, libinih).
 * Two separate steps: conf_parse() is pure (a string in, a struct conf and
 * every error out: nothing is looked up), and conf_resolve() turns the
 * users list into accounts with getpwnam/getgrnam/getgrouplist (NSS; it
 * opens no path inside any home).  Runs in lodged, as root.
 *
 *   [lodge]
 *   users = alice, bob @webusers      ; names and @groups
 *   min_uid = 1000                    ; uid 0 and uids below: never hosted
 *   apps_dir = apps                   ; relative to each home
 *   log_dir = logs/lodge              ; relative to each home
 *   socket_dir = /run/lodge/users     ; NAME.sock per user
 *   socket_group = www-data           ; the web server's group
 *   control_group =                   ; may use the control socket
 *   control_socket = /run/lodge/control.sock  ; lodgectl's
 *   policy = /etc/lodge/policy/default.policy
 *   seccomp = enforce | log | kill
 *   scheduling = batch | normal       ; workers' and router's policy
 *   network = host | loopback
 *   worker = /usr/sbin/lodge-worker
 *   processes = 1   threads = 4   memory_max = 1G   pids_max = 512
 *   cpu_weight = 100   nofile = 1024   request_timeout = 60
 *   idle_timeout = 600                ; 0: never stop an idle worker
 *
 *   front = http:unix:/run/lodge/http.sock, uwsgi:tcp:127.0.0.1:8091
 *   front_group = www-data            ; group of the Unix front sockets
 *   front_trusted = http:unix:/run/lodge/http.sock  ; X-Forwarded-* ok
 *   route = header | host | var       ; where USER/APP comes from
 *   host_map = /etc/lodge/hosts.map   ; route = host: "HOST USER/APP"
 *   router = /usr/sbin/lodge-router   router_user = lodge
 *   router_policy = /etc/lodge/policy/router.policy
 *   queue_max = 64   queue_timeout = 30   inflight_max = 64  ; per user
 *
 *   [user alice]                      ; per-user limits
 *   processes = 2
 *   network = loopback
 *
 * Every error reads "FILE:LINE: SETTING: what is wrong; what to write".
 */
#ifndef LODGE_CONFIG_H
#define LODGE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

#define CONF_DEFAULT_PATH "/etc/lodge/lodge.conf"
#define CONF_MAX_PROCESSES 64
#define CONF_MAX_THREADS 256
#define CONF_MAX_NAME 32        /* user and group names */
#define CONF_MAX_SIZE (1 << 20) /* the config file, bytes */

enum conf_network { CONF_NET_HOST = 0, CONF_NET_LOOPBACK };
enum conf_seccomp {
	CONF_SECCOMP_ENFORCE = 0,
	CONF_SECCOMP_LOG,
	CONF_SECCOMP_KILL
};
/* The Linux scheduling policy of the router and the workers: batch
 * (SCHED_BATCH, the default) or normal (SCHED_OTHER). */
enum conf_sched { CONF_SCHED_BATCH = 0, CONF_SCHED_NORMAL };

/* The limits of a user's workers: the [lodge] defaults, overridden field
 * by field in [user NAME].  Sizes in bytes; 0 in memory_max, pids_max:
 * no limit ("max"); idle_timeout 0: never stop an idle worker. */
struct conf_limits {
	unsigned processes;
	unsigned threads;
	uint64_t memory_max;
	uint64_t pids_max;
	uint64_t cpu_weight;
	uint64_t nofile;
	enum conf_network network;
	unsigned request_timeout;
	unsigned idle_timeout;
};

/* Bits of conf_user_section.set: which limits the section sets. */
enum {
	CONF_SET_PROCESSES = 1 << 0,
	CONF_SET_THREADS = 1 << 1,
	CONF_SET_MEMORY_MAX = 1 << 2,
	CONF_SET_PIDS_MAX = 1 << 3,
	CONF_SET_CPU_WEIGHT = 1 << 4,
	CONF_SET_NOFILE = 1 << 5,
	CONF_SET_NETWORK = 1 << 6,
	CONF_SET_REQUEST_TIMEOUT = 1 << 7,
	CONF_SET_IDLE_TIMEOUT = 1 << 8,
};

#define CONF_MAX_FRONTS 8

enum conf_front_kind { CONF_FRONT_HTTP = 0, CONF_FRONT_UWSGI };
enum conf_route { CONF_ROUTE_HEADER = 0, CONF_ROUTE_HOST, CONF_ROUTE_VAR };

/* One front listener of the router: "http:unix:/run/lodge/http.sock". */
struct conf_front {
	char *spec; /* as written */
	enum conf_front_kind kind;
	struct util_listen_spec ls;
	bool is_trusted; /* X-Forwarded-* headers are believed */
};

/* One item of users = : a user name or an @group, and its line. */
struct conf_entry {
	char *name; /* without the '@' */
	bool is_group;
	int line;
};

struct conf_user_section {
	char *name;
	int line;
	unsigned set; /* CONF_SET_* */
	struct conf_limits limits;
};

struct conf {
	char *path; /* as shown in messages */
	struct conf_entry *entries;
	size_t nentries;
	uid_t min_uid;
	char *apps_dir;
	char *log_dir;
	char *socket_dir;
	char *socket_group;
	char *control_group; /* NULL: none */
	char *control_socket; /* lodgectl's socket */
	char *policy;
	enum conf_seccomp seccomp;
	enum conf_sched scheduling;
	char *worker;
	struct conf_limits limits;
	struct conf_user_section *sections;
	size_t nsections;
	/* The router; nfronts 0: no router (per-user sockets only). */
	struct conf_front fronts[CONF_MAX_FRONTS];
	size_t nfronts;
	char *front_group;
	enum conf_route route;
	char *host_map;
	char *router;
	char *router_policy;
	char *router_user;
	unsigned queue_max;
	unsigned queue_timeout;
	unsigned inflight_max;
	/* Lines of settings checked later by conf_resolve (0: default). */
	int line_min_uid;
	int line_socket_group;
	int line_control_group;
	int line_front_group;
	int line_router_user;
};

/* A list of messages (errors or warnings); the owner frees it with
 * conf_msgs_free.  Adding never fails visibly: out of memory, the message
 * is replaced by a counter shown by the caller. */
struct conf_msgs {
	char **msgs;
	size_t n;
	size_t nlost;
};

void conf_msgs_add(struct conf_msgs *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void conf_msgs_free(struct conf_msgs *m);

/*
 * Parses text (the content of the file named name) into conf.  Returns 0,
 * or -1 with every error appended to errs (conf then holds nothing to
 * free).  Pure.  On 0 the caller frees conf with conf_free.
 */
int conf_parse(const char *name, const char *text, struct conf *conf,
    struct conf_msgs *errs);

/* Reads path (a regular file, at most CONF_MAX_SIZE bytes) and parses it
 * as conf_parse does; a file that cannot be read is one error. */
int conf_load(const char *path, struct conf *conf, struct conf_msgs *errs);

void conf_free(struct conf *conf);

/* A hosted user, resolved: everything a worker's birth needs. */
struct conf_user {
	char *name;
	uid_t uid;
	gid_t gid;
	gid_t *groups; /* supplementary groups, filtered (never 0, the
	                  socket or control group, lodge, adm) */
	int ngroups;
	char *home;
	char *apps_dir; /* HOME/apps_dir */
	char *log_dir;  /* HOME/log_dir */
	struct conf_limits limits;
};

struct conf_hosted {
	struct conf_user *users; /* sorted by name, no duplicates */
	size_t nusers;
	gid_t socket_gid;
	bool has_control_gid;
	gid_t control_gid;
	/* Resolved when conf has fronts: */
	gid_t front_gid;
	uid_t router_uid;
	gid_t router_gid;
};

/*
 * Resolves conf's users list against the account database.  Errors (the
 * socket or control group does not exist) make it return -1 (h holds
 * nothing then).  A listed user who cannot be hosted (no such account,
 * uid 0 or below min_uid, uid 65534, home not absolute, primary group 0
 * or the socket group) is skipped with a warning: one deleted account
 * must not keep everyone else's sites down.  Runs as root; NSS only.
 * On 0 the caller frees h with conf_hosted_free.
 */
int conf_resolve(const struct conf *conf, struct conf_hosted *h,
    struct conf_msgs *errs, struct conf_msgs *warns);

void conf_hosted_free(struct conf_hosted *h);

/* True if the two users' workers would be started the same way (ids,
 * groups, home, dirs, limits).  Pure. */
bool conf_user_equal(const struct conf_user *a, const struct conf_user *b);

#endif
