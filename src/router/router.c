/*
 * router.c: lodge-router's start, options, event loop, timers, signals
 * and its channel to lodged.  lodge-router is exec'd by lodged as the
 * unprivileged "lodge" user, without capabilities, under seccomp
 * (policy/router.policy), in namespaces of its own; every descriptor it
 * uses (the front listeners, the lodged channel, later the workers'
 * channels) is handed to it, so it never opens a socket or a path other
 * than the host map.  It must never need a privilege, never block (one
 * thread serves every user, so a wait on one peer would be a wait for
 * all), and never trust a byte from a client or a worker.  Its log goes
 * to stderr, a pipe lodged reads.
 *
 * lodged is the one peer it trusts: a channel from lodged that closes or
 * sends garbage ends the process (exit 1), and lodged starts a new
 * router, which finds the workers' channels again through lodged.
 */
#include "router.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "msg.h"
#include "util.h"

/* Descriptors the router needs besides its connections: listeners, the
 * lodged channel, epoll, signalfd, workers' channels, the host map. */
#define ROUTER_FD_RESERVE 256

/* The process's context (STYLE.md rule 7); main hands out its address. */
static struct router router_ctx;

void list_init(struct list_node *head)
{
	head->prev = head->next = head;
}

bool list_is_empty(const struct list_node *head)
{
	return head->next == head;
}

void list_append(struct list_node *head, struct list_node *n)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

