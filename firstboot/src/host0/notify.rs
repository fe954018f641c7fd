//! systemd's readiness protocol: `READY=1` (and `STATUS=…`) as one
//! datagram to `$NOTIFY_SOCKET`, a path or an abstract name (`@…`).
//! Without the variable (not started by systemd), nothing is sent.

use std::os::unix::net::UnixDatagram;

use anyhow::{Context, Result};

/// Send `state` (e.g. `READY=1\nSTATUS=serving`) to systemd, if it asked.
/// Returns whether a message was sent.
pub fn notify(state: &str) -> Result<bool> {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let target = target.to_string_lossy().into_owned();
    let sock = UnixDatagram::unbound().context("creating a socket for sd_notify")?;
    if let Some(name) = target.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .with_context(|| format!("NOTIFY_SOCKET {target:?}"))?;
        sock.send_to_addr(state.as_bytes(), &addr)
    } else {
        sock.send_to(state.as_bytes(), &target)
    }
    .with_context(|| format!("notifying systemd at {target}"))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        // The variable is process-wide; this is the only test that sets it.
        std::env::set_var("NOTIFY_SOCKET", &path);
        assert!(notify("READY=1").unwrap());
        std::env::remove_var("NOTIFY_SOCKET");
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        assert!(!notify("READY=1").unwrap());
    }
}
