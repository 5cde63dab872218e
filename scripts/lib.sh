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
    cargo build --profile component --target wasm32-wasip2 -p crud -p testbed
}
