#!/usr/bin/env bash
# bench/front.sh: lodge behind Apache, against the usual ways of putting a
# Python app behind Apache, and lodge's router without Apache.
#
# WHAT IT MEASURES
#   One Apache (Debian's apache2, its modules from /usr/lib/apache2/modules,
#   a config and ServerRoot of its own in a temp dir, never /etc/apache2),
#   mpm_event with AP_PROCS processes x AP_THREADS threads (2 x 64), keep-alive
#   to the client, no access log, serves every backend below, each on a
#   loopback port (one vhost per backend and app) with the same settings.
#   Through it, for the hello app (demo/apps/hello) and the Flask app
#   (demo/apps/blog), every Python server 1 process x THREADS (4) threads:
#     lodge-http    lodge's shared HTTP front socket (mod_proxy_http,
#                   disablereuse=On: a new connection per request, since lodge
#                   closes front connections after one response), routed by
#                   "RequestHeader set X-Lodge-App USER/APP";
#     lodge-uwsgi   lodge's shared uwsgi front socket (mod_proxy_uwsgi, which
#                   always opens a new connection), same routing;
#     lodge-user    the user's dedicated socket (socket_dir/NAME.sock; the
#                   worker keeps connections alive: enablereuse=On, pooled);
#     modwsgi       Apache mod_wsgi in daemon mode (1 daemon process);
#     uwsgi         uWSGI (uwsgi protocol, unix socket) via mod_proxy_uwsgi;
#     gunicorn      gunicorn -k gthread (unix socket) via mod_proxy_http,
#                   pooled (its keep-alive is raised to 30 s, Apache's ttl 20);
#   and, app-independent, the floor: nginx answering a fixed "Hello, world!"
#   without Python (bench/peers/nginx-floor.conf), behind the same Apache
#     floor-close   disablereuse=On: a new backend connection per request;
#     floor-pool    enablereuse=On: pooled backend connections.
#   The lodge rows use the packaged snippet packaging/apache/lodge.conf as is
#   (Included, with LODGE_RUN_DIR defined first) and the vhost lines of
#   packaging/apache/lodge-site-*.conf.  Every backend listens on a Unix
#   socket, as lodge's fronts do.  The lodge front and user sockets are
#   made by the real lodged (build/lodged, as root), with lodge-router and
#   sandboxed workers, hosting two throw-away users made with useradd -m
#   (lodgefront-hello, lodgefront-flask), each with its app in ~/apps; the
#   router runs as a throw-away system user (lodgefront-rt).  uWSGI,
#   gunicorn and mod_wsgi run as www-data.
#   Without Apache, a new connection per request (wrk -H "Connection: close";
#   wrk reconnects after each response):
#     router-direct lodge's router on its TCP front (http:tcp:127.0.0.1:PORT,
#                   header X-Lodge-App from wrk);
#     uwsgi-http    uWSGI's --http-socket (closes after each response without
#                   saying so: wrk counts a read error per request there,
#                   reported apart and not flagged).
#   The load is wrk, 1 thread, CONNS keep-alive connections to Apache,
#   DURATION s per measurement, with --latency.  Runs are interleaved (for run
#   in 1..RUNS: for app: for backend) and every backend is checked (curl,
#   exact body) before each measurement.  Printed per app: the MEDIAN over
#   the runs of req/s, p50 and p99 latency, the CPU (% of one core) of wrk,
#   of Apache (without its mod_wsgi daemons) and of the backend (lodge:
#   lodged + router + workers; uWSGI: master + worker; ...), backend
#   connections per request (floor rows, from nginx's counters), non-2xx
#   responses, socket errors and Apache error-log lines (all should be 0),
#   and the ratios.  Targets, with PASS/MISS (informational only), for each
#   of lodge-http and lodge-uwsgi: >= 2x mod_wsgi daemon mode, >= 1.0x
#   uWSGI via mod_proxy_uwsgi, and (hello) >= 90% of floor-close (the same
#   connection policy: a new backend connection per request); lodge-user
#   (hello) >= 90% of floor-pool; router-direct >= 1.5x uwsgi-http.
#
# HOW TO RUN
#   scripts/install-deps.sh --bench   # once: wrk, uwsgi, gunicorn, apache2,
#                                     # mod_wsgi, nginx
#   cmake --build build               # lodged, lodge-worker, lodge-router
#   bench/front.sh                    # as root: the full benchmark
#   QUICK=1 bench/front.sh            # smoke test: DURATION=2, RUNS=1
#   Environment (defaults in brackets):
#     DURATION [10]     seconds of wrk per measurement
#     RUNS [3]          interleaved runs; the medians are over these
#     CONNS ["16"]      wrk connection counts
#     THREADS [4]       serving threads of every Python server
#     AP_PROCS [2], AP_THREADS [64]   Apache mpm_event processes x threads
#     WARMUP [2]        seconds of wrk per backend before run 1 (0: none)
#     QUICK [0]         1: DURATION=2, RUNS=1, WARMUP=1 (unless set)
#     PORT_BASE [18600] ports PORT_BASE+1 .. PORT_BASE+32 on 127.0.0.1
#     LODGE [auto]      1: the lodge rows or fail; 0: peers only; auto: the
#                       lodge rows when lodge-router is built and lodged
#                       accepts the front settings, else skipped (said why)
#     LODGED, LODGE_WORKER, LODGE_ROUTER [build/lodged, build/lodge-worker,
#                       build/lodge-router]
#     HOLD [0]          1: start everything, print the URLs, then wait for
#                       Ctrl-C instead of measuring (to look at by hand)
#   Output: printed and saved to bench/results/front-DATE.txt, the per-run
#   figures to front-DATE.tsv and the configs used to front-DATE-conf/.
#   Exit status: 0 whatever the targets say; 1 if a server did not start,
#   served the wrong body, or wrk failed; 2 if a dependency is missing;
#   130 when interrupted.  Every process, user and temp dir it made is
#   removed at the end, also on failure or interrupt; a run killed outright
#   is cleaned up by the next one (state file in TMPDIR).
#
# HOW LONG IT TAKES
#   18 measurements per run (10 without lodge), each DURATION plus ~3 s of
#   checks, times RUNS, plus ~1.5 min of start-up, warm-up and clean-up
#   (users, Flask imports): about 14 minutes at the defaults (15 min
#   measured on a busy 2-CPU machine), about 3 minutes with QUICK=1.

