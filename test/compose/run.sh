#!/usr/bin/env bash
# npm run test:compose: runs the project's own docker-compose.yml on a private Docker
# engine on this machine and checks it end to end (test/compose/suite.ts).
#
#   npm run test:compose
#       installs what is missing (engine, compose v2, debootstrap), starts dockerd on a
#       socket of its own, builds local stand-ins for the registry images, runs the
#       checks, and stops everything it started.
#   npm run test:compose -- --against http://HOST:8080 --publish http://HOST:8895 --key KEY \
#                           [--prometheus http://HOST:9090] [--grafana http://HOST:3000]
#       only the checks that need no control over the containers, against a running
#       deployment (nothing is installed or started).
#
# Environment: JETPULL_COMPOSE_CACHE (default /var/cache/jetpull-compose),
# JETPULL_COMPOSE_FRESH_UPS (fresh starts in the start-up check, default 5),
# JETPULL_COMPOSE_SUITE (compose v2 from sid, 2.40, or trixie, 2.26; default sid),
# JETPULL_COMPOSE_NATS_SUITE (nats-server from trixie, 2.10, default; or sid, 2.15).
#
# When no Docker engine can run here (apt fails, dockerd does not start, no overlay2 or
# bridge networks), it says so in one line and exits 0.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
# shellcheck source=lib/common.sh
source test/compose/lib/common.sh
source test/compose/lib/install.sh
source test/compose/lib/dockerd.sh
source test/compose/lib/standins.sh
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

SUITE=(node --import tsx --test-reporter=spec test/compose/suite.ts)

# ------------------------------------------------------------------ --against ---
if [ "${1:-}" = --against ]; then
  while [ $# -gt 0 ]; do
    case "$1" in
      --against) export JETPULL_E2E_AGAINST="$2"; shift 2 ;;
      --publish) export JETPULL_E2E_PUBLISH_URL="$2"; shift 2 ;;
      --key) export PUSH_SECURITY_KEY="$2"; shift 2 ;;
      --prometheus) export JETPULL_E2E_PROMETHEUS_URL="$2"; shift 2 ;;
      --grafana) export JETPULL_E2E_GRAFANA_URL="$2"; shift 2 ;;
      *) warn "unknown option $1"; exit 2 ;;
    esac
  done
  [ -n "${PUSH_SECURITY_KEY:-}" ] || { warn "--key (the deployment's PUSH_SECURITY_KEY) is required"; exit 2; }
  exec "${SUITE[@]}"
fi
[ $# -eq 0 ] || { warn "unknown option $1 (see test/compose/run.sh)"; exit 2; }

no_engine() {
  say "no Docker engine can run on this machine ($1); the compose suite did not run"
  exit 0
}

[ "$(id -u)" -eq 0 ] || no_engine "dockerd needs root"
mkdir -p "$COMPOSE_CACHE"
# One run at a time: the stack uses fixed host ports, and the cache is shared.
exec 9>"$COMPOSE_CACHE/lock"
flock -w 1800 9 || { warn "another compose suite run holds $COMPOSE_CACHE/lock"; exit 1; }

started=$(now_ms)
step=$started
PREP=()
mark() { local t; t=$(now_ms); PREP+=("$1=$((t - step))"); step=$t; }

ensure_host_packages || no_engine "apt-get install docker.io debootstrap failed"
RUN_DIR=$(mktemp -d /tmp/jetpull-dockerd-XXXX)
export DOCKER_CONFIG="$RUN_DIR/docker-config"

PROJECT=jetpull-e2e
OVERRIDE="$RUN_DIR/override.yml"
SUITE_PID=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # Everything below is best effort: one failing step must not skip the others.
  set +e
  # The suite and the docker commands it started: its own process group.
  [ -n "$SUITE_PID" ] && kill -TERM -- "-$SUITE_PID" 2>/dev/null && wait "$SUITE_PID" 2>/dev/null
  if [ -n "${DOCKERD_PID:-}" ] && docker version >/dev/null 2>&1; then
    [ -f "$OVERRIDE" ] && docker compose -p "$PROJECT" -f docker-compose.yml -f "$OVERRIDE" \
      down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1 || true
    # The engine is this run's own: whatever is left in it is ours (testcontainers too).
    local left
    left=$(docker ps -aq 2>/dev/null || true)
    [ -n "$left" ] && docker rm -f $left >/dev/null 2>&1 || true
  fi
  if [ "$rc" -ne 0 ] && [ -d "$RUN_DIR" ]; then
    mkdir -p "$COMPOSE_CACHE/last-failed-run"
    cp "$RUN_DIR"/*.log "$COMPOSE_CACHE/last-failed-run/" 2>/dev/null || true
  fi
  local had_engine=${DOCKERD_PID:-}
  stop_dockerd "$RUN_DIR"
  [ -n "$had_engine" ] && say "engine stopped, $RUN_DIR removed ($(( ($(now_ms) - started) / 1000 )) s in all)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_compose_plugin "$DOCKER_CONFIG" || no_engine "compose v2 could not be downloaded from Debian"
mark install

# Builds (npm ci) reach the registry through the same proxy as the host, if any.
if [ -n "${https_proxy:-${HTTPS_PROXY:-}}${http_proxy:-${HTTP_PROXY:-}}" ]; then
  printf '{"proxies":{"default":{"httpProxy":"%s","httpsProxy":"%s","noProxy":"%s"}}}\n' \
    "${http_proxy:-${HTTP_PROXY:-}}" "${https_proxy:-${HTTPS_PROXY:-}}" "${no_proxy:-${NO_PROXY:-}}" \
    >"$DOCKER_CONFIG/config.json"
fi

if ! start_dockerd "$RUN_DIR" >"$RUN_DIR/no-engine.txt"; then
  no_engine "$(cat "$RUN_DIR/no-engine.txt")"
fi
mark dockerd
say "engine $(docker version --format '{{.Server.Version}}') on $DOCKER_HOST, $(docker compose version)"

build_standins || { warn "building the stand-in images failed"; exit 1; }
mark standins
say "stand-ins: $STANDIN_NODE $STANDIN_NATS $STANDIN_NGINX $STANDIN_PROMETHEUS $STANDIN_GRAFANA"

# A fresh key per run: the stack refuses to start without one.
PUSH_SECURITY_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export PUSH_SECURITY_KEY
export NOFILE_HARD
NOFILE_HARD=$(ulimit -Hn)
node --import tsx test/compose/override.ts "$OVERRIDE"

export JETPULL_COMPOSE_PROJECT="$PROJECT" JETPULL_COMPOSE_OVERRIDE="$OVERRIDE" JETPULL_COMPOSE_ALT_BIN="$COMPOSE_ALT_BIN"
export JETPULL_COMPOSE_RUN_DIR="$RUN_DIR"
export JETPULL_TEST_NATS_IMAGE="$STANDIN_NATS" TESTCONTAINERS_RYUK_DISABLED=true
export JETPULL_COMPOSE_PREP="${PREP[*]}"
# In the background so that INT/TERM reach the trap at once, not after the suite ends;
# in a process group of its own so that the trap can stop it with all it started.
setsid "${SUITE[@]}" &
SUITE_PID=$!
rc=0
wait "$SUITE_PID" || rc=$?
SUITE_PID=""
exit "$rc"
