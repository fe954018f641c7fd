//! The join endpoint on host0's registry port: a node presenting the
//! appliance's join token gets the config it needs to pull through
//! host0 (mirror spec, CA, registry addresses, runtimes).
//!
//! `POST /airlift/v1/join` with `Authorization: Bearer <token>` or a JSON
//! body `{"token": "<token>"}`; `GET` with the header works too. A wrong
//! or missing token gets 403 and a log line naming the peer. Tokens are
//! compared in constant time.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use airlift_appliance::mirror_order::{self, node_key};

use crate::api::json::json_response;
use crate::services::join::node_config::{NodeConfig, ReplicaGrant, NODE_CONFIG_SCHEMA};
use crate::services::mirrors::{Endpoint, MirrorSpec, Runtime, Scheme};
use crate::services::status::ApplianceName;

/// What the endpoint answers with, fixed at start.
#[derive(Debug, Clone)]
pub struct Join {
    /// The expected token.
    pub token: String,
    pub appliance: ApplianceName,
    /// The upstreams mirrored.
    pub upstreams: Vec<String>,
    pub ca_pem: Option<String>,
    pub scheme: Scheme,
    /// The port the registry listens on.
    pub port: u16,
    /// host0's own addresses (`HOST:PORT`), after the one the node used.
    pub advertised: Vec<String>,
    pub runtimes: Vec<Runtime>,
    /// host0's TLS folder (its CA signs replicas' certificates); None
    /// without TLS.
    pub tls_dir: Option<std::path::PathBuf>,
    /// Extra names for replicas' certificates (the virtual IP).
    pub replica_sans: Vec<std::net::IpAddr>,
    /// The replica table: synced replicas are offered to nodes.
    pub replicas: crate::api::replicas::Replicas,
    /// The appliance's trust policy, carried in the mirror spec so every
    /// node writes the same signature files as host0, and every replica's
    /// registry gates pulls on it as host0's does.
    pub trust: Option<airlift_appliance::TrustPolicy>,
}

/// The two ends of a connection, put into each request by the server.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub remote: SocketAddr,
    pub local: SocketAddr,
}

/// Does `presented` equal `expected`? Constant time in the content (the
/// length of the expected token is not secret).
pub fn token_ok(expected: &str, presented: Option<&str>) -> bool {
    match presented {
        Some(p) if !expected.is_empty() => expected.as_bytes().ct_eq(p.as_bytes()).into(),
        _ => false,
    }
}

/// The token a request carries: `Authorization: Bearer …`, else a JSON
/// body's `token`.
pub fn presented_token(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, rest) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| rest.trim().to_string());
    }
    #[derive(Deserialize)]
    struct Body {
        token: String,
    }
    serde_json::from_slice::<Body>(body).ok().map(|b| b.token)
}

/// `HOST:PORT` for an address (brackets for IPv6; IPv4-mapped shown as IPv4).
pub fn host_port(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => format!("{v4}:{}", v6.port()),
            None => format!("[{}]:{}", v6.ip(), v6.port()),
        },
        SocketAddr::V4(v4) => v4.to_string(),
    }
}

