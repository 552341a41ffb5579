# Shared by the scripts of test/compose/ (sourced, not run).

# Everything that survives a run: Debian packages, debootstrap root filesystems, the
# private apt index. Safe to delete; the next run rebuilds it.
COMPOSE_CACHE="${JETPULL_COMPOSE_CACHE:-/var/cache/jetpull-compose}"
DEBIAN_MIRROR="${JETPULL_COMPOSE_MIRROR:-http://deb.debian.org/debian}"

say() { printf 'compose: %s\n' "$*"; }
warn() { printf 'compose: %s\n' "$*" >&2; }

# Seconds since the epoch with milliseconds, for timings.
now_ms() { date +%s%3N; }

# Runs a command with its output in a log file; on failure shows the log's tail.
quietly() {
  local log="$1"; shift
  if ! "$@" >"$log" 2>&1; then
    warn "failed: $* (log: $log)"
    tail -n 25 "$log" >&2
    return 1
  fi
}
