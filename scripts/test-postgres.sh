#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests (ctest runs it as the `postgres` fixture):
#   scripts/test-postgres.sh start DIR   # initdb into DIR/data, serve on 127.0.0.1:<free port>,
#                                        # write postgresql://postgres@127.0.0.1:PORT/postgres
#                                        # into DIR/uri
#   scripts/test-postgres.sh stop DIR    # stop it and remove DIR
# Trust authentication and no durability (fsync, full_page_writes and synchronous_commit off):
# a test cluster only, never for data anyone keeps. `start` first stops a server left in DIR.
# As root, the server runs as the `postgres` user (initdb refuses root).
set -euo pipefail

usage() {
  echo "usage: $0 {start|stop} DIR" >&2
  exit 2
}
[[ $# -eq 2 ]] || usage
cmd=$1
dir=$(realpath -m "$2")

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [[ -z "$bindir" || ! -x "$bindir/initdb" ]]; then
  echo "no PostgreSQL server found under /usr/lib/postgresql/*/bin; run scripts/install-deps.sh" >&2
  exit 1
fi

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

stop() {
  if [[ -f "$dir/data/postmaster.pid" ]]; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" stop -m fast -w -t 30 >/dev/null || true
  fi
  rm -rf "$dir"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
  stop
  mkdir -p "$dir"
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$dir"
    if ! runuser -u postgres -- test -w "$dir"; then
      echo "the postgres user cannot reach $dir (a parent folder is private); use a build folder" \
        "that other users can traverse" >&2
      exit 1
    fi
  fi
  as_owner "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  # The port is free when chosen but may be taken before the server binds it: try a few.
  local port
  for attempt in 1 2 3; do
    port=$(free_port)
    if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start -o \
      "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off -c synchronous_commit=off" \
      >/dev/null; then
      break
    fi
    if [[ $attempt -eq 3 ]]; then
      cat "$dir/server.log" >&2
      exit 1
    fi
  done
  "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -t 30
  echo "postgresql://postgres@127.0.0.1:$port/postgres" >"$dir/uri"
  version=${bindir#/usr/lib/postgresql/}
  echo "PostgreSQL ${version%/bin} serving $(cat "$dir/uri")"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
