//! Where published components live: a folder or an S3 bucket, behind one
//! small object interface with conditional writes, so the registry's
//! pointer document works the same on both.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest, Sha256};

/// An object's bytes and its entity tag.
pub(crate) struct Object {
    /// The content.
    pub bytes: Vec<u8>,
    /// Changes whenever the content changes.
    pub etag: String,
}

/// When a write may happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Condition {
    /// Always.
    Always,
    /// Only if the object does not exist yet.
    Absent,
    /// Only if the object still has this entity tag.
    Matches(String),
}

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PutError {
    /// The condition did not hold: someone else wrote first.
    #[error("the object changed since it was read")]
    Conflict,
    /// The store failed.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// A flat key-value store of objects with entity tags.
#[async_trait::async_trait]
pub(crate) trait ObjectStore: Send + Sync {
    /// The object at `key`, if any.
    async fn get(&self, key: &str) -> anyhow::Result<Option<Object>>;
    /// The entity tag of the object at `key`, if any (without its bytes).
    async fn etag(&self, key: &str) -> anyhow::Result<Option<String>>;
    /// Writes `bytes` at `key` if `condition` holds.
    async fn put(&self, key: &str, bytes: Vec<u8>, condition: Condition) -> Result<(), PutError>;
}

/// A folder as an object store: keys are relative paths. Entity tags are
/// content hashes, and conditional writes hold an exclusive file lock, so
/// several publishers on one machine (or one shared file system with
/// working locks) cannot lose each other's update.
pub(crate) struct DirStore {
    root: PathBuf,
}

impl DirStore {
    /// A store rooted at `root` (created on first write).
    pub(crate) fn new(root: PathBuf) -> DirStore {
        DirStore { root }
    }

    fn path(&self, key: &str) -> anyhow::Result<PathBuf> {
        anyhow::ensure!(
            key.split('/').all(|s| !s.is_empty() && s != "." && s != ".."),
            "bad object key {key:?}"
        );
        Ok(self.root.join(key))
    }
}

fn content_etag(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..16])
}

fn read_optional(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[async_trait::async_trait]
impl ObjectStore for DirStore {
    async fn get(&self, key: &str) -> anyhow::Result<Option<Object>> {
        let path = self.path(key)?;
        let bytes = tokio::task::spawn_blocking(move || read_optional(&path)).await??;
        Ok(bytes.map(|bytes| Object {
            etag: content_etag(&bytes),
            bytes,
        }))
    }

    async fn etag(&self, key: &str) -> anyhow::Result<Option<String>> {
        Ok(self.get(key).await?.map(|o| o.etag))
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, condition: Condition) -> Result<(), PutError> {
        let path = self.path(key)?;
        let lock_path = self.root.join(".lock");
        tokio::task::spawn_blocking(move || {
            let dir = path.parent().expect("object paths have a folder");
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .context("opening the store's lock file")?;
            // Released when `lock` is dropped.
            lock.lock().context("locking the store")?;
            let existing = read_optional(&path)?;
            let holds = match (&condition, &existing) {
                (Condition::Always, _) => true,
                (Condition::Absent, existing) => existing.is_none(),
                (Condition::Matches(etag), Some(old)) => content_etag(old) == *etag,
                (Condition::Matches(_), None) => false,
            };
            if !holds {
                return Err(PutError::Conflict);
            }
            // Written whole, then renamed: a reader never sees half an object.
            let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
            std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
            Ok(())
        })
        .await
        .map_err(|e| PutError::Failed(e.into()))?
    }
}

/// An S3 bucket as an object store. Conditional writes use S3's own
/// `If-Match` / `If-None-Match` on PutObject, so no bucket versioning or
/// lock table is needed.
pub(crate) struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Store {
    /// A store on `bucket`. With an endpoint override (an emulator), paths
    /// are addressed path-style, since virtual hosts do not resolve there.
    pub(crate) fn new(sdk: &aws_config::SdkConfig, bucket: String) -> S3Store {
        let mut config = aws_sdk_s3::config::Builder::from(sdk);
        if sdk.endpoint_url().is_some() {
            config = config.force_path_style(true);
        }
        S3Store {
            client: aws_sdk_s3::Client::from_conf(config.build()),
            bucket,
        }
    }
}

/// Whether an S3 error is a failed precondition (412), or a conflicting
/// concurrent conditional write (409).
fn is_conflict<E>(e: &aws_sdk_s3::error::SdkError<E>) -> bool {
    e.raw_response().is_some_and(|r| matches!(r.status().as_u16(), 409 | 412))
}

fn is_not_found<E>(e: &aws_sdk_s3::error::SdkError<E>) -> bool {
    e.raw_response().is_some_and(|r| r.status().as_u16() == 404)
}

#[async_trait::async_trait]
impl ObjectStore for S3Store {
    async fn get(&self, key: &str) -> anyhow::Result<Option<Object>> {
        match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => {
                let etag = out.e_tag().unwrap_or_default().to_owned();
                let bytes = out
                    .body
                    .collect()
                    .await
                    .with_context(|| format!("reading s3://{}/{key}", self.bucket))?
                    .into_bytes()
                    .to_vec();
                Ok(Some(Object { bytes, etag }))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(anyhow::anyhow!(
                "getting s3://{}/{key}: {}",
                self.bucket,
                aws_sdk_s3::error::DisplayErrorContext(e)
            )),
        }
    }

    async fn etag(&self, key: &str) -> anyhow::Result<Option<String>> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(Some(out.e_tag().unwrap_or_default().to_owned())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(anyhow::anyhow!(
                "checking s3://{}/{key}: {}",
                self.bucket,
                aws_sdk_s3::error::DisplayErrorContext(e)
            )),
        }
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, condition: Condition) -> Result<(), PutError> {
        let mut put = self.client.put_object().bucket(&self.bucket).key(key).body(bytes.into());
        put = match condition {
            Condition::Always => put,
            Condition::Absent => put.if_none_match("*"),
            Condition::Matches(etag) => put.if_match(etag),
        };
        match put.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_conflict(&e) => Err(PutError::Conflict),
            Err(e) => Err(PutError::Failed(anyhow::anyhow!(
                "writing s3://{}/{key}: {}",
                self.bucket,
                aws_sdk_s3::error::DisplayErrorContext(e)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conditional_writes_refuse_stale_tags() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path().to_owned());
        assert!(store.get("a/b.json").await.unwrap().is_none());
        store.put("a/b.json", b"one".to_vec(), Condition::Absent).await.unwrap();
        assert!(matches!(
            store.put("a/b.json", b"two".to_vec(), Condition::Absent).await,
            Err(PutError::Conflict)
        ));
        let first = store.get("a/b.json").await.unwrap().unwrap();
        assert_eq!(first.bytes, b"one");
        store
            .put("a/b.json", b"two".to_vec(), Condition::Matches(first.etag.clone()))
            .await
            .unwrap();
        // The tag read before the second write is stale now.
        assert!(matches!(
            store.put("a/b.json", b"three".to_vec(), Condition::Matches(first.etag)).await,
            Err(PutError::Conflict)
        ));
        assert_eq!(store.get("a/b.json").await.unwrap().unwrap().bytes, b"two");
        assert!(store.get("../x").await.is_err());
    }
}
