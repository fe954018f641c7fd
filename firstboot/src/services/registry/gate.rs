//! The signature gate: a manifest in a repository that a trusted key's
//! scope covers is served only when it is signed by that key
//! ([`airlift_appliance::trust`], the config's `verify:` section as
//! `appliance.json`'s `trust`).
//!
//! Debian 12's containers/image and containerd 1.6/1.7 cannot verify
//! sigstore signatures themselves, so the registry every runtime pulls
//! through does it: an unsigned image pushed into a signed scope, or a
//! signed tag re-pushed with other content, is refused to every client
//! alike (containerd, Docker, k3s, CRI-O, podman, skopeo).
//!
//! On `GET` and `HEAD` of a manifest (by tag or digest) in a governed
//! repository:
//! - **attachments are served as they are**: a manifest with a
//!   `subject` (an OCI 1.1 referrer), anything a cosign tag
//!   (`sha256-<hex>.sig`, `.att`, `.sbom`) or a referrers tag-schema
//!   index (`sha256-<hex>`) points at; otherwise no client could fetch
//!   the signatures it needs. Only when it is no runnable image (no
//!   filesystem layer, see [`runnable`]): an unsigned image given a
//!   `subject` or pushed under such a tag is still refused;
//! - **otherwise its digest D must verify**: the `.sig` manifest at
//!   `sha256-<hex>.sig` in the same repository holds a signature by the
//!   governing key over D, for the reference pulled (`repo:tag` by tag,
//!   `repo@D` by digest; payloads read from the store, at most
//!   [`check::MAX_PAYLOAD`] bytes each); or, pulled by digest, D is
//!   listed by an index of the same repository that verifies (the
//!   platform manifests a client fetches after their index; up to
//!   [`MAX_NESTING`] levels of indexes);
//! - **refused**: 403 `DENIED` with a message naming the image, digest,
//!   key and reason (clients print it), a warning in the log, and one
//!   more in [`Gate::refusals`].
//!
//! A request bearing the **replication token** (host0's join token, as
//! `Authorization: Bearer`, which replicas send) is not gated: a replica
//! copies all host0 holds and gates its own pulls with the same policy.
//! Runtimes never send it.
//!
//! Not gated, by design: **pushes** (an unsigned image may be pushed;
//! pulling it is refused), **tag lists**, the **referrers API**, and
//! **blobs** (content-addressed; a runtime reaches them only through a
//! manifest it was served). Repositories no scope covers, and the local
//! namespace (names without a registry host), cost one scope lookup.
//!
//! Positive results are cached per repository, reference and digest,
//! stamped with the repository's last change
//! ([`Changes::repo_stamp`](super::store::Changes::repo_stamp)): any tag
//! or manifest written or deleted in that repository (a `.sig` removed)
//! makes them stale. Refusals are not cached. With S3 storage shared by
//! several instances, another instance's delete is seen at the next
//! index refresh (`--s3-refresh-secs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use airlift_appliance::trust::check::{self, signature_tag};
use airlift_appliance::{Outcome, TrustPolicy, Verifier};
use airlift_oci::documents::{Descriptor, Document};
use airlift_oci::reference::looks_like_host;
use airlift_oci::{Digest, Reference};
use anyhow::Context as _;

use super::error::{Code, RegistryError, Result};
use super::route::ManifestRef;
use super::store::Store;

/// The verifier the registry gates with under `policy` (the appliance's
/// `trust`): None without a policy or when it does not enforce.
pub fn verifier_for(policy: Option<&TrustPolicy>) -> anyhow::Result<Option<Arc<Verifier>>> {
    let Some(policy) = policy.filter(|p| p.enforce && !p.keys.is_empty()) else {
        return Ok(None);
    };
    let v = Verifier::new(policy).context("the appliance's trust policy (verify:)")?;
    tracing::info!(
        keys = policy.keys.len(),
        "signature gate on: manifests in the keys' scopes are served only when signed"
    );
    Ok(Some(Arc::new(v)))
}

/// How many index levels above a manifest pulled by digest may carry
/// its signature (an index of indexes of platform manifests: 2).
pub const MAX_NESTING: usize = 2;

/// Cached positive results kept at most (the cache is emptied when full).
pub const MAX_CACHED: usize = 16 * 1024;

