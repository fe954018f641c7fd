//! The plain-HTTP boot endpoints (iPXE's TLS is limited): the per-MAC
//! iPXE script, the kernel and initrd (the very files on the media), the
//! iPXE binaries; and `GET /airlift/v1/nodes`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path as AxPath, State};
use axum::http::Uri;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Extension;
use axum::Router;

use super::config::{normalise_mac, NetbootConfig};
use super::nodes::Nodes;
use super::script::{self, ScriptParams};

/// What the handlers serve from, fixed at start.
#[derive(Debug)]
pub struct BootFiles {
    pub config: NetbootConfig,
    /// The media's root (holds `boot/` and `ipxe/`).
    pub media_root: PathBuf,
    /// host0's registry port and scheme (for `airlift.server=`).
    pub registry_port: u16,
    pub registry_scheme: crate::mirrors::Scheme,
    pub token: String,
    pub ca_fingerprint: Option<String>,
    pub nodes: Nodes,
}

impl BootFiles {
    /// A served file's path on the media, by its URL name.
    pub fn file(&self, name: &str) -> Option<PathBuf> {
        let rel = match name {
            "vmlinuz" => "boot/vmlinuz",
            "initrd.img" => "boot/initrd.img",
            "undionly.kpxe" => "ipxe/undionly.kpxe",
            "ipxe.efi" => "ipxe/ipxe.efi",
            _ => return None,
        };
        Some(self.media_root.join(rel))
    }
}

/// The boot router (served on its own plain-HTTP port).
pub fn boot_router(files: Arc<BootFiles>) -> Router {
    Router::new()
        .route("/boot/ipxe", get(ipxe_script))
        .route("/boot/{name}", get(boot_file))
        .with_state(files.clone())
        .merge(nodes_router(files.nodes.clone()))
}

/// `GET /airlift/v1/nodes`, to merge into host0's app.
pub fn nodes_router(nodes: Nodes) -> Router {
    Router::new()
        .route("/airlift/v1/nodes", get(list_nodes))
        .with_state(nodes)
}

async fn list_nodes(State(nodes): State<Nodes>) -> Response {
    crate::status::json_response(StatusCode::OK, &nodes.list())
}

/// The `mac=` of a query string.
fn query_mac(uri: &Uri) -> Option<&str> {
    uri.query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("mac="))
}

fn plain(code: StatusCode, text: String) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// The host part of a `Host` header (brackets kept for IPv6).
fn host_only(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..=h.len()]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

fn milestone(line: &str) {
    println!("{line}");
    tracing::info!("{line}");
}

async fn ipxe_script(
    State(files): State<Arc<BootFiles>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let ip = peer.map(|Extension(ConnectInfo(p))| p.ip());
    let ip_text = ip.map_or_else(|| "?".to_string(), |i| i.to_string());
    let Some(mac) = query_mac(&uri)
        .and_then(|m| normalise_mac(&m.replace("%3A", ":").replace("%3a", ":")).ok())
    else {
        tracing::warn!("boot script asked for without a valid ?mac= by {ip_text}");
        return plain(
            StatusCode::BAD_REQUEST,
            "give the machine's MAC: /boot/ipxe?mac=${net0/mac}\n".into(),
        );
    };
    let Some(profile) = files.config.profile_for(&mac) else {
        milestone(&format!(
            "AIRLIFT-NETBOOT-UNKNOWN mac={mac} ip={ip_text}: not in netboot.nodes and no \
             netboot.defaultProfile; not booted"
        ));
        return plain(
            StatusCode::NOT_FOUND,
            format!("#!ipxe\necho airlift: {mac} is not a known machine\nexit 1\n"),
        );
    };
    let profile = super::config::apply_replica_count(
        profile,
        &mac,
        files.config.replicas,
        &files.nodes.counted_replicas(),
    );
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return plain(StatusCode::BAD_REQUEST, "no Host header\n".into());
    };
    let http_base = format!("http://{host}");
    let server = format!(
        "{}://{}:{}",
        files.registry_scheme,
        host_only(host),
        files.registry_port
    );
    let text = script::render(&ScriptParams {
        mac: &mac,
        profile: &profile,
        http_base: &http_base,
        server: &server,
        token: &files.token,
        ca_fingerprint: files.ca_fingerprint.as_deref(),
    });
    files
        .nodes
        .netbooted(&mac, ip, &profile.name, profile.role.as_str());
    milestone(&format!(
        "AIRLIFT-NETBOOT-SCRIPT mac={mac} ip={ip_text} profile={} role={}",
        profile.name,
        profile.role.as_str()
    ));
    plain(StatusCode::OK, text)
}

