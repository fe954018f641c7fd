//! Tests of `validate` against real files in a temp folder.

use std::fs;
use std::path::Path;

use super::images::pick_in_index;
use super::*;
use crate::config::normalise::{normalise, Origin};
use crate::config::parse;
use crate::config::schema::*;

/// Real local images, opened by validate as bundle would: an OCI layout
/// `images/hello` (one image, ref name 1.0), its oci-archive
/// `images/app.tar` and a docker-archive `images/saved.tar`.
pub(crate) fn local_images(d: &Path) {
    use airlift_oci::Digest;
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = b"layer bytes".to_vec();
    let desc = |mt: &str, b: &[u8]| serde_json::json!({"mediaType": mt, "digest": Digest::sha256_of(b).to_string(), "size": b.len()});
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc("application/vnd.oci.image.config.v1+json", &config),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar", &layer)],
    }))
    .unwrap();
    let mut top = desc("application/vnd.oci.image.manifest.v1+json", &manifest);
    top["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "1.0"});
    let index =
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [top]})).unwrap();
    let mut layout: Vec<(String, Vec<u8>)> = vec![
        (
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".into(), index),
    ];
    for b in [&config, &layer, &manifest] {
        layout.push((Digest::sha256_of(b).blob_path(), b.clone()));
    }
    for (name, bytes) in &layout {
        let p = d.join("images/hello").join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }
    let tar_of = |path: &Path, members: &[(String, Vec<u8>)]| {
        let mut b = tar::Builder::new(fs::File::create(path).unwrap());
        for (name, bytes) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, bytes.as_slice()).unwrap();
        }
        b.finish().unwrap();
    };
    tar_of(&d.join("images/app.tar"), &layout);
    let docker_manifest =
        br#"[{"Config":"config.json","RepoTags":["example/saved:3"],"Layers":["layer.tar"]}]"#;
    tar_of(
        &d.join("images/saved.tar"),
        &[
            ("manifest.json".into(), docker_manifest.to_vec()),
            ("config.json".into(), config.clone()),
            ("layer.tar".into(), layer.clone()),
        ],
    );
}

/// A temp folder holding every file the `GOOD` config points at.
pub(super) fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mk = |p: &str, content: &[u8]| {
        let p = d.join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    };
    mk("base/vmlinuz", b"kernel");
    mk("base/busybox", b"\x7fELF");
    fs::create_dir_all(d.join("base/rootfs/etc")).unwrap();
    // The kernel's modules: virtio_blk as a file, unix built in.
    mk(
        "base/modules/kernel/drivers/block/virtio_blk.ko",
        b"\x7fELF",
    );
    mk("base/modules/modules.builtin", b"kernel/net/unix/unix.ko\n");
    for f in ISOLINUX_FILES {
        mk(&format!("base/isolinux/{f}"), b"x");
    }
    mk("base/efi/systemd-bootx64.efi", b"MZ");
    mk("base/efi/shimx64.efi", b"MZ");
    mk("base/efi/grubx64.efi", b"MZ");
    mk("base/ipxe/ipxe.efi", b"MZ");
    local_images(d);
    mk("auth.json", br#"{"auths":{}}"#);
    mk("tls/cert.pem", b"cert");
    mk("tls/key.pem", b"key");
    mk("push/htpasswd", b"u:$2y$...");
    fs::create_dir_all(d.join("overlay/etc")).unwrap();
    mk("files/README.txt", b"hello");
    dir
}

pub(super) const GOOD: &str = "\
apiVersion: airlift/v1alpha1
kind: Appliance
metadata:
  name: edge-lab
  version: 1.0.0
images:
  - ref: quay.io/example/hello:1.0
    from:
      ociLayout: { path: images/hello, ref: '1.0' }
  - ref: quay.io/example/app:2
    from:
      ociArchive: { path: images/app.tar }
  - ref: example/saved:3
    from:
      dockerArchive: { path: images/saved.tar, ref: 'example/saved:3' }
  - ref: nginx:1.25
    platforms: [linux/amd64, linux/arm64/v8]
    from:
      registry:
        mirror: https://127.0.0.1:5000
        credentials: auth.json
