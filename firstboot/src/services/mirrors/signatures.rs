//! The signature files: what host0 and every node get when the mirror
//! spec carries a trust policy ([`MirrorSpec::trust`]). Pure renderers;
//! what the machine's containers/image can verify is an input
//! ([`Sigstore`], found by [`super::signature_probe`]).
//!
//! | file | when |
//! |---|---|
//! | `/etc/airlift/keys/<name>.pub` | always (with `enforce: false`, only these) |
//! | `/etc/airlift/policy/cluster-image-policy.yaml` | `enforce`: sigstore policy-controller `ClusterImagePolicy`s, one per key |
//! | `/etc/airlift/policy/kyverno-cluster-policy.yaml` | `enforce`: a Kyverno `ClusterPolicy`, one `verifyImages` rule per key |
//! | `/etc/containers/policy.json` | `enforce` and containers/image verifies sigstore: `sigstoreSigned` per scope, merged into the user's |
//! | `/etc/containers/registries.d/airlift.yaml` | as policy.json: `use-sigstore-attachments` for the mirrors and scopes |
//!
//! The admission policies are for the cluster's admin to `kubectl apply`;
//! neither needs a transparency log or Fulcio (the keys are inline and no
//! Rekor is named), so they work offline.
//!
//! policy.json is written only where containers/image can verify sigstore
//! signatures: a `sigstoreSigned` requirement on one that cannot (Debian
//! 12's, built with sigstore disabled) refuses every image in scope,
//! signed or not. There host0's registry enforces the signatures for
//! every runtime, and [`warning`] says so. containerd (1.6/1.7) cannot
//! verify signatures at pull at all: nothing is written for it.

use std::collections::BTreeMap;

use airlift_appliance::trust::{TrustPolicy, TrustedKey};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{FileKind, MirrorSpec, RenderedFile, HEADER};

/// The admission policies' folder.
pub const POLICY_DIR: &str = "/etc/airlift/policy";
/// The sigstore policy-controller policy.
pub const POLICY_CONTROLLER: &str = "/etc/airlift/policy/cluster-image-policy.yaml";
/// The Kyverno policy.
pub const KYVERNO: &str = "/etc/airlift/policy/kyverno-cluster-policy.yaml";
/// containers-policy.json(5), read by podman, CRI-O, skopeo and buildah.
pub const POLICY_JSON: &str = "/etc/containers/policy.json";
/// containers-registries.d(5) drop-in: where sigstore signatures are looked up.
pub const REGISTRIES_D: &str = "/etc/containers/registries.d/airlift.yaml";

/// What the machine's containers/image can do with sigstore signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "detail")]
pub enum Sigstore {
    /// It verifies them: policy.json and registries.d are written.
    Verifies,
    /// It was built with sigstore disabled (Debian 12's skopeo, podman
    /// and CRI-O): a `sigstoreSigned` requirement refuses every image.
    Disabled,
    /// No skopeo on the machine: no containers/image tools to configure.
    NoTools,
    /// The probe could not tell (what it saw); nothing is written.
    Unknown(String),
}

impl Sigstore {
    /// Why policy.json is or is not written, in one sentence.
    pub fn policy_json_reason(&self) -> String {
        match self {
            Sigstore::Verifies => {
                "containers/image on this machine verifies sigstore signatures".to_string()
            }
            Sigstore::Disabled => "this machine's containers/image (skopeo, podman, CRI-O) was \
                                   built with sigstore disabled, so a sigstoreSigned requirement \
                                   would refuse every image, signed or not"
                .to_string(),
            Sigstore::NoTools => {
                "no containers/image tools (skopeo) on this machine to configure".to_string()
            }
            Sigstore::Unknown(what) => {
                format!("the sigstore probe with skopeo could not tell ({what})")
            }
        }
    }
}

/// Is policy.json (and registries.d) to be written for `trust`?
pub fn writes_policy_json(trust: &TrustPolicy, sigstore: &Sigstore) -> bool {
    trust.enforce && *sigstore == Sigstore::Verifies
}

