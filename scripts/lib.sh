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
    cargo build --profile component --target wasm32-wasip2 -p crud -p testbed -p alma -p alma-webhook -p alma-refresh -p advising -p events -p projection -p hostile -p notes
    build_python_components
    build_js_components
}

# componentize-py builds Python components against wit/corral.wit.
COMPONENTIZE_PY_VERSION=0.25.1
ensure_componentize_py() {
    if [ "$(componentize-py --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY_VERSION" ]; then
        echo "installing componentize-py $COMPONENTIZE_PY_VERSION from PyPI" >&2
        python3 -m pip install -q "componentize-py==$COMPONENTIZE_PY_VERSION" || {
            echo "cannot install componentize-py: the Python components need it" >&2
            return 1
        }
        hash -r
    fi
}

# Builds each Python component (components/*-py/app.py, with the Python SDK)
# into target/wasm32-wasip2/component/<name>_py.wasm; one whose sources and
# WIT are older than its .wasm is kept. The world is `service` with
# wasi:http named, for the SDK's HTTP client.
build_python_components() {
    local out=${CARGO_TARGET_DIR:-target}/wasm32-wasip2/component
    mkdir -p "$out"
    for dir in components/*-py; do
        [ -f "$dir/app.py" ] || continue
        local name wasm
        name=$(basename "$dir" -py)
        wasm="$out/${name}_py.wasm"
        if [ -f "$wasm" ] && [ -z "$(find "$dir" components/sdk-python wit -newer "$wasm" -type f -print -quit)" ]; then
            continue
        fi
        ensure_componentize_py
        echo "building the Python component $name" >&2
        componentize-py -d wit -w service-with-http componentize -p "$dir" -p components/sdk-python app -o "$wasm.tmp" >/dev/null
        mv "$wasm.tmp" "$wasm"
    done
}

# componentize-js (with rolldown to bundle a component and the JS SDK into
# one module) builds JavaScript components; installed from npm into the
# target folder.
JS_TOOLS="@bytecodealliance/componentize-js@0.23.0 @bytecodealliance/jco@1.35.0 rolldown@1.3.3"
ensure_js_tools() {
    local tools=${CARGO_TARGET_DIR:-target}/js-tools
    if [ "$(cat "$tools/.installed" 2>/dev/null)" != "$JS_TOOLS" ]; then
        command -v npm >/dev/null || { echo "npm is missing: the JavaScript components need Node.js (Debian: nodejs npm)" >&2; return 1; }
        echo "installing $JS_TOOLS from npm" >&2
        mkdir -p "$tools"
        # shellcheck disable=SC2086
        npm install --silent --no-audit --no-fund --prefix "$tools" $JS_TOOLS || {
            echo "cannot install the JavaScript toolchain from npm" >&2
            return 1
        }
        echo "$JS_TOOLS" >"$tools/.installed"
    fi
}

# Builds each JavaScript component (components/*-js/app.js, bundled with the
# JS SDK) into target/wasm32-wasip2/component/<name>_js.wasm; one whose
# sources and WIT are older than its .wasm is kept.
build_js_components() {
    local target=${CARGO_TARGET_DIR:-target}
    local out=$target/wasm32-wasip2/component bin=$target/js-tools/node_modules/.bin
    mkdir -p "$out"
    for dir in components/*-js; do
        [ -f "$dir/app.js" ] || continue
        local name wasm
        name=$(basename "$dir" -js)
        wasm="$out/${name}_js.wasm"
        if [ -f "$wasm" ] && [ -z "$(find "$dir" components/sdk-js wit -newer "$wasm" -type f -print -quit)" ]; then
            continue
        fi
        ensure_js_tools
        echo "building the JavaScript component $name" >&2
        CORRAL_JS_ENTRY="$dir/app.js" CORRAL_JS_BUNDLE="$out/${name}_js.bundle.js" \
            "$bin/rolldown" -c components/sdk-js/rolldown.config.mjs >/dev/null
        "$bin/componentize-js" --wit wit --world-name service-with-http --out "$wasm.tmp" "$out/${name}_js.bundle.js" >/dev/null
        mv "$wasm.tmp" "$wasm"
    done
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

# Makes Python module MODULE importable, installing PACKAGE from PyPI when
# it is missing: into this Python, or (where pip may not install there,
# PEP 668) into a private folder put on PYTHONPATH.
ensure_python_module() { # MODULE PACKAGE
    local module=$1 package=$2 private="${XDG_CACHE_HOME:-$HOME/.cache}/corral/python"
    python3 -c "import $module" 2>/dev/null && return 0
    if [ -d "$private" ]; then
        export PYTHONPATH="$private${PYTHONPATH:+:$PYTHONPATH}"
        python3 -c "import $module" 2>/dev/null && return 0
    fi
    echo "installing $package from PyPI" >&2
    python3 -m pip install -q "$package" 2>/dev/null || python3 -m pip install -q --target "$private" "$package" || {
        echo "cannot install $package" >&2
        return 1
    }
    export PYTHONPATH="$private${PYTHONPATH:+:$PYTHONPATH}"
    python3 -c "import $module" || { echo "$package installed, but $module does not import" >&2; return 1; }
}
