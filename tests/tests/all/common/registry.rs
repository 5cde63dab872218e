//! The component registry from the outside: the `corral` command line
//! (publish, versions, rollback) against a store, and distinct versions of
//! one component.

use std::path::Path;
use std::process::{Command, Output};

use super::paths::corral_bin;
use super::run_async;

/// `bytes` with a custom section appended: the same component, another sha256.
pub fn with_custom_section(bytes: &[u8], payload: &str) -> Vec<u8> {
    let name = b"corral-test";
    let mut content = vec![name.len() as u8];
    content.extend_from_slice(name);
    content.extend_from_slice(payload.as_bytes());
    assert!(content.len() < 128, "one LEB128 byte of section size");
    let mut out = bytes.to_vec();
    out.push(0); // custom section id
    out.push(content.len() as u8);
    out.extend_from_slice(&content);
    out
}

/// Runs the `corral` command line with `env`.
pub fn corral(args: &[&str], env: &[(String, String)]) -> Output {
    let mut command = Command::new(corral_bin());
    command
        .args(args)
        .env_remove("CORRAL_STORE")
        .env_remove("CORRAL_BACKENDS");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    command.output().expect("running corral")
}

/// Runs `corral` and returns its stdout; panics with its stderr if it fails.
pub fn corral_ok(args: &[&str], env: &[(String, String)]) -> String {
    let out = corral(args, env);
    assert!(
        out.status.success(),
        "corral {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("text")
        .trim()
        .to_owned()
}

/// Publishes `file` as `name` and returns the printed sha256.
pub fn publish(
    file: &Path,
    name: &str,
    store: &str,
    env: &[(String, String)],
    extra: &[&str],
) -> String {
    let file = file.display().to_string();
    let mut args = vec![
        "publish",
        file.as_str(),
        "--component",
        name,
        "--store",
        store,
    ];
    args.extend_from_slice(extra);
    let sha = corral_ok(&args, env);
    assert_eq!(sha.len(), 64, "publish printed {sha:?}");
    sha
}

/// A fresh bucket in moto, created with an unsigned request (moto accepts them).
pub fn create_bucket(moto: &str) -> String {
    let bucket = format!(
        "corral-registry-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let url = format!("{moto}/{bucket}");
    let response = run_async(async move { reqwest::Client::new().put(url).send().await })
        .unwrap_or_else(|e| panic!("moto at {moto} does not answer: {e}"));
    assert!(
        response.status().is_success(),
        "creating the bucket: {}",
        response.status()
    );
    bucket
}