/// Every signature file for `spec` (none without a trust policy).
pub fn files(spec: &MirrorSpec, sigstore: &Sigstore) -> Vec<RenderedFile> {
    let Some(trust) = &spec.trust else {
        return Vec::new();
    };
    let mut files: Vec<RenderedFile> = trust
        .keys
        .iter()
        .map(|k| RenderedFile::owned(k.path(), pem_file(&k.public_key_pem)))
        .collect();
    if !trust.enforce {
        return files;
    }
    files.push(RenderedFile::owned(
        POLICY_CONTROLLER,
        render_policy_controller(trust),
    ));
    files.push(RenderedFile::owned(KYVERNO, render_kyverno(trust)));
    if writes_policy_json(trust, sigstore) {
        files.push(RenderedFile {
            path: POLICY_JSON.into(),
            content: render_policy_json(trust),
            kind: FileKind::MergePolicyJson,
        });
        files.push(RenderedFile::owned(REGISTRIES_D, render_registries_d(spec)));
    }
    files
}

/// What [`super::apply()`] reports when the trust policy asks for
/// enforcement but policy.json is not written: why, and who enforces.
/// None when policy.json is written, enforcement is off or the machine
/// has no containers/image tools.
pub fn warning(spec: &MirrorSpec, sigstore: &Sigstore) -> Option<String> {
    let trust = spec.trust.as_ref()?;
    if !trust.enforce || matches!(sigstore, Sigstore::Verifies | Sigstore::NoTools) {
        return None;
    }
    Some(format!(
        "{POLICY_JSON} not written: {}; host0's registry enforces the signatures for every \
         runtime (it refuses images in scope without a valid signature by their key)",
        sigstore.policy_json_reason()
    ))
}

/// The trust state the status page shows: the keys, their scopes and
/// files, and whether policy.json is written (or why not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TrustStatus {
    /// Signatures enforced on the machines (else keys are only written).
    pub enforce: bool,
    pub keys: Vec<KeyStatus>,
    /// Is containers-policy.json written here?
    pub policy_json: bool,
    /// Why (or why not).
    pub policy_json_reason: String,
    /// The admission policies written for the cluster's admin.
    pub admission_policies: Vec<String>,
}

/// One trusted key, as the status page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct KeyStatus {
    pub name: String,
    pub scopes: Vec<String>,
    /// Where it is written.
    pub path: String,
}

/// The trust state for `trust` on a machine whose containers/image can
/// do `sigstore` (pure).
pub fn trust_status(trust: &TrustPolicy, sigstore: &Sigstore) -> TrustStatus {
    let policy_json = writes_policy_json(trust, sigstore);
    TrustStatus {
        enforce: trust.enforce,
        keys: trust
            .keys
            .iter()
            .map(|k| KeyStatus {
                name: k.name.clone(),
                scopes: k.scopes.clone(),
                path: k.path(),
            })
            .collect(),
        policy_json,
        policy_json_reason: if trust.enforce {
            sigstore.policy_json_reason()
        } else {
            "signature enforcement is off (verify: enforce: false): keys only".to_string()
        },
        admission_policies: if trust.enforce {
            vec![POLICY_CONTROLLER.to_string(), KYVERNO.to_string()]
        } else {
            Vec::new()
        },
    }
}

/// A key as a file: its PEM with one trailing newline.
fn pem_file(pem: &str) -> String {
    let mut s = pem.trim().to_string();
    s.push('\n');
    s
}

/// Scopes of keys other than `key` that are more specific than `scope`
/// (and so govern part of what `scope` covers).
fn narrower_elsewhere<'a>(trust: &'a TrustPolicy, key: &TrustedKey, scope: &str) -> Vec<&'a str> {
    trust
        .keys
        .iter()
        .filter(|k| k.name != key.name)
        .flat_map(|k| k.scopes.iter().map(String::as_str))
        .filter(|s| s.len() > scope.len() && airlift_appliance::trust::covers(scope, s))
        .collect()
}

/// `docker.io/...` as go-containerregistry (and so policy-controller)
/// spells it after normalising: `index.docker.io/...`.
fn policy_controller_name(scope: &str) -> String {
    match scope.strip_prefix("docker.io") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("index.docker.io{rest}"),
        _ => scope.to_string(),
    }
}

/// policy-controller globs for a scope. It matches globs against the
/// whole reference with its tag or digest (`quay.io/org/app:1`,
/// `…@sha256:…`); `**` crosses `/`, `*` does not, and `@` cannot be
/// written in a glob. A registry gets `<host>/**`; a repository prefix
/// also `<scope>*`, which catches the repository itself with any tag or
/// digest (and, unavoidably, sibling repositories whose name merely
/// starts with it, such as `<scope>-old`).
pub fn policy_controller_globs(scope: &str) -> Vec<String> {
    let name = policy_controller_name(scope);
    if scope.contains('/') {
        vec![format!("{name}/**"), format!("{name}*")]
    } else {
        vec![format!("{name}/**")]
    }
}

