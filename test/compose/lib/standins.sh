# Local stand-ins for the stack's registry images (sourced by run.sh). No registry is
# reachable here, so each image of docker-compose.yml is rebuilt from Debian packages;
# the recipes are test/compose/standins/*/Dockerfile.

STANDINS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../standins" && pwd)"

# A debootstrap minbase root filesystem of SUITE with PACKAGES, imported as an image;
# the tarball is cached. Prints the image reference.
rootfs_image() {
  local suite="$1" packages="$2"
  local key
  key=$(printf '%s %s %s' "$suite" "$packages" "$DEBIAN_MIRROR" | sha1sum | cut -c1-10)
  local tar="$COMPOSE_CACHE/rootfs/$suite-$key.tar" image="jetpull-standin/rootfs-$suite:$key"
  if [ ! -f "$tar" ]; then
    say "debootstrap $suite ($packages)" >&2
    local tmp="$COMPOSE_CACHE/rootfs/$suite-$key.tmp"
    rm -rf "$tmp" && mkdir -p "$tmp"
    quietly "$COMPOSE_CACHE/debootstrap-$suite.log" \
      debootstrap --variant=minbase --include="$packages" "$suite" "$tmp" "$DEBIAN_MIRROR" >&2 || return 1
    # Package caches and documentation are not needed at run time.
    rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/cache/apt/*.bin "$tmp"/var/lib/apt/lists/* \
      "$tmp"/usr/share/doc "$tmp"/usr/share/man "$tmp"/usr/share/locale "$tmp"/usr/share/info
    tar --numeric-owner -C "$tmp" -cf "$tar.part" . && mv "$tar.part" "$tar"
    rm -rf "$tmp"
  fi
  quietly "$RUN_DIR/import.log" docker import "$tar" "$image" >&2 || return 1
  printf '%s\n' "$image"
}

# docker build of test/compose/standins/NAME with BASE, from context CTX, tagged TAG.
build_standin() {
  local name="$1" tag="$2" base="$3" ctx="$4"
  cp -r "$STANDINS_DIR/$name/." "$ctx/"
  quietly "$RUN_DIR/build-$name.log" docker build --build-arg "BASE=$base" -t "$tag" "$ctx"
}

# Builds every stand-in and exports their tags in STANDIN_*.
build_standins() {
  local bookworm sid ctx
  bookworm=$(rootfs_image bookworm wget) || return 1
  sid=$(rootfs_image sid nginx,wget) || return 1

  # node: this machine's Node and npm, with the libraries node links beyond glibc.
  ctx="$RUN_DIR/ctx/node"
  mkdir -p "$ctx/lib"
  local node npm_root
  node=$(readlink -f "$(command -v node)")
  npm_root=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)
  cp "$node" "$ctx/node"
  cp -r "$npm_root" "$ctx/npm"
  ldd "$node" | awk '/=> \//{print $3}' | grep -vE '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*)\.so' |
    while read -r lib; do cp -L "$lib" "$ctx/lib/"; done
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
  STANDIN_NODE="jetpull-standin/node:$("$node" --version | tr -d v)"
  build_standin node "$STANDIN_NODE" "$bookworm" "$ctx" || return 1

  # nats: Debian's nats-server; sid's current release matches the production image (nats:2.15).
  local nats_suite="${JETPULL_COMPOSE_NATS_SUITE:-sid}" nats_pkg
  nats_pkg=$(debian_pkg nats-server "$nats_suite") || return 1
  ctx="$RUN_DIR/ctx/nats"
  mkdir -p "$ctx"
  cp "$nats_pkg/usr/sbin/nats-server" "$ctx/nats-server"
  STANDIN_NATS="jetpull-standin/nats:$(cut -d- -f1 "$nats_pkg/.version")"
  build_standin nats "$STANDIN_NATS" "$bookworm" "$ctx" || return 1

  # nginx: installed in sid's rootfs by debootstrap (needs sid's libssl and pcre2).
  ctx="$RUN_DIR/ctx/nginx"
  mkdir -p "$ctx"
  STANDIN_NGINX="jetpull-standin/nginx:sid"
  build_standin nginx "$STANDIN_NGINX" "$sid" "$ctx" || return 1

  local prom_pkg
  prom_pkg=$(debian_pkg prometheus trixie) || return 1
  ctx="$RUN_DIR/ctx/prometheus"
  mkdir -p "$ctx"
  cp "$prom_pkg/usr/bin/prometheus" "$ctx/prometheus"
  STANDIN_PROMETHEUS="jetpull-standin/prometheus:$(cut -d+ -f1 "$prom_pkg/.version")"
  build_standin prometheus "$STANDIN_PROMETHEUS" "$bookworm" "$ctx" || return 1

  ctx="$RUN_DIR/ctx/grafana"
  mkdir -p "$ctx"
  STANDIN_GRAFANA="jetpull-standin/grafana:provisioning-check"
  build_standin grafana "$STANDIN_GRAFANA" "$STANDIN_NODE" "$ctx" || return 1

  # deploy/Dockerfile starts FROM node:20-bookworm-slim. A build argument cannot name
  # the base there (test/deploy/ requires the FROM lines as they are), so
  # the stand-in also carries that name, in this private engine only.
  docker tag "$STANDIN_NODE" node:20-bookworm-slim
  export STANDIN_NODE STANDIN_NATS STANDIN_NGINX STANDIN_PROMETHEUS STANDIN_GRAFANA
}
