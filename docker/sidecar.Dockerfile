# syntax=docker/dockerfile:1
# The tcp-sniffer sidecar: Node 20, libpcap's runtime library and the npm package
# `tcp-sniffer` (native addon + TypeScript build), run as tcp-sniffer-sidecar by a
# non-root user (65532) that captures with nothing but CAP_NET_RAW.
#
# Two ways to build it (targets):
#   runtime (default)  compiles the addon and the TypeScript from source; context = repo root
#     podman build --ignorefile docker/sidecar.Dockerfile.dockerignore \
#       -f docker/sidecar.Dockerfile -t tcp-sniffer-sidecar:0.1.0 .
#     (docker buildx uses docker/sidecar.Dockerfile.dockerignore by itself)
#   prebuilt           installs a package built beforehand (`npm pack` of node-addon/, which
#                      holds index.node and dist/); context = a directory with that tarball
#                      named tcp-sniffer.tgz (scripts/images.sh makes it)
#     podman build -f docker/sidecar.Dockerfile --target prebuilt -t tcp-sniffer-sidecar:0.1.0 DIR
#
# Base images are build arguments (no registry is reachable on the project's machines:
# scripts/images.sh makes local stand-ins with debootstrap and passes them in):
#   NODE_IMAGE   Node runtime (/usr/local/bin/node) and npm (default node:20-bookworm-slim)
#   BASE_IMAGE   the runtime image's base                 (default debian:bookworm-slim)
#   BUILD_IMAGE  Node toolchain for the source build      (default node:20-bookworm)
#   RUST_IMAGE   Rust toolchain copied into BUILD_IMAGE   (default rust:1-bookworm)
#
# Capture privileges. The node binary carries the file capability cap_net_raw+ep, and the
# ENTRYPOINT execs node directly. A non-root process then gains CAP_NET_RAW at exec when
# the container's bounding set holds it (`--cap-drop ALL --cap-add NET_RAW`; Kubernetes
# `capabilities: {drop: [ALL], add: [NET_RAW]}`), and nothing else. It also works under
# no_new_privs (`allowPrivilegeEscalation: false`): the kernel then limits the file
# capability to the permitted set the process had before exec, and runc puts the added
# capability there (containerd and CRI-O pass it in the OCI spec's permitted set; podman
# also makes it ambient). tests/images/run.sh checks both, the containerd way with the
# ambient and inheritable sets cleared. Two consequences:
#   - no shell, `env` or other wrapper may run before node: that exec would drop
#     CAP_NET_RAW from the permitted set, and no_new_privs would keep node from regaining it;
#   - without NET_RAW in the bounding set the kernel refuses to exec node at all ("exec
#     /usr/local/bin/node: operation not permitted", exit 1), because the effective bit
#     asks for a capability it cannot grant.
# The root filesystem can be read-only, without a /tmp volume: nothing is written.
# The runtime image has no npm and nothing beyond debian-slim, libpcap and node.

ARG NODE_IMAGE=node:20-bookworm-slim
ARG BASE_IMAGE=debian:bookworm-slim
ARG BUILD_IMAGE=node:20-bookworm
ARG RUST_IMAGE=rust:1-bookworm

# ---------------------------------------------------------------- build from source
FROM ${RUST_IMAGE} AS rust

