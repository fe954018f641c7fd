//! Extended attributes of the root filesystem that its image format
//! cannot hold: the builder's squashfs writer and the cpio initramfs
//! carry none, so the attributes a base image's layers set (file
//! capabilities such as `security.capability` on `ping`, SELinux labels,
//! `user.*` attributes) are listed in one file in the root,
//! [`MANIFEST_PATH`], and set on the booted root by
//! `airlift-firstboot xattrs` (`airlift-xattrs.service`, early in boot).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Where the list lives in the root filesystem (relative to `/`).
pub const MANIFEST_PATH: &str = "usr/lib/airlift/xattrs.json";

/// The list's schema name.
pub const SCHEMA: &str = "airlift.xattrs.v1";

/// Every file with extended attributes, sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema: String,
    pub files: Vec<FileAttrs>,
}

/// One file's attributes: name -> value (base64, standard alphabet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAttrs {
    /// Relative to `/` (`usr/bin/ping`).
    pub path: String,
    pub attrs: BTreeMap<String, String>,
}

impl Manifest {
    /// The list for `files` (path -> name -> raw value); `None` when no
    /// file has an attribute.
    pub fn from_raw<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a BTreeMap<String, Vec<u8>>)>,
    ) -> Option<Manifest> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut out: Vec<FileAttrs> = files
            .into_iter()
            .filter(|(_, a)| !a.is_empty())
            .map(|(p, a)| FileAttrs {
                path: p.trim_start_matches('/').to_string(),
                attrs: a.iter().map(|(k, v)| (k.clone(), b64.encode(v))).collect(),
            })
            .collect();
        if out.is_empty() {
            return None;
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Some(Manifest {
            schema: SCHEMA.to_string(),
            files: out,
        })
    }

    /// Each attribute in order, its value decoded; an undecodable value
    /// is an error naming the path and the attribute (never the value).
    pub fn entries(&self) -> Vec<Result<Entry<'_>, String>> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut out = Vec::new();
        for f in &self.files {
            for (name, value) in &f.attrs {
                out.push(
                    b64.decode(value)
                        .map(|raw| Entry {
                            path: f.path.as_str(),
                            name: name.as_str(),
                            value: raw,
                        })
                        .map_err(|_| {
                            format!("/{}: attribute {name}: the value is not base64", f.path)
                        }),
                );
            }
        }
        out
    }
}

/// One attribute of one file, its value decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Relative to `/`.
    pub path: &'a str,
    pub name: &'a str,
    pub value: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_empty_lists_are_none() {
        let cap: BTreeMap<String, Vec<u8>> =
            [("security.capability".to_string(), vec![1, 0, 0, 2, 0, 0x20])].into();
        let none: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        assert_eq!(Manifest::from_raw([("etc/x", &none)]), None);
        let m = Manifest::from_raw([("/usr/bin/ping", &cap), ("etc/x", &none)]).unwrap();
        assert_eq!(m.files.len(), 1);
        assert_eq!(m.files[0].path, "usr/bin/ping");
        let json = serde_json::to_string(&m).unwrap();
        let back: Manifest = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back.entries(),
            vec![Ok(Entry {
                path: "usr/bin/ping",
                name: "security.capability",
                value: vec![1, 0, 0, 2, 0, 0x20]
            })]
        );
        let mut bad = back.clone();
        bad.files[0]
            .attrs
            .insert("user.x".into(), "not base64!".into());
        let e = bad.entries().into_iter().find_map(Result::err).unwrap();
        assert!(e.contains("/usr/bin/ping") && e.contains("user.x"), "{e}");
    }
}
