//! Copying the bundle from the media into the registry's data store, in
//! the background, while the registry already serves from the media.
//!
//! - Every blob is hashed as it is copied and renamed into place only
//!   when digest and size match ([`airlift_oci::BlobWriter`]), so a
//!   blob in the data store is always whole and verified.
//! - Resumable: what is done is read back from disk (a blob present with
//!   its size is done: it got there only by a verified rename). A small
//!   progress file, written atomically, records the counters and whether
//!   the load completed for this bundle (by the digest of its
//!   `index.json`), so a finished load is not scanned again.
//! - Then host0 records the bundle as a release (a small layout whose
//!   blobs are the registry's, [`crate::services::releases`]) and serves
//!   it as the store's read-only layer: bundled images never enter the
//!   data folder's metadata, which holds pushed content only.
//!
//! Whether to copy at all is [`should_copy`]: not onto RAM (tmpfs or
//! ramfs) unless asked to, since the appliance then runs from RAM and a
//! copy would only double the memory the bundle takes.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use airlift_oci::{atomic, Descriptor, Digest, Layout};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::services::status::{Progress, Status};

/// The progress file's name in host0's state folder.
pub const PROGRESS_FILE: &str = "load-progress.json";

/// What the progress file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ProgressFile {
    /// `sha256:…` of the media bundle's `index.json`.
    pub bundle: String,
    pub blobs_done: u64,
    pub blobs_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// Every blob copied and every image registered.
    pub complete: bool,
}

impl ProgressFile {
    /// Read the file; None when it is missing or unreadable (a fresh
    /// scan then works it out again from the blobs on disk).
    pub fn read(path: &Path) -> Option<ProgressFile> {
        let bytes = std::fs::read(path).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Write the file atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).context("encoding the load progress")?;
        atomic::write(path, &json)
    }
}

/// Why the bundle is or is not copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyDecision {
    /// Copy: persistent storage, or forced.
    Copy,
    /// Serve from the media only: the data folder is in RAM and there is
    /// no data disk.
    MediaOnly,
}

/// Linux `f_type` of tmpfs and ramfs.
const TMPFS_MAGIC: i64 = 0x0102_1994;
const RAMFS_MAGIC: i64 = 0x8584_58f6;

/// Linux `f_type` of overlayfs.
const OVERLAYFS_MAGIC: i64 = 0x794c_7630;

/// Where airlift's stage 1 keeps the writable layer of the root overlay
/// (a tmpfs) when the root filesystem is read from the media.
pub const STAGE1_UPPER: &str = "/run/airlift/root-rw";

/// Is this `statfs` filesystem type RAM-backed?
pub fn is_ram_fs(f_type: i64) -> bool {
    f_type == TMPFS_MAGIC || f_type == RAMFS_MAGIC
}

/// Is a folder of filesystem type `f_type` in RAM, given the type of
/// stage 1's overlay upper layer (None when there is none)? An overlay
/// is when its writes land in a RAM-backed upper layer.
pub fn in_ram(f_type: i64, upper_f_type: Option<i64>) -> bool {
    is_ram_fs(f_type) || (f_type == OVERLAYFS_MAGIC && upper_f_type.is_some_and(is_ram_fs))
}

/// Decide whether to copy (pure).
pub fn decide(data_in_ram: bool, has_data_disk: bool, force: bool) -> CopyDecision {
    if force || has_data_disk || !data_in_ram {
        CopyDecision::Copy
    } else {
        CopyDecision::MediaOnly
    }
}

/// Decide for the folder `data` (statfs of it).
pub fn should_copy(data: &Path, has_data_disk: bool, force: bool) -> Result<CopyDecision> {
    let fs =
        nix::sys::statfs::statfs(data).with_context(|| format!("statfs of {}", data.display()))?;
    let f_type = |s: nix::sys::statfs::Statfs| -> i64 {
        #[allow(clippy::unnecessary_cast)] // not i64 on every libc
        let t = s.filesystem_type().0 as i64;
        t
    };
    let upper = nix::sys::statfs::statfs(STAGE1_UPPER).ok().map(f_type);
    let ram = in_ram(f_type(fs), upper);
    Ok(decide(ram, has_data_disk, force))
}

/// Every blob the bundle's images reach, each once, in index order.
pub fn plan(bundle: &Layout) -> Result<Vec<Descriptor>> {
    let index = bundle.read_index()?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for entry in &index.manifests {
        for d in bundle.reachable(entry).with_context(|| {
            format!(
                "{}: image {}",
                bundle.root().display(),
                entry.ref_name().unwrap_or("(unnamed)")
            )
        })? {
            if seen.insert(d.digest.clone()) {
                out.push(d);
            }
        }
    }
    Ok(out)
}

