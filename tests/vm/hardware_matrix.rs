//! Server hardware with the default module set
//! (image-configs/hardware-matrix.yaml names no modules, so the initramfs
//! gets the server set), under QEMU (TCG, q35, BIOS), in two boots that
//! each prove several devices:
//!
//! 1. host0 with the ISO on q35's AHCI controller, a blank NVMe data disk
//!    (formatted and loaded, as `e2e_storage` checks on virtio) and an
//!    Intel `igb` NIC serving netboot on a private link; a node whose only
//!    NIC is an Intel `e1000e` netboots from it and joins.
//! 2. host0 booted from a USB stick on xHCI, its data disk behind an LSI
//!    MegaRAID HBA (`megasas`, the `megaraid_sas` driver): formatted,
//!    loaded and ready.
//!
//! Each boot's time to its markers is printed, never asserted. Needs
//! `just base`; `just hardware-matrix`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use airlift_integration::tools::{require, run_ok};
use airlift_integration::vm::{self, Cluster, Running, Serial};

const CONFIG: &str = "image-configs/hardware-matrix.yaml";
const LIMIT: Duration = Duration::from_secs(15 * 60);
const HOST0_MAC: &str = "52:54:00:78:00:01";
const NODE_MAC: &str = "52:54:00:78:00:21";

/// A sparse blank disk of 2 GiB (the config wants at least 1 GiB).
fn blank_disk(path: &Path) {
    std::fs::File::create(path)
        .and_then(|f| f.set_len(2 << 30))
        .unwrap_or_else(|e| panic!("making {}: {e}", path.display()));
}

/// airlift's finished data partition is on `disk` (the one the VM used).
fn assert_formatted(disk: &Path) {
    let gpt =
        run_ok(Command::new(require("sgdisk", "gdisk")).args(["--info=1", disk.to_str().unwrap()]));
    assert!(
        gpt.contains("Partition name: 'AIRLIFT_DATA'"),
        "{} was not prepared as the data disk: {gpt}",
        disk.display()
    );
}

/// host0 serves (`AIRLIFT-HOST0-READY` is printed once, when the registry
/// listens) from a data disk: the load still running, or done.
fn assert_serving_from_disk(ready: &str) {
    let state = field(ready, "state");
    assert!(state == "loading" || state == "ready", "{ready}");
}

/// The value of `key=` in a marker line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

/// Wait for each of `markers` on `serial` in turn; print when each showed.
fn wait_each(
    serial: &Serial,
    markers: &[&str],
    t0: Instant,
    vms: &mut [(&Serial, &mut Running)],
) -> Vec<String> {
    markers
        .iter()
        .map(|m| {
            let (t, line) = vm::wait_for(serial, &[m], t0, LIMIT, vms);
            eprintln!(
                "  {:>7.1}s  {}: {}",
                t.as_secs_f64(),
                serial.name,
                line.trim()
            );
            line
        })
        .collect()
}