void list_remove(struct list_node *n)
{
	if (n->next == NULL || n->next == n)
		return;
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

int router_poll(
    struct router *r, int op, int fd, uint32_t events, struct ev *ev)
{
	struct epoll_event e = {.events = events, .data.ptr = ev};

	if (epoll_ctl(r->epfd, op, fd, &e) < 0) {
		log_error("router: epoll_ctl(%d) on descriptor %d: %s", op, fd,
		    strerror(errno));
		return -1;
	}
	return 0;
}

int router_tell_lodged(
    struct router *r, enum msg_type type, const void *payload, size_t len)
{
	if (msg_send(r->opts.lodged_fd, type, payload, len, -1) == 0)
		return 0;
	if (errno == EAGAIN) {
		/* lodged is not reading.  Dropping is safe: a START is asked
		 * again while requests wait, and a BADPEER's worker is also
		 * seen dying by lodged itself. */
		log_warn("router: lodged channel full; message %d dropped",
		    (int)type);
		return -1;
	}
	log_error("router: lodged channel: %s; exiting (lodged restarts "
	          "the router)",
	    strerror(errno));
	exit(1);
}

static void usage(FILE *out)
{
	static const char text[] =
	    "usage: lodge-router --lodged-fd N --listen FD:KIND[:trusted] ...\n"
	    "         [--route header|host|var] [--host-map PATH]\n"
	    "         [--queue-max N] [--inflight-max N] [--queue-timeout S]\n"
	    "         [--head-timeout S] [--max-conns N] [--verbose]\n"
	    "\n"
	    "The front socket of lodge: reads each request's head, finds its\n"
	    "route (USER/APP) and hands the connection to one of that user's\n"
	    "workers.  Started by lodged, which passes every descriptor.\n"
	    "\n"
	    "  --lodged-fd N        the SOCK_SEQPACKET channel to lodged\n"
	    "  --listen FD:KIND[:trusted]\n"
	    "                       a listening socket (up to 8); KIND http\n"
	    "                       or uwsgi; trusted: its X-Forwarded-*\n"
	    "                       headers are the front end's\n"
	    "  --route SOURCE       header (X-Lodge-App, the default), host\n"
	    "                       (the host map) or var (uwsgi LODGE_APP;\n"
	    "                       http listeners: the header)\n"
	    "  --host-map PATH      lines 'HOST USER/APP'; read on SIGHUP\n"
	    "  --queue-max N        requests waiting per user (64) -> 503\n"
	    "  --inflight-max N     requests in flight per user (64)\n"
	    "  --queue-timeout S    longest wait for a worker (30) -> 504\n"
	    "  --head-timeout S     longest wait for a request head (10)\n"
	    "  --max-conns N        open front connections (4096)\n"
	    "  --verbose            debug lines in the log\n"
	    "  --version, --help\n";

	fputs(text, out);
}

/* A whole number option in [min,max], or fatal. */
static unsigned opt_uint(
    const char *name, const char *arg, unsigned min, unsigned max)
{
	uint64_t v;

	if (util_parse_u64(arg, min, max, false, &v) < 0)
		fatal("lodge-router: --%s %s: expected a whole number from %u "
		      "to %u",
		    name, arg, min, max);
	return (unsigned)v;
}

/* "FD:http", "FD:uwsgi:trusted", ... */
static void opt_listen(struct router *r, const char *arg)
{
	char kind[16];
	const char *colon = strchr(arg, ':'), *rest, *flag;
	enum listener_kind k;
	bool is_trusted = false;
	const char *why;
	uint64_t fd;
	size_t klen;
	char num[16];

	if (r->nlisteners == ROUTER_MAX_LISTENERS)
		fatal("lodge-router: more than %d --listen",
		    ROUTER_MAX_LISTENERS);
	if (colon == NULL || (size_t)(colon - arg) >= sizeof(num))
		fatal("lodge-router: --listen %s: expected FD:KIND[:trusted]",
		    arg);
	memcpy(num, arg, (size_t)(colon - arg));
	num[colon - arg] = '\0';
	if (util_parse_u64(num, 0, 1 << 20, false, &fd) < 0)
		fatal("lodge-router: --listen %s: bad descriptor number", arg);
	rest = colon + 1;
	flag = strchr(rest, ':');
	klen = flag != NULL ? (size_t)(flag - rest) : strlen(rest);
	if (klen >= sizeof(kind))
		fatal("lodge-router: --listen %s: unknown kind", arg);
	memcpy(kind, rest, klen);
	kind[klen] = '\0';
	if (strcmp(kind, "http") == 0)
		k = LISTENER_HTTP;
	else if (strcmp(kind, "uwsgi") == 0)
		k = LISTENER_UWSGI;
	else
		fatal(
		    "lodge-router: --listen %s: kind '%s' is neither http nor "
		    "uwsgi",
		    arg, kind);
	if (flag != NULL) {
		if (strcmp(flag + 1, "trusted") != 0)
			fatal("lodge-router: --listen %s: unknown flag '%s' "
			      "(only "
			      "'trusted')",
			    arg, flag + 1);
		is_trusted = true;
	}
	for (size_t i = 0; i < r->nlisteners; i++)
		if (r->listeners[i].fd == (int)fd)
			fatal("lodge-router: --listen %s: descriptor %d given "
			      "twice",
			    arg, (int)fd);
	if (front_listener_init(
	        &r->listeners[r->nlisteners], (int)fd, k, is_trusted, &why) < 0)
		fatal("lodge-router: --listen %s: %s", arg, why);
	r->nlisteners++;
}

static void parse_args(struct router *r, int argc, char **argv)
{
	enum {
		O_LODGED = 256,
		O_LISTEN,
		O_ROUTE,
		O_MAP,
		O_QMAX,
		O_IMAX,
		O_QTIME,
		O_HTIME,
		O_MAXC,
		O_VERBOSE,
		O_HELP,
		O_VERSION
	};
	static const struct option longopts[] = {
	    {"lodged-fd", required_argument, NULL, O_LODGED},
	    {"listen", required_argument, NULL, O_LISTEN},
	    {"route", required_argument, NULL, O_ROUTE},
	    {"host-map", required_argument, NULL, O_MAP},
	    {"queue-max", required_argument, NULL, O_QMAX},
	    {"inflight-max", required_argument, NULL, O_IMAX},
	    {"queue-timeout", required_argument, NULL, O_QTIME},
	    {"head-timeout", required_argument, NULL, O_HTIME},
	    {"max-conns", required_argument, NULL, O_MAXC},
	    {"verbose", no_argument, NULL, O_VERBOSE},
	    {"help", no_argument, NULL, O_HELP},
	    {"version", no_argument, NULL, O_VERSION},
	    {NULL, 0, NULL, 0},
	};
	struct router_opts *o = &r->opts;
	const char **listen_args = NULL;
	size_t nlisten = 0;
	int opt;

	o->lodged_fd = -1;
	o->route = ROUTE_FROM_HEADER;
	o->queue_max = 64;
	o->inflight_max = 64;
	o->queue_timeout_s = 30;
	o->head_timeout_s = 10;
	o->max_conns = 4096;
	listen_args = calloc((size_t)argc, sizeof(*listen_args));
	if (listen_args == NULL)
		fatal("lodge-router: out of memory");
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case O_LODGED:
			o->lodged_fd =
			    (int)opt_uint("lodged-fd", optarg, 0, 1 << 20);
			break;
		case O_LISTEN:
			listen_args[nlisten++] = optarg;
			break;
		case O_ROUTE:
			if (strcmp(optarg, "header") == 0)
				o->route = ROUTE_FROM_HEADER;
			else if (strcmp(optarg, "host") == 0)
				o->route = ROUTE_FROM_HOST;
			else if (strcmp(optarg, "var") == 0)
				o->route = ROUTE_FROM_VAR;
			else
				fatal("lodge-router: --route %s: expected "
				      "header, "
				      "host or var",
				    optarg);
			break;
		case O_MAP:
			o->host_map_path = optarg;
			break;
		case O_QMAX:
			o->queue_max =
			    opt_uint("queue-max", optarg, 1, 1000000);
			break;
		case O_IMAX:
			o->inflight_max =
			    opt_uint("inflight-max", optarg, 1, 1000000);
			break;
		case O_QTIME:
			o->queue_timeout_s =
			    opt_uint("queue-timeout", optarg, 1, 86400);
			break;
		case O_HTIME:
			o->head_timeout_s =
			    opt_uint("head-timeout", optarg, 1, 86400);
			break;
		case O_MAXC:
			o->max_conns =
			    opt_uint("max-conns", optarg, 1, 10000000);
			break;
		case O_VERBOSE:
			o->is_verbose = true;
			break;
		case O_HELP:
			usage(stdout);
			exit(0);
		case O_VERSION:
			printf("lodge-router %s (protocol %d)\n", LODGE_VERSION,
			    LODGE_PROTO_VERSION);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc)
		fatal("lodge-router: unexpected argument '%s'", argv[optind]);
	log_init("lodge-router", o->is_verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	if (o->lodged_fd < 0)
		fatal(
		    "lodge-router: --lodged-fd is required (lodged starts the "
		    "router)");
	if (nlisten == 0)
		fatal("lodge-router: at least one --listen is required");
	for (size_t i = 0; i < nlisten; i++)
		opt_listen(r, listen_args[i]);
	free(listen_args);
	if (o->route == ROUTE_FROM_HOST && o->host_map_path == NULL)
		fatal("lodge-router: --route host needs --host-map PATH");
}

/* The lodged channel: a connected SOCK_SEQPACKET socket, non-blocking. */
static void lodged_setup(struct router *r)
{
	int fd = r->opts.lodged_fd, type = 0;
	socklen_t sl = sizeof(type);
	struct msg_hello hello = {LODGE_PROTO_VERSION, (uint32_t)getpid()};

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl) < 0 ||
	    type != SOCK_SEQPACKET)
		fatal("lodge-router: --lodged-fd %d is not a SOCK_SEQPACKET "
		      "socket",
		    fd);
	if (util_set_nonblock(fd, true) < 0)
		fatal("lodge-router: --lodged-fd %d: %s", fd, strerror(errno));
	r->lodged_ev.kind = EV_LODGED;
	if (router_poll(r, EPOLL_CTL_ADD, fd, EPOLLIN, &r->lodged_ev) < 0)
		exit(1);
	if (msg_send(fd, MSG_HELLO, &hello, sizeof(hello), -1) < 0)
		fatal("lodge-router: HELLO to lodged: %s", strerror(errno));
}