/// Pulls refused by every gate of this process (the status reports it;
/// a gate outlives no store swap, this count does).
static REFUSED: AtomicU64 = AtomicU64::new(0);

/// The pulls refused since this process started.
pub fn refused_total() -> u64 {
    REFUSED.load(Ordering::Relaxed)
}

/// The gate in front of manifest reads.
pub struct Gate {
    verifier: Arc<Verifier>,
    /// Requests bearing this token are not gated (replication).
    bypass: Option<String>,
    cache: Mutex<Cache>,
    refusals: AtomicU64,
}

/// What a pull named: repository, tag (None by digest), digest.
type Key = (String, Option<String>, Digest);

/// Positive results, each with the repository stamp it was reached at.
#[derive(Debug, Default)]
struct Cache {
    passed: HashMap<Key, u64>,
}

impl Cache {
    /// Did `key` pass, with nothing in its repository changed since?
    fn hit(&self, key: &Key, stamp: u64) -> bool {
        self.passed.get(key) == Some(&stamp)
    }

    fn remember(&mut self, key: Key, stamp: u64) {
        if self.passed.len() >= MAX_CACHED {
            self.passed.clear();
        }
        self.passed.insert(key, stamp);
    }
}

/// Why a manifest is served, or the refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Served; `vouched` are the manifests it lists when it is an index
    /// that passed on its signature (or its parent's): they pass too.
    Serve {
        vouched: Vec<Digest>,
    },
    Refuse {
        key: String,
        message: String,
    },
}

impl Gate {
    pub fn new(verifier: Arc<Verifier>) -> Gate {
        Gate {
            verifier,
            bypass: None,
            cache: Mutex::default(),
            refusals: AtomicU64::new(0),
        }
    }

    /// Let requests with `Authorization: Bearer <token>` through ungated
    /// (the replicas' join token); None: every request is gated.
    pub fn with_bypass(mut self, token: Option<String>) -> Gate {
        self.bypass = token.filter(|t| !t.is_empty());
        self
    }

    /// Does `authorization` (the request's header) carry the bypass token?
    fn bypassed(&self, authorization: Option<&str>) -> bool {
        use subtle::ConstantTimeEq;
        let (Some(want), Some(given)) = (&self.bypass, authorization) else {
            return false;
        };
        let Some((scheme, token)) = given.split_once(' ') else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer")
            && bool::from(want.as_bytes().ct_eq(token.trim().as_bytes()))
    }