#[test]
fn host0_on_ahci_nvme_and_igb_netboots_a_node_on_e1000e() {
    let iso = vm::built(CONFIG);
    let c = Cluster::new("airlift-hw-matrix-");
    let disk = c.dir.path().join("nvme.raw");
    blank_disk(&disk);
    let (mut host0, h0) = c.spawn(
        "host0",
        &[
            "-machine".into(),
            "q35".into(),
            "-m".into(),
            "2048".into(),
            // q35's built-in ICH9 AHCI controller holds the CD.
            "-drive".into(),
            format!(
                "if=none,id=cd0,file={},media=cdrom,readonly=on",
                iso.display()
            ),
            "-device".into(),
            "ide-cd,drive=cd0,bus=ide.0,bootindex=0".into(),
            "-drive".into(),
            format!("if=none,id=nv0,file={},format=raw", disk.display()),
            "-device".into(),
            "nvme,serial=AIRLIFTNVME0,drive=nv0".into(),
            "-netdev".into(),
            c.hub.clone(),
            "-device".into(),
            format!("igb,netdev=priv,mac={HOST0_MAC},romfile="),
        ],
    );
    eprintln!("host0 (q35, AHCI CD, NVMe disk, igb):");
    let storage = wait_each(&h0, &["AIRLIFT-STORAGE "], c.t0, &mut [(&h0, &mut host0)]);
    assert!(
        storage[0].contains("mode=disk device=/dev/nvme0n1"),
        "the NVMe disk is not the data disk: {}",
        storage[0]
    );
    let lines = wait_each(
        &h0,
        &[
            "AIRLIFT-HOST0-LOADED",
            "AIRLIFT-HOST0-READY",
            "AIRLIFT-NETBOOT-READY",
        ],
        c.t0,
        &mut [(&h0, &mut host0)],
    );
    assert_serving_from_disk(&lines[1]);

    let (mut node, n) = c.spawn(
        "node-e1000e",
        &[
            "-machine".into(),
            "q35".into(),
            "-m".into(),
            "1536".into(),
            "-netdev".into(),
            c.hub.clone(),
            "-device".into(),
            format!("e1000e,netdev=priv,mac={NODE_MAC},bootindex=0"),
        ],
    );
    eprintln!("node (q35, e1000e, netboot):");
    let t_node = Instant::now();
    let vms = &mut [(&h0, &mut host0), (&n, &mut node)];
    wait_each(
        &h0,
        &[&format!("AIRLIFT-NETBOOT-DHCP mac={NODE_MAC}")],
        c.t0,
        vms,
    );
    let joined = wait_each(&n, &["AIRLIFT-JOIN-DONE"], c.t0, vms);
    eprintln!("node joined {:.1?} after its QEMU start", t_node.elapsed());
    assert!(!joined.is_empty());
    drop(node);
    drop(host0);
    assert_formatted(&disk);
}

#[test]
fn host0_boots_from_a_usb_stick_on_xhci_with_its_data_disk_behind_megaraid() {
    let iso = vm::built(CONFIG);
    let dir = tempfile::Builder::new()
        .prefix("airlift-hw-matrix-usb-")
        .tempdir()
        .unwrap();
    let disk = dir.path().join("megaraid.raw");
    blank_disk(&disk);
    let serial = dir.path().join("host0-usb.log");
    let args: Vec<String> = vec![
        "-machine".into(),
        "q35".into(),
        "-m".into(),
        "2048".into(),
        "-vga".into(),
        "std".into(),
        "-device".into(),
        "qemu-xhci,id=xhci".into(),
        "-drive".into(),
        format!(
            "if=none,id=u0,file={},format=raw,readonly=on",
            iso.display()
        ),
        "-device".into(),
        "usb-storage,bus=xhci.0,drive=u0,bootindex=0".into(),
        "-device".into(),
        "megasas,id=raid".into(),
        "-drive".into(),
        format!("if=none,id=d0,file={},format=raw", disk.display()),
        "-device".into(),
        "scsi-hd,drive=d0,bus=raid.0".into(),
        "-netdev".into(),
        "user,id=n0,restrict=on".into(),
        "-device".into(),
        format!("virtio-net-pci,netdev=n0,mac={HOST0_MAC},romfile="),
    ];
    let start = Instant::now();
    let mut qemu = vm::start(2, &args, &serial);
    eprintln!("host0 (q35, USB stick on xHCI, MegaRAID disk):");
    let mut wait = |marker: &str| {
        let line = vm::wait_serial(&mut qemu, &serial, marker, LIMIT);
        eprintln!("  {:>7.1}s  {}", start.elapsed().as_secs_f64(), line.trim());
        line
    };
    let media = wait("AIRLIFT-MEDIA-MOUNTED");
    let storage = wait("AIRLIFT-STORAGE ");
    assert_eq!(field(&storage, "mode"), "disk", "{storage}");
    let (stick, data) = (field(&media, "dev"), field(&storage, "device"));
    assert!(stick.starts_with("/dev/sd"), "media not on USB: {media}");
    assert!(data.starts_with("/dev/sd") && data != stick, "{storage}");
    wait("AIRLIFT-HOST0-LOADED");
    let ready = wait("AIRLIFT-HOST0-READY");
    assert_serving_from_disk(&ready);
    drop(qemu);
    assert_formatted(&disk);
}