/* A message from lodged: WORKER, NOUSER or FAILED, anything else ends
 * the router. */
static void lodged_event(struct router *r)
{
	for (int i = 0; i < 64; i++) {
		char name[MSG_MAX_USER + 1];
		const char *why = NULL;
		struct msg m;
		struct msg_worker mw;
		int rc = msg_recv(
		    r->opts.lodged_fd, r->msgbuf, r->msgbuf_size, &m, &why);

		if (rc == -1 && errno == EAGAIN)
			return;
		if (rc == -1) {
			log_error("router: lodged channel: %s; exiting",
			    strerror(errno));
			exit(1);
		}
		if (rc == 0) {
			log_error("router: lodged closed its channel; exiting");
			exit(1);
		}
		if (rc == -2) {
			log_error("router: lodged sent a bad message (%s); "
			          "exiting",
			    why);
			exit(1);
		}
		switch (m.type) {
		case MSG_WORKER:
			memcpy(&mw, m.payload, sizeof(mw));
			if (mw.id == 0) {
				close(m.fd);
				log_error(
				    "router: lodged sent a WORKER with id 0; "
				    "exiting");
				exit(1);
			}
			memcpy(
			    name, m.payload + sizeof(mw), m.len - sizeof(mw));
			name[m.len - sizeof(mw)] = '\0';
			backend_worker_new(r, mw.id, name, m.fd);
			break;
		case MSG_NOUSER:
			memcpy(name, m.payload, m.len);
			name[m.len] = '\0';
			backend_user_failed(
			    r, name, 404, "lodged: not a hosted user");
			break;
		case MSG_FAILED:
			memcpy(name, m.payload, m.len);
			name[m.len] = '\0';
			backend_user_failed(r, name, 502,
			    "lodged: no worker can be started now");
			break;
		default:
			if (m.fd >= 0)
				close(m.fd);
			log_error("router: lodged sent an unexpected message "
			          "(type %d); exiting",
			    (int)m.type);
			exit(1);
		}
	}
}

