//! Repository metadata in the data folder, one small file per fact, each
//! written atomically, so a crash leaves every fact either absent or
//! whole:
//!
//! ```text
//! DATA/repositories/<name>/_manifests/<alg>/<hex>      the manifest's media type
//! DATA/repositories/<name>/_tags/<tag>                 the tagged digest
//! DATA/repositories/<name>/_referrers/<alg>-<hex>/<alg>-<hex>   descriptor JSON
//! ```
//!
//! `<name>` is a validated repository name; its components never start
//! with `_`, so the metadata folders cannot clash with a nested name.
//! A manifest's blob is written before its marker, and the marker
//! before any tag or referrer pointing at it.

use std::fs;
use std::path::{Path, PathBuf};

use airlift_oci::documents::Descriptor;
use airlift_oci::{atomic, Digest};
use anyhow::{Context, Result};

use super::index::{ManifestInfo, RepoIndex, Repos};

const MANIFESTS: &str = "_manifests";
const TAGS: &str = "_tags";
const REFERRERS: &str = "_referrers";

/// The metadata tree under `DATA/repositories`.
#[derive(Debug, Clone)]
pub struct Meta {
    root: PathBuf,
}

fn flat(d: &Digest) -> String {
    format!("{}-{}", d.algorithm().as_str(), d.hex())
}

fn unflat(s: &str) -> Option<Digest> {
    let (alg, hex) = s.split_once('-')?;
    format!("{alg}:{hex}").parse().ok()
}

impl Meta {
    /// Use (and create) `root`.
    pub fn new(root: &Path) -> Result<Meta> {
        atomic::create_dir_all(root)?;
        Ok(Meta {
            root: root.to_path_buf(),
        })
    }