/// `sha256:…` of a bundle's `index.json`: names the bundle in the progress file.
pub fn bundle_id(bundle: &Layout) -> Result<String> {
    let p = bundle.root().join("index.json");
    let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
    Ok(Digest::sha256_of(&bytes).to_string())
}

/// How often progress is logged and saved.
#[derive(Debug, Clone, Copy)]
pub struct Reporting {
    /// Log when this many more percent are done…
    pub percent_step: u64,
    /// …or this long has passed.
    pub interval: Duration,
}

impl Default for Reporting {
    fn default() -> Self {
        Reporting {
            percent_step: 10,
            interval: Duration::from_secs(5),
        }
    }
}

/// Copy every blob of `blobs` from `bundle` into `data`, verifying each,
/// skipping blobs already there, updating `status` and the progress file.
pub fn copy_blobs(
    bundle: &Layout,
    data: &Layout,
    blobs: &[Descriptor],
    status: &Status,
    progress_path: &Path,
    reporting: Reporting,
) -> Result<Progress> {
    let id = bundle_id(bundle)?;
    let mut p = Progress {
        blobs_total: blobs.len() as u64,
        bytes_total: blobs.iter().map(|d| d.size).sum(),
        ..Progress::default()
    };
    status.start_load(p);
    let save = |p: &Progress, complete: bool| -> Result<()> {
        ProgressFile {
            bundle: id.clone(),
            blobs_done: p.blobs_done,
            blobs_total: p.blobs_total,
            bytes_done: p.bytes_done,
            bytes_total: p.bytes_total,
            complete,
        }
        .write(progress_path)
    };
    let (mut last_log, mut last_percent) = (Instant::now(), 0u64);
    for desc in blobs {
        if !blob_present(data, desc)? {
            copy_one(bundle, data, &desc.digest, desc.size)?;
            p.bytes_copied += desc.size;
        }
        p.blobs_done += 1;
        p.bytes_done += desc.size;
        status.set_progress(p);
        let percent = p.percent();
        if percent >= last_percent + reporting.percent_step
            || last_log.elapsed() >= reporting.interval
        {
            tracing::info!(
                "loading the bundle: {percent}% ({}/{} blobs, {}/{} MB)",
                p.blobs_done,
                p.blobs_total,
                p.bytes_done / 1_000_000,
                p.bytes_total / 1_000_000
            );
            save(&p, false)?;
            last_log = Instant::now();
            last_percent = percent - percent % reporting.percent_step.max(1);
        }
    }
    save(&p, false)?;
    Ok(p)
}

/// Is the blob in `data` already, whole? A file of the wrong size (not
/// made by us: ours are renamed into place only when verified) is removed.
fn blob_present(data: &Layout, desc: &Descriptor) -> Result<bool> {
    let path = data.blob_path(&desc.digest);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() && m.len() == desc.size => Ok(true),
        Ok(m) => {
            tracing::warn!(
                "{} has {} bytes, not {}; copying it again",
                path.display(),
                m.len(),
                desc.size
            );
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("checking {}", path.display())),
    }
}

