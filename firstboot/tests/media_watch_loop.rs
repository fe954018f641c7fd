//! The media watcher on real block devices: two small images with the
//! appliance's label, attached as loop devices. The
//! first is found, mounted read-only and handed to the callback, then
//! unmounted and not taken again; detached, it is forgotten; the second,
//! attached after it (often on the same loop device), is found too. A
//! labelled device mounted elsewhere (an `update PATH` loop mount) is
//! left alone. Needs root and loop devices; fails (does not skip)
//! without them, saying so.
//!
//! The kernel these tests run on may lack iso9660 (this one does), so
//! each image is a btrfs filesystem (its first 1 MiB is left unused)
//! with an ISO 9660 Primary Volume Descriptor written at 32 KiB, and the
//! watcher mounts it as btrfs: everything but the filesystem type is the
//! real path. The boot tests (QEMU) mount real ISO 9660 media.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use airlift_firstboot::services::media_watch::{OnFound, Paths, Watcher};
use futures_util::FutureExt;
use tokio::sync::mpsc;

/// Run a tool; its trimmed stdout (a failure panics with its stderr).
fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output();
    let out = out.unwrap_or_else(|e| panic!("{cmd}: {e}"));
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A medium labelled `label` holding `airlift/update.json` = `text`: a
/// btrfs image (its first 1 MiB unused) with a PVD stamped at 32 KiB.
fn medium(dir: &Path, name: &str, label: &str, text: &str) -> PathBuf {
    let src = dir.join(format!("{name}-src"));
    std::fs::create_dir_all(src.join("airlift")).unwrap();
    std::fs::write(src.join("airlift/update.json"), text).unwrap();
    let out = dir.join(format!("{name}.img"));
    std::fs::File::create(&out)
        .unwrap()
        .set_len(128 << 20)
        .unwrap();
    let (o, s) = (out.to_str().unwrap(), src.to_str().unwrap());
    sh("mkfs.btrfs", &["-q", "--rootdir", s, o]);
    let mut pvd = vec![0u8; 2048];
    pvd[0] = 1;
    pvd[1..6].copy_from_slice(b"CD001");
    pvd[6] = 1;
    pvd[40..72].copy_from_slice(format!("{label:<32}").as_bytes());
    let f = std::fs::OpenOptions::new().write(true).open(&out).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &pvd, 32 << 10).unwrap();
    out
}

/// An image attached read-only; detached (and unmounted) on drop.
struct Loop {
    dev: PathBuf,
    mounts: Vec<PathBuf>,
}

impl Loop {
    fn attach(file: &Path) -> Loop {
        let dev = sh(
            "losetup",
            &["--find", "--show", "--read-only", file.to_str().unwrap()],
        );
        Loop {
            dev: PathBuf::from(dev),
            mounts: Vec::new(),
        }
    }

    fn detach(mut self) {
        self.cleanup();
        std::mem::forget(self);
    }

    fn cleanup(&mut self) {
        for m in self.mounts.drain(..) {
            let _ = Command::new("umount").arg(&m).status();
        }
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn is_mounted(at: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let at = at.to_string_lossy();
    info.lines().any(|l| l.split(' ').nth(4) == Some(&*at))
}

/// A callback that reports the device and the update.json it read.
fn reporter() -> (OnFound, mpsc::UnboundedReceiver<(String, String)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let f: OnFound = Arc::new(move |folder: PathBuf, device: String| {
        let tx = tx.clone();
        async move {
            let text = std::fs::read_to_string(folder.join("airlift/update.json"))?;
            tx.send((device, text)).ok();
            Ok(())
        }
        .boxed()
    });
    (f, rx)
}

/// The next (device, update.json) the callback reported.
async fn next_found(rx: &mut mpsc::UnboundedReceiver<(String, String)>) -> (String, String) {
    tokio::time::timeout(Duration::from_secs(120), rx.recv())
        .await
        .expect("no medium was handed to the callback")
        .unwrap()
}

/// Poll until the watcher holds nothing mounted (the callback is done).
async fn until_unmounted(w: &mut Watcher) {
    for _ in 0..600 {
        w.poll_once().await;
        if w.known().iter().all(|(_, m)| m.is_none()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the medium stayed mounted: {:?}", w.known());
}

/// Poll until the watcher has forgotten every medium (a loop device's
/// detach completes in the background).
async fn until_forgotten(w: &mut Watcher) {
    for _ in 0..600 {
        w.poll_once().await;
        if w.known().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("a medium that went is still remembered: {:?}", w.known());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_a_labelled_medium_forgets_it_when_gone_and_sees_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let label = format!("AIRLIFT_WT{}", std::process::id());
    let first = medium(dir.path(), "first", &label, "first release");
    let second = medium(dir.path(), "second", &label, "second release");
    let other = medium(dir.path(), "other", "ANOTHER_APPLIANCE", "no");
    let paths = Paths {
        boot_mount: dir.path().join("boot"),
        update_root: dir.path().join("update"),
        fstype: "btrfs".into(),
        ..Paths::system()
    };
    let (on_found, mut rx) = reporter();
    let mut w = Watcher::new(&label, paths, on_found);

    let _other = Loop::attach(&other);
    let a = Loop::attach(&first);
    w.poll_once().await;
    let (device, text) = next_found(&mut rx).await;
    assert_eq!(
        (device.as_str(), text.as_str()),
        (a.dev.to_str().unwrap(), "first release")
    );
    let name = a.dev.file_name().unwrap().to_string_lossy().into_owned();
    until_unmounted(&mut w).await;
    assert_eq!(
        w.known(),
        vec![(name.clone(), None)],
        "remembered, unmounted"
    );
    assert!(!is_mounted(&dir.path().join("update").join(&name)));
    // Not taken again while it stays.
    w.poll_once().await;
    w.poll_once().await;
    assert!(rx.try_recv().is_err(), "the same medium was loaded twice");

    // Gone: forgotten. The next medium (likely on the same device) is seen.
    a.detach();
    until_forgotten(&mut w).await;
    let b = Loop::attach(&second);
    w.poll_once().await;
    let (device, text) = next_found(&mut rx).await;
    assert_eq!(
        (device.as_str(), text.as_str()),
        (b.dev.to_str().unwrap(), "second release")
    );
    until_unmounted(&mut w).await;
    b.detach();
    until_forgotten(&mut w).await;

    // A labelled medium mounted elsewhere (as `update PATH` does) is left alone.
    let mut c = Loop::attach(&first);
    let at = dir.path().join("elsewhere");
    std::fs::create_dir_all(&at).unwrap();
    sh(
        "mount",
        &[
            "-t",
            "btrfs",
            "-o",
            "ro",
            c.dev.to_str().unwrap(),
            at.to_str().unwrap(),
        ],
    );
    c.mounts.push(at);
    w.poll_once().await;
    w.poll_once().await;
    assert_eq!(w.known(), vec![]);
    assert!(
        rx.try_recv().is_err(),
        "a medium mounted elsewhere was taken"
    );
}