base:
  kernel: ${BASE}/vmlinuz
  rootfs: ${BASE}/rootfs
  busybox: ${BASE}/busybox
  modulesDir: ${BASE}/modules
  modules: [virtio_blk]
  bootloader:
    isolinux: ${BASE}/isolinux
    efi: ${BASE}/efi/systemd-bootx64.efi
    shim: ${BASE}/efi/shimx64.efi
    grub: ${BASE}/efi/grubx64.efi
    ipxe: ${BASE}/ipxe
overlays: [overlay]
registry:
  tls: { mode: provided, cert: tls/cert.pem, key: tls/key.pem }
  push: { enabled: true, htpasswd: push/htpasswd }
  mirrors: [docker.io, quay.io]
netboot:
  enabled: true
  dhcp: full
  range: 10.44.0.100-10.44.0.200
  nodes:
    - mac: 52:54:00:00:00:01
      hostname: node-1
      role: replica
    - mac: 52:54:00:00:00:02
storage:
  dataDisk: { minSizeGiB: 20 }
output:
  volumeLabel: EDGE_LAB
  extraFiles: { docs/README.txt: files/README.txt }
";

/// Write `text` as `dir/appliance.yaml`, then parse and normalise it.
pub(super) fn load(dir: &Path, text: &str) -> Appliance {
    let file = dir.join("appliance.yaml");
    fs::write(&file, text).unwrap();
    let base = dir.join("base").to_str().unwrap().to_string();
    let env = move |name: &str| (name == "BASE").then(|| base.clone());
    let config = parse(text, &file).unwrap();
    normalise(config, Origin::new(&file, text), &env).unwrap()
}

/// The problems of `text` (with `GOOD`'s files present), rendered.
pub(super) fn problems(text: &str, purpose: Purpose) -> Vec<String> {
    let dir = fixture();
    let app = load(dir.path(), text);
    let prefix = format!("{}:", dir.path().join("appliance.yaml").display());
    match validate(&app, purpose) {
        Ok(()) => Vec::new(),
        Err(ps) => ps
            .iter()
            .map(|p| {
                let s = p.to_string();
                // Keep the messages short in assertions.
                s.strip_prefix(&prefix).unwrap_or(&s).to_string()
            })
            .collect(),
    }
}

pub(super) fn one(text: &str) -> String {
    let ps = problems(text, Purpose::Build);
    assert_eq!(ps.len(), 1, "{ps:#?}");
    ps.into_iter().next().unwrap()
}

#[test]
fn good_config_validates_for_build_and_bundle() {
    assert_eq!(problems(GOOD, Purpose::Build), Vec::<String>::new());
    assert_eq!(problems(GOOD, Purpose::Bundle), Vec::<String>::new());
}

#[test]
fn base_is_optional_for_bundle_only() {
    let start = GOOD.find("base:\n").unwrap();
    let end = GOOD.find("overlays:").unwrap();
    let text = format!("{}{}", &GOOD[..start], &GOOD[end..]);
    assert_eq!(problems(&text, Purpose::Bundle), Vec::<String>::new());
    let e = one(&text);
    assert!(e.starts_with("1:1: field base: is missing"), "{e}");
}

#[test]
fn an_update_needs_neither_base_files_nor_overlays() {
    let text = GOOD.replacen("kernel: ", "kernel: missing-", 1).replacen(
        "overlays: [overlay]",
        "overlays: [missing-overlay]",
        1,
    );
    assert_eq!(problems(&text, Purpose::Update), Vec::<String>::new());
    let build = problems(&text, Purpose::Build);
    assert!(
        build.iter().any(|p| p.contains("field base.kernel"))
            && build.iter().any(|p| p.contains("missing-overlay")),
        "{build:#?}"
    );
}

