#!/bin/sh
# The lodge demo: the whole system on this machine, the way a hosting
# provider runs it.  Run as root on Debian 12, from the checkout:
#
#   ./scripts/demo.sh                 install, build, start, print what to
#                                     try, follow the logs; Ctrl-C stops
#                                     everything and removes the demo users
#   ./scripts/demo.sh --background    the same, but leave it running
#   ./scripts/demo.sh --stop          stop it and remove the demo users
#   --no-build                        (with either start) neither install
#                                     packages nor build: use the binaries
#                                     already in the build folder
#
# Environment: LODGE_DEMO_PORT (Apache's port on 127.0.0.1, default 8080),
# LODGE_BUILD_DIR (the CMake build folder, default build; a relative path
# is relative to the checkout).
#
# What it sets up:
#   - two Unix users, lodgedemo-alice (apps "hello", plain WSGI, and "blog",
#     Flask) and lodgedemo-bob (app "whoami"), created with useradd -m if
#     missing, their apps copied from demo/apps into ~/apps;
#   - in /var/lib/lodge-demo (root's, 0755): copies of the binaries (the
#     sandboxed workers run them as the users, who may not be able to
#     reach the build folder), the seccomp policies, a lodge.conf with two
#     front sockets (HTTP and uwsgi) and its own control socket;
#   - lodged, which starts lodge-router (as the system user "lodge") and
#     each user's sandboxed lodge-worker on that user's first request;
#   - Debian's Apache with a config of its own on 127.0.0.1:PORT: the
#     shipped packaging/apache/lodge.conf plus one vhost per site, written
#     like packaging/apache/lodge-site-http.conf and lodge-site-uwsgi.conf.
#     The system's own Apache (port 80), if any, is not touched.
#
# Everything it prints under "Try" is a command that
# tests/integration/test_demo.py runs: each line that starts with two
# spaces and "curl ", "sed " or a path to lodgectl, and the text after
# "# " is what its answer must contain.
set -eu
cwd=$(pwd)
cd "$(dirname "$0")/.."
repo=$(pwd)

demo=/var/lib/lodge-demo
port=${LODGE_DEMO_PORT:-8080}
build=${LODGE_BUILD_DIR:-$repo/build}
alice=lodgedemo-alice
bob=lodgedemo-bob
apache=/usr/sbin/apache2
# How long to wait for lodged, Apache and the first answers (seconds).  A
# cold start of a Flask app on a busy two-core machine takes a few.
wait_s=60

mode=foreground
do_build=yes
for arg in "$@"; do
	case $arg in
	--background) mode=background ;;
	--stop) mode=stop ;;
	--no-build) do_build=no ;;
	-h | --help)
		sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "demo: unknown option '$arg'; see ./scripts/demo.sh --help" >&2
		exit 2
		;;
	esac
done

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: must run as root (it creates users and starts lodged)" >&2
	exit 1
