//! `base.image` end to end (issue #21), through the real `airlift` run as
//! an unprivileged user: the fixture base (tests/support/base_image.rs)
//! from an oci-archive, an OCI layout folder and Debian's docker-registry gives
//! byte-identical ISOs whose root image has the layers flattened
//! (whiteout applied, owners kept, the kernel taken out), and
//! `airlift inspect` names the base. Hostile base images each fail the
//! build with a clear error, leave nothing at the output and write
//! nothing outside the work folder. `verify:` covers the base.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use airlift_builder::iso::read::Iso;
use airlift_integration::base_image::{self, paths, Hostile, KERNEL_RELEASE, REFERENCE, TAG};
use airlift_integration::fake_base::put;
use airlift_integration::images::{write_layout, TestImage};
use airlift_integration::registry::TestRegistry;
use airlift_integration::sigstore::{KeyKind, PushTarget, TestKey};
use airlift_integration::tools::{binary, file_contents_under, run_ok};
use airlift_integration::unprivileged::{self, User};

/// The fixed build time of every build here.
const EPOCH: &str = "1700000000";

/// A work folder owned by the unprivileged user: the base (layout and
/// oci-archive), one small app image, a home, and `out/`.
struct Fixture {
    dir: tempfile::TempDir,
    user: User,
    made: base_image::MadeBase,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let made = base_image::write_good(&d.join("base"), None).unwrap();
        write_layout(&d.join("apps"), &[TestImage::random("app", 2101, 20_000)]).unwrap();
        for sub in ["home", "out"] {
            fs::create_dir(d.join(sub)).unwrap();
        }
        let user = unprivileged::user();
        user.own(d);
        Fixture { dir, user, made }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Write config `name`.yaml: the app image, and `base:` with the image
    /// taken `from` (a YAML flow mapping) plus `extra` (more YAML lines).
    fn config(&self, name: &str, from: &str, extra: &str) -> PathBuf {
        let yaml = format!(
            "apiVersion: airlift/v1alpha1\nkind: Appliance\nmetadata: {{ name: based, version: '1' \
             }}\nimages:\n  - ref: quay.io/demo/app:1\n    from: {{ ociLayout: {{ path: apps, ref: \
             app }} }}\nbase:\n  image:\n    ref: {REFERENCE}\n    from: {from}\n  modules: []\n  \
             rootOn: media\noutput:\n  volumeLabel: BASED\n{extra}"
        );
        let p = self.path(&format!("{name}.yaml"));
        put(&p, yaml.as_bytes());
        self.user.own(&p);
        p
    }

    /// `airlift ARGS` as the unprivileged user, in the work folder.
    fn airlift(&self, args: &[&str]) -> Output {
        self.user
            .command(binary("airlift"), &self.path("home"))
            .current_dir(self.dir.path())
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .env("RUST_LOG", "info")
            .args(args)
            .output()
            .unwrap()
    }

    /// Config `name`.yaml with the base `from` there, built into
    /// `out/from-NAME.iso`, which must succeed.
    fn build_from(&self, name: &str, from: &str) {
        let config = self.config(name, from, "");
        let o = self.build(&config, &format!("from-{name}.iso"));
        assert!(o.status.success(), "{}", text(&o));
    }

    /// `airlift build CONFIG -o out/ISO`.
    fn build(&self, config: &Path, iso: &str) -> Output {
        self.airlift(&[
            "build",
            config.to_str().unwrap(),
            "-o",
            &format!("out/{iso}"),
            "--firstboot",
            "/bin/true",
            "--no-cache",
        ])
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `unsquashfs -lln` of the root image inside `iso` (one line per member,
/// numeric owners, paths under `R/`), and the extended attributes list
/// the build put in it.
fn root_listing(iso: &Path, scratch: &Path) -> (String, String) {
    let iso = Iso::open(iso).unwrap();
    let bytes = iso
        .read_file(airlift_builder::rootimage::squashfs::ISO_PATH)
        .unwrap()
        .expect("the ISO has a root image (rootOn: media)");
    let image = scratch.join("root.squashfs");
    fs::write(&image, bytes).unwrap();
    let listing = run_ok(
        Command::new("unsquashfs")
            .args(["-lln", "-d", "R"])
            .arg(&image),
    );
    let xattrs = run_ok(
        Command::new("unsquashfs")
            .arg("-cat")
            .arg(&image)
            .arg(airlift_appliance::xattrs::MANIFEST_PATH),
    );
    fs::remove_file(&image).unwrap();
    (listing, xattrs)
}

/// The listing line of `path` (relative to the root), if present.
fn line<'a>(listing: &'a str, path: &str) -> Option<&'a str> {
    let want = format!(" R/{path}");
    listing
        .lines()
        .find(|l| l.ends_with(&want) || l.contains(&format!("{want} -> ")))
}

#[test]
fn archive_registry_and_layout_give_the_same_iso_as_an_unprivileged_user() {
    let f = Fixture::new();
    f.build_from(
        "archive",
        &format!("{{ ociArchive: {{ path: base/base.oci.tar, ref: {TAG} }} }}"),
    );

    let reg = TestRegistry::start();
    reg.push_layout(&f.path("base/layout"), TAG, "base/demo:bookworm");
    f.build_from(
        "registry",
        &format!(
            "{{ registry: {{ mirror: '{}', insecure: true }} }}",
            reg.url()
        ),
    );
    assert!(
        reg.blob_gets() >= 4,
        "the base came from the registry:\n{}",
        reg.log_text()
    );

    // And from the OCI layout folder the archive was made from.
    f.build_from(
        "layout",
        &format!("{{ ociLayout: {{ path: base/layout, ref: {TAG} }} }}"),
    );

    let a = fs::read(f.path("out/from-archive.iso")).unwrap();
    for other in ["from-registry.iso", "from-layout.iso"] {
        let b = fs::read(f.path("out").join(other)).unwrap();
        assert!(
            a == b,
            "{other} differs from from-archive.iso (same base digest, same SOURCE_DATE_EPOCH)"
        );
    }
    // Written by the unprivileged user, nothing else left beside them.
    let meta = fs::metadata(f.path("out/from-archive.iso")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), f.user.uid);
    let mut left: Vec<_> = fs::read_dir(f.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["from-archive.iso", "from-layout.iso", "from-registry.iso"]
    );