    /// The pulls this gate refused.
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }

    /// May the manifest `digest`, which `r` resolved to in `repo`, be
    /// served to a request with the `Authorization` header
    /// `authorization`? `Err` is the 403 to answer.
    pub async fn check(
        &self,
        store: &Store,
        repo: &str,
        r: &ManifestRef,
        digest: &Digest,
        authorization: Option<&str>,
    ) -> Result<()> {
        let Some(reference) = pulled_reference(repo, r, digest) else {
            return Ok(());
        };
        if self.verifier.governing(&reference).is_none() || self.bypassed(authorization) {
            return Ok(());
        }
        let tag = match r {
            ManifestRef::Tag(t) => Some(t.clone()),
            ManifestRef::Digest(_) => None,
        };
        let key: Key = (repo.to_string(), tag, digest.clone());
        // Read before anything is looked at: a change while deciding
        // leaves the result stamped stale.
        let stamp = store.changes().repo_stamp(repo);
        if self.cache().hit(&key, stamp) {
            return Ok(());
        }
        match self.decide(store, repo, &reference, r, digest).await? {
            Verdict::Serve { vouched } => {
                let mut cache = self.cache();
                cache.remember(key, stamp);
                // The platform manifests a client fetches next, by digest,
                // hit the cache instead of a scan of the repository's indexes.
                for child in vouched {
                    cache.remember((repo.to_string(), None, child), stamp);
                }
                Ok(())
            }
            Verdict::Refuse { key, message } => {
                self.refusals.fetch_add(1, Ordering::Relaxed);
                REFUSED.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(repository = %repo, %reference, %digest, key = %key,
                    "pull refused: {message}");
                Err(RegistryError::new(Code::Denied, message).with_detail(
                    serde_json::json!({ "name": repo, "digest": digest.to_string(), "key": key }),
                ))
            }
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn decide(
        &self,
        store: &Store,
        repo: &str,
        reference: &Reference,
        r: &ManifestRef,
        digest: &Digest,
    ) -> Result<Verdict> {
        let bytes = store.manifest_bytes(digest).await?;
        let attached = || {
            matches!(r, ManifestRef::Tag(t) if is_attachment_tag(t))
                || has_subject(&bytes)
                || store
                    .tags_at(repo, digest)
                    .iter()
                    .any(|t| is_attachment_tag(t))
        };
        if !runnable(&bytes) && attached() {
            // An attachment vouches for nothing it lists.
            return Ok(Verdict::Serve {
                vouched: Vec::new(),
            });
        }
        let outcome = self.verify(store, repo, reference, digest).await?;
        let Outcome::Refused { key, .. } = &outcome else {
            return Ok(Verdict::Serve {
                vouched: listed(&bytes),
            });
        };
        if matches!(r, ManifestRef::Digest(_))
            && self
                .listed_by_verified_index(store, repo, digest, MAX_NESTING)
                .await?
        {
            return Ok(Verdict::Serve {
                vouched: listed(&bytes),
            });
        }
        let key = key.clone();
        let message = outcome
            .refusal_message(reference, digest)
            .unwrap_or_default();
        Ok(Verdict::Refuse { key, message })
    }

    /// Is `digest` a child of an index of `repo` that verifies (pulled
    /// by digest)? An index verifies when it is signed, or is itself a
    /// child of one that verifies, [`MAX_NESTING`] levels up. Reads each
    /// index of the repository once per level.
    fn listed_by_verified_index<'a>(
        &'a self,
        store: &'a Store,
        repo: &'a str,
        digest: &'a Digest,
        levels: usize,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool>> + Send + 'a>> {
        Box::pin(async move {
            for index in store.member_indexes(repo) {
                if &index == digest {
                    continue;
                }
                let bytes = match store.manifest_bytes(&index).await {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(repository = %repo, %index, "reading an index for the signature gate: {e}");
                        continue;
                    }
                };
                if !lists(&bytes, digest) {
                    continue;
                }
                let Some(by_digest) =
                    pulled_reference(repo, &ManifestRef::Digest(index.clone()), &index)
                else {
                    continue;
                };
                if let Outcome::Verified(_) = self.verify(store, repo, &by_digest, &index).await? {
                    return Ok(true);
                }
                if levels > 1
                    && self
                        .listed_by_verified_index(store, repo, &index, levels - 1)
                        .await?
                {
                    return Ok(true);
                }
            }
            Ok(false)
        })
    }

    /// Check `digest`'s `.sig` manifest in `repo`, its payloads read
    /// from the store first (bounded), for `reference`.
    async fn verify(
        &self,
        store: &Store,
        repo: &str,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Outcome> {
        let sig_tag = ManifestRef::Tag(signature_tag(digest));
        let sig = match store.find(repo, &sig_tag).await? {
            Some((d, _)) => Some((store.manifest_bytes(&d).await?, d)),
            None => None,
        };
        let payloads = match &sig {
            Some((bytes, _)) => read_payloads(store, bytes).await,
            None => HashMap::new(),
        };
        let mut read = |d: &Descriptor| {
            payloads
                .get(&d.digest)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("blob {} is not stored here", d.digest))
        };
        Ok(self.verifier.verify(
            reference,
            digest,
            sig.as_ref().map(|(b, d)| (d, &b[..])),
            &mut read,
        ))
    }
}

/// The signature payloads a `.sig` manifest names, read from the store:
/// at most [`check::MAX_SIGNATURES`] layers of at most
/// [`check::MAX_PAYLOAD`] bytes. What cannot be read is left out (the
/// check then names it).
async fn read_payloads(store: &Store, sig_manifest: &[u8]) -> HashMap<Digest, Vec<u8>> {
    let mut out = HashMap::new();
    let Ok(Document::Manifest(m)) = Document::parse(sig_manifest, None) else {
        return out;
    };
    let layers = m
        .layers
        .iter()
        .filter(|l| l.media_type == check::SIMPLE_SIGNING && l.size <= check::MAX_PAYLOAD)
        .take(check::MAX_SIGNATURES);
    for l in layers {
        let Some(blob) = store.blob(&l.digest).await else {
            continue;
        };
        if blob.size > check::MAX_PAYLOAD {
            continue;
        }
        match store.read_blob(&blob).await {
            Ok(b) => {
                out.insert(l.digest.clone(), b.to_vec());
            }
            Err(e) => tracing::warn!(digest = %l.digest, "reading a signature payload: {e}"),
        }
    }
    out
}

