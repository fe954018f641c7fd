//! Pointing host0's own container runtimes at its registry: the mirrors
//! module writes each runtime's files under the target root, the CA goes
//! into the trust store, and `update-ca-certificates` runs when the
//! root has it. A marker in the state folder, written only after all of
//! it succeeded, records the spec applied: the same spec is not applied
//! again, a changed one (new address, new CA) is.

use std::path::{Path, PathBuf};
use std::process::Command;

use airlift_oci::{atomic, Digest};
use anyhow::{Context, Result};

use crate::services::mirrors::{self, MirrorSpec, Runtime};

/// The marker's name in the state folder.
pub const MARKER: &str = "runtimes-configured";

/// The upstreams host0 mirrors: the appliance file's list, else the
/// default set.
pub fn upstreams(file_mirrors: &[String]) -> Vec<String> {
    if file_mirrors.is_empty() {
        mirrors::DEFAULT_UPSTREAMS
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        file_mirrors.to_vec()
    }
}

/// What was done.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// This very spec was applied by an earlier run.
    AlreadyDone,
    /// Applied now.
    Applied { changed: bool },
}

/// What [`write_files`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    /// This very spec was applied by an earlier run.
    AlreadyDone,
    /// Written now; [`finish`] must follow.
    Applied {
        /// Did any file change?
        changed: bool,
        /// The trust-store CA changed: `update-ca-certificates` is due.
        update_trust: bool,
    },
}

/// The marker's content for a spec, runtimes and root (pure).
pub fn marker_content(spec: &MirrorSpec, runtimes: &[Runtime], root: &Path) -> String {
    let names: Vec<&str> = runtimes.iter().map(|r| r.name()).collect();
    let text = format!(
        "{}\n{}\n{}",
        spec.to_json(),
        names.join(","),
        root.display()
    );
    format!("{}\n", Digest::sha256_of(text.as_bytes()))
}

/// Apply `spec` for `runtimes` under `root`, once per distinct spec:
/// [`write_files`], then [`finish`].
pub fn configure(
    root: &Path,
    state_dir: &Path,
    spec: &MirrorSpec,
    runtimes: &[Runtime],
) -> Result<Outcome> {
    match write_files(root, state_dir, spec, runtimes)? {
        Written::AlreadyDone => Ok(Outcome::AlreadyDone),
        Written::Applied {
            changed,
            update_trust,
        } => {
            finish(root, state_dir, spec, runtimes, update_trust)?;
            Ok(Outcome::Applied { changed })
        }
    }
}

/// Write the runtimes' files for `spec` under `root`, unless an earlier
/// run finished this very spec. Fast (no external commands but, when the
/// spec's trust policy asks for enforcement, the one sigstore probe per
/// process, a local `skopeo copy` of a tiny image: ~35 ms here): host0
/// does it before it reports ready, so the runtimes start with it.
pub fn write_files(
    root: &Path,
    state_dir: &Path,
    spec: &MirrorSpec,
    runtimes: &[Runtime],
) -> Result<Written> {
    let marker: PathBuf = state_dir.join(MARKER);
    let want = marker_content(spec, runtimes, root);
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(want.as_str()) {
        return Ok(Written::AlreadyDone);
    }
    let report = mirrors::apply(root, spec, runtimes).with_context(|| {
        format!(
            "writing the runtimes' mirror config under {}",
            root.display()
        )
    })?;
    for w in &report.warnings {
        tracing::warn!("{w}");
    }
    for p in report.written.iter().chain(&report.merged) {
        tracing::info!("wrote {}", p.display());
    }
    let update_trust = report
        .written
        .iter()
        .any(|p| p == Path::new(mirrors::trust::CA));
    Ok(Written::Applied {
        changed: report.changed(),
        update_trust,
    })
}

/// After [`write_files`] applied a spec: rebuild the system trust store if
/// the CA changed (slow: seconds natively, a minute under emulation, so
/// it runs after host0 is ready), then write the marker.
pub fn finish(
    root: &Path,
    state_dir: &Path,
    spec: &MirrorSpec,
    runtimes: &[Runtime],
    update_trust: bool,
) -> Result<()> {
    if update_trust {
        self::update_trust(root);
    }
    atomic::write(
        &state_dir.join(MARKER),
        marker_content(spec, runtimes, root).as_bytes(),
    )
}

/// Run `update-ca-certificates` in `root` if it has one (chrooted when
/// the root is not `/`); a failure is logged, not fatal: the runtimes
/// trust the CA through their own files anyway.
fn update_trust(root: &Path) {
    let rel = "usr/sbin/update-ca-certificates";
    if !root.join(rel).is_file() {
        tracing::info!(
            "no update-ca-certificates in {}; the CA is in the runtimes' own trust files",
            root.display()
        );
        return;
    }
    let mut cmd = if root == Path::new("/") {
        Command::new(Path::new("/").join(rel))
    } else {
        let mut c = Command::new("chroot");
        c.arg(root).arg(Path::new("/").join(rel));
        c
    };
    match cmd.output() {
        Ok(o) if o.status.success() => tracing::info!("updated the system trust store"),
        Ok(o) => tracing::warn!(
            "update-ca-certificates failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => tracing::warn!("could not run update-ca-certificates: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::mirrors::Endpoint;

    #[test]
    fn applies_once_per_spec() {
        let dir = tempfile::tempdir().unwrap();
        let (root, state) = (dir.path().join("root"), dir.path().join("state"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        let spec = MirrorSpec::new(vec![Endpoint::http("127.0.0.1:5000")], upstreams(&[]), None);
        let rts = [Runtime::Podman, Runtime::Containerd];
        assert_eq!(
            configure(&root, &state, &spec, &rts).unwrap(),
            Outcome::Applied { changed: true }
        );
        assert!(root
            .join("etc/containerd/certs.d/quay.io/hosts.toml")
            .is_file());
        assert_eq!(
            configure(&root, &state, &spec, &rts).unwrap(),
            Outcome::AlreadyDone
        );
        let other = MirrorSpec::new(
            vec![Endpoint::http("127.0.0.1:6000")],
            upstreams(&["quay.io".into()]),
            None,
        );
        assert_eq!(
            configure(&root, &state, &other, &rts).unwrap(),
            Outcome::Applied { changed: true }
        );
        assert_eq!(
            configure(&root, &state, &other, &rts).unwrap(),
            Outcome::AlreadyDone
        );
    }
}
