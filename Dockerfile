# syntax=docker/dockerfile:1
#
# The lifecycled image: one static binary and nothing else, FROM scratch.
# From a fresh clone, with network access for the Go image and modules:
#
#   docker build -t lifecycled .
#   docker build --build-arg VERSION="$(git describe --tags --always)" \
#     --build-arg REVISION="$(git rev-parse HEAD)" -t lifecycled .
#   docker buildx build --platform linux/amd64,linux/arm64 -t lifecycled .
#
# The builder stage runs on the build machine's platform and cross-compiles
# for the target's (TARGETOS/TARGETARCH, set by BuildKit), so a multi-arch
# build needs no emulation. Offline, from a binary `make build` already made
# (no image pulled): `make image`, which uses Dockerfile.prebuilt; the final
# stages of both files are the same (integration/image_test.go checks).
#
# Most users do not run this image on its own: they copy the binary into
# their own image and make it the ENTRYPOINT (examples/README.md):
#
#   COPY --from=lifecycled /lifecycled /lifecycled
#   ENTRYPOINT ["/lifecycled", "--listen", ":9090", "--drain-delay", "5s", "--"]
#   CMD ["/app"]
#
# On its own it serves init containers (`lifecycled wait ...`) and exec probes
# (`lifecycled probe ...`), which need nothing but the binary.

# The Go release the project builds and tests with (the Makefile's
# GOTOOLCHAIN): older 1.26 releases have reachable standard-library
# vulnerabilities (README, Reliability).
ARG GO_IMAGE=docker.io/library/golang:1.26.10

FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS builder
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=""
ARG REVISION=""
WORKDIR /src
# The modules first, in a layer of their own: a source change does not
# download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static (CGO_ENABLED=0: no libc, no loader), reproducible paths
# (-trimpath), stripped. Without VERSION the binary reports its module
# version as `go install` would.
RUN ldflags="-s -w"; \
    if [ -n "$VERSION" ]; then ldflags="$ldflags -X main.version=$VERSION"; fi; \
    if [ -n "$REVISION" ]; then ldflags="$ldflags -X main.commit=$REVISION"; fi; \
    CGO_ENABLED=0 GOOS="$TARGETOS" GOARCH="$TARGETARCH" GOTOOLCHAIN=local \
      go build -trimpath -ldflags "$ldflags" -o /out/lifecycled ./cmd/lifecycled

FROM scratch
COPY --from=builder /out/lifecycled /lifecycled
# --- the same in Dockerfile.prebuilt from here on ---
# OCI labels; the license is the repository's (LICENSE, SPDX Apache-2.0).
ARG VERSION=""
ARG REVISION=""
ARG SOURCE="https://github.com/lifecycled/lifecycled"
LABEL org.opencontainers.image.title="lifecycled" \
      org.opencontainers.image.description="A static PID 1 and lifecycle wrapper for containers: dependency waits, postStart/preStop hooks, readiness, graceful drain" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
# Not root. Numeric, so that Kubernetes' runAsNonRoot can verify it without an
# /etc/passwd in the image (the kubelet refuses a non-numeric USER there).
# 65532 is the "nonroot" user of the distroless images.
USER 65532:65532
# What `docker stop`, `podman stop` and the kubelet send first; lifecycled
# turns it into the stop sequence (fail /readyz, drain, preStop, stop the app).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/lifecycled"]
CMD ["--help"]