/// The `ClusterImagePolicy` documents, one per key.
pub fn render_policy_controller(trust: &TrustPolicy) -> String {
    let mut out = format!(
        "{HEADER}\n# sigstore policy-controller: `kubectl apply -f` this file. Each policy \
         requires a signature by\n# its key; no `ctlog` is named, so no transparency log is \
         consulted (offline).\n"
    );
    for key in &trust.keys {
        let nested: Vec<String> = key
            .scopes
            .iter()
            .flat_map(|s| narrower_elsewhere(trust, key, s))
            .map(str::to_string)
            .collect();
        let images: Vec<Value> = key
            .scopes
            .iter()
            .flat_map(|s| policy_controller_globs(s))
            .map(|g| json!({ "glob": g }))
            .collect();
        let doc = json!({
            "apiVersion": "policy.sigstore.dev/v1beta1",
            "kind": "ClusterImagePolicy",
            "metadata": {
                "name": format!("airlift-{}", key.name),
                "labels": { "app.kubernetes.io/managed-by": "airlift" },
            },
            "spec": {
                "mode": "enforce",
                "images": images,
                "authorities": [{
                    "name": key.name,
                    "key": { "data": pem_file(&key.public_key_pem), "hashAlgorithm": "sha256" },
                }],
            },
        });
        out.push_str("---\n");
        let algorithm = airlift_appliance::trust::keys::PublicKey::from_pem(&key.public_key_pem)
            .map(|k| k.algorithm());
        if let Ok(a @ "Ed25519") = algorithm {
            out.push_str(&format!(
                "# Key {:?} is {a}: policy-controller's documentation lists ECDSA keys only; \
                 check your version accepts it.\n",
                key.name
            ));
        }
        if !nested.is_empty() {
            out.push_str(&format!(
                "# Every matching policy must pass: images under {} match this policy too and \
                 need both keys' signatures here.\n",
                nested.join(", ")
            ));
        }
        out.push_str(&yaml(&doc));
    }
    out
}

/// Kyverno image references for a scope: the repository itself with a
/// tag or digest, and everything under it (`*` crosses `/` in Kyverno).
pub fn kyverno_references(scope: &str) -> Vec<String> {
    if scope.contains('/') {
        vec![
            format!("{scope}:*"),
            format!("{scope}@*"),
            format!("{scope}/*"),
        ]
    } else {
        vec![format!("{scope}/*")]
    }
}

/// The Kyverno `ClusterPolicy`: one rule per key, its scopes as image
/// references, narrower scopes of other keys skipped (the most specific
/// scope decides, as everywhere in airlift).
pub fn render_kyverno(trust: &TrustPolicy) -> String {
    let rules: Vec<Value> = trust
        .keys
        .iter()
        .map(|key| {
            let refs: Vec<String> = key
                .scopes
                .iter()
                .flat_map(|s| kyverno_references(s))
                .collect();
            let skip: Vec<String> = key
                .scopes
                .iter()
                .flat_map(|s| narrower_elsewhere(trust, key, s))
                .flat_map(kyverno_references)
                .collect();
            let mut verify = json!({
                "imageReferences": refs,
                "failureAction": "Enforce",
                "mutateDigest": true,
                "verifyDigest": true,
                "required": true,
                "attestors": [{
                    "count": 1,
                    "entries": [{
                        "keys": {
                            "publicKeys": pem_file(&key.public_key_pem),
                            "signatureAlgorithm": "sha256",
                            "rekor": { "ignoreTlog": true },
                            "ctlog": { "ignoreSCT": true },
                        },
                    }],
                }],
            });
            if !skip.is_empty() {
                verify["skipImageReferences"] = json!(skip);
            }
            json!({
                "name": format!("airlift-{}", key.name),
                "match": { "any": [{ "resources": { "kinds": ["Pod"] } }] },
                "verifyImages": [verify],
            })
        })
        .collect();
    let doc = json!({
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {
            "name": "airlift-verify-images",
            "labels": { "app.kubernetes.io/managed-by": "airlift" },
        },
        "spec": {
            "validationFailureAction": "Enforce",
            "background": false,
            "webhookTimeoutSeconds": 30,
            "rules": rules,
        },
    });
    format!(
        "{HEADER}\n# Kyverno: `kubectl apply -f` this file. Keys inline; the transparency log \
         and SCT checks are off\n# (signatures made offline with a key have neither).\n{}",
        yaml(&doc)
    )
}

