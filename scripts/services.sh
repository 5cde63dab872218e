# Starts the services the AWS-side tests need, on free loopback ports, and
# stops them when the calling script exits: a throwaway PostgreSQL cluster
# and a moto server (the AWS API emulator). Each installs what it needs
# first. Failing to start is an error, never a skipped test.
#
# Exports CORRAL_TEST_PG_URL (superuser URL of the cluster) and
# CORRAL_TEST_MOTO_URL.

SERVICES_DIR=$(mktemp -d /tmp/corral-services.XXXXXX)
chmod 755 "$SERVICES_DIR"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

die() {
    echo "error: $*" >&2
    exit 1
}

pg_bin_dir() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

start_postgres() {
    local bin
    bin=$(pg_bin_dir)
    if [ -z "$bin" ]; then
        echo "installing PostgreSQL (Debian package postgresql)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null \
            || die "cannot install PostgreSQL: the AWS-side tests need it"
        bin=$(pg_bin_dir)
    fi
    [ -n "$bin" ] || die "PostgreSQL binaries not found after installing"
    local port data="$SERVICES_DIR/pg"
    port=$(free_port)
    mkdir -p "$data"
    local as=()
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$data"
        as=(runuser -u postgres --)
    fi
    # Password logins over TCP, as on RDS: the tests rely on a wrong password being refused.
    echo postgres >"$data/pwfile"
    "${as[@]}" "$bin/initdb" -D "$data/cluster" -U postgres --pwfile="$data/pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 >"$SERVICES_DIR/initdb.log" 2>&1 \
        || die "initdb failed: $(tail -n 5 "$SERVICES_DIR/initdb.log")"
    "${as[@]}" "$bin/pg_ctl" -D "$data/cluster" -l "$data/server.log" -w -t 30 \
        -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null \
        || die "PostgreSQL did not start: $(tail -n 5 "$data/server.log" 2>/dev/null)"
    PG_CTL=("${as[@]}" "$bin/pg_ctl" -D "$data/cluster" -l "$data/server.log" -w -t 30)
    PG_STOP=("${PG_CTL[@]}" -m fast stop)
    export CORRAL_TEST_PG_URL="postgres://postgres:postgres@127.0.0.1:$port/postgres"
    echo "PostgreSQL on 127.0.0.1:$port" >&2
}

# Stops PostgreSQL at once (connections dropped, as in a failover) and
# starts it again with the same settings.
restart_postgres() {
    "${PG_CTL[@]}" -m fast restart >/dev/null || die "PostgreSQL did not restart: $(tail -n 5 "$SERVICES_DIR/pg/server.log")"
}

start_moto() {
    if ! command -v moto_server >/dev/null 2>&1; then
        echo "installing moto[server] from PyPI" >&2
        python3 -m pip install -q 'moto[server]' || die "cannot install moto: the AWS-side tests need it"
        hash -r
    fi
    command -v moto_server >/dev/null 2>&1 || die "moto_server is not on PATH after installing"
    local port
    port=$(free_port)
    # moto_server.py: moto with DynamoDB's conditional writes atomic, as they are on AWS.
    python3 "$(dirname "${BASH_SOURCE[0]}")/moto_server.py" -H 127.0.0.1 -p "$port" >"$SERVICES_DIR/moto.log" 2>&1 &
    MOTO_PID=$!
    local url="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do
        if python3 -c "import urllib.request; urllib.request.urlopen('$url/moto-api/')" 2>/dev/null; then
            export CORRAL_TEST_MOTO_URL="$url"
            echo "moto on $url" >&2
            return 0
        fi
        kill -0 "$MOTO_PID" 2>/dev/null || break
        sleep 0.2
    done
    die "moto did not start: $(tail -n 5 "$SERVICES_DIR/moto.log")"
}

stop_services() {
    [ -n "${MOTO_PID:-}" ] && kill "$MOTO_PID" 2>/dev/null && wait "$MOTO_PID" 2>/dev/null
    [ -n "${PG_STOP:-}" ] && "${PG_STOP[@]}" >/dev/null 2>&1
    rm -rf "$SERVICES_DIR"
}

trap stop_services EXIT
