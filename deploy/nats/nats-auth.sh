#!/bin/sh
# Writes the NATS passwords of deploy/nats/auth.conf once, on the first start of the
# compose stack: one random password per role, each in its own volume, so a container
# is handed only its own role's password. Later starts keep them. To change one,
# remove the volume (docker compose down, docker volume rm <project>_nats-auth-gateway)
# and start again; every NATS node and jetpull process of that role must restart.
#
# A password starts with a letter: NATS parses an environment value as a config value,
# so one like 3e5 or 64MB would be read as a number.
set -eu
umask 022
for role in "$@"; do
  file="/auth/$role/password"
  if [ ! -s "$file" ]; then
    secret="jp$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
    printf '%s' "$secret" > "$file.tmp"
    mv "$file.tmp" "$file"
    echo "nats-auth: generated the $role password"
  fi
done
