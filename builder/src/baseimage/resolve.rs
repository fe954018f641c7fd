//! The base a build boots, resolved: a path base as it is, or a base
//! image pulled, flattened, searched and its boot files put on the host
//! (pull → flatten → locate → materialise), one log line per stage.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};

use airlift_appliance::bundle_manifest::BaseImageRecord;
use airlift_oci::Layout;

use super::{flatten, locate, materialise, pull};
use crate::config::{Appliance, Base, BaseSpec, ImageBase};
use crate::initramfs::RootSource;

/// A base ready for the pipeline.
#[derive(Debug)]
pub struct Resolved {
    /// Host paths of the kernel, modules, boot loaders and busybox.
    pub base: Base,
    /// The root filesystem.
    pub root: RootSource,
    /// What the bundle and appliance record of a base image.
    pub record: Option<BaseImageRecord>,
}

/// Resolves `app`'s base for a build in the work folder `work` (the base
/// image's layout, store and files go there).
pub fn resolve(
    app: &Appliance,
    work: &Path,
    concurrency: usize,
    progress: bool,
) -> Result<Resolved> {
    let spec = app.base.as_ref().with_context(|| {
        format!(
            "{}: `base` is required for airlift build (base.image, or kernel, rootfs and \
             bootloader)",
            app.origin.file.display()
        )
    })?;
    match spec {
        BaseSpec::Paths(b) => Ok(Resolved {
            base: b.clone(),
            root: RootSource::Host(b.rootfs.clone()),
            record: None,
        }),
        BaseSpec::Image(image) => from_image(app, image, work, concurrency, progress),
    }
}

fn from_image(
    app: &Appliance,
    image: &ImageBase,
    work: &Path,
    concurrency: usize,
    progress: bool,
) -> Result<Resolved> {
    let t = Instant::now();
    let layout_dir = work.join("base-layout");
    let pulled = pull::pull(app, image, &layout_dir, concurrency, progress)?;
    let name = pulled.name();
    tracing::info!(
        "base image: {name} ({} linux/amd64): {} layers, {} bytes, {} verified signatures in \
         {:.1}s",
        pulled.image.manifest_digest,
        pulled.image.manifest.layers.len(),
        pulled.image.layer_bytes(),
        pulled.signatures.len(),
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let store = work.join("base-store");
    std::fs::create_dir(&store).with_context(|| format!("making {}", store.display()))?;
    let layout = Layout::open(&layout_dir)?;
    let flat = flatten::flatten(pull::layers(&layout, &pulled.image, &name), &store)
        .with_context(|| format!("flattening the base image {name}"))?;
    let r = &flat.report;
    tracing::info!(
        "base image: flattened {} layers: {} files, {} bytes ({} whiteouts, {} hard links, {} \
         with xattrs) in {:.1}s",
        r.layers,
        r.files,
        r.bytes,
        r.whiteouts,
        r.hard_links,
        r.xattr_nodes,
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let needs = locate::Needs::of(image, app.secure_boot.mode, app.netboot.enabled);
    let located = locate::locate(&flat.tree, image, needs, &name)?;
    // The kernel's files are written out before they leave the tree:
    // materialise copies the modules folder from it.
    let dir = work.join("base");
    let (base, written) = materialise::materialise(&flat.tree, &located, image, &dir)?;
    let mut tree = flat.tree;
    let removed = locate::strip_kernel(&mut tree, &located);
    tracing::info!(
        "base image: kernel {} ({}), modules {}; {} files ({} bytes) put in {}, {} nodes taken \
         out of the root, in {:.1}s",
        located.release,
        located.kernel.path,
        located
            .modules_dir
            .as_deref()
            .map_or("none".to_string(), |m| format!("/{m}")),
        written.files,
        written.bytes,
        dir.display(),
        removed,
        t.elapsed().as_secs_f64()
    );
    Ok(Resolved {
        base,
        root: RootSource::Tree(Arc::new(tree)),
        record: Some(BaseImageRecord {
            reference: pulled.reference.clone(),
            digest: pulled.digest.clone(),
            manifest_digest: pulled.image.manifest_digest.clone(),
            kernel_release: located.release,
            signatures: pulled.signatures,
        }),
    })
}
