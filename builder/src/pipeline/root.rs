//! Step 3 when the root filesystem is read from the media
//! (`base.rootOn: media`): the tree the initramfs would hold becomes a
//! squashfs image for the ISO, and the initramfs becomes stage 1 only
//! (busybox, `/init`, the same kernel modules, which the image also
//! carries for stage 2).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::initramfs;
use crate::rootimage::{squashfs, stage1};

/// The squashfs image of `spec`'s whole tree at `image`, and the stage-1
/// initramfs at `initrd`.
pub fn write_media_root(
    spec: &initramfs::Spec,
    busybox: &Path,
    image: &Path,
    initrd: &Path,
) -> Result<(initramfs::Report, squashfs::Report)> {
    let t = Instant::now();
    let mut spec = spec.clone();
    if let Some(m) = &mut spec.modules {
        for name in stage1::FILESYSTEM_MODULES {
            if !m.names.iter().any(|n| n.replace('-', "_") == *name) {
                m.names.push(name.to_string());
            }
        }
    }
    let spec = &spec;
    let (tree, names, _unpacked) = initramfs::collect(spec)?;
    let root = squashfs::write(&tree, spec.epoch, spec.level, image)
        .context("writing the root filesystem image")?;
    drop(tree);
    tracing::info!(
        "root image: {} nodes -> {} bytes squashfs {} in {:.1}s",
        root.nodes,
        root.bytes,
        root.compression,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let mut stage = stage1::tree(busybox, &stage1::InitParams::standard())?;
    if let Some(m) = &spec.modules {
        initramfs::add_modules(&mut stage, m)
            .context("adding the kernel modules to the stage-1 initramfs")?;
    }
    let report = initramfs::write_tree(&stage, names, spec.epoch, spec.level, initrd)
        .context("writing the stage-1 initramfs")?;
    tracing::info!(
        "initramfs (stage 1): {} members, {} bytes cpio -> {} bytes zstd-{} in {:.1}s",
        report.members,
        report.cpio_bytes,
        report.compressed_bytes,
        spec.level,
        t.elapsed().as_secs_f64()
    );
    Ok((report, root))
}
