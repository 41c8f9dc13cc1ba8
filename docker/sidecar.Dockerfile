# syntax=docker/dockerfile:1
# The tcp-sniffer sidecar: a distroless-style image (no shell, no package manager, no
# coreutils) holding only what the sidecar runs: the Node 24 LTS runtime, the shared
# libraries it and the addon load (glibc, libstdc++, libgcc_s, libpcap and what libpcap
# links), the npm package `tcp-sniffer` (prebuilt addon + JavaScript), /etc/passwd and
# /etc/group with the non-root user 65532, and the Debian copyright files of those
# libraries. It runs dist/sidecar.js as 65532, capturing with nothing but CAP_NET_RAW.
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
# scripts/images.sh makes local stand-ins and passes them in). None of them ends up in the
# image; each is only a source of files:
#   NODE_IMAGE   the Node runtime at /usr/local/bin/node   (default node:24-bookworm-slim)
#   BASE_IMAGE   Debian bookworm: the shared libraries, setcap (default debian:bookworm-slim)
#   BUILD_IMAGE  Node toolchain for the source build        (default node:24-bookworm)
#   RUST_IMAGE   Rust toolchain copied into BUILD_IMAGE     (default rust:1-bookworm)
# NODE_IMAGE's node must run on BASE_IMAGE's glibc (official Node 24 builds need glibc 2.28;
# bookworm has 2.36).
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
#     CAP_NET_RAW from the permitted set, and no_new_privs would keep node from regaining it
#     (the image has no shell anyway);
#   - without NET_RAW in the bounding set the kernel refuses to exec node at all ("exec
#     /usr/local/bin/node: operation not permitted", exit 1), because the effective bit
#     asks for a capability it cannot grant.
# The root filesystem can be read-only, without a /tmp volume: nothing is written.
# Debugging: the image has no shell; use `kubectl debug --target` (an ephemeral container
# sharing the process namespace) or `podman run --entrypoint /usr/local/bin/node IMAGE -e …`.

ARG NODE_IMAGE=node:24-bookworm-slim
ARG BASE_IMAGE=debian:bookworm-slim
ARG BUILD_IMAGE=node:24-bookworm
ARG RUST_IMAGE=rust:1-bookworm

# ---------------------------------------------------------------- build from source
FROM ${RUST_IMAGE} AS rust

