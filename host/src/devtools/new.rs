//! `corral new <rust|python|js> NAME`: a records resource that builds and
//! serves on the first try, in the project in the current folder: its
//! source under `components/NAME`, its manifest entry appended to
//! `corral.toml` (created when missing), and an end-to-end test,
//! `tests/NAME.sh`, that builds it, serves it and checks its answers.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use super::build::{Language, home};

/// What to scaffold.
#[derive(Debug, Clone)]
pub(crate) struct NewComponent {
    /// Its language.
    pub language: Language,
    /// Its manifest name, and its folder under `components/`.
    pub name: String,
    /// Where its routes are served (default `/NAME`).
    pub mount: Option<String>,
    /// The table of its records (default NAME, with `_` for `-`).
    pub table: Option<String>,
}

/// Writes the component into `project`; returns the files written.
pub(crate) fn scaffold(project: &Path, new: &NewComponent) -> anyhow::Result<Vec<PathBuf>> {
    let name = new.name.as_str();
    let plain = |e: crate::core::manifest::ManifestError| anyhow::anyhow!("{}", e.to_string().trim_start_matches("manifest: "));
    crate::core::manifest::check_name(name, "component").map_err(plain)?;
    let table = new.table.clone().unwrap_or_else(|| name.replace('-', "_"));
    crate::core::manifest::check_name(&table, "table").map_err(plain)?;
    let mount = new.mount.clone().unwrap_or_else(|| format!("/{name}"));
    if !mount.starts_with('/') || mount.len() < 2 || mount.ends_with('/') || mount.contains("//") || mount.contains('{') {
        bail!("mount \"{mount}\" must be a path like /notes: a leading slash, no trailing one, no parameters");
    }
    let dir = project.join("components").join(name);
    if dir.exists() {
        bail!("{} already exists: choose another name, or remove it first", dir.display());
    }
    let manifest_path = project.join("corral.toml");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap_or_default();
    if manifest.lines().any(|l| l.trim() == format!("[components.{name}]")) {
        bail!("{} already has a component \"{name}\"", manifest_path.display());
    }
    let test = project.join("tests").join(format!("{name}.sh"));
    if test.exists() {
        bail!("{} already exists", test.display());
    }

    let sdk = home().join("components");
    let mut written = Vec::new();
    let mut write = |path: PathBuf, text: String| -> anyhow::Result<()> {
        std::fs::create_dir_all(path.parent().expect("a file in a folder"))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    match new.language {
        Language::Rust => {
            let crate_name = name.replace('-', "_");
            write(
                dir.join("Cargo.toml"),
                RUST_CARGO
                    .replace("{crate}", &crate_name)
                    .replace("{sdk}", &sdk.join("sdk").display().to_string()),
            )?;
            write(dir.join("src/lib.rs"), RUST_LIB.replace("{name}", name))?;
        }
        Language::Python => write(dir.join("app.py"), PYTHON_APP.replace("{name}", name))?,
        Language::JavaScript => write(
            dir.join("app.js"),
            JS_APP
                .replace("{name}", name)
                .replace("{sdk}", &sdk.join("sdk-js/index.js").display().to_string()),
        )?,
    }
    let entry = MANIFEST_ENTRY
        .replace("{name}", name)
        .replace("{mount}", &mount)
        .replace("{table}", &table);
    let header = if manifest.is_empty() { MANIFEST_HEADER } else { "" };
    write(manifest_path, format!("{header}{manifest}{entry}"))?;
    write(test.clone(), TEST.replace("{name}", name).replace("{mount}", &mount))?;
    make_executable(&test)?;
    Ok(written)
}

fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut permissions = std::fs::metadata(path)?.permissions();
    permissions.set_mode(0o755);
    std::fs::set_permissions(path, permissions)?;
    Ok(())
}

const MANIFEST_HEADER: &str = "# The components this project serves: `corral serve`. Reference: corral's README.md, \"The manifest\".\n";

const MANIFEST_ENTRY: &str = r#"
[components.{name}]
wasm = "build/{name}.wasm"      # written by `corral build {name}`
source = "components/{name}"
mount = "{mount}"
tables = ["{table}"]

[components.{name}.config]
table = "{table}"

[[components.{name}.routes]]
path = "/"
methods = ["GET"]
auth = "public"

[[components.{name}.routes]]
path = "/"
methods = ["POST"]
auth = "caller"

[[components.{name}.routes]]
path = "/{id}"
methods = ["GET"]
auth = "public"

[[components.{name}.routes]]
path = "/{id}"
methods = ["PATCH", "DELETE"]
auth = "caller"
"#;

const RUST_CARGO: &str = r#"[package]
name = "{crate}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
corral-sdk = { path = "{sdk}" }

[profile.release]
opt-level = "s"
lto = true
strip = true
panic = "abort"

# A crate of its own, even inside another workspace.
[workspace]
"#;

const RUST_LIB: &str = r#"//! The {name} resource: records with a required `name` and an optional
//! `description`, in the table named by config key `table`.