# shellcheck disable=SC2015,SC2016,SC2046,SC2086,SC2317 # intended: A && B || die,
# sh -c scripts, word splitting of /proc fields and lists, trap-only functions
set -u
umask 022

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
APPS_SRC=$ROOT/demo/apps
PY=/usr/bin/python3
MODDIR=/usr/lib/apache2/modules

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
	DURATION=${DURATION:-2}
	RUNS=${RUNS:-1}
	WARMUP=${WARMUP:-1}
fi
DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
CONNS=${CONNS:-16}
THREADS=${THREADS:-4}
AP_PROCS=${AP_PROCS:-2}
AP_THREADS=${AP_THREADS:-64}
WARMUP=${WARMUP:-2}
PORT_BASE=${PORT_BASE:-18600}
LODGE=${LODGE:-auto}
LODGED=${LODGED:-$ROOT/build/lodged}
LODGE_WORKER=${LODGE_WORKER:-$ROOT/build/lodge-worker}
LODGE_ROUTER=${LODGE_ROUTER:-$ROOT/build/lodge-router}

# The servers must run Debian's Python, whatever the caller's environment.
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP PYTHONUSERBASE

APPS="hello flask"
declare -A APP_DIR=([hello]=hello [flask]=blog)
declare -A APP_ENTRY=([hello]=wsgi:application [flask]=wsgi:app)
declare -A APP_BODY=([hello]="Hello from lodge!" [flask]="Hello from Flask on lodge!")
declare -A APP_INDEX=([hello]=0 [flask]=1)
FLOOR_BODY="Hello, world!"
# Rows through Apache, then the two without it; ROW_INDEX gives the port.
APACHE_ROWS="lodge-http lodge-uwsgi lodge-user modwsgi uwsgi gunicorn"
FLOOR_ROWS="floor-close floor-pool"
declare -A ROW_INDEX=([lodge-http]=1 [lodge-uwsgi]=2 [lodge-user]=3 [modwsgi]=4
	[uwsgi]=5 [gunicorn]=6 [uwsgi-http]=7 [floor-close]=1 [floor-pool]=2)
USER_PREFIX=lodgefront-
declare -A LODGE_USER=([hello]=${USER_PREFIX}hello [flask]=${USER_PREFIX}flask)
ROUTER_USER=${USER_PREFIX}rt
declare -A PGID=() BGPID=()

say() { printf '%s\n' "$*"; }
warn() { printf 'front.sh: %s\n' "$*" >&2; }
die() {
	printf '\nfront.sh: FAILED: %s\n' "$*" >&2
	exit 1
}
dep_missing() {
	printf 'front.sh: missing: %s\n  install with: %s/scripts/install-deps.sh --bench\n' "$*" "$ROOT" >&2
	exit 2
}
is_uint() { case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }

# ---------------------------------------------------------------- checks --
for v in DURATION RUNS THREADS WARMUP PORT_BASE AP_PROCS AP_THREADS; do
	is_uint "${!v}" || { warn "$v must be a whole number, not '${!v}'"; exit 2; }
done
[ "$DURATION" -ge 1 ] && [ "$RUNS" -ge 1 ] && [ "$THREADS" -ge 1 ] &&
	[ "$AP_PROCS" -ge 1 ] && [ "$AP_THREADS" -ge 1 ] ||
	{ warn "DURATION, RUNS, THREADS, AP_PROCS and AP_THREADS must be at least 1"; exit 2; }
[ -n "$CONNS" ] || { warn "CONNS is empty"; exit 2; }
for c in $CONNS; do
	is_uint "$c" && [ "$c" -ge 1 ] || { warn "CONNS must list whole numbers, not '$CONNS'"; exit 2; }
done
case $LODGE in auto | 0 | 1) ;; *) warn "LODGE must be auto, 0 or 1, not '$LODGE'"; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { warn "run as root: Apache and nginx start as root and serve as www-data, lodged and useradd need root"; exit 2; }

for t in /usr/bin/wrk /usr/bin/uwsgi /usr/bin/gunicorn /usr/bin/curl /usr/bin/time \
	/usr/sbin/apache2 /usr/sbin/nginx "$PY" /usr/bin/setsid /usr/bin/setpriv \
	/usr/bin/pgrep /usr/bin/flock /usr/sbin/useradd /usr/sbin/userdel; do
	[ -x "$t" ] || dep_missing "$t"
done
command -v ss >/dev/null || dep_missing "ss (iproute2)"
for m in mpm_event authz_core proxy proxy_http proxy_uwsgi headers wsgi; do
	[ -e "$MODDIR/mod_$m.so" ] || dep_missing "Apache's mod_$m ($MODDIR/mod_$m.so)"
done
[ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] || dep_missing "uWSGI's python3 plugin (uwsgi-plugin-python3)"
"$PY" -c 'import flask' 2>/dev/null || dep_missing "Flask for $PY (python3-flask)"
id www-data >/dev/null 2>&1 || { warn "no www-data user (Apache, nginx and the peers serve as www-data)"; exit 2; }

# One benchmark at a time: a second one would skew both, and each one
# removes what an earlier, killed one left behind.
STATE_DIR=${TMPDIR:-/tmp}
STATE_FILE=$STATE_DIR/lodge-bench-front.state
exec 9>"$STATE_DIR/lodge-bench-front.lock"
flock -n 9 || { warn "another bench/front.sh is running (lock $STATE_DIR/lodge-bench-front.lock)"; exit 2; }

STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS_DIR=$BENCH/results
mkdir -p "$RESULTS_DIR" || die "cannot create $RESULTS_DIR"
CLK_TCK=$(getconf CLK_TCK)

# ----------------------------------------------------- process handling --
# Every server runs in its own session and process group (setsid), whose id
# is written to a pid file by the shell that then execs the server; it is
# stopped by signalling the whole group.  Group ids, users and folders are
# also written to STATE_FILE at once, so that a later run can undo what a
# killed one left.

