//! k3s and RKE2: `registries.yaml`, which they turn into their embedded
//! containerd's config.
//!
//! `mirrors.<upstream>.endpoint` lists the airlift endpoints in order.
//! k3s appends `/v2/...` to an endpoint and its containerd adds
//! `?ns=<upstream>` to every mirror request, which the airlift registry
//! maps to the upstream's namespace: no `rewrite` is needed (a rewrite
//! would also not apply to the default-endpoint fallback).
//! `configs."HOST:PORT".tls.ca_file` points at the CA for HTTPS endpoints.
//!
//! The file may hold the user's own mirrors and credentials, so it is
//! merged: our upstream keys under `mirrors` are replaced whole, our
//! hosts' `tls.ca_file` is set, and everything else is kept. YAML comments
//! do not survive a merge (the original is kept as a backup by `apply`).

use anyhow::{bail, Context, Result};
use serde_yaml::{Mapping, Value};

use super::{FileKind, MirrorSpec, RenderedFile};

/// k3s or RKE2: the same format in different folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// `/etc/rancher/k3s`
    K3s,
    /// `/etc/rancher/rke2`
    Rke2,
}

impl Flavour {
    /// The folder holding registries.yaml.
    pub fn dir(self) -> &'static str {
        match self {
            Flavour::K3s => "/etc/rancher/k3s",
            Flavour::Rke2 => "/etc/rancher/rke2",
        }
    }

    /// registries.yaml's path.
    pub fn registries_yaml(self) -> String {
        format!("{}/registries.yaml", self.dir())
    }

    /// Where the CA is written for this flavour.
    pub fn ca_path(self) -> String {
        format!("{}/airlift-ca.crt", self.dir())
    }
}

/// registries.yaml for a node that has none.
pub fn render(spec: &MirrorSpec, flavour: Flavour) -> String {
    merge("", spec, flavour).expect("merging into an empty file cannot fail")
}

/// Merge our mirrors into an existing registries.yaml (`""` for none).
/// Fails, naming the key, when the file is not the mapping k3s expects.
pub fn merge(existing: &str, spec: &MirrorSpec, flavour: Flavour) -> Result<String> {
    let path = flavour.registries_yaml();
    let mut root = if existing.trim().is_empty() {
        Mapping::new()
    } else {
        match serde_yaml::from_str::<Value>(existing)
            .with_context(|| format!("parsing the existing {path}; fix or move it, then re-run"))?
        {
            Value::Mapping(m) => m,
            Value::Null => Mapping::new(),
            _ => bail!(
                "{path} is not a YAML mapping (mirrors:/configs:); fix or move it, then re-run"
            ),
        }
    };

    let mirrors = child_mapping(&mut root, "mirrors", &path)?;
    for upstream in &spec.upstreams {
        let endpoints: Vec<Value> = spec
            .registries
            .iter()
            .map(|e| Value::String(e.url()))
            .collect();
        let mut entry = Mapping::new();
        entry.insert("endpoint".into(), Value::Sequence(endpoints));
        mirrors.insert(Value::String(upstream.clone()), Value::Mapping(entry));
    }

    if spec.ca_file_content().is_some() {
        let configs = child_mapping(&mut root, "configs", &path)?;
        for e in spec.https_endpoints() {
            let host = child_mapping(configs, &e.host, &format!("{path}: configs"))?;
            let tls = child_mapping(host, "tls", &format!("{path}: configs.{}", e.host))?;
            tls.insert("ca_file".into(), Value::String(flavour.ca_path()));
        }
    }
    serde_yaml::to_string(&Value::Mapping(root)).context("serialising registries.yaml")
}

/// `parent[key]` as a mapping, created when absent or null.
fn child_mapping<'a>(parent: &'a mut Mapping, key: &str, what: &str) -> Result<&'a mut Mapping> {
    let k = Value::String(key.to_string());
    if matches!(parent.get(&k), None | Some(Value::Null)) {
        parent.insert(k.clone(), Value::Mapping(Mapping::new()));
    }
    match parent.get_mut(&k) {
        Some(Value::Mapping(m)) => Ok(m),
        _ => bail!("{what}: `{key}` is not a mapping; fix or move the file, then re-run"),
    }
}

/// registries.yaml and the CA.
pub fn files(spec: &MirrorSpec, flavour: Flavour) -> Vec<RenderedFile> {
    let mut files = vec![RenderedFile {
        path: flavour.registries_yaml().into(),
        content: render(spec, flavour),
        kind: FileKind::MergeRancher,
    }];
    if let Some(ca) = spec.ca_file_content() {
        files.push(RenderedFile::owned(flavour.ca_path(), ca));
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::mirrors::Endpoint;

    fn spec() -> MirrorSpec {
        let mut s = MirrorSpec::new(
            vec![
                Endpoint::https("10.0.0.1:5000"),
                Endpoint::https("10.0.0.2:5000"),
            ],
            vec!["quay.io".into(), "docker.io".into()],
            None,
        );
        s.ca_pem = Some("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n".into());
        s
    }

    #[test]
    fn merge_keeps_user_entries_and_replaces_ours() {
        let user = "mirrors:\n  my.registry:\n    endpoint: [\"https://mine:443\"]\n  quay.io:\n    endpoint: [\"https://old:1\"]\n    rewrite:\n      \"^a/(.*)\": \"b/$1\"\nconfigs:\n  mine:443:\n    auth:\n      username: u\n  10.0.0.1:5000:\n    auth:\n      username: v\n";
        let merged = merge(user, &spec(), Flavour::K3s).unwrap();
        let v: Value = serde_yaml::from_str(&merged).unwrap();
        assert_eq!(
            v["mirrors"]["my.registry"]["endpoint"][0],
            "https://mine:443"
        );
        assert_eq!(
            v["mirrors"]["quay.io"]["endpoint"][0],
            "https://10.0.0.1:5000"
        );
        assert_eq!(
            v["mirrors"]["quay.io"]["endpoint"][1],
            "https://10.0.0.2:5000"
        );
        assert!(v["mirrors"]["quay.io"].get("rewrite").is_none());
        assert_eq!(v["configs"]["mine:443"]["auth"]["username"], "u");
        assert_eq!(v["configs"]["10.0.0.1:5000"]["auth"]["username"], "v");
        assert_eq!(
            v["configs"]["10.0.0.1:5000"]["tls"]["ca_file"],
            "/etc/rancher/k3s/airlift-ca.crt"
        );
        assert_eq!(
            merge(&merged, &spec(), Flavour::K3s).unwrap(),
            merged,
            "merge is idempotent"
        );
    }

    #[test]
    fn merge_refuses_what_it_cannot_merge() {
        let err = merge("- a\n- b\n", &spec(), Flavour::Rke2).unwrap_err();
        assert!(
            format!("{err:#}").contains("/etc/rancher/rke2/registries.yaml"),
            "{err:#}"
        );
        let err = merge("mirrors: 3\n", &spec(), Flavour::K3s).unwrap_err();
        assert!(
            format!("{err:#}").contains("`mirrors` is not a mapping"),
            "{err:#}"
        );
        assert!(merge("mirrors: [\n", &spec(), Flavour::K3s).is_err());
    }
}
