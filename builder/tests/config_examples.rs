//! Every image config in image-configs/ parses and normalises, so the
//! examples never rot; the ones meant to be used also validate against a
//! synthetic base folder (the files `just base` would make), and so does
//! examples/base/k8s-node/appliance.yaml.

use std::fs;
use std::path::{Path, PathBuf};

use airlift_builder::config::{self, normalise, parse, validate, Origin, Purpose};

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../image-configs")
}

fn yaml_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(configs_dir())
        .expect("reading image-configs/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

/// A folder shaped like `${AIRLIFT_BASE}`: kernel, root filesystems,
/// modules, boot loaders and an OCI layout.
fn synthetic_base(root: &Path) -> PathBuf {
    let base = root.join("base");
    let file = |p: &str, content: &[u8]| {
        let p = base.join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    };
    file("vmlinuz", b"kernel");
    file("busybox", b"\x7fELF");
    for d in ["rootfs/etc", "rootfs-smoke/etc", "modules/kernel"] {
        fs::create_dir_all(base.join(d)).unwrap();
    }
    for f in ["isolinux.bin", "ldlinux.c32", "isohdpfx.bin"] {
        file(&format!("isolinux/{f}"), b"x");
    }
    // Every module the examples name is in the server set: one file each.
    for m in airlift_builder::initramfs::server_set::names() {
        file(&format!("modules/kernel/{m}.ko"), b"\x7fELF");
    }
    file("efi/systemd-bootx64.efi", b"MZ");
    for name in [
        "shimx64.efi",
        "grubx64.efi",
        "grubnetx64.efi",
        "linuxx64.efi.stub",
    ] {
        file(&format!("efi/{name}"), b"MZ");
    }
    file("ipxe/ipxe.efi", b"MZ");
    file("ipxe/undionly.kpxe", b"x");
    file("images/oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    // Two real one-layer images (validate reads and verifies manifests).
    let blob = |bytes: &[u8]| {
        let d = airlift_oci::Digest::sha256_of(bytes);
        file(&format!("images/{}", d.blob_path()), bytes);
        d
    };
    let entry = |name: &str| {
        let config = format!(r#"{{"architecture":"amd64","os":"linux","{name}":1}}"#);
        let (c, l) = (blob(config.as_bytes()), blob(name.as_bytes()));
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{c}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{l}","size":{}}}]}}"#,
            config.len(),
            name.len()
        );
        let m = blob(manifest.as_bytes());
        format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{m}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"{name}"}}}}"#,
            manifest.len()
        )
    };
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{},{}]}}"#,
        entry("busybox"),
        entry("hello")
    );
    file("images/index.json", index.as_bytes());
    // The demo's base image: an oci-archive of a one-image layout tagged
    // `bookworm` (validate reads its index and manifest; the layers are
    // read at build).
    let mut archive = tar::Builder::new(Vec::new());
    archive.mode(tar::HeaderMode::Deterministic);
    let bookworm = format!(
        r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
        entry("bookworm")
    );
    let mut add = |name: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        archive.append_data(&mut header, name, bytes).unwrap();
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add("index.json", bookworm.as_bytes());
    for e in fs::read_dir(base.join("images/blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let name = format!("blobs/sha256/{}", e.file_name().to_string_lossy());
        add(&name, &fs::read(e.path()).unwrap());
    }
    file("demo-base.oci.tar", &archive.into_inner().unwrap());
    base
}

/// Parse and normalise `path` with `${AIRLIFT_BASE}` and
/// `${AIRLIFT_SECRETS}` pointing into `root`.
fn load(path: &Path, root: &Path) -> Result<config::Appliance, String> {
    let text = fs::read_to_string(path).map_err(|e| e.to_string())?;
    let base = root.join("base").display().to_string();
    let secrets = root.join("secrets").display().to_string();
    let env = move |name: &str| match name {
        "AIRLIFT_BASE" => Some(base.clone()),
        "AIRLIFT_SECRETS" => Some(secrets.clone()),
        _ => None,
    };
    let config = parse(&text, path).map_err(|e| e.to_string())?;
    normalise(config, Origin::new(path, &text), &env).map_err(|e| e.to_string())
}

