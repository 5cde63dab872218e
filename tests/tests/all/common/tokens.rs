//! Development tokens from `corral token`, signed with a host's key or a
//! given one.

use std::path::Path;
use std::process::Command;

use super::paths::corral_bin;

/// A development token for `sub` signed with `key`, as hosts given
/// `[backends.auth] signing_key = key` accept.
pub fn issue_token_with_key(key: &str, sub: &str, groups: &[&str]) -> String {
    run_corral_token(&["--signing-key", key], sub, groups)
}

/// Runs `corral token` against `data_dir`'s signing key.
pub fn issue_token(data_dir: &Path, sub: &str, groups: &[&str]) -> String {
    run_corral_token(
        &["--data-dir", data_dir.to_str().expect("a UTF-8 path")],
        sub,
        groups,
    )
}

/// Runs `corral token` with the signing key `key_args` name, and returns
/// the JWT it prints.
fn run_corral_token(key_args: &[&str], sub: &str, groups: &[&str]) -> String {
    let mut command = Command::new(corral_bin());
    command
        .args(["token", "--sub", sub])
        .args(key_args)
        .env_remove("CORRAL_DEV_SIGNING_KEY");
    for g in groups {
        command.arg("--group").arg(g);
    }
    let out = command.output().expect("running corral token");
    assert!(
        out.status.success(),
        "corral token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout)
        .expect("the token is UTF-8")
        .trim()
        .to_owned();
    assert_eq!(
        token.split('.').count(),
        3,
        "corral token printed something that is not a JWT: {token:?}"
    );
    token
}

/// A token for `sub` signed with a key no test host uses.
pub fn foreign_token(sub: &str) -> String {
    let other = tempfile::tempdir().expect("creating a temporary directory");
    issue_token(other.path(), sub, &[])
}
