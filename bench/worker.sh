#!/usr/bin/env bash
# bench/worker.sh: lodge-worker against uWSGI and gunicorn, on loopback.
#
# WHAT IT MEASURES
#   Requests per second and p99 latency of one lodge-worker process (THREADS
#   threads) serving a plain WSGI "hello" app (demo/apps/hello) and the Flask
#   demo app (demo/apps/blog), against two peers serving the same apps:
#     - uWSGI: Debian's uwsgi + python3 plugin, --http11-socket (so it keeps
#       connections alive as lodge-worker does), --master, 1 process x THREADS
#       threads, request logging off (bench/peers/uwsgi.ini);
#     - gunicorn: Debian's, -k gthread, 1 worker x THREADS threads, access log
#       off (bench/peers/gunicorn.conf.py).
#   The load is wrk with 1 thread and keep-alive connections (16 and 64),
#   DURATION s per measurement. Runs are interleaved (for run in 1..RUNS: for
#   app: for connections: for server) so that noise hits every server alike.
#   All six servers (3 servers x 2 apps) listen on 127.0.0.1, each on its own
#   port and each serving its own copy of the app folder, and each one is
#   checked (curl, exact body) to be serving the right app before every
#   measurement. Printed, per app and connection count: the MEDIAN over the
#   runs of req/s, p99 latency, wrk's CPU share and the server's CPU share
#   (% of one core: CPU time / wall time), the ratios lodge/uWSGI and
#   lodge/gunicorn, and the non-2xx and socket errors that wrk saw (they
#   should be 0; any are flagged).
#   Also printed: each server's idle PSS (from /proc/PID/smaps_rollup, summed
#   over its processes: lodge-worker is 1, uWSGI master+worker, gunicorn
#   arbiter+worker), with one app, after 20 warm-up requests and 1 s idle;
#   each server is measured while it runs alone, so that shared pages (such
#   as libpython's) are not split with the other servers.
#   Targets, printed with PASS/MISS (informational only):
#     hello: lodge req/s >= 2x uWSGI's, and lodge p99 <= uWSGI's;
#     Flask: lodge req/s >= 1.1x uWSGI's;
#     lodge-worker idle PSS with the hello app <= 12 MiB.
#
# HOW TO RUN
#   scripts/install-deps.sh --bench   # once, as root: wrk, uwsgi, gunicorn...
#   bench/worker.sh                   # the full benchmark
#   QUICK=1 bench/worker.sh           # smoke test: DURATION=2, RUNS=1
#   Environment (defaults in brackets):
#     DURATION [10]   seconds of wrk per measurement
#     RUNS [3]        interleaved runs; the medians are over these
#     CONNS ["16 64"] wrk connection counts
#     THREADS [4]     serving threads of every server
#     QUICK [0]       1: DURATION=2, RUNS=1, WARMUP=1 (unless set explicitly)
#     WARMUP [2]      seconds of wrk load per server before run 1 (0: none)
#     PORT_BASE [18400]  servers listen on PORT_BASE+1.. PORT_BASE+13
#     LODGE_WORKER [build/lodge-worker]  (built with cmake if missing)
#   The output is printed and also saved to bench/results/worker-DATE.txt,
#   with the raw per-run figures in bench/results/worker-DATE.tsv.
#   Exit status: 0 whatever the targets say; 1 if a server did not start or
#   did not serve the right app (or wrk failed); 2 if a dependency is missing.
#
# HOW LONG IT TAKES
#   2 apps x (number of CONNS) x 3 servers x RUNS x DURATION, plus about
#   30-40 s of start-up, idle-memory measurement and warm-up: about 7 minutes
#   at the defaults (6 min of load), about 1 minute with QUICK=1.

# shellcheck disable=SC2015,SC2016,SC2086,SC2317 # intended: word splitting of
# /proc fields and CONNS, A && B || die, sh -c scripts, trap-only functions
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
APPS_SRC=$ROOT/demo/apps
PY=/usr/bin/python3

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
	DURATION=${DURATION:-2}
	RUNS=${RUNS:-1}
	WARMUP=${WARMUP:-1}
