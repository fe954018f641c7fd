//! `GET /airlift/v1/mirror-config`: the mirror config a node would
//! receive from the join endpoint, rendered by the same renderers the
//! node runs ([`crate::services::mirrors`]), for people wiring machines by hand.
//!
//! - no query: JSON, every runtime's files (path, how they are applied,
//!   content) and the whole text of each;
//! - `?runtime=containerd` (any runtime name): that runtime's files as
//!   one plain text, each under a `# ===== PATH =====` header.
//!
//! The addresses are the join endpoint's, in the order a node with this
//! request's address (or `?mac=`, as a netbooted node sends it) gets:
//! the one this request came in on and the synced replicas spread by
//! [`airlift_appliance::mirror_order`], then the other advertised ones.
//! No token is needed: the mirror config holds no secret (the CA
//! certificate is public).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};

use crate::api::join::{Join, Peer};
use crate::api::json::json_response;
use crate::services::join::NodeConfig;
use crate::services::mirrors::{self, FileKind, MirrorSpec, Runtime};

/// The path of the endpoint.
pub const PATH: &str = "/airlift/v1/mirror-config";

/// The runtimes shown, one per config format (CRI-O reads the same
/// registries.conf drop-in as podman).
pub const SHOWN: [Runtime; 5] = [
    Runtime::Podman,
    Runtime::Containerd,
    Runtime::K3s,
    Runtime::Rke2,
    Runtime::Docker,
];

/// One file of a runtime's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FileView {
    /// Absolute path on the node.
    pub path: String,
    /// `replace`, `if-absent` or `merge`: what the node does with an
    /// existing file there.
    pub apply: String,
    pub content: String,
}

/// One runtime's files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RuntimeView {
    /// The runtime's name (`podman`, `containerd`, …).
    pub runtime: String,
    /// What it covers, for people.
    pub title: String,
    pub files: Vec<FileView>,
    /// All files as one text (what `?runtime=` returns).
    pub text: String,
}

/// What the endpoint returns as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MirrorConfigView {
    /// The registries a node would use, in order.
    pub registries: Vec<String>,
    pub upstreams: Vec<String>,
    /// The runtimes the appliance configures on its nodes.
    pub node_runtimes: Vec<Runtime>,
    pub runtimes: Vec<RuntimeView>,
}

fn title(r: Runtime) -> &'static str {
    match r {
        Runtime::Crio | Runtime::Podman => {
            "registries.conf drop-in (podman, CRI-O, skopeo, buildah)"
        }
        Runtime::Containerd => "containerd hosts.toml (certs.d)",
        Runtime::K3s => "k3s registries.yaml",
        Runtime::Rke2 => "RKE2 registries.yaml",
        Runtime::Docker => "Docker daemon.json (docker.io only)",
    }
}

fn apply_word(k: FileKind) -> &'static str {
    match k {
        FileKind::Owned => "replace",
        FileKind::IfAbsent | FileKind::ContainerdConfig => "if-absent",
        FileKind::MergeRancher | FileKind::MergeDocker | FileKind::MergePolicyJson => "merge",
    }
}

/// One runtime's view of `spec` (pure).
pub fn runtime_view(spec: &MirrorSpec, r: Runtime) -> RuntimeView {
    RuntimeView {
        runtime: r.name().to_string(),
        title: title(r).to_string(),
        files: mirrors::files_for(spec, r)
            .into_iter()
            .map(|f| FileView {
                path: f.path.display().to_string(),
                apply: apply_word(f.kind).to_string(),
                content: f.content,
            })
            .collect(),
        text: mirrors::render_text(spec, r),
    }
}

/// The whole view of a node config (pure).
pub fn view(config: &NodeConfig) -> MirrorConfigView {
    MirrorConfigView {
        registries: config.registries.clone(),
        upstreams: config.mirror.upstreams.clone(),
        node_runtimes: config.runtimes.clone(),
        runtimes: SHOWN
            .iter()
            .map(|r| runtime_view(&config.mirror, *r))
            .collect(),
    }
}

