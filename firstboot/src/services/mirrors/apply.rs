//! Writing the rendered files under a target root (`/` on a live node, a
//! temp folder in tests, a mounted root filesystem at build time).
//!
//! Every file's final content is computed first (merges included); only
//! when all succeed is anything written, so a malformed user file stops
//! the run before any config changes. Then, per file:
//! - identical content already there: left untouched (a re-run changes nothing);
//! - a different file there: backed up, then replaced atomically (temp
//!   file in the same folder, fsync, rename, folder fsync), keeping the
//!   old file's permissions.
//!
//! Backups: the first time airlift replaces a file, the old one becomes
//! `<file>.airlift-orig`, which is never overwritten afterwards, so the
//! user's original is never lost. Later replacements save the file being
//! replaced as `<file>.airlift-prev` (overwritten each time).

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use airlift_oci::atomic::write_with_mode;
use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::containerd::{self, ConfigCheck};
use super::rancher::Flavour;
use super::{
    docker, files_for, rancher, signature_probe, signatures, trust, FileKind, MirrorSpec,
    RenderedFile, Runtime, Sigstore,
};

/// Suffix of the never-overwritten backup of the user's original file.
pub const ORIG_SUFFIX: &str = ".airlift-orig";
/// Suffix of the backup of the file replaced by the latest change.
pub const PREV_SUFFIX: &str = ".airlift-prev";

/// What [`apply`] did. Paths are as on the node (`/etc/...`), not under
/// the root.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    /// Files created or replaced whole.
    pub written: Vec<PathBuf>,
    /// Existing files our settings were merged into.
    pub merged: Vec<PathBuf>,
    /// Files that already had the right content.
    pub unchanged: Vec<PathBuf>,
    /// Existing files that are the user's and were left alone on purpose
    /// (a base registries.conf, containerd's config.toml).
    pub kept: Vec<PathBuf>,
    /// Backups made of replaced files (under the root).
    pub backups: Vec<PathBuf>,
    /// What the user must do by hand (e.g. a missing containerd `config_path`).
    pub warnings: Vec<String>,
    /// Commands to run on the node afterwards (e.g. `update-ca-certificates`).
    pub run_after: Vec<Vec<String>>,
}

impl ApplyReport {
    /// Did anything change on disk?
    pub fn changed(&self) -> bool {
        !self.written.is_empty() || !self.merged.is_empty()
    }
}

/// Every file the runtimes need, plus the trust-store CA and the
/// signature files (`sigstore`: what containers/image here can verify);
/// deduplicated by path (CRI-O and podman share theirs).
pub fn plan_files(
    spec: &MirrorSpec,
    runtimes: &[Runtime],
    sigstore: &Sigstore,
) -> Result<Vec<RenderedFile>> {
    let mut by_path: BTreeMap<PathBuf, RenderedFile> = BTreeMap::new();
    let all = runtimes
        .iter()
        .flat_map(|r| files_for(spec, *r))
        .chain(trust::files(spec))
        .chain(signatures::files(spec, sigstore));
    for f in all {
        match by_path.get(&f.path) {
            Some(prev) if prev != &f => {
                bail!("two runtimes render {} differently", f.path.display())
            }
            Some(_) => {}
            None => {
                by_path.insert(f.path.clone(), f);
            }
        }
    }
    // CA and key files first, so no config ever names a CA or a key that
    // is not there yet.
    let mut files: Vec<RenderedFile> = by_path.into_values().collect();
    files.sort_by_key(|f| {
        !matches!(
            f.path.extension().and_then(|e| e.to_str()),
            Some("crt" | "pub")
        )
    });
    Ok(files)
}

/// One file's decision.
struct Step {
    file: RenderedFile,
    target: PathBuf,
    existing: Option<Vec<u8>>,
    /// `None`: leave the file as it is.
    new: Option<String>,
}

/// Write the mirror config for `runtimes` under `root`, and the
/// signature files for what this machine's containers/image can verify
/// ([`signature_probe::detect_for`]).
pub fn apply(root: &Path, spec: &MirrorSpec, runtimes: &[Runtime]) -> Result<ApplyReport> {
    apply_with(root, spec, runtimes, &signature_probe::detect_for(spec))
}

