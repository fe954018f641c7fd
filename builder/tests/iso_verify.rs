//! `airlift verify` and `airlift inspect` on ISOs built by the writer:
//! a good image passes, a flipped byte in a blob is named, a missing
//! blob referenced from index.json is named.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

use airlift_builder::iso::{self, read::Iso, FileSource, IsoImage, Tree};
use sha2::{Digest, Sha256};

fn blob(tree: &mut Tree, bytes: &[u8]) -> (String, usize) {
    let hexd = hex::encode(Sha256::digest(bytes));
    tree.add_file(
        &format!("/airlift/bundle/blobs/sha256/{hexd}"),
        FileSource::Bytes(bytes.to_vec()),
        0o644,
    )
    .unwrap();
    (format!("sha256:{hexd}"), bytes.len())
}

/// A bundle with one image (config + one layer); `drop_layer` leaves the
/// layer blob out of the ISO.
fn bundle_image(drop_layer: bool) -> IsoImage {
    bundle_image_with(drop_layer, &[])
}

/// [`bundle_image`] with `extra` files added before SHA256SUMS is made.
fn bundle_image_with(drop_layer: bool, extra: &[(&str, Vec<u8>)]) -> IsoImage {
    let mut tree = Tree::new();
    for (path, bytes) in extra {
        tree.add_file(path, FileSource::Bytes(bytes.clone()), 0o644)
            .unwrap();
    }
    let layer = vec![0x42u8; 100_000];
    let (layer_digest, layer_size) = if drop_layer {
        (
            format!("sha256:{}", hex::encode(Sha256::digest(&layer))),
            layer.len(),
        )
    } else {
        blob(&mut tree, &layer)
    };
    let (cfg_digest, cfg_size) = blob(&mut tree, br#"{"architecture":"amd64","os":"linux"}"#);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_digest, "size": cfg_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}]
    });
    let (m_digest, m_size) = blob(&mut tree, manifest.to_string().as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m_digest, "size": m_size}]
    });
    let add =
        |t: &mut Tree, p: &str, b: Vec<u8>| t.add_file(p, FileSource::Bytes(b), 0o644).unwrap();
    add(
        &mut tree,
        "/airlift/bundle/index.json",
        index.to_string().into_bytes(),
    );
    add(
        &mut tree,
        "/airlift/bundle/oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    );
    let bundle = serde_json::json!({"images": [{"reference": "quay.io/test/app:1.0", "digest": m_digest, "size": m_size, "platforms": ["linux/amd64"]}]});
    add(
        &mut tree,
        "/airlift/bundle.json",
        bundle.to_string().into_bytes(),
    );
    add(&mut tree, "/boot/vmlinuz", vec![7u8; 50_000]);
    IsoImage {
        volume_id: "AIRLIFT_VERIFY".into(),
        epoch: 1_700_000_000,
        tree,
        bios: None,
        uefi: None,
        sha256sums: true,
    }
}

fn airlift(args: &[&str], iso: &Path) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_airlift"))
        .args(args)
        .arg(iso)
        .output()
        .unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn verify_passes_then_names_the_corrupted_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.iso");
    iso::write(&bundle_image(false), &good).unwrap();
    let (ok, text) = airlift(&["verify"], &good);
    assert!(ok, "{text}");
    assert!(text.contains("3 blobs") && text.contains("OK"), "{text}");

    // Flip one byte in the layer blob.
    let bad = tmp.path().join("bad.iso");
    std::fs::copy(&good, &bad).unwrap();
    let layer_hex = hex::encode(Sha256::digest(vec![0x42u8; 100_000]));
    let e = Iso::open(&bad)
        .unwrap()
        .lookup(&format!("airlift/bundle/blobs/sha256/{layer_hex}"))
        .unwrap()
        .unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&bad).unwrap();
    f.write_all_at(&[0x43], u64::from(e.extents[0].0) * 2048 + 777)
        .unwrap();
    drop(f);
    let (ok, text) = airlift(&["verify"], &bad);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("FAILED blob sha256:{layer_hex}")),
        "{text}"
    );
    assert_eq!(text.matches("FAILED").count(), 1, "{text}");

    // Flip a byte in a SHA256SUMS-covered file.
    let bad2 = tmp.path().join("bad2.iso");
    std::fs::copy(&good, &bad2).unwrap();
    let e = Iso::open(&bad2)
        .unwrap()
        .lookup("boot/vmlinuz")
        .unwrap()
        .unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&bad2)
        .unwrap()
        .write_all_at(&[0], u64::from(e.extents[0].0) * 2048)
        .unwrap();
    let (ok, text) = airlift(&["verify"], &bad2);
    assert!(!ok && text.contains("FAILED boot/vmlinuz"), "{text}");
}