/// The reference a pull of `r` (resolved to `digest`) in the stored
/// repository `repo` names: `repo:tag` or `repo@digest`. None for the
/// local namespace (no registry host: no scope can cover it).
pub fn pulled_reference(repo: &str, r: &ManifestRef, digest: &Digest) -> Option<Reference> {
    let (host, path) = repo.split_once('/')?;
    if !looks_like_host(host) {
        return None;
    }
    let reference = match r {
        ManifestRef::Tag(t) => Reference::new(host, path, Some(t), None),
        ManifestRef::Digest(_) => Reference::new(host, path, None, Some(digest.clone())),
    };
    reference.ok()
}

/// Is `tag` one of cosign's attachment tags (`sha256-<hex>.sig`, `.att`,
/// `.sbom`) or a referrers tag-schema tag (`sha256-<hex>`)?
pub fn is_attachment_tag(tag: &str) -> bool {
    let stem = [".sig", ".att", ".sbom"]
        .iter()
        .find_map(|s| tag.strip_suffix(s))
        .unwrap_or(tag);
    let Some((alg, hex)) = stem.split_once('-') else {
        return false;
    };
    format!("{alg}:{hex}").parse::<Digest>().is_ok()
}

/// Does the manifest document carry a `subject` (an OCI 1.1 referrer)?
pub fn has_subject(bytes: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct WithSubject {
        subject: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<WithSubject>(bytes).is_ok_and(|m| m.subject.is_some())
}

/// Could a runtime run the manifest document `bytes`: a manifest with a
/// filesystem layer (OCI `application/vnd.oci.image.layer.*`, Docker
/// `application/vnd.docker.image.rootfs.*`) or a WebAssembly module
/// (`application/wasm`, `application/vnd.wasm.*`), or anything unparsable?
/// Signatures, SBOMs, attestations and indexes are not (an index's
/// children are checked on their own when pulled).
pub fn runnable(bytes: &[u8]) -> bool {
    match Document::parse(bytes, None) {
        Ok(Document::Manifest(m)) => m.layers.iter().any(|l| {
            let mt = l.media_type.as_str();
            mt.starts_with("application/vnd.oci.image.layer.")
                || mt.starts_with("application/vnd.docker.image.rootfs.")
                || mt.starts_with("application/vnd.wasm.")
                || mt == "application/wasm"
        }),
        Ok(Document::Index(_)) => false,
        Err(_) => true,
    }
}

/// Is `bytes` an index listing `d` among its manifests?
pub fn lists(bytes: &[u8], d: &Digest) -> bool {
    matches!(Document::parse(bytes, None), Ok(Document::Index(i)) if i.manifests.iter().any(|m| &m.digest == d))
}

/// The manifests an index lists (none for a manifest).
fn listed(bytes: &[u8]) -> Vec<Digest> {
    match Document::parse(bytes, None) {
        Ok(Document::Index(i)) => i.manifests.into_iter().map(|m| m.digest).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> Digest {
        format!("sha256:{}", c.to_string().repeat(64))
            .parse()
            .unwrap()
    }

    #[test]
    fn attachment_tags_are_cosigns_and_the_referrers_schemas() {
        let hex = "a".repeat(64);
        for t in [
            format!("sha256-{hex}.sig"),
            format!("sha256-{hex}.att"),
            format!("sha256-{hex}.sbom"),
            format!("sha256-{hex}"),
        ] {
            assert!(is_attachment_tag(&t), "{t}");
        }
        for t in [
            "latest".to_string(),
            "1.0.sig".to_string(),
            format!("sha256-{}.sig", "a".repeat(63)),
            format!("sha256-{hex}.sig.sig"),
            format!("md5-{hex}.sig"),
            format!("sha256-{}", "A".repeat(64)),
        ] {
            assert!(!is_attachment_tag(&t), "{t}");
        }
    }

    #[test]
    fn the_pulled_reference_is_by_tag_or_by_digest_and_local_names_have_none() {
        let d = digest('b');
        let by_tag = pulled_reference("quay.io/org/app", &ManifestRef::Tag("1.0".into()), &d);
        assert_eq!(by_tag.unwrap().to_string(), "quay.io/org/app:1.0");
        let by_digest = pulled_reference("quay.io/org/app", &ManifestRef::Digest(d.clone()), &d);
        assert_eq!(
            by_digest.unwrap().to_string(),
            format!("quay.io/org/app@{d}")
        );
        let hub = pulled_reference(
            "docker.io/library/busybox",
            &ManifestRef::Tag("1".into()),
            &d,
        );
        assert_eq!(hub.unwrap().name(), "docker.io/library/busybox");
        assert!(pulled_reference("myteam/app", &ManifestRef::Tag("1".into()), &d).is_none());
        assert!(pulled_reference("nginx", &ManifestRef::Tag("1".into()), &d).is_none());
    }

    #[test]
    fn subjects_and_index_children_are_read_from_the_document() {
        let d = digest('c');
        let referrer = serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2,
                       "digest": Digest::sha256_of(b"{}").to_string()},
            "layers": [],
            "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "size": 1, "digest": d.to_string()},
        });
        assert!(has_subject(&serde_json::to_vec(&referrer).unwrap()));
        let mut plain = referrer.clone();
        plain.as_object_mut().unwrap().remove("subject");
        let plain = serde_json::to_vec(&plain).unwrap();
        assert!(!has_subject(&plain));
        assert!(!has_subject(b"not json"));

        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "size": 1, "digest": d.to_string()}],
        }))
        .unwrap();
        assert!(lists(&index, &d));
        assert!(!lists(&index, &digest('e')));
        assert!(!lists(&plain, &d), "a manifest lists nothing");

        assert!(!runnable(&plain), "no layers");
        assert!(!runnable(&index));
        let with = |mt: &str| {
            let mut m = referrer.clone();
            m["layers"] =
                serde_json::json!([{"mediaType": mt, "size": 1, "digest": d.to_string()}]);
            serde_json::to_vec(&m).unwrap()
        };
        assert!(runnable(&with(
            "application/vnd.oci.image.layer.v1.tar+gzip"
        )));
        assert!(runnable(&with(
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        )));
        assert!(runnable(&with(
            "application/vnd.wasm.content.layer.v1+wasm"
        )));
        assert!(!runnable(&with(check::SIMPLE_SIGNING)));
        assert!(!runnable(&with("application/vnd.dsse.envelope.v1+json")));
        assert!(runnable(b"not json"));
    }

    #[test]
    fn only_the_bypass_token_as_bearer_passes_ungated() {
        let policy = TrustPolicy {
            keys: vec![],
            enforce: true,
        };
        let g = Gate::new(Arc::new(Verifier::new(&policy).unwrap()));
        assert!(
            !g.bypassed(Some("Bearer join-token-0123456789")),
            "no token set"
        );
        let g = g.with_bypass(Some("join-token-0123456789".into()));
        assert!(g.bypassed(Some("Bearer join-token-0123456789")));
        assert!(g.bypassed(Some("bearer join-token-0123456789")));
        for other in [
            None,
            Some("Bearer join-token-012345678"),
            Some("Basic am9pbi10b2tlbi0wMTIzNDU2Nzg5"),
            Some("join-token-0123456789"),
            Some("Bearer "),
        ] {
            assert!(!g.bypassed(other), "{other:?}");
        }
        assert!(Gate::new(Arc::new(Verifier::new(&policy).unwrap()))
            .with_bypass(Some(String::new()))
            .bypass
            .is_none());
    }

    #[test]
    fn a_cached_pass_holds_only_at_its_stamp() {
        let mut c = Cache::default();
        let key: Key = ("quay.io/a".into(), Some("1".into()), digest('a'));
        assert!(!c.hit(&key, 0));
        c.remember(key.clone(), 7);
        assert!(c.hit(&key, 7));
        assert!(!c.hit(&key, 8), "the repository changed since");
        let by_digest: Key = ("quay.io/a".into(), None, digest('a'));
        assert!(
            !c.hit(&by_digest, 7),
            "another reference is checked on its own"
        );
        for i in 0..MAX_CACHED {
            c.remember(("r".into(), Some(i.to_string()), digest('f')), 1);
        }
        assert!(c.passed.len() <= MAX_CACHED);
    }
}
