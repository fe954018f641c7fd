//! The ISO layout and appliance.json, from a config over fake base files.

use std::fs;
use std::path::Path;

use super::*;
use crate::sources::{ImageRequest, SourceSpec};

/// The config's path base.
fn paths(app: &Appliance) -> Base {
    app.base
        .as_ref()
        .and_then(config::BaseSpec::paths)
        .expect("a path base")
        .clone()
}

fn put(p: &Path, body: &[u8]) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, body).unwrap();
}

/// A config and the files it names; `netboot` toggles netboot.
fn fixture(dir: &Path, netboot: bool) -> Appliance {
    let b = dir.join("base");
    for f in [
        "isolinux/isolinux.bin",
        "isolinux/ldlinux.c32",
        "isolinux/isohdpfx.bin",
    ] {
        put(&b.join(f), b"x");
    }
    put(&b.join("efi/systemd-bootx64.efi"), b"MZ");
    for f in ["shimx64.efi", "grubx64.efi", "mmx64.efi"] {
        put(&b.join("efi").join(f), b"MZ");
    }
    put(&b.join("ipxe/undionly.kpxe"), b"k");
    put(&b.join("ipxe/ipxe.efi"), b"MZ");
    put(&b.join("efi/shimx64.efi"), b"MZ shim");
    put(&b.join("efi/grubnetx64.efi"), b"MZ grubnet");
    put(&b.join("vmlinuz"), b"kernel");
    fs::create_dir_all(b.join("rootfs")).unwrap();
    fs::create_dir_all(b.join("modules")).unwrap();
    put(&dir.join("notes.txt"), b"hello");
    let yaml = format!(
        r#"apiVersion: airlift/v1alpha1
kind: Appliance
metadata: {{ name: t, version: "1" }}
images:
  - ref: quay.io/org/app:1
    from: {{ ociLayout: {{ path: img, ref: app }} }}
  - ref: nginx:1.25
base:
  kernel: base/vmlinuz
  rootfs: base/rootfs
  modulesDir: base/modules
  bootloader:
    isolinux: base/isolinux
    efi: base/efi/systemd-bootx64.efi
    shim: base/efi/shimx64.efi
    grubNet: base/efi/grubnetx64.efi
    grub: base/efi/grubx64.efi
    ipxe: base/ipxe
netboot: {{ enabled: {netboot} }}
output:
  volumeLabel: T_LABEL
  extraFiles: {{ "docs/notes.txt": notes.txt }}
"#
    );
    let cfg = dir.join("t.yaml");
    fs::write(&cfg, yaml).unwrap();
    config::load(&cfg).unwrap()
}

fn layout(dir: &Path, app: &Appliance) -> IsoImage {
    let bundle = dir.join("bundle");
    put(&bundle.join("bundle.json"), b"{}");
    put(&bundle.join("index.json"), b"{}");
    let initrd = dir.join("initrd.img");
    put(&initrd, b"initrd");
    let base = paths(app);
    iso_image(app, &base, &bundle, &initrd, "t 1", "console=ttyS0", 7).unwrap()
}

#[test]
fn the_iso_holds_boot_files_bundle_and_sums() {
    let dir = tempfile::tempdir().unwrap();
    let app = fixture(dir.path(), false);
    let img = layout(dir.path(), &app);
    for p in [
        "boot/vmlinuz",
        "boot/initrd.img",
        "isolinux/isolinux.bin",
        "isolinux/ldlinux.c32",
        "isolinux/isolinux.cfg",
        "airlift/bundle/index.json",
        "airlift/bundle.json",
        "docs/notes.txt",
        "EFI/BOOT/grub.cfg",
        "EFI/debian/grub.cfg",
    ] {
        assert!(img.tree.get(p).is_some(), "{p} missing");
    }
    assert!(
        img.tree.get("ipxe").is_none(),
        "no iPXE files without netboot"
    );
    // SHA256SUMS is made by the writer, after the layout.
    assert!(img.sha256sums);
    assert!(img.tree.get("SHA256SUMS").is_none());
    let esp: Vec<&str> = img
        .uefi
        .as_ref()
        .unwrap()
        .esp_files
        .iter()
        .map(|(p, _)| p.as_str())
        .collect();
    assert_eq!(
        esp,
        [
            "EFI/BOOT/BOOTX64.EFI",
            "EFI/BOOT/grubx64.efi",
            "EFI/BOOT/grub.cfg",
            "EFI/debian/grub.cfg",
            "EFI/BOOT/mmx64.efi",
        ]
    );
    // shim is the removable-media loader; the kernel and initrd stay in
    // ISO 9660, where grub.cfg finds them by the volume label.
    let esp_file = |name: &str| {
        img.uefi
            .as_ref()
            .unwrap()
            .esp_files
            .iter()
            .find(|(p, _)| p == name)
            .map(|(_, s)| s.clone())
    };
    match esp_file("EFI/BOOT/BOOTX64.EFI") {
        Some(FileSource::Path(p)) => assert!(p.ends_with("base/efi/shimx64.efi"), "{p:?}"),
        other => panic!("BOOTX64.EFI is {other:?}"),
    }
    let Some(FileSource::Bytes(cfg)) = esp_file("EFI/BOOT/grub.cfg") else {
        panic!("no grub.cfg")
    };
    let cfg = String::from_utf8(cfg).unwrap();
    assert_eq!(cfg, boot_config::grub_cfg("T_LABEL", "console=ttyS0"));
    assert!(
        matches!(esp_file("EFI/debian/grub.cfg"), Some(FileSource::Bytes(b)) if b == cfg.as_bytes())
    );
    assert_eq!(img.volume_id, "T_LABEL");
    assert_eq!(
        img.bios.as_ref().unwrap().boot_file,
        "isolinux/isolinux.bin"
    );
}

