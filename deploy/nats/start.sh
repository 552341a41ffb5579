#!/bin/sh
# Entrypoint of the NATS containers of docker-compose.yml and deploy/compose.single.yml:
# puts the passwords that auth.conf reads into nats-server's environment, then runs
# nats-server with the container's command (-c <config>).
#
# Each password lives in /auth/<role>/password, one volume per role, so a jetpull
# container is handed only its own role's. The first node to start writes a random
# one (the link is atomic: when nodes start together one wins, the others read it);
# every later start keeps it. To change one, write the new password into the volume
# (a letter first, then letters and digits) and restart the NATS nodes and that
# role's jetpull containers, or remove the volume and restart everything.
#
# A password starts with a letter: NATS parses an environment value as a config
# value, so one like 3e5 or 64MB would be read as a number.
set -eu
umask 022

password() {
  file="/auth/$1/password"
  if [ ! -s "$file" ]; then
    tmp="$file.$$"
    printf 'jp%s' "$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" > "$tmp"
    ln "$tmp" "$file" 2>/dev/null || true
    rm -f "$tmp"
  fi
  cat "$file"
}

NATS_GATEWAY_PASSWORD=$(password gateway)
NATS_PUBLISHER_PASSWORD=$(password publisher)
NATS_JETPULL_PASSWORD=$(password jetpull)
export NATS_GATEWAY_PASSWORD NATS_PUBLISHER_PASSWORD NATS_JETPULL_PASSWORD
exec nats-server "$@"