    // inspect names the base: reference, digest, kernel release.
    let o = f.airlift(&["inspect", "--json", "out/from-registry.iso"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let base = v["base"].to_string();
    assert!(
        !v["images"].to_string().contains(REFERENCE),
        "the base is not one of the bundle's images: {v:#}"
    );
    for want in [
        REFERENCE,
        &f.made.manifest.digest.to_string(),
        KERNEL_RELEASE,
    ] {
        assert!(base.contains(want), "inspect's base lacks {want}: {base}");
    }
    assert!(
        !base.contains(f.dir.path().to_str().unwrap()),
        "no source paths recorded: {base}"
    );
    let o = f.airlift(&["inspect", "out/from-registry.iso"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains(REFERENCE) && t.contains(KERNEL_RELEASE), "{t}");

    // The root image: layers flattened, the kernel taken out.
    let (listing, xattrs) = root_listing(&f.path("out/from-archive.iso"), f.dir.path());
    assert!(
        xattrs.contains(paths::CAPABILITY) && xattrs.contains("security.capability"),
        "the capability is listed to be set at boot: {xattrs}"
    );
    assert!(line(&listing, paths::OS_RELEASE).is_some(), "{listing}");
    assert!(line(&listing, paths::WHITED_OUT).is_none(), "{listing}");
    assert!(line(&listing, paths::OPAQUE_OLD).is_none(), "{listing}");
    assert!(line(&listing, paths::OPAQUE_NEW).is_some(), "{listing}");
    let owned = line(&listing, paths::OWNED).unwrap_or_else(|| panic!("{listing}"));
    assert!(
        owned.starts_with("-rw-r----- 100/101 "),
        "owner and mode kept: {owned}"
    );
    for p in [paths::HARD_LINK.0, paths::HARD_LINK.1, paths::CAPABILITY] {
        assert!(line(&listing, p).is_some(), "{p} missing:\n{listing}");
    }
    assert!(
        line(&listing, &base_image::kernel_path()).is_none(),
        "the kernel stays out of the root:\n{listing}"
    );
    assert!(
        line(&listing, "usr/bin/busybox").is_some(),
        "the base's own files stay: {listing}"
    );
}

/// `airlift build` of each hostile image fails naming the problem, leaves
/// `out/` empty, and a canary folder outside the work folder (writable by
/// the user, and the target of the escaping members) is unchanged.
#[test]
fn hostile_base_images_fail_cleanly_and_write_nothing_outside() {
    let f = Fixture::new();
    let canary_dir = tempfile::tempdir().unwrap();
    let canary = canary_dir.path().join("canary");
    fs::create_dir(&canary).unwrap();
    put(&canary.join("keep.txt"), b"unchanged\n");
    f.user.own(canary_dir.path());
    let before = file_contents_under(&canary);
    let mut failures = Vec::new();
    for hostile in Hostile::ALL {
        let name = format!("{hostile:?}").to_lowercase();
        let layout = f.path(&format!("hostile/{name}"));
        let made = base_image::write_layout(&layout, TAG, &hostile.layers(&canary)).unwrap();
        let archive = f.path(&format!("hostile/{name}.oci.tar"));
        base_image::write_archive(&layout, &archive).unwrap();
        f.user.own(&f.path("hostile"));
        let config = f.config(
            &name,
            &format!("{{ ociArchive: {{ path: hostile/{name}.oci.tar, ref: {TAG} }} }}"),
            "",
        );
        let o = f.build(&config, &format!("{name}.iso"));
        let t = text(&o);
        let out: Vec<_> = fs::read_dir(f.path("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let mut problems = Vec::new();
        if o.status.success() {
            problems.push("the build succeeded".to_string());
        }
        if !hostile.named_in_error().iter().any(|n| t.contains(n)) {
            problems.push(format!(
                "the error names none of {:?}",
                hostile.named_in_error()
            ));
        }
        // Which layer: the bad one's digest (the top layer), or for a
        // missing kernel the image and where airlift looked.
        let named = match hostile {
            Hostile::NoKernel => {
                t.contains(&made.manifest.digest.to_string())
                    && t.contains("/usr/lib/modules/")
                    && t.contains("/boot/vmlinuz-")
            }
            _ => t.contains(&made.layers.last().unwrap().to_string()),
        };
        if !named {
            problems.push("the error does not name the layer digest / where it looked".into());
        }
        if !out.is_empty() {
            problems.push(format!("left at the output: {out:?}"));
        }
        if file_contents_under(&canary) != before {
            problems.push("the canary folder changed".into());
        }
        if !problems.is_empty() {
            failures.push(format!("{hostile:?}: {}\n{t}", problems.join("; ")));
        }
    }
    assert!(
        !canary.join("missing").exists(),
        "a folder was made through the absolute symlink"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A base in a `verify:` key's scope must be signed: unsigned, the build
/// fails naming the base; signed by the key, it builds and records the
/// signature.
#[test]
fn verify_covers_the_base() {
    let f = Fixture::new();
    let keys = f.path("keys");
    fs::create_dir(&keys).unwrap();
    let key = TestKey::generate(KeyKind::P256, &keys, "base").unwrap();
    f.user.own(&keys);
    let reg = TestRegistry::start();
    reg.push_layout(&f.path("base/layout"), TAG, "base/demo:bookworm");
    let verify = "verify:\n  keys:\n    - publicKey: keys/base.pub\n      scopes: \
                  [registry.airlift.test/base]\n";
    let config = f.config(
        "verified",
        &format!(
            "{{ registry: {{ mirror: '{}', insecure: true }} }}",
            reg.url()
        ),
        verify,
    );
    let o = f.build(&config, "unsigned.iso");
    let t = text(&o);
    assert!(!o.status.success(), "an unsigned base was accepted:\n{t}");
    assert!(t.contains(REFERENCE), "the error names the base: {t}");
    assert!(!f.path("out/unsigned.iso").exists());

    let target = PushTarget {
        addr: reg.addr(),
        basic: None,
    };
    target
        .sign(
            "base/demo",
            &f.made.manifest.digest.to_string(),
            "registry.airlift.test/base/demo",
            &key,
        )
        .unwrap();
    let o = f.build(&config, "signed.iso");
    assert!(o.status.success(), "{}", text(&o));
    let o = f.airlift(&["inspect", "--json", "out/signed.iso"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let signatures = v["base"]["signatures"].to_string();
    assert!(
        v["base"]["signatures"]
            .as_array()
            .is_some_and(|s| s.len() == 1)
            && signatures.contains("\"base\""),
        "the base's signature (key `base`) is recorded: {}",
        v["base"]
    );
}

/// A base in a `docker save` archive (the fixture converted by skopeo:
/// Docker media types, uncompressed layers, so another digest) builds
/// too, as the unprivileged user, into the same root filesystem.
#[test]
fn a_docker_archive_base_builds_the_same_root() {
    let skopeo = airlift_integration::tools::require("skopeo", "skopeo");
    let f = Fixture::new();
    let docker = f.path("base/base.docker.tar");
    run_ok(
        Command::new(skopeo)
            .args(["copy", "--quiet"])
            .arg(format!("oci:{}:{TAG}", f.path("base/layout").display()))
            .arg(format!("docker-archive:{}:{REFERENCE}", docker.display())),
    );
    f.user.own(&docker);
    f.build_from(
        "archive",
        &format!("{{ ociArchive: {{ path: base/base.oci.tar, ref: {TAG} }} }}"),
    );
    f.build_from(
        "docker",
        &format!("{{ dockerArchive: {{ path: base/base.docker.tar, ref: '{REFERENCE}' }} }}"),
    );
    let (from_oci, _) = root_listing(&f.path("out/from-archive.iso"), f.dir.path());
    let (from_docker, xattrs) = root_listing(&f.path("out/from-docker.iso"), f.dir.path());
    assert_eq!(from_oci, from_docker, "the same layers give the same root");
    assert!(xattrs.contains("security.capability"), "{xattrs}");
    let o = f.airlift(&["inspect", "--json", "out/from-docker.iso"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["base"]["kernelRelease"], KERNEL_RELEASE, "{v:#}");
    assert_eq!(v["base"]["reference"], REFERENCE, "{v:#}");
}