async fn boot_file(
    State(files): State<Arc<BootFiles>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    AxPath(name): AxPath<String>,
) -> Response {
    let ip_text = peer.map_or_else(
        || "?".to_string(),
        |Extension(ConnectInfo(p))| p.ip().to_string(),
    );
    let Some(path) = files.file(&name) else {
        return plain(StatusCode::NOT_FOUND, format!("no boot file {name:?}\n"));
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!("boot file {} for {ip_text}: {e}", path.display());
            return plain(
                StatusCode::NOT_FOUND,
                format!("{} is not on the media: {e}\n", path.display()),
            );
        }
    };
    let len = match file.metadata().await {
        Ok(m) => m.len(),
        Err(e) => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{}: {e}\n", path.display()),
            )
        }
    };
    milestone(&format!(
        "AIRLIFT-NETBOOT-FILE {name} ({len} bytes) to {ip_text}"
    ));
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
        file,
        256 * 1024,
    ));
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use tower::ServiceExt;

    fn files(dir: &std::path::Path) -> Arc<BootFiles> {
        std::fs::create_dir_all(dir.join("boot")).unwrap();
        std::fs::write(dir.join("boot/vmlinuz"), b"KERNEL").unwrap();
        Arc::new(BootFiles {
            config: NetbootConfig::from_value(&serde_json::json!({
                "enabled": true, "dhcp": "off",
                "nodes": [{"mac": "52:54:00:a1:00:01", "hostname": "node-1"}]
            }))
            .unwrap(),
            media_root: dir.to_path_buf(),
            registry_port: 5000,
            registry_scheme: crate::mirrors::Scheme::Https,
            token: "tok".into(),
            ca_fingerprint: Some("sha256:00".into()),
            nodes: Nodes::new(),
        })
    }

    async fn get(app: &Router, uri: &str) -> (StatusCode, Vec<u8>) {
        let res = app
            .clone()
            .oneshot(
                Request::get(uri)
                    .header(header::HOST, "10.77.0.1:8080")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let code = res.status();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        (code, body.to_vec())
    }

    #[tokio::test]
    async fn scripts_files_and_the_node_table() {
        let tmp = tempfile::tempdir().unwrap();
        let f = files(tmp.path());
        let app = boot_router(f.clone());
        let (code, body) = get(&app, "/boot/ipxe?mac=52-54-00-A1-00-01").await;
        assert_eq!(code, StatusCode::OK);
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with("#!ipxe\n"), "{text}");
        assert!(text.contains("kernel http://10.77.0.1:8080/boot/vmlinuz initrd=initrd.img "));
        assert!(text.contains("airlift.server=https://10.77.0.1:5000 airlift.token=tok"));
        assert!(text.contains("airlift.ca=sha256:00"));

        let (code, body) = get(&app, "/boot/ipxe?mac=52:54:00:a1:00:99").await;
        assert_eq!(
            code,
            StatusCode::NOT_FOUND,
            "{}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(get(&app, "/boot/ipxe").await.0, StatusCode::BAD_REQUEST);

        assert_eq!(
            get(&app, "/boot/vmlinuz").await,
            (StatusCode::OK, b"KERNEL".to_vec())
        );
        assert_eq!(get(&app, "/boot/initrd.img").await.0, StatusCode::NOT_FOUND);
        assert_eq!(get(&app, "/boot/..%2Fetc").await.0, StatusCode::NOT_FOUND);

        let (code, body) = get(&app, "/airlift/v1/nodes").await;
        assert_eq!(code, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 1);
        assert_eq!(v[0]["mac"], "52:54:00:a1:00:01");
        assert_eq!(v[0]["state"], "netbooted");
        assert_eq!(v[0]["profile"], "node:node-1");
    }

    #[test]
    fn hosts() {
        assert_eq!(host_only("10.0.0.1:8080"), "10.0.0.1");
        assert_eq!(host_only("h"), "h");
        assert_eq!(host_only("[fd00::1]:8080"), "[fd00::1]");
    }
}
