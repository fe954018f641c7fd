//! `airlift build` from a base image (`base.image`, issue #21): a tiny
//! Debian-shaped image made here (merged /usr, the kernel bootc-style in
//! /usr/lib/modules/<v>/vmlinuz, boot loaders at their Debian package
//! paths, the host's static busybox, a whiteout in the second layer), in
//! an oci-archive and in an OCI layout folder. The real `airlift` builds
//! an ISO from each; both record the base, and the two ISOs are
//! byte-identical (no source path in them). An image without a kernel
//! fails naming the image and where the kernel was looked for.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use airlift_integration::fake_base::put;
use airlift_integration::tools::binary;
use airlift_oci::documents::{media, Descriptor, REF_NAME};
use airlift_oci::{Digest, Layout};

const RELEASE: &str = "6.1.0-base";
const REFERENCE: &str = "registry.airlift.test/base/tiny:1";

/// A bzImage stand-in whose header says `release`.
fn kernel(release: &str) -> Vec<u8> {
    let mut k = vec![0u8; 0x400];
    k[0x202..0x206].copy_from_slice(b"HdrS");
    k[0x20E..0x210].copy_from_slice(&0x100u16.to_le_bytes());
    let v = format!("{release} (t@t) #1 SMP\0");
    k[0x300..0x300 + v.len()].copy_from_slice(v.as_bytes());
    k
}

/// A tar of `files` (path, bytes, mode) and `links` (path, target).
fn tar(files: &[(&str, Vec<u8>, u32)], links: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, target) in links {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        b.append_link(&mut h, path, target).unwrap();
    }
    for (path, body, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(*mode);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, body.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

/// The base image's OCI layout at `dir` (ref name `1`); `with_kernel`
/// false leaves the kernel out. Returns the manifest's digest.
fn base_layout(dir: &Path, with_kernel: bool) -> Digest {
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static's /bin/busybox");
    let mut files = vec![
        ("usr/lib/ISOLINUX/isolinux.bin", vec![0x90; 4096], 0o644),
        ("usr/lib/ISOLINUX/isohdpfx.bin", vec![0x90; 432], 0o644),
        (
            "usr/lib/syslinux/modules/bios/ldlinux.c32",
            vec![0x90; 4096],
            0o644,
        ),
        (
            "usr/lib/systemd/boot/efi/systemd-bootx64.efi",
            b"MZ boot".to_vec(),
            0o644,
        ),
        (
            "usr/lib/shim/shimx64.efi.signed",
            b"MZ shim".to_vec(),
            0o644,
        ),
        (
            "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed",
            b"MZ grub".to_vec(),
            0o644,
        ),
        ("usr/bin/busybox", busybox, 0o755),
        ("etc/os-release", b"ID=tiny\n".to_vec(), 0o644),
        ("etc/removed", b"gone in layer 2\n".to_vec(), 0o644),
        (
            "boot/initrd.img-6.1.0-base",
            b"an initrd the ISO does not use".to_vec(),
            0o644,
        ),
    ];
    if with_kernel {
        files.push(("usr/lib/modules/6.1.0-base/vmlinuz", kernel(RELEASE), 0o644));
        files.push(("usr/lib/modules/6.1.0-base/modules.dep", Vec::new(), 0o644));
    }
    let first = tar(&files, &[("lib", "usr/lib"), ("bin", "usr/bin")]);
    let second = tar(
        &[
            ("etc/motd", b"built from a base image\n".to_vec(), 0o644),
            ("etc/.wh.removed", Vec::new(), 0o644),
        ],
        &[],
    );
    let layout = Layout::create(dir).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&first).unwrap();
    let blobs = [
        (gz.finish().unwrap(), media::OCI_LAYER_GZIP),
        (second.clone(), media::OCI_LAYER_TAR),
    ];
    let layers: Vec<Descriptor> = blobs
        .iter()
        .map(|(b, mt)| {
            let (d, n) = layout.put_blob(b, None).unwrap();
            Descriptor::new(mt, d, n)
        })
        .collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [
            Digest::sha256_of(&first).to_string(), Digest::sha256_of(&second).to_string()
        ]},
    });
    let (cd, cn) = layout
        .put_blob(&serde_json::to_vec(&config).unwrap(), None)
        .unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "config": Descriptor::new(media::OCI_CONFIG, cd, cn), "layers": layers,
    });
    let (md, mn) = layout
        .put_blob(&serde_json::to_vec(&manifest).unwrap(), None)
        .unwrap();
    let mut desc = Descriptor::new(media::OCI_MANIFEST, md.clone(), mn);
    desc.annotations.insert(REF_NAME.into(), "1".into());
    let mut index = layout.read_index().unwrap();
    index.manifests.push(desc);
    layout.write_index(&index).unwrap();
    md
}