fi
case $build in
/*) ;;
*) build=$repo/$build ;;
esac
case $port in
'' | *[!0-9]*)
	echo "demo: LODGE_DEMO_PORT must be a port number, not '$port'" >&2
	exit 2
	;;
esac

say() {
	echo "demo: $*"
}

# is_ours PID PATTERN: PID is alive and its command line contains PATTERN.
# The pid files may be stale after a reboot or a kill -9; checking the
# command line keeps the demo from signalling an unrelated process that
# reuses the number.
is_ours() {
	[ -n "$1" ] && [ -r "/proc/$1/cmdline" ] &&
		tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# stop_pid NAME PIDFILE PATTERN SECONDS: SIGTERM to the process, wait for
# it to go, SIGKILL after SECONDS.
stop_pid() {
	[ -f "$2" ] || return 0
	pid=$(cat "$2" 2>/dev/null || true)
	if is_ours "$pid" "$3"; then
		say "stopping $1 (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		n=0
		while is_ours "$pid" "$3" && [ $n -lt $(($4 * 10)) ]; do
			sleep 0.1
			n=$((n + 1))
		done
		if is_ours "$pid" "$3"; then
			say "$1 did not stop in $4 s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$2"
}

# Stops Apache and lodged (which stops the router and the workers).
stop_processes() {
	stop_pid Apache "$demo/apache/apache.pid" "$demo/apache/apache.conf" 20
	# lodged drains every worker first (in-flight requests finish), up to
	# 30 s, then kills what is left.
	stop_pid lodged "$demo/lodged.pid" "$demo/lodge.conf" 45
}

# Removes a demo user, home and all.  A process the user still runs (a
# worker orphaned by a lodged killed with -9) would make userdel refuse.
remove_user() {
	getent passwd "$1" >/dev/null || return 0
	pkill -KILL -u "$1" 2>/dev/null || true
	n=0
	while pgrep -u "$1" >/dev/null 2>&1 && [ $n -lt 50 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	say "removing user $1 and its home"
	userdel -r "$1" 2>/dev/null || userdel -r "$1"
}

stop_all() {
	stop_processes
	remove_user "$alice"
	remove_user "$bob"
	rm -rf "$demo"
	say "stopped; the demo users and $demo are gone"
}

if [ "$mode" = stop ]; then
	stop_all
	exit 0
fi

# ---------------------------------------------------------------------
# Dependencies and the build.

if [ "$do_build" = yes ]; then
	./scripts/install-deps.sh
	say "building in $build"
	cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" \
		--target lodged lodge-worker lodge-router lodgectl
fi
for b in lodged lodge-worker lodge-router lodgectl; do
	if [ ! -x "$build/$b" ]; then
		echo "demo: $build/$b is missing; build it (cmake --build $build)" \
			"or run without --no-build" >&2
		exit 1
	fi
done
if [ ! -x "$apache" ] || ! getent passwd lodge >/dev/null ||
	! /usr/bin/python3 -c 'import flask' 2>/dev/null; then
	echo "demo: apache2, python3-flask or the system user 'lodge' is" \
		"missing; run ./scripts/install-deps.sh" >&2
	exit 1
fi

# ---------------------------------------------------------------------
# A previous run, whether still running or not, makes way: a re-run
# always starts from fresh copies (the users are kept, their apps are
# copied again).

stop_processes
rm -rf "$demo"

# Something else on the port would answer the demo's URLs instead of
# Apache; say so now rather than after starting everything.
if curl -s -o /dev/null --max-time 3 "http://127.0.0.1:$port/"; then
	inuse=yes
else
	# 7: nothing listens (what we want); 28: a timeout, someone listens.
	rc=$?
	[ $rc -eq 7 ] && inuse=no || inuse=yes
fi
if [ "$inuse" = yes ]; then
	echo "demo: something already listens on 127.0.0.1:$port;" \
		"stop it or choose another port: LODGE_DEMO_PORT=8081 $0" >&2
	exit 1
fi

# From here on, a failure stops what was started (and in the foreground,
# so does Ctrl-C): nothing half-started is left behind.
started=no
on_exit() {
	rc=$?
	if [ "$started" = no ] || [ "$mode" = foreground ]; then
		trap - EXIT INT TERM HUP
		# 130, 143: Ctrl-C or SIGTERM while starting, not a failure.
		if [ "$started" = no ] && [ $rc -ne 130 ] && [ $rc -ne 143 ]; then
			echo "demo: failed; the end of lodged's log:" >&2
			tail -n 30 "$demo/lodged.log" >&2 2>/dev/null || true
			if [ -s "$demo/apache/error.log" ]; then
				echo "demo: the end of Apache's error log:" >&2
				tail -n 20 "$demo/apache/error.log" >&2
			fi
			[ $rc -ne 0 ] || rc=1
		fi
		echo
		stop_all
	fi
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# ---------------------------------------------------------------------
# The hosted users and their apps.

# install_app USER APP: ~USER/apps/APP is a fresh copy of demo/apps/APP,
# the user's own.
install_app() {
	home=$(getent passwd "$1" | cut -d: -f6)
	mkdir -p "$home/apps"
	rm -rf "${home:?}/apps/$2"
	cp -R "demo/apps/$2" "$home/apps/$2"
	find "$home/apps/$2" -name __pycache__ -prune -exec rm -rf {} +
	chown -R "$1:" "$home/apps"
}

# Each run starts with empty app logs, so that what lodgectl logs shows
# is this run's.
for u in "$alice" "$bob"; do
	if getent passwd "$u" >/dev/null; then
		rm -rf "$(getent passwd "$u" | cut -d: -f6)/logs/lodge"
	fi
done

for u in "$alice" "$bob"; do
	if ! getent passwd "$u" >/dev/null; then
		say "creating user $u"
		useradd -m -s /usr/sbin/nologin "$u"
	fi
done
install_app "$alice" hello
install_app "$alice" blog
install_app "$bob" whoami

# ---------------------------------------------------------------------
# lodged's side: binaries, policies, lodge.conf.

mkdir -p "$demo/bin" "$demo/policy" "$demo/apache"
chmod 0755 "$demo" "$demo/bin" "$demo/policy" "$demo/apache"
for b in lodged lodge-worker lodge-router; do
	install -m 0755 "$build/$b" "$demo/bin/$b"
done
install -m 0644 policy/default.policy policy/router.policy "$demo/policy/"

# An AddressSanitizer build reserves terabytes of address space, which
# the workers' memory limit (an address-space limit where cgroups are not
# delegated) would refuse.
memory=
if grep -q __asan_init "$demo/bin/lodge-worker"; then
	memory="memory_max = max               ; an ASan build (see demo.sh)"
fi

cat >"$demo/lodge.conf" <<EOF
; lodge.conf of the demo, written by scripts/demo.sh.  The settings are
; described in docs/lodged.md; packaging/lodge.conf is the shipped one.
[lodge]
users = $alice $bob
socket_dir = $demo/users
control_socket = $demo/control.sock
worker = $demo/bin/lodge-worker
policy = $demo/policy/default.policy
threads = 4
$memory

; The shared front sockets Apache talks to, and the router behind them.
; Only the HTTP one is trusted for X-Forwarded-* (Apache sets them).
front = http:unix:$demo/http.sock, uwsgi:unix:$demo/uwsgi.sock
front_group = www-data
front_trusted = http:unix:$demo/http.sock
route = header
router = $demo/bin/lodge-router
router_policy = $demo/policy/router.policy
router_user = lodge
EOF
chmod 0644 "$demo/lodge.conf"

if ! check=$("$demo/bin/lodged" --config "$demo/lodge.conf" --check-config 2>&1); then
	echo "$check" >&2
	exit 1
fi

say "starting lodged"
# setsid: lodged gets a session of its own, so a Ctrl-C in this terminal
# reaches only this script, which then stops Apache first and lodged
# second.  (In a non-interactive shell the background child is not a
# group leader, so setsid runs lodged in the same process: $! is its pid.)
setsid "$demo/bin/lodged" --foreground --config "$demo/lodge.conf" \
	</dev/null >>"$demo/lodged.log" 2>&1 &
echo $! >"$demo/lodged.pid"
lodged_pid=$!

n=0
until grep -q "router: started" "$demo/lodged.log" 2>/dev/null; do
	if ! kill -0 "$lodged_pid" 2>/dev/null; then
		echo "demo: lodged exited" >&2
		exit 1
	fi
	if [ $n -ge $((wait_s * 10)) ]; then
		echo "demo: lodged did not start its router in $wait_s s" >&2
		exit 1
	fi
	sleep 0.1
	n=$((n + 1))
done

# ---------------------------------------------------------------------
# Apache: its own config, next to the system's.

cp packaging/apache/lodge.conf "$demo/apache/lodge.conf"

# vhost NAME ROUTE PROTO: one site, as in packaging/apache/lodge-site-*.conf.
vhost() {
	echo
	echo "<VirtualHost 127.0.0.1:$port>"
	echo "    ServerName $1"
	if [ "$3" = http ]; then
		echo "    ProxyPreserveHost On"
		echo "    RequestHeader set X-Lodge-App \"$2\""
		echo "    RequestHeader set X-Forwarded-Proto \"http\""
		echo "    ProxyPass / \"\${LODGE_HTTP}\""
	else
		echo "    RequestHeader set X-Lodge-App \"$2\""
		echo "    SetEnv LODGE_APP $2"
		echo "    ProxyPass / \"\${LODGE_UWSGI}\""
	fi
	echo "</VirtualHost>"
}

mods=/usr/lib/apache2/modules
{
	cat <<EOF
# Apache config of the lodge demo, written by scripts/demo.sh: Debian's
# apache2 on 127.0.0.1:$port only, next to the system's own (untouched).
ServerRoot "$demo/apache"
ServerName localhost
Listen 127.0.0.1:$port
PidFile "$demo/apache/apache.pid"
DefaultRuntimeDir "$demo/apache"
ErrorLog "$demo/apache/error.log"
LogLevel warn
LogFormat "%h %{Host}i \"%r\" %>s %b %{ms}Tms" demo
CustomLog "$demo/apache/access.log" demo
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule env_module $mods/mod_env.so
LoadModule headers_module $mods/mod_headers.so
LoadModule proxy_module $mods/mod_proxy.so
LoadModule proxy_http_module $mods/mod_proxy_http.so
LoadModule proxy_uwsgi_module $mods/mod_proxy_uwsgi.so
User www-data
Group www-data
StartServers 1
ServerLimit 2
ThreadsPerChild 25
MaxRequestWorkers 50
MinSpareThreads 10
MaxSpareThreads 50

# lodge's shared settings, as shipped (a2enconf lodge), with the front
# sockets in the demo's folder instead of /run/lodge.
Define LODGE_RUN_DIR $demo
Include "$demo/apache/lodge.conf"

# The first vhost also answers requests for any other name.
EOF
	vhost alice.localhost "$alice/hello" http
	vhost blog.alice.localhost "$alice/blog" http
	vhost bob.localhost "$bob/whoami" uwsgi
} >"$demo/apache/apache.conf"

if ! check=$("$apache" -t -f "$demo/apache/apache.conf" 2>&1); then
	echo "demo: apache2 -t: $check" >&2
	exit 1
fi
say "starting Apache on 127.0.0.1:$port"
# Apache detaches and writes its pid file itself; the parent's exit
# status says nothing about a failed bind, so wait for the port.
"$apache" -f "$demo/apache/apache.conf" -k start \
	</dev/null >>"$demo/apache/error.log" 2>&1
n=0
until curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/" ||
	[ $? -ne 7 ]; do
	if [ $n -ge $((wait_s * 10)) ]; then
		echo "demo: Apache did not listen on 127.0.0.1:$port in $wait_s s" >&2
		exit 1
	fi
	sleep 0.1
	n=$((n + 1))
done

# The first request of each user starts that user's worker (and imports
# Flask): do it now, so the commands below answer at once.
say "starting the users' workers (first requests)"
for site in alice.localhost blog.alice.localhost bob.localhost; do
	if ! curl -sf -o /dev/null --max-time "$wait_s" \
		-H "Host: $site" "http://127.0.0.1:$port/"; then
		echo "demo: http://$site:$port/ did not answer 200" >&2
		exit 1
	fi
done
started=yes

# lodgectl as the reader can type it: relative to the checkout when this
# script was started from there (./build/lodgectl), else absolute.
ctl=$build/lodgectl
case $ctl in
"$repo"/*) [ "$cwd" = "$repo" ] && ctl=./${ctl#"$repo"/} ;;
esac
ctl="$ctl --socket $demo/control.sock"
cat <<EOF

lodge demo: running.
    Apache 127.0.0.1:$port -> $demo/{http,uwsgi}.sock -> lodge-router
      (user lodge) -> lodge-worker as $alice, lodge-worker as $bob
    lodged: pid $lodged_pid, config $demo/lodge.conf,
      log $demo/lodged.log
    Apache: config and logs in $demo/apache/
    apps: ~$alice/apps/hello, ~$alice/apps/blog, ~$bob/apps/whoami;
      their logs: ~USER/logs/lodge/APP.log

Try (any *.localhost name is this machine, for curl and for browsers;
after "#", what the answer says):

alice's plain WSGI app, over HTTP, and her Flask app:
  curl http://alice.localhost:$port/                     # Hello from lodge!
  curl http://blog.alice.localhost:$port/                # Hello from Flask on lodge!
  curl http://blog.alice.localhost:$port/posts           # "title":"Hello, lodge"
  curl -d name=lodge http://blog.alice.localhost:$port/echo  # "form":{"name":"lodge"}
bob's app, over uwsgi: it runs as bob, and sees no home but his own:
  curl http://bob.localhost:$port/                       # homes visible in /home: $bob
A visitor cannot choose the app: Apache's "RequestHeader set" replaces
the header, so this is still alice's hello:
  curl -H 'X-Lodge-App: $bob/whoami' http://alice.localhost:$port/  # Hello from lodge!

Watch it with lodgectl (docs/lodgectl.md):
  $ctl status  # router: running
  $ctl status $alice  # 1 of 1 worker(s) running
  $ctl logs $alice/blog  # serving version 1
  $ctl metrics  # lodge_router_up 1

Live reload: change alice's code and ask again; the new code answers
within milliseconds, nothing restarts (alice would just save the file):
  sed -i 's/Hello from lodge/Hello again from lodge/' ~$alice/apps/hello/wsgi.py
  curl http://alice.localhost:$port/                     # Hello again from lodge!
  $ctl logs $alice/hello  # reloaded: version 2 serves

Stop: ./scripts/demo.sh --stop (stops Apache and lodged, removes the
demo users and $demo).
EOF

if [ "$mode" = background ]; then
	trap - EXIT INT TERM HUP
	exit 0
fi

echo
echo "Following lodged's and Apache's logs; Ctrl-C stops the demo."
echo
# tail ends on Ctrl-C; the EXIT trap then stops everything.
tail -n 0 -F "$demo/lodged.log" "$demo/apache/access.log" || true
