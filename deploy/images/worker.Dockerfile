# The tandem-worker image. Build context: the repository root after
# `make build` (the worker is built on Debian 12 against Debian's crates, so
# the image uses the same base and glibc):
#   docker build -f deploy/images/worker.Dockerfile -t tandem-worker:0.1.0 .
# No container engine runs on the development machines, so this file is
# checked by deploy/test (its sources exist, its entry point is tested), not built.
FROM debian:12-slim
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin tandem
COPY native/target/release/tandem-worker /usr/local/bin/tandem-worker
COPY deploy/images/worker-entrypoint.sh /usr/local/bin/tandem-worker-entrypoint
USER 10001
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/tandem-worker-entrypoint"]
