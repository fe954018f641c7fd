//! Setting the root filesystem's extended attributes the image format
//! could not hold (`airlift_appliance::xattrs`): each listed attribute is
//! set on the path below `root` without following a final symlink.
//! Every entry is tried; failures are reported one by one, never the
//! attribute values. An attribute the root's filesystem does not support
//! (`user.*` on tmpfs before Linux 6.6: the RAM layer of a root read
//! from the media, or a root in the initramfs) is reported as
//! unsupported, not as a failure: nothing on this machine can hold it.

use std::path::Path;

use airlift_appliance::xattrs::{Entry, Manifest};

/// What [`apply`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Attributes set.
    pub set: usize,
    /// `/path: attribute NAME: why`, one per attribute the filesystem
    /// does not support.
    pub unsupported: Vec<String>,
    /// `/path: attribute NAME: why`, one per attribute not set.
    pub failed: Vec<String>,
}

/// Sets every attribute of `list` on the files below `root`.
pub fn apply(root: &Path, list: &Manifest) -> Result<Report, String> {
    if list.schema != airlift_appliance::xattrs::SCHEMA {
        return Err(format!(
            "unknown schema {:?} (this airlift-firstboot reads {})",
            list.schema,
            airlift_appliance::xattrs::SCHEMA
        ));
    }
    let mut report = Report::default();
    for entry in list.entries() {
        let Entry { path, name, value } = match entry {
            Ok(e) => e,
            Err(e) => {
                report.failed.push(e);
                continue;
            }
        };
        if path.split('/').any(|c| c == ".." || c.is_empty()) {
            report.failed.push(format!(
                "/{path}: attribute {name}: not a plain path below /"
            ));
            continue;
        }
        let target = root.join(path);
        match rustix::fs::lsetxattr(&target, name, &value, rustix::fs::XattrFlags::empty()) {
            Ok(()) => report.set += 1,
            Err(e) if e == rustix::io::Errno::OPNOTSUPP => report.unsupported.push(format!(
                "/{path}: attribute {name}: the root's filesystem does not support it"
            )),
            Err(e) => report
                .failed
                .push(format!("/{path}: attribute {name}: {e}")),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn list(files: &[(&str, &str, &[u8])]) -> Manifest {
        let mut raw: BTreeMap<&str, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
        for (p, n, v) in files {
            raw.entry(p).or_default().insert(n.to_string(), v.to_vec());
        }
        Manifest::from_raw(raw.iter().map(|(p, a)| (*p, a))).unwrap()
    }

    /// Whether `dir`'s filesystem holds `user.*` attributes (tmpfs before
    /// Linux 6.6 does not).
    fn user_xattrs_work(dir: &Path) -> bool {
        let probe = dir.join("probe");
        std::fs::write(&probe, b"").unwrap();
        let ok = rustix::fs::lsetxattr(&probe, "user.probe", b"1", rustix::fs::XattrFlags::empty())
            .is_ok();
        std::fs::remove_file(&probe).unwrap();
        ok
    }

    #[test]
    fn attributes_are_set_and_failures_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("usr/bin")).unwrap();
        std::fs::write(dir.path().join("usr/bin/tool"), b"x").unwrap();
        let mut l = list(&[
            ("usr/bin/tool", "user.airlift_test", b"v1"),
            ("usr/bin/missing", "user.airlift_test", b"v2"),
            ("usr/../etc/x", "user.airlift_test", b"v3"),
            ("usr/bin/tool2", "user.bad", b"v4"),
        ]);
        l.files[3]
            .attrs
            .insert("user.bad".into(), "not base64!".into());
        let r = apply(dir.path(), &l).unwrap();
        let names = |v: &[String]| v.join("\n");
        assert!(
            r.failed
                .iter()
                .any(|f| f.starts_with("/usr/bin/missing: attribute user.airlift_test: ")),
            "{}",
            names(&r.failed)
        );
        assert!(r.failed.iter().any(|f| f.contains("not a plain path")));
        assert!(
            r.failed
                .iter()
                .any(|f| f == "/usr/bin/tool2: attribute user.bad: the value is not base64"),
            "{}",
            names(&r.failed)
        );
        if user_xattrs_work(dir.path()) {
            assert_eq!(
                (r.set, r.failed.len(), r.unsupported.len()),
                (1, 3, 0),
                "{r:?}"
            );
            let mut buf = [0u8; 16];
            let n = rustix::fs::lgetxattr(
                dir.path().join("usr/bin/tool"),
                "user.airlift_test",
                &mut buf,
            )
            .unwrap();
            assert_eq!(&buf[..n], b"v1");
        } else {
            // The set one is reported unsupported, not failed.
            assert_eq!(
                (r.set, r.failed.len(), r.unsupported.len()),
                (0, 3, 1),
                "{r:?}"
            );
            assert!(r.unsupported[0].starts_with("/usr/bin/tool: attribute user.airlift_test"));
        }
    }

    #[test]
    fn a_file_capability_is_set_when_root() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: setting security.capability needs root (CAP_SETFCAP)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ping"), b"x").unwrap();
        // VFS_CAP_REVISION_2, permitted = CAP_NET_RAW (13), not effective.
        let cap: &[u8] = &[
            1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let r = apply(dir.path(), &list(&[("ping", "security.capability", cap)])).unwrap();
        assert_eq!(
            r,
            Report {
                set: 1,
                ..Report::default()
            }
        );
        let mut buf = [0u8; 64];
        let n = rustix::fs::lgetxattr(dir.path().join("ping"), "security.capability", &mut buf)
            .unwrap();
        assert_eq!(&buf[..n], cap);
    }

    #[test]
    fn an_unknown_schema_is_refused() {
        let mut l = list(&[("x", "user.a", b"1")]);
        l.schema = "airlift.xattrs.v9".into();
        assert!(apply(Path::new("/nonexistent"), &l)
            .unwrap_err()
            .contains("airlift.xattrs.v9"));
    }
}
