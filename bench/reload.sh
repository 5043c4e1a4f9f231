#!/usr/bin/env bash
# bench/reload.sh: how fast, and how cleanly, lodge-worker puts new code live,
# against the reload mechanisms of uWSGI, gunicorn and Apache mod_wsgi.
#
# WHAT IT MEASURES
#   For each server and each app (hello = demo/apps/hello, plain WSGI;
#   Flask = demo/apps/blog), one "series": a steady load of wrk (-t1 -c8,
#   keep-alive, running through the whole series) and, meanwhile, RELOADS
#   reloads, one every ~GAP s.  A reload replaces the app's wsgi.py with a
#   version whose response body says "[v=N]" (written beside the app folder,
#   closed, then renamed over wsgi.py, so that no server can read half a
#   file; each version is one byte longer, so no stale .pyc can be used),
#   then does what the server needs to notice:
#     lodge-worker       nothing (inotify; settle delay 50 ms, the default),
#     lodge-worker s5    the same with --settle-ms 5 (not run by default:
#                        SERVERS="lodge lodge5 ..." to compare),
#     uWSGI touch        touch the --touch-reload file (full graceful reload),
#     uWSGI chain        touch the --touch-chain-reload file (+ --lazy-apps),
#                        (uWSGI serves HTTP with its router: --http, with
#                        --http-keepalive, and --worker-reload-mercy 5: see
#                        start_server for why),
#     gunicorn HUP       SIGHUP to the arbiter (new worker, old one retired),
#     mod_wsgi daemon    touch wsgi.py itself (the WSGI script: the daemon
#                        process restarts on the next request).
#   The reload latency is the time from the end of the write (the rename's
#   return; the touch or HUP happens after it, inside the measured time) to
#   the first response carrying [v=N], seen by a probe client
#   (bench/reload_probe.py) that polls every 1 ms with a NEW CONNECTION per
#   poll ("Connection: close", read to the end of the body), or as soon as
#   the previous poll is over if it took longer.  The probe polls through the
#   whole series (between reloads too), so it also counts failures.  A
#   reload not seen within 15 s is "unseen"; after 2 unseen in a row the
#   series stops and its remaining reloads count as unseen too.
#   Reported per series: reload p50/p95/max; failures = wrk's non-2xx and
#   socket errors (connect/read/write/timeout, wrk --timeout 10s) + the
#   probe's failed polls (refused, reset, timeout, non-200, wrong body);
#   "flips" (an older version answering after the new one did); the worst
#   request latency (wrk's max, the probe's max).  Every server runs alone
#   (one series at a time), 1 process x THREADS threads (uWSGI: + master
#   + HTTP router, gunicorn: + arbiter (-k gthread), Apache: mpm_event
#   front + 1 mod_wsgi daemon process).
#   lodge-worker only, without load:
#     - cold start: fresh lodge-worker -> first good 200 (COLD_RUNS starts,
#       median), the "cold import" the Flask reload is judged against;
#     - RSS: RSS_RELOADS reloads of each app (each waits for the new
#       version and for the old one to end), VmRSS of the serving process
#       (control socket "status" pid; a change of pid, i.e. the worker
#       replaced itself past --max-memory, is reported) at 0, 1, 10, 50
#       and RSS_RELOADS reloads; also the reload latency without load.
#   Its stderr is searched for warnings and errors.
#   Targets (PASS/MISS, informational): lodge hello reload p50 <= 20 ms (one
#   file written and closed reloads 5 ms after the write; the 50 ms settle
#   delay is for bursts of several files);
#   zero failures for lodge; lodge Flask reload p50 <= 1.3x its cold start;
#   RSS after RSS_RELOADS reloads <= 1.10x RSS after 1 reload, and <= 1.05x
#   RSS after 10 (no growth once warm).
#
# HOW TO RUN
#   scripts/install-deps.sh --bench   # once, as root: wrk, uwsgi, gunicorn,
#                                     # apache2 + libapache2-mod-wsgi-py3
#   bench/reload.sh                   # as root (Apache drops to www-data)
#   QUICK=1 bench/reload.sh           # smoke test: RELOADS=3, RSS_RELOADS=10
#   Environment (defaults in brackets):
#     RELOADS [20]        reloads per server and app under load
#     RSS_RELOADS [100]   reloads of the lodge RSS loop (no load)
#     QUICK [0]           1: RELOADS=3 RSS_RELOADS=10 WARMUP=1 COLD_RUNS=1
#     GAP [1.0]           s of polling between reloads (>= 1: uWSGI compares
#                         touch-file mtimes in whole seconds)
#     WARMUP [2]          s of wrk before each series, not counted
#     COLD_RUNS [5]       fresh lodge-worker starts per app for the cold time
#     THREADS [4]         serving threads of every server
#     WRK_CONNS [8]       wrk connections
#     SERVERS ["lodge uwsgi uwsgichain gunicorn modwsgi"]
#     APPS ["hello flask"]
#     PORT_BASE [18600]   servers listen on PORT_BASE+1 .. PORT_BASE+18
#     UWSGI_MERCY [5]     uWSGI's --worker-reload-mercy, s (its default: 60)
#     LODGE_WORKER [build/lodge-worker]   BUILD [1]: cmake --build it first
#   Output: printed and saved to bench/results/reload-DATE.txt, with every
#   reload latency in bench/results/reload-DATE.tsv and the servers' logs
#   and raw figures in bench/results/reload-DATE-logs.tar.gz (also kept
#   when a run fails).
#   Exit status: 0 whatever the targets say; 1 if a server did not start,
#   did not serve the expected body, or wrk failed; 2 on a missing dependency.
#
# HOW LONG IT TAKES
#   About 11 minutes with the defaults on a 2-CPU machine (641 s measured:
#   12 series of 20 reloads at 1-3 s each, plus warm-ups, 2x100 RSS reloads
#   and the cold starts; a series whose reloads stop taking effect gives up
#   after ~30 s); about 3-4 minutes with QUICK=1.