impl Join {
    /// The node config for the node `key` ([`node_key`]) that reached
    /// host0 at `local`. The load is shared: the address the node used
    /// (known to work from there; host0's first address when unknown) and
    /// the synced replicas (they joined over the nodes' network) come
    /// first, in the node's own order ([`mirror_order::node_order`]), so
    /// each endpoint is first for about the same share of nodes; then
    /// host0's other addresses, which may sit on networks the node cannot
    /// reach: a client tries mirrors in order, and every dead address
    /// ahead of a live one costs it a connect timeout when host0 is down.
    /// A node's order changes only when the set of synced replicas does.
    pub fn node_config(&self, local: Option<SocketAddr>, key: &str) -> NodeConfig {
        let endpoint = |host: String| Endpoint {
            host,
            scheme: self.scheme,
        };
        let used = local.filter(|l| !l.ip().is_unspecified()).map(host_port);
        let mut spread: Vec<Endpoint> = used
            .or_else(|| self.advertised.first().cloned())
            .map(endpoint)
            .into_iter()
            .collect();
        for url in self.replicas.usable_urls() {
            match Endpoint::parse_url(&url) {
                Ok(e) => spread.push(e),
                Err(e) => tracing::warn!("replica URL {url:?} left out: {e:#}"),
            }
        }
        let last: Vec<Endpoint> = self.advertised.iter().cloned().map(endpoint).collect();
        let urls = |v: &[Endpoint]| v.iter().map(Endpoint::url).collect::<Vec<_>>();
        let (spread_urls, last_urls) = (urls(&spread), urls(&last));
        let order = mirror_order::node_order(
            key,
            &spread_urls.iter().map(String::as_str).collect::<Vec<_>>(),
            &last_urls.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let endpoints: Vec<Endpoint> = order
            .iter()
            .filter_map(|u| spread.iter().chain(&last).find(|e| e.url() == *u))
            .cloned()
            .collect();
        let registries = endpoints.iter().map(Endpoint::url).collect();
        NodeConfig {
            schema: NODE_CONFIG_SCHEMA,
            appliance: self.appliance.clone(),
            mirror: MirrorSpec::new(endpoints, self.upstreams.clone(), self.ca_pem.clone())
                .with_trust(self.trust.clone()),
            ca_pem: self.ca_pem.clone(),
            registries,
            runtimes: self.runtimes.clone(),
            replica: None,
        }
    }

    /// A server certificate for a replica at `ip`.
    pub fn grant(&self, ip: std::net::IpAddr) -> anyhow::Result<ReplicaGrant> {
        use anyhow::Context;
        let dir = self
            .tls_dir
            .as_deref()
            .context("host0 serves plain HTTP: replicas need registry.tls")?;
        let mut ips = vec![ip];
        ips.extend(self.replica_sans.iter().copied());
        let (cert_pem, key_pem) = crate::services::tls::issue_for(dir, &[], &ips)?;
        Ok(ReplicaGrant {
            address: ip.to_string(),
            cert_pem,
            key_pem,
        })
    }
}

/// The role a join request asks for (`{"role": "replica"}`).
pub fn requested_role(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Body {
        role: Option<String>,
    }
    serde_json::from_slice::<Body>(body)
        .ok()
        .and_then(|b| b.role)
}

/// `POST|GET /airlift/v1/join`.
pub async fn handler(
    State(join): State<Arc<Join>>,
    peer: Option<Extension<Peer>>,
    nodes: Option<Extension<crate::services::netboot::Nodes>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let peer = peer.map(|Extension(p)| p);
    let remote = peer.map_or_else(|| "unknown".to_string(), |p| p.remote.to_string());
    let presented = presented_token(&headers, &body);
    if !token_ok(&join.token, presented.as_deref()) {
        let why = if presented.is_some() { "a wrong" } else { "no" };
        tracing::warn!(peer = %remote, "join refused: {why} join token from {remote}");
        return json_response(
            StatusCode::FORBIDDEN,
            &serde_json::json!({
                "error": "the join token is missing or wrong; use the appliance's joinToken"
            }),
        );
    }
    let remote_ip = peer.map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |p| p.remote.ip());
    let key = node_key(
        crate::services::netboot::nodes::join_mac(&body).as_deref(),
        remote_ip,
    );
    let mut config = join.node_config(peer.map(|p| p.local), &key);
    if requested_role(&body).as_deref() == Some("replica") {
        let Some(p) = peer else {
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &serde_json::json!({"error": "the replica's address is unknown"}),
            );
        };
        let ip = p.remote.ip().to_canonical();
        match join.grant(ip) {
            Ok(g) => config.replica = Some(g),
            Err(e) => {
                tracing::error!(peer = %remote, "no certificate for replica {remote}: {e:#}");
                return json_response(
                    StatusCode::CONFLICT,
                    &serde_json::json!({"error": format!("host0 cannot make this node a replica: {e:#}")}),
                );
            }
        }
        tracing::info!(peer = %remote, "replica certificate issued for {ip}");
    }
    tracing::info!(peer = %remote, "node config sent to {remote}");
    if let (Some(Extension(nodes)), Some(p)) = (nodes, peer) {
        crate::services::netboot::nodes::record_join(&nodes, &body, p.remote.ip());
    }
    json_response(StatusCode::OK, &config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn join() -> Join {
        Join {
            token: "s3cret-token-0123456789".into(),
            appliance: ApplianceName {
                name: "demo".into(),
                version: "1".into(),
            },
            upstreams: vec!["quay.io".into()],
            ca_pem: Some("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n".into()),
            scheme: Scheme::Https,
            port: 5000,
            advertised: vec!["10.0.0.1:5000".into(), "10.0.0.2:5000".into()],
            runtimes: vec![Runtime::Containerd],
            tls_dir: None,
            replica_sans: vec![],
            replicas: Default::default(),
            trust: None,
        }
    }

    #[test]
    fn token_check() {
        assert!(token_ok("abc", Some("abc")));
        assert!(!token_ok("abc", Some("abd")));
        assert!(!token_ok("abc", Some("abcd")));
        assert!(!token_ok("abc", Some("")));
        assert!(!token_ok("abc", None));
        assert!(!token_ok("", Some("")));
    }

    #[test]
    fn tokens_from_header_or_body() {
        let mut h = HeaderMap::new();
        assert_eq!(
            presented_token(&h, br#"{"token":"t1"}"#).as_deref(),
            Some("t1")
        );
        assert_eq!(presented_token(&h, b"garbage"), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t2"));
        assert_eq!(
            presented_token(&h, br#"{"token":"t1"}"#).as_deref(),
            Some("t2")
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dDp0"),
        );
        assert_eq!(presented_token(&h, b""), None);
    }

    #[test]
    fn node_config_puts_the_used_address_first() {
        let c = join().node_config(Some("10.0.0.2:5000".parse().unwrap()), KEY);
        assert_eq!(
            c.registries,
            ["https://10.0.0.2:5000", "https://10.0.0.1:5000"]
        );
        c.mirror.validate().unwrap();
        assert_eq!(c.mirror.upstreams, ["quay.io"]);
        assert_eq!(c.mirror.ca_pem, c.ca_pem);
        let json = serde_json::to_string(&c).unwrap();
        let back: NodeConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        let mapped = join().node_config(Some("[::ffff:10.0.0.9]:5000".parse().unwrap()), KEY);
        assert_eq!(mapped.registries[0], "https://10.0.0.9:5000");
        let none = join().node_config(Some("0.0.0.0:5000".parse().unwrap()), KEY);
        assert_eq!(none.registries.len(), 2);
    }

    #[test]
    fn node_config_carries_the_trust_policy() {
        let plain = join().node_config(None, KEY);
        assert_eq!(plain.mirror.trust, None);
        assert!(!serde_json::to_string(&plain).unwrap().contains("\"trust\""));
        let trust = airlift_appliance::TrustPolicy {
            keys: vec![airlift_appliance::TrustedKey {
                name: "release".into(),
                scopes: vec!["quay.io/org".into()],
                public_key_pem: crate::services::mirrors::signatures::tests::P256_PEM.to_string(),
            }],
            enforce: true,
        };
        let j = Join {
            trust: Some(trust.clone()),
            ..join()
        };
        let c = j.node_config(None, KEY);
        assert_eq!(c.mirror.trust.as_ref(), Some(&trust));
        c.mirror.validate().unwrap();
        let back: NodeConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back.mirror.trust, Some(trust));
    }

    const KEY: &str = "mac:52:54:00:a1:00:01";

    fn report(name: &str, synced: bool) -> crate::services::ha::replication::Report {
        crate::services::ha::replication::Report {
            name: name.into(),
            url: format!("https://{name}:5000"),
            source: None,
            applied: 0,
            synced,
        }
    }

    #[test]
    fn synced_replicas_share_the_load_with_host0() {
        let j = join();
        let now = std::time::Instant::now();
        j.replicas.report(&report("10.0.0.7", true), false, now);
        j.replicas.report(&report("10.0.0.8", false), false, now);
        let used = Some("10.0.0.1:5000".parse().unwrap());
        let c = j.node_config(used, KEY);
        // The address used and the synced replica in this node's own
        // order, then host0's other address; the unsynced replica not.
        let spread = ["https://10.0.0.1:5000", "https://10.0.0.7:5000"];
        assert_eq!(
            c.registries,
            mirror_order::node_order(KEY, &spread, &["https://10.0.0.2:5000"])
        );
        let mut head = c.registries[..2].to_vec();
        head.sort();
        assert_eq!(head, spread);
        assert_eq!(c.registries[2], "https://10.0.0.2:5000");
        assert_eq!(c.registries.len(), 3);
        assert_eq!(
            c.mirror
                .registries
                .iter()
                .map(Endpoint::url)
                .collect::<Vec<_>>(),
            c.registries
        );
        c.mirror.validate().unwrap();
        // Over many nodes, host0 and the replica are each first for
        // about half.
        let firsts: Vec<String> = (0..200)
            .map(|i| {
                let k = node_key(Some(&format!("52:54:00:00:00:{i:02x}")), [0u8; 4].into());
                j.node_config(used, &k).registries[0].clone()
            })
            .collect();
        let on_host0 = firsts.iter().filter(|f| *f == spread[0]).count();
        let on_replica = firsts.iter().filter(|f| *f == spread[1]).count();
        assert_eq!(on_host0 + on_replica, 200);
        assert!((70..=130).contains(&on_host0), "{on_host0} of 200 on host0");
        // Not knowing the address used, host0's first address takes its
        // place, its other addresses still last.
        assert_eq!(
            j.node_config(None, KEY).registries,
            mirror_order::node_order(
                KEY,
                &spread,
                &["https://10.0.0.1:5000", "https://10.0.0.2:5000"]
            )
        );
        assert_eq!(
            requested_role(br#"{"mac":"x","role":"replica"}"#).as_deref(),
            Some("replica")
        );
        assert_eq!(requested_role(b"{}"), None);
        assert!(
            j.grant("10.0.0.7".parse().unwrap()).is_err(),
            "no TLS folder"
        );
    }

    #[test]
    fn a_nodes_order_changes_only_with_the_synced_set() {
        let j = join();
        let now = std::time::Instant::now();
        let used = Some("10.0.0.1:5000".parse().unwrap());
        j.replicas.report(&report("10.0.0.7", true), false, now);
        let keys: Vec<String> = (0..100)
            .map(|i| node_key(None, std::net::Ipv4Addr::new(10, 0, 1, i).into()))
            .collect();
        let before: Vec<Vec<String>> = keys
            .iter()
            .map(|k| j.node_config(used, k).registries)
            .collect();
        // Polls that change nothing in the synced set change no order
        // (a node's refresh then finds its config unchanged).
        j.replicas.report(&report("10.0.0.7", true), true, now);
        j.replicas.report(&report("10.0.0.8", false), false, now);
        for (k, b) in keys.iter().zip(&before) {
            assert_eq!(&j.node_config(used, k).registries, b, "{k}");
        }
        // A newly synced replica takes the first place of some nodes and
        // leaves the others' order as it was.
        j.replicas.report(&report("10.0.0.8", true), false, now);
        let mut moved = 0;
        for (k, b) in keys.iter().zip(&before) {
            let a = j.node_config(used, k).registries;
            let new = "https://10.0.0.8:5000";
            let kept: Vec<&String> = a.iter().filter(|u| *u != new).collect();
            assert_eq!(kept, b.iter().collect::<Vec<_>>(), "{k}");
            assert_ne!(a.last().map(String::as_str), Some(new), "{k}: {a:?}");
            moved += usize::from(a[0] == new);
        }
        assert!((15..=55).contains(&moved), "{moved} of 100 moved");
    }

    #[tokio::test]
    async fn the_handler_ranks_by_the_mac_sent_else_the_address() {
        let j = Arc::new(join());
        let now = std::time::Instant::now();
        j.replicas.report(&report("10.0.0.7", true), false, now);
        j.replicas.report(&report("10.0.0.8", true), false, now);
        let peer = Peer {
            remote: "10.0.0.50:40000".parse().unwrap(),
            local: "10.0.0.1:5000".parse().unwrap(),
        };
        let ask = |body: String| {
            let j = j.clone();
            async move {
                let res = handler(
                    State(j),
                    Some(Extension(peer)),
                    None,
                    HeaderMap::new(),
                    Bytes::from(body),
                )
                .await;
                assert_eq!(res.status(), StatusCode::OK);
                let b = axum::body::to_bytes(res.into_body(), 1 << 20)
                    .await
                    .unwrap();
                serde_json::from_slice::<NodeConfig>(&b).unwrap().registries
            }
        };
        let token = &join().token;
        let expect = expected_order;
        let mut firsts = std::collections::BTreeSet::new();
        for i in 0..12u8 {
            let mac = format!("52-54-00-A1-00-{i:02X}");
            let got = ask(format!(r#"{{"token":"{token}","mac":"{mac}"}}"#)).await;
            let key = format!("mac:52:54:00:a1:00:{i:02x}");
            assert_eq!(got, expect(&key), "{mac}");
            firsts.insert(got[0].clone());
        }
        assert!(firsts.len() > 1, "12 MACs, one first endpoint: {firsts:?}");
        let got = ask(format!(r#"{{"token":"{token}"}}"#)).await;
        assert_eq!(got, expect("ip:10.0.0.50"));
        let got = ask(format!(r#"{{"token":"{token}","mac":"not-a-mac"}}"#)).await;
        assert_eq!(got, expect("ip:10.0.0.50"));
    }

    /// The order the join endpoint should give the node `key` with
    /// replicas .7 and .8 synced, reached at 10.0.0.1.
    fn expected_order(key: &str) -> Vec<String> {
        let spread = [
            "https://10.0.0.1:5000",
            "https://10.0.0.7:5000",
            "https://10.0.0.8:5000",
        ];
        mirror_order::node_order(key, &spread, &["https://10.0.0.2:5000"])
    }
}
