#!/usr/bin/env bash
# bench/lodged.sh: cold start and memory of lodged's per-user workers.
#
# WHAT IT MEASURES
#   lodged (build/lodged) is started in the foreground with a config of its
#   own (temp dir: lodge.conf, socket_dir, lodged.log) hosting throw-away
#   users made with useradd -m (lodgebench-hello, lodgebench-flask,
#   lodgebench-m001..mNNN).  Each has one app in ~/apps (so it is the
#   default app): a 3-line WSGI "hello" app, or for lodgebench-flask a copy
#   of demo/apps/blog (Flask, Debian's python3-flask; lodge.ini: entry =
#   wsgi:app).  The worker binary is a copy of build/lodge-worker in a
#   root-owned 0755 dir /var/lib/lodgebench-bin-XXXXXX (workers get a private
#   /tmp and see only their own home).  Config: idle_timeout = 0, processes
#   = 1, threads = 4, memory_max = 1G, seccomp = enforce (the default).
#   1. Cold start: time from connect() on NAME.sock, with no worker of that
#      user running, to the end of the response (GET /, Connection: close,
#      read to EOF); that includes lodged noticing the connection, the whole
#      sandboxed spawn, Python start-up and the app import.  STARTS timed
#      starts per app (after 1 untimed start that writes __pycache__),
#      p50/p95.  Between starts the worker is stopped with SIGTERM sent to the
#      worker process (the user's process whose parent is the pid
#      namespace's init; the init forwards nothing here, it just exits with
#      the worker), then the script waits for lodged's "worker NAME (pid P):
#      exited (idle or drained)" line and for no process of the user to be
#      left in /proc.  Target: hello p50 <= 60 ms.
#      Also printed, from the logs' millisecond timestamps, where a cold
#      start goes (medians): connect -> lodged's "started" (sandboxed spawn
#      up to exec) -> the worker's "sandbox self-check passed" -> "app ...:
#      serving version" (Python start-up, app import) -> end of response.
#      For comparison, the warm latency: WARM_REQUESTS requests to the
#      running worker, each on a new connection, timed the same way.
#   2. Memory: PSS (/proc/PID/smaps_rollup) of one idle worker with the hello
#      app, running alone (after 21 requests and 1 s idle), summed over its
#      2 processes (namespace init + lodge-worker); target <= 12 MB (checked
#      as 12 MiB).  Then USERS users each get a worker (first connection to
#      every socket, 4 at a time, then 3 more requests each), and with all of
#      them running the total and per-user PSS (and USS = private pages) of
#      the 2*USERS processes, and MemAvailable before the workers started and
#      after (the difference also counts kernel memory: page tables,
#      namespaces, socket buffers...).
#   Every user is removed with userdel -r at the end, also on failure or
#   interrupt (Ctrl-C, SIGTERM, SIGHUP): the Python helper cleans up in a
#   finally block, and this script's EXIT trap removes whatever it listed
#   in its state file if the helper died without doing so.
#
# HOW TO RUN
#   As root, from anywhere (needs build/lodged and build/lodge-worker built,
#   python3-flask installed):
#     bench/lodged.sh                 # STARTS=20, USERS=200
#     QUICK=1 bench/lodged.sh         # smoke test: STARTS=5, USERS=20
#   Environment (defaults in brackets):
#     STARTS [20]          timed cold starts per app
#     USERS [200]          users running at once in the memory test
#     QUICK [0]            1: STARTS=5 USERS=20 (unless set explicitly)
#     WARM_REQUESTS [200]  timed warm requests per app
#     LODGED [build/lodged]  LODGE_WORKER [build/lodge-worker]
#   The helper is bench/lodged_bench.py, run with Debian's /usr/bin/python3.
#   Output: printed and saved to bench/results/lodged-DATE.txt.
#   Exit status: 0 whatever the targets say; 1 on a failure (a worker that
#   did not start or answered wrongly...), 130 when interrupted.
#
# HOW LONG IT TAKES
#   About 1 minute at the defaults on a 2-CPU machine (62 s measured: 7 s to
#   create the 202 users, ~25 s of cold starts (each also waits for the
#   worker's exit), 13 s to start the 200 workers, 12 s to remove the users).
#   QUICK=1: about 15 s.

set -u
umask 022

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
	STARTS=${STARTS:-5}
	USERS=${USERS:-20}