# shellcheck disable=SC2015,SC2086,SC2317 # A && B || die, word splitting of
# lists, trap-only functions
set -u
umask 022

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
APPS_SRC=$ROOT/demo/apps
PY=/usr/bin/python3
PROBE=$BENCH/reload_probe.py

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
	RELOADS=${RELOADS:-3}
	RSS_RELOADS=${RSS_RELOADS:-10}
	WARMUP=${WARMUP:-1}
	COLD_RUNS=${COLD_RUNS:-1}
fi
RELOADS=${RELOADS:-20}
RSS_RELOADS=${RSS_RELOADS:-100}
WARMUP=${WARMUP:-2}
COLD_RUNS=${COLD_RUNS:-5}
GAP=${GAP:-1.0}
THREADS=${THREADS:-4}
WRK_CONNS=${WRK_CONNS:-8}
SERVERS=${SERVERS:-"lodge uwsgi uwsgichain gunicorn modwsgi"}
APPS=${APPS:-"hello flask"}
PORT_BASE=${PORT_BASE:-18600}
UWSGI_MERCY=${UWSGI_MERCY:-5}
LODGE_WORKER=${LODGE_WORKER:-$ROOT/build/lodge-worker}
BUILD=${BUILD:-1}

# The servers must run Debian's Python, whatever the caller's environment.
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP PYTHONUSERBASE PYTHONDONTWRITEBYTECODE

declare -A APP_DIR=([hello]=hello [flask]=blog)
declare -A APP_ENTRY=([hello]=wsgi:application [flask]=wsgi:app)
declare -A APP_BODY=([hello]="Hello from lodge!" [flask]="Hello from Flask on lodge!")
declare -A APP_INDEX=([hello]=0 [flask]=1)
declare -A SRV_INDEX=([lodge]=1 [lodge5]=2 [uwsgi]=3 [uwsgichain]=4 [gunicorn]=5 [modwsgi]=6
	[rss]=7 [cold]=8)

say() { printf '%s\n' "$*"; }
warn() { printf 'reload.sh: %s\n' "$*" >&2; }
die() {
	printf '\nreload.sh: FAILED: %s\n' "$*" >&2
	exit 1
}
dep_missing() {
	printf 'reload.sh: missing: %s\n  install with: %s/scripts/install-deps.sh --bench\n' "$*" "$ROOT" >&2
	exit 2
}
is_uint() { case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }
is_num() { case $1 in '' | *[!0-9.]* | *.*.*) return 1 ;; *) return 0 ;; esac; }

# ---------------------------------------------------------------- checks --
for v in RELOADS RSS_RELOADS WARMUP COLD_RUNS THREADS WRK_CONNS PORT_BASE UWSGI_MERCY; do
	is_uint "${!v}" || { warn "$v must be a whole number, not '${!v}'"; exit 2; }
done
is_num "$GAP" || { warn "GAP must be a number of seconds, not '$GAP'"; exit 2; }
[ "$RELOADS" -ge 1 ] && [ "$RSS_RELOADS" -ge 1 ] && [ "$COLD_RUNS" -ge 1 ] &&
	[ "$THREADS" -ge 1 ] && [ "$WRK_CONNS" -ge 1 ] ||
	{ warn "RELOADS, RSS_RELOADS, COLD_RUNS, THREADS and WRK_CONNS must be at least 1"; exit 2; }
for s in $SERVERS; do
	case $s in lodge | lodge5 | uwsgi | uwsgichain | gunicorn | modwsgi) ;;
	*) warn "unknown server '$s' in SERVERS"; exit 2 ;; esac