#[test]
fn missing_file_names_field_position_and_path() {
    let e = one(&GOOD.replace("images/app.tar", "images/nope.tar"));
    assert!(
        e.starts_with("12:21: field images[1].from.ociArchive.path: "),
        "{e}"
    );
    assert!(e.contains("images/nope.tar does not exist"), "{e}");
    assert!(e.contains("oci-archive tar file"), "{e}");
}

#[test]
fn wrong_kinds_of_files() {
    let e = one(&GOOD.replace("${BASE}/vmlinuz", "${BASE}/rootfs"));
    assert!(e.starts_with("23:3: field base.kernel: "), "{e}");
    assert!(e.contains("is not a regular file"), "{e}");
    let e = one(&GOOD.replace(
        "ociLayout: { path: images/hello",
        "ociLayout: { path: images",
    ));
    assert!(
        e.starts_with("9:20: field images[0].from.ociLayout.path: "),
        "{e}"
    );
    assert!(e.contains("has no oci-layout or index.json"), "{e}");
    let e = one(&GOOD.replace("${BASE}/rootfs", "${BASE}/vmlinuz"));
    assert!(e.starts_with("24:3: field base.rootfs: "), "{e}");
    assert!(e.contains("neither a tar file"), "{e}");
}

#[test]
fn isolinux_folder_needs_its_files() {
    let dir = fixture();
    fs::remove_file(dir.path().join("base/isolinux/ldlinux.c32")).unwrap();
    let app = load(dir.path(), GOOD);
    let ps = validate(&app, Purpose::Build).unwrap_err();
    assert_eq!(ps.len(), 1, "{ps:#?}");
    let e = ps[0].to_string();
    assert!(e.contains(":29:5: field base.bootloader.isolinux: "), "{e}");
    assert!(e.contains("has no ldlinux.c32"), "{e}");
    // Not needed to bundle.
    let bundle = validate(&app, Purpose::Bundle).unwrap_err();
    assert_eq!(bundle.len(), 1, "base is checked when present");
}

#[test]
fn duplicate_references_after_normalisation() {
    let text = GOOD.replace(
        "  - ref: nginx:1.25\n",
        "  - ref: docker.io/library/nginx:1.25\n",
    );
    assert_eq!(problems(&text, Purpose::Build), Vec::<String>::new());
    let text = GOOD.replace("ref: example/saved:3\n", "ref: quay.io/example/app:2\n");
    let e = one(&text);
    assert!(e.starts_with("13:5: field images[2].ref: "), "{e}");
    assert!(
        e.contains("quay.io/example/app:2 is listed twice (also images[1].ref)"),
        "{e}"
    );
}

#[test]
fn credentials_must_be_json() {
    let dir = fixture();
    fs::write(dir.path().join("auth.json"), "auths: {}").unwrap();
    let app = load(dir.path(), GOOD);
    let ps = validate(&app, Purpose::Build).unwrap_err();
    let e = ps[0].to_string();
    assert!(
        e.contains(":21:9: field images[3].from.registry.credentials: "),
        "{e}"
    );
    assert!(e.contains("is not readable JSON"), "{e}");
}