/// `dir` tarred as an oci-archive at `out`.
fn archive(dir: &Path, out: &Path) {
    let status = Command::new("tar")
        .arg("-cf")
        .arg(out)
        .arg("-C")
        .arg(dir)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
}

/// A config at `dir/name.yaml` whose base image comes `from`.
fn config(dir: &Path, name: &str, from: &str) -> PathBuf {
    let p = dir.join(format!("{name}.yaml"));
    put(
        &p,
        format!(
            "apiVersion: airlift/v1alpha1\nkind: Appliance\nmetadata: {{ name: based, version: \
             '1' }}\nbase:\n  image:\n    ref: {REFERENCE}\n    from: {from}\n  modules: []\n  \
             kernelArgs: [quiet]\noutput:\n  volumeLabel: BASED\n"
        )
        .as_bytes(),
    );
    p
}

fn airlift(dir: &Path, args: &[&str]) -> Output {
    Command::new(binary("airlift"))
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn build(dir: &Path, config: &Path, iso: &str) -> Output {
    let firstboot = binary("airlift-firstboot");
    airlift(
        dir,
        &[
            "build",
            config.to_str().unwrap(),
            "-o",
            iso,
            "--firstboot",
            firstboot.to_str().unwrap(),
            "--no-cache",
        ],
    )
}

#[test]
fn an_iso_from_a_base_image_records_it_and_does_not_depend_on_the_source() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let manifest = base_layout(&d.join("base-layout"), true);
    archive(&d.join("base-layout"), &d.join("base.oci.tar"));
    let from_archive = config(
        d,
        "archive",
        "{ ociArchive: { path: base.oci.tar, ref: '1' } }",
    );
    let from_layout = config(
        d,
        "layout",
        "{ ociLayout: { path: base-layout, ref: '1' } }",
    );

    let o = build(d, &from_archive, "a.iso");
    assert!(o.status.success(), "{}", text(&o));
    let log = text(&o);
    assert!(log.contains("base image: "), "{log}");
    assert!(log.contains(&format!("kernel {RELEASE}")), "{log}");

    // bundle.json records the base (not as one of its images).
    let o = airlift(d, &["inspect", "--json", "a.iso"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["images"].as_array().unwrap().len(), 0, "{v:#}");
    let base = &v["base"];
    assert_eq!(base["reference"], REFERENCE, "{v:#}");
    // A layout entry that is a manifest: its digest is the top digest.
    assert_eq!(base["digest"], manifest.to_string(), "{v:#}");
    assert_eq!(base["manifestDigest"], manifest.to_string(), "{v:#}");
    assert_eq!(base["kernelRelease"], RELEASE, "{v:#}");
    let o = airlift(d, &["inspect", "a.iso"]);
    let shown = text(&o);
    assert!(
        shown.contains(&format!("Base image:  {REFERENCE}@{manifest}\n")),
        "{shown}"
    );

    // The root filesystem is the image flattened: the whiteout applied,
    // the kernel's modules folder and /boot's initrd taken out.
    let listing = root_listing(d, "a.iso");
    for present in [
        "/etc/motd",
        "/etc/os-release",
        "/usr/bin/busybox",
        "/lib",
        "/usr/lib/modules",
    ] {
        assert!(
            listing.iter().any(|l| l == present),
            "{present}: {listing:#?}"
        );
    }
    for absent in [
        "/etc/removed",
        "/etc/.wh.removed",
        "/usr/lib/modules/6.1.0-base",
        "/boot/initrd.img-6.1.0-base",
    ] {
        assert!(
            !listing.iter().any(|l| l == absent),
            "{absent}: {listing:#?}"
        );
    }

    // The same image from a layout folder: the same ISO, byte for byte.
    let o = build(d, &from_layout, "b.iso");
    assert!(o.status.success(), "{}", text(&o));
    let (a, b) = (
        std::fs::read(d.join("a.iso")).unwrap(),
        std::fs::read(d.join("b.iso")).unwrap(),
    );
    assert!(
        a == b,
        "the ISOs differ ({} and {} bytes)",
        a.len(),
        b.len()
    );
}

/// The paths in the ISO's root filesystem image (`/etc/motd`, …).
fn root_listing(dir: &Path, iso: &str) -> Vec<String> {
    let xorriso = airlift_integration::tools::require("xorriso", "xorriso");
    let unsquashfs = airlift_integration::tools::require("unsquashfs", "squashfs-tools");
    let o = Command::new(xorriso)
        .current_dir(dir)
        .args(["-osirrox", "on", "-indev", iso, "-extract"])
        .args(["/airlift/rootfs.squashfs", "root.sqfs"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = Command::new(unsquashfs)
        .current_dir(dir)
        .args(["-lc", "-d", "", "root.sqfs"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_base_image_without_a_kernel_is_refused_naming_where_it_looked() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let manifest = base_layout(&d.join("base-layout"), false);
    let cfg = config(
        d,
        "nokernel",
        "{ ociLayout: { path: base-layout, ref: '1' } }",
    );
    let o = build(d, &cfg, "x.iso");
    assert!(!o.status.success());
    let e = text(&o);
    assert!(e.contains(&format!("{REFERENCE}@{manifest}")), "{e}");
    assert!(e.contains("no kernel"), "{e}");
    assert!(e.contains("/usr/lib/modules/<version>/vmlinuz"), "{e}");
    assert!(
        e.contains("linux-image-amd64") && e.contains("base.kernel"),
        "{e}"
    );
    assert!(!d.join("x.iso").exists());
    // No work folder left beside the output.
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".airlift-build-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn verify_scopes_apply_to_the_base_image_as_to_images() {
    use airlift_integration::registry::TestRegistry;
    use airlift_integration::sigstore::{KeyKind, PushTarget, TestKey};
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let manifest = base_layout(&d.join("base-layout"), true);
    let reg = TestRegistry::start();
    let host = reg.host();
    reg.push_layout(&d.join("base-layout"), "1", "team/base:1");
    reg.push_layout(&d.join("base-layout"), "1", "team/unsigned:1");
    let keys = d.join("keys");
    std::fs::create_dir(&keys).unwrap();
    let team = TestKey::generate(KeyKind::P256, &keys, "team").unwrap();
    let target = PushTarget {
        addr: reg.addr(),
        basic: None,
    };
    let sig = target
        .sign(
            "team/base",
            &manifest.to_string(),
            &format!("{host}/team/base"),
            &team,
        )
        .unwrap();
    let cfg = |name: &str, repo: &str| {
        let p = d.join(format!("{name}.yaml"));
        put(
            &p,
            format!(
                "apiVersion: airlift/v1alpha1\nkind: Appliance\nmetadata: {{ name: based, \
                 version: '1' }}\nbase:\n  image:\n    ref: {host}/{repo}:1\n    from: {{ \
                 registry: {{ mirror: '{}', insecure: true }} }}\n  modules: []\nverify:\n  \
                 keys:\n    - publicKey: keys/team.pub\n      scopes: [{host}/team]\n",
                reg.url()
            )
            .as_bytes(),
        );
        p
    };
    // Signed: built, and the signature recorded with the base.
    let o = build(d, &cfg("signed", "team/base"), "signed.iso");
    assert!(o.status.success(), "{}", text(&o));
    let o = airlift(d, &["inspect", "--json", "signed.iso"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let base = &v["base"];
    assert_eq!(base["reference"], format!("{host}/team/base:1"), "{v:#}");
    assert_eq!(base["signatures"][0]["key"], "team", "{v:#}");
    assert_eq!(base["signatures"][0]["signature"], sig, "{v:#}");
    // Unsigned, in the key's scope: refused, no ISO.
    let o = build(d, &cfg("unsigned", "team/unsigned"), "unsigned.iso");
    assert!(!o.status.success());
    let e = text(&o);
    assert!(e.contains(&format!("{host}/team/unsigned:1")), "{e}");
    assert!(e.contains("team"), "{e}");
    assert!(!d.join("unsigned.iso").exists());
}