#[test]
fn verify_names_a_missing_descriptor() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("missing.iso");
    iso::write(&bundle_image(true), &p).unwrap();
    let (ok, text) = airlift(&["verify"], &p);
    assert!(!ok, "{text}");
    let layer_hex = hex::encode(Sha256::digest(vec![0x42u8; 100_000]));
    assert!(
        text.contains(&format!("descriptor sha256:{layer_hex}: blob")),
        "{text}"
    );
}

#[test]
fn inspect_reports_boot_partitions_and_images() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("x.iso");
    let mut image = bundle_image(false);
    image.uefi = Some(iso::UefiBoot {
        esp_files: vec![(
            "EFI/BOOT/BOOTX64.EFI".into(),
            FileSource::Bytes(vec![1; 4096]),
        )],
    });
    iso::write(&image, &p).unwrap();
    let (ok, text) = airlift(&["inspect", "--json"], &p);
    assert!(ok, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["volume_id"], "AIRLIFT_VERIFY");
    assert_eq!(v["el_torito"][0]["platform"], 0xEF);
    assert_eq!(v["gpt"].as_array().unwrap().len(), 2);
    assert_eq!(v["images"][0]["reference"], "quay.io/test/app:1.0");
    // A loader that is not a PE image is reported, not fatal.
    let chain = &v["uefi_chain"];
    assert_eq!(chain["kind"], "systemd-boot", "{chain}");
    assert_eq!(chain["parts"][0]["location"]["esp"], "EFI/BOOT/BOOTX64.EFI");
    assert_eq!(
        chain["parts"][0]["problem"],
        "not a PE image (no MZ header)"
    );
    assert_eq!(
        chain["parts"][1]["location"]["iso"], "boot/vmlinuz",
        "{chain}"
    );
    assert_eq!(
        chain["parts"][1]["problem"],
        "not a PE image (no MZ header)"
    );
    let (ok, text) = airlift(&["inspect"], &p);
    assert!(ok, "{text}");
    assert!(
        text.contains("UEFI no-emulation")
            && text.contains("EFI System")
            && text.contains("quay.io/test/app:1.0")
            && text.contains("UEFI chain:  systemd-boot -> kernel\n"),
        "{text}"
    );
}

/// An ISO that boots from BIOS: the writer patches the boot info table
/// into isolinux.bin, and SHA256SUMS must cover the bytes the ISO holds.
#[test]
fn verify_passes_on_an_iso_that_boots_from_bios() {
    let tmp = tempfile::tempdir().unwrap();
    let mbr = tmp.path().join("isohdpfx.bin");
    std::fs::write(&mbr, vec![0x90u8; 432]).unwrap();
    // A stand-in isolinux.bin: its bytes 8..64 are where the table goes.
    let isolinux: Vec<u8> = (0..24_576u32).map(|i| (i % 251) as u8).collect();
    let mut image = bundle_image_with(false, &[("/isolinux/isolinux.bin", isolinux.clone())]);
    image.bios = Some(iso::BiosBoot {
        boot_file: "/isolinux/isolinux.bin".into(),
        mbr_code: mbr,
    });
    let p = tmp.path().join("bios.iso");
    iso::write(&image, &p).unwrap();
    let (ok, text) = airlift(&["verify"], &p);
    assert!(ok, "{text}");
    assert!(!text.contains("FAILED"), "{text}");
    // The boot file was patched, and it is listed in SHA256SUMS.
    let iso = Iso::open(&p).unwrap();
    let on_disc = iso.read_file("isolinux/isolinux.bin").unwrap().unwrap();
    assert_ne!(on_disc, isolinux, "the boot info table was not patched");
    let sums = String::from_utf8(iso.read_file("SHA256SUMS").unwrap().unwrap()).unwrap();
    assert!(
        sums.contains(&format!(
            "{}  isolinux/isolinux.bin\n",
            hex::encode(Sha256::digest(&on_disc))
        )),
        "{sums}"
    );
}