#[test]
fn netboot_adds_the_ipxe_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let app = fixture(dir.path(), true);
    let img = layout(dir.path(), &app);
    assert!(img.tree.get("ipxe/undionly.kpxe").is_some());
    assert!(img.tree.get("ipxe/ipxe.efi").is_some());
    // shim and the network GRUB side by side: shim loads grubx64.efi
    // from its own folder.
    assert!(img.tree.get("netboot/shimx64.efi").is_some());
    assert!(img.tree.get("netboot/grubx64.efi").is_some());
}

#[test]
fn netboot_without_shim_or_grub_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let app = fixture(dir.path(), true);
    let bundle = dir.path().join("bundle");
    put(&bundle.join("index.json"), b"{}");
    let initrd = dir.path().join("initrd.img");
    put(&initrd, b"initrd");
    for (field, file) in [
        ("base.bootloader.shim", "base/efi/shimx64.efi"),
        ("base.bootloader.grubNet", "base/efi/grubnetx64.efi"),
    ] {
        // The file gone (the config was checked before).
        let path = dir.path().join(file);
        let bytes = fs::read(&path).unwrap();
        fs::remove_file(&path).unwrap();
        let base = paths(&app);
        let err = iso_image(&app, &base, &bundle, &initrd, "t", "", 0).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains(field) && msg.contains(file), "{msg}");
        fs::write(&path, bytes).unwrap();
        // The field unset.
        let mut base = paths(&app);
        if field.ends_with("shim") {
            base.bootloader.shim = None;
        } else {
            base.bootloader.grub_net = None;
        }
        let err = iso_image(&app, &base, &bundle, &initrd, "t", "", 0).unwrap_err();
        let msg = format!("{err:#}");
        // shim is the ESP's first stage too, so its own check names it first.
        let expected = if field.ends_with("shim") {
            format!("{field} is not set")
        } else {
            format!("netboot.enabled needs {field}")
        };
        assert!(msg.contains(&expected), "{msg}");
    }
    // Without netboot the network GRUB is not needed (shim still is: the
    // ESP boots through it).
    let app = fixture(dir.path(), false);
    let mut base = paths(&app);
    base.bootloader.grub_net = None;
    assert!(iso_image(&app, &base, &bundle, &initrd, "t", "", 0).is_ok());
}

#[test]
fn a_missing_boot_loader_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let app = fixture(dir.path(), false);
    fs::remove_file(dir.path().join("base/isolinux/ldlinux.c32")).unwrap();
    let base = paths(&app);
    let err = iso_image(&app, &base, dir.path(), dir.path(), "t", "", 0).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("ldlinux.c32") && msg.contains("base.bootloader.isolinux"),
        "{msg}"
    );
}

#[test]
fn a_missing_or_unset_shim_or_grub_names_the_field_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let app = fixture(dir.path(), false);
    let base = paths(&app);
    fs::remove_file(dir.path().join("base/efi/grubx64.efi")).unwrap();
    let msg = format!(
        "{:#}",
        iso_image(&app, &base, dir.path(), dir.path(), "t", "", 0).unwrap_err()
    );
    assert!(
        msg.contains("grubx64.efi")
            && msg.contains("base.bootloader.grub")
            && msg.contains("t.yaml"),
        "{msg}"
    );

    let mut unset = base.clone();
    unset.bootloader.shim = None;
    let msg = format!("{:#}", uefi_chain::loaders(&app, &unset).unwrap_err());
    assert!(msg.contains("base.bootloader.shim is not set"), "{msg}");

    // No MokManager beside shim: the chain works without it.
    put(&dir.path().join("base/efi/grubx64.efi"), b"MZ");
    fs::remove_file(dir.path().join("base/efi/mmx64.efi")).unwrap();
    let files = uefi_chain::esp_files(&app, &base, "T_LABEL", "x").unwrap();
    assert_eq!(files.len(), 4);
}

