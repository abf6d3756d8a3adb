#!/bin/sh
# Initialise the cluster on first start (empty volume), then run PostgreSQL in the foreground.
# POSTGRES_PASSWORD (Secret mlops-lab-secrets, key postgres-password) is the password of the role
# POSTGRES_USER; POSTGRES_DATABASES lists the databases to create (space-separated).
set -eu
: "${POSTGRES_PASSWORD:?set it from Secret mlops-lab-secrets, key postgres-password}"
user="${POSTGRES_USER:-mlops}"
# The socket lives in /tmp (an emptyDir): /var/run/postgresql is on the read-only root.
sockets="${PGHOST:-/tmp}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "initialising $PGDATA"
    pwfile="$(mktemp)"
    printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb --pgdata="$PGDATA" --username="$user" --pwfile="$pwfile" --encoding=UTF8 \
        --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256
    rm -f "$pwfile"
    # Other pods connect over the pod network; only password logins are accepted from it.
    echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
    echo "host all all ::/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
    pg_ctl --pgdata="$PGDATA" --wait \
        --options="-c listen_addresses='' -c unix_socket_directories=$sockets" start
    for database in ${POSTGRES_DATABASES:-}; do
        createdb --host="$sockets" --username="$user" "$database"
        echo "created database $database"
    done
    pg_ctl --pgdata="$PGDATA" --wait stop
fi

# PostgreSQL refuses a data directory that its group may write, and the kubelet makes it so: it
# applies the pod's fsGroup (group rwx, setgid) to the volume each time a new pod mounts it.
chmod 0700 "$PGDATA"
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories="$sockets"