/// Copy one blob, hashing as it streams; renamed into place only if the
/// digest and size match (an update load copies with it too).
pub fn copy_one(bundle: &Layout, data: &Layout, digest: &Digest, size: u64) -> Result<()> {
    let src = bundle.blob_path(digest);
    let file = File::open(&src)
        .with_context(|| format!("opening blob {} on the media ({})", digest, src.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut writer = data.blob_writer(digest.algorithm())?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader
            .read(&mut buf)
            .with_context(|| format!("reading blob {} from {}", digest, src.display()))?;
        if n == 0 {
            break;
        }
        writer
            .write_all(&buf[..n])
            .with_context(|| format!("writing blob {} to {}", digest, data.root().display()))?;
    }
    writer.commit(Some(digest), Some(size)).with_context(|| {
        format!(
            "blob {} on the media ({}) is corrupt; the media may be damaged: re-write it \
                 and check it with `airlift verify`",
            digest,
            src.display()
        )
    })?;
    Ok(())
}

/// Mark the load complete in the progress file.
pub fn mark_complete(progress_path: &Path, bundle: &Layout, p: &Progress) -> Result<()> {
    ProgressFile {
        bundle: bundle_id(bundle)?,
        blobs_done: p.blobs_done,
        blobs_total: p.blobs_total,
        bytes_done: p.bytes_done,
        bytes_total: p.bytes_total,
        complete: true,
    }
    .write(progress_path)
}

/// Did an earlier run finish loading this very bundle?
pub fn already_complete(progress_path: &Path, bundle: &Layout) -> Result<Option<ProgressFile>> {
    let id = bundle_id(bundle)?;
    Ok(ProgressFile::read(progress_path).filter(|p| p.complete && p.bundle == id))
}

/// The state folder's progress file path.
pub fn progress_path(state_dir: &Path) -> PathBuf {
    state_dir.join(PROGRESS_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::status::{Identity, LoadState};
    use airlift_oci::documents::media;

    fn status() -> Status {
        Status::new(
            Identity {
                name: "t".into(),
                version: "1".into(),
                registry: "http://x".into(),
                ca_fingerprint: None,
                started_at: "now".into(),
            },
            LoadState::Loading,
        )
    }

    #[test]
    fn decides_when_to_copy() {
        assert_eq!(decide(true, false, false), CopyDecision::MediaOnly);
        // The root overlay stage 1 mounts over a tmpfs is RAM too.
        assert!(in_ram(OVERLAYFS_MAGIC, Some(TMPFS_MAGIC)));
        assert!(!in_ram(OVERLAYFS_MAGIC, None));
        assert!(!in_ram(OVERLAYFS_MAGIC, Some(0xEF53)));
        assert!(!in_ram(0xEF53, Some(TMPFS_MAGIC)));
        assert!(in_ram(TMPFS_MAGIC, None));
        assert_eq!(decide(true, true, false), CopyDecision::Copy);
        assert_eq!(decide(true, false, true), CopyDecision::Copy);
        assert_eq!(decide(false, false, false), CopyDecision::Copy);
        assert!(is_ram_fs(0x0102_1994));
        assert!(is_ram_fs(0x8584_58f6));
        assert!(!is_ram_fs(0xEF53));
    }

    /// A layout with one manifest naming `n` layer blobs.
    fn bundle(dir: &Path, n: usize) -> Layout {
        let l = Layout::create(dir).unwrap();
        let (config, csize) = l.put_blob(b"{}", None).unwrap();
        let mut layers = Vec::new();
        for i in 0..n {
            let data = format!("layer {i}").repeat(1000);
            let (d, s) = l.put_blob(data.as_bytes(), None).unwrap();
            layers.push(Descriptor::new(media::OCI_LAYER_TAR, d, s));
        }
        let m = serde_json::json!({
            "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
            "config": Descriptor::new(media::OCI_CONFIG, config, csize),
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&m).unwrap();
        let (md, ms) = l.put_blob(&bytes, None).unwrap();
        let mut desc = Descriptor::new(media::OCI_MANIFEST, md, ms);
        desc.annotations.insert(
            airlift_oci::documents::REF_NAME.to_string(),
            "quay.io/t/app:1.0".to_string(),
        );
        let mut index = l.read_index().unwrap();
        index.manifests.push(desc);
        l.write_index(&index).unwrap();
        l
    }

    #[test]
    fn copies_verifies_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let src = bundle(&dir.path().join("media"), 5);
        let data = Layout::create(&dir.path().join("data")).unwrap();
        let blobs = plan(&src).unwrap();
        assert_eq!(blobs.len(), 7);
        let progress = dir.path().join(PROGRESS_FILE);

        // A blob of the wrong size (not ours) is replaced; a whole one is kept.
        let bad = data.blob_path(&blobs[3].digest);
        std::fs::write(&bad, b"junk").unwrap();
        data.put_blob(&src.read_blob(&blobs[1].digest).unwrap(), None)
            .unwrap();

        let st = status();
        let p = copy_blobs(&src, &data, &blobs, &st, &progress, Reporting::default()).unwrap();
        assert_eq!(p.blobs_done, 7);
        assert_eq!(p.bytes_done, p.bytes_total);
        assert!(p.bytes_copied < p.bytes_total);
        for d in &blobs {
            data.read_blob(&d.digest).unwrap();
        }
        let f = ProgressFile::read(&progress).unwrap();
        assert_eq!((f.blobs_done, f.complete), (7, false));
        assert!(already_complete(&progress, &src).unwrap().is_none());
        mark_complete(&progress, &src, &p).unwrap();
        assert!(already_complete(&progress, &src).unwrap().is_some());

        // Again: nothing to copy.
        let p2 = copy_blobs(&src, &data, &blobs, &st, &progress, Reporting::default()).unwrap();
        assert_eq!(p2.bytes_copied, 0);
    }

    #[test]
    fn a_corrupt_media_blob_is_named_and_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let src = bundle(&dir.path().join("media"), 2);
        let data = Layout::create(&dir.path().join("data")).unwrap();
        let blobs = plan(&src).unwrap();
        let victim = blobs
            .iter()
            .find(|d| d.media_type == media::OCI_LAYER_TAR)
            .unwrap();
        let path = src.blob_path(&victim.digest);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[0] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let err = copy_blobs(
            &src,
            &data,
            &blobs,
            &status(),
            &dir.path().join(PROGRESS_FILE),
            Reporting::default(),
        )
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains(&victim.digest.to_string()) && msg.contains("corrupt"),
            "{msg}"
        );
        assert!(!data.has_blob(&victim.digest));
        assert_eq!(
            airlift_oci::atomic::remove_stale_temps(data.root()).unwrap(),
            0
        );
    }
}
