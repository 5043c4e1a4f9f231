#!/bin/sh
# Builds the libFuzzer harnesses (fuzz/) with clang in build-fuzz and runs
# each one for SECONDS_EACH seconds (default 20) on a copy of its seed
# corpus (fuzz/corpus/NAME, which is never written to).  Fails on the
# first crash, sanitizer report, failed property, hang or out-of-memory,
# and keeps the input that caused it in build-fuzz/artifacts/.
#
#   scripts/fuzz.sh            20 s each, for scripts/test.sh
#   scripts/fuzz.sh 3600       the long run
#
# Reproduce a finding:  build-fuzz/fuzz_NAME build-fuzz/artifacts/NAME-crash-...
set -eu
cd "$(dirname "$0")/.."

secs=${1:-20}
case "$secs" in
'' | *[!0-9]*)
	echo "usage: scripts/fuzz.sh [SECONDS_EACH]" >&2
	exit 2
	;;
esac
harnesses="http uwsgi msg"
build=build-fuzz

if ! command -v clang >/dev/null 2>&1; then
	echo "fuzz: clang not found (scripts/install-deps.sh installs it)" >&2
	exit 1
fi
echo "== fuzz: build ($build, clang, -DLODGE_FUZZ=ON)"
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DLODGE_FUZZ=ON \
	-DLODGE_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=""
for h in $harnesses; do
	targets="$targets fuzz_$h"
done
# shellcheck disable=SC2086
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target $targets

work=$(mktemp -d "${TMPDIR:-/tmp}/lodge-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$build/artifacts"
failed=""
for h in $harnesses; do
	mkdir -p "$work/$h"
	cp fuzz/corpus/"$h"/* "$work/$h/"
	log="$work/$h.log"
	# -timeout: one input running for 10 s is a hang, reported as a
	# crash.  The run stops at the first finding.
	if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		"$build/fuzz_$h" -max_total_time="$secs" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$build/artifacts/$h-" "$work/$h" >"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		cov=$(sed -n 's/^#[0-9]*[[:space:]]*DONE[[:space:]]*cov: \([0-9]*\).*/\1/p' "$log")
		echo "fuzz: $h: ok, ${runs:-?} runs in ${secs}s, coverage ${cov:-?}, corpus $(ls "$work/$h" | wc -l) inputs"
	else
		echo "fuzz: $h: FAILED; the last lines of its log:"
		tail -n 60 "$log"
		ls "$build/artifacts/$h-"* 2>/dev/null | sed 's/^/fuzz: input kept: /'
		failed="$failed $h"
	fi
done
if [ -n "$failed" ]; then
	echo "fuzz: FAILED:$failed"
	exit 1
fi
echo "fuzz: all harnesses passed"
