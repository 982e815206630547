# syntax=docker/dockerfile:1
#
# Tributary's container image: a release build of the `tributary` binary on a
# slim Debian runtime. The binary needs only glibc and libgcc, and carries its
# own TLS roots (for rediss://), so nothing is installed on top.
#
#   docker build --build-arg VERSION="$(git describe --tags --always)" -t tributary .
#
# Cache mounts need BuildKit, the default builder since Docker Engine 23.

# ---- build ------------------------------------------------------------------
# Bookworm, so the binary links against the same glibc (2.36) as the Debian 12
# runtime below.
FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src

COPY Cargo.toml Cargo.lock ./
COPY src ./src

# The registry and target/ live in BuildKit cache mounts, so a change to src/
# recompiles only Tributary itself, not its dependencies. A cache mount is not
# part of the image, hence the copy out of target/.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin tributary \
 && cp target/release/tributary /usr/local/bin/tributary

# ---- runtime ----------------------------------------------------------------
# Pinned to a Debian point release, so a rebuild gets the same base. (Distroless
# would be smaller but has no version tags, only digests.)
FROM debian:12.12-slim AS runtime

ARG VERSION=dev
LABEL org.opencontainers.image.title="tributary" \
      org.opencontainers.image.description="An open backend for live car telemetry: sensors record readings, phones collect them." \
      org.opencontainers.image.source="https://github.com/tributary-telemetry/tributary" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"

COPY --from=build /usr/local/bin/tributary /usr/local/bin/tributary

# Without TRIBUTARY_REDIS_URL the embedded in-memory store is used: fine for a
# try-out, but readings are lost on restart. docker-compose.yml sets it.
ENV TRIBUTARY_LISTEN=0.0.0.0:8000 \
    TRIBUTARY_LOG=info \
    TRIBUTARY_LOG_FORMAT=json \
    TRIBUTARY_HEALTHCHECK_URL=http://127.0.0.1:8000/healthz

# Numeric, so that runtimes which refuse root (Kubernetes runAsNonRoot) can
# check it. The binary needs no home directory or passwd entry.
USER 65532:65532
EXPOSE 8000

# The binary probes itself: the image has no curl or wget.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/tributary", "healthcheck"]

# Exec form: tributary is PID 1 and receives `docker stop`'s SIGTERM itself.
ENTRYPOINT ["/usr/local/bin/tributary"]
CMD ["serve"]