fi
DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
CONNS=${CONNS:-"16 64"}
THREADS=${THREADS:-4}
WARMUP=${WARMUP:-2}
PORT_BASE=${PORT_BASE:-18400}
LODGE_WORKER=${LODGE_WORKER:-$ROOT/build/lodge-worker}

# The servers must run Debian's Python, whatever the caller's environment.
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP PYTHONUSERBASE

APPS="hello flask"
SERVERS="lodge uwsgi gunicorn"
declare -A APP_DIR=([hello]=hello [flask]=blog)
declare -A APP_ENTRY=([hello]=wsgi:application [flask]=wsgi:app)
declare -A APP_BODY=([hello]="Hello from lodge!" [flask]="Hello from Flask on lodge!")
declare -A APP_INDEX=([hello]=0 [flask]=1)
declare -A SRV_INDEX=([lodge]=1 [uwsgi]=2 [gunicorn]=3)
declare -A PGID=() BGPID=()

say() { printf '%s\n' "$*"; }
warn() { printf 'worker.sh: %s\n' "$*" >&2; }
die() {
	printf '\nworker.sh: FAILED: %s\n' "$*" >&2
	exit 1
}
dep_missing() {
	printf 'worker.sh: missing: %s\n  install with: %s/scripts/install-deps.sh --bench\n' "$*" "$ROOT" >&2
	exit 2
}
is_uint() { case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }

# ---------------------------------------------------------------- checks --
for v in DURATION RUNS THREADS WARMUP PORT_BASE; do
	is_uint "${!v}" || { warn "$v must be a whole number, not '${!v}'"; exit 2; }
done
[ "$DURATION" -ge 1 ] && [ "$RUNS" -ge 1 ] && [ "$THREADS" -ge 1 ] ||
	{ warn "DURATION, RUNS and THREADS must be at least 1"; exit 2; }
[ -n "$CONNS" ] || { warn "CONNS is empty"; exit 2; }
for c in $CONNS; do
	is_uint "$c" && [ "$c" -ge 1 ] || { warn "CONNS must list whole numbers, not '$CONNS'"; exit 2; }
done

for t in /usr/bin/wrk /usr/bin/uwsgi /usr/bin/gunicorn /usr/bin/curl /usr/bin/time \
	"$PY" /usr/bin/setsid /usr/bin/pgrep /usr/bin/flock; do
	[ -x "$t" ] || dep_missing "$t"
done
command -v ss >/dev/null || dep_missing "ss (iproute2)"
[ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] || dep_missing "uWSGI's python3 plugin (uwsgi-plugin-python3)"
"$PY" -c 'import flask' 2>/dev/null || dep_missing "Flask for $PY (python3-flask)"
[ -r /proc/self/smaps_rollup ] || { warn "/proc/PID/smaps_rollup is not readable here"; exit 2; }

if [ ! -x "$LODGE_WORKER" ]; then
	if [ "$LODGE_WORKER" = "$ROOT/build/lodge-worker" ]; then
		say "lodge-worker is not built: building it (cmake)..."
		(cd "$ROOT" && cmake -S . -B build -DLODGE_TESTS=OFF >/dev/null &&
			cmake --build build -j2 --target lodge-worker >/dev/null) ||
			die "could not build lodge-worker (cd $ROOT && cmake -S . -B build -DLODGE_TESTS=OFF && cmake --build build --target lodge-worker)"
	fi
	[ -x "$LODGE_WORKER" ] || die "no lodge-worker at $LODGE_WORKER"
fi

# One benchmark at a time: a second one would skew both, and each one stops
# the servers that an earlier, interrupted one left behind.
STATE_DIR=${TMPDIR:-/tmp}
STATE_FILE=$STATE_DIR/lodge-bench-worker.pgids
exec 9>"$STATE_DIR/lodge-bench-worker.lock"
flock -n 9 || { warn "another bench/worker.sh is running (lock $STATE_DIR/lodge-bench-worker.lock)"; exit 2; }

