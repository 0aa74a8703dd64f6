#!/bin/sh
# First start: make the cluster in $PGDATA with the superuser $POSTGRES_USER, its password read
# from $POSTGRES_PASSWORD_FILE (never from the environment) and the database $POSTGRES_DB; every
# start: run the server in the foreground as PID 1's child (exec), listening on every address
# of the container, password (scram-sha-256) required from everywhere.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
user=${POSTGRES_USER:-postgres}
database=${POSTGRES_DB:-$user}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ ! -r "${POSTGRES_PASSWORD_FILE:-}" ]; then
        echo "postgres-entrypoint: error: POSTGRES_PASSWORD_FILE must name a readable file" >&2
        exit 1
    fi
    initdb -D "$PGDATA" --username="$user" --pwfile="$POSTGRES_PASSWORD_FILE" \
        --auth=scram-sha-256 --encoding=UTF8 --no-instructions >/dev/null
    printf "host all all all scram-sha-256\n" >>"$PGDATA/pg_hba.conf"
    if [ "$database" != postgres ]; then
        # Single-user mode: no listener and no password yet, nothing can reach it meanwhile.
        echo "CREATE DATABASE \"$database\" OWNER \"$user\"" |
            postgres --single -D "$PGDATA" -c listen_addresses='' postgres >/dev/null
    fi
    echo "postgres-entrypoint: created the cluster (user $user, database $database)" >&2
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
