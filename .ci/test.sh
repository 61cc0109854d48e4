#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need
# (the peers tini/dumb-init/catatonit, promtool, podman and its config, the
# reference registry server docker-registry for internal/registry), then
# runs every Go test with the race detector. `make test` runs this script.
set -euo pipefail
cd "$(dirname "$0")/.."

. .ci/need.sh
need_packages tini:tini dumb-init:dumb-init catatonit:catatonit promtool:prometheus /usr/bin/time:time \
	socat:socat busybox:busybox-static podman:podman runc:runc wait-for-it:wait-for-it \
	unshare:util-linux make:make docker-registry:docker-registry

# Podman on these machines: runc (crun fails with hybrid cgroups), cgroupfs,
# ulimits that can actually be set. The integration tests read this file.
export CONTAINERS_CONF="$PWD/integration/podman/containers.conf"

# Go 1.26.10: 1.26.8, the machines' own, has reachable standard-library
# vulnerabilities (net/http, crypto/x509, crypto/tls) that govulncheck
# reports. The go command fetches this toolchain from the module proxy.
export GOTOOLCHAIN=go1.26.10

go version
go vet ./...
go test -race -count=1 -timeout 30m "$@" ./...
# The real-cluster tests (build tag kube, skipped above): their own stage,
# after the others, so that they do not compete for the cores.
bash .ci/kube-test.sh
bash .ci/fuzz.sh
bash .ci/vuln.sh