#[test]
fn collects_every_problem_in_config_order() {
    let text = GOOD
        .replace("name: edge-lab", "name: Edge_Lab")
        .replace("linux/arm64/v8", "arm64")
        .replace("https://127.0.0.1:5000", "127.0.0.1:5000")
        .replace("key: tls/key.pem }", "}")
        .replace("htpasswd: push/htpasswd", "htpasswd: push/missing")
        .replace("10.44.0.100-10.44.0.200", "10.44.0.200-10.44.0.100")
        .replace("52:54:00:00:00:02", "52:54:00:00:00:01")
        .replace("hostname: node-1", "hostname: node_1")
        .replace("{ minSizeGiB: 20 }", "{ minSizeGiB: 20, device: /dev/vdb }")
        .replace("EDGE_LAB", "edge-lab");
    let ps = problems(&text, Purpose::Build);
    let fields: Vec<&str> = ps
        .iter()
        .map(|p| p.split(": ").nth(1).unwrap().trim_start_matches("field "))
        .collect();
    assert_eq!(
        fields,
        [
            "metadata.name",
            "images[3].platforms[1]",
            "images[3].from.registry.mirror",
            "registry.tls.key",
            "registry.push.htpasswd",
            "netboot.range",
            "netboot.nodes[0].hostname",
            "netboot.nodes[1].mac",
            "storage.dataDisk",
            "output.volumeLabel",
        ],
        "{ps:#?}"
    );
    // Every problem carries a position.
    for p in &ps {
        let pos: Vec<&str> = p.split(':').take(2).collect();
        assert!(pos.iter().all(|n| n.parse::<usize>().is_ok()), "{p}");
    }
}

#[test]
fn netboot_and_push_rules() {
    let e = one(&GOOD.replace("  range: 10.44.0.100-10.44.0.200\n", ""));
    assert!(
        e.contains("field netboot.range: is missing; dhcp: full"),
        "{e}"
    );
    let e = one(&GOOD.replace("dhcp: full", "dhcp: proxy"));
    assert!(
        e.contains("field netboot.range: is only used with dhcp: full"),
        "{e}"
    );
    let e = one(&GOOD.replace("    ipxe: ${BASE}/ipxe\n", ""));
    assert!(
        e.contains("field base.bootloader.ipxe: is missing but netboot is enabled"),
        "{e}"
    );
    let e = one(&GOOD.replace("  nodes:\n", "  replicas: 2\n  nodes:\n"));
    assert!(
        e.contains("field netboot.replicas: counts machines of the default profile"),
        "{e}"
    );
    let e = one(&GOOD.replace("      role: replica", "      role: host0"));
    assert!(e.starts_with("46:7: field netboot.nodes[0].role: "), "{e}");
    let e = one(&GOOD.replace(", htpasswd: push/htpasswd", ""));
    assert!(
        e.contains("field registry.push.enabled: push is enabled but nobody may push"),
        "{e}"
    );
    let e = one(&GOOD.replace("{ minSizeGiB: 20 }", "{ filesystem: xfs }"));
    assert!(
        e.contains("field storage.dataDisk: sets neither device nor minSizeGiB"),
        "{e}"
    );
}

#[test]
fn layout_ref_must_name_an_image_in_the_index() {
    let e = one(&GOOD.replace("ref: '1.0'", "ref: '1.1'"));
    assert!(
        e.starts_with("9:40: field images[0].from.ociLayout.ref: "),
        "{e}"
    );
    assert!(
        e.contains("has no image named \"1.1\"; its ref names are [\"1.0\"]"),
        "{e}"
    );
    assert_eq!(
        problems(&GOOD.replace(", ref: '1.0'", ""), Purpose::Build),
        Vec::<String>::new()
    );
}

#[test]
fn picks_images_in_an_index() {
    let index = serde_json::json!({"manifests": [
        {"digest": "sha256:aa", "annotations": {"org.opencontainers.image.ref.name": "busybox"}},
        {"digest": "sha256:bb", "annotations": {"org.opencontainers.image.ref.name": "hello"}},
    ]});
    assert!(pick_in_index(&index, Some("hello")).is_ok());
    assert!(pick_in_index(&index, Some("sha256:aa")).is_ok());
    assert!(pick_in_index(&index, Some("nope"))
        .unwrap_err()
        .contains("[\"busybox\", \"hello\"]"));
    assert!(pick_in_index(&index, None)
        .unwrap_err()
        .contains("holds 2 images"));
    assert!(pick_in_index(&serde_json::json!({}), None).is_err());
}

