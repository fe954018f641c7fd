//! `airlift build --update-from` end to end, over local OCI layouts and a
//! stand-in base (no QEMU): release 1 of a ten-image appliance as a full
//! ISO, then release 2 (one image changed, one added, one dropped) as an
//! update ISO and an update OCI archive, from the release-1 ISO and from
//! its bundle.json. Checks exactly which blobs each carries, update.json,
//! byte-identical rebuilds, the refusals (another appliance's medium,
//! files that are no airlift medium), `airlift inspect` and `airlift
//! verify` on them.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use airlift_appliance::release::{bundle_id, UpdateManifest};
use airlift_builder::iso::read::Iso;
use airlift_builder::pipeline::{self, BuildOptions};
use airlift_builder::update::medium::{Container, Medium};
use airlift_builder::update::{self, UpdateOptions};
use airlift_integration::fake_base::{self, put};
use airlift_integration::images::{write_layout, Layer, MadeImage, TestImage};
use airlift_integration::tools::binary;
use airlift_oci::{Digest, Layout};

const SHARED: Layer = Layer::Random {
    seed: 1000,
    size: 200_000,
};

/// An image: the layer all share, and its own (seeds).
fn image(n: u32, own: &[u64]) -> TestImage {
    let mut layers = vec![SHARED];
    layers.extend(own.iter().map(|&seed| Layer::Random {
        seed,
        size: 100_000,
    }));
    TestImage {
        ref_name: format!("app{n}"),
        layers,
        architecture: "amd64".into(),
        gzip: false,
    }
}

/// The config of release `version` of appliance `name`, its images from
/// the layout folder `layout` (refs `app<n>` for each n of `images`).
fn config(dir: &Path, name: &str, version: &str, layout: &str, images: &[u32]) -> PathBuf {
    let mut yaml = format!(
        "apiVersion: airlift/v1alpha1\nkind: Appliance\nmetadata: {{ name: {name}, version: \
         '{version}' }}\nimages:\n"
    );
    for n in images {
        yaml.push_str(&format!(
            "  - ref: quay.io/demo/app{n}:1\n    from: {{ ociLayout: {{ path: {layout}, ref: app{n} }} }}\n"
        ));
    }
    yaml.push_str(
        "base:\n  kernel: base/vmlinuz\n  rootfs: base/rootfs\n  modules: []\n  rootOn: initramfs\n  \
         bootloader:\n    isolinux: base/isolinux\n    efi: base/efi/systemd-bootx64.efi\n    \
         shim: base/efi/shimx64.efi\n    grub: base/efi/grubx64.efi\noutput:\n  volumeLabel: DEMO_UPD\n",
    );
    let p = dir.join(format!("{name}-{version}.yaml"));
    put(&p, yaml.as_bytes());
    p
}

/// Every blob `made` reaches in the layout at `dir`.
fn closure(dir: &Path, made: &[MadeImage]) -> BTreeSet<Digest> {
    let layout = Layout::open(dir).unwrap();
    made.iter()
        .flat_map(|m| layout.reachable(&m.manifest).unwrap())
        .map(|d| d.digest)
        .collect()
}

struct Fixture {
    dir: tempfile::TempDir,
    r1_iso: PathBuf,
    r2_config: PathBuf,
    /// Blobs of release 2 that release 1's ISO lacks.
    new_blobs: BTreeSet<Digest>,
    /// The blob only the dropped app9 had, which the added app10 reuses.
    app9_layer: Digest,
    r1: Vec<MadeImage>,
    r2: Vec<MadeImage>,
}

/// Release 1 (app0..app9) built as a full ISO; release 2's config:
/// app1 changed, app9 dropped, app10 added (reusing app9's own layer).
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fake_base::write(&d.join("base"));
    let r1_images: Vec<TestImage> = (0..10).map(|n| image(n, &[u64::from(n)])).collect();
    let r1 = write_layout(&d.join("r1"), &r1_images).unwrap();
    let mut r2_images: Vec<TestImage> = (0..9).map(|n| image(n, &[u64::from(n)])).collect();
    r2_images[1] = image(1, &[101]);
    r2_images.push(image(10, &[9, 10]));
    let r2 = write_layout(&d.join("r2"), &r2_images).unwrap();
    let r1_config = config(d, "demo", "1", "r1", &(0..10).collect::<Vec<_>>());
    let r2_config = config(
        d,
        "demo",
        "2",
        "r2",
        &(0..9).chain([10]).collect::<Vec<_>>(),
    );
    let r1_iso = d.join("out/demo-1.iso");
    fs::create_dir_all(d.join("out")).unwrap();
    let mut opts = BuildOptions::new(r1_config, r1_iso.clone());
    opts.firstboot = Some(PathBuf::from("/bin/true"));
    opts.progress = false;
    pipeline::build(&opts).expect("building release 1");
    let old = closure(&d.join("r1"), &r1);
    let new_blobs = closure(&d.join("r2"), &r2)
        .difference(&old)
        .cloned()
        .collect();
    let app9_layer = r1[9].blobs.last().unwrap().clone();
    Fixture {
        dir,
        r1_iso,
        r2_config,
        new_blobs,
        app9_layer,
        r1,
        r2,
    }
}

