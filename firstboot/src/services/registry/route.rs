//! Request paths and repository names: `/v2/<name>/(manifests|blobs|…)`
//! parsed by hand (names have `/`-separated components), and the many
//! upstreams mapped into one namespace.
//!
//! A stored repository name is `<host>/<path>` for content of an upstream
//! registry (`quay.io/org/app`, `docker.io/library/nginx`). Two ways in
//! resolve to it: containerd's mirror form `/v2/org/app/…?ns=quay.io` and
//! the registries.conf path form `/v2/quay.io/org/app/…` (the first
//! component is a host when it contains `.` or `:` or is `localhost`).
//! Docker Hub's `library/` rule applies to `docker.io` names.
//!
//! A name with neither a host nor `ns` (`/v2/myteam/app`) belongs to this
//! registry's own, local namespace and is stored as given (`myteam/app`).
//! It cannot collide with an upstream's content: a stored upstream name
//! always starts with a host component, and a local one never does.

use airlift_oci::reference::{
    looks_like_host, validate_registry, validate_repository, validate_tag, DOCKER_HUB,
};
use airlift_oci::Digest;

use super::error::{Code, RegistryError, Result};

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/manifests/<reference>`
    Manifest(String, String),
    /// `/v2/<name>/blobs/<digest>`
    Blob(String, String),
    /// `/v2/<name>/blobs/uploads/` (None) or `/v2/<name>/blobs/uploads/<id>`
    Upload(String, Option<String>),
    /// `/v2/<name>/tags/list`
    Tags(String),
    /// `/v2/<name>/referrers/<digest>`
    Referrers(String, String),
}

/// Split a raw (still percent-encoded) request path. Names are not
/// validated here; see [`resolve_name`].
pub fn parse_path(path: &str) -> Option<Target> {
    if path == "/v2/" || path == "/v2" {
        return Some(Target::Base);
    }
    let rest = path.strip_prefix("/v2/")?;
    if rest == "_catalog" {
        return Some(Target::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        // `/tags/list` ends the path, so no later marker can exist.
        return Some(Target::Tags(name.to_string()));
    }
    let markers = ["/manifests/", "/blobs/", "/referrers/"];
    let (pos, marker) = markers
        .iter()
        .filter_map(|m| rest.rfind(m).map(|p| (p, *m)))
        .max_by_key(|(p, _)| *p)?;
    let name = rest[..pos].to_string();
    let tail = &rest[pos + marker.len()..];
    match marker {
        "/blobs/" => {
            if tail == "uploads" || tail == "uploads/" {
                Some(Target::Upload(name, None))
            } else if let Some(id) = tail.strip_prefix("uploads/") {
                (!id.contains('/')).then(|| Target::Upload(name, Some(id.to_string())))
            } else {
                (!tail.contains('/')).then(|| Target::Blob(name, tail.to_string()))
            }
        }
        "/manifests/" => (!tail.contains('/')).then(|| Target::Manifest(name, tail.to_string())),
        _ => (!tail.contains('/')).then(|| Target::Referrers(name, tail.to_string())),
    }
}

/// Map a registry host to its canonical spelling (`docker.io` for Hub),
/// checked with the grammar the builder uses (airlift_oci::reference).
fn canonical_host(host: &str) -> Result<String> {
    validate_registry(host).map_err(|m| RegistryError::new(Code::NameInvalid, m))?;
    Ok(match host {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        h => h.to_string(),
    })
}

/// The stored repository name for a name in a URL and an optional
/// `ns` query parameter (see the module docs). Validates every part
/// against the spec's grammar, so the result is safe as a relative path.
pub fn resolve_name(url_name: &str, ns: Option<&str>) -> Result<String> {
    let invalid = |m: String| {
        RegistryError::new(Code::NameInvalid, m)
            .with_detail(serde_json::json!({ "name": url_name }))
    };
    let (host, repo) = match ns {
        Some(ns) => (Some(canonical_host(ns)?), url_name),
        None => match url_name.split_once('/') {
            Some((first, rest)) if looks_like_host(first) => (Some(canonical_host(first)?), rest),
            _ => (None, url_name),
        },
    };
    let repo = match &host {
        Some(h) if h == DOCKER_HUB && !repo.contains('/') => format!("library/{repo}"),
        _ => repo.to_string(),
    };
    validate_repository(&repo)
        .map_err(|m| invalid(format!("repository name {url_name:?}: {m}")))?;
    let full = match host {
        Some(h) => format!("{h}/{repo}"),
        None => repo,
    };
    if full.len() > 255 {
        return Err(invalid(format!(
            "repository name {full:?} is longer than 255 characters"
        )));
    }
    Ok(full)
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestRef {
    Tag(String),
    Digest(Digest),
}

/// Parse `<reference>` of a manifest path (a digest if it has a `:`).
pub fn parse_reference(reference: &str) -> Result<ManifestRef> {
    if reference.contains(':') {
        Ok(ManifestRef::Digest(parse_digest(reference)?))
    } else {
        validate_tag(reference).map_err(|m| {
            RegistryError::new(Code::ManifestInvalid, m)
                .with_status(axum::http::StatusCode::BAD_REQUEST)
        })?;
        Ok(ManifestRef::Tag(reference.to_string()))
    }
}

/// Parse a digest from a URL or query, as `DIGEST_INVALID` on failure.
pub fn parse_digest(s: &str) -> Result<Digest> {
    s.parse::<Digest>().map_err(|e| {
        RegistryError::new(Code::DigestInvalid, e.to_string())
            .with_detail(serde_json::json!({ "digest": s }))
    })
}

/// Decode `%XX` escapes (and `+` as space) of a query value; `None` if
/// an escape is broken or the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Query parameters, decoded; a broken escape drops that parameter.
pub fn query_params(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(p: &str) -> Option<Target> {
        parse_path(p)
    }

    #[test]
    fn splits_paths_at_the_last_marker() {
        assert_eq!(t("/v2/"), Some(Target::Base));
        assert_eq!(t("/v2/_catalog"), Some(Target::Catalog));
        assert_eq!(
            t("/v2/quay.io/org/app/manifests/1.0"),
            Some(Target::Manifest("quay.io/org/app".into(), "1.0".into()))
        );
        assert_eq!(
            t("/v2/a/manifests/b/blobs/sha256:x"),
            Some(Target::Blob("a/manifests/b".into(), "sha256:x".into()))
        );
        assert_eq!(
            t("/v2/a/b/blobs/uploads/"),
            Some(Target::Upload("a/b".into(), None))
        );
        assert_eq!(
            t("/v2/a/blobs/uploads/u-1"),
            Some(Target::Upload("a".into(), Some("u-1".into())))
        );
        assert_eq!(t("/v2/a/b/tags/list"), Some(Target::Tags("a/b".into())));
        assert_eq!(
            t("/v2/a/referrers/sha256:x"),
            Some(Target::Referrers("a".into(), "sha256:x".into()))
        );
        assert_eq!(t("/v3/a/manifests/x"), None);
        assert_eq!(t("/v2/a/other/x"), None);
    }

    #[test]
    fn resolves_upstream_namespaces() {
        let r = |n: &str, ns: Option<&str>| resolve_name(n, ns).unwrap();
        assert_eq!(r("org/app", Some("quay.io")), "quay.io/org/app");
        assert_eq!(r("quay.io/org/app", None), "quay.io/org/app");
        assert_eq!(r("nginx", Some("docker.io")), "docker.io/library/nginx");
        assert_eq!(r("docker.io/nginx", None), "docker.io/library/nginx");
        assert_eq!(r("index.docker.io/nginx", None), "docker.io/library/nginx");
        assert_eq!(
            r("bitnami/redis", Some("docker.io")),
            "docker.io/bitnami/redis"
        );
        assert_eq!(r("localhost:5000/x", None), "localhost:5000/x");
        assert_eq!(r("localhost/x", None), "localhost/x");
        // The local namespace: no host, no ns.
        assert_eq!(r("myteam/app", None), "myteam/app");
        assert_eq!(r("nginx", None), "nginx");
    }

    #[test]
    fn rejects_hostile_names() {
        for (n, ns) in [
            ("../../etc", None),
            ("%2e%2e/etc", None),
            ("a/../b", None),
            ("a//b", None),
            ("/abs", None),
            ("a\0b", None),
            ("Org/app", None),
            ("x", Some("..")),
            ("x", Some("a/b")),
            ("x", Some("Quay.io")),
            ("quay.io/../x", None),
            ("..:1/x", None),
        ] {
            let e = resolve_name(n, ns).unwrap_err();
            assert_eq!(e.code, Code::NameInvalid, "{n:?} {ns:?}");
        }
        let long = "a".repeat(250);
        assert!(resolve_name(&long, Some("quay.io")).is_err());
    }

    #[test]
    fn references_and_digests() {
        assert_eq!(
            parse_reference("1.0").unwrap(),
            ManifestRef::Tag("1.0".into())
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert!(matches!(
            parse_reference(&d).unwrap(),
            ManifestRef::Digest(_)
        ));
        assert_eq!(
            parse_reference("sha256:zz").unwrap_err().code,
            Code::DigestInvalid
        );
        assert!(parse_reference("..").is_err());
        assert_eq!(parse_digest("md5:x").unwrap_err().code, Code::DigestInvalid);
    }

    #[test]
    fn decodes_queries() {
        let q = query_params(Some("digest=sha256%3Aab&n=2&last=&bad=%zz&ns=quay.io"));
        assert_eq!(
            q,
            vec![
                ("digest".into(), "sha256:ab".into()),
                ("n".into(), "2".into()),
                ("last".into(), "".into()),
                ("ns".into(), "quay.io".into())
            ]
        );
        assert_eq!(percent_decode("%2e%2e"), Some("..".into()));
        assert_eq!(percent_decode("%2"), None);
    }
}
