# A local stand-in for node:<major>-bookworm-slim, for machines without a registry:
# the debootstrap'd Debian base plus a Node runtime copied from the host (Debian
# bookworm's archive only has Node 18). Laid out like the official image: node in
# /usr/local/bin, npm in /usr/local/lib/node_modules. Built by scripts/images.sh from
# a context holding `node` (the host's binary; it links only glibc, libstdc++ and
# libgcc_s, all in the base) and `npm/` (the host's npm package).
ARG BASE_IMAGE=localhost/tcp-sniffer-base/debian:bookworm-slim
FROM ${BASE_IMAGE}
ARG NODE_VERSION
LABEL dev.tcp-sniffer.node-version=${NODE_VERSION}
COPY --chmod=0755 node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && test "$(node --version)" = "${NODE_VERSION}" \
 && npm --version >/dev/null
CMD ["node"]