proc_fields() { # PID -> the fields of /proc/PID/stat after "(comm)", from state on
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	printf '%s\n' "${s##*) }"
}
pgid_of() {
	local f
	f=$(proc_fields "$1") || return 1
	set -- $f
	printf '%s\n' "$3"
}
cmdline_of() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null; }
is_ours_cmd() { # PID: a process this script started (in any run)?
	# Its command line names the temp dir, or it runs in it (a server that
	# rewrites its process title still has the cwd start_group gave it).
	case "$(cmdline_of "$1") $(readlink "/proc/$1/cwd" 2>/dev/null)" in
	*/lodge-bench-front.*) return 0 ;;
	*) return 1 ;;
	esac
}
live_pids() { # PIDS... -> those alive and not zombies
	local p f
	for p in "$@"; do
		f=$(proc_fields "$p") || continue
		[ "${f%% *}" = Z ] || printf '%s\n' "$p"
	done
}
group_pids() { live_pids $(pgrep -g "$1" 2>/dev/null); } # PGID
ticks_of() { # PIDS... -> utime+stime summed, in clock ticks
	local p f t=0
	for p in "$@"; do
		f=$(proc_fields "$p") || continue
		set -- $f
		t=$((t + ${12} + ${13}))
	done
	printf '%s\n' "$t"
}
stop_group() { # PGID: SIGTERM the group, SIGKILL it after 10 s (lodged: 40 s)
	local g=$1 wait_s=${2:-10} _
	is_uint "$g" && [ "$g" -gt 1 ] && [ "$g" != "$(pgid_of $$)" ] || return 0
	[ -n "$(group_pids "$g")" ] || return 0
	kill -TERM -- "-$g" 2>/dev/null
	for _ in $(seq $((wait_s * 10))); do
		[ -z "$(group_pids "$g")" ] && return 0
		sleep 0.1
	done
	warn "process group $g did not stop on SIGTERM in $wait_s s: SIGKILL"
	kill -KILL -- "-$g" 2>/dev/null
	for _ in $(seq 50); do
		[ -z "$(group_pids "$g")" ] && return 0
		sleep 0.1
	done
	warn "process group $g is still there after SIGKILL"
}
state_add() { echo "$*" >>"$STATE_FILE"; }
state_forget() { # LINE
	[ -f "$STATE_FILE" ] || return 0
	grep -vxF "$1" "$STATE_FILE" >"$STATE_FILE.new" 2>/dev/null
	mv -f "$STATE_FILE.new" "$STATE_FILE"
}
kill_uid_procs() { # USER: SIGKILL every process running as that user
	local uid _ p
	uid=$(id -u "$1" 2>/dev/null) || return 0
	for _ in $(seq 50); do
		p=$(pgrep -u "$uid")
		[ -n "$p" ] || return 0
		kill -KILL $p 2>/dev/null
		sleep 0.05
	done
	warn "processes of $1 are still there: $p"
}
remove_user() { # USER (only ours)
	case $1 in "$USER_PREFIX"*) ;; *) return 0 ;; esac
	id "$1" >/dev/null 2>&1 || return 0
	kill_uid_procs "$1"
	userdel -r "$1" >/dev/null 2>&1
	# userdel -r exits 12 when there is no mail spool: check the account.
	if id "$1" >/dev/null 2>&1; then warn "could not remove user $1 (userdel -r $1)"; fi
}
remove_dir() { # DIR (only ours)
	[ -d "$1" ] || return 0
	case $1 in "$STATE_DIR"/lodge-bench-front.?????? | /var/lib/lodge-bench-front-bin.??????) rm -rf "$1" ;; esac
}
# What an earlier, killed run left: its process groups first (lodged stops
# its router and workers), then its users and folders.
undo_state() {
	local kind arg rest
	[ -s "$STATE_FILE" ] || return 0
	while read -r kind arg rest; do
		[ "$kind" = pgid ] && is_uint "$arg" && [ -d "/proc/$arg" ] && is_ours_cmd "$arg" || continue
		say "stopping what an earlier run left: process group $arg ($rest)"
		stop_group "$arg" 40
	done <"$STATE_FILE"
	while read -r kind arg rest; do
		case $kind in
		user) remove_user "$arg" ;;
		dir) remove_dir "$arg" ;;
		esac
	done <"$STATE_FILE"
	: >"$STATE_FILE"
}
port_busy() { [ -n "$(ss -ltnH "sport = :$1" 2>/dev/null)" ]; }
ensure_port_free() { # PORT
	port_busy "$1" || return 0
	die "port $1 is in use: $(ss -ltnpH "sport = :$1"); choose other ports with PORT_BASE"
}

# Starts a command in its own session as NAME; its output goes to
# DIR/server.log.  Sets PGID[NAME] and BGPID[NAME].
start_group() { # NAME DIR CMD...
	local name=$1 d=$2 _
	shift 2
	rm -f "$d/pid"
	(cd "$d" && exec setsid sh -c 'echo $$ >"$0"; exec "$@"' "$d/pid" "$@" \
		</dev/null >"$d/server.log" 2>&1 9>&-) &
	BGPID[$name]=$!
	for _ in $(seq 50); do
		[ -s "$d/pid" ] && break
		sleep 0.1
	done
	[ -s "$d/pid" ] || die "$name did not start ($*)"
	PGID[$name]=$(cat "$d/pid")
	state_add "pgid ${PGID[$name]} $name"
}
stop_named() { # NAME [WAIT_S]
	local n=$1
	[ -n "${PGID[$n]:-}" ] || return 0
	stop_group "${PGID[$n]}" "${2:-10}"
	wait "${BGPID[$n]}" 2>/dev/null
	state_forget "pgid ${PGID[$n]} $n"
	unset "PGID[$n]" "BGPID[$n]"
}
is_running() { [ -n "${PGID[$1]:-}" ] && [ -n "$(group_pids "${PGID[$1]}")" ]; }
log_tail() { # FILE [LABEL]
	[ -f "$1" ] || return 0
	echo "--- last lines of ${2:-$1}:" >&2
	tail -n 25 "$1" >&2
}

cleanup() {
	local n rc=$?
	trap - EXIT INT TERM HUP
	trap '' INT TERM HUP # a second Ctrl-C must not leave users behind
	[ -n "${HOLD_SLEEP:-}" ] && kill "$HOLD_SLEEP" 2>/dev/null
	# Apache first (the load's path), then lodged (it stops its router and
	# workers, up to 30 s), then the peers.
	stop_named apache
	stop_named lodged 40
	for n in "${!PGID[@]}"; do stop_named "$n"; done
	for n in "${LODGE_USER[@]}" "$ROUTER_USER"; do
		if grep -qxF "user $n" "$STATE_FILE" 2>/dev/null; then
			remove_user "$n"
			state_forget "user $n"
		fi
	done
	[ -n "${BIN:-}" ] && { remove_dir "$BIN"; state_forget "dir $BIN"; }
	[ -n "${WORK:-}" ] && { remove_dir "$WORK"; state_forget "dir $WORK"; }
	exit "$rc"
}

