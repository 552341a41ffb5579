#!/usr/bin/env bash
# Prints the path of the current nats-server release from Debian sid, fetching it
# once into a cache (the host's own apt configuration is never touched). The Go
# binary is static: it runs on older Debian releases as it is.
#
#   JETPULL_TEST_NATS_BINARY=$(scripts/nats-server-current.sh) npm test
set -euo pipefail
cache="${JETPULL_NATS_CACHE:-/var/cache/jetpull-nats}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
apt_dir="$cache/apt"
found=$(find "$cache/pkgs" -path '*/usr/sbin/nats-server' -type f 2>/dev/null | sort -V | tail -n 1 || true)
if [ -n "$found" ] && [ -z "${JETPULL_NATS_REFRESH:-}" ]; then
  echo "$found"
  exit 0
fi
mkdir -p "$apt_dir"/{lists/partial,cache/archives/partial,sources.list.d,preferences.d} "$cache/pkgs"
touch "$apt_dir/status" "$apt_dir/preferences"
printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s sid main\n' "$mirror" >"$apt_dir/sources.list"
apt_opts=(
  -o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts="$apt_dir/sources.list.d"
  -o Dir::Etc::Preferences="$apt_dir/preferences" -o Dir::Etc::PreferencesParts="$apt_dir/preferences.d"
  -o Dir::State::Lists="$apt_dir/lists" -o Dir::State::status="$apt_dir/status" -o Dir::Cache="$apt_dir/cache"
  -o APT::Sandbox::User=root -o Debug::NoLocking=1
)
apt-get "${apt_opts[@]}" update -y >"$cache/apt-update.log" 2>&1
(cd "$cache" && apt-get "${apt_opts[@]}" download nats-server >"$cache/apt-download.log" 2>&1)
deb=$(ls -t "$cache"/nats-server_*.deb | head -n 1)
version=$(dpkg-deb -f "$deb" Version)
dpkg-deb -x "$deb" "$cache/pkgs/$version"
rm -f "$deb"
"$cache/pkgs/$version/usr/sbin/nats-server" --version >/dev/null
echo "$cache/pkgs/$version/usr/sbin/nats-server"
