#!/usr/bin/env bash
# The quickstart: builds lifecycled and a demo app, runs the app under
# lifecycled with a dependency, a readiness probe, hooks and a drain delay,
# then stops it the way Kubernetes does and shows each step.
# Run from the repository root: make demo
set -euo pipefail
cd "$(dirname "$0")/../.."

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "building lifecycled and the demo app"
make -s build
go build -o "$work/demoapp" ./examples/quickstart/demoapp
bin/lifecycled version
get() { "$work/demoapp" get "$1" || true; }

say "what lifecycled will do (lifecycled explain)"
flags=(--log-format console
	--wait tcp://127.0.0.1:15432
	--listen 127.0.0.1:9090
	--ready http://127.0.0.1:8080/healthz --ready-period 500ms
	--post-start 'echo postStart: warming caches'
	--pre-stop 'echo preStop: deregistering'
	--drain-delay 2s --grace-period 5s --hook-timeout 5s --termination-grace-period 30s
	--hook-log-dir "$work/logs" --tombstone-dir "$work/tombstones" --termination-log "$work/termination-log")
bin/lifecycled explain "${flags[@]}" -- demoapp --listen 127.0.0.1:8080

say "starting lifecycled: it waits for the 'database' on 127.0.0.1:15432"
bin/lifecycled "${flags[@]}" -- "$work/demoapp" --listen 127.0.0.1:8080 &
lc=$!
sleep 1
get 'http://127.0.0.1:9090/readyz?verbose'

say "the database comes up; lifecycled starts the app, runs postStart, probes it"
"$work/demoapp" --listen 127.0.0.1:15432 2>/dev/null &
for _ in $(seq 50); do
	bin/lifecycled probe http://127.0.0.1:9090/readyz 2>/dev/null && break
	sleep 0.1
done
get 'http://127.0.0.1:9090/readyz?verbose'
get http://127.0.0.1:8080/

say "SIGTERM, as the kubelet sends it: readiness fails at once, the app keeps serving during the drain"
kill -TERM "$lc"
sleep 0.3
get 'http://127.0.0.1:9090/readyz?verbose'
get http://127.0.0.1:8080/

say "after the 2s drain: preStop, then SIGTERM to the app, which exits"
set +e
wait "$lc"
code=$?
set -e
echo "lifecycled exited with code $code"

say "what it left on the shared volume"
echo "tombstone:        $(cat "$work"/tombstones/*.json)"
echo "termination log:  $(cat "$work/termination-log")"
echo "hook log:"
cat "$work"/logs/*.hooks.log
say "done: every test runs with 'make test'"
