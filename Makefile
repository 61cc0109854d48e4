# lifecycled — the two commands a newcomer needs:
#   make demo   build lifecycled and run it on a demo app
#   make test   install what the tests need and run them all
# The Go toolchain every build and test uses (fetched through the module
# proxy): 1.26.8 has known reachable standard-library vulnerabilities.
export GOTOOLCHAIN := go1.26.10

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

# `make build` builds for this machine: bin/lifecycled. `make build
# GOARCH=arm64` (or amd64) cross-compiles for Linux on that architecture:
# bin/lifecycled-linux-arm64. Static either way, so nothing else is needed.
GOARCH ?=
BINDIR ?= bin
BIN    := $(BINDIR)/lifecycled$(if $(GOARCH),-linux-$(GOARCH))

.PHONY: build build-all test demo bench image kube-up kube-down kube-env kube-status kube-test
build:
	CGO_ENABLED=0 $(if $(GOARCH),GOOS=linux GOARCH=$(GOARCH)) go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/lifecycled

# Both release architectures: bin/lifecycled-linux-amd64 and -arm64.
build-all:
	$(MAKE) build GOARCH=amd64
	$(MAKE) build GOARCH=arm64

test:
	bash .ci/test.sh

demo:
	bash examples/quickstart/run.sh

# Extra flags for the bench program, e.g. make bench BENCHFLAGS="-quick -o results.md".
BENCHFLAGS ?=

# lifecycled side by side with tini, dumb-init and catatonit, interleaved,
# as ratios against tini (integration/bench).
bench: build
	go run ./integration/bench -bin bin/lifecycled $(BENCHFLAGS)

# The lifecycled image (FROM scratch, only the binary), built offline from
# bin/lifecycled with Dockerfile.prebuilt: nothing is pulled. `docker build .`
# (Dockerfile) compiles in a builder stage instead and needs the network.
# With Docker: make image IMAGE_BUILD="docker build"
IMAGE       ?= localhost/lifecycled:dev
IMAGE_BUILD ?= podman build --isolation chroot
image: build
	$(IMAGE_BUILD) -f Dockerfile.prebuilt --build-arg BINARY=$(BIN) $(if $(GOARCH),--platform linux/$(GOARCH)) \
	  --build-arg VERSION=$(VERSION) --build-arg REVISION=$(COMMIT) -t $(IMAGE) .

# A real Kubernetes cluster (integration/kube), one node or NODES: etcd,
# kube-apiserver, controller-manager, scheduler, kubelet, kube-proxy and
# containerd, in network and mount namespaces of its own. The first run
# builds the components from the Go module proxy (~5 min on 2 cores, cached
# in /var/cache/lifecycled-kube); then ~10-20 s. Needs root.
#   make kube-up; eval "$$(make -s kube-env)"; kubectl get pods -A; make kube-down
KUBECLUSTER = go run ./integration/kube/cmd/kubecluster
# NODES=3: two more nodes (kubelet, kube-proxy, containerd each), joined to
# the first in a star; make kube-status lists them, make kube-down removes all.
NODES ?= 1
kube-up:
	$(KUBECLUSTER) -nodes $(NODES) up
kube-down:
	$(KUBECLUSTER) down
kube-env:
	@$(KUBECLUSTER) env
kube-status:
	$(KUBECLUSTER) status

# The cluster tests alone: bring a cluster up, run every test against it,
# tear it down (also run by `make test`, after the other tests).
kube-test:
	bash .ci/kube-test.sh
