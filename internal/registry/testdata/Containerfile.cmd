# A test image with a CMD and no ENTRYPOINT.
FROM scratch
CMD ["/bin/sh", "-c", "echo hi"]
