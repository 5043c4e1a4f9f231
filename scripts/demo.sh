#!/bin/sh
# Installs every dependency, builds lodge, and runs lodge-worker on the demo
# apps (demo/apps: "hello", plain WSGI, and "blog", Flask from Debian's
# python3-flask), in the foreground, until Ctrl-C.
# Run as root on Debian 12:  ./scripts/demo.sh   (LODGE_DEMO_PORT=8080)
#
# The worker runs as the unprivileged user "nobody" with a copy of the apps
# in /tmp/lodge-demo, the way it will later run as each hosted user.
set -eu
cd "$(dirname "$0")/.."
port=${LODGE_DEMO_PORT:-8080}
demo=/tmp/lodge-demo

./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target lodge-worker

rm -rf "$demo"
mkdir -p "$demo/bin" "$demo/logs"
cp -r demo/apps "$demo/apps"
cp build/lodge-worker "$demo/bin/"
chown -R nobody:nogroup "$demo/apps" "$demo/logs"
chown nobody:nogroup "$demo"
chmod 755 "$demo" "$demo/bin"

cat <<MSG

lodge demo: lodge-worker serves two apps on http://127.0.0.1:$port/
  (as user nobody; apps in $demo/apps, logs in $demo/logs)

Try, from another terminal:
  curl -H 'X-Lodge-App: demo/hello' http://127.0.0.1:$port/
  curl -H 'X-Lodge-App: demo/blog'  http://127.0.0.1:$port/
  curl -H 'X-Lodge-App: demo/blog'  http://127.0.0.1:$port/posts
  curl -H 'X-Lodge-App: demo/blog'  -d 'name=lodge' http://127.0.0.1:$port/echo
  curl -H 'X-Lodge-App: demo/nope'  http://127.0.0.1:$port/     # 404
  tail -f $demo/logs/blog.log

Live reload: edit $demo/apps/hello/wsgi.py (as root or nobody), save, and
curl again: the new code answers within milliseconds, no restart.  State:
  echo status | socat - UNIX-CONNECT:$demo/control.sock

Ctrl-C stops it (in-flight requests finish first).

MSG
exec runuser -u nobody -- "$demo/bin/lodge-worker" --apps "$demo/apps" \
	--listen "tcp:127.0.0.1:$port" --log-dir "$demo/logs" --threads 4 \
	--control "$demo/control.sock"