done
for a in $APPS; do
	case $a in hello | flask) ;; *) warn "unknown app '$a' in APPS"; exit 2 ;; esac
done
if awk -v g="$GAP" 'BEGIN { exit !(g < 1) }'; then
	case " $SERVERS " in *" uwsgi "* | *" uwsgichain "*)
		warn "GAP=$GAP < 1 s: uWSGI sees touch-file changes in whole seconds; using it anyway" ;;
	esac
fi

for t in /usr/bin/wrk /usr/bin/curl "$PY" /usr/bin/setsid /usr/bin/pgrep /usr/bin/flock; do
	[ -x "$t" ] || dep_missing "$t"
done
command -v ss >/dev/null || dep_missing "ss (iproute2)"
# The probe opens ~1000 connections/s and closes them first: loopback
# TIME_WAIT reuse (Linux's default, 2) keeps ephemeral ports from running out.
[ "$(cat /proc/sys/net/ipv4/tcp_tw_reuse 2>/dev/null)" != 0 ] ||
	warn "net.ipv4.tcp_tw_reuse is 0: the probe may run out of ephemeral ports"
"$PY" -c 'import flask' 2>/dev/null || dep_missing "Flask for $PY (python3-flask)"
case " $SERVERS " in *" uwsgi "* | *" uwsgichain "*)
	[ -x /usr/bin/uwsgi ] || dep_missing /usr/bin/uwsgi
	[ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] || dep_missing "uWSGI's python3 plugin (uwsgi-plugin-python3)"
	[ -e /usr/lib/uwsgi/plugins/http_plugin.so ] || dep_missing "uWSGI's http plugin (uwsgi-core)" ;;
esac
case " $SERVERS " in *" gunicorn "*) [ -x /usr/bin/gunicorn ] || dep_missing /usr/bin/gunicorn ;; esac
case " $SERVERS " in *" modwsgi "*)
	[ -x /usr/sbin/apache2 ] || dep_missing "apache2"
	[ -e /usr/lib/apache2/modules/mod_wsgi.so ] || dep_missing "mod_wsgi (libapache2-mod-wsgi-py3)"
	[ -e /usr/lib/apache2/modules/mod_mpm_event.so ] || dep_missing "Apache's mpm_event module"
	[ "$(id -u)" = 0 ] || { warn "the mod_wsgi series needs root (Apache starts as root, serves as www-data); run as root or drop modwsgi from SERVERS"; exit 2; }
	id www-data >/dev/null 2>&1 || { warn "no www-data user for Apache"; exit 2; } ;;
esac

if [ "$BUILD" = 1 ] && [ "$LODGE_WORKER" = "$ROOT/build/lodge-worker" ]; then
	if [ ! -f "$ROOT/build/CMakeCache.txt" ]; then
		(cd "$ROOT" && cmake -S . -B build -DLODGE_TESTS=OFF >/dev/null) ||
			die "cmake configure failed (cd $ROOT && cmake -S . -B build)"
	fi
	if ! (cd "$ROOT" && cmake --build build -j2 --target lodge-worker >"${TMPDIR:-/tmp}/lodge-bench-reload.build.log" 2>&1); then
		[ -x "$LODGE_WORKER" ] || { cat "${TMPDIR:-/tmp}/lodge-bench-reload.build.log" >&2; die "could not build lodge-worker"; }
		warn "building lodge-worker failed (log: ${TMPDIR:-/tmp}/lodge-bench-reload.build.log); measuring the existing binary"
	fi
fi
[ -x "$LODGE_WORKER" ] || die "no lodge-worker at $LODGE_WORKER"

# One reload benchmark at a time.
STATE_DIR=${TMPDIR:-/tmp}
exec 9>"$STATE_DIR/lodge-bench-reload.lock"
flock -n 9 || { warn "another bench/reload.sh is running (lock $STATE_DIR/lodge-bench-reload.lock)"; exit 2; }
CONCURRENT=""
if [ -e "$STATE_DIR/lodge-bench-worker.lock" ] &&
	! flock -n "$STATE_DIR/lodge-bench-worker.lock" true 2>/dev/null; then
	CONCURRENT="bench/worker.sh is running at the same time: its load skews these figures"
	warn "$CONCURRENT"
fi

WORK=$(mktemp -d "$STATE_DIR/lodge-bench-reload.XXXXXX") || die "mktemp failed"
chmod 755 "$WORK" # Apache's daemon (www-data) reads the app below it
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS_DIR=$BENCH/results
mkdir -p "$RESULTS_DIR" || die "cannot create $RESULTS_DIR"
# A copy of the binary: a rebuild during the run must not change what is
# measured half-way.
LODGE_SRC_BINARY=$LODGE_WORKER
LODGE_MTIME=$(stat -c '%y' "$LODGE_WORKER" | cut -d. -f1)
LODGE_COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ', src/ modified')"
cp "$LODGE_WORKER" "$WORK/lodge-worker" || die "cannot copy $LODGE_WORKER"
LODGE_WORKER=$WORK/lodge-worker
MANIFEST=$WORK/manifest.tsv
: >"$MANIFEST"
T_START=$(date +%s)

