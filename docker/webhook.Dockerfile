# syntax=docker/dockerfile:1
# The tcp-sniffer mutating admission webhook (tcp-sniffer-webhook): a static-ish Rust
# binary (glibc only; rustls, no OpenSSL) on debian-slim, non-root (65532), HTTPS on 8443,
# plain-HTTP probes (/healthz, /readyz only) on 8081.
#
# Targets:
#   runtime (default)  builds the binary from source; context = repo root
#     podman build --ignorefile docker/webhook.Dockerfile.dockerignore \
#       -f docker/webhook.Dockerfile -t tcp-sniffer-webhook:0.1.0 .
#     (docker buildx uses docker/webhook.Dockerfile.dockerignore by itself)
#   prebuilt           copies a binary built beforehand (`cargo build --release -p
#                      tcp-sniffer-webhook`); context = a directory holding it
#                      (scripts/images.sh makes one)
#     podman build -f docker/webhook.Dockerfile --target prebuilt -t tcp-sniffer-webhook:0.1.0 DIR
#
# Base images are build arguments: BASE_IMAGE (default debian:bookworm-slim),
# RUST_IMAGE (default rust:1-bookworm).
# Run it with the certificate and key mounted, e.g. (see deploy/base/deployment.yaml):
#   -e TLS_CERT_FILE=/tls/tls.crt -e TLS_KEY_FILE=/tls/tls.key -e SNIFFER_IMAGE=...

ARG BASE_IMAGE=debian:bookworm-slim
ARG RUST_IMAGE=rust:1-bookworm

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY engine engine
COPY node-addon node-addon
COPY webhook webhook
COPY perf perf
RUN cargo build --release --locked -p tcp-sniffer-webhook \
 && mkdir -p /out && cp target/release/tcp-sniffer-webhook /out/ \
 && strip /out/tcp-sniffer-webhook

FROM ${BASE_IMAGE} AS runtime-base
ENV LISTEN_ADDR=0.0.0.0:8443 PROBE_ADDR=0.0.0.0:8081
EXPOSE 8443 8081
USER 65532:65532
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tcp-sniffer-webhook"]

FROM runtime-base AS prebuilt
COPY --chmod=0755 tcp-sniffer-webhook /usr/local/bin/tcp-sniffer-webhook

FROM runtime-base AS runtime
COPY --from=build /out/tcp-sniffer-webhook /usr/local/bin/tcp-sniffer-webhook