undo_state
trap cleanup EXIT
trap 'echo "front.sh: interrupted" >&2; exit 130' INT TERM HUP

WORK=$(mktemp -d "$STATE_DIR/lodge-bench-front.XXXXXX") || die "mktemp failed"
state_add "dir $WORK"
# Apache's children, nginx's worker and the peers (www-data) read below it.
chmod 755 "$WORK"
mkdir -p "$WORK/run" "$WORK/apache" "$WORK/nginx/tmp" "$WORK/front" "$WORK/users" "$WORK/lodge" ||
	die "cannot create the folders in $WORK"
# The peers (www-data) create their sockets in run/.
chown www-data:www-data "$WORK/run"
TSV=$WORK/runs.tsv

for app in $APPS; do
	for row in $APACHE_ROWS uwsgi-http; do ensure_port_free $((PORT_BASE + 10 * APP_INDEX[$app] + ROW_INDEX[$row])); done
done
for row in $FLOOR_ROWS; do ensure_port_free $((PORT_BASE + 20 + ROW_INDEX[$row])); done
ROUTER_PORT=$((PORT_BASE + 30))
ensure_port_free "$ROUTER_PORT"

# ------------------------------------------------------------ the rows --
row_port() { # ROW APP
	case $1 in
	floor-*) echo $((PORT_BASE + 20 + ROW_INDEX[$1])) ;;
	router-direct) echo "$ROUTER_PORT" ;;
	*) echo $((PORT_BASE + 10 * APP_INDEX[$2] + ROW_INDEX[$1])) ;;
	esac
}
row_url() { echo "http://127.0.0.1:$(row_port "$1" "$2")/"; }
row_body() { case $1 in floor-*) echo "$FLOOR_BODY" ;; *) echo "${APP_BODY[$2]}" ;; esac; }
route_of() { echo "${LODGE_USER[$1]}/${APP_DIR[$1]}"; } # APP -> USER/APP
row_headers() { # ROW APP -> one header per line, for wrk -H and curl -H
	case $1 in
	router-direct) printf 'X-Lodge-App: %s\nConnection: close\n' "$(route_of "$2")" ;;
	uwsgi-http) printf 'Connection: close\n' ;;
	esac
}
row_name() {
	case $1 in
	lodge-http) echo "lodge, HTTP front" ;;
	lodge-uwsgi) echo "lodge, uwsgi front" ;;
	lodge-user) echo "lodge, user socket" ;;
	modwsgi) echo "mod_wsgi daemon" ;;
	uwsgi) echo "uWSGI, uwsgi" ;;
	gunicorn) echo "gunicorn, http" ;;
	floor-close) echo "floor, new conn" ;;
	floor-pool) echo "floor, pooled" ;;
	router-direct) echo "lodge router" ;;
	uwsgi-http) echo "uWSGI http-socket" ;;
	esac
}
rows_of() { # APP -> the rows measured for it, in order
	local r out=""
	for r in $APACHE_ROWS; do
		case $r in lodge-*) [ "$HAS_LODGE" = 1 ] || continue ;; esac
		out="$out $r"
	done
	[ "$1" = hello ] && out="$out $FLOOR_ROWS"
	[ "$HAS_LODGE" = 1 ] && out="$out router-direct"
	echo "$out uwsgi-http"
}

copy_app() { # APP DEST OWNER: a fresh copy, without bytecode caches
	cp -R "$APPS_SRC/${APP_DIR[$1]}" "$2" || die "cannot copy the $1 app to $2"
	find "$2" -name __pycache__ -prune -exec rm -rf {} + 2>/dev/null
	chown -R "$3" "$2"
}

# ------------------------------------------------------------ the peers --
start_nginx() {
	local d=$WORK/nginx
	sed -e "s|@DIR@|$d|g" -e "s|@RUN@|$WORK/run|g" "$BENCH/peers/nginx-floor.conf" >"$d/nginx.conf" ||
		die "cannot write $d/nginx.conf"
	/usr/sbin/nginx -t -q -c "$d/nginx.conf" -p "$d" 2>"$d/test.log" ||
		{ log_tail "$d/test.log"; die "nginx rejects its config $d/nginx.conf"; }
	start_group nginx "$d" /usr/sbin/nginx -c "$d/nginx.conf" -p "$d"
}
nginx_counts() { # -> "accepts requests" of nginx since it started
	curl -s --max-time 5 --unix-socket "$WORK/run/floor-close.sock" http://floor/nginx-status |
		awk 'NR == 3 { print $1, $3 }'
}

# uWSGI: one instance per app, serving the uwsgi protocol on a Unix socket
# (for Apache) and HTTP on --http-socket (for the direct row).
start_uwsgi() { # APP
	local app=$1 d=$WORK/uwsgi-$1
	mkdir -p "$d" && copy_app "$app" "$d/app" www-data:www-data
	start_group "uwsgi-$app" "$d" /usr/bin/setpriv --reuid=www-data --regid=www-data --clear-groups \
		/usr/bin/uwsgi --ini "$BENCH/peers/uwsgi.ini" --threads "$THREADS" \
		--socket "$WORK/run/uwsgi-$app.sock" --chmod-socket=660 \
		--http-socket "127.0.0.1:$(row_port uwsgi-http "$app")" \
		--chdir "$d/app" --module "${APP_ENTRY[$app]}"
}
# gunicorn: its keep-alive goes from 2 s to 30 s so that Apache's pooled
# connections (ttl=20) are not closed under it between measurements.
start_gunicorn() { # APP
	local app=$1 d=$WORK/gunicorn-$1
	mkdir -p "$d" && copy_app "$app" "$d/app" www-data:www-data
	start_group "gunicorn-$app" "$d" /usr/bin/setpriv --reuid=www-data --regid=www-data --clear-groups \
		/usr/bin/gunicorn -c "$BENCH/peers/gunicorn.conf.py" --threads "$THREADS" --keep-alive 30 \
		--bind "unix:$WORK/run/gunicorn-$app.sock" --chdir "$d/app" "${APP_ENTRY[$app]}"
}
wait_socket() { # NAME PATH: until PATH is a socket (30 s)
	local _
	for _ in $(seq 300); do
		[ -S "$2" ] && return 0
		is_running "$1" || { log_tail "$WORK/${1}/server.log" "$1's output"; die "$1 exited at start-up"; }
		sleep 0.1
	done
	log_tail "$WORK/${1}/server.log" "$1's output"
	die "$1 did not create $2 in 30 s"
}