static void host_map_error(
    void *arg, const char *file, int line, const char *why)
{
	(void)arg;
	log_error("router: %s:%d: %s; line skipped", file, line, why);
}

/* Reads the host map; at start a map that cannot be read is fatal, on
 * SIGHUP the old map stays. */
static void host_map_load(struct router *r, bool is_start)
{
	struct route_map *m;

	if (r->opts.host_map_path == NULL)
		return;
	if (route_map_load(r->opts.host_map_path, host_map_error, NULL, &m) <
	    0) {
		if (is_start)
			fatal("lodge-router: host map %s: %s",
			    r->opts.host_map_path, strerror(errno));
		log_error("router: host map %s: %s; the old map (%zu hosts) "
		          "stays",
		    r->opts.host_map_path, strerror(errno),
		    route_map_size(r->host_map));
		return;
	}
	route_map_free(r->host_map);
	r->host_map = m;
	log_info("router: host map %s: %zu hosts", r->opts.host_map_path,
	    route_map_size(m));
}

static void stop_begin(struct router *r, int signo)
{
	if (r->is_stopping)
		return;
	log_info("router: %s: no new connections; finishing what is queued "
	         "(at most %d s)",
	    strsignal(signo), ROUTER_STOP_MS / 1000);
	r->is_stopping = true;
	r->stop_deadline = util_now_ms() + ROUTER_STOP_MS;
	front_accept_pause(r);
}

static void signal_event(struct router *r)
{
	struct signalfd_siginfo si;

	while (read(r->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			host_map_load(r, false);
			break;
		case SIGTERM:
		case SIGINT:
			stop_begin(r, (int)si.ssi_signo);
			break;
		default:
			break;
		}
	}
}

/*
 * The descriptor limit: raised to the hard limit (no privilege needed),
 * and max-conns lowered to fit in it, so running out of descriptors is
 * the exception EMFILE handling covers, not the rule.
 */
static void fd_limit_setup(struct router *r)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)r->opts.max_conns + 2 * ROUTER_FD_RESERVE) {
		unsigned fit =
		    rl.rlim_cur > 2 * ROUTER_FD_RESERVE
		        ? (unsigned)(rl.rlim_cur - 2 * ROUTER_FD_RESERVE)
		        : 16;

		log_warn("router: descriptor limit %llu: --max-conns lowered "
		         "from %u to %u",
		    (unsigned long long)rl.rlim_cur, r->opts.max_conns, fit);
		r->opts.max_conns = fit;
	}
}

static void signals_setup(struct router *r)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		fatal("lodge-router: sigprocmask: %s", strerror(errno));
	r->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (r->sigfd < 0)
		fatal("lodge-router: signalfd: %s", strerror(errno));
	/* Writes to a closed connection give EPIPE, not death. */
	signal(SIGPIPE, SIG_IGN);
	r->signal_ev.kind = EV_SIGNAL;
	if (router_poll(r, EPOLL_CTL_ADD, r->sigfd, EPOLLIN, &r->signal_ev) < 0)
		exit(1);
}

