# Sourced by scripts/serve and scripts/test: installs the system packages the build needs on a
# fresh Debian machine that has only the Rust toolchain. Installs nothing that is already there.

ensure_build_deps() {   # --test: also the servers the test suite starts
    local missing=()
    command -v cmake >/dev/null 2>&1 || missing+=(cmake)     # pingora-core → libz-ng-sys
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    command -v cc >/dev/null 2>&1 || missing+=(gcc)
    command -v make >/dev/null 2>&1 || missing+=(make)       # rdkafka-sys builds librdkafka from source
    pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)   # pingora's TLS listener (mTLS)
    if [ "${1:-}" = "--test" ]; then
        command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
        ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
        command -v mariadbd >/dev/null 2>&1 || missing+=(mariadb-server)
        # promtool and a real Prometheus server for tests/e2e/observability.rs.
        [ -x /usr/bin/prometheus ] && command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
        # The bench smoke test (tests/e2e/bench_smoke.rs) runs `switchyard bench --quick`.
        command -v wrk >/dev/null 2>&1 || missing+=(wrk)
        command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
        # The console's browser test: Debian's Chromium, driven by playwright-core from npm.
        command -v chromium >/dev/null 2>&1 || missing+=(chromium)
        command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
    fi
    if [ "${1:-}" = "--test" ] && ! command -v rvault >/dev/null 2>&1; then
        # The Vault-API server comes from crates.io; built once (15-20 min on 2 cores), then reused.
        echo "installing rusty_vault (rvault) once; this takes a while" >&2
        cargo install --locked rusty_vault
    fi
    if [ "${1:-}" = "--test" ] && ! command -v s3s-fs >/dev/null 2>&1; then
        # The S3-compatible server for storage/s3 (crates.io); 0.15+ need a newer rustc.
        echo "installing s3s-fs once" >&2
        cargo install --locked s3s-fs --version 0.14.1 --features binary
    fi
    if [ "${1:-}" = "--test" ] && ! command -v tansu >/dev/null 2>&1; then
        # The Kafka-protocol broker for bus/kafka (crates.io); built once (~15 min on 2 cores),
        # then reused. Its default build refuses every storage engine: dynostore has memory://.
        echo "installing tansu (Kafka-protocol broker) once; this takes a while" >&2
        cargo install --locked tansu --version 0.6.0 --features dynostore
    fi
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing build dependencies: ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_bench_deps() {   # scripts/bench: the load generator, bare nginx, PostgreSQL with pgbench, LiteLLM
    local missing=()
    command -v wrk >/dev/null 2>&1 || missing+=(wrk)
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
    ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)   # with pgbench
    python3 -m venv --help >/dev/null 2>&1 || missing+=(python3 python3-venv)        # LiteLLM's venv
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing bench dependencies: ${missing[*]}" >&2
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    # LiteLLM's proxy beside Switchyard's AI gateway (the ai scenario, issue 22): PyPI, pinned,
    # in a venv under target/ made once and reused while it holds that version.
    local litellm_venv=target/tools/litellm-venv
    if ! "$litellm_venv/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("litellm") != "1.108.7")' 2>/dev/null \
        || [ ! -x "$litellm_venv/bin/litellm" ]; then
        echo "installing LiteLLM's proxy (litellm[proxy]==1.108.7) into $litellm_venv" >&2
        python3 -m venv "$litellm_venv"
        "$litellm_venv/bin/pip" install -q --disable-pip-version-check 'litellm[proxy]==1.108.7'
    fi
}
