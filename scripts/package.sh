#!/bin/sh
# Builds the Debian package of lodge from this checkout (as it is on disk,
# committed or not) into build-deb/: lodge_VERSION_ARCH.deb, its dbgsym
# package, .buildinfo and .changes; then runs lintian on them and fails on
# any lintian error.  Run on Debian 12 with the build dependencies of
# packaging/debian/control installed (scripts/install-deps.sh does it):
#
#   scripts/package.sh                 build + lintian
#   LODGE_DEB_DIR=/some/dir scripts/package.sh
#
# dpkg-buildpackage wants debian/ at the top of the source tree, and the
# repository keeps it in packaging/debian: the tree is copied to a
# temporary directory (build dirs and .git left out), packaging/debian
# becomes debian/ there, and the package is built in that copy.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
out=${LODGE_DEB_DIR:-$top/build-deb}

for tool in dpkg-buildpackage dpkg-parsechangelog dh lintian fakeroot; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "package: $tool is missing; run scripts/install-deps.sh" >&2
		exit 1
	fi
done

# The package's upstream version must be the one CMake builds into the
# binaries (lodged --version and the man pages show it).
version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
upstream=${version%-*}
cmake_version=$(sed -n 's/^project(lodge VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
if [ "$upstream" != "$cmake_version" ]; then
	echo "package: packaging/debian/changelog says $version but" \
		"CMakeLists.txt says $cmake_version; add a changelog entry" \
		"(dch -v $cmake_version-1)" >&2
	exit 1
fi

work=$(mktemp -d /tmp/lodge-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
src=$work/lodge-$upstream
mkdir "$src"
tar -C "$top" --exclude-vcs --exclude=./build --exclude='./build-*' \
	--exclude=__pycache__ --exclude='*.pyc' --exclude=./bench/results \
	-cf - . | tar -C "$src" -xf -
rm -rf "$src/debian"
cp -r packaging/debian "$src/debian"

echo "== dpkg-buildpackage lodge $version (in $src)"
(cd "$src" &&
	DEB_BUILD_OPTIONS="parallel=$(nproc 2>/dev/null || echo 2) ${DEB_BUILD_OPTIONS:-}" \
		dpkg-buildpackage -us -uc -b)

mkdir -p "$out"
for f in "$work"/*.deb "$work"/*.ddeb "$work"/*.buildinfo "$work"/*.changes; do
	[ -e "$f" ] && mv -f "$f" "$out/"
done
changes=$(ls "$out"/lodge_"${version}"_*.changes)
deb=$(ls "$out"/lodge_"${version}"_*.deb)

echo "== lintian $changes"
# Warnings are printed but do not fail the build; errors do.
lintian --fail-on error --info --display-info "$changes"

echo "package: $deb"