# ----------------------------------------------------- process handling --
# Every server runs in its own session (reload_probe.py spawn), whose id is
# in its folder's "pid" file; it is stopped by signalling its whole process
# group.  cleanup() stops every group found under WORK; a later run stops
# what a killed run left (its folders hold the pid files).

proc_state() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; printf '%s\n' "${s%% *}"; }
cmdline_of() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null; }
group_pids() { # PGID -> its live (non-zombie) processes
	local p
	for p in $(pgrep -g "$1" 2>/dev/null); do
		[ "$(proc_state "$p")" = Z ] || printf '%s\n' "$p"
	done
}
stop_group() { # PGID: SIGTERM the group, SIGKILL it after 10 s
	local g=$1
	is_uint "$g" && [ "$g" -gt 1 ] || return 0
	[ -n "$(group_pids "$g")" ] || return 0
	kill -TERM -- "-$g" 2>/dev/null
	for _ in $(seq 100); do
		[ -z "$(group_pids "$g")" ] && return 0
		sleep 0.1
	done
	warn "process group $g did not stop on SIGTERM in 10 s: SIGKILL"
	kill -KILL -- "-$g" 2>/dev/null
	for _ in $(seq 50); do
		[ -z "$(group_pids "$g")" ] && return 0
		sleep 0.1
	done
	warn "process group $g is still there after SIGKILL"
}
stop_dir_server() { # DIR: stop the server whose pid file is DIR/pid
	local d=$1 g
	[ -s "$d/pid" ] || return 0
	g=$(cat "$d/pid")
	# Only a group whose leader is still the server started from DIR: its
	# command line names DIR, or it runs in DIR (or below).
	case "$(cmdline_of "$g") cwd=$(readlink "/proc/$g/cwd" 2>/dev/null)/" in
	*"$d"*) stop_group "$g" ;;
	esac
	rm -f "$d/pid"
}
stop_wrk() {
	local p
	[ -s "$WORK/wrk.pid" ] || return 0
	p=$(cat "$WORK/wrk.pid")
	case $(cmdline_of "$p") in wrk*) kill -TERM "$p" 2>/dev/null ;; esac
	rm -f "$WORK/wrk.pid"
}
cleanup() {
	local d
	trap - EXIT INT TERM HUP
	stop_wrk
	for d in "$WORK"/*/; do
		stop_dir_server "${d%/}"
	done
	save_logs
	rm -rf "$WORK"
}
# The servers' output, lodge's app logs, wrk's output and the probe's raw
# figures, for a look after the run (WORK is removed).
save_logs() {
	[ -n "$(ls -A "$WORK" 2>/dev/null)" ] || return 0
	(cd "$WORK" && find . \( -name '*.log' -o -name '*.out' -o -name '*.json' -o -name '*.conf' \
		-o -name final-mismatch -o -name manifest.tsv \) -print0 |
		tar -czf "$RESULTS_DIR/reload-$STAMP-logs.tar.gz" --null -T - 2>/dev/null) ||
		warn "could not save the logs"
}
trap cleanup EXIT
trap 'echo "reload.sh: interrupted" >&2; exit 130' INT TERM HUP

stop_leftovers() { # of runs that were killed (we hold the lock)
	local w d
	for w in "$STATE_DIR"/lodge-bench-reload.??????; do
		[ -d "$w" ] && [ "$w" != "$WORK" ] || continue
		for d in "$w"/*/; do
			[ -s "$d/pid" ] || continue
			say "stopping a server left by an earlier run: ${d%/} (process group $(cat "$d/pid"))"
			stop_dir_server "${d%/}"
		done
		rm -rf "$w"
	done
}
port_busy() { [ -n "$(ss -ltnH "sport = :$1" 2>/dev/null)" ]; }
ensure_port_free() { # PORT
	local port=$1
	port_busy "$port" || return 0
	for _ in $(seq 50); do
		port_busy "$port" || return 0
		sleep 0.1
	done
	die "port $PORT_BASE+$((port - PORT_BASE)) = $port is in use: $(ss -ltnpH "sport = :$port"); choose other ports with PORT_BASE"
}

