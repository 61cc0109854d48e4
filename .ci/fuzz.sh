#!/usr/bin/env bash
# Runs every fuzz target of the repository for a bounded time, one at a time
# (go test -fuzz takes one target of one package per run).
#
#   .ci/fuzz.sh                 # each target for FUZZTIME (default 10s)
#   FUZZTIME=1m .ci/fuzz.sh     # longer, locally
#   .ci/fuzz.sh FuzzParseTarget # only the targets whose name matches
#
# Targets are found in the sources (func FuzzXxx in *_test.go), so a new one
# is fuzzed without touching this script. The seed corpora live in each
# package's testdata/fuzz/ and also run as plain tests in `go test ./...`.
# A failure leaves the input that broke the property in
# testdata/fuzz/FuzzXxx/: commit it with the fix, as a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-10s}
filter=${1:-.}

mapfile -t targets < <(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' \
	cmd settings podspec lifecycle supervisor probes drain hooks health tombstone internal 2>/dev/null | sed 's/:func /:/' | sort -u)
if ((${#targets[@]} == 0)); then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi

failed=()
ran=0
start=$SECONDS
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for t in "${targets[@]}"; do
	file=${t%%:*} name=${t#*:}
	[[ $name =~ $filter ]] || continue
	pkg=./$(dirname "$file")
	echo "fuzz.sh: $name in $pkg for $fuzztime"
	ran=$((ran + 1))
	# -run '^$': the seed corpus is fuzzed anyway, and the package's other
	# tests run in test.sh.
	if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" >"$out" 2>&1; then
		tail -n 3 "$out"
		continue
	fi
	# Go before 1.27 may end a run at -fuzztime with a bare "context
	# deadline exceeded" (go.dev/issue/75804: the coordinator's deadline
	# races a worker), having found nothing. A finding always writes its
	# input to testdata/fuzz/ and says so; without one, the corpus is
	# replayed as plain tests to make sure nothing fails.
	if grep -q 'context deadline exceeded' "$out" && ! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$out" &&
		go test -count=1 -run "^${name}\$" "$pkg" >/dev/null 2>&1; then
		echo "fuzz.sh: $name: the Go fuzzer's deadline race (go.dev/issue/75804), no finding; corpus replayed clean"
		continue
	fi
	tail -n 25 "$out"
	failed+=("$name ($pkg)")
done
if ((ran == 0)); then
	echo "fuzz.sh: no fuzz target matches $filter" >&2
	exit 1
fi
echo "fuzz.sh: $ran targets in $((SECONDS - start))s"
if ((${#failed[@]})); then
	echo "fuzz.sh: FAILED: ${failed[*]} (the failing inputs are in testdata/fuzz/)" >&2
	exit 1
fi