#[test]
fn config_examples_all_parse_and_normalise() {
    let root = tempfile::tempdir().unwrap();
    synthetic_base(root.path());
    let files = yaml_files();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "full-reference.yaml",
        "registry-pull.yaml",
        "netboot-cluster.yaml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing: {names:?}"
        );
    }
    let mut failures = Vec::new();
    for f in &files {
        match load(f, root.path()) {
            Ok(app) => assert_eq!(app.images.len(), app.config.images.len(), "{}", f.display()),
            Err(e) => failures.push(format!("{}:\n{e}", f.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "image configs that do not load:\n{}",
        failures.join("\n")
    );
}

#[test]
fn config_examples_meant_to_be_used_validate() {
    let root = tempfile::tempdir().unwrap();
    synthetic_base(root.path());
    let dir = configs_dir();
    let mut failures = Vec::new();
    for (name, purpose) in [
        ("registry-pull.yaml", Purpose::Bundle),
        ("signed-images.yaml", Purpose::Bundle),
        ("netboot-cluster.yaml", Purpose::Build),
        // What the QEMU tests build.
        ("hardware-matrix.yaml", Purpose::Build),
        ("e2e-netboot.yaml", Purpose::Build),
        ("e2e-ha.yaml", Purpose::Build),
        ("e2e-storage.yaml", Purpose::Build),
        ("e2e-update-1.yaml", Purpose::Build),
        ("e2e-update-2.yaml", Purpose::Build),
        // Written by the build side; validated when present.
        ("demo.yaml", Purpose::Build),
        ("smoke.yaml", Purpose::Build),
    ] {
        let path = dir.join(name);
        if !path.exists() && (name == "demo.yaml" || name == "smoke.yaml") {
            continue;
        }
        let result = load(&path, root.path()).and_then(|app| {
            validate(&app, purpose).map_err(|ps| {
                ps.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        });
        if let Err(e) = result {
            failures.push(format!("{name} ({purpose:?}):\n{e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn config_examples_full_reference_uses_every_section() {
    let root = tempfile::tempdir().unwrap();
    let app = load(&configs_dir().join("full-reference.yaml"), root.path()).unwrap();
    let c = &app.config;
    assert!(c.base.is_some());
    assert!(!c.overlays.is_empty());
    assert!(c.registry.push.enabled && c.registry.tls.cert.is_some());
    assert!(c.netboot.enabled && !c.netboot.nodes.is_empty());
    assert!(c.netboot.default_profile.is_some());
    assert!(c.storage.data_disk.is_some());
    assert!(!c.output.extra_files.is_empty());
    assert!(c.ha.virtual_ip.is_some());
    assert_eq!(c.secure_boot.mode, config::SecureBootMode::Sign);
    assert!(c.secure_boot.key.is_some() && c.secure_boot.certificate.is_some());
    use config::ImageSource as S;
    let kinds = |pred: fn(&S) -> bool| app.images.iter().any(|i| pred(&i.source));
    assert!(kinds(|s| matches!(s, S::Registry(r) if r.mirror.is_some())));
    assert!(kinds(|s| matches!(s, S::OciLayout(_))));
    assert!(kinds(|s| matches!(s, S::OciArchive(_))));
    assert!(kinds(|s| matches!(s, S::DockerArchive(_))));
}

#[test]
fn config_examples_only_the_demo_gets_the_root_shell() {
    // overlays/demo logs root in on the serial console with no password:
    // `just demo` only, never an appliance built from another config.
    let root = tempfile::tempdir().unwrap();
    synthetic_base(root.path());
    let demo_overlay = configs_dir().join("../overlays/demo");
    assert!(
        demo_overlay
            .join("etc/systemd/system/airlift-demo-shell.service")
            .is_file(),
        "overlays/demo has no shell unit"
    );
    let demo_overlay = fs::canonicalize(demo_overlay).unwrap();
    for f in yaml_files() {
        let app = load(&f, root.path()).unwrap();
        let lays_it = app
            .overlays
            .iter()
            .any(|o| fs::canonicalize(o).is_ok_and(|o| o == demo_overlay));
        let is_demo = f.file_name().is_some_and(|n| n == "demo.yaml");
        assert_eq!(lays_it, is_demo, "{}: overlays/demo", f.display());
    }
}

/// `appliance.json` as the builder renders it for every image config,
/// byte for byte (fixed join token and kernel release): the contract the
/// appliance reads must not drift when the types behind it move.
/// `AIRLIFT_BLESS=1` rewrites the files under `tests/golden/appliance/`.
#[test]
fn config_examples_render_the_golden_appliance_json() {
    use airlift_builder::pipeline::appliance_file::{appliance_file, render};
    let root = tempfile::tempdir().unwrap();
    synthetic_base(root.path());
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/appliance");
    let bless = std::env::var_os("AIRLIFT_BLESS").is_some();
    for f in yaml_files() {
        let mut app = load(&f, root.path()).unwrap();
        // `verify:` keys read, as `load_and_validate` does.
        app.trust = config::trust::policy(&app).unwrap();
        let bytes = render(&appliance_file(&app, &"ab".repeat(32), "6.1.0-golden")).unwrap();
        let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
        let path = golden.join(format!("{stem}.json"));
        if bless {
            fs::create_dir_all(&golden).unwrap();
            fs::write(&path, &bytes).unwrap();
        }
        let want = fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (AIRLIFT_BLESS=1 writes it)", path.display()));
        assert!(
            bytes == want,
            "{} differs from what {} renders (AIRLIFT_BLESS=1 rewrites it):\n{}",
            path.display(),
            f.display(),
            String::from_utf8_lossy(&bytes)
        );
    }
}

/// The signed-images example reads its public key (committed beside it)
/// into the appliance's trust policy, named after the file.
#[test]
fn config_examples_signed_images_carry_their_key() {
    let app = config::load_and_validate(&configs_dir().join("signed-images.yaml"), Purpose::Bundle)
        .unwrap();
    let trust = app.trust.expect("verify: gives a trust policy");
    assert_eq!(trust.keys.len(), 1);
    assert_eq!(trust.keys[0].name, "release");
    assert_eq!(trust.keys[0].scopes, ["quay.io/edge"]);
    assert!(trust.keys[0]
        .public_key_pem
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    airlift_appliance::Verifier::new(&trust).unwrap();
}

/// The Kubernetes node example (examples/base/k8s-node/appliance.yaml)
/// validates as written: its base image and images are pulled at build,
/// its overlay is this repository's. (examples/ci/appliance.yaml is a
/// template the CI workflow renders; tests/loopback/ci_recipe.rs runs
/// that workflow, validate step included.)
#[test]
fn config_examples_the_k8s_node_example_validates() {
    let root = tempfile::tempdir().unwrap();
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/base/k8s-node/appliance.yaml");
    let app = load(&path, root.path()).unwrap_or_else(|e| panic!("{e}"));
    if let Err(ps) = validate(&app, Purpose::Build) {
        let all: Vec<String> = ps.iter().map(ToString::to_string).collect();
        panic!("{}", all.join("\n"));
    }
    assert!(
        matches!(app.base, Some(config::BaseSpec::Image(_))),
        "{:?}",
        app.base
    );
}