/// The `runtime=` of a query string.
pub fn query_runtime(uri: &Uri) -> Option<&str> {
    query_value(uri, "runtime")
}

/// The value of `name=` in a query string.
pub fn query_value<'a>(uri: &'a Uri, name: &str) -> Option<&'a str> {
    uri.query()?.split('&').find_map(|kv| {
        kv.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
    })
}

/// `GET /airlift/v1/mirror-config[?runtime=NAME]`.
pub async fn handler(
    State(join): State<Arc<Join>>,
    peer: Option<Extension<Peer>>,
    uri: Uri,
) -> Response {
    let peer = peer.map(|Extension(p)| p);
    let mac = query_value(&uri, "mac")
        .and_then(|m| crate::services::netboot::config::normalise_mac(m).ok());
    let ip = peer.map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |p| p.remote.ip());
    let key = airlift_appliance::mirror_order::node_key(mac.as_deref(), ip);
    let config = join.node_config(peer.map(|p| p.local), &key);
    let mut res = match query_runtime(&uri) {
        None => json_response(StatusCode::OK, &view(&config)),
        Some(name) => match <Runtime as clap::ValueEnum>::from_str(name, true) {
            Ok(r) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                )],
                mirrors::render_text(&config.mirror, r),
            )
                .into_response(),
            Err(_) => json_response(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({
                    "error": format!(
                        "unknown runtime {name:?}; use one of {}",
                        Runtime::ALL.map(Runtime::name).join(", ")
                    )
                }),
            ),
        },
    };
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The route, to merge into host0's app (GET and HEAD only).
pub fn router(join: Arc<Join>) -> Router {
    Router::new().route(PATH, get(handler)).with_state(join)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::mirrors::{Endpoint, Scheme};
    use crate::services::status::ApplianceName;

    fn config() -> NodeConfig {
        NodeConfig {
            schema: 1,
            appliance: ApplianceName {
                name: "demo".into(),
                version: "1".into(),
            },
            mirror: MirrorSpec::new(
                vec![Endpoint {
                    host: "10.0.0.1:5000".into(),
                    scheme: Scheme::Https,
                }],
                vec!["quay.io".into(), "docker.io".into()],
                None,
            ),
            ca_pem: None,
            registries: vec!["https://10.0.0.1:5000".into()],
            replica: None,
            runtimes: vec![Runtime::Containerd],
        }
    }

    #[test]
    fn every_shown_runtime_has_files_from_the_renderers() {
        let c = config();
        let v = view(&c);
        assert_eq!(v.registries, ["https://10.0.0.1:5000"]);
        assert_eq!(v.runtimes.len(), SHOWN.len());
        let containerd = v
            .runtimes
            .iter()
            .find(|r| r.runtime == "containerd")
            .unwrap();
        assert_eq!(
            containerd.text,
            mirrors::render_text(&c.mirror, Runtime::Containerd)
        );
        assert!(containerd
            .files
            .iter()
            .any(|f| f.path == "/etc/containerd/certs.d/quay.io/hosts.toml"
                && f.content.contains("10.0.0.1:5000")));
        let podman = v.runtimes.iter().find(|r| r.runtime == "podman").unwrap();
        assert!(podman
            .files
            .iter()
            .any(|f| f.path.starts_with("/etc/containers/registries.conf.d/")
                && f.apply == "replace"));
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["node-runtimes"][0], "containerd");
    }

    #[test]
    fn query_values_by_name() {
        let uri: Uri = "/airlift/v1/mirror-config?runtime=podman&mac=52:54:00:a1:00:01"
            .parse()
            .unwrap();
        assert_eq!(query_runtime(&uri), Some("podman"));
        assert_eq!(query_value(&uri, "mac"), Some("52:54:00:a1:00:01"));
        assert_eq!(query_value(&uri, "ma"), None);
        assert_eq!(query_value(&uri, "ip"), None);
        assert_eq!(query_runtime(&"/x".parse().unwrap()), None);
    }
}
