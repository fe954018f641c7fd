//! Image references (`quay.io/org/app:1.2@sha256:…`) with Docker's
//! normalisation rules, and the grammar checks the distribution spec
//! puts on repository names and tags.
//!
//! Every reference airlift stores is fully qualified: `nginx:1.25`
//! becomes `docker.io/library/nginx:1.25`, so images of different
//! registries never collide.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

/// The registry host short Docker Hub names belong to.
pub const DOCKER_HUB: &str = "docker.io";

/// A fully qualified image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not a usable reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("image reference {input:?} is invalid: {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: String,
}

fn err(input: &str, reason: impl Into<String>) -> ReferenceError {
    ReferenceError {
        input: input.to_string(),
        reason: reason.into(),
    }
}

impl Reference {
    /// Build from parts; the repository must already be normalised.
    pub fn new(
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<Digest>,
    ) -> Result<Self, ReferenceError> {
        let mut s = format!("{registry}/{repository}");
        if let Some(t) = tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s.parse()
    }

    /// The registry host (and port), normalised: `docker.io` for Docker Hub.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path within the registry (`library/nginx`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, the name a mirror serves it under.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What to ask the registry for: the digest if pinned, else the tag
    /// (`latest` when neither was given).
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The same reference pinned to `digest` (the tag is kept).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(err(input, "it is empty"));
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err(input, "it contains white space or control characters"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => (
                rest,
                Some(d.parse::<Digest>().map_err(|e| err(input, e.to_string()))?),
            ),
            None => (input, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            validate_tag(t).map_err(|reason| err(input, reason))?;
        }
        let (registry, repository) = split_registry(name);
        let registry = match registry {
            Some(r) => {
                validate_registry(r).map_err(|reason| err(input, reason))?;
                if r == "index.docker.io" || r == "registry-1.docker.io" {
                    DOCKER_HUB.to_string()
                } else {
                    r.to_string()
                }
            }
            None => DOCKER_HUB.to_string(),
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        };
        validate_repository(&repository).map_err(|reason| err(input, reason))?;
        if registry.len() + 1 + repository.len() > 255 {
            return Err(err(input, "the name is longer than 255 characters"));
        }
        Ok(Reference {
            registry,
            repository,
            tag: tag.map(str::to_string),
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Docker's rule, shared by the builder and the appliance's registry:
/// the first path component of a name is a registry host when it
/// contains `.` or `:`, is `localhost`, or has upper-case letters (which
/// [`validate_registry`] then refuses: hosts are stored lowercase).
pub fn looks_like_host(component: &str) -> bool {
    component.contains(['.', ':'])
        || component == "localhost"
        || component.chars().any(|c| c.is_ascii_uppercase())
}

fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest)) if looks_like_host(first) => (Some(first), rest),
        _ => (None, name),
    }
}

/// A registry host: lowercase DNS-ish labels with an optional `:port`
/// (1 to 65535). The appliance's registry stores names in lowercase, so
/// an upper-case host could never be pulled from it.
pub fn validate_registry(host: &str) -> Result<(), String> {
    let (h, port) = match host.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host, None),
    };
    if let Some(p) = port {
        let n = (p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<u32>().ok())
            .flatten();
        if !n.is_some_and(|n| (1..=65535).contains(&n)) {
            return Err(format!(
                "registry {host:?} has an invalid port (give 1 to 65535)"
            ));
        }
    }
    if h.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("registry host {host:?} must be lowercase"));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if h.is_empty() || !h.split('.').all(label_ok) {
        return Err(format!(
            "registry {host:?} is not a host name (letters, digits, '-' and '.', optional :port)"
        ));
    }
    Ok(())
}

