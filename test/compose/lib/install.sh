# Installs what the compose suite needs when it is missing (sourced by run.sh).
#
#   the engine and debootstrap   Debian packages of the host's own release (apt-get)
#   compose v2, nats-server,     .deb files of newer Debian releases, unpacked into
#   nginx's rootfs, prometheus   $COMPOSE_CACHE/pkgs: nothing of the host is upgraded
#
# Quick when everything is there: no apt call at all.

# The engine comes with containerd, runc, tini and iptables.
ensure_host_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  [ "${#missing[@]}" -eq 0 ] && return 0
  say "installing ${missing[*]}"
  # No service may start during the install: a daemon on /var/run/docker.sock would
  # make the other test suites switch to testcontainers.
  local guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    guard=1
  fi
  local rc=0
  quietly "$COMPOSE_CACHE/apt-install.log" apt-get update -y || rc=$?
  [ "$rc" -eq 0 ] && { quietly "$COMPOSE_CACHE/apt-install.log" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}" || rc=$?; }
  [ -n "$guard" ] && rm -f /usr/sbin/policy-rc.d
  return "$rc"
}

# apt-get with its own sources, index and cache under $COMPOSE_CACHE/apt: it only
# downloads .deb files of trixie and sid, the host's apt configuration is never touched.
PRIVATE_APT="$COMPOSE_CACHE/apt"
private_apt() {
  apt-get \
    -o Dir::Etc::SourceList="$PRIVATE_APT/sources.list" \
    -o Dir::Etc::SourceParts="$PRIVATE_APT/sources.list.d" \
    -o Dir::Etc::Preferences="$PRIVATE_APT/preferences" \
    -o Dir::Etc::PreferencesParts="$PRIVATE_APT/preferences.d" \
    -o Dir::State::Lists="$PRIVATE_APT/lists" \
    -o Dir::State::status="$PRIVATE_APT/status" \
    -o Dir::Cache="$PRIVATE_APT/cache" \
    -o APT::Sandbox::User=root \
    -o Debug::NoLocking=1 \
    "$@"
}

private_apt_index() {
  [ -n "${PRIVATE_APT_FRESH:-}" ] && return 0
  mkdir -p "$PRIVATE_APT"/{lists/partial,cache/archives/partial,sources.list.d,preferences.d}
  touch "$PRIVATE_APT/status" "$PRIVATE_APT/preferences"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  printf 'deb [signed-by=%s] %s %s main\n' "$keyring" "$DEBIAN_MIRROR" trixie "$keyring" "$DEBIAN_MIRROR" sid \
    >"$PRIVATE_APT/sources.list"
  quietly "$COMPOSE_CACHE/apt-index.log" private_apt update || return 1
  PRIVATE_APT_FRESH=1
}

# Unpacks package NAME of Debian SUITE into $COMPOSE_CACHE/pkgs/NAME-SUITE once; prints
# that directory.
debian_pkg() {
  local name="$1" suite="$2" dir="$COMPOSE_CACHE/pkgs/$1-$2"
  if [ ! -f "$dir/.unpacked" ]; then
    private_apt_index >&2 || return 1
    local dl="$COMPOSE_CACHE/debs"
    mkdir -p "$dl"
    rm -f "$dl/${name}"_*.deb
    (cd "$dl" && quietly "$COMPOSE_CACHE/apt-download.log" private_apt download "$name/$suite") >&2 || return 1
    rm -rf "$dir" && mkdir -p "$dir"
    dpkg-deb -x "$dl/${name}"_*.deb "$dir"
    dpkg-deb -f "$dl/${name}"_*.deb Version >"$dir/.version"
    touch "$dir/.unpacked"
  fi
  printf '%s\n' "$dir"
}

# Compose v2 as a CLI plugin in a private DOCKER_CONFIG ($1): sid's (2.40) by default,
# trixie's (2.26) with JETPULL_COMPOSE_SUITE=trixie. The other one is unpacked too, for
# the check that both accept the file. Exports COMPOSE_ALT_BIN.
ensure_compose_plugin() {
  local config_dir="$1" suite="${JETPULL_COMPOSE_SUITE:-sid}" other
  other=$([ "$suite" = sid ] && echo trixie || echo sid)
  local main alt
  main=$(debian_pkg docker-compose "$suite") || return 1
  alt=$(debian_pkg docker-compose "$other") || return 1
  mkdir -p "$config_dir/cli-plugins"
  ln -sf "$main/usr/libexec/docker/cli-plugins/docker-compose" "$config_dir/cli-plugins/docker-compose"
  export COMPOSE_ALT_BIN="$alt/usr/libexec/docker/cli-plugins/docker-compose"
}
