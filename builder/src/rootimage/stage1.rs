//! Stage 1, the initramfs when the root filesystem is read from the
//! media: static busybox, the `/init` script rendered here (pure), the
//! udhcpc event script, and the kernel modules that finding the root
//! needs. `/init` finds the media by its volume label (or fetches the
//! image over HTTP on netbooted nodes), mounts the squashfs image under a
//! tmpfs overlay and switches to systemd; each failure prints one
//! `AIRLIFT-STAGE1-ERROR …` line on the console and opens a shell.

use std::path::Path;

use anyhow::{Context, Result};

use crate::initramfs::{Kind, Node, Tree};

/// Where stage 1 mounts the media; stage 2 (`airlift-firstboot`,
/// `mount-media`) finds it there already mounted, since stage 1 moves
/// `/run` into the new root.
pub const MEDIA_MOUNT: &str = "/run/airlift/media";

/// Where busybox runs udhcpc's event script from.
pub const UDHCPC_SCRIPT: &str = "bin/airlift-udhcpc";

/// The modules stage 1 mounts the root with, added to every module list.
pub const FILESYSTEM_MODULES: [&str; 4] = ["isofs", "squashfs", "loop", "overlay"];

/// The text of `/init` is the template with these filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitParams {
    /// Filesystem modules loaded besides coldplug (iso9660, squashfs,
    /// overlay, loop): module names, `modprobe -q` skips missing ones.
    pub filesystems: Vec<String>,
    /// Where the image sits on the media, relative (`airlift/rootfs.squashfs`).
    pub image: String,
    /// How long to wait for the media or a DHCP lease, in seconds.
    pub wait_seconds: u32,
    /// What to run in the new root unless `init=` names another.
    pub init: String,
}

impl InitParams {
    /// The defaults every airlift image uses.
    pub fn standard() -> InitParams {
        InitParams {
            filesystems: FILESYSTEM_MODULES.map(String::from).to_vec(),
            image: super::squashfs::ISO_PATH.to_string(),
            wait_seconds: 120,
            init: "/lib/systemd/systemd".to_string(),
        }
    }
}

/// `/init`, rendered from its template.
pub fn render_init(p: &InitParams) -> String {
    include_str!("init.sh")
        .replace("@FILESYSTEMS@", &p.filesystems.join(" "))
        .replace("@TRIES@", &(p.wait_seconds * 2).to_string())
        .replace("@SECONDS@", &p.wait_seconds.to_string())
        .replace("@MEDIA@", MEDIA_MOUNT)
        .replace("@IMAGE@", &p.image)
        .replace("@INIT@", &p.init)
}

/// udhcpc's event script (sets the leased address and default route).
pub fn render_udhcpc() -> String {
    include_str!("udhcpc.sh").to_string()
}

/// The stage-1 tree without modules: `/dev/console`, the folders `/init`
/// mounts on, busybox, `/init` and the udhcpc script.
pub fn tree(busybox: &Path, params: &InitParams) -> Result<Tree> {
    let mut tree = Tree::new();
    for dir in ["bin", "dev", "proc", "sys", "run", "newroot"] {
        tree.insert(dir, Node::dir(0o755))?;
    }
    tree.insert("dev/console", Node::console())?;
    let mut bb = Node::from_host(busybox)
        .with_context(|| format!("base.busybox {} (a static busybox)", busybox.display()))?;
    if !matches!(bb.kind, Kind::File { .. }) {
        anyhow::bail!("base.busybox {} is not a file", busybox.display());
    }
    bb.perm = 0o755;
    tree.insert("bin/busybox", bb)?;
    tree.insert("bin/sh", Node::symlink("busybox"))?;
    tree.insert("init", Node::bytes(render_init(params).into_bytes(), 0o755))?;
    tree.insert(
        UDHCPC_SCRIPT,
        Node::bytes(render_udhcpc().into_bytes(), 0o755),
    )?;
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_is_filled_in_and_names_each_failure() {
        let text = render_init(&InitParams::standard());
        assert!(!text.contains('@'), "a placeholder is left:\n{text}");
        assert!(text.starts_with("#!/bin/sh\n"));
        assert!(text.contains("modprobe -qa isofs squashfs loop overlay"));
        assert!(text.contains("while [ \"$i\" -lt 240 ]"));
        assert!(text.contains("appeared within 120 s"));
        assert!(text.contains("image=/run/airlift/media/airlift/rootfs.squashfs"));
        assert!(text.contains("init=/lib/systemd/systemd\n"));
        assert!(text.contains("exec switch_root /newroot \"$init\"\n"));
        // Every failure goes through `fail`, which prints the marker.
        assert_eq!(text.matches("AIRLIFT-STAGE1-ERROR").count(), 1);
        assert!(text.matches("fail \"").count() >= 9);
        assert!(text.lines().count() < 130, "keep /init small");
    }

    #[test]
    fn init_is_valid_shell() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("init", render_init(&InitParams::standard())),
            ("udhcpc", render_udhcpc()),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            let out = std::process::Command::new("sh")
                .arg("-n")
                .arg(&p)
                .output()
                .unwrap();
            assert!(out.status.success(), "{name}: {:?}", out);
        }
    }

    #[test]
    fn tree_holds_busybox_init_and_console() {
        let dir = tempfile::tempdir().unwrap();
        let bb = dir.path().join("busybox");
        std::fs::write(&bb, b"\x7fELF").unwrap();
        let t = tree(&bb, &InitParams::standard()).unwrap();
        assert_eq!(t.get("bin/busybox").unwrap().perm, 0o755);
        assert_eq!(t.get("init").unwrap().perm, 0o755);
        assert!(t.get("dev/console").is_some());
        assert!(t.get(UDHCPC_SCRIPT).is_some());
        let err = tree(&dir.path().join("nope"), &InitParams::standard()).unwrap_err();
        assert!(format!("{err:#}").contains("base.busybox"), "{err:#}");
    }
}