# ------------------------------------------------------------ lodge --
# Says why the lodge rows cannot run (empty: they can).  LODGE=auto skips
# them then, LODGE=1 fails.
lodge_missing() {
	[ -x "$LODGED" ] || { echo "no lodged at $LODGED (cmake --build build)"; return; }
	[ -x "$LODGE_WORKER" ] || { echo "no lodge-worker at $LODGE_WORKER (cmake --build build)"; return; }
	[ -x "$LODGE_ROUTER" ] || { echo "no lodge-router at $LODGE_ROUTER (not built yet?)"; return; }
	[ -f "$ROOT/policy/default.policy" ] || { echo "no policy/default.policy"; return; }
	[ -f "$ROOT/policy/router.policy" ] || { echo "no policy/router.policy"; return; }
	getent group www-data >/dev/null || { echo "no www-data group (front_group)"; return; }
}
add_user() { # NAME [system]
	state_add "user $1"
	# A leftover of a killed run (this prefix is ours): start clean.
	remove_user "$1"
	if [ "${2:-}" = system ]; then
		useradd --system --no-create-home --home-dir /nonexistent -s /usr/sbin/nologin "$1" ||
			die "useradd --system $1 failed"
	else
		useradd -m -s /usr/sbin/nologin "$1" || die "useradd -m $1 failed"
	fi
}
write_lodge_conf() {
	local app users=""
	for app in $APPS; do users="$users ${LODGE_USER[$app]}"; done
	cat >"$WORK/lodge/lodge.conf" <<EOF
; lodge.conf of bench/front.sh (written by it; the settings of docs/lodged.md)
[lodge]
users =$users
min_uid = 1000
socket_dir = $WORK/users
socket_group = www-data
worker = $BIN/lodge-worker
policy = $ROOT/policy/default.policy
router = $BIN/lodge-router
router_policy = $ROOT/policy/router.policy
router_user = $ROUTER_USER
; the packaged Apache snippet's layout: http.sock and uwsgi.sock in one dir
front = http:unix:$WORK/front/http.sock, uwsgi:unix:$WORK/front/uwsgi.sock, http:tcp:127.0.0.1:$ROUTER_PORT
front_group = www-data
front_trusted = http:unix:$WORK/front/http.sock
route = header
; every worker runs from its first request to the end of the benchmark
idle_timeout = 0
processes = 1
threads = $THREADS
memory_max = 1G
EOF
}
start_lodge() {
	local app home _ log=$WORK/lodge/server.log
	# Root-owned 0755, outside /tmp (workers get a private /tmp) and outside
	# the homes (hidden in the sandbox), as lodged_bench.py does.
	BIN=$(mktemp -d /var/lib/lodge-bench-front-bin.XXXXXX) || die "mktemp in /var/lib failed"
	state_add "dir $BIN"
	chmod 755 "$BIN"
	install -m 755 "$LODGE_WORKER" "$BIN/lodge-worker" && install -m 755 "$LODGE_ROUTER" "$BIN/lodge-router" ||
		die "cannot copy lodge-worker and lodge-router to $BIN"
	add_user "$ROUTER_USER" system
	for app in $APPS; do
		add_user "${LODGE_USER[$app]}"
		home=$(getent passwd "${LODGE_USER[$app]}" | cut -d: -f6)
		mkdir -p "$home/apps" || die "cannot create $home/apps"
		copy_app "$app" "$home/apps/${APP_DIR[$app]}" "${LODGE_USER[$app]}:"
		chown "${LODGE_USER[$app]}:" "$home/apps"
	done
	write_lodge_conf
	"$LODGED" --config "$WORK/lodge/lodge.conf" --check-config >"$WORK/lodge/check.log" 2>&1 ||
		{ cat "$WORK/lodge/check.log" >&2; return 1; }
	start_group lodged "$WORK/lodge" "$LODGED" --foreground --config "$WORK/lodge/lodge.conf"
	for _ in $(seq 300); do
		grep -q 'ready:' "$log" 2>/dev/null && [ -S "$WORK/front/http.sock" ] && [ -S "$WORK/front/uwsgi.sock" ] && break
		is_running lodged || { log_tail "$log" "lodged's log"; die "lodged exited at start-up"; }
		sleep 0.1
	done
	grep -q 'ready:' "$log" || { log_tail "$log" "lodged's log"; die "lodged did not say 'ready:' in 30 s"; }
	for app in $APPS; do
		[ -S "$WORK/users/${LODGE_USER[$app]}.sock" ] || { log_tail "$log" "lodged's log"; die "lodged made no socket for ${LODGE_USER[$app]}"; }
	done
	return 0
}
lodge_pids() { # lodged, its router and the bench users' workers
	live_pids $(group_pids "${PGID[lodged]}") $(pgrep -u "$ROUTER_USER,${LODGE_USER[hello]},${LODGE_USER[flask]}" 2>/dev/null)
}