static int64_t earliest(int64_t a, int64_t b)
{
	if (a == 0)
		return b;
	if (b == 0)
		return a;
	return a < b ? a : b;
}

/* True once a stopping router has nothing left to hand over. */
static bool stop_is_done(struct router *r, int64_t now)
{
	if (!r->is_stopping)
		return false;
	if (now >= r->stop_deadline) {
		backend_flush(r, 503, "the router is stopping");
		return true;
	}
	return list_is_empty(&r->heads) && list_is_empty(&r->queued);
}

static void run(struct router *r)
{
	struct epoll_event evs[64];

	for (;;) {
		int64_t now = util_now_ms(), next = 0;
		int n, timeout = -1;

		if (r->accept_pause_until != 0 &&
		    now >= r->accept_pause_until) {
			r->accept_pause_until = 0;
			if (!r->is_stopping)
				front_accept_resume(r);
		}
		next = earliest(next, front_timers(r, now));
		next = earliest(next, backend_timers(r, now));
		next = earliest(next, backend_report(r, now, false));
		next = earliest(next, r->accept_pause_until);
		if (r->is_stopping)
			next = earliest(next, r->stop_deadline);
		front_reap(r);
		backend_reap(r);
		if (stop_is_done(r, now)) {
			(void)backend_report(r, now, true);
			log_info("router: stopped");
			return;
		}
		if (next != 0)
			timeout = next <= now ? 0 : (int)(next - now);
		n = epoll_wait(r->epfd, evs, 64, timeout);
		if (n < 0 && errno != EINTR)
			fatal("lodge-router: epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			struct ev *ev = evs[i].data.ptr;

			switch (ev->kind) {
			case EV_LISTENER:
				front_listener_event(r, (struct listener *)ev);
				break;
			case EV_CONN:
				front_conn_event(
				    r, (struct conn *)ev, evs[i].events);
				break;
			case EV_WORKER:
				backend_worker_event(
				    r, (struct worker *)ev, evs[i].events);
				break;
			case EV_LODGED:
				lodged_event(r);
				break;
			case EV_SIGNAL:
				signal_event(r);
				break;
			case EV_DEAD:
				break;
			}
		}
		front_reap(r);
		backend_reap(r);
	}
}

int main(int argc, char **argv)
{
	struct router *r = &router_ctx;
	uint32_t seed;

	log_init("lodge-router", LOG_LVL_INFO);
	/* Nobody may read this process's memory (the requests that pass
	 * through it), not even a process of the same user. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fatal("lodge-router: prctl(PR_SET_DUMPABLE): %s",
		    strerror(errno));
	list_init(&r->heads);
	list_init(&r->queued);
	list_init(&r->lingers);
	list_init(&r->workers);
	list_init(&r->dead_conns);
	list_init(&r->dead_workers);
	r->sigfd = -1;
	parse_args(r, argc, argv);
	fd_limit_setup(r);
	r->msgbuf_size = sizeof(struct msg_hdr) + MSG_MAX_PAYLOAD;
	r->msgbuf = malloc(r->msgbuf_size);
	if (r->msgbuf == NULL)
		fatal("lodge-router: out of memory");
	/* Connection ids start at a random point, so that a DONE a worker
	 * still sends for a connection of the previous router is unlikely to
	 * name one of ours (it is ignored when it names none). */
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (uint32_t)util_wall_ns() ^ (uint32_t)getpid();
	r->next_id = seed;
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0)
		fatal("lodge-router: epoll_create1: %s", strerror(errno));
	signals_setup(r);
	host_map_load(r, true);
	lodged_setup(r);
	if (front_listeners_setup(r) < 0)
		exit(1);
	log_info("router: serving %zu listener(s), routes from %s%s",
	    r->nlisteners,
	    r->opts.route == ROUTE_FROM_HOST  ? "the host map"
	    : r->opts.route == ROUTE_FROM_VAR ? "the LODGE_APP var"
	                                      : "the X-Lodge-App header",
	    r->opts.is_verbose ? " (verbose)" : "");
	run(r);
	return 0;
}