fn yaml(v: &Value) -> String {
    serde_yaml::to_string(v).expect("a JSON value always serialises as YAML")
}

/// The `sigstoreSigned` requirement for `key`: its file, and the signed
/// identity naming the same repository as the image pulled.
pub fn requirement(key: &TrustedKey) -> Value {
    json!([{
        "type": "sigstoreSigned",
        "keyPath": key.path(),
        "signedIdentity": { "type": "matchRepository" },
    }])
}

/// Our scopes under `transports.docker`, scope -> requirement.
fn docker_scopes(trust: &TrustPolicy) -> BTreeMap<String, Value> {
    trust
        .keys
        .iter()
        .flat_map(|k| k.scopes.iter().map(move |s| (s.clone(), requirement(k))))
        .collect()
}

/// policy.json for a machine that has none: the containers tools'
/// default (accept anything) with our scopes required signed.
pub fn render_policy_json(trust: &TrustPolicy) -> String {
    let doc = json!({
        "default": [{ "type": "insecureAcceptAnything" }],
        "transports": { "docker": docker_scopes(trust) },
    });
    pretty(&doc)
}

/// Merge our scopes into the user's policy.json: a scope we govern is
/// replaced, every other scope, transport and the default are kept.
/// Errors name the field, never echo the file.
pub fn merge_policy_json(existing: &str, trust: &TrustPolicy) -> Result<String> {
    let mut doc: Value = serde_json::from_str(existing)
        .context("not valid JSON; fix it (see containers-policy.json(5)) or move it away")?;
    let Some(top) = doc.as_object_mut() else {
        bail!("the top level is not a JSON object; see containers-policy.json(5)");
    };
    if !top.contains_key("default") {
        bail!(
            "it has no `default` requirement, which containers/image requires; add \
             \"default\": [{{\"type\": \"reject\"}}] or [{{\"type\": \"insecureAcceptAnything\"}}]"
        );
    }
    let transports = top
        .entry("transports")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(transports) = transports.as_object_mut() else {
        bail!("`transports` is not a JSON object; see containers-policy.json(5)");
    };
    let docker = transports
        .entry("docker")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(docker) = docker.as_object_mut() else {
        bail!("`transports.docker` is not a JSON object; see containers-policy.json(5)");
    };
    for (scope, req) in docker_scopes(trust) {
        docker.insert(scope, req);
    }
    Ok(pretty(&doc))
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("JSON always serialises");
    s.push('\n');
    s
}