/// [`apply()`] with the probe's answer given.
pub fn apply_with(
    root: &Path,
    spec: &MirrorSpec,
    runtimes: &[Runtime],
    sigstore: &Sigstore,
) -> Result<ApplyReport> {
    spec.validate()?;
    let mut report = ApplyReport::default();
    if let Some(w) = signatures::warning(spec, sigstore) {
        tracing::warn!("{w}");
        report.warnings.push(w);
    }

    let mut steps = Vec::new();
    for file in plan_files(spec, runtimes, sigstore)? {
        let target = under_root(root, &file.path)?;
        // Files only read (never written) may be links, as the user set them up.
        let read_only = matches!(file.kind, FileKind::IfAbsent | FileKind::ContainerdConfig);
        let existing = read_existing(&target, read_only)?;
        let text = || -> Result<&str> {
            std::str::from_utf8(existing.as_deref().unwrap_or_default()).with_context(|| {
                format!(
                    "{} is not UTF-8 text; fix or move it, then re-run",
                    target.display()
                )
            })
        };
        let new = match (file.kind, &existing) {
            (FileKind::Owned, _) | (_, None) => Some(file.content.clone()),
            (FileKind::IfAbsent, Some(_)) => None,
            (FileKind::ContainerdConfig, Some(_)) => {
                if let ConfigCheck::NeedsChange(w) = containerd::check_config(text()?) {
                    tracing::warn!("{w}");
                    report.warnings.push(w);
                }
                None
            }
            (FileKind::MergeRancher, Some(_)) => {
                let flavour = if file.path.starts_with(Flavour::K3s.dir()) {
                    Flavour::K3s
                } else {
                    Flavour::Rke2
                };
                Some(rancher::merge(text()?, spec, flavour)?)
            }
            (FileKind::MergeDocker, Some(_)) => Some(docker::merge(text()?, spec)?),
            (FileKind::MergePolicyJson, Some(_)) => {
                let trust = spec
                    .trust
                    .as_ref()
                    .context("policy.json rendered without a trust policy")?;
                Some(
                    signatures::merge_policy_json(text()?, trust).with_context(|| {
                        format!(
                            "{} cannot take airlift's signature requirements",
                            target.display()
                        )
                    })?,
                )
            }
        };
        steps.push(Step {
            file,
            target,
            existing,
            new,
        });
    }

    for step in steps {
        let path = step.file.path.clone();
        let Some(new) = step.new else {
            report.kept.push(path);
            continue;
        };
        if step.existing.as_deref() == Some(new.as_bytes()) {
            report.unchanged.push(path);
            continue;
        }
        let mode = match &step.existing {
            Some(_) => {
                fs::metadata(&step.target)
                    .with_context(|| {
                        format!("reading the permissions of {}", step.target.display())
                    })?
                    .permissions()
                    .mode()
                    & 0o7777
            }
            None => 0o644,
        };
        if let Some(old) = &step.existing {
            report.backups.push(back_up(&step.target, old, mode)?);
        }
        write_with_mode(&step.target, new.as_bytes(), mode)?;
        if path == Path::new(trust::CA) {
            report.run_after.push(trust::update_command());
        }
        let merged = matches!(
            step.file.kind,
            FileKind::MergeRancher | FileKind::MergeDocker | FileKind::MergePolicyJson
        ) && step.existing.is_some();
        if merged {
            report.merged.push(path);
        } else {
            report.written.push(path);
        }
    }
    Ok(report)
}

/// `root` + an absolute node path, refusing `..` and other escapes.
pub fn under_root(root: &Path, path: &Path) -> Result<PathBuf> {
    let mut out = root.to_path_buf();
    for c in path.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(p) => out.push(p),
            _ => bail!(
                "refusing to write {}: not a plain absolute path",
                path.display()
            ),
        }
    }
    Ok(out)
}

/// The file's bytes, `None` when it does not exist. Symlinks are refused
/// for files that may be written (a rename would replace the link, not
/// the file it points to); for `read_only` ones the link is followed, and
/// a dangling link counts as an existing, empty file.
fn read_existing(target: &Path, read_only: bool) -> Result<Option<Vec<u8>>> {
    match fs::symlink_metadata(target) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", target.display())),
        Ok(m) if m.file_type().is_symlink() && read_only => {
            return match fs::read(target) {
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(Some(Vec::new())),
                r => r.map(Some).with_context(|| format!("reading {}", target.display())),
            };
        }
        Ok(m) if m.file_type().is_symlink() => bail!(
            "{} is a symlink; airlift does not write through links. Replace it with a plain file, then re-run",
            target.display()
        ),
        Ok(m) if !m.is_file() => bail!("{} exists but is not a regular file", target.display()),
        Ok(_) => {}
    }
    fs::read(target)
        .map(Some)
        .with_context(|| format!("reading {}", target.display()))
}

/// Save `old` (the content of `target`) before it is replaced.
fn back_up(target: &Path, old: &[u8], mode: u32) -> Result<PathBuf> {
    let with = |suffix: &str| {
        let mut p = target.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    let orig = with(ORIG_SUFFIX);
    let backup = if orig.exists() {
        with(PREV_SUFFIX)
    } else {
        orig
    };
    write_with_mode(&backup, old, mode)?;
    Ok(backup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_root_refuses_escapes() {
        let r = Path::new("/tmp/r");
        assert_eq!(
            under_root(r, Path::new("/etc/x")).unwrap(),
            Path::new("/tmp/r/etc/x")
        );
        assert!(under_root(r, Path::new("/etc/../x")).is_err());
    }
}