WORK=$(mktemp -d "$STATE_DIR/lodge-bench-worker.XXXXXX") || die "mktemp failed"
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS_DIR=$BENCH/results
mkdir -p "$RESULTS_DIR" || die "cannot create $RESULTS_DIR"
TSV=$WORK/runs.tsv
PSS=$WORK/pss.tsv
CLK_TCK=$(getconf CLK_TCK)

# ----------------------------------------------------- process handling --
# Every server runs in its own session and process group (setsid), whose id
# is written to WORK/.../pid by the shell that then execs the server; it is
# stopped by signalling the whole group. The group ids are also kept in
# STATE_FILE so that a later run can stop what an interrupted one left.

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
is_server_cmd() { # PID: a server that this script started (in any run)?
	local c
	c=$(cmdline_of "$1")
	case $c in */lodge-bench-worker.*) ;; *) return 1 ;; esac
	case $c in
	*lodge-worker* | *uwsgi* | *gunicorn*) return 0 ;;
	*) return 1 ;;
	esac
}
group_pids() { # PGID -> its live (non-zombie) processes
	local p f
	for p in $(pgrep -g "$1" 2>/dev/null); do
		f=$(proc_fields "$p") || continue
		[ "${f%% *}" = Z ] || printf '%s\n' "$p"
	done
}
group_ticks() { # PGID -> utime+stime of its processes, in clock ticks
	local p f t=0
	for p in $(group_pids "$1"); do
		f=$(proc_fields "$p") || continue
		set -- $f
		t=$((t + ${12} + ${13}))
	done
	printf '%s\n' "$t"
}
group_pss_kb() { # PGID -> "PSS_kB nprocs"
	local p k n=0 t=0
	for p in $(group_pids "$1"); do
		k=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null) || continue
		[ -n "$k" ] || continue
		t=$((t + k))
		n=$((n + 1))
	done
	printf '%s %s\n' "$t" "$n"
}
stop_group() { # PGID: SIGTERM the group, SIGKILL it after 10 s
	local g=$1
	is_uint "$g" && [ "$g" -gt 1 ] && [ "$g" != "$(pgid_of $$)" ] || return 0
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
state_forget() { # PGID
	[ -f "$STATE_FILE" ] || return 0
	grep -v "^$1 " "$STATE_FILE" >"$STATE_FILE.new" 2>/dev/null
	mv -f "$STATE_FILE.new" "$STATE_FILE"
}
stop_leftovers() {
	local g rest
	[ -s "$STATE_FILE" ] || return 0
	while read -r g rest; do
		if is_uint "$g" && [ -d "/proc/$g" ] && is_server_cmd "$g"; then
			say "stopping a server left by an earlier run: process group $g ($rest)"
			stop_group "$g"
		fi
	done <"$STATE_FILE"
	: >"$STATE_FILE"
}
remove_stale_workdirs() { # those of runs that were killed (we hold the lock)
	local d
	for d in "$STATE_DIR"/lodge-bench-worker.??????; do
		[ -d "$d" ] && [ "$d" != "$WORK" ] && rm -rf "$d"
	done
	return 0
}
port_busy() { [ -n "$(ss -ltnH "sport = :$1" 2>/dev/null)" ]; }
port_pids() { ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u; }
ensure_port_free() { # PORT: stop a leftover lodge-worker/uWSGI/gunicorn on it, or fail
	local port=$1 p g
	port_busy "$port" || return 0
	for p in $(port_pids "$port"); do
		if is_server_cmd "$p"; then
			g=$(pgid_of "$p")
			say "port $port is held by a leftover server, pid $p: stopping it"
			if [ -n "$g" ] && is_server_cmd "$g"; then stop_group "$g"; else kill -TERM "$p" 2>/dev/null; fi
		else
			die "port $port is in use by pid $p ($(cmdline_of "$p")), which this script did not start; choose other ports with PORT_BASE"
		fi
	done
	for _ in $(seq 100); do
		port_busy "$port" || return 0
		sleep 0.1
	done
	die "port $port is still in use: $(ss -ltnpH "sport = :$port")"
}

port_of() { echo $((PORT_BASE + 10 * APP_INDEX[$2] + SRV_INDEX[$1])); } # SERVER APP
url_of() { echo "http://127.0.0.1:$(port_of "$1" "$2")/"; }
srv_name() {
	case $1 in lodge) echo lodge-worker ;; uwsgi) echo uWSGI ;; gunicorn) echo gunicorn ;; esac
}

