//! The component registry: published components, content-addressed, in a
//! folder or an S3 bucket.
//!
//! Layout under the store's prefix, per component name:
//! - `NAME/<sha256>.wasm`: the bytes of each published version, written once;
//! - `NAME/versions.json`: the pointer document, the ordered history and
//!   the current version, replaced only by a conditional write on its entity
//!   tag, so two publishers cannot lose each other's update;
//! - `NAME/<sha256>.<target>.cwasm`: optionally, a version precompiled for a
//!   target, with a MAC (see [`artifact`]).

pub(crate) mod artifact;
mod spec;
pub(crate) mod store;

pub(crate) use spec::RegistrySpec;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub(crate) use artifact::ArtifactKey;
pub(crate) use store::{Condition, DirStore, ObjectStore, PutError, S3Store};

/// How many times a publisher retries after another one wrote first.
const MAX_ATTEMPTS: usize = 20;

/// Where the registry lives, as written in configuration:
/// `s3://BUCKET/PREFIX` or `dir:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A folder.
    Dir(PathBuf),
    /// An S3 bucket, with a key prefix (no slashes at either end; may be empty).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix.
        prefix: String,
    },
}

impl StoreLocation {
    /// Parses `s3://BUCKET[/PREFIX]` or `dir:PATH` (a relative path is taken
    /// from `base`).
    pub fn parse(text: &str, base: &Path) -> Result<StoreLocation, String> {
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("\"{text}\" names no bucket"));
            }
            return Ok(StoreLocation::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            });
        }
        if let Some(path) = text.strip_prefix("dir:") {
            if path.is_empty() {
                return Err(format!("\"{text}\" names no folder"));
            }
            let path = Path::new(path);
            return Ok(StoreLocation::Dir(if path.is_absolute() {
                path.to_owned()
            } else {
                base.join(path)
            }));
        }
        Err(format!("\"{text}\" must be s3://BUCKET/PREFIX or dir:PATH"))
    }

    /// The S3 bucket, for a store in S3.
    pub fn bucket(&self) -> Option<&str> {
        match self {
            StoreLocation::S3 { bucket, .. } => Some(bucket),
            StoreLocation::Dir(_) => None,
        }
    }

    /// The component name an S3 notification about `bucket`/`key` concerns,
    /// when it is an object of this registry.
    pub fn component_of(&self, bucket: &str, key: &str) -> Option<String> {
        let StoreLocation::S3 { bucket: ours, prefix } = self else {
            return None;
        };
        if bucket != ours {
            return None;
        }
        let rest = if prefix.is_empty() {
            key
        } else {
            key.strip_prefix(prefix.as_str())?.strip_prefix('/')?
        };
        let (name, file) = rest.split_once('/')?;
        (!name.is_empty() && (file == "versions.json" || file.ends_with(".wasm"))).then(|| name.to_owned())
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Dir(path) => write!(f, "dir:{}", path.display()),
            StoreLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// Whether `text` is a sha256 digest as the registry writes them: 64 lower-case hex digits.
pub(crate) fn is_digest(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// One published version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// The sha256 of the component's bytes, in hex.
    pub sha256: String,
    /// When it was first published (RFC 3339).
    pub published_at: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The pointer document `NAME/versions.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versions {
    /// The version new requests get (a sha256), if any was published.
    pub current: Option<String>,
    /// Every published version, oldest first.
    pub versions: Vec<Version>,
}

impl Versions {
    /// The one version whose sha256 starts with `prefix`.
    pub fn find(&self, prefix: &str) -> anyhow::Result<&Version> {
        let prefix = prefix.to_ascii_lowercase();
        let mut matching = self.versions.iter().filter(|v| v.sha256.starts_with(&prefix));
        match (matching.next(), matching.next()) {
            (Some(v), None) => Ok(v),
            (None, _) => anyhow::bail!("no published version starts with {prefix}"),
            (Some(_), Some(_)) => anyhow::bail!("more than one version starts with {prefix}; give more digits"),
        }
    }

    /// The version published before the current one.
    fn previous(&self) -> anyhow::Result<&Version> {
        let current = self.current.as_deref().context("nothing is published yet")?;
        let at = self
            .versions
            .iter()
            .position(|v| v.sha256 == current)
            .context("the current version is not in the history")?;
        at.checked_sub(1)
            .map(|i| &self.versions[i])
            .context("the current version is the oldest; there is nothing to roll back to")
    }
}

/// Which version a rollback goes to.
pub enum RollbackTo<'a> {
    /// The one published before the current one.
    Previous,
    /// The one whose sha256 starts with this.
    Version(&'a str),
}

/// A registry on a store.
pub struct Registry {
    store: Arc<dyn ObjectStore>,
    location: StoreLocation,
    prefix: String,
    artifact_key: Option<ArtifactKey>,
}

impl Registry {
    /// A registry at `location`; S3 needs the AWS configuration.
    pub fn open(location: &StoreLocation, aws: Option<&aws_config::SdkConfig>) -> anyhow::Result<Registry> {
        let (store, prefix): (Arc<dyn ObjectStore>, String) = match location {
            StoreLocation::Dir(path) => (Arc::new(DirStore::new(path.clone())), String::new()),
            StoreLocation::S3 { bucket, prefix } => {
                let sdk = aws.context("an S3 registry needs the AWS configuration")?;
                (Arc::new(S3Store::new(sdk, bucket.clone())), prefix.clone())
            }
        };
        Ok(Registry {
            store,
            location: location.clone(),
            prefix,
            artifact_key: None,
        })
    }

    /// Reads and writes precompiled artifacts, sealed with `key`; without a
    /// key they are neither published nor loaded.
    pub fn with_artifact_key(mut self, key: Option<ArtifactKey>) -> Registry {
        self.artifact_key = key;
        self
    }

    /// Uploads `code`, version `sha256` of `name` precompiled for `target`,
    /// sealed with the artifact key. Publish the artifacts of a version
    /// before the version itself, so hosts that swap to it find them.
    pub async fn publish_artifact(&self, name: &str, sha256: &str, target: &str, code: Vec<u8>) -> anyhow::Result<()> {
        let key = self
            .artifact_key
            .as_ref()
            .context("publishing an artifact needs the artifact key")?;
        let sealed = key.seal(sha256, target, code);
        self.store
            .put(&self.key(name, &artifact::file_name(sha256, target)), sealed, Condition::Always)
            .await
            .map_err(|e| anyhow::anyhow!("uploading the {target} artifact of {name}: {e:#}"))
    }

    /// Version `sha256` of `name` from its published artifact for this
    /// host's CPU, when the registry has the artifact key, the artifact is
    /// there, its MAC verifies and `engine` accepts it. Anything else is
    /// logged (unless simply absent) and gives `None`: compile the `.wasm`.
    pub async fn precompiled(&self, name: &str, sha256: &str, engine: &wasmtime::Engine) -> Option<wasmtime::component::Component> {
        let key = self.artifact_key.as_ref()?;
        let target = artifact::host_target();
        let object_key = self.key(name, &artifact::file_name(sha256, &target));
        let object = match self.store.get(&object_key).await {
            Ok(Some(object)) => object,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(key = %object_key, error = %format!("{e:#}"), "cannot read the published artifact; compiling instead");
                return None;
            }
        };
        let loaded = key.open(sha256, &target, &object.bytes).and_then(|code| {
            // SAFETY: the MAC shows that a holder of the artifact key
            // published these bytes as the serialized form of this version,
            // and wasmtime refuses artifacts of another version, engine
            // configuration or CPU.
            unsafe { wasmtime::component::Component::deserialize(engine, code) }.map_err(|e| anyhow::anyhow!("{e:#}"))
        });
        match loaded {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(key = %object_key, error = %format!("{e:#}"), "refused the published artifact; compiling instead");
                None
            }
        }
    }

    /// Where it lives.
    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    fn key(&self, name: &str, file: &str) -> String {
        if self.prefix.is_empty() {
            format!("{name}/{file}")
        } else {
            format!("{}/{name}/{file}", self.prefix)
        }
    }

    /// The pointer document of `name` and its entity tag (empty when nothing is published).
    pub async fn versions(&self, name: &str) -> anyhow::Result<(Versions, Option<String>)> {
        match self.store.get(&self.key(name, "versions.json")).await? {
            None => Ok((Versions::default(), None)),
            Some(object) => {
                let doc: Versions =
                    serde_json::from_slice(&object.bytes).with_context(|| format!("{name}/versions.json is not a versions document"))?;
                // Digests become object keys, file names and slices: a
                // document with anything else is refused whole.
                for digest in doc.current.iter().chain(doc.versions.iter().map(|v| &v.sha256)) {
                    if !is_digest(digest) {
                        tracing::error!(component = name, registry = %self.location, value = %digest.escape_debug(), "refused a registry document: a version is not a sha256 digest");
                        anyhow::bail!("{name}/versions.json names a version that is not a sha256 digest (64 lower-case hex digits)");
                    }
                }
                Ok((doc, Some(object.etag)))
            }
        }
    }

    /// The entity tag of `name`'s pointer document: it changes on every publish and rollback.
    pub async fn pointer_tag(&self, name: &str) -> anyhow::Result<Option<String>> {
        self.store.etag(&self.key(name, "versions.json")).await
    }

    /// The bytes of version `sha256` of `name`, checked against the digest.
    pub async fn bytes(&self, name: &str, sha256: &str) -> anyhow::Result<Vec<u8>> {
        anyhow::ensure!(is_digest(sha256), "\"{}\" is not a sha256 digest", sha256.escape_debug());
        let key = self.key(name, &format!("{sha256}.wasm"));
        let object = self
            .store
            .get(&key)
            .await?
            .with_context(|| format!("{key} is missing from {}", self.location))?;
        anyhow::ensure!(
            hex::encode(Sha256::digest(&object.bytes)) == sha256,
            "{key} does not hash to its name; refusing it"
        );
        Ok(object.bytes)
    }

    /// Uploads `bytes` as a version of `name` and makes it current. Returns its sha256.
    pub async fn publish(&self, name: &str, bytes: Vec<u8>) -> anyhow::Result<String> {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let size = bytes.len() as u64;
        // Content-addressed: an object already there holds these very bytes.
        match self
            .store
            .put(&self.key(name, &format!("{sha256}.wasm")), bytes, Condition::Absent)
            .await
        {
            Ok(()) | Err(PutError::Conflict) => {}
            Err(PutError::Failed(e)) => return Err(e),
        }
        let published_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        self.update(name, |doc| {
            if !doc.versions.iter().any(|v| v.sha256 == sha256) {
                doc.versions.push(Version {
                    sha256: sha256.clone(),
                    published_at: published_at.clone(),
                    size,
                });
            }
            doc.current = Some(sha256.clone());
            Ok(())
        })
        .await?;
        Ok(sha256)
    }

    /// Points `name` back at an earlier version. Returns its sha256.
    pub async fn rollback(&self, name: &str, to: RollbackTo<'_>) -> anyhow::Result<String> {
        let doc = self
            .update(name, |doc| {
                let target = match to {
                    RollbackTo::Previous => doc.previous()?,
                    RollbackTo::Version(prefix) => doc.find(prefix)?,
                };
                doc.current = Some(target.sha256.clone());
                Ok(())
            })
            .await?;
        Ok(doc.current.expect("set by the update"))
    }

    /// Read, change, write back if nobody wrote in between; else again.
    async fn update(&self, name: &str, change: impl Fn(&mut Versions) -> anyhow::Result<()>) -> anyhow::Result<Versions> {
        let key = self.key(name, "versions.json");
        for _ in 0..MAX_ATTEMPTS {
            let (mut doc, etag) = self.versions(name).await?;
            change(&mut doc)?;
            let condition = match etag {
                Some(etag) => Condition::Matches(etag),
                None => Condition::Absent,
            };
            let text = serde_json::to_vec_pretty(&doc).expect("a versions document serializes");
            match self.store.put(&key, text, condition).await {
                Ok(()) => return Ok(doc),
                Err(PutError::Conflict) => {
                    tracing::debug!(key, "the versions document changed under us; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(rand::random_range(5..50))).await;
                }
                Err(PutError::Failed(e)) => return Err(e),
            }
        }
        anyhow::bail!("{key} kept changing during {MAX_ATTEMPTS} attempts to update it")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_map_notifications_to_components() {
        let s3 = StoreLocation::parse("s3://bucket/a/b/", Path::new("/x")).unwrap();
        assert_eq!(
            s3,
            StoreLocation::S3 {
                bucket: "bucket".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(s3.component_of("bucket", "a/b/students/versions.json").as_deref(), Some("students"));
        assert_eq!(s3.component_of("bucket", "a/b/students/0123.wasm").as_deref(), Some("students"));
        assert_eq!(s3.component_of("other", "a/b/students/versions.json"), None);
        assert_eq!(s3.component_of("bucket", "a/bc/students/versions.json"), None);
        assert_eq!(s3.component_of("bucket", "a/b/students/notes.txt"), None);
        let bare = StoreLocation::parse("s3://bucket", Path::new("/x")).unwrap();
        assert_eq!(bare.component_of("bucket", "students/versions.json").as_deref(), Some("students"));
        assert_eq!(
            StoreLocation::parse("dir:reg", Path::new("/x")).unwrap(),
            StoreLocation::Dir("/x/reg".into())
        );
        assert!(StoreLocation::parse("/reg", Path::new("/x")).is_err());
        assert!(StoreLocation::parse("s3:///p", Path::new("/x")).is_err());
    }

    #[tokio::test]
    async fn publish_rollback_and_concurrent_publishers() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Arc::new(Registry::open(&StoreLocation::Dir(dir.path().to_owned()), None).unwrap());
        let v1 = registry.publish("notes", b"one".to_vec()).await.unwrap();
        let v2 = registry.publish("notes", b"two".to_vec()).await.unwrap();
        let (doc, _) = registry.versions("notes").await.unwrap();
        assert_eq!(doc.current.as_deref(), Some(v2.as_str()));
        assert_eq!(
            doc.versions.iter().map(|v| v.sha256.as_str()).collect::<Vec<_>>(),
            [v1.as_str(), v2.as_str()]
        );
        assert_eq!(registry.bytes("notes", &v1).await.unwrap(), b"one");

        assert_eq!(registry.rollback("notes", RollbackTo::Previous).await.unwrap(), v1);
        assert!(
            registry
                .rollback("notes", RollbackTo::Previous)
                .await
                .unwrap_err()
                .to_string()
                .contains("oldest")
        );
        assert_eq!(registry.rollback("notes", RollbackTo::Version(&v2[..8])).await.unwrap(), v2);
        assert!(registry.rollback("notes", RollbackTo::Version("ffffffffff")).await.is_err());

        // Many publishers at once: every version lands in the history.
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let registry = registry.clone();
                tokio::spawn(async move { registry.publish("notes", format!("v{i}").into_bytes()).await.unwrap() })
            })
            .collect();
        let mut published = Vec::new();
        for t in tasks {
            published.push(t.await.unwrap());
        }
        let (doc, _) = registry.versions("notes").await.unwrap();
        assert_eq!(doc.versions.len(), 18, "{doc:?}");
        assert!(published.iter().all(|p| doc.versions.iter().any(|v| &v.sha256 == p)));

        // A tampered object is refused.
        std::fs::write(dir.path().join(format!("notes/{v1}.wasm")), b"evil").unwrap();
        assert!(registry.bytes("notes", &v1).await.is_err());
    }

    #[tokio::test]
    async fn versions_that_are_not_digests_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(&StoreLocation::Dir(dir.path().to_owned()), None).unwrap();
        let good = registry.publish("notes", b"one".to_vec()).await.unwrap();
        assert!(is_digest(&good));
        let pointer = dir.path().join("notes/versions.json");
        let valid = std::fs::read_to_string(&pointer).unwrap();
        for hostile in [
            "../../x",
            "abc",
            &good.to_ascii_uppercase(),
            &format!("{good}0"),
            &format!("{}/..", &good[..61]),
        ] {
            let mut doc: serde_json::Value = serde_json::from_str(&valid).unwrap();
            doc["current"] = hostile.into();
            std::fs::write(&pointer, doc.to_string()).unwrap();
            let refused = registry.versions("notes").await.unwrap_err().to_string();
            assert!(refused.contains("not a sha256 digest"), "{hostile}: {refused}");
            assert!(
                registry
                    .bytes("notes", hostile)
                    .await
                    .unwrap_err()
                    .to_string()
                    .contains("not a sha256 digest")
            );
        }
        std::fs::write(&pointer, &valid).unwrap();
        assert_eq!(registry.versions("notes").await.unwrap().0.current.as_deref(), Some(good.as_str()));
    }
}
