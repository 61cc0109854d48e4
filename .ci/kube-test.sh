#!/usr/bin/env bash
# The cluster stage of the tests: a real Kubernetes cluster of three nodes
# (integration/kube) brought up once, every cluster test run against it,
# torn down. The other tests' pods stay on node 1 (TestMain taints nodes 2
# and 3); TestKubeProxyLag spreads its pods over all three. `make
# kube-test` runs this alone; `make test` runs it after the other tests, so
# that the two never compete for the cores.
#
# First run on a machine: builds the Kubernetes components from the Go
# module proxy (~5 min on 2 cores, cached in /var/cache/lifecycled-kube).
set -euo pipefail
cd "$(dirname "$0")/.."

# What the cluster needs from Debian: containerd, runc and the CNI plugins
# (bridge, host-local, portmap, loopback in /usr/lib/cni), conntrack and
# iptables for kube-proxy, podman and busybox-static and tini (tini-static)
# for the images, gcc and libc6-dev for the static pause binary.
. .ci/need.sh
need_packages containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins \
	conntrack:conntrack iptables:iptables podman:podman busybox:busybox-static \
	/usr/bin/tini-static:tini gcc:gcc /usr/lib/x86_64-linux-gnu/libc.a:libc6-dev \
	nsenter:util-linux ip:iproute2

export CONTAINERS_CONF="$PWD/integration/podman/containers.conf"
export GOTOOLCHAIN=go1.26.10
export KUBE_NODES=${KUBE_NODES:-3}

# TestMain tears the cluster down on every way out it controls; a test
# timeout or a kill ends it without that, so tear down here too (a no-op
# when there is nothing left).
trap 'go run ./integration/kube/cmd/kubecluster down' EXIT
go vet -tags kube ./integration/kube/...
go test -tags kube -count=1 -timeout 45m -v "$@" ./integration/kube/
