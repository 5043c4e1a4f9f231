#!/bin/sh
# Installs every dependency, builds lodge, and runs the whole test suite:
# the unit and integration tests on a normal build, then all of them again
# on an AddressSanitizer + UndefinedBehaviorSanitizer build.
# Run as root on Debian 12:  ./scripts/test.sh
set -eu
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

jobs=$(nproc 2>/dev/null || echo 2)

echo "== build (RelWithDebInfo, -Wall -Wextra -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"

# Two at a time: the integration suites mostly wait (reloads settling,
# workers starting); the ones that need the machine alone (real users,
# /run/lodge, the package) are RUN_SERIAL.
echo "== unit and integration tests"
(cd build && ctest -j2 --output-on-failure --timeout 900)

echo "== build with ASan + UBSan"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DLODGE_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"

echo "== unit tests under ASan + UBSan"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --output-on-failure -L unit)

# The integration tests again, with the sanitized lodge-worker: any memory
# error or undefined behaviour aborts the worker and fails the test.  Leak
# detection stays off: the embedded CPython keeps memory until exit by
# design, and the worker leaves with _exit.
echo "== integration tests with the ASan + UBSan lodge-worker"
(cd build-asan && ASAN_OPTIONS=detect_leaks=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest -j2 --output-on-failure -L integration --timeout 900)

# The untrusted-input parsers (request heads, uwsgi packets, channel
# messages) under libFuzzer, 15 s each; scripts/fuzz.sh 3600 is the long run.
echo "== fuzzing"
./scripts/fuzz.sh 15

echo "== all tests passed"