    fn repo(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn write(&self, path: &Path, data: &[u8]) -> Result<()> {
        let dir = path.parent().expect("metadata files live in a folder");
        atomic::create_dir_all(dir)?;
        atomic::write(path, data)
    }

    fn remove(&self, path: &Path) -> Result<()> {
        match fs::remove_file(path) {
            Ok(()) => atomic::sync_dir(path.parent().expect("has a parent")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
        }
    }

    fn marker(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo(name)
            .join(MANIFESTS)
            .join(d.algorithm().as_str())
            .join(d.hex())
    }

    fn referrer(&self, name: &str, subject: &Digest, d: &Digest) -> PathBuf {
        self.repo(name)
            .join(REFERRERS)
            .join(flat(subject))
            .join(flat(d))
    }

    pub fn put_manifest(&self, name: &str, d: &Digest, media_type: &str) -> Result<()> {
        self.write(&self.marker(name, d), media_type.as_bytes())
    }

    pub fn remove_manifest(&self, name: &str, d: &Digest) -> Result<()> {
        self.remove(&self.marker(name, d))
    }

    pub fn put_tag(&self, name: &str, tag: &str, d: &Digest) -> Result<()> {
        self.write(
            &self.repo(name).join(TAGS).join(tag),
            d.to_string().as_bytes(),
        )
    }

    pub fn remove_tag(&self, name: &str, tag: &str) -> Result<()> {
        self.remove(&self.repo(name).join(TAGS).join(tag))
    }

    pub fn put_referrer(&self, name: &str, subject: &Digest, desc: &Descriptor) -> Result<()> {
        let json = serde_json::to_vec(desc).context("encoding a referrer descriptor")?;
        self.write(&self.referrer(name, subject, &desc.digest), &json)
    }

    pub fn remove_referrer(&self, name: &str, subject: &Digest, d: &Digest) -> Result<()> {
        self.remove(&self.referrer(name, subject, d))
    }

    /// Read every repository back. `blob_size` gives a stored manifest's
    /// size (None if its blob is gone, which drops the marker's entry).
    pub fn load(&self, blob_size: &dyn Fn(&Digest) -> Option<u64>) -> Result<Repos> {
        let mut repos = Repos::new();
        self.walk(&self.root, "", &mut repos, blob_size)?;
        Ok(repos)
    }

    fn walk(
        &self,
        dir: &Path,
        name: &str,
        repos: &mut Repos,
        blob_size: &dyn Fn(&Digest) -> Option<u64>,
    ) -> Result<()> {
        let mut repo = RepoIndex::default();
        for entry in read_dir(dir)? {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            match file_name.as_str() {
                MANIFESTS => load_manifests(&path, &mut repo, blob_size)?,
                TAGS => load_tags(&path, &mut repo)?,
                REFERRERS => load_referrers(&path, &mut repo)?,
                n if n.starts_with('.') || n.starts_with('_') => {}
                n if entry.file_type()?.is_dir() => {
                    let child = if name.is_empty() {
                        n.to_string()
                    } else {
                        format!("{name}/{n}")
                    };
                    self.walk(&path, &child, repos, blob_size)?;
                }
                _ => {}
            }
        }
        // A tag whose manifest is not a member is dropped (cannot happen
        // with the write order, but a hand-edited folder may have it).
        let members = repo.manifests.clone();
        repo.tags.retain(|tag, d| {
            let ok = members.contains_key(d);
            if !ok {
                tracing::warn!("{name}:{tag} points at {d}, which is not stored; ignoring the tag");
            }
            ok
        });
        if !name.is_empty() && !repo.is_empty() {
            repos.insert(name.to_string(), repo);
        }
        Ok(())
    }
}

fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    v.sort_by_key(|e| e.file_name());
    Ok(v)
}

fn load_manifests(
    dir: &Path,
    repo: &mut RepoIndex,
    blob_size: &dyn Fn(&Digest) -> Option<u64>,
) -> Result<()> {
    for alg in read_dir(dir)? {
        for m in read_dir(&alg.path())? {
            let name = format!(
                "{}:{}",
                alg.file_name().to_string_lossy(),
                m.file_name().to_string_lossy()
            );
            let Ok(d) = name.parse::<Digest>() else {
                continue;
            };
            let media_type = fs::read_to_string(m.path())
                .with_context(|| format!("reading {}", m.path().display()))?;
            match blob_size(&d) {
                Some(size) => {
                    repo.manifests.insert(d, ManifestInfo { media_type, size });
                }
                None => tracing::warn!(
                    "manifest {d} is listed in {} but its blob is gone",
                    dir.display()
                ),
            }
        }
    }
    Ok(())
}

fn load_tags(dir: &Path, repo: &mut RepoIndex) -> Result<()> {
    for t in read_dir(dir)? {
        let tag = t.file_name().to_string_lossy().into_owned();
        if tag.starts_with('.') {
            continue;
        }
        let text = fs::read_to_string(t.path())
            .with_context(|| format!("reading {}", t.path().display()))?;
        let d: Digest = text
            .trim()
            .parse()
            .with_context(|| format!("{} does not hold a digest", t.path().display()))?;
        repo.tags.insert(tag, d);
    }
    Ok(())
}

fn load_referrers(dir: &Path, repo: &mut RepoIndex) -> Result<()> {
    for s in read_dir(dir)? {
        let Some(subject) = unflat(&s.file_name().to_string_lossy()) else {
            continue;
        };
        for r in read_dir(&s.path())? {
            if r.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let bytes =
                fs::read(r.path()).with_context(|| format!("reading {}", r.path().display()))?;
            let desc: Descriptor = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a descriptor", r.path().display()))?;
            repo.referrers
                .entry(subject.clone())
                .or_default()
                .insert(desc.digest.clone(), desc);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Meta::new(dir.path()).unwrap();
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        meta.put_manifest("quay.io/org/app", &a, "application/x-a")
            .unwrap();
        meta.put_manifest("quay.io/org/app", &b, "application/x-b")
            .unwrap();
        meta.put_manifest("quay.io/org/app/nested", &a, "application/x-a")
            .unwrap();
        meta.put_tag("quay.io/org/app", "1.0", &a).unwrap();
        meta.put_tag("quay.io/org/app", "dangling", &Digest::sha256_of(b"zz"))
            .unwrap();
        let mut r = Descriptor::new("application/x-b", b.clone(), 1);
        r.artifact_type = Some("application/x-sig".into());
        meta.put_referrer("quay.io/org/app", &a, &r).unwrap();
        let repos = meta.load(&|_| Some(1)).unwrap();
        assert_eq!(
            repos.keys().collect::<Vec<_>>(),
            ["quay.io/org/app", "quay.io/org/app/nested"]
        );
        let app = &repos["quay.io/org/app"];
        assert_eq!(app.tags.len(), 1);
        assert_eq!(app.tags["1.0"], a);
        assert_eq!(app.manifests[&b].media_type, "application/x-b");
        assert_eq!(app.referrers[&a][&b], r);

        meta.remove_tag("quay.io/org/app", "1.0").unwrap();
        meta.remove_referrer("quay.io/org/app", &a, &b).unwrap();
        meta.remove_manifest("quay.io/org/app", &b).unwrap();
        let app = &meta.load(&|_| Some(1)).unwrap()["quay.io/org/app"];
        assert!(app.tags.is_empty() && app.referrers.get(&a).is_none_or(|m| m.is_empty()));
        assert_eq!(app.manifests.len(), 1);
    }
}