# ------------------------------------------------------------ Apache --
# The vhost of ROW APP, on its own port.
apache_vhost() { # ROW APP
	local row=$1 app=$2 port d
	port=$(row_port "$row" "$app")
	echo ""
	echo "# $(row_name "$row") ($app)"
	echo "Listen 127.0.0.1:$port"
	echo "<VirtualHost 127.0.0.1:$port>"
	case $row in
	lodge-http | lodge-uwsgi)
		# As packaging/apache/lodge-site-http.conf / lodge-site-uwsgi.conf.
		echo "    ProxyPreserveHost On"
		echo "    RequestHeader set X-Lodge-App \"$(route_of "$app")\""
		echo "    RequestHeader set X-Forwarded-Proto \"http\""
		if [ "$row" = lodge-http ]; then
			echo "    ProxyPass / \"\${LODGE_HTTP}\""
		else
			echo "    ProxyPass / \"\${LODGE_UWSGI}\""
		fi
		;;
	lodge-user)
		# As the dedicated-socket example of lodge-site-http.conf: a host
		# name of its own (Apache tells Unix-socket workers apart by it),
		# pooled, idle connections dropped before the worker's 15 s.
		echo "    ProxyPreserveHost On"
		echo "    RequestHeader set X-Forwarded-Proto \"http\""
		echo "    ProxyPass / \"unix:$WORK/users/${LODGE_USER[$app]}.sock|http://${LODGE_USER[$app]}.lodge-user/\" enablereuse=On ttl=10 retry=0"
		;;
	modwsgi)
		d=$WORK/modwsgi-$app/app
		echo "    WSGIProcessGroup modwsgi-$app"
		echo "    WSGIApplicationGroup %{GLOBAL}"
		echo "    WSGIScriptAlias / $d/wsgi.py"
		echo "    <Directory $d>"
		echo "        Require all granted"
		echo "    </Directory>"
		;;
	uwsgi)
		echo "    ProxyPreserveHost On"
		echo "    ProxyPass / \"unix:$WORK/run/uwsgi-$app.sock|uwsgi://uwsgi-$app/\" retry=0"
		;;
	gunicorn)
		echo "    ProxyPreserveHost On"
		echo "    ProxyPass / \"unix:$WORK/run/gunicorn-$app.sock|http://gunicorn-$app/\" enablereuse=On ttl=20 retry=0"
		;;
	floor-close)
		echo "    ProxyPreserveHost On"
		echo "    ProxyPass / \"unix:$WORK/run/floor-close.sock|http://floor-close/\" disablereuse=On retry=0"
		;;
	floor-pool)
		echo "    ProxyPreserveHost On"
		echo "    ProxyPass / \"unix:$WORK/run/floor-pool.sock|http://floor-pool/\" enablereuse=On ttl=30 retry=0"
		;;
	esac
	echo "</VirtualHost>"
}
write_apache_conf() {
	local d=$WORK/apache app row
	{
		cat <<EOF
# Apache of bench/front.sh (written by it): Debian's modules, this config
# only.  mpm_event, $AP_PROCS processes x $AP_THREADS threads, all started
# at once and kept; keep-alive to the client; no access log.
ServerRoot $d
ServerName 127.0.0.1
PidFile $d/httpd.pid
DefaultRuntimeDir $d
Mutex file:$d default
ErrorLog $d/error.log
LogLevel warn
LoadModule mpm_event_module $MODDIR/mod_mpm_event.so
LoadModule authz_core_module $MODDIR/mod_authz_core.so
LoadModule proxy_module $MODDIR/mod_proxy.so
LoadModule proxy_http_module $MODDIR/mod_proxy_http.so
LoadModule proxy_uwsgi_module $MODDIR/mod_proxy_uwsgi.so
LoadModule headers_module $MODDIR/mod_headers.so
LoadModule wsgi_module $MODDIR/mod_wsgi.so
User www-data
Group www-data
StartServers $AP_PROCS
ServerLimit $AP_PROCS
ThreadLimit $AP_THREADS
ThreadsPerChild $AP_THREADS
MaxRequestWorkers $((AP_PROCS * AP_THREADS))
MinSpareThreads $AP_THREADS
MaxSpareThreads $((AP_PROCS * AP_THREADS))
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 15
Timeout 60

# mod_wsgi: daemon mode only (no Python in Apache's own processes).
WSGIRestrictEmbedded On
WSGISocketPrefix $d/wsgi
EOF
		for app in $APPS; do
			# display-name: the process title front.sh finds the daemon by
			# (mod_wsgi cuts it to the length of argv[0], /usr/sbin/apache2).
			echo "WSGIDaemonProcess modwsgi-$app processes=1 threads=$THREADS display-name=wsgi-$app python-path=$WORK/modwsgi-$app/app"
		done
		if [ "$HAS_LODGE" = 1 ]; then
			echo ""
			echo "# lodge: the packaged snippet, with the bench's socket folder."
			echo "Define LODGE_RUN_DIR $WORK/front"
			echo "Include $ROOT/packaging/apache/lodge.conf"
		fi
		for app in $APPS; do
			for row in $APACHE_ROWS; do
				case $row in lodge-*) [ "$HAS_LODGE" = 1 ] || continue ;; esac
				apache_vhost "$row" "$app"
			done
		done
		for row in $FLOOR_ROWS; do apache_vhost "$row" hello; done
	} >"$d/httpd.conf" || die "cannot write $d/httpd.conf"
}
start_apache() {
	local d=$WORK/apache app
	for app in $APPS; do
		mkdir -p "$WORK/modwsgi-$app" && copy_app "$app" "$WORK/modwsgi-$app/app" www-data:www-data
	done
	write_apache_conf
	/usr/sbin/apache2 -f "$d/httpd.conf" -t >"$d/test.log" 2>&1 ||
		{ log_tail "$d/test.log"; die "Apache rejects its config $d/httpd.conf"; }
	start_group apache "$d" /usr/sbin/apache2 -f "$d/httpd.conf" -DFOREGROUND
}
modwsgi_pids() { # APP, or "" for all: mod_wsgi's daemons (titled wsgi-APP)
	local p
	for p in $(group_pids "${PGID[apache]}"); do
		case $(cmdline_of "$p") in "wsgi-$1"*) echo "$p" ;; esac
	done
}
apache_pids() { # Apache without its mod_wsgi daemons
	local p w
	w=" $(modwsgi_pids "" | tr '\n' ' ') "
	for p in $(group_pids "${PGID[apache]}"); do
		case $w in *" $p "*) ;; *) echo "$p" ;; esac
	done
}
backend_pids() { # ROW APP
	case $1 in
	lodge-* | router-direct) lodge_pids ;;
	modwsgi) modwsgi_pids "$2" ;;
	uwsgi | uwsgi-http) group_pids "${PGID[uwsgi-$2]}" ;;
	gunicorn) group_pids "${PGID[gunicorn-$2]}" ;;
	floor-*) group_pids "${PGID[nginx]}" ;;
	esac
}

# ------------------------------------------------------------ measuring --
# Checks that ROW APP answers 200 with exactly the expected body.
verify() { # ROW APP
	local row=$1 app=$2 url code h
	local -a hdr=()
	url=$(row_url "$row" "$app")
	while IFS= read -r h; do [ -n "$h" ] && hdr+=(-H "$h"); done < <(row_headers "$row" "$app")
	code=$(curl -s --max-time 10 "${hdr[@]}" -o "$WORK/body" -w '%{http_code}' "$url")
	if [ "$code" != 200 ] || [ "$(cat "$WORK/body")" != "$(row_body "$row" "$app")" ]; then
		log_tail "$WORK/apache/error.log" "Apache's error log"
		case $row in lodge-* | router-direct) log_tail "$WORK/lodge/server.log" "lodged's log" ;; esac
		die "$(row_name "$row") ($app, $url) does not serve the expected body: HTTP $code, body '$(head -c 200 "$WORK/body")' (want '$(row_body "$row" "$app")')"
	fi
}