use corral_sdk::bindings::corral::host::config;
use corral_sdk::prelude::*;

struct Api;

impl Service for Api {
    fn routes() -> Router {
        Router::new()
            .get("/", |ctx| records()?.list(ctx))
            .post("/", |ctx| records()?.create(ctx))
            .get("/{id}", |ctx| records()?.retrieve(ctx, &ctx.param::<String>("id")?))
            .patch("/{id}", |ctx| records()?.update(ctx, &ctx.param::<String>("id")?))
            .delete("/{id}", |ctx| records()?.delete(ctx, &ctx.param::<String>("id")?))
    }
}

fn records() -> Result<Records, ApiError> {
    let table = config::get("table")?.ok_or_else(|| ApiError::internal("config key 'table' is not set"))?;
    Ok(Records::new(table).required(&["name"]).optional(&["description"]))
}

corral_sdk::service!(Api);
"#;

const PYTHON_APP: &str = r#""""The {name} resource: records with a required `name` and an optional
`description`, in the table named by config key `table`."""

from corral_sdk import ApiError, Records, Router, Service, config


def records() -> Records:
    table = config.get("table")
    if not table:
        raise ApiError.internal("config key 'table' is not set")
    return Records(table, required=["name"], optional=["description"])


class Api(Service):
    def routes(self):
        return (
            Router()
            .get("/", lambda ctx: records().list(ctx))
            .post("/", lambda ctx: records().create(ctx))
            .get("/{id}", lambda ctx: records().retrieve(ctx, ctx.param("id")))
            .patch("/{id}", lambda ctx: records().update(ctx, ctx.param("id")))
            .delete("/{id}", lambda ctx: records().delete(ctx, ctx.param("id")))
        )


Handler = Api.handler()
"#;

const JS_APP: &str = r#"// The {name} resource: records with a required `name` and an optional
// `description`, in the table named by config key `table`.

import { ApiError, Records, Router, config, service } from '{sdk}';

function records() {
  const table = config.get('table');
  if (!table) throw ApiError.internal("config key 'table' is not set");
  return new Records(table, { required: ['name'], optional: ['description'] });
}

export const handler = service({
  routes: () =>
    new Router()
      .get('/', (ctx) => records().list(ctx))
      .post('/', (ctx) => records().create(ctx))
      .get('/{id}', (ctx) => records().retrieve(ctx, ctx.param('id')))
      .patch('/{id}', (ctx) => records().update(ctx, ctx.param('id')))
      .delete('/{id}', (ctx) => records().delete(ctx, ctx.param('id'))),
});
"#;

const TEST: &str = r#"#!/usr/bin/env bash
# End to end: builds the project, serves its manifest on a free port
# with a throwaway data folder, and checks create, read, list and delete.
# CORRAL names the corral binary (default: corral on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
corral=${CORRAL:-corral}
"$corral" build
data=$(mktemp -d)
"$corral" serve --listen 127.0.0.1:0 --data-dir "$data" >"$data/out" 2>"$data/err" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$data"' EXIT
url=
# A first start compiles every component (a Python or JavaScript one for a while).
for _ in $(seq 1 1800); do
    url=$(sed -n 's/^corral listening on //p' "$data/out")
    [ -n "$url" ] && break
    kill -0 $pid 2>/dev/null || { cat "$data/err" >&2; exit 1; }
    sleep 0.1
done
[ -n "$url" ] || { echo "corral serve did not start" >&2; exit 1; }
fail() { echo "{name}: $*" >&2; exit 1; }
token=$("$corral" token --sub e2e --data-dir "$data")
auth="authorization: Bearer $token"

status=$(curl -s -o "$data/body" -w '%{http_code}' -X POST "$url{mount}" -H "$auth" -H 'content-type: application/json' -d '{"name": "first"}')
[ "$status" = 201 ] || fail "POST {mount} answered $status: $(cat "$data/body")"
id=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["uid"])' "$data/body")
status=$(curl -s -o "$data/body" -w '%{http_code}' -X POST "$url{mount}" -H "$auth" -H 'content-type: application/json' -d '{}')
[ "$status" = 400 ] || fail "POST {mount} without a name answered $status"
status=$(curl -s -o "$data/body" -w '%{http_code}' -X POST "$url{mount}" -H 'content-type: application/json' -d '{"name": "anonymous"}')
[ "$status" = 401 ] || fail "POST {mount} without a token answered $status"
curl -fsS "$url{mount}/$id" | grep -q '"first"' || fail "GET {mount}/$id did not return the record"
curl -fsS "$url{mount}" | grep -q "$id" || fail "GET {mount} did not list the record"
status=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$url{mount}/$id" -H "$auth")
[ "$status" = 204 ] || fail "DELETE {mount}/$id answered $status"
status=$(curl -s -o /dev/null -w '%{http_code}' "$url{mount}/$id")
[ "$status" = 404 ] || fail "GET {mount}/$id after the delete answered $status"
echo "{name}: ok"
"#;
