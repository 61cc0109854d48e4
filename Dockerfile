# syntax=docker/dockerfile:1
#
# The lifecycled image: one static binary and nothing else, FROM scratch.
#
# Build the binary first, outside the image (no toolchain and no network are
# needed inside the build), then the image:
#
#   make build          # CGO_ENABLED=0 go build -o bin/lifecycled ./cmd/lifecycled
#   podman build --isolation chroot -t localhost/lifecycled:dev .
#   # or: docker build -t localhost/lifecycled:dev .
#
# Most users do not run this image on its own: they copy the binary into
# their own image and make it the ENTRYPOINT (examples/README.md):
#
#   COPY --from=localhost/lifecycled:dev /lifecycled /lifecycled
#   ENTRYPOINT ["/lifecycled", "--listen", ":9090", "--drain-delay", "5s", "--"]
#   CMD ["/app"]
#
# On its own it serves init containers (`lifecycled wait ...`) and exec probes
# (`lifecycled probe ...`), which need nothing but the binary.
FROM scratch

# A static binary (CGO_ENABLED=0): no libc, no loader, no shell needed.
COPY bin/lifecycled /lifecycled

# Not root. Numeric, so that Kubernetes' runAsNonRoot can verify it without an
# /etc/passwd in the image (the kubelet refuses a non-numeric USER there).
# 65532 is the "nonroot" user of the distroless images.
USER 65532:65532

# What `docker stop`, `podman stop` and the kubelet send first; lifecycled
# turns it into the stop sequence (fail /readyz, drain, preStop, stop the app).
STOPSIGNAL SIGTERM

ENTRYPOINT ["/lifecycled"]
CMD ["--help"]
