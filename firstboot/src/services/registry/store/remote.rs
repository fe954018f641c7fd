//! The store's S3 backend: blobs and repository metadata as objects in
//! one bucket, laid out like the data folder so several registry
//! instances share one store:
//!
//! ```text
//! <prefix>blobs/<alg>/<hex>                                        blobs and manifests
//! <prefix>repositories/<name>/_manifests/<alg>/<hex>               the manifest's media type
//! <prefix>repositories/<name>/_tags/<tag>                          the tagged digest
//! <prefix>repositories/<name>/_referrers/<alg>-<hex>/<alg>-<hex>   descriptor JSON
//! ```
//!
//! A blob is verified locally (hashed into its upload file) before it
//! is sent: one PUT below the multipart threshold, else a multipart
//! upload whose parts stream from the file, each signed with its
//! SHA-256, aborted on any error. S3 makes an object visible only once
//! its PUT or CompleteMultipartUpload succeeds, so no partial blob is
//! ever readable; the size is checked with a HEAD afterwards. A process
//! killed mid-upload leaves an unfinished multipart upload (invisible,
//! not a blob): give the bucket an `AbortIncompleteMultipartUpload`
//! lifecycle rule to reclaim its space.
//!
//! Other instances' writes are seen (1) at once for a tag or manifest
//! this instance does not know (looked up in S3 before answering 404),
//! and (2) within one refresh interval for everything else (a moved tag,
//! deletes, the catalogue and tag lists): the in-memory index is rebuilt
//! from a listing of `<prefix>repositories/` every `--s3-refresh-secs`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use airlift_oci::documents::Descriptor;
use airlift_oci::{Algorithm, Digest};
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use futures_util::StreamExt;

use super::index::{ManifestInfo, RepoIndex, Repos};
use crate::services::registry::s3::{self, Client};

const MANIFESTS: &str = "_manifests";
const TAGS: &str = "_tags";
const REFERRERS: &str = "_referrers";

/// S3 refuses parts smaller than this (except the last).
pub const MIN_PART: u64 = 5 << 20;
/// S3 allows at most this many parts.
pub const MAX_PARTS: u64 = 10_000;
/// Requests in flight at once while loading metadata.
const PARALLEL: usize = 16;

/// Where every object lives: a key prefix, normalised to end in `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

/// One metadata object's meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    Manifest {
        repo: String,
        digest: Digest,
    },
    Tag {
        repo: String,
        tag: String,
    },
    Referrer {
        repo: String,
        subject: Digest,
        digest: Digest,
    },
}

fn flat(d: &Digest) -> String {
    format!("{}-{}", d.algorithm().as_str(), d.hex())
}

fn unflat(s: &str) -> Option<Digest> {
    let (alg, hex) = s.split_once('-')?;
    format!("{alg}:{hex}").parse().ok()
}

impl Keys {
    /// Keys under `prefix` (`""`, `airlift`, `/airlift/` all work).
    pub fn new(prefix: &str) -> Keys {
        let p = prefix.trim_matches('/');
        Keys {
            prefix: if p.is_empty() {
                String::new()
            } else {
                format!("{p}/")
            },
        }
    }

    /// A blob's key.
    pub fn blob(&self, d: &Digest) -> String {
        format!(
            "{}blobs/{}/{}",
            self.prefix,
            d.algorithm().as_str(),
            d.hex()
        )
    }

    /// The prefix of every metadata key.
    pub fn repositories(&self) -> String {
        format!("{}repositories/", self.prefix)
    }

    /// The marker making `d` a member of `repo`.
    pub fn marker(&self, repo: &str, d: &Digest) -> String {
        format!(
            "{}{repo}/{MANIFESTS}/{}/{}",
            self.repositories(),
            d.algorithm().as_str(),
            d.hex()
        )
    }

    /// A tag's key.
    pub fn tag(&self, repo: &str, tag: &str) -> String {
        format!("{}{repo}/{TAGS}/{tag}", self.repositories())
    }

    /// A referrer entry's key.
    pub fn referrer(&self, repo: &str, subject: &Digest, d: &Digest) -> String {
        format!(
            "{}{repo}/{REFERRERS}/{}/{}",
            self.repositories(),
            flat(subject),
            flat(d)
        )
    }