/// A repository path: `/`-separated components of `[a-z0-9]` joined by
/// `.`, `_`, `__` or runs of `-` (the distribution spec's grammar).
pub fn validate_repository(repo: &str) -> Result<(), String> {
    if repo.is_empty() || repo.len() > 255 {
        return Err("the repository must be 1 to 255 characters".to_string());
    }
    for component in repo.split('/') {
        if !component_ok(component) {
            return Err(format!(
                "repository component {component:?} must be lowercase letters and digits, \
                 separated by '.', '_', '__' or '-'"
            ));
        }
    }
    Ok(())
}

fn component_ok(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__', or one or more '-'.
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= b.len() || !is_alnum(b[i]) {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), String> {
    let b = tag.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} must be 1 to 128 of A-Z a-z 0-9 _ . - and not start with . or -"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        s.parse::<Reference>().unwrap().to_string()
    }

    #[test]
    fn normalises_docker_hub_names() {
        assert_eq!(full("nginx:1.25"), "docker.io/library/nginx:1.25");
        assert_eq!(full("nginx"), "docker.io/library/nginx");
        assert_eq!(full("bitnami/redis:7"), "docker.io/bitnami/redis:7");
        assert_eq!(full("index.docker.io/nginx:1"), "docker.io/library/nginx:1");
        assert_eq!(full("docker.io/nginx:1"), "docker.io/library/nginx:1");
    }

    #[test]
    fn keeps_other_registries() {
        let r: Reference = "quay.io/org/app:1.2".parse().unwrap();
        assert_eq!(r.registry(), "quay.io");
        assert_eq!(r.repository(), "org/app");
        assert_eq!(r.tag(), Some("1.2"));
        assert_eq!(r.manifest_reference(), "1.2");
        let r: Reference = "localhost:5000/app".parse().unwrap();
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.manifest_reference(), "latest");
        let r: Reference = "registry.k8s.io/pause".parse().unwrap();
        assert_eq!(r.name(), "registry.k8s.io/pause");
    }

    #[test]
    fn digest_pins_win() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r: Reference = format!("quay.io/org/app:1.2@{d}").parse().unwrap();
        assert_eq!(r.manifest_reference(), d);
        assert_eq!(r.to_string(), format!("quay.io/org/app:1.2@{d}"));
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "Quay.io",
            "quay.io/Org/app",
            "quay.io/org/app:",
            "quay.io/org/app:-x",
            "quay.io/org//app",
            "quay.io/../etc",
            "quay.io/org/app@sha256:abc",
            "quay.io/org/app x",
            "quay.io/org/app_",
            "-bad.io/x",
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad:?} accepted");
        }
    }

    /// One grammar for the builder and the appliance's registry: an
    /// upper-case first component is a host (Docker's rule), and hosts
    /// must be lowercase with a port of 1 to 65535.
    #[test]
    fn hosts_are_lowercase_with_a_real_port() {
        for (bad, needle) in [
            ("UPPER/case:1", "lowercase"),
            ("Quay.io/org/app", "lowercase"),
            ("quay.io:99999/org/app", "port"),
            ("quay.io:0/org/app", "port"),
            ("quay.io:/org/app", "port"),
        ] {
            let e = bad.parse::<Reference>().unwrap_err().to_string();
            assert!(e.contains(needle), "{bad:?}: {e}");
        }
        assert!("localhost:65535/app:1".parse::<Reference>().is_ok());
        assert!(looks_like_host("UPPER") && looks_like_host("a.b") && looks_like_host("h:1"));
        assert!(looks_like_host("localhost") && !looks_like_host("library"));
        assert!(validate_registry("registry.example:5000").is_ok());
        assert!(validate_registry("Registry.example").is_err());
        assert!(validate_registry("registry.example:65536").is_err());
    }

    #[test]
    fn repository_grammar() {
        for ok in ["a", "a/b", "a.b/c__d", "a-----b", "library/nginx", "a_b"] {
            assert!(validate_repository(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "A", "a/", "/a", "a___b", "a..b", "a/./b", ".", "..", "a\0b",
        ] {
            assert!(validate_repository(bad).is_err(), "{bad:?}");
        }
    }
}
