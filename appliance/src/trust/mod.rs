//! Which keys images must be signed by, and where: the config's
//! `verify:` section as the appliance carries it (`appliance.json`'s
//! `trust`, and the mirror spec sent to joining nodes).
//!
//! A key covers **scopes**: a registry (`quay.io`) or a registry and
//! repository prefix (`quay.io/example`, `registry.airlift.test/team/app`),
//! matched on whole path components (`quay.io/example` covers
//! `quay.io/example/app`, not `quay.io/examples/app`). An image is
//! governed by the **most specific** scope that covers it, as
//! containers-policy.json(5) picks its scope, so the build's check and
//! the nodes' policy always agree. Each scope belongs to one key: the
//! policy.json that Debian 12's containers/image (5.23) reads has no
//! "signed by either key" requirement for sigstore signatures.
//!
//! The check itself: [`keys`] (PEM public keys, signature verification),
//! [`payload`] (the simple signing payload and identity matching) and
//! [`check`] (an image's `.sig` manifest), brought together by
//! [`Verifier`], which the builder and host0's registry both use.

pub mod check;
pub mod keys;
pub mod payload;

use std::collections::BTreeMap;

use airlift_oci::documents::Descriptor;
use airlift_oci::reference::{looks_like_host, validate_registry, validate_repository};
use airlift_oci::{Digest, Reference};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// Where the trusted public keys are written on host0 and nodes
/// (`<KEYS_DIR>/<name>.pub`).
pub const KEYS_DIR: &str = "/etc/airlift/keys";

/// The trusted keys and the scopes they govern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrustPolicy {
    pub keys: Vec<TrustedKey>,
    /// Write containers-policy.json(5), registries.d and the admission
    /// policies on host0 and nodes (the default). Off: keys are checked
    /// at build only.
    #[serde(default = "yes")]
    pub enforce: bool,
}

/// One trusted public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrustedKey {
    /// `[a-z0-9][a-z0-9._-]*`, at most 63 characters: names the key in
    /// errors, `bundle.json`, the status page and its file on the nodes.
    pub name: String,
    /// Registries or registry/repository prefixes it governs.
    pub scopes: Vec<String>,
    /// The public key, PEM (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo:
    /// ECDSA P-256 or Ed25519, as `cosign generate-key-pair` writes).
    pub public_key_pem: String,
}

fn yes() -> bool {
    true
}

impl TrustedKey {
    /// Where the key goes on host0 and nodes.
    pub fn path(&self) -> String {
        format!("{KEYS_DIR}/{}.pub", self.name)
    }
}

/// Is `name` a valid key name?
pub fn check_key_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if !ok {
        bail!(
            "key name {name:?} must be 1 to 63 characters of lowercase letters, digits, '.', '_' \
             and '-', starting with a letter or digit"
        );
    }
    Ok(())
}

/// Is `scope` a registry or a registry/repository prefix? Docker Hub is
/// written `docker.io` (short names are not scopes).
pub fn check_scope(scope: &str) -> Result<()> {
    let (registry, repo) = match scope.split_once('/') {
        Some((r, p)) => (r, Some(p)),
        None => (scope, None),
    };
    if !looks_like_host(registry) {
        bail!(
            "scope {scope:?} does not start with a registry host; a scope is a registry \
             (quay.io) or a registry and repository prefix (quay.io/example; Docker Hub is \
             docker.io/library/nginx)"
        );
    }
    if let Err(e) = validate_registry(registry) {
        bail!(
            "scope {scope:?}: {e}; a scope is a registry (quay.io) or a registry and repository \
             prefix (quay.io/example)"
        );
    }
    if let Some(repo) = repo {
        if let Err(e) = validate_repository(repo) {
            bail!("scope {scope:?}: {e}");
        }
    }
    Ok(())
}

/// Does `scope` cover the repository `name` (`registry/repository`)?
pub fn covers(scope: &str, name: &str) -> bool {
    name == scope
        || name
            .strip_prefix(scope)
            .is_some_and(|rest| rest.starts_with('/'))
}

impl TrustPolicy {
    /// Check names, scopes and that each scope has one key. The keys'
    /// PEM is parsed by whoever verifies with it (the builder).
    pub fn validate(&self) -> Result<()> {
        let mut names = BTreeMap::new();
        let mut scopes: BTreeMap<&str, &str> = BTreeMap::new();
        for k in &self.keys {
            check_key_name(&k.name)?;
            if names.insert(k.name.as_str(), ()).is_some() {
                bail!("key name {:?} is given twice; names must be unique", k.name);
            }
            if k.scopes.is_empty() {
                bail!(
                    "key {:?} has no scopes; list the registries or repository prefixes it signs",
                    k.name
                );
            }
            for s in &k.scopes {
                check_scope(s).map_err(|e| e.context(format!("key {:?}", k.name)))?;
                if let Some(other) = scopes.insert(s.as_str(), k.name.as_str()) {
                    bail!(
                        "scope {s:?} is given to keys {other:?} and {:?}; give each scope one key \
                         (containers-policy.json as Debian 12's podman, skopeo and CRI-O read it \
                         cannot accept a signature by either of two keys)",
                        k.name
                    );
                }
            }
        }
        Ok(())
    }

