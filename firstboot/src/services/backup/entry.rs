//! The archive's entry names: which paths a backup may hold, what each
//! is, and the mode it is restored with. Pure; restore refuses any other
//! name (an absolute path, `..`, a hidden or unknown file) naming it.

use airlift_oci::{Algorithm, Digest};
use anyhow::{bail, Result};

/// The archive's first entry.
pub const INFO: &str = "airlift-backup.json";
/// The registry metadata files' prefix.
pub const META: &str = "airlift/registry/repositories/";
/// The releases state file.
pub const STATE: &str = "airlift/releases/state.json";
/// A release dir's files' prefix.
pub const RELEASES: &str = "airlift/releases/";
/// The TLS files' prefix (`DATA/tls/<name>`).
pub const TLS: &str = "airlift/private/tls/";
/// The admin token (`DATA/admin-token`).
pub const ADMIN_TOKEN: &str = "airlift/private/admin-token";
/// The node table as host0 reported it.
pub const NODES: &str = "airlift/nodes.json";

/// The small files a release dir holds (its `blobs` is a link, remade).
pub const RELEASE_FILES: [&str; 4] = ["oci-layout", "index.json", "bundle.json", "update.json"];
/// The files of `DATA/tls` a backup carries.
pub const TLS_FILES: [&str; 5] = [
    "ca.crt",
    "ca.key",
    "server.crt",
    "server.key",
    "server.sans",
];

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Info,
    /// The archive's own `oci-layout` and `index.json` (not restored:
    /// they make the archive an OCI layout other tools can read).
    LayoutFile,
    Blob(Digest),
    /// A metadata file, relative to `repositories/`.
    Meta(String),
    State,
    /// A release dir's file: the bundle hex and the file name.
    ReleaseFile(String, String),
    /// A `DATA/tls` file name.
    Tls(String),
    AdminToken,
    Nodes,
}

impl Kind {
    /// The mode the file is written with (and restored with): keys and
    /// the token 0600, certificates 0644, the rest 0600 as host0 writes.
    pub fn mode(&self) -> u32 {
        match self {
            Kind::Tls(n) if !n.ends_with(".key") => 0o644,
            Kind::Info | Kind::LayoutFile | Kind::Blob(_) => 0o644,
            _ => 0o600,
        }
    }
}

/// Classify an entry name, refusing anything a backup never holds.
pub fn classify(path: &str) -> Result<Kind> {
    let refuse = |why: &str| -> Result<Kind> {
        bail!("entry {path:?} is refused: {why}; this is not a backup airlift-firstboot wrote")
    };
    if path.starts_with('/') {
        return refuse("an absolute path");
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c.starts_with('.') || !c.bytes().all(name_byte))
    {
        return refuse("an empty, hidden, `..` or unusual path component");
    }
    Ok(match path {
        INFO => Kind::Info,
        "oci-layout" | "index.json" => Kind::LayoutFile,
        STATE => Kind::State,
        ADMIN_TOKEN => Kind::AdminToken,
        NODES => Kind::Nodes,
        _ => {
            if let Some(hex) = path.strip_prefix("blobs/sha256/") {
                match Digest::new(Algorithm::Sha256, hex) {
                    Ok(d) => Kind::Blob(d),
                    Err(_) => return refuse("not a sha256 blob name"),
                }
            } else if let Some(rel) = path.strip_prefix(META) {
                if !["/_manifests/", "/_tags/", "/_referrers/"]
                    .iter()
                    .any(|m| rel.contains(m))
                {
                    return refuse("not a registry metadata file");
                }
                Kind::Meta(rel.to_string())
            } else if let Some(name) = path.strip_prefix(TLS) {
                if !TLS_FILES.contains(&name) {
                    return refuse("not a TLS file airlift keeps");
                }
                Kind::Tls(name.to_string())
            } else if let Some(rest) = path.strip_prefix(RELEASES) {
                match rest.split_once('/') {
                    Some((hex, file))
                        if Digest::new(Algorithm::Sha256, hex).is_ok()
                            && RELEASE_FILES.contains(&file) =>
                    {
                        Kind::ReleaseFile(hex.to_string(), file.to_string())
                    }
                    _ => return refuse("not a release file"),
                }
            } else {
                return refuse("unknown");
            }
        }
    })
}

/// Bytes a name component may hold: what repository names, tags,
/// digests and the fixed file names use.
fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn knows_every_entry_a_backup_holds() {
        assert_eq!(classify(INFO).unwrap(), Kind::Info);
        assert_eq!(classify("index.json").unwrap(), Kind::LayoutFile);
        assert!(matches!(
            classify(&format!("blobs/sha256/{HEX}")).unwrap(),
            Kind::Blob(d) if d.hex() == HEX
        ));
        assert_eq!(
            classify("airlift/registry/repositories/quay.io/org/app/_tags/1.0").unwrap(),
            Kind::Meta("quay.io/org/app/_tags/1.0".into())
        );
        assert_eq!(
            classify(&format!("airlift/releases/{HEX}/bundle.json")).unwrap(),
            Kind::ReleaseFile(HEX.into(), "bundle.json".into())
        );
        assert_eq!(classify(STATE).unwrap(), Kind::State);
        let key = classify("airlift/private/tls/ca.key").unwrap();
        assert_eq!(key.mode(), 0o600);
        assert_eq!(
            classify("airlift/private/tls/ca.crt").unwrap().mode(),
            0o644
        );
        assert_eq!(classify(ADMIN_TOKEN).unwrap().mode(), 0o600);
        assert_eq!(classify(NODES).unwrap(), Kind::Nodes);
    }

    #[test]
    fn refuses_hostile_and_unknown_names_naming_them() {
        for bad in [
            "../x",
            "/etc/passwd",
            "blobs/sha256/../../x",
            "airlift/registry/repositories/../../../etc/_tags/x",
            "airlift/registry/repositories/app/.tmp-1/_tags/x",
            "airlift/registry/repositories/app/data",
            "blobs/sha256/abc",
            "blobs/sha512/00",
            "airlift/private/tls/other.key",
            &format!("airlift/releases/{HEX}/blobs"),
            "airlift/releases/xyz/index.json",
            "etc/shadow",
            "a//b",
            "x y",
            "",
        ] {
            let e = classify(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }
}
