# The test app image of the cluster tests: lifecycled, the zero-downtime
# backend (integration/testdata/backend: a naive Go HTTP server that calls
# Shutdown at once on SIGTERM), tini (Debian's tini-static) to compare
# against, and busybox for a shell, sleep, kill and touch in hooks.
ARG LIFECYCLED_IMAGE=localhost/lifecycled:dev
FROM ${LIFECYCLED_IMAGE} AS lifecycled

FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/mkdir", "-m", "1777", "/tmp"]
COPY --from=lifecycled /lifecycled /lifecycled
COPY backend /backend
COPY tini-static /tini
USER 65532:65532
STOPSIGNAL SIGTERM
ENTRYPOINT ["/lifecycled"]