/// `GOOD` with an `ha` section (and host0's address on the command line).
fn with_vip(vip: &str) -> String {
    GOOD.replace(
        "  kernel: ${BASE}/vmlinuz\n",
        "  kernel: ${BASE}/vmlinuz\n  kernelArgs: [\"airlift.address=10.44.0.1/24\"]\n",
    )
    .replace("output:\n", &format!("ha:\n  virtualIp:\n{vip}output:\n"))
}

/// The problems parse + normalise report for `text` (no files needed).
fn normalise_problems(text: &str) -> Vec<String> {
    let file = Path::new("/cfg/appliance.yaml");
    let config = parse(text, file).unwrap();
    let env = |_: &str| Some("/base".to_string());
    match normalise(config, Origin::new(file, text), &env) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn virtual_ip_is_carried_with_defaults() {
    let text = with_vip("    address: 10.44.0.50/24\n");
    assert_eq!(problems(&text, Purpose::Build), Vec::<String>::new());
    let dir = fixture();
    let app = load(dir.path(), &text);
    let v = app.ha.clone().unwrap().virtual_ip.unwrap();
    assert_eq!(v.address.to_string(), "10.44.0.50/24");
    assert_eq!(v.interface, None);
    assert_eq!(u32::from(v.virtual_router_id), DEFAULT_VIRTUAL_ROUTER_ID);
    // ... and written into appliance.json as it is.
    let file = crate::pipeline::appliance_file::appliance_file(&app, &"ab".repeat(32), "6.1");
    assert_eq!(file.virtual_ip(), Some(&v));
    let json: serde_json::Value = serde_json::from_slice(&file.render().unwrap()).unwrap();
    assert_eq!(
        json["ha"],
        serde_json::json!({"virtualIp": {"address": "10.44.0.50/24", "virtualRouterId": 51}})
    );
    // IPv6, an interface and a router id.
    let text = with_vip("    address: fd44::50/64\n    interface: eth1\n    virtualRouterId: 7\n");
    assert_eq!(problems(&text, Purpose::Build), Vec::<String>::new());
    let v = load(dir.path(), &text).ha.unwrap().virtual_ip.unwrap();
    assert_eq!(
        (v.interface.as_deref(), v.virtual_router_id),
        (Some("eth1"), 7)
    );
    // No section, no virtual IP.
    assert!(load(dir.path(), GOOD).ha.is_none());
}

#[test]
fn virtual_ip_format_errors_name_the_field_and_position() {
    let ps = normalise_problems(&with_vip("    address: 10.44.0.50\n"));
    assert_eq!(ps.len(), 1, "{ps:#?}");
    assert!(
        ps[0].starts_with("/cfg/appliance.yaml:53:5: field ha.virtualIp.address: "),
        "{}",
        ps[0]
    );
    assert!(ps[0].contains("is not ADDRESS/PREFIX"), "{}", ps[0]);
    let ps = normalise_problems(&with_vip("    address: 10.44.0.50/40\n"));
    assert!(
        ps[0].contains("prefix length \"40\" is not a number from 0 to 32"),
        "{ps:?}"
    );
    let ps = normalise_problems(&with_vip("    address: 10.44.0.x/24\n"));
    assert!(ps[0].contains("not an IPv4 or IPv6 address"), "{ps:?}");
    for id in ["0", "256"] {
        let ps = normalise_problems(&with_vip(&format!(
            "    address: 10.44.0.50/24\n    virtualRouterId: {id}\n"
        )));
        assert_eq!(ps.len(), 1, "{ps:#?}");
        assert!(
            ps[0].contains(":54:5: field ha.virtualIp.virtualRouterId: "),
            "{}",
            ps[0]
        );
        assert!(
            ps[0].contains(&format!(
                "{id} is not a VRRP virtual router id; choose one from 1 to 255"
            )),
            "{}",
            ps[0]
        );
    }
    // Unknown keys are refused by the parser.
    let file = Path::new("/cfg/appliance.yaml");
    let text = with_vip("    address: 10.44.0.50/24\n    vrid: 3\n");
    assert!(parse(&text, file).is_err());
}

#[test]
fn virtual_ip_conflicts_with_addresses_given_out() {
    let e = one(&with_vip("    address: 10.44.0.150/24\n"));
    assert!(e.starts_with("53:5: field ha.virtualIp.address: "), "{e}");
    assert!(
        e.contains("10.44.0.150 is inside netboot.range 10.44.0.100-10.44.0.200"),
        "{e}"
    );
    let e = one(&with_vip("    address: 10.44.0.1/24\n"));
    assert!(e.contains("is host0's own address"), "{e}");
    let e = one(&with_vip("    address: 10.44.0.255/24\n"));
    assert!(e.contains("is its subnet's broadcast address"), "{e}");
    let e = one(&with_vip(
        "    address: 10.44.0.50/24\n    interface: eth/0\n",
    ));
    assert!(e.starts_with("54:5: field ha.virtualIp.interface: "), "{e}");
    // The range only matters when host0 hands out addresses.
    let text = with_vip("    address: 10.44.0.150/24\n")
        .replace("dhcp: full", "dhcp: proxy")
        .replace("  range: 10.44.0.100-10.44.0.200\n", "");
    assert_eq!(problems(&text, Purpose::Build), Vec::<String>::new());
}

/// References and mirrors follow the grammar the appliance's registry
/// enforces (the shared one in airlift_oci::reference): an upper-case
/// host or a port past 65535 fails at validate time, naming the field.
#[test]
fn references_and_mirrors_use_the_registrys_grammar() {
    let text = GOOD
        .replace("ref: quay.io/example/app:2", "ref: UPPER/case:1")
        .replace("ref: nginx:1.25", "ref: quay.io:99999/org/app:1")
        .replace(
            "mirrors: [docker.io, quay.io]",
            "mirrors: [docker.io, Quay.io]",
        );
    let p = normalise_problems(&text);
    assert!(
        p.iter()
            .any(|m| m.contains("images[1].ref") && m.contains("lowercase")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m.contains("images[3].ref") && m.contains("port")),
        "{p:?}"
    );
    let v = problems(
        &text
            .replace("ref: UPPER/case:1", "ref: quay.io/example/app:2")
            .replace("ref: quay.io:99999/org/app:1", "ref: nginx:1.25"),
        Purpose::Build,
    );
    assert!(
        v.iter()
            .any(|m| m.contains("registry.mirrors[1]") && m.contains("lowercase")),
        "{v:?}"
    );
}

/// A plain-HTTP mirror that `airlift bundle` would refuse without
/// `insecure: true` is a validate problem naming the field.
#[test]
fn http_mirror_needs_insecure() {
    let text = GOOD.replace("https://127.0.0.1:5000", "http://127.0.0.1:5000");
    let p = problems(&text, Purpose::Build);
    assert!(
        p.iter()
            .any(|m| m.contains("images[3].from.registry.mirror") && m.contains("insecure: true")),
        "{p:?}"
    );
    assert_eq!(problems(GOOD, Purpose::Build), Vec::<String>::new());
    let ok = text.replace(
        "        credentials: auth.json\n",
        "        credentials: auth.json\n        insecure: true\n",
    );
    assert_eq!(problems(&ok, Purpose::Build), Vec::<String>::new());
}

/// validate opens local archives and layouts with bundle's readers: a
/// hostile tar member, a non-tar file and a layout whose manifest was
/// changed are problems naming the field, as bundle would refuse them.
#[test]
fn local_sources_are_opened_as_bundle_would() {
    let dir = fixture();
    let d = dir.path();
    // An oci-archive with a member that climbs out.
    let mut b = tar::Builder::new(fs::File::create(d.join("images/app.tar")).unwrap());
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..8].copy_from_slice(b"../evil\0");
    h.set_size(1);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    b.finish().unwrap();
    drop(b);
    // A docker-archive that is not a tar at all.
    fs::write(d.join("images/saved.tar"), "x".repeat(2048)).unwrap();
    // A layout whose manifest no longer matches its digest.
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(d.join("images/hello/index.json")).unwrap()).unwrap();
    let m = index["manifests"][0]["digest"].as_str().unwrap();
    let path = d.join("images/hello/blobs/sha256").join(&m[7..]);
    let mut bytes = fs::read(&path).unwrap();
    bytes[0] = b' ';
    fs::write(&path, bytes).unwrap();

    let app = load(d, GOOD);
    let ps: Vec<String> = validate(&app, Purpose::Bundle)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    let has = |field: &str, needle: &str| {
        ps.iter()
            .any(|p| p.contains(&format!("field {field}: ")) && p.contains(needle))
    };
    assert!(
        has("images[0].from.ociLayout.path", "failed verification"),
        "{ps:#?}"
    );
    assert!(has("images[1].from.ociArchive.path", "`..`"), "{ps:#?}");
    assert!(
        has("images[2].from.dockerArchive.path", "not a readable tar"),
        "{ps:#?}"
    );
    assert_eq!(ps.len(), 3, "{ps:#?}");
}

