#!/bin/sh
# Installs every dependency, builds lodge, and runs the whole test suite:
# the unit and integration tests on a normal build, then the unit tests
# again on an AddressSanitizer + UndefinedBehaviorSanitizer build.
# Run as root on Debian 12:  ./scripts/test.sh
set -eu
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

jobs=$(nproc 2>/dev/null || echo 2)

echo "== build (RelWithDebInfo, -Wall -Wextra -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"

echo "== unit and integration tests"
(cd build && ctest --output-on-failure --timeout 900)

echo "== build with ASan + UBSan"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DLODGE_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"

echo "== unit tests under ASan + UBSan"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --output-on-failure -L unit)

echo "== all tests passed"