fn update(f: &Fixture, config: &Path, previous: &Path, out: &str) -> anyhow::Result<PathBuf> {
    let output = f.dir.path().join("out").join(out);
    update::build(&UpdateOptions {
        config: config.to_path_buf(),
        previous: previous.to_path_buf(),
        output: output.clone(),
        concurrency: 2,
        progress: false,
        cache: None,
    })?;
    Ok(output)
}

fn carried(m: &Medium) -> BTreeSet<Digest> {
    m.blobs.keys().cloned().collect()
}

fn airlift(args: &[&str], path: &Path) -> (bool, String) {
    let out = Command::new(binary("airlift"))
        .args(args)
        .arg(path)
        .output()
        .expect("running airlift");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// The update.json every medium of the fixture must carry.
fn check_manifest(f: &Fixture, u: &UpdateManifest, carried: &BTreeSet<Digest>) {
    let r1 = Medium::open(&f.r1_iso).unwrap();
    assert_eq!(u.schema, "airlift.update/v1");
    assert_eq!(
        (u.base.name.as_str(), u.base.version.as_str()),
        ("demo", "1")
    );
    assert_eq!(u.base.bundle, bundle_id(&r1.index_json));
    assert_eq!(
        (u.release.name.as_str(), u.release.version.as_str()),
        ("demo", "2")
    );
    assert_eq!(u.carried.blobs, carried.len() as u64);
    let layout = Layout::open(&f.dir.path().join("r2")).unwrap();
    let all: BTreeSet<(Digest, u64)> =
        f.r2.iter()
            .flat_map(|m| layout.reachable(&m.manifest).unwrap())
            .map(|d| (d.digest, d.size))
            .collect();
    assert_eq!(u.total.blobs, all.len() as u64);
    assert_eq!(u.total.bytes, all.iter().map(|b| b.1).sum::<u64>());
    let carried_bytes: u64 = all
        .iter()
        .filter(|b| carried.contains(&b.0))
        .map(|b| b.1)
        .sum();
    assert_eq!(u.carried.bytes, carried_bytes);
    let one = |v: &[airlift_appliance::release::ImageChange]| {
        assert_eq!(v.len(), 1, "{v:?}");
        v[0].clone()
    };
    let added = one(&u.added);
    assert_eq!(added.reference, "quay.io/demo/app10:1");
    assert_eq!(
        (added.from, added.to),
        (None, Some(f.r2[9].manifest.digest.clone()))
    );
    let changed = one(&u.changed);
    assert_eq!(changed.reference, "quay.io/demo/app1:1");
    assert_eq!(changed.from, Some(f.r1[1].manifest.digest.clone()));
    assert_eq!(changed.to, Some(f.r2[1].manifest.digest.clone()));
    let removed = one(&u.removed);
    assert_eq!(removed.reference, "quay.io/demo/app9:1");
    assert_eq!(
        (removed.from, removed.to),
        (Some(f.r1[9].manifest.digest.clone()), None)
    );
}

#[test]
fn update_media_carry_exactly_what_the_previous_release_lacks() {
    let f = fixture();
    // Exactly app1's new manifest, config and layer and app10's manifest,
    // config and own layer: the shared layer and app9's are on the ISO.
    assert_eq!(f.new_blobs.len(), 6, "{:?}", f.new_blobs);
    assert!(!f.new_blobs.contains(&f.app9_layer));

    let iso = update(&f, &f.r2_config, &f.r1_iso, "demo-2-update.iso").unwrap();
    let m = Medium::open(&iso).unwrap();
    assert_eq!(m.container, Container::Iso);
    assert_eq!(carried(&m), f.new_blobs);
    let u = m.update.clone().expect("update.json on the ISO");
    check_manifest(&f, &u, &f.new_blobs);
    assert_eq!(u.release, m.release());
    // The new release's whole index and bundle.json, and the label.
    let r2_index = Iso::open(&iso).unwrap();
    assert_eq!(r2_index.volume_id, "DEMO_UPD");
    assert_eq!(m.bundle.images.len(), 10);
    let names: Vec<&str> = m
        .bundle
        .images
        .iter()
        .map(|i| i.reference.as_str())
        .collect();
    assert!(names.contains(&"quay.io/demo/app10:1") && !names.contains(&"quay.io/demo/app9:1"));
    assert!(
        r2_index.el_torito().unwrap().is_empty(),
        "an update ISO does not boot"
    );
    assert!(r2_index.lookup("boot/vmlinuz").unwrap().is_none());

    // Byte-identical when built again.
    let again = update(&f, &f.r2_config, &f.r1_iso, "again.iso").unwrap();
    assert_eq!(fs::read(&iso).unwrap(), fs::read(&again).unwrap());

    // The OCI archive: the same blobs, files at its root, sorted, same bytes twice.
    let tar = update(&f, &f.r2_config, &f.r1_iso, "demo-2-update.tar").unwrap();
    let t = Medium::open(&tar).unwrap();
    assert_eq!(t.container, Container::Archive);
    assert_eq!(carried(&t), f.new_blobs);
    assert_eq!(t.update.as_ref(), Some(&u));
    assert_eq!(t.index_json, m.index_json);
    let tar2 = update(&f, &f.r2_config, &f.r1_iso, "again.tar").unwrap();
    assert_eq!(fs::read(&tar).unwrap(), fs::read(&tar2).unwrap());
    let mut names = Vec::new();
    for e in tar::Archive::new(fs::File::open(&tar).unwrap())
        .entries()
        .unwrap()
    {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().to_string();
        if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut body).unwrap();
            assert_eq!(Digest::sha256_of(&body).hex(), hex, "{name}");
        }
        names.push(name);
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    for want in [
        "oci-layout",
        "index.json",
        "bundle.json",
        "update.json",
        "blobs/sha256/",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }

    // From bundle.json (with index.json beside it, as copied off the ISO):
    // app9's layer is not known to be held any more, so it is carried too.
    let r1 = Iso::open(&f.r1_iso).unwrap();
    let prev = f.dir.path().join("prev");
    put(
        &prev.join("bundle.json"),
        &r1.read_file("airlift/bundle.json").unwrap().unwrap(),
    );
    put(
        &prev.join("index.json"),
        &r1.read_file("airlift/bundle/index.json").unwrap().unwrap(),
    );
    let from_json = update(&f, &f.r2_config, &prev.join("bundle.json"), "from-json.iso").unwrap();
    let j = Medium::open(&from_json).unwrap();
    let mut want = f.new_blobs.clone();
    want.insert(f.app9_layer.clone());
    assert_eq!(carried(&j), want);
    check_manifest(&f, j.update.as_ref().unwrap(), &want);
    let from_json_tar =
        update(&f, &f.r2_config, &prev.join("bundle.json"), "from-json.tar").unwrap();
    assert_eq!(carried(&Medium::open(&from_json_tar).unwrap()), want);

    // An update of an update: release 2's update ISO as PREVIOUS names
    // release 2 as the base and carries nothing new.
    let again = update(&f, &f.r2_config, &iso, "same.tar").unwrap();
    let same = Medium::open(&again).unwrap();
    assert!(same.blobs.is_empty(), "{:?}", same.blobs);
    assert_eq!(same.update.unwrap().base, u.release);
}

