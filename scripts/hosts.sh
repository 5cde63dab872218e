# Many `corral serve` hosts on one backend set, for scripts/bench-hosts and
# scripts/bench-reliability. Source after lib.sh and services.sh, with
# PostgreSQL and moto started, and set:
#   bin   the corral binary;
#   work  a scratch folder, removed by the caller;
#   AWS_ENDPOINT_URL  where the hosts reach DynamoDB and SQS.
# Fills `urls`, `host_pids` and `pids` (every process to kill on exit).

urls=() host_pids=() pids=()

ensure_deb_tool() { # COMMAND [PACKAGE]
    command -v "$1" >/dev/null || {
        echo "installing ${2:-$1} (Debian package)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${2:-$1}" >/dev/null
    }
}

# Writes the hosts' backends file: PostgreSQL, DynamoDB and SQS with table
# and queue names under `bench-`, and one dev signing key ($key).
write_backends() {
    key=$(openssl rand -hex 32)
    cat >"$work/backends.toml" <<TOML
[backends.db]
kind = "postgres"
url = "$CORRAL_TEST_PG_URL"

[backends.cache]
kind = "dynamodb"
prefix = "bench-"
create_missing = true

[backends.queue]
kind = "sqs"
prefix = "bench-"
create_missing = true

[backends.auth]
kind = "dev"
signing_key = "$key"
TOML
    export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
        AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
}

# Starts host N (again, after a kill: same data directory) on BACKENDS
# (default: write_backends's file) and waits for its "listening on URL"
# line; urls[N-1] and host_pids[N-1] are its own.
start_host() { # N [BACKENDS]
    local n=$1 backends=${2:-$work/backends.toml} log="$work/host$1"
    "$bin" serve --manifest corral.toml --backends "$backends" --data-dir "$work/data$n" \
        --artifact-dir "${CARGO_TARGET_DIR:-target}/bench-hosts/artifacts" --listen 127.0.0.1:0 \
        >"$log.out" 2>>"$log.err" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 1 1200); do
        local url
        url=$(grep -o 'listening on http://[0-9.:]*' "$log.out" | head -n1 | sed 's/listening on //') || true
        if [ -n "$url" ]; then
            urls[n - 1]=$url
            host_pids[n - 1]=$pid
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { echo "error: host $n exited: $(tail -n 5 "$log.err")" >&2; exit 1; }
        sleep 0.1
    done
    echo "error: host $n did not start listening" >&2
    exit 1
}

# The first host compiles every component into the shared artifact folder;
# the others load them from it.
start_hosts() { # COUNT
    for n in $(seq 1 "$1"); do start_host "$n"; done
}

rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# The Lua lines that make wrk print one parseable RESULT line at the end.
WRK_RESULT='
local function result(summary, latency)
    local e = summary.errors
    io.write(string.format("RESULT requests=%d seconds=%.2f socket_errors=%d status_errors=%d p50=%d p99=%d p999=%d\n",
        summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.timeout, e.status,
        latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
'
