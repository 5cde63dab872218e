//! Precompiled artifacts published beside a component's `.wasm`, so a host
//! on a cold start deserializes instead of compiling.
//!
//! An artifact is native code that the host maps and runs. Whoever may
//! write the bucket must not be able to turn that write into code running
//! in the host, so every published artifact carries an HMAC-SHA256 tag under
//! a key that only publishers and hosts hold (from SSM). The tag covers the
//! sha256 of the `.wasm` it was compiled from and the target it was compiled
//! for, so a valid artifact cannot stand in for another version or another
//! CPU. A host without the key never reads artifacts; a host with it loads
//! only artifacts whose tag verifies, and compiles the `.wasm` otherwise.
//!
//! Layout: `NAME/<sha256>.<target triple>.cwasm`, holding the serialized
//! component followed by its 32-byte tag.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Length of the tag after the code.
const TAG: usize = 32;
/// The shortest key accepted, in bytes.
const MIN_KEY: usize = 32;

/// The key that signs and checks published artifacts.
#[derive(Clone)]
pub struct ArtifactKey(Vec<u8>);

impl std::fmt::Debug for ArtifactKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArtifactKey(..)")
    }
}

impl ArtifactKey {
    /// The key `text` (its UTF-8 bytes), at least 32 bytes long, such as
    /// the output of `openssl rand -hex 32`.
    pub fn new(text: &str) -> anyhow::Result<ArtifactKey> {
        let text = text.trim();
        anyhow::ensure!(
            text.len() >= MIN_KEY,
            "the artifact key must be at least {MIN_KEY} characters (openssl rand -hex 32 makes one)"
        );
        Ok(ArtifactKey(text.as_bytes().to_vec()))
    }

    fn mac(&self, wasm_sha256: &str, target: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(format!("corral artifact v1\n{wasm_sha256}\n{target}\n").as_bytes());
        mac
    }

    /// `code` (compiled from the `.wasm` with sha256 `wasm_sha256`, for
    /// `target`) with its tag appended: the object to publish.
    pub fn seal(&self, wasm_sha256: &str, target: &str, mut code: Vec<u8>) -> Vec<u8> {
        let mut mac = self.mac(wasm_sha256, target);
        mac.update(&code);
        code.extend_from_slice(&mac.finalize().into_bytes());
        code
    }

    /// The code in a published `object`, if its tag is valid for this
    /// `.wasm` and target.
    pub fn open<'a>(&self, wasm_sha256: &str, target: &str, object: &'a [u8]) -> anyhow::Result<&'a [u8]> {
        anyhow::ensure!(object.len() > TAG, "the artifact is truncated");
        let (code, tag) = object.split_at(object.len() - TAG);
        let mut mac = self.mac(wasm_sha256, target);
        mac.update(code);
        mac.verify_slice(tag)
            .map_err(|_| anyhow::anyhow!("the artifact's MAC does not verify: it was not published with this key, or was changed"))?;
        Ok(code)
    }
}

/// The artifact key that configuration names: `ssm:PARAMETER` (a
/// SecureString, read with decryption), or the key itself.
pub(crate) async fn resolve_key(value: &str, aws: Option<&aws_config::SdkConfig>) -> anyhow::Result<ArtifactKey> {
    ArtifactKey::new(&crate::capability::config::setting_value(value, aws, "the artifact key").await?)
}

/// The target triple this host runs on, as artifacts are named.
pub(crate) fn host_target() -> String {
    target_lexicon::HOST.to_string()
}

/// The object name of the artifact of version `sha256` for `target`.
pub(crate) fn file_name(sha256: &str, target: &str) -> String {
    format!("{sha256}.{target}.cwasm")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_key_the_wasm_and_the_target_it_was_sealed_for_open_an_artifact() {
        let key = ArtifactKey::new(&"k".repeat(32)).unwrap();
        let other = ArtifactKey::new(&"x".repeat(32)).unwrap();
        let sealed = key.seal("aaaa", "aarch64-unknown-linux-gnu", b"native code".to_vec());
        assert_eq!(key.open("aaaa", "aarch64-unknown-linux-gnu", &sealed).unwrap(), b"native code");
        assert!(other.open("aaaa", "aarch64-unknown-linux-gnu", &sealed).is_err(), "another key");
        assert!(key.open("bbbb", "aarch64-unknown-linux-gnu", &sealed).is_err(), "another version");
        assert!(key.open("aaaa", "x86_64-unknown-linux-gnu", &sealed).is_err(), "another target");
        let mut changed = sealed.clone();
        changed[0] ^= 1;
        assert!(key.open("aaaa", "aarch64-unknown-linux-gnu", &changed).is_err(), "changed code");
        assert!(key.open("aaaa", "aarch64-unknown-linux-gnu", &sealed[..10]).is_err(), "truncated");
        assert!(ArtifactKey::new("short").is_err());
    }
}