#[test]
fn appliance_json_derives_mirrors_from_the_images() {
    let dir = tempfile::tempdir().unwrap();
    let app = fixture(dir.path(), false);
    let file = appliance_file::appliance_file(&app, &"ab".repeat(32), "6.1.0-test");
    assert_eq!(file.mirrors, ["docker.io", "quay.io"]);
    let json: serde_json::Value =
        serde_json::from_slice(&appliance_file::render(&file).unwrap()).unwrap();
    assert_eq!(json["role"], "host0");
    assert_eq!(json["volumeLabel"], "T_LABEL");
    assert_eq!(json["joinToken"].as_str().unwrap().len(), 64);
    assert_eq!(json["kernelRelease"], "6.1.0-test");
    assert_eq!(json["registry"]["port"], 5000);
}

#[test]
fn supplied_tls_and_push_credentials_travel_in_the_initramfs() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = fixture(dir.path(), false);
    for (f, body) in [
        ("c.pem", "CERT"),
        ("k.pem", "KEY"),
        ("tok", "secret"),
        ("htp", "u:$2y$"),
    ] {
        put(&dir.path().join(f), body.as_bytes());
    }
    app.registry.tls.mode = config::TlsMode::Provided;
    app.registry.tls.cert = Some(dir.path().join("c.pem"));
    app.registry.tls.key = Some(dir.path().join("k.pem"));
    app.registry.push.enabled = true;
    app.registry.push.token_file = Some(dir.path().join("tok"));
    app.registry.push.htpasswd = Some(dir.path().join("htp"));

    let file = appliance_file::appliance_file(&app, &"ab".repeat(32), "6.1.0-test");
    assert_eq!(
        file.registry.tls_cert.as_deref(),
        Some(Path::new("/etc/airlift/tls/server.crt"))
    );
    assert_eq!(
        file.registry.tls_key.as_deref(),
        Some(Path::new("/etc/airlift/tls/server.key"))
    );
    let base = paths(&app);
    let firstboot = dir.path().join("firstboot");
    put(&firstboot, b"\x7fELF");
    let spec = initramfs_spec(
        (&base, &initramfs::RootSource::Host(base.rootfs.clone())),
        &app,
        &firstboot,
        "6.1.0-test",
        &file,
        0,
        3,
    )
    .unwrap();
    let modes: std::collections::BTreeMap<_, _> = spec
        .files
        .iter()
        .map(|(p, n)| (p.as_str(), n.perm))
        .collect();
    assert_eq!(modes.get("etc/airlift/tls/server.crt"), Some(&0o644));
    assert_eq!(modes.get("etc/airlift/tls/server.key"), Some(&0o600));
    assert_eq!(modes.get("etc/airlift/push-token"), Some(&0o600));
    assert_eq!(modes.get("etc/airlift/htpasswd"), Some(&0o600));

    // Without them, nothing extra is carried.
    let plain = fixture(dir.path(), false);
    assert!(appliance_file::secret_files(&plain).is_empty());
}

#[test]
fn the_server_set_is_in_force_unless_modules_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = fixture(dir.path(), false);
    let mut base = paths(&app);
    let spec = |base: &Base, app: &Appliance| modules_spec(base, app, "6.1.0-test").unwrap();

    // No `modules`: the server set, each name optional; extras required.
    base.extra_modules = vec!["dm_mod".into()];
    let m = spec(&base, &app).expect("the server set");
    assert_eq!(m.names, ["dm_mod"]);
    assert_eq!(m.optional, initramfs::server_set::names());
    assert_eq!(m.release, "6.1.0-test");

    // `modules` listed: exactly these (plus extras), nothing optional.
    base.modules = Some(vec!["ata_piix".into(), "isofs".into()]);
    let m = spec(&base, &app).expect("listed modules");
    assert_eq!(m.names, ["ata_piix", "isofs", "dm_mod"]);
    assert!(m.optional.is_empty());

    // `modules: []` and no extras: no modules at all.
    base.modules = Some(vec![]);
    base.extra_modules.clear();
    assert!(spec(&base, &app).is_none());

    // The server set without a modules folder: an error naming the field.
    base.modules = None;
    base.modules_dir = None;
    app.base = Some(config::BaseSpec::Paths(base.clone()));
    let err = modules_spec(&base, &app, "6.1.0-test")
        .unwrap_err()
        .to_string();
    assert!(err.contains("base.modulesDir is not set"), "{err}");
    assert!(err.contains("t.yaml"), "{err}");
}