    /// What a metadata key means (None for anything else).
    pub fn parse(&self, key: &str) -> Option<Fact> {
        let rel = key.strip_prefix(&self.repositories())?;
        let parts: Vec<&str> = rel.split('/').collect();
        let i = parts.iter().position(|p| p.starts_with('_'))?;
        if i == 0 {
            return None;
        }
        let repo = parts[..i].join("/");
        match (parts[i], &parts[i + 1..]) {
            (MANIFESTS, [alg, hex]) => Some(Fact::Manifest {
                repo,
                digest: format!("{alg}:{hex}").parse().ok()?,
            }),
            (TAGS, [tag]) if !tag.is_empty() => Some(Fact::Tag {
                repo,
                tag: tag.to_string(),
            }),
            (REFERRERS, [s, d]) => Some(Fact::Referrer {
                repo,
                subject: unflat(s)?,
                digest: unflat(d)?,
            }),
            _ => None,
        }
    }
}

/// How a blob of `size` bytes is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// One PUT.
    Single,
    /// Parts of `part_size` bytes (the last one shorter), `parts` of them.
    Multipart { part_size: u64, parts: u64 },
}

/// One PUT below `threshold` bytes, else parts of at least `threshold`
/// (and at least S3's 5 MiB), few enough for S3's 10,000-part limit.
pub fn plan(size: u64, threshold: u64) -> Plan {
    if size == 0 || size < threshold {
        return Plan::Single;
    }
    let part_size = threshold.max(MIN_PART).max(size.div_ceil(MAX_PARTS));
    Plan::Multipart {
        part_size,
        parts: size.div_ceil(part_size),
    }
}

/// The S3 backend of a [`super::Store`].
#[derive(Debug)]
pub struct Remote {
    pub client: Client,
    pub keys: Keys,
    /// Blobs of at least this many bytes are sent in parts.
    pub threshold: u64,
    /// How often the index is rebuilt from the bucket.
    pub refresh_every: Duration,
    /// Metadata objects by key: (ETag, content), so a refresh only
    /// fetches what changed.
    objects: Mutex<HashMap<String, (String, Bytes)>>,
    /// Sizes of manifest blobs seen (content-addressed, so they never change).
    sizes: Mutex<HashMap<Digest, u64>>,
}

/// The S3 options of `serve`, resolved.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    pub s3: s3::Config,
    pub prefix: String,
    pub threshold: u64,
    pub refresh_every: Duration,
}

impl Remote {
    /// A backend for `config` (no request is made).
    pub fn new(config: &RemoteConfig) -> Result<Remote> {
        Ok(Remote {
            client: Client::new(&config.s3)?,
            keys: Keys::new(&config.prefix),
            threshold: config.threshold,
            refresh_every: config.refresh_every,
            objects: Mutex::new(HashMap::new()),
            sizes: Mutex::new(HashMap::new()),
        })
    }

    /// The stored size of blob `d`, if it is stored.
    pub async fn blob_size(&self, d: &Digest) -> Result<Option<u64>> {
        self.client.head(&self.keys.blob(d)).await
    }

    async fn manifest_size(&self, d: &Digest) -> Result<Option<u64>> {
        if let Some(s) = self.sizes.lock().ok().and_then(|m| m.get(d).copied()) {
            return Ok(Some(s));
        }
        let size = self.blob_size(d).await?;
        if let (Some(s), Ok(mut m)) = (size, self.sizes.lock()) {
            m.insert(d.clone(), s);
        }
        Ok(size)
    }

