# Shared by the scripts in this folder: the toolchain pieces corral needs.

# The guests build for wasm32-wasip2; a fresh toolchain does not have it.
ensure_wasm_target() {
    if ! rustup target list --installed | grep -qx wasm32-wasip2; then
        echo "installing the wasm32-wasip2 target" >&2
        rustup target add wasm32-wasip2
    fi
}

# Builds every component in components/ into target/wasm32-wasip2/component/.
build_components() {
    ensure_wasm_target
    cargo build --profile component --target wasm32-wasip2 -p crud -p testbed -p alma -p alma-webhook -p alma-refresh -p advising -p events -p projection -p hostile
}

# The Lambda tests and the cold-start benchmark run cargo-lambda's Lambda
# runtime API emulator; its PyPI wheel carries the prebuilt binary.
ensure_cargo_lambda() {
    if ! command -v cargo-lambda >/dev/null 2>&1; then
        echo "installing cargo-lambda from PyPI" >&2
        python3 -m pip install -q --no-deps cargo-lambda || {
            echo "cannot install cargo-lambda: the Lambda tests need it" >&2
            return 1
        }
        hash -r
    fi
    command -v cargo-lambda >/dev/null 2>&1 || {
        echo "cargo-lambda is not on PATH after installing it" >&2
        return 1
    }
}
