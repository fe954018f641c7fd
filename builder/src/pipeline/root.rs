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

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn listing(cmd: &str) -> String {
        let out = Command::new("bash").arg("-c").arg(cmd).output().unwrap();
        assert!(out.status.success(), "{cmd}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn the_root_goes_to_the_image_and_stage_1_to_the_initramfs() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base");
        std::fs::create_dir_all(base.join("usr/lib/systemd")).unwrap();
        std::fs::write(base.join("usr/lib/systemd/systemd"), b"#!/bin/sh\n").unwrap();
        let busybox = dir.path().join("busybox");
        std::fs::write(&busybox, b"\x7fELF busybox").unwrap();
        let spec = initramfs::Spec {
            base: initramfs::RootSource::Host(base),
            overlays: vec![],
            files: vec![(
                "etc/airlift/appliance.json".into(),
                initramfs::Node::bytes(b"{}\n".to_vec(), 0o600),
            )],
            modules: None,
            epoch: 1_700_000_000,
            level: 3,
        };
        let image = dir.path().join("rootfs.squashfs");
        let initrd = dir.path().join("initrd.img");
        let (report, root) = write_media_root(&spec, &busybox, &image, &initrd).unwrap();
        assert_eq!(root.bytes, std::fs::metadata(&image).unwrap().len());
        assert_eq!(
            report.compressed_bytes,
            std::fs::metadata(&initrd).unwrap().len()
        );

        let root_list = listing(&format!("unsquashfs -l -d R '{}'", image.display()));
        assert!(
            root_list.contains("R/usr/lib/systemd/systemd\n"),
            "{root_list}"
        );
        assert!(
            root_list.contains("R/etc/airlift/appliance.json\n"),
            "{root_list}"
        );
        assert!(!root_list.contains("R/bin/busybox"), "{root_list}");

        let stage1 = listing(&format!(
            "zstd -dc '{}' | cpio -it --quiet",
            initrd.display()
        ));
        for member in ["init", "bin/busybox", "bin/sh", "dev/console", "newroot"] {
            assert!(stage1.lines().any(|l| l == member), "{member}:\n{stage1}");
        }
        assert!(!stage1.contains("appliance.json"), "{stage1}");
    }
}
