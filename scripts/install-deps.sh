#!/bin/sh
# Installs every build, test, demo and benchmark dependency of lodge from
# Debian's archive.  Idempotent; run as root on Debian 12.
#
#   scripts/install-deps.sh            build + test + demo dependencies
#   scripts/install-deps.sh --bench    also the benchmark peers (uWSGI, gunicorn, wrk)
set -eu

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: must run as root (it calls apt-get)" >&2
	exit 1
fi

pkgs="build-essential cmake pkg-config clang-format clang libclang-rt-dev
python3 python3-dev libpython3-dev python3-flask python3-venv
libcmocka-dev libseccomp-dev libcap-dev libnl-3-dev libnl-route-3-dev
libinih-dev libsystemd-dev
curl procps socat apache2
debhelper dpkg-dev lintian fakeroot"

if [ "${1:-}" = "--bench" ]; then
	pkgs="$pkgs wrk uwsgi-core uwsgi-plugin-python3 gunicorn apache2 libapache2-mod-wsgi-py3 nginx"
fi

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -n "$missing" ]; then
	export DEBIAN_FRONTEND=noninteractive
	# An apt cache older than a day may name package versions the mirror no
	# longer serves; refresh it before installing.
	if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]; then
		apt-get update -q
	fi
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing
fi
# lodge-router runs as a system user of its own (router_user = lodge).
if ! getent passwd lodge >/dev/null; then
	adduser --system --group --no-create-home --home /nonexistent \
		--quiet lodge
fi
echo "install-deps: all dependencies present"
