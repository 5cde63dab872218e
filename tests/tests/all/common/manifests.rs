//! The manifests tests serve, kept as files in `tests/manifests/` and read
//! by name. In them `{WASM}` in front of a component file name stands for
//! the folder of the built components, and any other upper-case `{KEY}`
//! for a value the test fills in (a port, a URL, a line of config).

use super::paths::{wasm, wasm_dir, workspace_root};

/// What a manifest writes in front of a component file name; it becomes the
/// absolute path of the built components.
pub const WASM_PLACEHOLDER: &str = "{WASM}";

/// The manifest `tests/manifests/NAME.toml`.
pub fn manifest(name: &str) -> String {
    manifest_with(name, &[])
}

/// The manifest `tests/manifests/NAME.toml` with each `{KEY}` of `values`
/// filled in. Panics when the file lacks one of them or keeps one unfilled,
/// so that a test and its file cannot drift apart unnoticed.
pub fn manifest_with(name: &str, values: &[(&str, &str)]) -> String {
    let path = workspace_root()
        .join("tests/manifests")
        .join(format!("{name}.toml"));
    let mut text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    for (key, value) in values {
        let placeholder = format!("{{{key}}}");
        assert!(
            text.contains(&placeholder),
            "{} has no {placeholder}",
            path.display()
        );
        text = text.replace(&placeholder, value);
    }
    if let Some(key) = placeholders(&text).find(|key| *key != "WASM") {
        panic!("{} needs a value for {{{key}}}", path.display());
    }
    text
}

/// The upper-case `{KEY}` placeholders in `text`; route parameters such as
/// `{id}` are lower case.
fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split('{').skip(1).filter_map(|rest| {
        let key = rest.split_once('}')?.0;
        let upper = !key.is_empty() && key.chars().all(|c| c.is_ascii_uppercase() || c == '_');
        upper.then_some(key)
    })
}

/// `manifest_toml` with [`WASM_PLACEHOLDER`] replaced by the folder of the
/// built components; panics when a component it names is not built.
pub fn resolve_wasm(manifest_toml: &str) -> String {
    for name in component_names(manifest_toml) {
        wasm(&name);
    }
    manifest_toml.replace(WASM_PLACEHOLDER, &wasm_dir().display().to_string())
}

/// The component names a manifest uses through [`WASM_PLACEHOLDER`].
fn component_names(manifest: &str) -> Vec<String> {
    let prefix = format!("{WASM_PLACEHOLDER}/");
    manifest
        .match_indices(&prefix)
        .filter_map(|(i, _)| {
            let rest = &manifest[i + prefix.len()..];
            rest.split_once(".wasm").map(|(name, _)| name.to_owned())
        })
        .collect()
}

/// The example manifest (`corral.toml`) as a test host serves it: the
/// components from the build, the schema files from the checkout.
pub fn example_manifest() -> toml::Table {
    let root = workspace_root();
    let text = std::fs::read_to_string(root.join("corral.toml")).expect("reading corral.toml");
    let mut manifest: toml::Table = toml::from_str(&text).expect("corral.toml parses");
    for (_, entry) in manifest["components"].as_table_mut().unwrap().iter_mut() {
        let entry = entry.as_table_mut().unwrap();
        let file = entry["wasm"].as_str().unwrap().rsplit('/').next().unwrap();
        let wasm = format!("{WASM_PLACEHOLDER}/{file}");
        entry.insert("wasm".into(), wasm.into());
        if let Some(schemas) = entry.get("schemas").and_then(|s| s.as_str()) {
            let schemas = root.join(schemas).display().to_string();
            entry.insert("schemas".into(), schemas.into());
        }
    }
    manifest
}