# wrk's output -> "rps p50_ms p99_ms non2xx connect read write timeout requests"
parse_wrk() {
	awk '
	function ms(v,  n, u) {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") return n / 1000; if (u == "ms") return n
		if (u == "s") return n * 1000; if (u == "m") return n * 60000
		if (u == "h") return n * 3600000; return -1
	}
	/^Requests\/sec:/ { rps = $2 }
	/^ *50%/ { p50 = ms($2) }
	/^ *99%/ { p99 = ms($2) }
	/requests in/ { req = $1 }
	/Non-2xx or 3xx responses:/ { n2 = $NF }
	/Socket errors:/ {
		c = $4; r = $6; w = $8; t = $10
		gsub(/,/, "", c); gsub(/,/, "", r); gsub(/,/, "", w)
	}
	END {
		if (rps == "" || p50 == "" || p99 == "") exit 1
		printf "%s %.3f %.3f %d %d %d %d %d %s\n", rps, p50, p99, n2 + 0, c + 0, r + 0, w + 0, t + 0, req
	}'
}

# One wrk measurement of ROW APP with CONNS connections -> a line of TSV.
measure() { # RUN APP CONNS ROW
	local run=$1 app=$2 conns=$3 row=$4 url out tf rc parsed times h
	local a0 a1 b0 b1 w0 w1 n0 n1 e0 e1 ac ap bpids apids apache
	local -a hdr=()
	url=$(row_url "$row" "$app")
	out=$WORK/wrk.out
	tf=$WORK/wrk.time
	while IFS= read -r h; do [ -n "$h" ] && hdr+=(-H "$h"); done < <(row_headers "$row" "$app")
	verify "$row" "$app"
	apids=$(apache_pids | tr '\n' ' ')
	bpids=$(backend_pids "$row" "$app" | tr '\n' ' ')
	case $row in floor-*) n0=$(nginx_counts) ;; *) n0="" ;; esac
	e0=$(grep -c ':error\]' "$WORK/apache/error.log" 2>/dev/null)
	a0=$(ticks_of $apids)
	b0=$(ticks_of $bpids)
	w0=$(date +%s%N)
	/usr/bin/time -f '%U %S %e' -o "$tf" wrk -t1 -c"$conns" -d"${DURATION}s" --latency "${hdr[@]}" "$url" >"$out" 2>&1
	rc=$?
	w1=$(date +%s%N)
	a1=$(ticks_of $apids)
	b1=$(ticks_of $bpids)
	e1=$(grep -c ':error\]' "$WORK/apache/error.log" 2>/dev/null)
	case $row in floor-*) n1=$(nginx_counts) ;; *) n1="" ;; esac
	if [ "$rc" -ne 0 ]; then
		cat "$out" >&2
		die "wrk failed (exit $rc) against $(row_name "$row") ($app, $conns connections)"
	fi
	parsed=$(parse_wrk <"$out") || { cat "$out" >&2; die "cannot read wrk's output"; }
	times=$(tail -n 1 "$tf")
	# Backend connections and requests during the run (nginx's counters;
	# the status request itself counts one of each).
	ac=-
	ap=-
	if [ -n "$n0" ] && [ -n "$n1" ]; then
		set -- $n0 $n1
		ac=$(($3 - $1 - 1))
		ap=$(($4 - $2 - 1))
	fi
	case $row in router-direct | uwsgi-http) apache=- ;; *) apache=$((a1 - a0)) ;; esac
	set -- $parsed $times
	# $1 rps $2 p50 $3 p99 $4 non2xx $5 connect $6 read $7 write $8 timeout
	# $9 requests ${10} user ${11} sys ${12} wall
	awk -v run="$run" -v app="$app" -v conns="$conns" -v row="$row" \
		-v rps="$1" -v p50="$2" -v p99="$3" -v n2="$4" -v ec="$5" -v er="$6" -v ew="$7" -v et="$8" \
		-v req="$9" -v wu="${10}" -v ws="${11}" -v we="${12}" -v hz="$CLK_TCK" \
		-v at="$apache" -v bt="$((b1 - b0))" -v wall_ns="$((w1 - w0))" \
		-v bconn="$ac" -v breq="$ap" -v aperr="$((e1 - e0))" 'BEGIN {
		wall = wall_ns / 1e9
		wrk_cpu = (we > 0 ? 100 * (wu + ws) / we : 0)
		ap_cpu = (at == "-" ? "-" : sprintf("%.1f", 100 * (at / hz) / wall))
		be_cpu = 100 * (bt / hz) / wall
		printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.1f\t%s\t%.1f\t%s\t%s\t%s\n",
			run, app, conns, row, rps, p50, p99, n2, ec, er, ew, et, req, wall,
			wrk_cpu, ap_cpu, be_cpu, bconn, breq, aperr
	}' >>"$TSV"
	tail -n 1 "$TSV" | awk -F'\t' -v name="$(row_name "$row")" -v runs="$RUNS" '{
		flag = ""
		if ($8 + $9 + $11 + $12 + $20 > 0)
			flag = sprintf("  FLAG: non-2xx %d, socket errors c/w/t %d/%d/%d, Apache errors %d", $8, $9, $11, $12, $20)
		if ($10 > 0 && $4 != "uwsgi-http")
			flag = flag sprintf("  FLAG: %d read errors", $10)
		printf "  run %d/%d  %-5s c=%-3s %-19s %8.0f req/s  p50 %6.2f  p99 %6.2f ms  CPU wrk %3.0f%% Apache %5s%% backend %3.0f%%%s\n",
			$1, runs, $2, $3, name, $5, $6, $7, $15, $16, $17, flag
	}'
	[ -n "$(group_pids "${PGID[apache]}")" ] || { log_tail "$WORK/apache/error.log"; die "Apache died under load"; }
}

# ------------------------------------------------------------------ main --
printf 'run\tapp\tconns\trow\trps\tp50_ms\tp99_ms\tnon2xx\terr_connect\terr_read\terr_write\terr_timeout\trequests\twall_s\twrk_cpu_pct\tapache_cpu_pct\tbackend_cpu_pct\tbackend_conns\tbackend_reqs\tapache_errors\n' >"$TSV"

HAS_LODGE=0
LODGE_NOTE=""
if [ "$LODGE" != 0 ]; then
	LODGE_NOTE=$(lodge_missing)
	if [ -z "$LODGE_NOTE" ]; then
		say "starting lodged (real users, sandboxed workers, lodge-router)..."
		if start_lodge; then
			HAS_LODGE=1
		else
			LODGE_NOTE="lodged --check-config rejects the bench's config (front/router settings not there yet?): $(grep -m1 -v ': ok$' "$WORK/lodge/check.log")"
		fi
	fi
	if [ "$HAS_LODGE" = 0 ]; then
		[ "$LODGE" = 1 ] && die "the lodge rows cannot run: $LODGE_NOTE"
		say "lodge rows SKIPPED: $LODGE_NOTE"
	fi