/// A platform filter a local image cannot meet is a validate problem, as
/// bundle would refuse it.
#[test]
fn local_images_must_have_the_platforms_asked_for() {
    let text = GOOD
        .replace(
            "  - ref: quay.io/example/hello:1.0\n",
            "  - ref: quay.io/example/hello:1.0\n    platforms: [linux/arm64]\n",
        )
        .replace(
            "  - ref: example/saved:3\n",
            "  - ref: example/saved:3\n    platforms: [linux/s390x]\n",
        );
    let p = problems(&text, Purpose::Bundle);
    assert!(
        p.iter()
            .any(|m| m.contains("images[0].from.ociLayout.path") && m.contains("arm64")),
        "{p:#?}"
    );
    assert!(
        p.iter()
            .any(|m| m.contains("images[2].from.dockerArchive.path") && m.contains("s390x")),
        "{p:#?}"
    );
    assert_eq!(p.len(), 2, "{p:#?}");
}

#[test]
fn root_on_media_needs_a_busybox() {
    let no_busybox = GOOD.replace("  busybox: ${BASE}/busybox\n", "");
    let e = one(&no_busybox);
    assert!(e.contains("field base.busybox: is not set"), "{e}");
    assert!(e.contains("base.rootOn: initramfs"), "{e}");
    let dir = fixture();
    let in_ram = no_busybox.replace("base:\n", "base:\n  rootOn: initramfs\n");
    validate(&load(dir.path(), &in_ram), Purpose::Build).unwrap();
    let e = one(&GOOD.replace("${BASE}/busybox", "${BASE}/nope"));
    assert!(e.contains("field base.busybox: "), "{e}");
}

#[test]
fn day_two_storage_settings_are_checked() {
    let e = one(&GOOD.replace(
        "{ minSizeGiB: 20 }",
        "{ minSizeGiB: 20 }\n  warnPercent: 100",
    ));
    assert!(e.contains("storage.warnPercent: is 100"), "{e}");
    let e = one(&GOOD.replace(
        "{ minSizeGiB: 20 }",
        "{ minSizeGiB: 20 }\n  keepReleases: 0",
    ));
    assert!(e.contains("storage.keepReleases: is 0"), "{e}");
    let ok = GOOD.replace(
        "{ minSizeGiB: 20 }",
        "{ minSizeGiB: 20 }\n  reserveMiB: 100\n  warnPercent: 90\n  keepReleases: 3",
    );
    assert_eq!(problems(&ok, Purpose::Build), Vec::<String>::new());
}
