//! The CA in the system trust store, for every other HTTPS client on the
//! node (curl, kubelet's image credential helpers, Go programs).
//!
//! Debian's `update-ca-certificates` picks up `*.crt` files under
//! `/usr/local/share/ca-certificates`; running it is the caller's business
//! ([`update_command`]), since it touches the live system.

use super::{MirrorSpec, RenderedFile};

/// Where the CA goes.
pub const CA: &str = "/usr/local/share/ca-certificates/airlift-ca.crt";

/// The CA file, when the spec has a CA and an HTTPS endpoint.
pub fn files(spec: &MirrorSpec) -> Vec<RenderedFile> {
    spec.ca_file_content()
        .map(|ca| RenderedFile::owned(CA, ca))
        .into_iter()
        .collect()
}

/// The command that rebuilds the trust bundle after [`CA`] changed
/// (to run on the node itself, or in a chroot of the target root).
pub fn update_command() -> Vec<String> {
    vec!["update-ca-certificates".to_string()]
}