/// A source OCI layout holding one image (`app`) with one layer; returns
/// the layer's digest.
fn source_layout(dir: &Path, layer: &[u8]) -> airlift_oci::Digest {
    use airlift_oci::documents::{media, Descriptor, REF_NAME};
    let l = airlift_oci::Layout::create(dir).unwrap();
    let (ld, ln) = l.put_blob(layer, None).unwrap();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let (cd, cn) = l.put_blob(config, None).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": Descriptor::new(media::OCI_CONFIG, cd, cn),
        "layers": [Descriptor::new(media::OCI_LAYER_TAR, ld.clone(), ln)],
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let (md, mn) = l.put_blob(&bytes, None).unwrap();
    let mut entry = Descriptor::new(media::OCI_MANIFEST, md, mn);
    entry.annotations.insert(REF_NAME.into(), "app".into());
    let mut index = airlift_oci::Index::empty();
    index.manifests.push(entry);
    l.write_index(&index).unwrap();
    ld
}

/// Bundle `src` the way `airlift build` does (blobs linked, not read) and
/// write an ISO of it with the digest checks `build` adds.
fn linked_bundle_iso(dir: &Path, src: &Path, iso_out: &Path) -> Result<bundler::BundleReport> {
    Ok(recorded_bundle_iso(dir, src, iso_out, None)?.0)
}

/// [`linked_bundle_iso`] with the verification record in `cache`, as
/// `build` keeps it; each call bundles into a fresh folder, as `build`
/// does.
fn recorded_bundle_iso(
    dir: &Path,
    src: &Path,
    iso_out: &Path,
    cache: Option<&Path>,
) -> Result<(bundler::BundleReport, iso::WriteReport)> {
    let work = tempfile::tempdir_in(dir)?;
    let bundle_dir = work.path().join("bundle");
    let req = ImageRequest {
        reference: "quay.io/org/app:1".parse().unwrap(),
        source: SourceSpec::OciLayout {
            path: src.to_path_buf(),
            reference: Some("app".into()),
        },
        platforms: vec![],
    };
    let report = bundler::write_bundle_linked(
        &[req],
        &bundle_dir,
        &BundleOptions {
            progress: false,
            ..BundleOptions::default()
        },
    )?;
    let mut record = cache.map(crate::verified::Record::load);
    let started = std::time::SystemTime::now();
    let mut tree = iso::Tree::new();
    tree.add_tree_from_dir(BUNDLE_ISO_DIR, &bundle_dir)?;
    tree.set_modes(BUNDLE_ISO_DIR, 0o644, 0o755)?;
    expect_digests(&mut tree, &report.unverified, record.as_ref())?;
    let image = IsoImage {
        volume_id: "T".into(),
        epoch: 0,
        tree,
        bios: None,
        uefi: None,
        sha256sums: false,
    };
    let written = iso::write(&image, iso_out)?;
    remember(cache.zip(record.as_mut()), &written.checks, started);
    Ok((report, written))
}

/// The build error of a blob that fails its check names its digest, its
/// source layout and the mismatch.
fn assert_names_the_bad_blob(msg: &str, digest: &airlift_oci::Digest, src: &Path) {
    for needle in [
        digest.to_string(),
        format!("oci-layout {}", src.display()),
        "failed verification".to_string(),
        "mismatch".to_string(),
    ] {
        assert!(msg.contains(&needle), "error lacks {needle:?}: {msg}");
    }
}

