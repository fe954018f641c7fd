//! systemd's readiness protocol: `READY=1` (and `STATUS=…`) as one
//! datagram to `$NOTIFY_SOCKET`, a path or an abstract name (`@…`).
//! Without the variable (not started by systemd), nothing is sent.

use std::os::unix::net::UnixDatagram;

use anyhow::{Context, Result};

/// Tell systemd the service is ready, if it is listening for that.
pub fn ready() -> Result<()> {
    notify("READY=1")
}

/// Send one state line to `$NOTIFY_SOCKET`; a no-op if the variable is unset.
pub fn notify(state: &str) -> Result<()> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(path) => notify_to(&path, state),
        None => Ok(()),
    }
}

/// Send one state line to the notification socket at `path` (a file
/// path, or `@name` for an abstract socket).
pub fn notify_to(path: &std::ffi::OsStr, state: &str) -> Result<()> {
    let sock = UnixDatagram::unbound().context("creating a socket for sd_notify")?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)
            .context("NOTIFY_SOCKET names an invalid abstract socket")?;
        sock.send_to_addr(state.as_bytes(), &addr)
    } else {
        sock.send_to(state.as_bytes(), path)
    }
    .with_context(|| format!("notifying systemd at {path:?}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_socket() {
        use std::os::unix::net::UnixDatagram;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("notify");
        let rx = UnixDatagram::bind(&p).unwrap();
        notify_to(p.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        let e = notify_to(dir.path().join("absent").as_os_str(), "READY=1").unwrap_err();
        assert!(format!("{e:#}").contains("absent"), "{e:#}");
    }
}