    /// Send the verified file `path` as blob `d` (skipped if a blob of
    /// the same size is there already), then check its size.
    pub async fn put_blob_file(&self, path: &Path, d: &Digest) -> Result<()> {
        let key = self.keys.blob(d);
        let size = tokio::fs::metadata(path)
            .await
            .with_context(|| format!("reading the size of {}", path.display()))?
            .len();
        if self.client.head(&key).await? == Some(size) {
            return Ok(());
        }
        let sha = (d.algorithm() == Algorithm::Sha256).then(|| d.hex().to_string());
        match plan(size, self.threshold) {
            Plan::Single => self.client.put_file(&key, path, size, sha).await?,
            Plan::Multipart { part_size, parts } => {
                let id = self.client.create_multipart(&key).await?;
                tracing::debug!(digest = %d, size, parts, "S3 multipart upload of {key} started");
                let sent = self
                    .send_parts(&key, &id, path, size, part_size, parts)
                    .await;
                if let Err(e) = sent {
                    if let Err(a) = self.client.abort_multipart(&key, &id).await {
                        tracing::warn!("aborting the multipart upload of {key}: {a:#}");
                    }
                    return Err(e);
                }
            }
        }
        match self.client.head(&key).await? {
            Some(s) if s == size => Ok(()),
            found => {
                self.client.delete(&key).await.ok();
                bail!(
                    "{} holds {found:?} bytes after the upload, not {size}; it was removed",
                    self.client.describe_key(&key)
                )
            }
        }
    }

    async fn send_parts(
        &self,
        key: &str,
        id: &str,
        path: &Path,
        size: u64,
        part_size: u64,
        parts: u64,
    ) -> Result<()> {
        let mut etags = Vec::new();
        for n in 0..parts {
            let offset = n * part_size;
            let len = part_size.min(size - offset);
            let sha = s3::sha256_of_range(path, offset, len).await?;
            let number = u32::try_from(n + 1).context("too many parts")?;
            let etag = self
                .client
                .upload_part(key, id, number, path, offset, len, sha)
                .await?;
            tracing::debug!("S3 multipart upload of {key}: sent part {}/{parts}", n + 1);
            etags.push(etag);
        }
        self.client.complete_multipart(key, id, &etags).await
    }

    /// Store manifest bytes as blob `d` unless it is there.
    pub async fn put_blob_bytes(&self, d: &Digest, bytes: Bytes) -> Result<()> {
        let key = self.keys.blob(d);
        if self.client.head(&key).await?.is_none() {
            self.client.put_bytes(&key, bytes).await?;
        }
        Ok(())
    }

    /// Write a metadata object.
    pub async fn put(&self, key: &str, content: impl Into<Bytes>) -> Result<()> {
        self.client.put_bytes(key, content.into()).await
    }

    /// Remove a metadata or blob object.
    pub async fn delete(&self, key: &str) -> Result<()> {
        self.client.delete(key).await
    }

    /// Encode a referrer descriptor.
    pub fn referrer_json(desc: &Descriptor) -> Result<Vec<u8>> {
        serde_json::to_vec(desc).context("encoding a referrer descriptor")
    }

    /// A member manifest of `repo` as stored in the bucket.
    pub async fn member(&self, repo: &str, d: &Digest) -> Result<Option<ManifestInfo>> {
        let Some(mt) = self.client.get(&self.keys.marker(repo, d)).await? else {
            return Ok(None);
        };
        let Some(size) = self.manifest_size(d).await? else {
            return Ok(None);
        };
        Ok(Some(ManifestInfo {
            media_type: String::from_utf8_lossy(&mt).into_owned(),
            size,
        }))
    }

    /// The digest a tag names in the bucket.
    pub async fn tag(&self, repo: &str, tag: &str) -> Result<Option<Digest>> {
        let key = self.keys.tag(repo, tag);
        let Some(b) = self.client.get(&key).await? else {
            return Ok(None);
        };
        let d = String::from_utf8_lossy(&b)
            .trim()
            .parse()
            .with_context(|| {
                format!("{} does not hold a digest", self.client.describe_key(&key))
            })?;
        Ok(Some(d))
    }