FROM ${BUILD_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
COPY --from=rust /usr/local/cargo /usr/local/cargo
COPY --from=rust /usr/local/rustup /usr/local/rustup
ENV CARGO_HOME=/usr/local/cargo RUSTUP_HOME=/usr/local/rustup PATH=/usr/local/cargo/bin:$PATH
WORKDIR /src
# The whole workspace: cargo resolves every member even when it builds one.
COPY Cargo.toml Cargo.lock ./
COPY engine engine
COPY node-addon node-addon
COPY webhook webhook
COPY perf perf
WORKDIR /src/node-addon
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm run build \
 && mkdir -p /pkg \
 && npm pack --ignore-scripts --pack-destination /pkg \
 && mv /pkg/tcp-sniffer-*.tgz /pkg/tcp-sniffer.tgz

# ------------------------------------------- install the package (source or prebuilt)
FROM ${NODE_IMAGE} AS install-source
COPY --from=build /pkg/tcp-sniffer.tgz /tmp/tcp-sniffer.tgz
# No runtime dependencies; --ignore-scripts: the tarball already holds index.node and dist/.
RUN npm install --global --prefix /opt/tcp-sniffer --omit=dev --ignore-scripts \
      --no-audit --no-fund --no-update-notifier /tmp/tcp-sniffer.tgz \
 && test -f /opt/tcp-sniffer/lib/node_modules/tcp-sniffer/index.node \
 && test -f /opt/tcp-sniffer/lib/node_modules/tcp-sniffer/dist/sidecar.js \
 && test -x /opt/tcp-sniffer/bin/tcp-sniffer-sidecar

FROM ${NODE_IMAGE} AS install-prebuilt
COPY tcp-sniffer.tgz /tmp/tcp-sniffer.tgz
RUN npm install --global --prefix /opt/tcp-sniffer --omit=dev --ignore-scripts \
      --no-audit --no-fund --no-update-notifier /tmp/tcp-sniffer.tgz \
 && test -f /opt/tcp-sniffer/lib/node_modules/tcp-sniffer/index.node \
 && test -f /opt/tcp-sniffer/lib/node_modules/tcp-sniffer/dist/sidecar.js \
 && test -x /opt/tcp-sniffer/bin/tcp-sniffer-sidecar

# ------------------------------------------------------------------- runtime base
# The Node runtime of NODE_IMAGE, with the file capability cap_net_raw+ep. Set in its own
# stage: setting it in the final image would copy the 100 MB binary into a second layer.
FROM ${NODE_IMAGE} AS node
FROM ${BASE_IMAGE} AS node-caps
COPY --from=node /usr/local/bin/node /usr/local/bin/node
RUN set -eu; \
    if ! command -v setcap >/dev/null; then \
      apt-get update; apt-get install -y --no-install-recommends libcap2-bin; \
    fi; \
    setcap cap_net_raw+ep /usr/local/bin/node; \
    getcap /usr/local/bin/node | grep -q 'cap_net_raw=ep'

# Debian slim + libpcap's runtime library + node (no npm: nothing installs at run time).
FROM ${BASE_IMAGE} AS runtime-base
# libpcap0.8: the engine's libpcap capture backend. Installed only when missing, so a
# base image that already has it needs no network.
RUN set -eu; \
    if ! dpkg-query -W -f='${Status}' libpcap0.8 2>/dev/null | grep -q 'install ok installed'; then \
      apt-get update; \
      apt-get install -y --no-install-recommends libpcap0.8; \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    groupadd --system --gid 65532 tcp-sniffer; \
    useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin tcp-sniffer 2>/dev/null
# COPY keeps the security.capability extended attribute.
COPY --from=node-caps /usr/local/bin/node /usr/local/bin/node
ENV PATH=/opt/tcp-sniffer/bin:$PATH
USER 65532:65532
WORKDIR /
# SIGTERM (Kubernetes, `podman stop`) stops capture and drains; exit code 0.
STOPSIGNAL SIGTERM
# The runtime executes node itself, not the `tcp-sniffer-sidecar` shim on PATH: the shim's
# `#!/usr/bin/env node` would exec env first, and a non-root process without ambient
# capabilities (containerd, CRI-O) loses CAP_NET_RAW from its permitted set on that exec;
# with no_new_privs, node's file capability could then not bring it back.
ENTRYPOINT ["/usr/local/bin/node", "/opt/tcp-sniffer/lib/node_modules/tcp-sniffer/dist/sidecar.js"]

# The image from a prebuilt package (tests, scripts/images.sh).
FROM runtime-base AS prebuilt
COPY --from=install-prebuilt /opt/tcp-sniffer /opt/tcp-sniffer

# The image built from source (default target).
FROM runtime-base AS runtime
COPY --from=install-source /opt/tcp-sniffer /opt/tcp-sniffer