FROM ${BUILD_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap-dev pkg-config binutils \
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
# `npm run build` strips index.node (its debug info goes to index.node.debug, not packed).
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm run build \
 && mkdir -p /pkg \
 && npm pack --ignore-scripts --pack-destination /pkg \
 && mv /pkg/tcp-sniffer-*.tgz /pkg/tcp-sniffer.tgz

# ------------------------------------------------------------------- root filesystem
# Everything but the package, assembled under /rootfs: node (with cap_net_raw+ep), the
# shared libraries node and libpcap need (their ldd closure, in Debian's merged-/usr
# layout), the copyright files of the packages they come from, and the few /etc files a
# process expects. A layer of its own, so a new package reuses it.
FROM ${NODE_IMAGE} AS node
FROM ${BASE_IMAGE} AS rootfs
COPY --from=node /usr/local/bin/node /usr/local/bin/node
# libpcap0.8: the engine's libpcap backend (the addon links it); libcap2-bin: setcap.
# Installed only when missing, so a base image that already has them needs no network.
RUN set -eu; \
    need=; \
    for p in libpcap0.8 libcap2-bin; do \
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need="$need $p"; \
    done; \
    if [ -n "$need" ]; then \
      apt-get update; apt-get install -y --no-install-recommends $need; rm -rf /var/lib/apt/lists/*; \
    fi; \
    R=/rootfs; \
    mkdir -p $R/usr/lib/x86_64-linux-gnu $R/usr/lib64 $R/usr/local/bin $R/etc $R/opt/tcp-sniffer; \
    ln -s usr/lib $R/lib; ln -s usr/lib64 $R/lib64; \
    mkdir -m 1777 $R/tmp; \
    cp /usr/local/bin/node $R/usr/local/bin/node; \
    setcap cap_net_raw+ep $R/usr/local/bin/node; \
    getcap $R/usr/local/bin/node | grep -q 'cap_net_raw=ep'; \
    pcap=$(readlink -f /usr/lib/x86_64-linux-gnu/libpcap.so.0.8); \
    libs=$( { ldd /usr/local/bin/node; ldd "$pcap"; echo /usr/lib/x86_64-linux-gnu/libpcap.so.0.8; } \
      | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u); \
    for lib in $libs; do \
      dir=$(readlink -f "$(dirname "$lib")"); \
      mkdir -p "$R$dir"; \
      cp -L "$lib" "$R$dir/$(basename "$lib")"; \
      pkg=$( { dpkg -S "$lib" || dpkg -S "$(readlink -f "$lib")"; } 2>/dev/null | head -n1 | cut -d: -f1) || true; \
      if [ -n "$pkg" ] && [ -f "/usr/share/doc/$pkg/copyright" ]; then \
        mkdir -p "$R/usr/share/doc/$pkg"; cp "/usr/share/doc/$pkg/copyright" "$R/usr/share/doc/$pkg/"; \
      fi; \
    done; \
    printf 'root:x:0:0:root:/root:/sbin/nologin\ntcp-sniffer:x:65532:65532:tcp-sniffer:/nonexistent:/sbin/nologin\n' >$R/etc/passwd; \
    printf 'root:x:0:\ntcp-sniffer:x:65532:\n' >$R/etc/group; \
    printf 'passwd: files\ngroup: files\nhosts: files dns\n' >$R/etc/nsswitch.conf; \
    echo /usr/lib/x86_64-linux-gnu >$R/etc/ld.so.conf; \
    ldconfig -r $R; \
    echo "rootfs: $(du -sh $R | cut -f1): $(echo $libs | tr '\n' ' ')"

# ------------------------------------------- the package, unpacked where the entrypoint looks
# An npm package with no dependencies and no install scripts: unpacking it is installing it.
# The addon's shared libraries must all be in /rootfs (checked with ldd here, so a new
# dependency of the addon fails the build instead of the container's start).
FROM rootfs AS package-source
COPY --from=build /pkg/tcp-sniffer.tgz /tmp/tcp-sniffer.tgz
RUN set -eu; \
    d=/opt/tcp-sniffer/lib/node_modules/tcp-sniffer; mkdir -p $d; \
    tar -xzf /tmp/tcp-sniffer.tgz -C $d --strip-components=1 --no-same-owner; \
    test -f $d/index.node; test -f $d/dist/sidecar.js; \
    for lib in $(ldd $d/index.node | awk '$3 == "not" { print "missing:" $1; next } $2 == "=>" { print $3 }'); do \
      test -e "/rootfs$(readlink -f "$(dirname "$lib")")/$(basename "$lib")" || { echo "index.node needs $lib, which the image lacks" >&2; exit 1; }; \
    done

FROM rootfs AS package-prebuilt
COPY tcp-sniffer.tgz /tmp/tcp-sniffer.tgz
RUN set -eu; \
    d=/opt/tcp-sniffer/lib/node_modules/tcp-sniffer; mkdir -p $d; \
    tar -xzf /tmp/tcp-sniffer.tgz -C $d --strip-components=1 --no-same-owner; \
    test -f $d/index.node; test -f $d/dist/sidecar.js; \
    for lib in $(ldd $d/index.node | awk '$3 == "not" { print "missing:" $1; next } $2 == "=>" { print $3 }'); do \
      test -e "/rootfs$(readlink -f "$(dirname "$lib")")/$(basename "$lib")" || { echo "index.node needs $lib, which the image lacks" >&2; exit 1; }; \
    done

# ------------------------------------------------------------------------ the image
FROM scratch AS runtime-base
# COPY keeps the security.capability extended attribute of node.
COPY --from=rootfs /rootfs /
ENV PATH=/usr/local/bin
USER 65532:65532
WORKDIR /
# SIGTERM (Kubernetes, `podman stop`) stops capture and drains; exit code 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/node", "/opt/tcp-sniffer/lib/node_modules/tcp-sniffer/dist/sidecar.js"]

# The image from a prebuilt package (tests, scripts/images.sh).
FROM runtime-base AS prebuilt
COPY --from=package-prebuilt /opt/tcp-sniffer /opt/tcp-sniffer

# The image built from source (default target).
FROM runtime-base AS runtime
COPY --from=package-source /opt/tcp-sniffer /opt/tcp-sniffer
