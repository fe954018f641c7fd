//! Docker: `registry-mirrors` in `/etc/docker/daemon.json`.
//!
//! Docker mirrors **docker.io only**: images of any other upstream
//! (quay.io, registry.k8s.io, …) are pulled from that upstream whatever
//! the config says. Docker also refuses a mirror URL with a path and
//! sends no `?ns=`, so a mirror request is `/v2/library/nginx/...`; the
//! airlift registry answers such un-namespaced reads from docker.io
//! when its local namespace does not hold the name. Any image can always be pulled by its mirrored name,
//! `HOST:PORT/quay.io/org/app:tag`.
//!
//! HTTPS endpoints get the CA at `/etc/docker/certs.d/HOST:PORT/ca.crt`;
//! HTTP ones are listed in `insecure-registries`.
//!
//! daemon.json is merged: other keys are kept; `registry-mirrors` becomes
//! ours followed by the user's others; our HTTP hosts are added to
//! `insecure-registries`. JSON has no comments, and keys come out sorted.

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};

use super::{FileKind, MirrorSpec, RenderedFile};

/// The daemon's config.
pub const DAEMON_JSON: &str = "/etc/docker/daemon.json";
/// Where Docker looks for a registry's CA.
pub const CERTS_D: &str = "/etc/docker/certs.d";

/// daemon.json for a node that has none.
pub fn render(spec: &MirrorSpec) -> String {
    merge("", spec).expect("merging into an empty file cannot fail")
}

/// Merge our mirrors into an existing daemon.json (`""` for none).
pub fn merge(existing: &str, spec: &MirrorSpec) -> Result<String> {
    let mut root = if existing.trim().is_empty() {
        Map::new()
    } else {
        match serde_json::from_str::<Value>(existing).with_context(|| {
            format!("parsing the existing {DAEMON_JSON}; fix or move it, then re-run")
        })? {
            Value::Object(m) => m,
            _ => bail!("{DAEMON_JSON} is not a JSON object; fix or move it, then re-run"),
        }
    };

    let ours: Vec<String> = spec.registries.iter().map(|e| e.url()).collect();
    let same = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
    let mut mirrors: Vec<Value> = ours.iter().cloned().map(Value::String).collect();
    for other in string_list(&root, "registry-mirrors")? {
        if !ours.iter().any(|o| same(o, &other)) {
            mirrors.push(Value::String(other));
        }
    }
    root.insert("registry-mirrors".into(), Value::Array(mirrors));

    let http: Vec<&str> = spec
        .registries
        .iter()
        .filter(|e| e.is_http())
        .map(|e| e.host.as_str())
        .collect();
    if !http.is_empty() {
        let mut insecure = string_list(&root, "insecure-registries")?;
        for h in http {
            if !insecure.iter().any(|i| i == h) {
                insecure.push(h.to_string());
            }
        }
        root.insert(
            "insecure-registries".into(),
            Value::Array(insecure.into_iter().map(Value::String).collect()),
        );
    }
    let mut out =
        serde_json::to_string_pretty(&Value::Object(root)).context("serialising daemon.json")?;
    out.push('\n');
    Ok(out)
}

/// `root[key]` as a list of strings (empty when absent).
fn string_list(root: &Map<String, Value>, key: &str) -> Result<Vec<String>> {
    match root.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => bail!("{DAEMON_JSON}: `{key}` holds a non-string {v}; fix it, then re-run"),
            })
            .collect(),
        Some(v) => {
            bail!("{DAEMON_JSON}: `{key}` is {v}, not a list of strings; fix it, then re-run")
        }
    }
}

/// daemon.json and one CA per HTTPS endpoint.
pub fn files(spec: &MirrorSpec) -> Vec<RenderedFile> {
    let mut files = vec![RenderedFile {
        path: DAEMON_JSON.into(),
        content: render(spec),
        kind: FileKind::MergeDocker,
    }];
    files.extend(super::ca_per_endpoint(spec, CERTS_D));
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::mirrors::Endpoint;

    #[test]
    fn merge_keeps_other_keys_and_puts_ours_first() {
        let spec = MirrorSpec::new(
            vec![Endpoint::https("a:1"), Endpoint::http("b:2")],
            vec!["docker.io".into()],
            None,
        );
        let user = r#"{"log-driver":"journald","registry-mirrors":["https://mine","https://a:1/"],
                       "insecure-registries":["old:5000"],"features":{"buildkit":true}}"#;
        let merged = merge(user, &spec).unwrap();
        let v: Value = serde_json::from_str(&merged).unwrap();
        assert_eq!(v["log-driver"], "journald");
        assert_eq!(v["features"]["buildkit"], true);
        assert_eq!(
            v["registry-mirrors"],
            serde_json::json!(["https://a:1", "http://b:2", "https://mine"])
        );
        assert_eq!(
            v["insecure-registries"],
            serde_json::json!(["old:5000", "b:2"])
        );
        assert_eq!(
            merge(&merged, &spec).unwrap(),
            merged,
            "merge is idempotent"
        );
    }

    #[test]
    fn merge_refuses_malformed_files() {
        let spec = MirrorSpec::new(vec![Endpoint::https("a:1")], vec!["docker.io".into()], None);
        assert!(format!("{:#}", merge("[1]", &spec).unwrap_err()).contains("not a JSON object"));
        assert!(format!(
            "{:#}",
            merge("{\"registry-mirrors\":\"x\"}", &spec).unwrap_err()
        )
        .contains("registry-mirrors"));
        assert!(merge("{", &spec).is_err());
    }
}
