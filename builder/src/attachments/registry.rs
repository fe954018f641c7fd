//! Finding attachments at a registry: the referrers API, the referrers
//! tag schema where a registry lacks the API, and the cosign tags.
//!
//! Per subject, in this order:
//! 1. `GET /v2/<name>/referrers/<digest>` (OCI distribution 1.1), every
//!    page (`Link: <…>; rel="next"`, same origin only, at most
//!    [`MAX_PAGES`]). No `artifactType` query is sent: the filter may list
//!    several types, so it is applied here, to the descriptors' own
//!    `artifactType` before anything is fetched and to the manifest's
//!    once it is.
//! 2. When the registry answers 404, 405 or 400 for that API, the
//!    referrers tag schema: the index tagged `sha256-<hex>` (404: none).
//! 3. The cosign tags `sha256-<hex>.sig`, `.att`, `.sbom` (404: none).
//!
//! Each attachment's manifest is checked against its digest (the
//! descriptor's, or `Docker-Content-Digest` for a tag) and every blob it
//! reaches streams into the store verified, with the retries, limits,
//! mirror, credentials and `insecure` setting of the image's source.

use std::collections::BTreeSet;
use std::path::Path;

use airlift_oci::documents::{media, Descriptor, Document};
use airlift_oci::{Digest, Reference};
use anyhow::{bail, Context, Result};

use super::{
    artifact_type, carried, cosign_tag, next_link, Carried, Filter, Found, COSIGN_SUFFIXES,
};
use crate::sources::registry::client::{self, Client};
use crate::sources::registry::{child_manifest, fetch_blobs};
use crate::store::Store;

/// Most pages of one referrers answer followed: a registry that keeps
/// linking on is broken or hostile.
pub const MAX_PAGES: usize = 64;

/// Where the image's source is (as in `SourceSpec::Registry`).
pub struct Source<'a> {
    pub reference: &'a Reference,
    pub mirror: Option<&'a str>,
    pub credentials: Option<&'a Path>,
    pub insecure: bool,
}

/// Copy into `store` every attachment of `subjects` the registry holds
/// that `filter` keeps; returns them in the order found.
pub async fn carry(
    source: &Source<'_>,
    subjects: &[Digest],
    filter: &Filter,
    store: &Store,
    concurrency: usize,
) -> Result<Vec<Carried>> {
    if !filter.carry {
        return Ok(Vec::new());
    }
    let client = Client::new(
        source.reference,
        source.mirror,
        source.credentials,
        source.insecure,
    )?;
    let image = source.reference.to_string();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for subject in subjects {
        for desc in referrers(&client, subject).await? {
            if let Some(t) = desc.artifact_type.as_deref() {
                if !filter.keeps(t) {
                    continue;
                }
            }
            if !seen.insert((subject.clone(), desc.digest.clone())) {
                continue;
            }
            let found = Found {
                subject: subject.clone(),
                manifest: Descriptor::new(&desc.media_type, desc.digest.clone(), desc.size),
                tag: None,
            };
            if let Some(c) = copy(&client, &found, None, filter, store, &image, concurrency).await?
            {
                out.push(c);
            }
        }
        for suffix in COSIGN_SUFFIXES {
            let tag = cosign_tag(subject, suffix);
            let Some(fetched) = client.manifest_if_any(&tag).await? else {
                continue;
            };
            let url = client.manifest_url(&tag);
            let digest = fetched.checked_digest(&url)?;
            if !seen.insert((subject.clone(), digest.clone())) {
                continue;
            }
            let media_type = fetched
                .content_type
                .clone()
                .filter(|c| client::is_manifest_type(c))
                .or_else(|| {
                    Document::parse(&fetched.bytes, None)
                        .ok()
                        .map(|d| d.media_type().to_string())
                })
                .unwrap_or_else(|| media::OCI_MANIFEST.to_string());
            let found = Found {
                subject: subject.clone(),
                manifest: Descriptor::new(&media_type, digest, fetched.bytes.len() as u64),
                tag: Some(tag),
            };
            if let Some(c) = copy(
                &client,
                &found,
                Some(fetched.bytes),
                filter,
                store,
                &image,
                concurrency,
            )
            .await?
            {
                out.push(c);
            }
        }
    }
    Ok(out)
}

/// What refers to `subject`: the referrers API's answer, or the
/// referrers tag schema's index where the registry lacks the API.
async fn referrers(client: &Client, subject: &Digest) -> Result<Vec<Descriptor>> {
    let first = client.referrers_url(subject);
    let mut url = first.clone();
    let mut out = Vec::new();
    for page in 0..MAX_PAGES {
        let Some(answer) = client.referrers_page(&url).await? else {
            if page == 0 {
                return tag_schema(client, subject).await;
            }
            bail!("{url}: the registry's next referrers page is missing (it linked to it)");
        };
        out.extend(index_entries(&answer.bytes, &url)?);
        match answer.link.as_deref().and_then(next_link) {
            Some(next) => url = resolve_link(client.base(), &next)?,
            None => return Ok(out),
        }
    }
    bail!("{first}: the registry links more than {MAX_PAGES} pages of referrers; refusing more")
}