port_of() { echo $((PORT_BASE + 10 * APP_INDEX[$2] + SRV_INDEX[$1])); } # SERVER APP
srv_name() {
	case $1 in
	lodge) echo "lodge-worker" ;;
	lodge5) echo "lodge-worker s5" ;;
	uwsgi) echo "uWSGI touch" ;;
	uwsgichain) echo "uWSGI chain" ;;
	gunicorn) echo "gunicorn HUP" ;;
	modwsgi) echo "mod_wsgi daemon" ;;
	*) echo "lodge-worker ($1)" ;;
	esac
}
app_label() { [ "$1" = flask ] && echo Flask || echo "$1"; }

log_tail() { # DIR
	echo "--- last lines of the server's output ($1/server.log):" >&2
	tail -n 25 "$1/server.log" >&2 2>/dev/null
	[ -f "$1/error.log" ] && { echo "--- Apache error log:" >&2; tail -n 25 "$1/error.log" >&2; }
	[ -d "$1/logs" ] && { echo "--- app logs:" >&2; tail -n 25 "$1"/logs/* >&2 2>/dev/null; }
	return 0
}

# The app's wsgi.py with "@V@" where the version number goes: the body
# "Hello from lodge!" becomes "Hello from lodge! [v=N]".
make_template() { # APP -> WORK/APP.tpl
	local app=$1 src tpl n
	src=$APPS_SRC/${APP_DIR[$app]}/wsgi.py
	tpl=$WORK/$app.tpl
	sed 's/lodge!\\n"/lodge! [v=@V@]\\n"/' "$src" >"$tpl" || die "cannot read $src"
	n=$(grep -c '@V@' "$tpl")
	[ "$n" = 1 ] || die "$src: expected one '${APP_BODY[$app]}\\n' string to put the version marker in, found $n"
}

# Prepares DIR for SERVER APP; sets APPFOLDER.
prepare_app() { # SERVER APP DIR
	local srv=$1 app=$2 d=$3
	rm -rf "$d"
	mkdir -p "$d" || die "cannot create $d"
	case $srv in
	lodge | lodge5 | rss | cold) mkdir -p "$d/apps" "$d/logs"; APPFOLDER=$d/apps/${APP_DIR[$app]} ;;
	*) APPFOLDER=$d/${APP_DIR[$app]} ;;
	esac
	cp -R "$APPS_SRC/${APP_DIR[$app]}" "$APPFOLDER" || die "cannot copy the $app app"
	find "$APPFOLDER" -name __pycache__ -prune -exec rm -rf {} + 2>/dev/null
	"$PY" "$PROBE" write --file "$APPFOLDER/wsgi.py" --stage "$d/stage.py" \
		--template "$WORK/$app.tpl" --version 0 || die "cannot write version 0 of $app"
	: >"$d/reload.touch"
}

apache_conf() { # DIR PORT APPFOLDER
	local d=$1 port=$2 af=$3
	mkdir -p "$d/run"
	cat >"$d/httpd.conf" <<EOF
# Private Apache for bench/reload.sh: mpm_event, mod_wsgi daemon mode,
# 1 daemon process x $THREADS threads, the app in the main interpreter.
ServerRoot /etc/apache2
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile $d/run/httpd.pid
DefaultRuntimeDir $d/run
Mutex file:$d/run default
ErrorLog $d/error.log
LogLevel warn
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule wsgi_module /usr/lib/apache2/modules/mod_wsgi.so
User www-data
Group www-data
KeepAlive On
MaxKeepAliveRequests 0
StartServers 1
ServerLimit 2
ThreadsPerChild 32
MaxRequestWorkers 64
MinSpareThreads 16
MaxSpareThreads 64
WSGISocketPrefix $d/run/wsgi
WSGIDaemonProcess app processes=1 threads=$THREADS display-name=%{GROUP} python-path=$af
WSGIProcessGroup app
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias / $af/wsgi.py
<Directory $af>
  Require all granted
</Directory>
EOF
}

# Checks that the server on PORT answers 200 with exactly BODY.
verify() { # DIR PORT BODY WHAT
	local d=$1 port=$2 want=$3 what=$4 code body
	body=$d/body
	code=$(curl -s --max-time 10 -o "$body" -w '%{http_code}' "http://127.0.0.1:$port/")
	if [ "$code" != 200 ] || [ "$(cat "$body")" != "$want" ]; then
		log_tail "$d"
		die "$what on port $port does not serve the expected body: HTTP $code, body '$(head -c 200 "$body")' (want '$want')"
	fi
}

# Starts SERVER APP in DIR on PORT (reload_probe.py spawn: times the first
# good answer); sets SPAWN_JSON, SRV_PID, TRIGGER.
start_server() { # SERVER APP DIR PORT [extra lodge options...]
	local srv=$1 app=$2 d=$3 port=$4 af out
	shift 4
	local -a cmd
	prepare_app "$srv" "$app" "$d"
	af=$APPFOLDER
	case $srv in
	lodge | lodge5 | rss | cold)
		cmd=("$LODGE_WORKER" --apps "$d/apps" --listen "tcp:127.0.0.1:$port"
			--log-dir "$d/logs" --threads "$THREADS" --control "$d/ctl" "$@")
		TRIGGER=none
		;;
	uwsgi | uwsgichain)
		# The HTTP router (--http, keep-alive on): with --http11-socket each
		# keep-alive connection holds one of the THREADS threads, so wrk's 8
		# connections would starve the probe; --http-socket closes every
		# connection, which wrk counts as a read error per request.
		# --worker-reload-mercy: a threaded worker that is running Python
		# when uWSGI's graceful-kill signal lands deadlocks (the handler
		# joins the request threads, which wait for the GIL it holds) until
		# the mercy runs out and the master SIGKILLs it: 60 s by default,
		# which happens on most Flask reloads under load; UWSGI_MERCY
		# bounds that stall so that a series fits in the time.
		# shellcheck disable=SC2054 # "http,python3" is one argument
		cmd=(/usr/bin/uwsgi --plugin http,python3 --master --processes 1 --threads "$THREADS"
			--http "127.0.0.1:$port" --http-keepalive --disable-logging --need-app
			--die-on-term --worker-reload-mercy "$UWSGI_MERCY"
			--chdir "$af" --module "${APP_ENTRY[$app]}")
		if [ "$srv" = uwsgi ]; then
			cmd+=(--touch-reload "$d/reload.touch")
		else
			cmd+=(--lazy-apps --touch-chain-reload "$d/reload.touch")
		fi
		TRIGGER=touch:$d/reload.touch
		;;
	gunicorn)
		cmd=(/usr/bin/gunicorn -k gthread --workers 1 --threads "$THREADS"
			--bind "127.0.0.1:$port" --chdir "$af" --log-level warning "${APP_ENTRY[$app]}")
		TRIGGER=hup
		;;
	modwsgi)
		apache_conf "$d" "$port" "$af"
		cmd=(/usr/sbin/apache2 -f "$d/httpd.conf" -DFOREGROUND)
		TRIGGER=touch:$af/wsgi.py
		;;
	esac
	ensure_port_free "$port"
	SPAWN_JSON=$d/spawn.json
	if ! out=$("$PY" "$PROBE" spawn --url "http://127.0.0.1:$port/" --expect "[v=0]" \
		--log "$d/server.log" --pidfile "$d/pid" --cwd "$d" --timeout 60 -- "${cmd[@]}" 9>&-); then
		log_tail "$d"
		die "$(srv_name "$srv") ($app, port $port) did not start serving"
	fi
	printf '%s\n' "$out" >"$SPAWN_JSON"
	SRV_PID=$(cat "$d/pid")
	[ "$TRIGGER" = hup ] && TRIGGER=hup:$SRV_PID
	verify "$d" "$port" "${APP_BODY[$app]} [v=0]" "$(srv_name "$srv") ($app)"
}

lodge_status() { # DIR -> the control socket's status line, or {"error": ...}
	"$PY" - "$1/ctl" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
    s.sendall(b"status\n")
    buf = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        buf += b
    json.loads(buf)
    sys.stdout.write(buf.decode())
except (OSError, ValueError) as e:
    print(json.dumps({"error": f"no answer to 'status' on the control socket ({e})"}))
    sys.exit(1)
EOF
}

# After a series: is the last version served?  Not fatal: what is served
# goes to DIR/final-mismatch for the report.
check_final() { # DIR PORT BODY WHAT
	local d=$1 port=$2 want=$3 what=$4 code
	code=$(curl -s --max-time 10 -o "$d/body" -w '%{http_code}' "http://127.0.0.1:$port/")
	if [ "$code" != 200 ] || [ "$(cat "$d/body")" != "$want" ]; then
		printf 'after the series %s answers HTTP %s, "%s" instead of "%s"\n' \
			"$what" "$code" "$(head -c 100 "$d/body")" "$want" | tee "$d/final-mismatch" >&2
	fi
	return 0
}

ready_ms() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["ready_ms"])' "$1"; }

# ----------------------------------------------------------- one series --
run_series() { # SERVER APP
	local srv=$1 app=$2 d port url wpid rc
	local -a extra=()
	d=$WORK/$srv-$app
	port=$(port_of "$srv" "$app")
	url=http://127.0.0.1:$port/
	[ "$srv" = lodge5 ] && extra=(--settle-ms 5)
	say ""
	say "== $(srv_name "$srv"), $(app_label "$app") app (port $port) =="
	start_server "$srv" "$app" "$d" "$port" "${extra[@]}"
	say "  serving [v=0] after $(ready_ms "$SPAWN_JSON") ms (pid $SRV_PID); reload trigger: ${TRIGGER%%:*}"
	case $srv in lodge | lodge5) lodge_status "$d" >"$d/status-start.json" || warn "$(cat "$d/status-start.json")" ;; esac
	if [ "$WARMUP" -gt 0 ]; then
		wrk -t1 -c"$WRK_CONNS" -d"${WARMUP}s" "$url" >"$d/warmup.out" 2>&1 ||
			{ cat "$d/warmup.out" >&2; die "wrk warm-up against $(srv_name "$srv") ($app) failed"; }
	fi
	verify "$d" "$port" "${APP_BODY[$app]} [v=0]" "$(srv_name "$srv") ($app)"
	# wrk runs through the whole series; SIGINT makes it print its figures.
	wrk -t1 -c"$WRK_CONNS" -d3600s --latency --timeout 10s "$url" >"$d/wrk.out" 2>&1 9>&- &
	wpid=$!
	echo "$wpid" >"$WORK/wrk.pid"
	sleep 1
	kill -0 "$wpid" 2>/dev/null || { cat "$d/wrk.out" >&2; die "wrk exited at once"; }
	ctl_args=()
	case $srv in lodge | lodge5) ctl_args=(--ctl "$d/ctl" --app "${APP_DIR[$app]}") ;; esac
	"$PY" "$PROBE" series --url "$url" --file "$APPFOLDER/wsgi.py" --stage "$d/stage.py" \
		--template "$WORK/$app.tpl" --start 0 --count "$RELOADS" --gap "$GAP" \
		--trigger "$TRIGGER" --out "$d/series.json" "${ctl_args[@]}" 9>&-
	rc=$?
	sleep 0.5
	kill -INT "$wpid" 2>/dev/null
	wait "$wpid"
	rm -f "$WORK/wrk.pid"
	[ "$rc" -eq 0 ] || { log_tail "$d"; die "the reload probe failed against $(srv_name "$srv") ($app)"; }
	grep -q '^Requests/sec:' "$d/wrk.out" || { cat "$d/wrk.out" >&2; die "wrk printed no figures"; }
	[ -n "$(group_pids "$SRV_PID")" ] || { log_tail "$d"; die "$(srv_name "$srv") ($app) died during the series"; }
	check_final "$d" "$port" "${APP_BODY[$app]} [v=$RELOADS]" "$(srv_name "$srv") ($app)"
	case $srv in lodge | lodge5) lodge_status "$d" >"$d/status-end.json" || warn "$(cat "$d/status-end.json")" ;; esac
	"$PY" - "$d/series.json" "$d/wrk.out" <<'EOF'
import json, re, sys
s = json.load(open(sys.argv[1]))
s["p50_ms"] = -1 if s["p50_ms"] is None else s["p50_ms"]
s["p95_ms"] = -1 if s["p95_ms"] is None else s["p95_ms"]
w = open(sys.argv[2]).read()
se = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", w)
n2 = re.search(r"Non-2xx or 3xx responses: (\d+)", w)
mx = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", w)
print("  p50 %.1f ms, p95 %.1f ms; probe failures %d, wrk non-2xx %s, socket errors %s; wrk max %s" % (
    s["p50_ms"] or -1, s["p95_ms"] or -1, s["probe_failures"], n2.group(1) if n2 else 0,
    "/".join(se.groups()) if se else "0/0/0/0", mx.group(1) if mx else "?"))
EOF
	stop_dir_server "$d"
	printf 'series\t%s\t%s\t%s\n' "$srv" "$app" "$d" >>"$MANIFEST"
}

# --------------------------------------------------- lodge without load --
run_cold() { # APP: COLD_RUNS fresh starts
	local app=$1 d port i
	d=$WORK/cold-$app
	port=$(port_of cold "$app")
	say ""
	say "== lodge-worker cold start, $(app_label "$app") app: $COLD_RUNS fresh start(s) =="
	mkdir -p "$WORK/coldres-$app"
	for i in $(seq "$COLD_RUNS"); do
		start_server cold "$app" "$d" "$port"
		cp "$SPAWN_JSON" "$WORK/coldres-$app/spawn-$i.json"
		cp "$d/server.log" "$WORK/coldres-$app/server-$i.log"
		say "  start $i: first good 200 after $(ready_ms "$SPAWN_JSON") ms"
		stop_dir_server "$d"
	done
	printf 'cold\tlodge\t%s\t%s\n' "$app" "$WORK/coldres-$app" >>"$MANIFEST"
}

run_rss() { # APP
	local app=$1 d port url
	d=$WORK/rss-$app
	port=$(port_of rss "$app")
	url=http://127.0.0.1:$port/
	say ""
	say "== lodge-worker RSS, $(app_label "$app") app: $RSS_RELOADS reloads without load =="
	start_server rss "$app" "$d" "$port"
	for _ in $(seq 20); do curl -s --max-time 5 -o /dev/null "$url"; done
	"$PY" "$PROBE" rss --url "$url" --file "$APPFOLDER/wsgi.py" --stage "$d/stage.py" \
		--template "$WORK/$app.tpl" --start 0 --count "$RSS_RELOADS" --ctl "$d/ctl" \
		--app "${APP_DIR[$app]}" --checkpoints 1,10,50 --out "$d/rss.json" 9>&- ||
		{ log_tail "$d"; die "the RSS loop failed ($app)"; }
	check_final "$d" "$port" "${APP_BODY[$app]} [v=$RSS_RELOADS]" "lodge-worker ($app), RSS loop,"
	"$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))
k = r["rss_kb"]
print("  VmRSS: " + ", ".join("@%s %.1f MiB" % (n, k[n] / 1024) for n in sorted(k, key=int))
      + "; pid(s) " + " ".join(map(str, r["pids"]))
      + "; %d/%d reloads seen, p50 %s ms" % (r["ok"], r["reloads"],
        "%.1f" % r["p50_ms"] if r["p50_ms"] is not None else "-"))
for m in r["problems"]:
    print("  PROBLEM " + m)
if r["aborted_after"]:
    print("  stopped after reload %d: the last reloads were not seen" % r["aborted_after"])' "$d/rss.json"
	stop_dir_server "$d"
	printf 'rss\tlodge\t%s\t%s\n' "$app" "$d" >>"$MANIFEST"
}

# ------------------------------------------------------------------ main --
stop_leftovers
for app in $APPS; do
	make_template "$app"
	for s in $SERVERS rss cold; do ensure_port_free "$(port_of "$s" "$app")"; done
done

nser=$(( $(echo $SERVERS | wc -w) * $(echo $APPS | wc -w) ))
say "bench/reload.sh: $nser series of $RELOADS reloads under wrk -t1 -c$WRK_CONNS; RSS loop of $RSS_RELOADS reloads; QUICK=$QUICK"
say "  lodge-worker: $LODGE_SRC_BINARY ($LODGE_MTIME, commit $LODGE_COMMIT), run from a copy"
say "  load average: $(cut -d' ' -f1-3 /proc/loadavg)"
[ -n "$CONCURRENT" ] && say "  WARNING: $CONCURRENT"

case " $SERVERS " in *" lodge "* | *" lodge5 "*)
	for app in $APPS; do run_cold "$app"; done
	for app in $APPS; do run_rss "$app"; done ;;
esac
for app in $APPS; do
	for srv in $SERVERS; do
		run_series "$srv" "$app"
	done
done

REPORT=$RESULTS_DIR/reload-$STAMP.txt
TSV=$RESULTS_DIR/reload-$STAMP.tsv
{
	say ""
	say "==== lodge reload benchmark, $(date '+%Y-%m-%d %H:%M:%S %Z') ($(( $(date +%s) - T_START )) s) ===="
	say "machine: $(nproc) CPU(s), $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r); load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
	say "lodge:   $("$LODGE_WORKER" --version 2>&1 | head -n 1), binary of $LODGE_MTIME (copied at the start of the run; then: commit $LODGE_COMMIT)"
	say "peers:   uWSGI $(/usr/bin/uwsgi --version 2>/dev/null), gunicorn $("$PY" -c 'import gunicorn; print(gunicorn.__version__)' 2>/dev/null), $(/usr/sbin/apache2 -v 2>/dev/null | awk -F': ' '/version/ { print $2 }') + mod_wsgi $(dpkg-query -W -f='${Version}' libapache2-mod-wsgi-py3 2>/dev/null), Python $("$PY" -c 'import platform; print(platform.python_version())'), Flask $("$PY" -c 'import importlib.metadata as m; print(m.version("flask"))' 2>/dev/null)"
	say "load:    wrk -t1 -c$WRK_CONNS (keep-alive, --timeout 10s) through each series; probe: 1 new connection per poll, a poll every 1 ms"
	say "reloads: $RELOADS per series, ${GAP} s of polling between them; every server 1 process x $THREADS threads"
	say "uWSGI:   --http router with --http-keepalive, --worker-reload-mercy $UWSGI_MERCY; gunicorn -k gthread; Apache mpm_event + mod_wsgi daemon"
	[ -n "$CONCURRENT" ] && say "WARNING: $CONCURRENT"
	"$PY" "$BENCH/reload_report.py" "$MANIFEST" "$TSV" "$RELOADS" "$RSS_RELOADS"
} | tee "$REPORT"
[ "${PIPESTATUS[0]}" -eq 0 ] || die "could not write the report"
say ""
say "saved: $REPORT (every reload latency: $TSV; logs: $RESULTS_DIR/reload-$STAMP-logs.tar.gz)"
exit 0
