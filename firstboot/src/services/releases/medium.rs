//! A release medium as given to `airlift-firstboot update PATH`: a
//! mounted folder (the ISO's root or its bundle folder), an ISO file or
//! block device (mounted read-only here for the load, unmounted after),
//! or an OCI archive (`.tar`, read in place). What is read up front is
//! small: the layout's small files, which release it is, and the list of
//! blobs it carries with their sizes.

use std::path::{Path, PathBuf};
use std::process::Command;

use airlift_appliance::bundle_manifest::BundleManifest;
use airlift_appliance::release::{bundle_id, UPDATE_FILE, UPDATE_SCHEMA};
use airlift_appliance::{ReleaseId, UpdateManifest};
use airlift_oci::{Digest, Layout};
use anyhow::{bail, Context, Result};

use super::archive;
use super::dir::{SmallFiles, OCI_LAYOUT};

/// Where ISO files and devices given to `update` are mounted.
pub const MOUNT_ROOT: &str = "/run/airlift/update";

/// Where the blobs are read from.
pub enum Blobs {
    /// A folder: the bundle's OCI layout.
    Folder(Layout),
    /// An OCI archive, streamed.
    Archive(PathBuf),
}

/// An opened medium.
pub struct Medium {
    pub files: SmallFiles,
    pub id: ReleaseId,
    pub update: Option<UpdateManifest>,
    /// Blobs it carries: digest and size.
    pub carried: Vec<(Digest, u64)>,
    pub blobs: Blobs,
    /// Unmounts an ISO mounted for the load when dropped.
    _mount: Option<Mounted>,
}

impl Medium {
    /// Open `path`; `name`/`version` name the release when the medium
    /// has no `bundle.json` (a bare bundle folder).
    pub fn open(path: &Path, name: &str, version: &str) -> Result<Medium> {
        let meta =
            std::fs::metadata(path).with_context(|| format!("opening {}", path.display()))?;
        if meta.is_dir() {
            return Medium::folder(path, name, version, None);
        }
        if archive::is_archive(path)? {
            let (files, carried) = archive::scan(path)?;
            let (id, update) = identify(&files, name, version, &path.display().to_string())?;
            return Ok(Medium {
                files,
                id,
                update,
                carried,
                blobs: Blobs::Archive(path.to_path_buf()),
                _mount: None,
            });
        }
        let m = Mounted::new(path)?;
        let root = m.dir.clone();
        Medium::folder(&root, name, version, Some(m))
    }

    fn folder(root: &Path, name: &str, version: &str, mount: Option<Mounted>) -> Result<Medium> {
        let bundle = crate::services::media::bundle_dir(root)?;
        let layout = Layout::open(&bundle)?;
        let beside = |file: &str| -> Result<Option<Vec<u8>>> {
            let found = [bundle.join(file)]
                .into_iter()
                .chain(bundle.parent().map(|p| p.join(file)))
                .find(|p| p.is_file());
            found
                .map(|p| std::fs::read(&p).with_context(|| format!("reading {}", p.display())))
                .transpose()
        };
        let read = |file: &str| {
            let p = bundle.join(file);
            std::fs::read(&p).with_context(|| format!("reading {}", p.display()))
        };
        let files = SmallFiles {
            oci_layout: read("oci-layout").unwrap_or_else(|_| OCI_LAYOUT.to_vec()),
            index: read("index.json")?,
            bundle: beside(airlift_appliance::bundle_manifest::BUNDLE_MANIFEST_FILE)?,
            update: beside(UPDATE_FILE)?,
        };
        let (id, update) = identify(&files, name, version, &bundle.display().to_string())?;
        let carried = list_blobs(&layout)?;
        Ok(Medium {
            files,
            id,
            update,
            carried,
            blobs: Blobs::Folder(layout),
            _mount: mount,
        })
    }
}

/// Which release the small files make, and the update manifest if any.
/// `update.json` must name the very `index.json` beside it.
pub fn identify(
    files: &SmallFiles,
    name: &str,
    version: &str,
    place: &str,
) -> Result<(ReleaseId, Option<UpdateManifest>)> {
    let bundle = bundle_id(&files.index);
    let update: Option<UpdateManifest> = files
        .update
        .as_deref()
        .map(|b| airlift_oci::quiet_json::parse(b, &format!("{place}: {UPDATE_FILE}")))
        .transpose()?;
    if let Some(u) = &update {
        if u.schema != UPDATE_SCHEMA {
            bail!(
                "{place}: {UPDATE_FILE} has schema {:?}, not {UPDATE_SCHEMA:?}; this host0 \
                 cannot load it",
                u.schema
            );
        }
        if u.release.bundle != bundle {
            bail!(
                "{place}: {UPDATE_FILE} is for bundle {} but index.json is {bundle}; the medium \
                 is damaged: write it again",
                u.release.bundle
            );
        }
        return Ok((u.release.clone(), update));
    }
    let id = match files.bundle.as_deref() {
        Some(b) => {
            let m: BundleManifest =
                airlift_oci::quiet_json::parse(b, &format!("{place}: bundle.json"))?;
            ReleaseId {
                name: m.name,
                version: m.version,
                bundle,
            }
        }
        None => ReleaseId {
            name: name.to_string(),
            version: version.to_string(),
            bundle,
        },
    };
    Ok((id, None))
}

/// The blobs in a layout folder, with their sizes. Files that are not
/// named by a digest are skipped.
fn list_blobs(layout: &Layout) -> Result<Vec<(Digest, u64)>> {
    let mut out = Vec::new();
    let root = layout.root().join("blobs");
    let Ok(algs) = std::fs::read_dir(&root) else {
        return Ok(out);
    };
    for alg in algs {
        let alg = alg?;
        let name = alg.file_name().to_string_lossy().to_string();
        for f in std::fs::read_dir(alg.path())
            .with_context(|| format!("listing {}", alg.path().display()))?
        {
            let f = f?;
            let Ok(d) = format!("{name}:{}", f.file_name().to_string_lossy()).parse::<Digest>()
            else {
                continue;
            };
            let m = f.metadata()?;
            if m.is_file() {
                out.push((d, m.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// An ISO file or device mounted read-only for a load.
struct Mounted {
    dir: PathBuf,
    /// Mounted here (else it was mounted already and stays).
    owned: bool,
}

impl Mounted {
    fn new(source: &Path) -> Result<Mounted> {
        let tag: String = source
            .to_string_lossy()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let dir = Path::new(MOUNT_ROOT).join(tag.trim_matches('_'));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        if crate::services::media::is_mounted(&dir) {
            return Ok(Mounted { dir, owned: false });
        }
        let is_dev = std::fs::metadata(source).is_ok_and(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_block_device()
        });
        let opts = if is_dev { "ro" } else { "loop,ro" };
        let out = Command::new("mount")
            .args(["-o", opts])
            .arg(source)
            .arg(&dir)
            .output()
            .context("running mount")?;
        if !out.status.success() {
            bail!(
                "{} is neither a folder, an OCI archive nor a mountable ISO (mount -o {opts}: {})",
                source.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Mounted { dir, owned: true })
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        if let Err(e) = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH) {
            tracing::warn!("unmounting {}: {e}", self.dir.display());
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}
