//! The plain-HTTP boot endpoints (iPXE's TLS is limited): the per-MAC
//! iPXE script, the kernel and initrd (the very files on the media), the
//! iPXE binaries; and `GET /airlift/v1/nodes`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path as AxPath, State};
use axum::http::Uri;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Extension;
use axum::Router;

use crate::services::mirrors::Scheme;
use crate::services::netboot::config::normalise_mac;
use crate::services::netboot::nodes::Nodes;
use crate::services::netboot::script::{self, ScriptParams};
use crate::services::netboot::{self, BootFiles};
use crate::sys::console::milestone;
use airlift_appliance::ApplianceFile;

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
    crate::api::json::json_response(StatusCode::OK, &nodes.list())
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
    let Some(profile) = netboot::config::profile_for(&files.config, &mac) else {
        milestone(&format!(
            "AIRLIFT-NETBOOT-UNKNOWN mac={mac} ip={ip_text}: not in netboot.nodes and no \
             netboot.defaultProfile; not booted"
        ));
        return plain(
            StatusCode::NOT_FOUND,
            format!("#!ipxe\necho airlift: {mac} is not a known machine\nexit 1\n"),
        );
    };
    let profile = crate::services::netboot::config::apply_replica_count(
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
        root_sha256: files.root_sha256.as_deref(),
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

/// Start netboot when the appliance file enables it and add
/// `GET /airlift/v1/nodes` (and the node table, for the join endpoint)
/// to host0's `app`. A failure to start is logged and leaves `app` as
/// is: the registry keeps serving.
pub async fn attach(
    app: Router,
    file: &ApplianceFile,
    bundle_dir: &Path,
    registry_port: u16,
    registry_scheme: Scheme,
    ca_fingerprint: Option<String>,
) -> Router {
    let Some(settings) = netboot::settings_for(
        file,
        bundle_dir,
        registry_port,
        registry_scheme,
        ca_fingerprint,
    ) else {
        return app;
    };
    match netboot::start(settings, boot_router).await {
        Ok(h) => app
            .merge(nodes_router(h.nodes.clone()))
            .layer(Extension(h.nodes)),
        Err(e) => {
            milestone(&format!("AIRLIFT-NETBOOT-FAILED {e:#}"));
            app
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use std::os::unix::fs::PermissionsExt;
    use tower::ServiceExt;

    fn files(dir: &std::path::Path) -> Arc<BootFiles> {
        std::fs::create_dir_all(dir.join("boot")).unwrap();
        std::fs::write(dir.join("boot/vmlinuz"), b"KERNEL").unwrap();
        Arc::new(BootFiles {
            config: netboot::config::from_json(serde_json::json!({
                "enabled": true, "dhcp": "off",
                "nodes": [{"mac": "52:54:00:a1:00:01", "hostname": "node-1"}]
            }))
            .unwrap(),
            media_root: dir.to_path_buf(),
            registry_port: 5000,
            registry_scheme: crate::services::mirrors::Scheme::Https,
            token: "tok".into(),
            ca_fingerprint: Some("sha256:00".into()),
            root_sha256: None,
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn start_serves_files_and_writes_the_dnsmasq_config() {
        let tmp = tempfile::tempdir().unwrap();
        let media = tmp.path().join("media");
        std::fs::create_dir_all(media.join("ipxe")).unwrap();
        std::fs::create_dir_all(media.join("boot")).unwrap();
        std::fs::write(media.join("ipxe/undionly.kpxe"), b"BIOS").unwrap();
        std::fs::write(media.join("ipxe/ipxe.efi"), b"EFI").unwrap();
        std::fs::create_dir_all(media.join("netboot")).unwrap();
        std::fs::write(media.join("netboot/shimx64.efi"), b"SHIM").unwrap();
        std::fs::write(media.join("netboot/grubx64.efi"), b"GRUB").unwrap();
        std::fs::write(media.join("boot/initrd.img"), b"INITRD").unwrap();
        let config = netboot::config::from_json(serde_json::json!({
            "enabled": true, "dhcp": "full", "interface": "lo",
            "range": "127.0.0.100-127.0.0.120", "defaultProfile": {"role": "join"}
        }))
        .unwrap();
        let h = netboot::start(
            netboot::Settings {
                config,
                media_root: media,
                registry_port: 5000,
                registry_scheme: Scheme::Https,
                token: "tok".into(),
                ca_fingerprint: None,
                http_listen: "127.0.0.1:0".parse().unwrap(),
                state_dir: tmp.path().join("state"),
                // A dnsmasq that is not there: the supervisor keeps retrying.
                dnsmasq: tmp.path().join("no-dnsmasq"),
                addresses: vec![netboot::address::parse_cidr("127.0.0.1/8").unwrap()],
            },
            boot_router,
        )
        .await
        .unwrap();
        let conf = std::fs::read_to_string(h.dnsmasq_config.unwrap()).unwrap();
        assert!(
            conf.contains("dhcp-range=127.0.0.100,127.0.0.120,255.0.0.0,1h"),
            "{conf}"
        );
        let port = h.http.port();
        assert!(conf.contains(&format!(
            "dhcp-boot=tag:ipxe,http://127.0.0.1:{port}/boot/ipxe?mac=${{net0/mac}}"
        )));
        let tftp = tmp.path().join("state/tftp");
        assert_eq!(
            std::fs::read(tftp.join("undionly.kpxe.0")).unwrap(),
            b"BIOS"
        );
        assert_eq!(std::fs::read(tftp.join("ipxe.efi")).unwrap(), b"EFI");
        assert_eq!(std::fs::read(tftp.join("shimx64.efi")).unwrap(), b"SHIM");
        assert_eq!(std::fs::read(tftp.join("grubx64.efi")).unwrap(), b"GRUB");
        assert!(
            conf.contains("dhcp-boot=tag:!ipxe,tag:efi64,shimx64.efi\n"),
            "{conf}"
        );
        // The network GRUB's default config, with host0's link address.
        let default = std::fs::read_to_string(tftp.join("grub/default.cfg")).unwrap();
        assert!(
            default.contains(" airlift.server=https://127.0.0.1:5000 airlift.token=tok "),
            "{default}"
        );
        assert_eq!(
            std::fs::read(tftp.join("boot/initrd.img")).unwrap(),
            b"INITRD"
        );
        let mode = std::fs::metadata(tftp.join("ipxe.efi"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o644,
            "dnsmasq serves world-readable files only"
        );
        // The initrd over a real socket, byte for byte.
        let url = format!("http://127.0.0.1:{port}/boot/initrd.img");
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("curl")
                .args(["-fsS", &url])
                .output()
        })
        .await
        .unwrap()
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"INITRD");
    }
}
