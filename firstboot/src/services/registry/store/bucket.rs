//! Where the S3 backend ([`super::remote`]) keeps things: object keys
//! laid out like the data folder, what a metadata key means, how a blob
//! is sent (one PUT or parts), and the index rebuilt from what a listing
//! found. Pure: no requests here.

use std::collections::HashMap;

use airlift_oci::documents::Descriptor;
use airlift_oci::Digest;
use bytes::Bytes;

use super::index::{ManifestInfo, RepoIndex, Repos};

const MANIFESTS: &str = "_manifests";
const TAGS: &str = "_tags";
const REFERRERS: &str = "_referrers";

/// S3 refuses parts smaller than this (except the last).
pub const MIN_PART: u64 = 5 << 20;
/// S3 allows at most this many parts.
pub const MAX_PARTS: u64 = 10_000;

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