    /// The key governing `reference` and the scope that picked it: the
    /// most specific scope covering its `registry/repository`.
    pub fn key_for(&self, reference: &Reference) -> Option<(&TrustedKey, &str)> {
        let name = reference.name();
        self.keys
            .iter()
            .flat_map(|k| k.scopes.iter().map(move |s| (k, s.as_str())))
            .filter(|(_, s)| covers(s, &name))
            .max_by_key(|(_, s)| s.len())
    }
}

/// A [`TrustPolicy`] with its keys parsed, ready to check images.
#[derive(Debug, Clone)]
pub struct Verifier {
    policy: TrustPolicy,
    keys: BTreeMap<String, keys::PublicKey>,
}

/// What [`Verifier::verify`] decided for one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No key's scope covers it: nothing is required.
    OutOfScope,
    /// Signed by the key governing it.
    Verified(crate::VerifiedSignature),
    /// In `scope` of `key`, without a valid signature by it.
    Refused {
        key: String,
        scope: String,
        refusal: check::Refusal,
    },
}

impl Verifier {
    /// Validate the policy and parse its keys; errors name the key.
    pub fn new(policy: &TrustPolicy) -> Result<Verifier> {
        policy.validate()?;
        let mut keys = BTreeMap::new();
        for k in &policy.keys {
            let parsed = keys::PublicKey::from_pem(&k.public_key_pem)
                .with_context(|| format!("trusted key {:?}", k.name))?;
            keys.insert(k.name.clone(), parsed);
        }
        Ok(Verifier {
            policy: policy.clone(),
            keys,
        })
    }

    /// The policy it checks against.
    pub fn policy(&self) -> &TrustPolicy {
        &self.policy
    }

    /// The key name and scope governing `reference`, if any.
    pub fn governing(&self, reference: &Reference) -> Option<(&str, &str)> {
        self.policy
            .key_for(reference)
            .map(|(k, s)| (k.name.as_str(), s))
    }

    /// Check `reference` at `digest` (its manifest or index) against its
    /// key. `signatures` is the `sha256-<hex>.sig` manifest (its digest
    /// and bytes) when there is one; `read_payload` reads a layer's bytes.
    pub fn verify(
        &self,
        reference: &Reference,
        digest: &Digest,
        signatures: Option<(&Digest, &[u8])>,
        read_payload: &mut dyn FnMut(&Descriptor) -> Result<Vec<u8>>,
    ) -> Outcome {
        let Some((key, scope)) = self.policy.key_for(reference) else {
            return Outcome::OutOfScope;
        };
        let public = &self.keys[&key.name];
        let refused = |refusal| Outcome::Refused {
            key: key.name.clone(),
            scope: scope.to_string(),
            refusal,
        };
        match check::check(
            signatures.map(|(_, b)| b),
            read_payload,
            public,
            reference,
            digest,
        ) {
            Ok(v) => Outcome::Verified(crate::VerifiedSignature {
                subject: digest.clone(),
                key: key.name.clone(),
                identity: v.identity,
                signature: signatures
                    .map(|(d, _)| d.clone())
                    .expect("a verified image has a signature manifest"),
            }),
            Err(r) => refused(r),
        }
    }
}

impl Outcome {
    /// The refusal as one sentence naming the image, digest, key and
    /// reason; `None` unless refused.
    pub fn refusal_message(&self, reference: &Reference, digest: &Digest) -> Option<String> {
        match self {
            Outcome::Refused {
                key,
                scope,
                refusal,
            } => Some(format!(
                "image {reference} ({digest}) must be signed by key {key:?} (scope {scope}): \
                 {refusal}"
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, scopes: &[&str]) -> TrustedKey {
        TrustedKey {
            name: name.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            public_key_pem: String::new(),
        }
    }

    #[test]
    fn the_most_specific_scope_wins_on_whole_components() {
        let p = TrustPolicy {
            keys: vec![
                key("broad", &["quay.io"]),
                key("team", &["quay.io/example"]),
            ],
            enforce: true,
        };
        p.validate().unwrap();
        let r = |s: &str| s.parse::<Reference>().unwrap();
        assert_eq!(
            p.key_for(&r("quay.io/example/app:1")).unwrap().0.name,
            "team"
        );
        assert_eq!(
            p.key_for(&r("quay.io/examples/app:1")).unwrap().0.name,
            "broad"
        );
        assert_eq!(
            p.key_for(&r("quay.io/example:1")).unwrap().1,
            "quay.io/example"
        );
        assert!(p.key_for(&r("docker.io/library/busybox:1")).is_none());
    }

    #[test]
    fn bad_policies_are_named() {
        let two = TrustPolicy {
            keys: vec![key("a", &["quay.io/x"]), key("b", &["quay.io/x"])],
            enforce: true,
        };
        let e = format!("{:#}", two.validate().unwrap_err());
        assert!(e.contains("\"quay.io/x\"") && e.contains("one key"), "{e}");
        for (k, want) in [
            (key("Bad", &["quay.io"]), "key name"),
            (key("a", &[]), "no scopes"),
            (key("a", &["nginx"]), "registry"),
            (key("a", &["quay.io/Upper"]), "repository component"),
        ] {
            let p = TrustPolicy {
                keys: vec![k],
                enforce: true,
            };
            let e = format!("{:#}", p.validate().unwrap_err());
            assert!(e.contains(want), "{e}");
        }
    }
}