fi
export STARTS=${STARTS:-20}
export USERS=${USERS:-200}
export WARM_REQUESTS=${WARM_REQUESTS:-200}
export LODGED=${LODGED:-$ROOT/build/lodged}
export LODGE_WORKER=${LODGE_WORKER:-$ROOT/build/lodge-worker}
export POLICY=$ROOT/policy/default.policy
export BLOG_APP=$ROOT/demo/apps/blog

die() { echo "lodged.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (useradd, lodged)"
[ -x "$PY" ] || die "$PY not found (Debian's python3)"
[ -x "$LODGED" ] || die "$LODGED not found: build it (cmake --build build)"
[ -x "$LODGE_WORKER" ] || die "$LODGE_WORKER not found: build it"
[ -f "$POLICY" ] || die "$POLICY not found"
"$PY" -c 'import flask' 2>/dev/null || die "python3-flask is missing (apt-get install python3-flask)"
getent group www-data >/dev/null || die "no www-data group (the socket group)"
case $STARTS$USERS in *[!0-9]*) die "STARTS and USERS must be numbers" ;; esac
[ "$USERS" -le 999 ] || die "USERS must be <= 999"

RESULTS_DIR=$ROOT/bench/results
mkdir -p "$RESULTS_DIR"
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$RESULTS_DIR/lodged-$STAMP.txt
STATE_FILE=$(mktemp /tmp/lodgebench-users.XXXXXX)
export STATE_FILE
HELPER_PID=

# Last resort, if the helper died without its own clean-up (SIGKILL, say):
# what it listed in the state file ("pid PID" of its lodged, "user NAME",
# "dir PATH"), and only names and paths of this benchmark.
cleanup() {
	local kind arg pid uid
	trap - EXIT INT TERM HUP
	if [ -n "$HELPER_PID" ] && kill -0 "$HELPER_PID" 2>/dev/null; then
		kill -TERM "$HELPER_PID" 2>/dev/null
		wait "$HELPER_PID" 2>/dev/null
	fi
	if [ -s "$STATE_FILE" ]; then
		while read -r kind arg; do
			case $kind in
			pid)
				[ "$(readlink "/proc/$arg/exe" 2>/dev/null)" = "$(readlink -f "$LODGED")" ] || continue
				echo "lodged.sh: stopping leftover lodged (pid $arg)" >&2
				kill -TERM "$arg" 2>/dev/null
				for _ in $(seq 1 100); do kill -0 "$arg" 2>/dev/null || break; sleep 0.1; done
				;;
			user)
				case $arg in lodgebench-*) ;; *) continue ;; esac
				uid=$(id -u "$arg" 2>/dev/null) || continue
				echo "lodged.sh: removing leftover user $arg" >&2
				for pid in $(pgrep -u "$uid"); do kill -KILL "$pid" 2>/dev/null; done
				sleep 0.1
				userdel -r "$arg" >/dev/null 2>&1
				;;
			dir)
				case $arg in /tmp/lodgebench-*|/var/lib/lodgebench-bin-*) ;; *) continue ;; esac
				[ -d "$arg" ] && rm -rf "$arg"
				;;
			esac
		done < <(grep '^pid ' "$STATE_FILE"; grep -v '^pid ' "$STATE_FILE") # lodged first
	fi
	rm -f "$STATE_FILE"
}
trap cleanup EXIT
trap 'echo "lodged.sh: interrupted" >&2; exit 130' INT TERM HUP

{
	echo "bench/lodged.sh  $(date '+%Y-%m-%d %H:%M:%S')  $(uname -srm), $(nproc) CPU(s), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "lodge $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (+ local changes)'); $($PY --version); flask $($PY -c 'import flask, importlib.metadata as m; print(m.version("flask"))' 2>/dev/null)"
	echo "STARTS=$STARTS USERS=$USERS WARM_REQUESTS=$WARM_REQUESTS QUICK=$QUICK"
	echo
} | tee "$OUT"

# The helper runs in the background so that this shell's traps fire at
# once; Ctrl-C reaches it too (same process group).
# tee ignores the signals so that it records the helper's clean-up too.
"$PY" "$ROOT/bench/lodged_bench.py" > >(trap '' INT TERM HUP; exec tee -a "$OUT") 2>&1 &
HELPER_PID=$!
wait "$HELPER_PID"
rc=$?
HELPER_PID=
wait # for tee
echo "report: $OUT"
exit "$rc"
