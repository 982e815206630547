# syntax=docker/dockerfile:1
#
# Tributary's container image: a release build of the `tributary` binary on a
# slim Debian runtime. The binary needs only glibc and libgcc, and carries its
# own TLS roots (for rediss://), so nothing is installed on top.
#
#   docker build --build-arg VERSION="$(git describe --tags --always)" \
#                --build-arg COMMIT="$(git rev-parse HEAD)" -t tributary .
#
# Cache mounts need BuildKit, the default builder since Docker Engine 23.

# ---- build ------------------------------------------------------------------
# Trixie (Debian 13, the current stable), so the binary links against the same
# glibc (2.41) as the runtime below. The Rust release is the one CI uses; the
# crates are pinned by Cargo.lock.
FROM rust:1.95.0-slim-trixie AS build
WORKDIR /src

COPY Cargo.toml Cargo.lock ./
COPY src ./src

# The registry and target/ live in BuildKit cache mounts, so a change to src/
# recompiles only Tributary itself, not its dependencies. A cache mount is not
# part of the image, hence the copy out of target/. The image has no .git, so
# the commit reaches the build as TRIBUTARY_BUILD_COMMIT (for the metrics'
# build info).
ARG COMMIT=unknown
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    TRIBUTARY_BUILD_COMMIT="${COMMIT}" cargo build --release --locked --bin tributary \
 && cp target/release/tributary /usr/local/bin/tributary

# ---- runtime ----------------------------------------------------------------
# Debian 13 (trixie) slim, pinned to a point release and to the digest of its
# multi-platform index, so every rebuild gets the same bytes. The tag says which
# release the digest is; to move on (a Debian point release, a security fix),
# change both together. (Distroless cc-debian13 would be smaller, but it has no
# version tags, only digests, and lives outside Docker Hub.)
FROM debian:13.7-slim@sha256:a99cfc517144bc59b1978475ec53b46ecabec7e43635402ee5b77cc54cd1b20a AS runtime

ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="tributary" \
      org.opencontainers.image.description="An open backend for live car telemetry: sensors record readings, phones collect them." \
      org.opencontainers.image.source="https://github.com/tributary-telemetry/tributary" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"

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