/// Runs `airlift verify iso`, killing it after `limit`: (finished, ok, text).
fn verify_within(iso: &Path, limit: std::time::Duration) -> (bool, bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_airlift"))
        .arg("verify")
        .arg(iso)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            let o = child.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            return (true, o.status.success(), text);
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            return (false, false, String::new());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A directory whose child record points back at the directory itself:
/// verify stops with an error naming the path instead of walking for ever.
#[test]
fn verify_refuses_a_directory_that_contains_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("loop.iso");
    let image = bundle_image_with(false, &[("/loop/inner/file.txt", b"x".to_vec())]);
    iso::write(&image, &p).unwrap();
    let outer = Iso::open(&p).unwrap().lookup("loop").unwrap().unwrap();
    let (lba, len) = outer.extents[0];
    // Point the primary record of `inner` at `loop`'s own extent.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&p)
        .unwrap();
    let mut dir = vec![0u8; len as usize];
    f.read_exact_at(&mut dir, u64::from(lba) * 2048).unwrap();
    let at = dir
        .windows(5)
        .position(|w| w == b"INNER")
        .expect("the INNER record")
        - 33;
    assert_eq!(dir[at + 32], 5);
    let mut both = Vec::new();
    both.extend_from_slice(&lba.to_le_bytes());
    both.extend_from_slice(&lba.to_be_bytes());
    f.write_all_at(&both, u64::from(lba) * 2048 + at as u64 + 2)
        .unwrap();
    drop(f);
    let (finished, ok, text) = verify_within(&p, std::time::Duration::from_secs(30));
    assert!(finished, "airlift verify was still running after 30 s");
    assert!(!ok, "{text}");
    assert!(text.contains("loop/inner"), "{text}");
    assert!(text.contains("loops back"), "{text}");
}

/// An update ISO leaves blobs to its base release: verify counts them
/// instead of failing, and checks what `update.json` claims.
#[test]
fn verify_leaves_an_update_isos_missing_blobs_to_its_base_and_checks_update_json() {
    let tmp = tempfile::tempdir().unwrap();
    let id = |v: &str| serde_json::json!({"name": "t", "version": v, "bundle": format!("sha256:{}", "ab".repeat(32))});
    let update = serde_json::json!({
        "schema": "airlift.update/v1",
        "release": id("2"),
        "base": id("1"),
        "carried": {"blobs": 2, "bytes": 1},
        "total": {"blobs": 3, "bytes": 100_100},
        "added": [], "changed": [], "removed": []
    });
    let image = bundle_image_with(
        true,
        &[("/airlift/update.json", update.to_string().into_bytes())],
    );
    let p = tmp.path().join("update.iso");
    iso::write(&image, &p).unwrap();
    let (ok, text) = airlift(&["verify"], &p);
    assert!(!ok, "{text}");
    assert!(
        text.contains("an update medium: 1 descriptors are left to its base release"),
        "{text}"
    );
    assert!(!text.contains("is missing"), "{text}");
    assert!(
        text.contains("says 2 blobs (1 bytes) are carried, the medium has 2 ("),
        "{text}"
    );
    assert!(text.contains("names bundle sha256:abab"), "{text}");
    assert!(text.contains("2 problem(s) found"), "{text}");
}