/// The registries.d drop-in: look sigstore signatures up as attachments
/// (`sha256-<hex>.sig`) on airlift's mirrors and on the scoped upstreams.
pub fn render_registries_d(spec: &MirrorSpec) -> String {
    let mut docker: BTreeMap<String, Value> = BTreeMap::new();
    for e in &spec.registries {
        docker.insert(e.host.clone(), json!({ "use-sigstore-attachments": true }));
    }
    if let Some(trust) = &spec.trust {
        for s in trust.keys.iter().flat_map(|k| &k.scopes) {
            docker.insert(s.clone(), json!({ "use-sigstore-attachments": true }));
        }
    }
    format!(
        "{HEADER}\n# containers-registries.d(5): sigstore signatures of images pulled through \
         airlift.\n{}",
        yaml(&json!({ "docker": docker }))
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::services::mirrors::Endpoint;

    pub(crate) const P256_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAERRL+kM8n3+BBPSDquKFPaYGkxWWq\nrLDLSPXGHDBUHchd/0zWvYOJc14o+08lZtGXy5M1MO2lCp+OZzihCjzk6g==\n-----END PUBLIC KEY-----\n";
    pub(crate) const ED25519_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAmXC2gkYrqJ89R+QhHK68b/ZMXgnR6e1VLjuuF+Hz3hE=\n-----END PUBLIC KEY-----";

    pub(crate) fn trust(enforce: bool) -> TrustPolicy {
        TrustPolicy {
            keys: vec![
                TrustedKey {
                    name: "broad".into(),
                    scopes: vec!["quay.io".into(), "docker.io/library".into()],
                    public_key_pem: P256_PEM.into(),
                },
                TrustedKey {
                    name: "team".into(),
                    scopes: vec!["quay.io/example".into()],
                    public_key_pem: ED25519_PEM.into(),
                },
            ],
            enforce,
        }
    }

    fn spec(enforce: bool) -> MirrorSpec {
        MirrorSpec::new(
            vec![
                Endpoint::https("10.0.0.1:5000"),
                Endpoint::http("10.0.0.2:5000"),
            ],
            vec!["quay.io".into(), "docker.io".into()],
            None,
        )
        .with_trust(Some(trust(enforce)))
    }

    fn paths(files: &[RenderedFile]) -> Vec<String> {
        files.iter().map(|f| f.path.display().to_string()).collect()
    }

    #[test]
    fn what_is_written_depends_on_enforce_and_the_probe() {
        let keys = ["/etc/airlift/keys/broad.pub", "/etc/airlift/keys/team.pub"];
        assert!(files(&spec(true).with_trust(None), &Sigstore::Verifies).is_empty());
        assert_eq!(paths(&files(&spec(false), &Sigstore::Verifies)), keys);
        let disabled = paths(&files(&spec(true), &Sigstore::Disabled));
        assert_eq!(disabled, [keys[0], keys[1], POLICY_CONTROLLER, KYVERNO]);
        for s in [Sigstore::NoTools, Sigstore::Unknown("x".into())] {
            assert_eq!(paths(&files(&spec(true), &s)), disabled);
        }
        let full = files(&spec(true), &Sigstore::Verifies);
        assert_eq!(
            paths(&full),
            [
                keys[0],
                keys[1],
                POLICY_CONTROLLER,
                KYVERNO,
                POLICY_JSON,
                REGISTRIES_D
            ]
        );
        assert_eq!(full[4].kind, FileKind::MergePolicyJson);
        assert_eq!(full[1].content, format!("{ED25519_PEM}\n"));
    }

    #[test]
    fn trust_status_says_what_is_written_and_why() {
        let s = trust_status(&trust(true), &Sigstore::Disabled);
        assert!(s.enforce && !s.policy_json);
        assert!(s.policy_json_reason.contains("sigstore disabled"));
        assert_eq!(s.keys[1].path, "/etc/airlift/keys/team.pub");
        assert_eq!(s.keys[0].scopes, ["quay.io", "docker.io/library"]);
        assert_eq!(s.admission_policies, [POLICY_CONTROLLER, KYVERNO]);
        assert!(trust_status(&trust(true), &Sigstore::Verifies).policy_json);
        let off = trust_status(&trust(false), &Sigstore::Verifies);
        assert!(!off.policy_json && off.admission_policies.is_empty());
        assert!(off.policy_json_reason.contains("off"));
    }

    #[test]
    fn the_warning_names_why_and_who_enforces() {
        let w = warning(&spec(true), &Sigstore::Disabled).unwrap();
        assert!(
            w.contains(POLICY_JSON) && w.contains("sigstore disabled"),
            "{w}"
        );
        assert!(w.contains("host0's registry enforces"), "{w}");
        let w = warning(&spec(true), &Sigstore::Unknown("exit 2".into())).unwrap();
        assert!(w.contains("exit 2"), "{w}");
        assert_eq!(warning(&spec(true), &Sigstore::Verifies), None);
        assert_eq!(warning(&spec(true), &Sigstore::NoTools), None);
        assert_eq!(warning(&spec(false), &Sigstore::Disabled), None);
    }

    #[test]
    fn policy_controller_yaml_has_a_policy_per_key_with_its_globs() {
        let text = render_policy_controller(&trust(true));
        let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
            .map(serde_yaml::Value::deserialize)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(docs.len(), 2);
        let broad = &docs[0];
        assert_eq!(broad["apiVersion"], "policy.sigstore.dev/v1beta1");
        assert_eq!(broad["kind"], "ClusterImagePolicy");
        assert_eq!(broad["metadata"]["name"], "airlift-broad");
        let globs: Vec<&str> = broad["spec"]["images"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|g| g["glob"].as_str().unwrap())
            .collect();
        assert_eq!(
            globs,
            [
                "quay.io/**",
                "index.docker.io/library/**",
                "index.docker.io/library*"
            ]
        );
        let auth = &broad["spec"]["authorities"][0];
        assert_eq!(auth["key"]["data"].as_str().unwrap(), P256_PEM);
        assert!(auth.get("ctlog").is_none(), "no transparency log offline");
        assert_eq!(docs[1]["spec"]["images"][0]["glob"], "quay.io/example/**");
        assert!(text.contains("images under quay.io/example match this policy too"));
        assert!(text.contains("Key \"team\" is Ed25519"), "{text}");
        assert!(!text.contains("Key \"broad\" is"), "{text}");
    }

    #[test]
    fn kyverno_yaml_has_a_rule_per_key_and_skips_narrower_scopes() {
        let doc: serde_yaml::Value = serde_yaml::from_str(&render_kyverno(&trust(true))).unwrap();
        assert_eq!(doc["apiVersion"], "kyverno.io/v1");
        assert_eq!(doc["kind"], "ClusterPolicy");
        assert_eq!(doc["spec"]["validationFailureAction"], "Enforce");
        let rules = doc["spec"]["rules"].as_sequence().unwrap();
        assert_eq!(rules.len(), 2);
        let v = &rules[0]["verifyImages"][0];
        let refs: Vec<&str> = v["imageReferences"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert_eq!(
            refs,
            [
                "quay.io/*",
                "docker.io/library:*",
                "docker.io/library@*",
                "docker.io/library/*"
            ]
        );
        assert_eq!(v["skipImageReferences"][2], "quay.io/example/*");
        assert_eq!(v["mutateDigest"], true);
        assert_eq!(v["verifyDigest"], true);
        let keys = &v["attestors"][0]["entries"][0]["keys"];
        assert_eq!(keys["publicKeys"].as_str().unwrap(), P256_PEM);
        assert_eq!(keys["rekor"]["ignoreTlog"], true);
        assert_eq!(keys["ctlog"]["ignoreSCT"], true);
        let team = &rules[1]["verifyImages"][0];
        assert!(team.get("skipImageReferences").is_none());
        assert_eq!(team["imageReferences"][0], "quay.io/example:*");
    }

    #[test]
    fn policy_json_merge_keeps_the_users_other_scopes_and_transports() {
        let user = r#"{
            "default": [{"type": "reject"}],
            "transports": {
                "docker": {
                    "quay.io": [{"type": "insecureAcceptAnything"}],
                    "registry.example.com/mine": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k.gpg"}]
                },
                "docker-daemon": {"": [{"type": "insecureAcceptAnything"}]}
            }
        }"#;
        let merged: Value =
            serde_json::from_str(&merge_policy_json(user, &trust(true)).unwrap()).unwrap();
        assert_eq!(merged["default"][0]["type"], "reject");
        let docker = &merged["transports"]["docker"];
        assert_eq!(docker["quay.io"][0]["type"], "sigstoreSigned");
        assert_eq!(
            docker["quay.io"][0]["keyPath"],
            "/etc/airlift/keys/broad.pub"
        );
        assert_eq!(
            docker["quay.io"][0]["signedIdentity"]["type"],
            "matchRepository"
        );
        assert_eq!(
            docker["quay.io/example"][0]["keyPath"],
            "/etc/airlift/keys/team.pub"
        );
        assert_eq!(docker["registry.example.com/mine"][0]["type"], "signedBy");
        assert_eq!(
            merged["transports"]["docker-daemon"][""][0]["type"],
            "insecureAcceptAnything"
        );
        // Merging again changes nothing.
        let once = merge_policy_json(user, &trust(true)).unwrap();
        assert_eq!(merge_policy_json(&once, &trust(true)).unwrap(), once);
        // A fresh one requires our scopes and accepts the rest.
        let fresh: Value = serde_json::from_str(&render_policy_json(&trust(true))).unwrap();
        assert_eq!(fresh["default"][0]["type"], "insecureAcceptAnything");
        assert_eq!(
            fresh["transports"]["docker"]["docker.io/library"][0]["type"],
            "sigstoreSigned"
        );
    }

    #[test]
    fn malformed_policy_json_is_refused_without_echoing_it() {
        for (bad, want) in [
            ("{ secret-looking text", "not valid JSON"),
            ("[1]", "top level"),
            (r#"{"transports": {}}"#, "`default`"),
            (r#"{"default": [], "transports": 3}"#, "`transports`"),
            (
                r#"{"default": [], "transports": {"docker": []}}"#,
                "`transports.docker`",
            ),
        ] {
            let e = format!("{:#}", merge_policy_json(bad, &trust(true)).unwrap_err());
            assert!(e.contains(want), "{e}");
            assert!(!e.contains("secret-looking"), "{e}");
        }
    }

    #[test]
    fn registries_d_names_mirrors_and_scopes() {
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&render_registries_d(&spec(true))).unwrap();
        for k in [
            "10.0.0.1:5000",
            "10.0.0.2:5000",
            "quay.io",
            "quay.io/example",
        ] {
            assert_eq!(doc["docker"][k]["use-sigstore-attachments"], true, "{k}");
        }
    }
}
