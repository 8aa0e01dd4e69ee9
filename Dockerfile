# syntax=docker/dockerfile:1
# forward-auth as a container image. Multi-stage: the Rust toolchain builds the
# binary; the runtime image holds that binary and nothing of ours besides.
#
#   docker build -t forward-auth .
#
# docker-compose.yml builds this image and runs it beside nginx, Traefik or
# Caddy. Run elsewhere, set TRUSTED_PROXIES to the address your proxy connects
# from (the default trusts loopback only).

FROM rust:1-bookworm AS build
WORKDIR /src
# .dockerignore keeps target/, .git/ and .env (secrets) out of the context.
COPY . .
# Cache mounts (BuildKit) keep downloaded crates and target/ between builds.
# They are not part of the image, hence the copy out to /out.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin forward-auth \
    && install -D -m 0755 target/release/forward-auth /out/forward-auth

# Runtime: gcr.io/distroless/cc-debian12 rather than debian:bookworm-slim. The
# binary needs glibc and libgcc only (TLS is rustls with built-in roots, no
# OpenSSL), and it is built on bookworm, the same glibc. Distroless has no
# shell, no package manager and no curl for an intruder to use, and its
# `nonroot` tag ships the unprivileged user 65532. With no curl in the image the
# health check is the binary itself: `forward-auth healthcheck` GETs /healthz
# on the port of ADDRESS over loopback and exits 0 or 1.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/forward-auth /forward-auth
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
# The default ADDRESS is 0.0.0.0:4180.
EXPOSE 4180
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/forward-auth", "healthcheck"]
ENTRYPOINT ["/forward-auth"]