/// A verified build records the blob file; the next build copies it
/// unhashed, to the same bytes. Changed after that with its size and
/// mtime kept (only ctime and content differ), it is hashed again and
/// fails the build, naming the digest.
#[test]
fn a_blob_changed_after_a_recorded_build_fails_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let layer: Vec<u8> = (0..300_000u32).map(|i| (i * 13 + i / 97) as u8).collect();
    let digest = source_layout(&src, &layer);
    let blob = src.join(digest.blob_path());
    let cache = dir.path().join("cache");
    // Only a file whose last change is older than the margin is recorded.
    std::thread::sleep(crate::verified::RACY_MARGIN + std::time::Duration::from_millis(200));
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    let build = |name: &str| recorded_bundle_iso(dir.path(), &src, &out.join(name), Some(&cache));

    let (_, first) = build("1.iso").unwrap();
    assert_eq!(
        (first.checks.hashed_files, first.checks.trusted_files),
        (1, 0)
    );
    assert!(cache.join(crate::verified::FILE_NAME).is_file());
    let (_, second) = build("2.iso").unwrap();
    assert_eq!(
        (second.checks.hashed_files, second.checks.trusted_files),
        (0, 1)
    );
    assert_eq!(second.checks.trusted_bytes, layer.len() as u64);
    assert!(
        fs::read(out.join("1.iso")).unwrap() == fs::read(out.join("2.iso")).unwrap(),
        "a rebuild on the record's word writes the same bytes"
    );

    let before = crate::verified::FileKey::at(&blob).unwrap();
    let mtime = fs::metadata(&blob).unwrap().modified().unwrap();
    let mut bytes = fs::read(&blob).unwrap();
    bytes[1000] ^= 1;
    fs::write(&blob, &bytes).unwrap();
    fs::File::options()
        .write(true)
        .open(&blob)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let after = crate::verified::FileKey::at(&blob).unwrap();
    assert_eq!(
        after,
        crate::verified::FileKey {
            ctime_s: after.ctime_s,
            ctime_ns: after.ctime_ns,
            ..before
        },
        "only ctime tells the change"
    );
    assert_ne!(after, before);

    assert_names_the_bad_blob(&format!("{:#}", build("3.iso").unwrap_err()), &digest, &src);
    assert!(!out.join("3.iso").exists());
}

#[test]
fn linked_blobs_are_checked_as_the_iso_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let layer: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let digest = source_layout(&src, &layer);
    let out = dir.path().join("out.iso");
    let report = linked_bundle_iso(dir.path(), &src, &out).unwrap();
    assert_eq!(
        report.unverified.keys().collect::<Vec<_>>(),
        [&digest],
        "the layer was linked, not copied"
    );
    let iso = iso::read::Iso::open(&out).unwrap();
    let path = format!("{BUNDLE_ISO_DIR}/{}", digest.blob_path());
    assert_eq!(iso.read_file(&path).unwrap().unwrap(), layer);
    let entry = iso.lookup(&path).unwrap().unwrap();
    assert_eq!(entry.mode, Some(0o100644), "bundle files get one mode");
}

#[test]
fn a_corrupt_source_blob_fails_the_build_and_leaves_no_iso() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let layer = vec![5u8; 100_000];
    let digest = source_layout(&src, &layer);
    // Flip one byte in the source: same size, so it is linked unread.
    let blob = src.join(digest.blob_path());
    let mut bytes = fs::read(&blob).unwrap();
    bytes[4242] ^= 1;
    fs::write(&blob, bytes).unwrap();
    let out_dir = dir.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let e = linked_bundle_iso(dir.path(), &src, &out_dir.join("x.iso")).unwrap_err();
    assert_names_the_bad_blob(&format!("{e:#}"), &digest, &src);
    let left: Vec<_> = fs::read_dir(&out_dir).unwrap().collect();
    assert!(left.is_empty(), "no ISO or temp file is left: {left:?}");
}

/// `airlift build` with shim unset, or GRUB's file gone: the error names
/// the config, the field and the file, and no ISO (nor work folder) is left.
#[test]
fn build_without_the_signed_chain_writes_no_iso() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), false);
    source_layout(&dir.path().join("img"), b"layer");
    let cfg = dir.path().join("t.yaml");
    // The whole root in the initramfs: this test is about the ESP, not stage 1.
    let text = fs::read_to_string(&cfg).unwrap().replace(
        "  modulesDir: base/modules\n",
        "  modulesDir: base/modules\n  rootOn: initramfs\n",
    );
    let out_dir = dir.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("t.iso");
    let build_err = |yaml: &str| {
        fs::write(&cfg, yaml).unwrap();
        let err = build(&BuildOptions::new(cfg.clone(), out.clone())).unwrap_err();
        assert!(!out.exists(), "an ISO was written");
        assert_eq!(fs::read_dir(&out_dir).unwrap().count(), 0, "left files");
        format!("{err:#}")
    };
    let msg = build_err(&text.replace("    shim: base/efi/shimx64.efi\n", ""));
    assert!(
        msg.contains("t.yaml") && msg.contains("base.bootloader.shim: is not set"),
        "{msg}"
    );
    fs::remove_file(dir.path().join("base/efi/grubx64.efi")).unwrap();
    let msg = build_err(&text);
    assert!(
        msg.contains("base.bootloader.grub") && msg.contains("grubx64.efi"),
        "{msg}"
    );
}