server_log_tail() { # SERVER APP
	local log=$WORK/$1-$2/server.log
	echo "--- last lines of $(srv_name "$1")'s output ($2):" >&2
	tail -n 20 "$log" >&2 2>/dev/null
	if [ -d "$WORK/$1-$2/logs" ]; then
		echo "--- app logs:" >&2
		tail -n 20 "$WORK/$1-$2"/logs/* >&2 2>/dev/null
	fi
}

copy_app() { # SRC DEST: a fresh copy, without bytecode caches
	cp -R "$1" "$2" || die "cannot copy $1 to $2"
	find "$2" -name __pycache__ -prune -exec rm -rf {} + 2>/dev/null
}

# Checks that SERVER APP answers 200 with exactly the app's body, and that
# the socket on its port belongs to the server's own process group.
verify() { # SERVER APP
	local srv=$1 app=$2 port body code p g
	port=$(port_of "$srv" "$app")
	body=$WORK/body
	code=$(curl -s --max-time 5 -o "$body" -w '%{http_code}' "http://127.0.0.1:$port/")
	if [ "$code" != 200 ] || [ "$(cat "$body")" != "${APP_BODY[$app]}" ]; then
		server_log_tail "$srv" "$app"
		die "$(srv_name "$srv") on port $port is not serving the $app app: HTTP $code, body '$(head -c 200 "$body")' (want '${APP_BODY[$app]}')"
	fi
	for p in $(port_pids "$port"); do
		g=$(pgid_of "$p")
		[ "$g" = "${PGID[$srv-$app]}" ] ||
			die "port $port is held by pid $p ($(cmdline_of "$p")), not by the $(srv_name "$srv") this script started"
	done
}

start_server() { # SERVER APP
	local srv=$1 app=$2 port d code
	local -a cmd
	port=$(port_of "$srv" "$app")
	d=$WORK/$srv-$app
	rm -rf "$d"
	mkdir -p "$d" || die "cannot create $d"
	case $srv in
	lodge)
		# One app per apps folder: it is the default app, no routing header.
		mkdir -p "$d/apps" "$d/logs"
		copy_app "$APPS_SRC/${APP_DIR[$app]}" "$d/apps/${APP_DIR[$app]}"
		cmd=("$LODGE_WORKER" --apps "$d/apps" --listen "tcp:127.0.0.1:$port"
			--log-dir "$d/logs" --threads "$THREADS")
		;;
	uwsgi)
		copy_app "$APPS_SRC/${APP_DIR[$app]}" "$d/${APP_DIR[$app]}"
		cmd=(/usr/bin/uwsgi --ini "$BENCH/peers/uwsgi.ini" --http11-socket "127.0.0.1:$port"
			--threads "$THREADS" --chdir "$d/${APP_DIR[$app]}" --module "${APP_ENTRY[$app]}")
		;;
	gunicorn)
		copy_app "$APPS_SRC/${APP_DIR[$app]}" "$d/${APP_DIR[$app]}"
		cmd=(/usr/bin/gunicorn -c "$BENCH/peers/gunicorn.conf.py" --bind "127.0.0.1:$port"
			--threads "$THREADS" --chdir "$d/${APP_DIR[$app]}" "${APP_ENTRY[$app]}")
		;;
	esac
	ensure_port_free "$port"
	(cd "$d" && exec setsid sh -c 'echo $$ >"$0"; exec "$@"' "$d/pid" "${cmd[@]}" \
		</dev/null >"$d/server.log" 2>&1 9>&-) &
	BGPID[$srv-$app]=$!
	for _ in $(seq 50); do
		[ -s "$d/pid" ] && break
		sleep 0.1
	done
	[ -s "$d/pid" ] || die "$(srv_name "$srv") ($app) did not start"
	PGID[$srv-$app]=$(cat "$d/pid")
	echo "${PGID[$srv-$app]} port=$port $srv $app" >>"$STATE_FILE"
	# Wait until it answers (an import of Flask takes a moment), at most 30 s.
	for _ in $(seq 300); do
		if [ -z "$(group_pids "${PGID[$srv-$app]}")" ]; then
			server_log_tail "$srv" "$app"
			die "$(srv_name "$srv") ($app, port $port) exited at start-up"
		fi
		code=$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")
		[ "$code" != 000 ] && break
		sleep 0.1
	done
	[ "$code" != 000 ] || { server_log_tail "$srv" "$app"; die "$(srv_name "$srv") ($app, port $port) did not answer in 30 s"; }
	verify "$srv" "$app"
}

stop_server() { # SERVER APP
	local k=$1-$2
	[ -n "${PGID[$k]:-}" ] || return 0
	stop_group "${PGID[$k]}"
	wait "${BGPID[$k]}" 2>/dev/null
	state_forget "${PGID[$k]}"
	unset "PGID[$k]" "BGPID[$k]"
}

cleanup() {
	local k
	trap - EXIT INT TERM HUP
	for k in "${!PGID[@]}"; do
		stop_server "${k%%-*}" "${k#*-}"
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "worker.sh: interrupted" >&2; exit 130' INT TERM HUP

# wrk's output -> "rps p99_ms non2xx sockerr_total sockerr_detail requests"
parse_wrk() {
	awk '
	function ms(v,  n, u) {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") return n / 1000; if (u == "ms") return n
		if (u == "s") return n * 1000; if (u == "m") return n * 60000
		if (u == "h") return n * 3600000; return -1
	}
	/^Requests\/sec:/ { rps = $2 }
	/^ *99%/ { p99 = ms($2) }
	/requests in/ { req = $1 }
	/Non-2xx or 3xx responses:/ { n2 = $NF }
	/Socket errors:/ {
		c = $4; r = $6; w = $8; t = $10
		gsub(/,/, "", c); gsub(/,/, "", r); gsub(/,/, "", w)
		se = c + r + w + t; det = c "/" r "/" w "/" t
	}
	END {
		if (rps == "" || p99 == "") exit 1
		printf "%s %.3f %d %d %s %s\n", rps, p99, n2 + 0, se + 0, (det == "" ? "0/0/0/0" : det), req
	}'
}

# One wrk measurement of SERVER APP with CONNS connections -> a line of TSV.
measure() { # RUN APP CONNS SERVER
	local run=$1 app=$2 conns=$3 srv=$4 g url out tf t0 t1 w0 w1 rc parsed times
	g=${PGID[$srv-$app]}
	url=$(url_of "$srv" "$app")
	out=$WORK/wrk.out
	tf=$WORK/wrk.time
	verify "$srv" "$app"
	t0=$(group_ticks "$g")
	w0=$(date +%s%N)
	/usr/bin/time -f '%U %S %e' -o "$tf" wrk -t1 -c"$conns" -d"${DURATION}s" --latency "$url" >"$out" 2>&1
	rc=$?
	w1=$(date +%s%N)
	t1=$(group_ticks "$g")
	if [ "$rc" -ne 0 ]; then
		cat "$out" >&2
		die "wrk failed (exit $rc) against $(srv_name "$srv") ($app, $conns connections)"
	fi
	[ -n "$(group_pids "$g")" ] || { server_log_tail "$srv" "$app"; die "$(srv_name "$srv") ($app) died under load"; }
	parsed=$(parse_wrk <"$out") || { cat "$out" >&2; die "cannot read wrk's output"; }
	times=$(tail -n 1 "$tf")
	# shellcheck disable=SC2086
	set -- $parsed $times
	# $1 rps $2 p99 $3 non2xx $4 sockerr $5 detail $6 requests $7 user $8 sys $9 wall
	awk -v run="$run" -v app="$app" -v conns="$conns" -v srv="$srv" \
		-v rps="$1" -v p99="$2" -v n2="$3" -v se="$4" -v det="$5" -v req="$6" \
		-v wu="$7" -v ws="$8" -v we="$9" -v dt="$((t1 - t0))" -v hz="$CLK_TCK" \
		-v wall_ns="$((w1 - w0))" 'BEGIN {
		wall = wall_ns / 1e9
		wrk_cpu = (we > 0 ? 100 * (wu + ws) / we : 0)
		srv_cpu = 100 * (dt / hz) / wall
		printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.1f\t%.1f\n",
			run, app, conns, srv, rps, p99, n2, se, det, req, wall, wrk_cpu, srv_cpu
	}' >>"$TSV"
	tail -n 1 "$TSV" | awk -F'\t' -v name="$(srv_name "$srv")" -v runs="$RUNS" '{
		flag = ($7 + $8 > 0) ? sprintf("  FLAG: non-2xx %d, socket errors %d (c/r/w/t %s)", $7, $8, $9) : ""
		printf "  run %d/%d  %-5s c=%-4s %-12s %10.0f req/s  p99 %8.2f ms  wrk CPU %3.0f%%  server CPU %3.0f%%%s\n",
			$1, runs, $2, $3, name, $5, $6, $12, $13, flag
	}'
}

# ------------------------------------------------------------------ main --
stop_leftovers
remove_stale_workdirs
for app in $APPS; do for srv in $SERVERS; do ensure_port_free "$(port_of "$srv" "$app")"; done; done
printf 'run\tapp\tconns\tserver\trps\tp99_ms\tnon2xx\tsockerr\tsockerr_crwt\trequests\twall_s\twrk_cpu_pct\tserver_cpu_pct\n' >"$TSV"
: >"$PSS"

nconns=$(echo $CONNS | wc -w)
say "bench/worker.sh: lodge-worker vs uWSGI vs gunicorn; DURATION=${DURATION}s RUNS=$RUNS CONNS=\"$CONNS\" THREADS=$THREADS"
est=$((2 * nconns * 3 * RUNS * (2 * DURATION + 1) / 2 + 40 + 6 * WARMUP))
say "  about $(((est + 30) / 60)) min in all ($((2 * nconns * 3 * RUNS)) measurements of ${DURATION} s)"

# 1. Idle PSS: each server alone, after 20 warm-up requests and 1 s idle.
say ""
say "idle memory, each server alone:"
for app in $APPS; do
	for srv in $SERVERS; do
		start_server "$srv" "$app"
		url=$(url_of "$srv" "$app")
		urls=()
		for _ in $(seq 20); do urls+=("$url"); done
		curl -s --max-time 10 "${urls[@]}" >/dev/null || die "warm-up requests to $(srv_name "$srv") ($app) failed"
		sleep 1
		read -r kb nprocs <<<"$(group_pss_kb "${PGID[$srv-$app]}")"
		printf '%s\t%s\t%s\t%s\n' "$app" "$srv" "$kb" "$nprocs" >>"$PSS"
		awk -v a="$app" -v s="$(srv_name "$srv")" -v kb="$kb" -v n="$nprocs" \
			'BEGIN { printf "  %-5s %-12s PSS %6.1f MiB (%d process(es))\n", a, s, kb / 1024, n }'
		stop_server "$srv" "$app"
	done
done

# 2. Throughput and latency: all six servers up, interleaved runs.
say ""
say "starting the six servers (ports $((PORT_BASE + 1))-$((PORT_BASE + 13)))..."
for app in $APPS; do
	for srv in $SERVERS; do
		start_server "$srv" "$app"
		say "  $(srv_name "$srv") serving $app on $(url_of "$srv" "$app") (process group ${PGID[$srv-$app]}): OK"
	done
done
if [ "$WARMUP" -gt 0 ]; then
	maxc=$(printf '%s\n' $CONNS | sort -n | tail -n 1)
	say "warm-up: ${WARMUP} s of wrk per server (c=$maxc)..."
	for app in $APPS; do
		for srv in $SERVERS; do
			wrk -t1 -c"$maxc" -d"${WARMUP}s" "$(url_of "$srv" "$app")" >/dev/null 2>&1 ||
				die "wrk warm-up against $(srv_name "$srv") ($app) failed"
		done
	done
fi
say ""
say "measuring (wrk -t1 -d${DURATION}s --latency):"
for run in $(seq "$RUNS"); do
	for app in $APPS; do
		for c in $CONNS; do
			for srv in $SERVERS; do
				measure "$run" "$app" "$c" "$srv"
			done
		done
	done
done
for app in $APPS; do for srv in $SERVERS; do verify "$srv" "$app"; done; done

# 3. The report: printed, and saved under bench/results/.
REPORT=$RESULTS_DIR/worker-$STAMP.txt
cp "$TSV" "$RESULTS_DIR/worker-$STAMP.tsv"
{
	say ""
	say "==== lodge-worker benchmark, $(date '+%Y-%m-%d %H:%M:%S %Z') ===="
	say "machine: $(nproc) CPU(s), $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r)"
	say "lodge:   $("$LODGE_WORKER" --version 2>&1 | head -n 1) (commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
	say "peers:   uWSGI $(/usr/bin/uwsgi --version 2>/dev/null), gunicorn $("$PY" -c 'import gunicorn; print(gunicorn.__version__)' 2>/dev/null), Python $("$PY" -c 'import platform; print(platform.python_version())'), Flask $("$PY" -c 'import importlib.metadata as m; print(m.version("flask"))' 2>/dev/null)"
	say "load:    $(wrk -v 2>&1 | head -n 1 | awk '{ print $1, $2 }'), 1 thread, keep-alive, $DURATION s per measurement, $RUNS interleaved run(s)"
	say "servers: 1 process x $THREADS threads each (uWSGI: + master; gunicorn: + arbiter), 127.0.0.1"
	"$PY" - "$TSV" "$PSS" "$RUNS" "$DURATION" "$CONNS" <<'PYEOF'
import csv
import statistics
import sys

tsv, pss_file, runs, duration, conns_list = sys.argv[1:6]
conns_list = [int(c) for c in conns_list.split()]
rows = list(csv.DictReader(open(tsv), delimiter="\t"))
NAMES = {"lodge": "lodge-worker", "uwsgi": "uWSGI", "gunicorn": "gunicorn"}
SERVERS = ["lodge", "uwsgi", "gunicorn"]
APPS = [("hello", "hello"), ("flask", "Flask")]


def med(app, conns, srv, key):
    vals = [float(r[key]) for r in rows
            if r["app"] == app and int(r["conns"]) == conns and r["server"] == srv]
    return statistics.median(vals) if vals else float("nan"), vals


def total(app, conns, srv, key):
    return sum(int(r[key]) for r in rows
               if r["app"] == app and int(r["conns"]) == conns and r["server"] == srv)


def mib(kb):
    return kb / 1024.0


verdicts = []
flags = []
for app, label in APPS:
    for conns in conns_list:
        print()
        print(f"-- {label} app, {conns} connections: median of {runs} run(s) x {duration} s --")
        if (app, conns) == (APPS[0][0], conns_list[0]):
            print("  (spread: (max - min) / median of req/s over the runs; CPU: % of one core)")
        print(f"  {'server':<15}{'req/s':>10}{'spread':>8}{'p99 ms':>10}"
              f"{'wrk CPU':>9}{'srv CPU':>9}{'non-2xx':>9}{'sock err':>10}")
        m = {}
        for srv in SERVERS:
            rps, rps_all = med(app, conns, srv, "rps")
            p99, _ = med(app, conns, srv, "p99_ms")
            wcpu, _ = med(app, conns, srv, "wrk_cpu_pct")
            scpu, _ = med(app, conns, srv, "server_cpu_pct")
            n2 = total(app, conns, srv, "non2xx")
            se = total(app, conns, srv, "sockerr")
            m[srv] = (rps, p99)
            spread = (max(rps_all) - min(rps_all)) / rps * 100 if rps_all and rps else 0.0
            mark = "  <- FLAG" if n2 or se else ""
            print(f"  {NAMES[srv]:<15}{rps:>10.0f}{spread:>7.1f}%{p99:>10.2f}"
                  f"{wcpu:>8.0f}%{scpu:>8.0f}%{n2:>9d}{se:>10d}{mark}")
            for r in rows:
                if (r["app"] == app and int(r["conns"]) == conns and r["server"] == srv
                        and (int(r["non2xx"]) or int(r["sockerr"]))):
                    flags.append(f"  FLAG {label} c={conns} {NAMES[srv]} run {r['run']}: "
                                 f"non-2xx {r['non2xx']}, socket errors {r['sockerr']} "
                                 f"(connect/read/write/timeout {r['sockerr_crwt']})")
        for peer in ("uwsgi", "gunicorn"):
            rr = m["lodge"][0] / m[peer][0] if m[peer][0] else float("nan")
            pr = m["lodge"][1] / m[peer][1] if m[peer][1] else float("nan")
            print(f"  lodge/{NAMES[peer]:<9}  req/s {rr:5.2f}x   p99 {pr:5.2f}x (lower is better)")
        lr, lp = m["lodge"]
        ur, up = m["uwsgi"]
        if app == "hello":
            verdicts.append((f"hello c={conns:<3} req/s >= 2x uWSGI's",
                             f"{lr:.0f} vs {ur:.0f} = {lr / ur:.2f}x", lr >= 2 * ur))
            verdicts.append((f"hello c={conns:<3} p99 <= uWSGI's",
                             f"{lp:.2f} ms vs {up:.2f} ms", lp <= up))
        else:
            verdicts.append((f"Flask c={conns:<3} req/s >= 1.1x uWSGI's",
                             f"{lr:.0f} vs {ur:.0f} = {lr / ur:.2f}x", lr >= 1.1 * ur))

pss = {}
for line in open(pss_file):
    app, srv, kb, n = line.split()
    pss[(app, srv)] = (int(kb), int(n))
print()
print("-- idle PSS, MiB (each server alone; 20 warm-up requests, then 1 s idle;")
print("   summed over the server's processes, count in brackets) --")
print(f"  {'app':<8}" + "".join(f"{NAMES[s]:>18}" for s in SERVERS))
for app, label in APPS:
    cells = []
    for srv in SERVERS:
        kb, n = pss.get((app, srv), (0, 0))
        cells.append(f"{mib(kb):>13.1f} ({n})")
    print(f"  {label:<8}" + "".join(f"{c:>18}" for c in cells))
kb = pss.get(("hello", "lodge"), (0, 0))[0]
verdicts.append(("idle PSS, lodge-worker + hello <= 12 MiB", f"{mib(kb):.1f} MiB", 0 < kb <= 12 * 1024))

print()
print("-- targets (informational) --")
for name, fig, ok in verdicts:
    print(f"  {name:<42}{fig:<28}{'PASS' if ok else 'MISS'}")

print()
if flags:
    print("-- wrk errors (should be 0) --")
    print("\n".join(flags))
else:
    print("wrk errors: none (0 non-2xx responses, 0 socket errors in every measurement)")
PYEOF
} | tee "$REPORT"
[ "${PIPESTATUS[0]}" -eq 0 ] || die "could not write the report"
say ""
say "saved: $REPORT (per-run figures: $RESULTS_DIR/worker-$STAMP.tsv)"
exit 0