#[test]
fn an_update_medium_from_a_base_image_config_needs_no_base() {
    // Release 2 names its base as an image in a registry that does not
    // exist: an update medium does not boot, so the base is neither
    // pulled nor checked, exactly as host paths are not (issue #21).
    let f = fixture();
    let text = fs::read_to_string(&f.r2_config).unwrap();
    let start = text.find("base:\n").unwrap();
    let end = text.find("output:").unwrap();
    let imaged = format!(
        "{}base:\n  image:\n    ref: registry.invalid/base/demo:1\n  modules: []\n{}",
        &text[..start],
        &text[end..]
    );
    let config = f.dir.path().join("demo-2-image.yaml");
    put(&config, imaged.as_bytes());
    let iso = update(&f, &config, &f.r1_iso, "demo-2-image-update.iso").unwrap();
    let m = Medium::open(&iso).unwrap();
    assert_eq!(carried(&m), f.new_blobs);
    assert!(m.bundle.base.is_none(), "{:?}", m.bundle.base);
}

#[test]
fn update_media_refuse_other_appliances_and_files_that_are_no_medium() {
    let f = fixture();
    let d = f.dir.path();
    let out = d.join("out");
    let before: BTreeSet<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let other = config(d, "other", "2", "r2", &[0, 1]);
    let err = update(&f, &other, &f.r1_iso, "other.iso").unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("another appliance's medium"), "{text}");
    assert!(
        text.contains("\"demo\"") && text.contains("\"other\""),
        "{text}"
    );

    let junk = d.join("junk.bin");
    put(&junk, &vec![7u8; 100_000]);
    let text = format!(
        "{:#}",
        update(&f, &f.r2_config, &junk, "junk.iso").unwrap_err()
    );
    assert!(text.contains("is not an airlift medium"), "{text}");

    // An ISO, but not airlift's.
    let plain = d.join("plain.iso");
    let mut tree = airlift_builder::iso::Tree::new();
    tree.add_file(
        "readme.txt",
        airlift_builder::iso::FileSource::Bytes(b"hi".to_vec()),
        0o644,
    )
    .unwrap();
    let image = airlift_builder::iso::IsoImage {
        volume_id: "PLAIN".into(),
        epoch: 0,
        tree,
        bios: None,
        uefi: None,
        sha256sums: false,
    };
    airlift_builder::iso::write(&image, &plain).unwrap();
    let text = format!(
        "{:#}",
        update(&f, &f.r2_config, &plain, "plain.iso").unwrap_err()
    );
    assert!(text.contains("is not an airlift medium"), "{text}");

    // A bundle.json alone cannot name its release.
    let lone = d.join("lone/bundle.json");
    let r1 = Iso::open(&f.r1_iso).unwrap();
    put(
        &lone,
        &r1.read_file("airlift/bundle.json").unwrap().unwrap(),
    );
    let text = format!(
        "{:#}",
        update(&f, &f.r2_config, &lone, "lone.tar").unwrap_err()
    );
    assert!(text.contains("index.json"), "{text}");

    // Nothing written, no temp files left.
    let after: BTreeSet<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn inspect_and_verify_read_update_media() {
    let f = fixture();
    // An update does not boot: it needs none of the base files.
    fs::remove_dir_all(f.dir.path().join("base")).unwrap();
    let iso = update(&f, &f.r2_config, &f.r1_iso, "u.iso").unwrap();
    // As a user runs it.
    let tar = f.dir.path().join("out/u.tar");
    let out = Command::new(binary("airlift"))
        .arg("build")
        .arg(&f.r2_config)
        .arg("--update-from")
        .arg(&f.r1_iso)
        .arg("-o")
        .arg(&tar)
        .arg("--no-cache")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("(OCI archive)") && stderr.contains("carries 6 of 32 blobs"),
        "{stderr}"
    );
    let base = Medium::open(&f.r1_iso).unwrap().release();
    for p in [&iso, &tar] {
        let (ok, text) = airlift(&["inspect"], p);
        assert!(ok, "{text}");
        for want in [
            "Release:     demo 2 (".to_string(),
            format!("an update: needs release {base} on host0"),
            "6 of 32 carried".to_string(),
            "1 added, 1 changed, 1 removed".to_string(),
            "  added    quay.io/demo/app10:1 sha256:".to_string(),
            "  changed  quay.io/demo/app1:1 sha256:".to_string(),
            "  removed  quay.io/demo/app9:1 sha256:".to_string(),
        ] {
            assert!(text.contains(&want), "{want:?} not in:\n{text}");
        }
        let (ok, text) = airlift(&["inspect", "--json"], p);
        assert!(ok, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let r = &v["release"];
        assert_eq!(r["kind"], "update", "{r}");
        assert_eq!(r["base"]["version"], "1");
        assert_eq!(r["base"]["bundle"], base.bundle.to_string());
        assert_eq!(r["carried"]["blobs"], 6);
        assert_eq!(r["total"]["blobs"], 32);
        assert_eq!(r["removed"][0]["reference"], "quay.io/demo/app9:1");
    }
    let (ok, text) = airlift(&["inspect"], &f.r1_iso);
    assert!(ok, "{text}");
    assert!(
        text.contains("a full release medium: loads on any host0 of this appliance"),
        "{text}"
    );
    assert!(text.contains("31 of 31 carried"), "{text}");

    let (ok, text) = airlift(&["verify"], &iso);
    assert!(ok, "{text}");
    assert!(text.contains(": 6 blobs,"), "{text}");
    assert!(
        text.contains("descriptors are left to its base release"),
        "{text}"
    );
    let (ok, text) = airlift(&["verify"], &f.r1_iso);
    assert!(ok && !text.contains("left to its base"), "{text}");
    let (ok, text) = airlift(&["verify"], &tar);
    assert!(ok, "{text}");
    assert!(text.contains(": 6 blobs,"), "{text}");
    assert!(
        text.contains("descriptors are left to its base release"),
        "{text}"
    );
    // A flipped byte in a carried blob of the archive is named.
    let (offset, digest) = {
        let mut ar = tar::Archive::new(fs::File::open(&tar).unwrap());
        let e = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| {
                e.header().size().unwrap() > 1000 && e.path().unwrap().starts_with("blobs/sha256")
            })
            .unwrap();
        let hex = e
            .path()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        (e.raw_file_position(), hex)
    };
    let bad = f.dir.path().join("out/bad.tar");
    let mut bytes = fs::read(&tar).unwrap();
    bytes[offset as usize + 10] ^= 1;
    fs::write(&bad, bytes).unwrap();
    let (ok, text) = airlift(&["verify"], &bad);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("FAILED blob sha256:{digest}: content hashes to")),
        "{text}"
    );
}