/// The referrers tag schema: the index tagged `sha256-<hex>` lists what
/// refers to `<digest>` on registries without the referrers API.
async fn tag_schema(client: &Client, subject: &Digest) -> Result<Vec<Descriptor>> {
    let tag = cosign_tag(subject, "");
    let Some(fetched) = client.manifest_if_any(&tag).await? else {
        return Ok(Vec::new());
    };
    let url = client.manifest_url(&tag);
    fetched.checked_digest(&url)?;
    index_entries(&fetched.bytes, &url)
}

/// The descriptors of a referrers index.
fn index_entries(bytes: &[u8], url: &str) -> Result<Vec<Descriptor>> {
    match Document::parse(bytes, Some(media::OCI_INDEX)) {
        Ok(Document::Index(i)) => Ok(i.manifests),
        Ok(Document::Manifest(_)) => bail!("{url}: the referrers list is not an image index"),
        Err(e) => Err(e).with_context(|| format!("the referrers list from {url}")),
    }
}

/// The URL a `Link` target names: a path is resolved against `base`'s
/// origin; an absolute URL must have that same origin (credentials are
/// never sent elsewhere).
pub fn resolve_link(base: &str, link: &str) -> Result<String> {
    let home = origin(base);
    if link.starts_with('/') {
        return Ok(format!("{home}{link}"));
    }
    if link.starts_with("https://") || link.starts_with("http://") {
        if origin(link) == home {
            return Ok(link.to_string());
        }
        bail!(
            "the registry at {base} links the next referrers page to another origin ({}); \
             refusing to follow it",
            origin(link)
        );
    }
    bail!("the registry at {base} sent a referrers Link airlift cannot follow: {link:?}")
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    match url[after..].find('/') {
        Some(i) => &url[..after + i],
        None => url,
    }
}

/// Fetch `found`'s manifest (unless `bytes` are in hand), check it still
/// refers to its subject (an OCI referrer) and that `filter` keeps its
/// artifact type, then copy every blob it reaches.
async fn copy(
    client: &Client,
    found: &Found,
    bytes: Option<Vec<u8>>,
    filter: &Filter,
    store: &Store,
    image: &str,
    concurrency: usize,
) -> Result<Option<Carried>> {
    let digest = &found.manifest.digest;
    let url = client.manifest_url(&digest.to_string());
    if !media::is_manifest(&found.manifest.media_type)
        && !media::is_index(&found.manifest.media_type)
    {
        tracing::warn!(
            "{image}: attachment {digest} of {} has media type {:?}, not a manifest; skipped",
            found.subject,
            found.manifest.media_type
        );
        return Ok(None);
    }
    let bytes = match bytes {
        Some(b) => b,
        None => match store.lookup(digest)? {
            Some(b) => b,
            None => client.manifest(&digest.to_string()).await?.bytes,
        },
    };
    let actual = Digest::sha256_of(&bytes);
    if &actual != digest {
        bail!(
            "attachment {digest} of {image} from {url} failed verification: its bytes hash to \
             {actual}; the source is corrupt or was changed"
        );
    }
    let doc = Document::parse(&bytes, Some(&found.manifest.media_type))
        .with_context(|| format!("attachment {digest} of {image} from {url}"))?;
    if found.tag.is_none() && subject_of(&doc).as_ref() != Some(&found.subject) {
        tracing::warn!(
            "{image}: {url} is listed as referring to {} but its subject differs; skipped",
            found.subject
        );
        return Ok(None);
    }
    if !filter.keeps(&artifact_type(&doc)) {
        return Ok(None);
    }
    let source = format!("{url} (attachment of {image})");
    store.put_bytes(&found.manifest, &bytes, &source)?;
    let mut blobs: Vec<Descriptor> = Vec::new();
    match &doc {
        Document::Manifest(m) => blobs.extend(m.layers.iter().cloned().chain([m.config.clone()])),
        Document::Index(i) => {
            for child in &i.manifests {
                let child_doc = child_manifest(client, child, store, image).await?;
                blobs.extend(child_doc.children().into_iter().cloned());
            }
        }
    }
    let mut unique = BTreeSet::new();
    blobs.retain(|d| unique.insert(d.digest.clone()));
    fetch_blobs(client, &blobs, store, image, concurrency)
        .await
        .with_context(|| format!("attachment {digest} of {image}"))?;
    carried(store.layout(), found, &doc).map(Some)
}

/// The `subject` digest of a manifest or index, if it has one.
pub fn subject_of(doc: &Document) -> Option<Digest> {
    match doc {
        Document::Manifest(m) => m.subject.as_ref().map(|s| s.digest.clone()),
        Document::Index(i) => i
            .extra
            .get("subject")
            .and_then(|v| serde_json::from_value::<Descriptor>(v.clone()).ok())
            .map(|d| d.digest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_resolve_against_the_origin_only() {
        let base = "https://mirror.example:5000/prefix";
        assert_eq!(
            resolve_link(base, "/v2/app/referrers/sha256:ab?n=1&last=x").unwrap(),
            "https://mirror.example:5000/v2/app/referrers/sha256:ab?n=1&last=x"
        );
        assert_eq!(
            resolve_link(base, "https://mirror.example:5000/v2/next").unwrap(),
            "https://mirror.example:5000/v2/next"
        );
        let e = resolve_link(base, "https://evil.example/v2/next")
            .unwrap_err()
            .to_string();
        assert!(e.contains("another origin (https://evil.example)"), "{e}");
        assert!(resolve_link(base, "v2/next").is_err());
        assert_eq!(origin("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }
}
