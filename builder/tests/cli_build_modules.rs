//! `airlift build` as a user runs it, with kernel module names the kernel
//! does not have: a clear error naming each module, its field and the
//! modules folder, and nothing written (no ISO, no temp file).

use std::fs;
use std::path::Path;
use std::process::Command;

fn put(p: &Path, body: &[u8]) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, body).unwrap();
}

/// A base folder whose kernel has isofs as a module and unix built in.
fn fake_base(b: &Path) {
    put(&b.join("vmlinuz"), b"kernel");
    fs::create_dir_all(b.join("rootfs/etc")).unwrap();
    put(&b.join("modules/kernel/fs/isofs/isofs.ko"), b"\x7fELF");
    put(
        &b.join("modules/modules.builtin"),
        b"kernel/net/unix/unix.ko\n",
    );
    for f in ["isolinux.bin", "ldlinux.c32", "isohdpfx.bin"] {
        put(&b.join("isolinux").join(f), b"x");
    }
    put(&b.join("efi/systemd-bootx64.efi"), b"MZ");
}

#[test]
fn cli_build_refuses_modules_the_kernel_lacks_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    fake_base(&dir.path().join("base"));
    let config = "\
apiVersion: airlift/v1alpha1
kind: Appliance
metadata: { name: t, version: '1' }
base:
  kernel: base/vmlinuz
  rootfs: base/rootfs
  modulesDir: base/modules
  modules: [isofs, no_such_nic, unix]
  extraModules: [also-missing]
  bootloader: { isolinux: base/isolinux, efi: base/efi/systemd-bootx64.efi }
";
    put(&dir.path().join("t.yaml"), config.as_bytes());
    let out_dir = dir.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_airlift"))
        .args(["build", "t.yaml", "-o", "out/t.iso"])
        .current_dir(dir.path())
        .env_remove("AIRLIFT_BASE")
        .output()
        .expect("running airlift");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let modules_dir = dir.path().join("base/modules").display().to_string();
    for want in [
        "t.yaml:8:20: field base.modules[1]: kernel module \"no_such_nic\" is not in ",
        "t.yaml:9:18: field base.extraModules[0]: kernel module \"also-missing\" is not in ",
        &modules_dir,
    ] {
        assert!(stderr.contains(want), "{want:?} not in:\n{stderr}");
    }
    assert!(
        !stderr.contains("\"isofs\"") && !stderr.contains("\"unix\""),
        "{stderr}"
    );
    let left: Vec<_> = fs::read_dir(&out_dir).unwrap().collect();
    assert!(left.is_empty(), "written despite the error: {left:?}");
}
