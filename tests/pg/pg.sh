#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: `pg.sh start STATE` starts one on a free loopback
# port in a new temporary directory and writes "DIR PORT" to the file STATE; `pg.sh stop STATE`
# stops it and removes the directory; `pg.sh restart STATE` stops it hard and starts it again;
# `pg.sh pause|resume STATE` freezes and thaws it.
# fsync is off (the tests kill servers, never the machine); commits still reach the OS first.
# PG_FSYNC=on keeps it on (the benchmarks, which compare with SQLite's durable commits).
# PostgreSQL refuses to run as root, so as root every server command runs as the `postgres`
# user (runuser).
set -euo pipefail
cmd=${1:?start|stop}
state=${2:?state file}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "pg.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "$cmd" in
  start)
    mkdir -p "$(dirname "$state")"
    dir=$(mktemp -d /tmp/sluice-pg-XXXXXX)
    chmod 0755 "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 --locale=C.UTF-8 \
      > "$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    for attempt in 1 2 3 4 5; do
      port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
      if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
          -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=${PG_FSYNC:-off} -c full_page_writes=${PG_FSYNC:-off} -c max_connections=400 -c shared_buffers=32MB" \
          start > /dev/null; then
        echo "$dir $port" > "$state"
        exit 0
      fi
    done
    cat "$dir/server.log" >&2
    exit 1
    ;;
  stop)
    [ -f "$state" ] || exit 0
    read -r dir port < "$state"
    as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop > /dev/null 2>&1 || true
    rm -rf "$dir" "$state"
    ;;
  restart)
    # The same server stopped hard and started again on its port (the clients must reconnect).
    read -r dir port < "$state"
    as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop > /dev/null
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=${PG_FSYNC:-off} -c full_page_writes=${PG_FSYNC:-off} -c max_connections=400 -c shared_buffers=32MB" \
      start > /dev/null
    ;;
  pause|resume)
    # SIGSTOP / SIGCONT the server and its backends: a server that accepts and never answers.
    read -r dir port < "$state"
    pid=$(head -1 "$dir/data/postmaster.pid")
    sig=STOP; [ "$cmd" = resume ] && sig=CONT
    kill -$sig "$pid" $(pgrep -P "$pid")
    ;;
  *) echo "usage: pg.sh start|stop|restart|pause|resume STATE" >&2; exit 2 ;;
esac
