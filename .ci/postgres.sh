#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the tests: `start` prints the line to eval, `stop` removes it.
#
#   eval "$(.ci/postgres.sh start)"   # -> export INFOMIN_TEST_POSTGRES_URL=postgresql://...
#   .ci/postgres.sh stop
#   .ci/postgres.sh halt; sleep 60; .ci/postgres.sh resume   # an outage: the server stops, data stay
#
# Installs Debian's postgresql package when no initdb is found (about 25 s on a bare Debian),
# initialises a cluster in a temporary folder as the postgres user (initdb refuses root),
# listening on 127.0.0.1 only on a free port, with scram-sha-256 and a random password.
# INFOMIN_PG_STATE names the state file (default /tmp/infomin-ci-postgres.<uid>.state), so a
# test fixture can run its own cluster next to CI's.
set -euo pipefail

STATE="${INFOMIN_PG_STATE:-${TMPDIR:-/tmp}/infomin-ci-postgres.$(id -u).state}"
DB="${INFOMIN_PG_DB:-infomin_test}"
log() { echo "postgres.sh: $*" >&2; }

find_bin() {
  local initdb
  initdb="$(command -v initdb 2>/dev/null || true)"
  if [ -z "$initdb" ]; then
    initdb="$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)"
  fi
  [ -n "$initdb" ] && dirname "$(readlink -f "$initdb")"
}

as_owner() {  # run a command as the cluster owner (postgres when we are root)
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

serve() {  # start the server of cluster $2 on 127.0.0.1:$3 (also after `halt`)
  as_owner "$1/pg_ctl" -D "$2/data" -l "$2/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $3 -k $2 -c max_connections=200 -c fsync=off" start >&2 \
    || { cat "$2/server.log" >&2; exit 1; }
}

start() {
  if [ -f "$STATE" ]; then
    log "a cluster from $STATE is still registered; stopping it first"
    stop
  fi
  local bin
  bin="$(find_bin || true)"
  if [ -z "$bin" ]; then
    [ "$(id -u)" = 0 ] || { log "initdb not found and not root: install postgresql"; exit 1; }
    log "installing postgresql from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    bin="$(find_bin)"
  fi
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/sh postgres
  fi
  local dir port pw
  dir="$(mktemp -d "${TMPDIR:-/tmp}/infomin-pg.XXXXXX")"
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  pw="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  printf '%s\n' "$pw" > "$dir/pwfile"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
  chmod 700 "$dir"
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" -E UTF8 --no-locale \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  rm -f "$dir/pwfile"
  serve "$bin" "$dir" "$port"
  PGPASSWORD="$pw" "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "$DB"
  printf 'DIR=%q\nBIN=%q\nPORT=%q\n' "$dir" "$bin" "$port" > "$STATE"
  log "cluster in $dir on 127.0.0.1:$port (database $DB)"
  echo "export INFOMIN_TEST_POSTGRES_URL=postgresql://postgres:$pw@127.0.0.1:$port/$DB"
}

stop() {
  [ -f "$STATE" ] || { log "no cluster registered in $STATE"; return 0; }
  # shellcheck disable=SC1090
  . "$STATE"
  if [ -d "$DIR/data" ]; then
    as_owner "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >&2 || true
  fi
  rm -rf "$DIR" "$STATE"
  log "stopped and removed $DIR"
}

halt() {  # stop the server as a crash would (-m immediate), keeping the cluster and its port
  [ -f "$STATE" ] || { log "no cluster registered in $STATE"; exit 1; }
  # shellcheck disable=SC1090
  . "$STATE"
  as_owner "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >&2
}

resume() {
  [ -f "$STATE" ] || { log "no cluster registered in $STATE"; exit 1; }
  # shellcheck disable=SC1090
  . "$STATE"
  serve "$BIN" "$DIR" "$PORT"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  halt) halt ;;
  resume) resume ;;
  *) echo "usage: $0 start|stop|halt|resume" >&2; exit 2 ;;
esac