fi
[ "$LODGE" = 0 ] && LODGE_NOTE="LODGE=0"

nrows=$(($(echo $(rows_of hello) $(rows_of flask) | wc -w)))
nconns=$(echo $CONNS | wc -w)
say "bench/front.sh: lodge and peers behind Apache (mpm_event ${AP_PROCS}x${AP_THREADS}); DURATION=${DURATION}s RUNS=$RUNS CONNS=\"$CONNS\" THREADS=$THREADS"
est=$((nrows * nconns * RUNS * (DURATION + 3) + 90 + nrows * WARMUP))
say "  about $(((est + 30) / 60)) min in all ($((nrows * nconns * RUNS)) measurements of ${DURATION} s)"

say "starting nginx (the floor), uWSGI and gunicorn..."
start_nginx
for app in $APPS; do
	start_uwsgi "$app"
	start_gunicorn "$app"
done
wait_socket nginx "$WORK/run/floor-close.sock"
for app in $APPS; do
	wait_socket "uwsgi-$app" "$WORK/run/uwsgi-$app.sock"
	wait_socket "gunicorn-$app" "$WORK/run/gunicorn-$app.sock"
done
say "starting Apache..."
start_apache
# Each row answers (Flask imports take a moment; lodge starts the workers
# on their first request), at most 30 s.
for app in $APPS; do
	for row in $(rows_of "$app"); do
		url=$(row_url "$row" "$app")
		deadline=$((SECONDS + 30))
		while [ "$SECONDS" -lt "$deadline" ]; do
			code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -H "X-Lodge-App: $(route_of "$app")" "$url")
			[ "$code" = 200 ] && break
			is_running apache || { log_tail "$WORK/apache/error.log"; die "Apache exited at start-up"; }
			[ "$HAS_LODGE" = 0 ] || is_running lodged || { log_tail "$WORK/lodge/server.log" "lodged's log"; die "lodged exited"; }
			sleep 0.1
		done
		verify "$row" "$app"
		say "  $(row_name "$row") ($app) on $url: OK"
	done
done

# HOLD=1: everything stays up for poking at by hand, until Ctrl-C.
if [ "${HOLD:-0}" = 1 ]; then
	say "HOLD=1: every row above is up (configs in $WORK); Ctrl-C stops and cleans up"
	# (wait, not a foreground sleep: bash runs the signal traps only
	# between commands, and wait returns at once on a signal)
	while :; do
		sleep 3600 9>&- &
		HOLD_SLEEP=$!
		wait "$HOLD_SLEEP"
	done
fi

if [ "$WARMUP" -gt 0 ]; then
	maxc=$(printf '%s\n' $CONNS | sort -n | tail -n 1)
	say "warm-up: ${WARMUP} s of wrk per row (c=$maxc)..."
	for app in $APPS; do
		for row in $(rows_of "$app"); do
			hdr=()
			while IFS= read -r h; do [ -n "$h" ] && hdr+=(-H "$h"); done < <(row_headers "$row" "$app")
			wrk -t1 -c"$maxc" -d"${WARMUP}s" "${hdr[@]}" "$(row_url "$row" "$app")" >/dev/null 2>&1 ||
				die "wrk warm-up against $(row_name "$row") ($app) failed"
		done
	done
fi

say ""
say "measuring (wrk -t1 -d${DURATION}s --latency; CPU in % of one core):"
for run in $(seq "$RUNS"); do
	for app in $APPS; do
		for c in $CONNS; do
			for row in $(rows_of "$app"); do
				measure "$run" "$app" "$c" "$row"
			done
		done
	done
done
for app in $APPS; do for row in $(rows_of "$app"); do verify "$row" "$app"; done; done

# The report: printed, and saved under bench/results/ with the configs.
REPORT=$RESULTS_DIR/front-$STAMP.txt
CONF_DIR=$RESULTS_DIR/front-$STAMP-conf
cp "$TSV" "$RESULTS_DIR/front-$STAMP.tsv"
mkdir -p "$CONF_DIR" && cp "$WORK/apache/httpd.conf" "$WORK/nginx/nginx.conf" "$CONF_DIR/"
[ "$HAS_LODGE" = 1 ] && cp "$WORK/lodge/lodge.conf" "$CONF_DIR/"
{
	say ""
	say "==== lodge behind Apache, $(date '+%Y-%m-%d %H:%M:%S %Z') ===="
	say "machine: $(nproc) CPU(s), $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
	say "lodge:   commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (+ local changes)')$([ "$HAS_LODGE" = 1 ] || echo "; lodge rows skipped: $LODGE_NOTE")"
	say "Apache:  $(/usr/sbin/apache2 -v 2>/dev/null | awk -F': ' '/version/ { print $2 }'), mpm_event ${AP_PROCS} x ${AP_THREADS} threads, mod_wsgi $(dpkg-query -W -f='${Version}' libapache2-mod-wsgi-py3 2>/dev/null)"
	say "peers:   uWSGI $(/usr/bin/uwsgi --version 2>/dev/null), gunicorn $("$PY" -c 'import gunicorn; print(gunicorn.__version__)' 2>/dev/null), nginx $(/usr/sbin/nginx -v 2>&1 | sed 's|.*/||'), Python $("$PY" -c 'import platform; print(platform.python_version())'), Flask $("$PY" -c 'import importlib.metadata as m; print(m.version("flask"))' 2>/dev/null)"
	say "load:    $(wrk -v 2>&1 | head -n 1 | awk '{ print $1, $2 }'), 1 thread, keep-alive to Apache, $DURATION s per measurement, $RUNS interleaved run(s)"
	say "servers: every Python server 1 process x $THREADS threads, every backend on a Unix socket"
	"$PY" "$BENCH/front_report.py" "$TSV" "$RUNS" "$DURATION" "$CONNS" "$HAS_LODGE"
} | tee "$REPORT"
[ "${PIPESTATUS[0]}" -eq 0 ] || die "could not write the report"
say ""
say "saved: $REPORT (per-run figures: $RESULTS_DIR/front-$STAMP.tsv, configs: $CONF_DIR/)"
exit 0