    /// Rebuild the whole index from the bucket.
    pub async fn load(&self) -> Result<Repos> {
        let listed = self.client.list(&self.keys.repositories()).await?;
        let mut wanted = Vec::new();
        let mut facts = Vec::new();
        {
            let cache = self
                .objects
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?;
            for o in &listed {
                let Some(fact) = self.keys.parse(&o.key) else {
                    continue;
                };
                if cache.get(&o.key).is_none_or(|(etag, _)| *etag != o.etag) {
                    wanted.push(o.clone());
                }
                facts.push((o.key.clone(), fact));
            }
        }
        let fetched: Vec<Result<(s3::ObjectInfo, Option<Bytes>)>> =
            futures_util::stream::iter(wanted)
                .map(|o| async move {
                    let b = self.client.get(&o.key).await?;
                    Ok((o, b))
                })
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
        let mut contents = HashMap::new();
        {
            let mut cache = self
                .objects
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?;
            for f in fetched {
                if let (o, Some(b)) = f? {
                    cache.insert(o.key, (o.etag, b));
                }
            }
            let live: std::collections::HashSet<&str> =
                listed.iter().map(|o| o.key.as_str()).collect();
            cache.retain(|k, _| live.contains(k.as_str()));
            for (key, _) in &facts {
                if let Some((_, b)) = cache.get(key) {
                    contents.insert(key.clone(), b.clone());
                }
            }
        }
        let digests: Vec<Digest> = facts
            .iter()
            .filter_map(|(_, f)| match f {
                Fact::Manifest { digest, .. } => Some(digest.clone()),
                _ => None,
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let sizes: Vec<Result<(Digest, Option<u64>)>> = futures_util::stream::iter(digests)
            .map(|d| async move {
                let s = self.manifest_size(&d).await?;
                Ok((d, s))
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        let mut size_of = HashMap::new();
        for s in sizes {
            let (d, s) = s?;
            if let Some(s) = s {
                size_of.insert(d, s);
            }
        }
        Ok(build(facts, &contents, &size_of))
    }
}

/// The index from metadata facts, their objects' contents and the
/// stored manifests' sizes. Facts whose object vanished, markers whose
/// blob is gone and tags naming a non-member are dropped, as the folder
/// backend does.
pub fn build(
    facts: Vec<(String, Fact)>,
    contents: &HashMap<String, Bytes>,
    size_of: &HashMap<Digest, u64>,
) -> Repos {
    let mut repos = Repos::new();
    for (key, fact) in facts {
        let Some(content) = contents.get(&key) else {
            continue;
        };
        match fact {
            Fact::Manifest { repo, digest } => match size_of.get(&digest) {
                Some(&size) => {
                    repos.entry(repo).or_default().manifests.insert(
                        digest,
                        ManifestInfo {
                            media_type: String::from_utf8_lossy(content).into_owned(),
                            size,
                        },
                    );
                }
                None => {
                    tracing::warn!("manifest {digest} is listed in {repo} but its blob is gone")
                }
            },
            Fact::Tag { repo, tag } => match String::from_utf8_lossy(content).trim().parse() {
                Ok(d) => {
                    repos.entry(repo).or_default().tags.insert(tag, d);
                }
                Err(_) => tracing::warn!("{key} does not hold a digest; ignoring the tag"),
            },
            Fact::Referrer {
                repo,
                subject,
                digest,
            } => match serde_json::from_slice::<Descriptor>(content) {
                Ok(desc) if desc.digest == digest => {
                    repos
                        .entry(repo)
                        .or_default()
                        .referrers
                        .entry(subject)
                        .or_default()
                        .insert(digest, desc);
                }
                _ => tracing::warn!("{key} is not the descriptor of {digest}; ignoring it"),
            },
        }
    }
    for (name, ri) in repos.iter_mut() {
        let members = ri.manifests.clone();
        ri.tags.retain(|tag, d| {
            let ok = members.contains_key(d);
            if !ok {
                tracing::debug!(
                    "{name}:{tag} points at {d}, which is not a member (yet); ignoring the tag"
                );
            }
            ok
        });
    }
    repos.retain(|_, ri: &mut RepoIndex| !ri.is_empty());
    repos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalised() {
        assert_eq!(Keys::new("").repositories(), "repositories/");
        assert_eq!(Keys::new("a/b").repositories(), "a/b/repositories/");
        assert_eq!(Keys::new("/a/b/").repositories(), "a/b/repositories/");
    }

    #[test]
    fn keys_mirror_the_data_folder_and_parse_back() {
        let k = Keys::new("reg");
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        assert_eq!(k.blob(&a), format!("reg/blobs/sha256/{}", a.hex()));
        let repo = "quay.io/org/app";
        let marker = k.marker(repo, &a);
        assert_eq!(
            marker,
            format!(
                "reg/repositories/quay.io/org/app/_manifests/sha256/{}",
                a.hex()
            )
        );
        assert_eq!(
            k.parse(&marker),
            Some(Fact::Manifest {
                repo: repo.into(),
                digest: a.clone()
            })
        );
        let tag = k.tag(repo, "1.0");
        assert_eq!(tag, "reg/repositories/quay.io/org/app/_tags/1.0");
        assert_eq!(
            k.parse(&tag),
            Some(Fact::Tag {
                repo: repo.into(),
                tag: "1.0".into()
            })
        );
        let r = k.referrer(repo, &a, &b);
        assert_eq!(
            r,
            format!(
                "reg/repositories/quay.io/org/app/_referrers/sha256-{}/sha256-{}",
                a.hex(),
                b.hex()
            )
        );
        assert_eq!(
            k.parse(&r),
            Some(Fact::Referrer {
                repo: repo.into(),
                subject: a.clone(),
                digest: b
            })
        );
        for junk in [
            "reg/blobs/sha256/00",
            "other/repositories/x/_tags/t",
            "reg/repositories/_tags/t",
            "reg/repositories/x/_tags/",
            "reg/repositories/x/_manifests/sha256/nothex",
            "reg/repositories/x/_odd/y",
            "reg/repositories/x/_tags/a/b",
        ] {
            assert_eq!(k.parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn threshold_decides_single_or_parts() {
        let mib = 1 << 20;
        assert_eq!(plan(0, 0), Plan::Single);
        assert_eq!(plan(64 * mib - 1, 64 * mib), Plan::Single);
        assert_eq!(
            plan(64 * mib, 64 * mib),
            Plan::Multipart {
                part_size: 64 * mib,
                parts: 1
            }
        );
        assert_eq!(
            plan(20 * mib + 1, 5 * mib),
            Plan::Multipart {
                part_size: 5 * mib,
                parts: 5
            }
        );
        // Never below S3's minimum part size.
        assert_eq!(
            plan(3 * mib, mib),
            Plan::Multipart {
                part_size: MIN_PART,
                parts: 1
            }
        );
        // Huge blobs stay within 10,000 parts.
        let big = 1 << 40;
        let Plan::Multipart { part_size, parts } = plan(big, 5 * mib) else {
            panic!("multipart expected")
        };
        assert!(parts <= MAX_PARTS && part_size * parts >= big);
    }

    #[test]
    fn index_from_facts_drops_what_is_not_whole() {
        let k = Keys::new("");
        let (a, b) = (Digest::sha256_of(b"a"), Digest::sha256_of(b"b"));
        let repo = "docker.io/library/x";
        let mut contents = HashMap::new();
        let mut facts = Vec::new();
        let mut add = |key: String, content: &[u8]| {
            contents.insert(key.clone(), Bytes::copy_from_slice(content));
            facts.push((key.clone(), k.parse(&key).unwrap()));
        };
        add(k.marker(repo, &a), b"application/x-a");
        add(k.marker(repo, &b), b"application/x-b");
        add(k.tag(repo, "ok"), a.to_string().as_bytes());
        add(
            k.tag(repo, "not-member"),
            Digest::sha256_of(b"z").to_string().as_bytes(),
        );
        add(k.tag(repo, "junk"), b"nope");
        let desc = Descriptor::new("application/x-a", a.clone(), 1);
        add(
            k.referrer(repo, &b, &a),
            &serde_json::to_vec(&desc).unwrap(),
        );
        let sizes: HashMap<Digest, u64> = [(a.clone(), 7)].into_iter().collect();
        let repos = build(facts, &contents, &sizes);
        let ri = &repos[repo];
        assert_eq!(ri.manifests.len(), 1, "b's blob is gone");
        assert_eq!(ri.manifests[&a].media_type, "application/x-a");
        assert_eq!(ri.manifests[&a].size, 7);
        assert_eq!(ri.tags.keys().collect::<Vec<_>>(), ["ok"]);
        assert_eq!(ri.referrers[&b][&a], desc);
    }
}
