//! Who may change host0. The day-two endpoints (load an update, roll
//! back, collect garbage) act only on requests from host0 itself (a
//! loopback peer) that carry the admin token: a secret host0 makes at
//! its first start in `DATA/admin-token` (0600), which the
//! `airlift-firstboot` commands read there as root. Reading endpoints
//! stay as open as the status page.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;

use super::join::{token_ok, Peer};
use super::json::json_response;

/// The token file in host0's state folder.
pub const TOKEN_FILE: &str = "admin-token";

/// `DATA/admin-token`.
pub fn token_path(data: &Path) -> PathBuf {
    data.join(TOKEN_FILE)
}

/// The admin token, made (64 hex digits, mode 0600, written atomically)
/// if there is none yet.
pub fn ensure_token(data: &Path) -> Result<String> {
    if let Ok(t) = read_token(data) {
        return Ok(t);
    }
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    airlift_oci::atomic::write_with_mode(
        &token_path(data),
        format!("{token}\n").as_bytes(),
        0o600,
    )?;
    Ok(token)
}

/// The admin token of the host0 whose state folder is `data`.
pub fn read_token(data: &Path) -> Result<String> {
    let path = token_path(data);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading the admin token {}: run this on host0, as root, after \
             airlift-host0.service has started",
            path.display()
        )
    })?;
    let token = text.trim().to_string();
    if token.is_empty() {
        anyhow::bail!(
            "{} is empty; remove it and restart airlift-host0.service",
            path.display()
        );
    }
    Ok(token)
}

/// Allow the request, or the answer refusing it: 403 from anywhere but
/// host0 itself, 401 without the right `Authorization: Bearer` token.
#[allow(clippy::result_large_err)]
pub fn authorize(expected: &str, headers: &HeaderMap, peer: Option<&Peer>) -> Result<(), Response> {
    if !peer.is_some_and(|p| p.remote.ip().is_loopback()) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "day-two changes are made on host0 itself: run airlift-firstboot there",
        ));
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !token_ok(expected, presented) {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "the admin token is missing or wrong (airlift-firstboot reads it from \
             /var/lib/airlift/admin-token, as root)",
        ));
    }
    Ok(())
}

fn refuse(code: StatusCode, message: &str) -> Response {
    json_response(code, &serde_json::json!({ "error": message }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn peer(ip: &str) -> Peer {
        Peer {
            remote: format!("{ip}:40000").parse().unwrap(),
            local: "127.0.0.1:5000".parse().unwrap(),
        }
    }

    #[test]
    fn the_token_is_made_once_and_kept_private() {
        let t = tempfile::tempdir().unwrap();
        assert!(read_token(t.path()).is_err());
        let a = ensure_token(t.path()).unwrap();
        assert_eq!(a.len(), 64);
        assert_eq!(ensure_token(t.path()).unwrap(), a);
        assert_eq!(read_token(t.path()).unwrap(), a);
        let mode = std::fs::metadata(token_path(t.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn only_host0_itself_with_the_token_may_change_it() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(authorize("s3cret", &h, Some(&peer("127.0.0.1"))).is_ok());
        assert!(authorize("s3cret", &h, Some(&peer("[::1]"))).is_ok());
        let r = authorize("s3cret", &h, Some(&peer("10.0.0.5"))).unwrap_err();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(authorize("s3cret", &h, None).is_err());
        h.insert(header::AUTHORIZATION, "Bearer wrong".parse().unwrap());
        let r = authorize("s3cret", &h, Some(&peer("127.0.0.1"))).unwrap_err();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(authorize("", &HeaderMap::new(), Some(&peer("127.0.0.1"))).is_err());
    }
}
