//! The simple signing payload cosign and containers/image sign: which
//! manifest digest a signature is over and which image name it claims.
//!
//! ```json
//! {"critical": {"identity": {"docker-reference": "quay.io/org/app"},
//!               "image": {"docker-manifest-digest": "sha256:…"},
//!               "type": "cosign container image signature"},
//!  "optional": {…}}
//! ```
//!
//! Parsed strictly, as containers/image does: `critical` holds exactly
//! those three members and `type` is that string; `optional` may hold
//! anything and is ignored.

use airlift_oci::{Digest, Reference};
use serde::Deserialize;

/// The `critical.type` every cosign signature carries.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";

/// What a verified payload says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// `critical.identity.docker-reference`, as written.
    pub identity: String,
    /// `critical.image.docker-manifest-digest`.
    pub digest: Digest,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    critical: Critical,
    #[serde(default)]
    #[allow(dead_code)]
    optional: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// Parse a payload; the error says which part is wrong (never echoing it).
pub fn parse(bytes: &[u8]) -> Result<Payload, String> {
    let raw: Raw = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "its payload is not a simple signing document (line {}, column {}: {})",
            e.line(),
            e.column(),
            match e.classify() {
                serde_json::error::Category::Data => "missing or unexpected members",
                _ => "not JSON",
            }
        )
    })?;
    if raw.critical.kind != SIGNATURE_TYPE {
        return Err(format!(
            "its payload's critical.type is not {SIGNATURE_TYPE:?}"
        ));
    }
    let digest = raw
        .critical
        .image
        .docker_manifest_digest
        .parse::<Digest>()
        .map_err(|_| "its payload's docker-manifest-digest is not a digest".to_string())?;
    Ok(Payload {
        identity: raw.critical.identity.docker_reference,
        digest,
    })
}

/// Does a signature claiming `signed` (a docker reference) speak for
/// `image`? The repositories must be the same (after Docker's
/// normalisation: `nginx` is `docker.io/library/nginx`); a signed tag
/// must be the image's tag when the image is named by tag. So cosign's
/// signatures, which name the repository alone, cover every tag of it
/// (the digest is what they sign), and a signature for `app:1.0` does
/// not speak for `app:2.0`. This is containers/image's
/// `matchRepoDigestOrExact` widened to repository-only identities, as
/// its `matchRepository` does for them.
pub fn identity_matches(signed: &str, image: &Reference) -> bool {
    let Ok(signed) = signed.parse::<Reference>() else {
        return false;
    };
    if signed.name() != image.name() {
        return false;
    }
    if let Some(d) = signed.digest() {
        if image.digest().is_some_and(|i| i != d) {
            return false;
        }
    }
    match (signed.tag(), image.tag()) {
        (Some(s), Some(i)) => s == i,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn payload(identity: &str, digest: &str, kind: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "critical": {
                "identity": {"docker-reference": identity},
                "image": {"docker-manifest-digest": digest},
                "type": kind,
            },
            "optional": {"creator": "x"}
        }))
        .unwrap()
    }

    #[test]
    fn cosign_payloads_parse() {
        let p = parse(&payload("quay.io/org/app", D, SIGNATURE_TYPE)).unwrap();
        assert_eq!(p.identity, "quay.io/org/app");
        assert_eq!(p.digest.to_string(), D);
        let null_optional = br#"{"critical":{"identity":{"docker-reference":"a/b"},"image":{"docker-manifest-digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},"type":"cosign container image signature"},"optional":null}"#;
        assert!(parse(null_optional).is_ok());
    }

    #[test]
    fn odd_payloads_are_refused() {
        assert!(parse(&payload("a/b", D, "atomic container signature"))
            .unwrap_err()
            .contains("critical.type"));
        assert!(parse(&payload("a/b", "sha256:short", SIGNATURE_TYPE))
            .unwrap_err()
            .contains("not a digest"));
        let extra = br#"{"critical":{"identity":{"docker-reference":"a/b"},"image":{"docker-manifest-digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},"type":"cosign container image signature","extra":1}}"#;
        assert!(parse(extra).unwrap_err().contains("unexpected"));
        assert!(parse(b"\x00garbage").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn identities_match_repository_and_tag() {
        let r = |s: &str| s.parse::<Reference>().unwrap();
        let tagged = r("quay.io/org/app:1.0");
        assert!(identity_matches("quay.io/org/app", &tagged));
        assert!(identity_matches("quay.io/org/app:1.0", &tagged));
        assert!(!identity_matches("quay.io/org/app:2.0", &tagged));
        assert!(!identity_matches("quay.io/org/other", &tagged));
        assert!(!identity_matches("quay.io/org/app/sub", &tagged));
        assert!(!identity_matches("not a reference", &tagged));
        let hub = r("docker.io/library/nginx:1.25");
        assert!(identity_matches("nginx", &hub));
        assert!(identity_matches("index.docker.io/library/nginx:1.25", &hub));
        let pinned = r(&format!("quay.io/org/app@{D}"));
        assert!(identity_matches("quay.io/org/app:9", &pinned));
        let other = format!("sha256:{}", "b".repeat(64));
        assert!(!identity_matches(
            &format!("quay.io/org/app@{other}"),
            &pinned
        ));
    }
}
