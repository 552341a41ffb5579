# A private Docker engine for one run (sourced by run.sh).
#
# Its socket, data, exec root and pidfile live in one temporary directory, never at
# /var/run/docker.sock: the other test suites switch to testcontainers when that
# socket exists. Stopped by PID; the directory is removed afterwards.

# Starts dockerd in $1 and exports DOCKER_HOST and DOCKERD_PID. On failure prints the
# reason on stdout and returns 1.
start_dockerd() {
  local dir="$1"
  mkdir -p "$dir"
  # What dockerd changes on the host, to put back when it stops: it creates docker0,
  # sets the FORWARD policy to DROP and turns on IP forwarding.
  HOST_HAD_DOCKER0=$(ip link show docker0 >/dev/null 2>&1 && echo 1 || true)
  HOST_FORWARD_POLICY=$(iptables -S FORWARD 2>/dev/null | awk '$1 == "-P" {print $3}' || true)
  HOST_IP_FORWARD=$(cat /proc/sys/net/ipv4/ip_forward 2>/dev/null || true)
  dockerd \
    -H "unix://$dir/docker.sock" \
    --data-root "$dir/data" \
    --exec-root "$dir/exec" \
    --pidfile "$dir/dockerd.pid" \
    --storage-driver overlay2 \
    --log-level warn \
    >"$dir/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  export DOCKER_HOST="unix://$dir/docker.sock"
  local deadline=$(($(date +%s) + 60))
  until docker version >/dev/null 2>&1; do
    if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
      echo "dockerd exited: $(grep -v '^\s*$' "$dir/dockerd.log" | tail -n 1)"
      DOCKERD_PID=""
      return 1
    fi
    if [ "$(date +%s)" -gt "$deadline" ]; then
      echo "dockerd did not answer within 60 s"
      return 1
    fi
    sleep 0.3
  done
  # Compose needs user-defined bridge networks; some sandboxes refuse them.
  local err
  if ! err=$(docker network create jetpull-compose-probe 2>&1 >/dev/null); then
    echo "no bridge network: $err"
    return 1
  fi
  docker network rm jetpull-compose-probe >/dev/null
}

# Stops the engine started by start_dockerd and removes $1. Safe to call twice.
stop_dockerd() {
  local dir="$1" children=""
  if [ -n "${DOCKERD_PID:-}" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    # Its containerd, which can outlive a dockerd that has to be killed.
    children=$(pgrep -P "$DOCKERD_PID" || true)
    kill -TERM "$DOCKERD_PID" 2>/dev/null || true
    local i forced=1
    for i in $(seq 1 100); do
      kill -0 "$DOCKERD_PID" 2>/dev/null || { forced=""; break; }
      sleep 0.2
    done
    if [ -n "$forced" ]; then
      kill -KILL "$DOCKERD_PID" 2>/dev/null || true
      local pid
      for pid in $children; do kill -KILL "$pid" 2>/dev/null || true; done
    fi
  fi
  DOCKERD_PID=""
  restore_host_network
  [ -d "$dir" ] || return 0
  # Mounts left behind by a killed engine keep the directory busy.
  local m
  for m in $(grep -o " $dir/[^ ]*" /proc/mounts | sort -r || true); do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$dir"
}

restore_host_network() {
  [ -z "${HOST_HAD_DOCKER0:-}" ] && ip link delete docker0 2>/dev/null
  [ -n "${HOST_FORWARD_POLICY:-}" ] && iptables -P FORWARD "$HOST_FORWARD_POLICY" 2>/dev/null
  [ -n "${HOST_IP_FORWARD:-}" ] && echo "$HOST_IP_FORWARD" >/proc/sys/net/ipv4/ip_forward 2>/dev/null
  return 0
}
