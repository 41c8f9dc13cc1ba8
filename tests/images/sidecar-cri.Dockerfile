# Test-only: the sidecar image plus setpriv (and the one library it adds, libcap-ng), so
# tests/images/run.sh can start the image's own ENTRYPOINT the way containerd and CRI-O
# start a non-root process (ambient and inheritable capability sets cleared). The sidecar
# image has no shell or tools of its own; nothing here changes what it runs.
ARG BASE_IMAGE=localhost/tcp-sniffer-base/debian:bookworm-slim
ARG SIDECAR_IMAGE=localhost/tcp-sniffer-sidecar:0.1.0
FROM ${BASE_IMAGE} AS tools
RUN set -eu; mkdir -p /out/usr/bin /out/usr/lib/x86_64-linux-gnu; \
    cp /usr/bin/setpriv /out/usr/bin/; \
    for lib in $(ldd /usr/bin/setpriv | awk '$2 == "=>" { print $3 }'); do \
      cp -L "$lib" /out/usr/lib/x86_64-linux-gnu/; \
    done
FROM ${SIDECAR_IMAGE}
COPY --from=tools /out/ /
