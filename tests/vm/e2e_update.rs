//! Day two end to end (issue #19): an update medium brought to a running
//! host0, rollback, garbage collection, backup and restore, all under QEMU
//! (TCG, `-smp 1` each), nothing leaving the machine.
//!
//! Media, built first with the real `airlift build`: release 1.0.0's ISO
//! (image-configs/e2e-update-1.yaml), release 2.0.0's full ISO (for the
//! size figure only) and its update medium (`--update-from` release 1's
//! ISO), whose `update.json` must say: `new` added, `app` changed, `old`
//! removed, and carry exactly the six blobs release 1 lacks.
//!
//! Then, in order (each step is printed; a failure names it and keeps the
//! serial logs and command transcripts under target/test-output/):
//!  1. host0 boots release 1 (BIOS, CD) with a blank data disk, an empty
//!     second CD drive, a small transfer disk, a private link and its
//!     registry port forwarded; the test pushes an image; a node netboots
//!     (BIOS) and pulls `app` (release 1) and the pushed image.
//!  2. The update ISO goes into the empty drive through QMP; host0's media
//!     watcher finds it and loads it with no reboot (`AIRLIFT-UPDATE-
//!     LOADED`), while the host pulls `keep` throughout; tags move: `app`
//!     is release 2's, `new` appears, `old`'s tag goes (its manifest still
//!     pulls by digest: release 1 is kept). The node pulls `new` and `app`.
//!  3. `gc --dry-run` (default keep 2) lists no blob of release 1.
//!  4. `rollback`: `app` resolves to release 1's digest again, on host0 and
//!     the node; `rollback` (the newest other release) goes forward again.
//!  5. `gc --keep 1`: release 1 dropped; its own blobs (`old`'s own layer,
//!     config and manifest; `app` 1's top layer, config and manifest) are
//!     gone from the data disk; the layer `old` shared with the pushed
//!     image, the pushed image and release 2 stay and pull whole.
//!  6. `backup -o` (0600, says it holds secrets) through the transfer disk
//!     to the host: the pushed image's blobs inside, release 2's not.
//!  7. host0 boots again, same release 1 media, a blank data disk;
//!     `restore` from the transfer disk says release 2 needs its medium;
//!     host0 restarts; the pushed image pulls again on the host and on the
//!     node (whose mirror config trusts the CA host0 had: restored).
//!
//! Commands run on the VMs through a test-only root channel on ttyS1
//! (overlays/e2e-update, `vm::GuestShell`). Figures (update medium size
//! against the full ISO, attach → loaded, backup size) are printed, never
//! asserted. `just e2e-update`; needs `just base`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use airlift_integration::images::{write_layout, MadeImage, TestImage};
use airlift_integration::tools::{binary, free_port, require, run_ok, workspace_root};
use airlift_integration::update_images;
use airlift_integration::vm::{self, guest_shell, qmp, Cluster, GuestShell, Qmp, Running, Serial};
use serde_json::Value;

mod signatures;

const HOST0_MAC: &str = "52:54:00:79:00:01";
const NODE_MAC: &str = "52:54:00:79:00:11";
const TOKEN_FILE: &str = "image-configs/files/e2e-update/push-token";
const KEEP: &str = "quay.io/test/keep:1.0";
const APP: &str = "quay.io/test/app:1.0";
const OLD: &str = "quay.io/test/old:1.0";
const NEW: &str = "quay.io/test/new:1.0";
const PUSHED: &str = "quay.io/test/pushed:1.0";
/// The second CD drive's device id (`-device ide-cd,…,id=`).
const UPDATE_DRIVE: &str = "updcd";
/// The small disk the backup leaves and comes back through.
const TRANSFER: &str = "/dev/disk/by-id/virtio-e2e-transfer";
const BLOBS: &str = "/var/lib/airlift/registry/blobs/sha256";
/// A boot, a load, a netboot: generous under TCG on shared cores.
const BOOT: Duration = Duration::from_secs(10 * 60);
/// One command on a VM.
const CMD: Duration = Duration::from_secs(5 * 60);

/// A digest's hex.
fn hex(d: &str) -> &str {
    d.strip_prefix("sha256:").unwrap_or(d)
}

/// The media, built before any VM starts (a build takes a VM slot).
struct Media {
    r1: &'static Path,
    r2_full: &'static Path,
    update: PathBuf,
    /// Release 1's bundle id (sha256 of its index.json).
    r1_bundle: String,
}

/// What the images are, from the committed layout and the boot base.
struct Expected {
    keep: String,
    app1: MadeImage,
    app2: MadeImage,
    old: MadeImage,
    new: MadeImage,
}

impl Expected {
    fn load(dir: &Path) -> Expected {
        let made = update_images::write(&dir.join("images")).unwrap();
        let base = vm::airlift_base().join("images/index.json");
        let index: Value = serde_json::from_slice(&std::fs::read(&base).unwrap()).unwrap();
        let keep = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "hello")
            .expect("the boot base has the hello image")["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let [app1, app2, old, new]: [MadeImage; 4] = made.try_into().unwrap();
        Expected {
            keep,
            app1,
            app2,
            old,
            new,
        }
    }

    fn digest(m: &MadeImage) -> String {
        m.manifest.digest.to_string()
    }

    /// Blobs only release 1 has: `old`'s but the layer it shares with
    /// the pushed image, and `app` 1's but the base layer.
    fn release1_only(&self) -> Vec<String> {
        let old = &self.old;
        let app = &self.app1;
        [
            old.manifest.digest.to_string(),
            old.blobs[0].to_string(),
            old.blobs[2].to_string(),
            app.manifest.digest.to_string(),
            app.blobs[0].to_string(),
            app.blobs[2].to_string(),
        ]
        .into()
    }

    /// The layer `old` shares with the pushed image.
    fn shared(&self) -> String {
        self.old.blobs[1].to_string()
    }
}

/// `airlift build` with the environment the VM tests build with.
fn airlift(args: &[&str]) -> String {
    let _slot = vm::Slot::take(1);
    run_ok(
        Command::new(binary("airlift"))
            .args(args)
            .env("AIRLIFT_BASE", vm::airlift_base())
            .env("SOURCE_DATE_EPOCH", "1700000000"),
    )
}

/// One file out of an ISO.
fn iso_file(iso: &Path, inside: &str, out: &Path) -> Vec<u8> {
    run_ok(Command::new(require("xorriso", "xorriso")).args([
        "-osirrox",
        "on",
        "-indev",
        iso.to_str().unwrap(),
        "-extract",
        inside,
        out.to_str().unwrap(),
    ]));
    std::fs::read(out).unwrap()
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

/// Build the media and check what the update medium says about itself.
fn media(dir: &Path, want: &Expected) -> Media {
    let r1 = vm::built("image-configs/e2e-update-1.yaml");
    let r2_full = vm::built("image-configs/e2e-update-2.yaml");
    let update = dir.join("update-2.0.0.iso");
    let config = workspace_root().join("image-configs/e2e-update-2.yaml");
    let out = airlift(&[
        "build",
        config.to_str().unwrap(),
        "--update-from",
        r1.to_str().unwrap(),
        "-o",
        update.to_str().unwrap(),
    ]);
    eprintln!("{}", out.trim());
    let r1_index = iso_file(r1, "/airlift/bundle/index.json", &dir.join("r1-index.json"));
    let r1_bundle = airlift_oci::Digest::sha256_of(&r1_index).to_string();
    let manifest: Value = serde_json::from_slice(&iso_file(
        &update,
        "/airlift/update.json",
        &dir.join("update.json"),
    ))
    .expect("update.json is JSON");
    let inspect = airlift(&["inspect", update.to_str().unwrap()]);
    eprintln!("airlift inspect {}:\n{}", update.display(), inspect.trim());
    check_update_manifest(&manifest, &r1_bundle, want);
    assert!(
        inspect.contains("2.0.0") && inspect.contains("1.0.0"),
        "airlift inspect must name the release and the one it needs:\n{inspect}"
    );
    Media {
        r1,
        r2_full,
        update,
        r1_bundle,
    }
}

fn check_update_manifest(m: &Value, r1_bundle: &str, want: &Expected) {
    let ctx = format!("update.json: {m:#}");
    assert_eq!(m["schema"], "airlift.update/v1", "{ctx}");
    assert_eq!(m["release"]["name"], "e2e-update", "{ctx}");
    assert_eq!(m["release"]["version"], "2.0.0", "{ctx}");
    assert_eq!(m["base"]["version"], "1.0.0", "{ctx}");
    assert_eq!(m["base"]["bundle"], r1_bundle, "{ctx}");
    let change = |k: &str| -> Vec<(String, String, String)> {
        m[k].as_array()
            .unwrap_or_else(|| panic!("no {k}: {ctx}"))
            .iter()
            .map(|c| {
                let s = |f: &str| c[f].as_str().unwrap_or("").to_string();
                (s("reference"), s("from"), s("to"))
            })
            .collect()
    };
    let d = Expected::digest;
    assert_eq!(
        change("added"),
        [(NEW.into(), String::new(), d(&want.new))],
        "{ctx}"
    );
    assert_eq!(
        change("changed"),
        [(APP.into(), d(&want.app1), d(&want.app2))],
        "{ctx}"
    );
    assert_eq!(
        change("removed"),
        [(OLD.into(), d(&want.old), String::new())],
        "{ctx}"
    );
    // Release 1 lacks app 2's manifest, config and top layer, and all
    // three of new's: six blobs, nothing else.
    let layout = update_images::layout();
    let carried: Vec<String> = [&want.app2, &want.new]
        .iter()
        .flat_map(|m| {
            let mut v = vec![m.manifest.digest.to_string(), m.blobs[0].to_string()];
            v.extend(m.blobs[1..].iter().map(ToString::to_string));
            v
        })
        .filter(|b| *b != want.app2.blobs[1].to_string())
        .collect();
    let bytes: u64 = carried
        .iter()
        .map(|b| size(&layout.join("blobs/sha256").join(hex(b))))
        .sum();
    assert_eq!(m["carried"]["blobs"], carried.len() as u64, "{ctx}");
    assert_eq!(m["carried"]["bytes"], bytes, "{ctx}");
}

/// Status and `Docker-Content-Digest` of a manifest on the registry at
/// 127.0.0.1:`port` (`reference` a tag or digest); status 0 when there
/// was no answer.
fn manifest(port: u16, repo: &str, reference: &str) -> (u16, String) {
    let accept = "application/vnd.oci.image.manifest.v1+json, \
                  application/vnd.oci.image.index.v1+json, \
                  application/vnd.docker.distribution.manifest.v2+json";
    let out = Command::new("curl")
        .args(["-sSk", "-o", "/dev/null", "--max-time", "20", "-H"])
        .arg(format!("Accept: {accept}"))
        .args(["-w", "%{http_code} %header{docker-content-digest}"])
        .arg(format!(
            "https://127.0.0.1:{port}/v2/{repo}/manifests/{reference}"
        ))
        .output()
        .expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (code, digest) = text.split_once(' ').unwrap_or((&text, ""));
    (code.trim().parse().unwrap_or(0), digest.trim().to_string())
}

/// The digest host0 (through the forward) serves for `reference`
/// (`repo:tag`), or why not.
fn tag_digest(port: u16, reference: &str) -> Result<String, u16> {
    let (repo, tag) = reference.rsplit_once(':').unwrap();
    match manifest(port, repo, tag) {
        (200, d) => Ok(d),
        (code, _) => Err(code),
    }
}

fn assert_tag(port: u16, reference: &str, want: &str, when: &str) {
    assert_eq!(
        tag_digest(port, reference),
        Ok(want.to_string()),
        "{when}: host0 serves {reference} as another digest (or not at all)"
    );
}

fn assert_no_tag(port: u16, reference: &str, when: &str) {
    assert_eq!(
        tag_digest(port, reference),
        Err(404),
        "{when}: {reference} must not be served"
    );
}

/// The status of `repo@digest` on host0.
fn by_digest(port: u16, reference: &str, digest: &str) -> u16 {
    let repo = reference.rsplit_once(':').unwrap().0;
    manifest(port, repo, digest).0
}

/// Push the test's image to host0 through the forward; its digest.
fn push(port: u16, dir: &Path) -> (String, MadeImage) {
    push_as(port, dir, update_images::pushed(77, 64 * 1024), PUSHED)
}

/// Push `image` to host0 as `reference` with the push token; its digest.
fn push_as(port: u16, dir: &Path, image: TestImage, reference: &str) -> (String, MadeImage) {
    let name = image.ref_name.clone();
    let layout = dir.join(format!("{name}-layout"));
    let made = write_layout(&layout, &[image]).unwrap().remove(0);
    let digest = copy_to_host0(
        port,
        dir,
        &format!("oci:{}:{name}", layout.display()),
        reference,
    );
    assert_eq!(digest, made.manifest.digest.to_string(), "pushed as made");
    (digest, made)
}

/// `skopeo copy --preserve-digests SRC` to host0's `reference` with the
/// push token; the digest pushed.
fn copy_to_host0(port: u16, dir: &Path, src: &str, reference: &str) -> String {
    let token = std::fs::read_to_string(workspace_root().join(TOKEN_FILE)).unwrap();
    let digest_file = dir.join("pushed.digest");
    let creds = format!("push:{}", token.trim());
    let dest = format!("docker://127.0.0.1:{port}/{reference}");
    let digest_arg = digest_file.display().to_string();
    run_ok(
        Command::new(require("skopeo", "skopeo"))
            // As made: skopeo would gzip the plain tar layers, and the
            // layer shared with `old` would no longer be shared.
            .args(["copy", "--preserve-digests", "--retry-times", "3"])
            .arg("--dest-tls-verify=false")
            .args([
                "--dest-creds",
                &creds,
                "--digestfile",
                &digest_arg,
                src,
                &dest,
            ]),
    );
    std::fs::read_to_string(digest_file)
        .unwrap()
        .trim()
        .to_string()
}

/// A whole pull (every blob verified by skopeo) through the forward.
fn host_pull(port: u16, reference: &str, dir: &Path) {
    let out = dir.join("host-pull");
    let _ = std::fs::remove_dir_all(&out);
    run_ok(Command::new("skopeo").args([
        "copy",
        "--retry-times",
        "3",
        "--src-tls-verify=false",
        &format!("docker://127.0.0.1:{port}/{reference}"),
        &format!("dir:{}", out.display()),
    ]));
}

/// A whole pull on the node through its mirror config; the digest of the
/// manifest it got.
fn node_pull(node: &mut GuestShell, reference: &str) -> String {
    let out = node.ok(
        &format!(
            "rm -rf /tmp/pull && skopeo copy --retry-times 3 docker://{reference} dir:/tmp/pull \
             >/tmp/pull.log 2>&1 || {{ tail -c 1500 /tmp/pull.log; exit 1; }}; \
             sha256sum /tmp/pull/manifest.json"
        ),
        CMD,
    );
    let hex = out
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("node: no sha256sum output: {out}"));
    format!("sha256:{hex}")
}

/// Run an `airlift-firstboot … --json` command on a VM; its JSON.
fn guest_json(sh: &mut GuestShell, command: &str) -> Value {
    let text = sh.ok(
        &format!("{command} 2>/tmp/e2e.err; rc=$?; [ $rc = 0 ] || cat /tmp/e2e.err; exit $rc"),
        CMD,
    );
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("`{command}` printed no JSON ({e}):\n{text}"))
}

/// The release of `version` in `airlift-firstboot releases --json`.
fn release<'a>(list: &'a Value, version: &str) -> &'a Value {
    list["releases"]
        .as_array()
        .unwrap_or_else(|| panic!("releases --json has no releases: {list:#}"))
        .iter()
        .find(|r| r["id"]["version"] == version)
        .unwrap_or_else(|| panic!("release {version} is not held: {list:#}"))
}

/// Which of `digests` exist as blob files on host0's data disk.
fn blob_files(sh: &mut GuestShell, digests: &[String]) -> BTreeSet<String> {
    let script: String = digests
        .iter()
        .map(|d| format!("[ -e {BLOBS}/{h} ] && echo {h}; ", h = hex(d)))
        .collect();
    let out = sh.ok(&format!("{script}true"), CMD);
    let present: BTreeSet<&str> = out.split_whitespace().collect();
    digests
        .iter()
        .filter(|d| present.contains(hex(d)))
        .cloned()
        .collect()
}

/// The steps, for progress lines and for naming the one that failed;
/// on a failure the VMs' logs are copied to target/test-output.
struct Steps {
    t0: Instant,
    n: u32,
    name: String,
    logs: PathBuf,
}

impl Steps {
    fn step(&mut self, name: &str) {
        self.n += 1;
        self.name = name.to_string();
        eprintln!(
            "{:>7.1}s  step {}: {name}",
            self.t0.elapsed().as_secs_f64(),
            self.n
        );
    }
}

impl Drop for Steps {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let keep = workspace_root().join(format!(
            "target/test-output/e2e-update/{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        ));
        let _ = std::fs::create_dir_all(&keep);
        for e in std::fs::read_dir(&self.logs)
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".log") || name.ends_with(".qemu-stderr") || name.ends_with(".json") {
                let _ = std::fs::copy(e.path(), keep.join(&name));
            }
        }
        eprintln!(
            "e2e-update FAILED in step {} ({}) after {:.1}s; serial logs and command \
             transcripts kept in {}",
            self.n,
            self.name,
            self.t0.elapsed().as_secs_f64(),
            keep.display()
        );
    }
}

/// host0's QEMU arguments: release media in the first CD drive, an
/// empty second drive, the data and transfer disks, the private link and
/// a forwarded registry port, QMP and the command channel.
fn host0_args(c: &Cluster, iso: &Path, data: &Path, fwd: u16, tag: &str) -> Vec<String> {
    let dir = c.dir.path();
    let mut a: Vec<String> = [
        "-m".into(),
        "2048".into(),
        "-drive".into(),
        format!(
            "file={},media=cdrom,readonly=on,if=ide,index=2",
            iso.display()
        ),
        "-drive".into(),
        "if=none,id=upd,media=cdrom,readonly=on".into(),
        "-device".into(),
        format!("ide-cd,drive=upd,bus=ide.1,unit=1,id={UPDATE_DRIVE}"),
        "-drive".into(),
        format!("file={},format=raw,if=none,id=data", data.display()),
        "-device".into(),
        "virtio-blk-pci,drive=data,serial=airlift-data,addr=0x6".into(),
        "-drive".into(),
        format!(
            "file={},format=raw,if=none,id=xfer",
            dir.join("transfer.raw").display()
        ),
        "-device".into(),
        "virtio-blk-pci,drive=xfer,serial=e2e-transfer,addr=0x7".into(),
        "-boot".into(),
        "d".into(),
        "-netdev".into(),
        c.hub.clone(),
        "-device".into(),
        format!("virtio-net-pci,netdev=priv,mac={HOST0_MAC},addr=0x4,romfile="),
        "-netdev".into(),
        format!("user,id=up,restrict=on,hostfwd=tcp:127.0.0.1:{fwd}-:5000"),
        "-device".into(),
        "virtio-net-pci,netdev=up,addr=0x5,romfile=".into(),
    ]
    .into();
    a.extend(qmp::args(&dir.join(format!("{tag}.qmp"))));
    a.extend(guest_shell::args(&dir.join(format!("{tag}.shell"))));
    a
}

/// A running host0: QEMU, its console, its command channel, its port.
struct Host0 {
    vm: Running,
    serial: Serial,
    sh: GuestShell,
    fwd: u16,
}

/// Boot host0 (`tag` names its files) until its bundle is loaded.
fn boot_host0(c: &Cluster, tag: &'static str, iso: &Path, data: &Path) -> Host0 {
    let fwd = free_port();
    let dir = c.dir.path();
    let (mut vm, serial) = c.spawn(tag, &host0_args(c, iso, data, fwd, tag));
    let mut sh = GuestShell::connect(
        tag,
        &dir.join(format!("{tag}.shell")),
        &dir.join(format!("{tag}.shell.log")),
    );
    let t = Instant::now();
    let (_, st) = vm::wait_for(
        &serial,
        &["AIRLIFT-STORAGE "],
        t,
        BOOT,
        &mut [(&serial, &mut vm)],
    );
    assert!(st.contains("mode=disk device=/dev/vda"), "{st}");
    let (at, loaded) = vm::wait_for(
        &serial,
        &["AIRLIFT-HOST0-LOADED"],
        t,
        BOOT,
        &mut [(&serial, &mut vm)],
    );
    eprintln!(
        "{:>7.1}s  {tag}: {} ({:.1}s after QEMU started)",
        at.as_secs_f64(),
        loaded.trim(),
        t.elapsed().as_secs_f64()
    );
    sh.wait_ready(BOOT).unwrap_or_else(|e| panic!("{e}"));
    Host0 {
        vm,
        serial,
        sh,
        fwd,
    }
}

/// Wait (up to `limit`) for a line holding every one of `markers` past
/// the first `seen` such lines of host0's console; that line.
fn new_line(h: &mut Host0, markers: &[&str], seen: usize, limit: Duration) -> String {
    let t = Instant::now();
    let count = |s: &Serial| {
        s.all(markers[0])
            .into_iter()
            .filter(|l| markers.iter().all(|m| l.contains(m)))
            .collect::<Vec<_>>()
    };
    loop {
        if let Some(l) = count(&h.serial).get(seen) {
            return l.clone();
        }
        assert!(
            h.vm.exited().is_none() && t.elapsed() < limit,
            "no new {markers:?} line on host0's console within {limit:?} (or host0 exited)\n{}",
            vm::tail(&h.serial.text(), 60)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// How many console lines hold `marker` so far.
fn lines(h: &Host0, marker: &str) -> usize {
    h.serial.all(marker).len()
}

#[test]
fn an_update_medium_is_loaded_rolled_back_collected_backed_up_and_restored() {
    require("curl", "curl");
    require("skopeo", "skopeo");
    let work = tempfile::Builder::new()
        .prefix("airlift-e2e-update-media-")
        .tempdir()
        .unwrap();
    let want = Expected::load(work.path());
    let m = media(work.path(), &want);

    let c = Cluster::new("airlift-e2e-update-");
    let mut steps = Steps {
        t0: c.t0,
        n: 0,
        name: String::new(),
        logs: c.dir.path().to_path_buf(),
    };
    let dir = c.dir.path().to_path_buf();
    let sparse = |name: &str, len: u64| {
        let p = dir.join(name);
        std::fs::File::create(&p).unwrap().set_len(len).unwrap();
        p
    };
    sparse("transfer.raw", 64 << 20);
    let (app1, app2) = (Expected::digest(&want.app1), Expected::digest(&want.app2));
    let (old, new) = (Expected::digest(&want.old), Expected::digest(&want.new));

    steps.step("host0 boots release 1 with a blank data disk");
    let mut h = boot_host0(&c, "host0", m.r1, &sparse("data-1.raw", 2 << 30));
    let list = guest_json(&mut h.sh, "airlift-firstboot releases --json");
    let r1 = release(&list, "1.0.0");
    assert_eq!(r1["current"], true, "{list:#}");
    assert_eq!(r1["id"]["bundle"], m.r1_bundle.as_str(), "{list:#}");
    assert_eq!(list["releases"].as_array().unwrap().len(), 1, "{list:#}");
    assert_tag(h.fwd, KEEP, &want.keep, "release 1");
    assert_tag(h.fwd, APP, &app1, "release 1");
    assert_tag(h.fwd, OLD, &old, "release 1");
    assert_no_tag(h.fwd, NEW, "release 1");
    let ca = vm::get_json(h.fwd, "/airlift/v1/status").unwrap()["ca-fingerprint"].clone();
    assert!(ca.is_string(), "host0 reports its CA fingerprint");

    steps.step("an image is pushed; a node netboots and pulls");
    let (node_vm, node_serial) = c.spawn(
        "node-1",
        &[
            vec![
                "-m".into(),
                "1536".into(),
                "-boot".into(),
                "n".into(),
                "-netdev".into(),
                c.hub.clone(),
                "-device".into(),
                format!("virtio-net-pci,netdev=priv,mac={NODE_MAC},bootindex=0"),
            ],
            guest_shell::args(&dir.join("node-1.shell")),
        ]
        .concat(),
    );
    let mut node_vm = node_vm;
    let mut node = GuestShell::connect(
        "node-1",
        &dir.join("node-1.shell"),
        &dir.join("node-1.shell.log"),
    );
    let (pushed, pushed_made) = push(h.fwd, &dir);
    assert_tag(h.fwd, PUSHED, &pushed, "after the push");
    vm::wait_for(
        &node_serial,
        &["AIRLIFT-JOIN-VERIFIED"],
        Instant::now(),
        BOOT,
        &mut [(&h.serial, &mut h.vm), (&node_serial, &mut node_vm)],
    );
    node.wait_ready(BOOT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        node_pull(&mut node, APP),
        app1,
        "node-1 pulls app, release 1"
    );
    assert_eq!(
        node_pull(&mut node, PUSHED),
        pushed,
        "node-1 pulls the pushed image"
    );

    steps.step("signatures: the node's trust files; signed pulls, unsigned refused");
    signatures::check(&mut node, h.fwd, &dir);

    steps.step("the update ISO goes into the second CD drive; host0 loads it");
    let mut q = Qmp::connect(&dir.join("host0.qmp"), Duration::from_secs(10)).unwrap();
    let attached = Instant::now();
    q.change_medium(UPDATE_DRIVE, &m.update).unwrap();
    let mut served = 0u32;
    let loaded = loop {
        if let Some(hit) = h.serial.find("AIRLIFT-UPDATE-LOADED") {
            break hit.1;
        }
        if let Some((_, f)) = h.serial.find("AIRLIFT-UPDATE-FAILED") {
            panic!("host0 could not load the update: {f}");
        }
        assert!(
            h.vm.exited().is_none(),
            "host0 exited\n{}",
            vm::tail(&h.serial.text(), 60)
        );
        assert!(
            attached.elapsed() < BOOT,
            "no AIRLIFT-UPDATE-LOADED within {BOOT:?}\n{}",
            vm::tail(&h.serial.text(), 60)
        );
        // Pulls keep working throughout.
        assert_tag(h.fwd, KEEP, &want.keep, "while the update loads");
        served += 1;
        std::thread::sleep(Duration::from_millis(500));
    };
    let load_time = attached.elapsed();
    let found = h.serial.find("AIRLIFT-UPDATE-FOUND").map(|l| l.1);
    eprintln!(
        "          {}\n          {}\n          attach → loaded: {:.1}s host-side ({served} pulls of {KEEP} \
         answered meanwhile)",
        found.as_deref().unwrap_or("(no AIRLIFT-UPDATE-FOUND line)").trim(),
        loaded.trim(),
        load_time.as_secs_f64()
    );
    // The second IDE CD drive (secondary slave) is the guest's sr1.
    assert!(
        found.is_some_and(|f| f.contains("/dev/sr1")),
        "AIRLIFT-UPDATE-FOUND names the device the medium is in"
    );
    assert!(loaded.contains("e2e-update 2.0.0"), "{loaded}");
    let list = guest_json(&mut h.sh, "airlift-firstboot releases --json");
    assert_eq!(release(&list, "2.0.0")["current"], true, "{list:#}");
    assert_eq!(release(&list, "1.0.0")["current"], false, "{list:#}");
    assert_tag(h.fwd, KEEP, &want.keep, "release 2");
    assert_tag(h.fwd, APP, &app2, "release 2");
    assert_tag(h.fwd, NEW, &new, "release 2");
    assert_no_tag(h.fwd, OLD, "release 2");
    assert_eq!(
        by_digest(h.fwd, OLD, &old),
        200,
        "release 1 is kept: old pulls by digest"
    );
    assert_tag(h.fwd, PUSHED, &pushed, "release 2");
    assert_eq!(
        node_pull(&mut node, NEW),
        new,
        "node-1 pulls new with no reboot"
    );
    assert_eq!(
        node_pull(&mut node, APP),
        app2,
        "node-1 pulls app, release 2"
    );

    steps.step("gc --dry-run with the default keep keeps release 1");
    let plan = guest_json(&mut h.sh, "airlift-firstboot gc --dry-run --json");
    eprintln!(
        "          gc --dry-run: {} blobs, {} bytes",
        plan["blobCount"], plan["bytes"]
    );
    assert_eq!(plan["dryRun"], true, "{plan:#}");
    assert_eq!(plan["keep"], 2, "{plan:#}");
    assert_eq!(plan["releasesDropped"], serde_json::json!([]), "{plan:#}");
    let listed: BTreeSet<String> = plan["blobs"]
        .as_array()
        .unwrap_or_else(|| panic!("{plan:#}"))
        .iter()
        .filter_map(|b| b["digest"].as_str().map(str::to_string))
        .collect();
    for b in want.release1_only() {
        assert!(
            !listed.contains(&b),
            "gc --dry-run would delete {b} of a kept release: {plan:#}"
        );
    }
    assert_eq!(release(&list, "1.0.0")["kept"], true, "{list:#}");

    steps.step("rollback moves the tags back to release 1, and forward again");
    let before = lines(&h, "AIRLIFT-ROLLBACK");
    let out = h.sh.ok("airlift-firstboot rollback 2>&1", CMD);
    eprintln!("          rollback: {}", out.trim());
    let said = new_line(&mut h, &["AIRLIFT-ROLLBACK"], before, CMD);
    assert!(said.contains("e2e-update 1.0.0"), "{said}");
    assert_tag(h.fwd, APP, &app1, "after rollback");
    assert_tag(h.fwd, OLD, &old, "after rollback");
    assert_no_tag(h.fwd, NEW, "after rollback");
    assert_tag(h.fwd, PUSHED, &pushed, "after rollback");
    let list = guest_json(&mut h.sh, "airlift-firstboot releases --json");
    assert_eq!(release(&list, "1.0.0")["current"], true, "{list:#}");
    assert_eq!(node_pull(&mut node, APP), app1, "node-1 sees the rollback");
    // With no argument: the newest held release that is not current.
    let out = h.sh.ok("airlift-firstboot rollback 2>&1", CMD);
    eprintln!("          rollback: {}", out.trim());
    let said = new_line(&mut h, &["AIRLIFT-ROLLBACK"], before + 1, CMD);
    assert!(said.contains("e2e-update 2.0.0"), "{said}");
    assert_tag(h.fwd, APP, &app2, "after rolling forward");
    assert_tag(h.fwd, NEW, &new, "after rolling forward");
    assert_no_tag(h.fwd, OLD, "after rolling forward");

    steps.step("gc --keep 1 deletes release 1's own blobs, keeps pushed content");
    // Blob files that must stay: the layer `old` shares with the pushed
    // image, app's base layer, the pushed image's manifest, config and
    // layers, release 2's `new`.
    let pushed_blobs: Vec<String> = pushed_made.blobs.iter().map(ToString::to_string).collect();
    let kept: Vec<String> = [
        vec![want.app2.blobs[1].to_string(), pushed.clone()],
        pushed_blobs.clone(),
        want.new.blobs.iter().map(ToString::to_string).collect(),
    ]
    .concat();
    assert!(kept.contains(&want.shared()));
    let mut watched = want.release1_only();
    watched.extend(kept.iter().cloned());
    let on_disk = blob_files(&mut h.sh, &watched);
    let absent: Vec<&String> = watched.iter().filter(|b| !on_disk.contains(*b)).collect();
    assert!(
        absent.is_empty(),
        "blobs not on the data disk before gc: {absent:?}"
    );
    // Blobs younger than GC's grace period (10 minutes) are never taken:
    // age the files as days on a real appliance would.
    h.sh.ok(
        &format!("find {BLOBS} -type f -exec touch -d '-1 hour' {{}} +"),
        CMD,
    );
    let gc_before = lines(&h, "AIRLIFT-GC freed");
    let done = guest_json(&mut h.sh, "airlift-firstboot gc --keep 1 --json");
    eprintln!(
        "          gc --keep 1: {} blobs, {} bytes freed",
        done["blobCount"], done["bytes"]
    );
    assert_eq!(done["dryRun"], false, "{done:#}");
    assert!(
        done["releasesDropped"].to_string().contains("1.0.0"),
        "{done:#}"
    );
    let deleted: BTreeSet<String> = done["blobs"]
        .as_array()
        .unwrap_or_else(|| panic!("{done:#}"))
        .iter()
        .filter_map(|b| b["digest"].as_str().map(str::to_string))
        .collect();
    for b in want.release1_only() {
        assert!(deleted.contains(&b), "gc did not delete {b}: {done:#}");
    }
    for b in &kept {
        assert!(
            !deleted.contains(b),
            "gc deleted {b}, which must stay: {done:#}"
        );
    }
    let left = blob_files(&mut h.sh, &watched);
    for b in want.release1_only() {
        assert!(!left.contains(&b), "{b} is still on the data disk after gc");
    }
    for b in &kept {
        assert!(left.contains(b), "{b} is gone from the data disk after gc");
    }
    let said = new_line(&mut h, &["AIRLIFT-GC freed"], gc_before, CMD);
    assert!(
        said.contains(&format!(
            "freed {} blobs {}",
            done["blobCount"], done["bytes"]
        )),
        "the console says what gc reported: {said}"
    );
    assert_eq!(
        by_digest(h.fwd, OLD, &old),
        404,
        "old's manifest is collected"
    );
    assert_eq!(
        by_digest(h.fwd, APP, &app1),
        404,
        "app 1's manifest is collected"
    );
    assert_tag(h.fwd, PUSHED, &pushed, "after gc");
    host_pull(h.fwd, PUSHED, &dir);
    host_pull(h.fwd, APP, &dir);
    let list = guest_json(&mut h.sh, "airlift-firstboot releases --json");
    assert_eq!(
        list["releases"].as_array().map(Vec::len),
        Some(1),
        "{list:#}"
    );
    assert_eq!(release(&list, "2.0.0")["current"], true, "{list:#}");

    steps.step("a backup is taken and copied out through the transfer disk");
    let said =
        h.sh.ok("airlift-firstboot backup -o /root/backup.tar 2>&1", CMD);
    eprintln!("          backup: {}", said.trim());
    // It must say the archive holds secrets: the CA key and the token.
    assert!(
        said.contains("CA key") && said.contains("admin token"),
        "backup must say the archive holds secrets: {said}"
    );
    let facts = h.sh.ok(
        &format!(
            "stat -c '%s %a' /root/backup.tar && sha256sum /root/backup.tar && \
             dd if=/root/backup.tar of={TRANSFER} conv=fsync status=none"
        ),
        CMD,
    );
    let mut w = facts.split_whitespace();
    let (bsize, mode, bsum) = (
        w.next().unwrap().parse::<u64>().unwrap(),
        w.next().unwrap().to_string(),
        w.next().unwrap().to_string(),
    );
    assert_eq!(mode, "600", "the backup holds secrets: mode 0600");
    let tar = backup_on_host(&dir, bsize, &bsum);
    let listing = run_ok(Command::new("tar").arg("tf").arg(&tar));
    let names: BTreeSet<&str> = listing
        .lines()
        .map(|l| l.trim_start_matches("./"))
        .collect();
    assert!(names.contains("airlift-backup.json"), "{listing}");
    assert!(
        names.contains("index.json") && names.contains("oci-layout"),
        "{listing}"
    );
    for b in pushed_blobs.iter().chain([&pushed, &want.shared()]) {
        assert!(
            names.contains(format!("blobs/sha256/{}", hex(b)).as_str()),
            "{b} missing: {listing}"
        );
    }
    for b in &want.new.blobs {
        let p = format!("blobs/sha256/{}", b.hex());
        assert!(
            !names.contains(p.as_str()),
            "release 2's blob {b} is in the backup: {listing}"
        );
    }
    drop(q);
    h.vm.kill();

    steps.step("host0 boots again with a blank data disk and restores the backup");
    let mut h2 = boot_host0(&c, "host0-restored", m.r1, &sparse("data-2.raw", 2 << 30));
    let ready_before = h2.serial.all("AIRLIFT-HOST0-READY").len();
    assert_no_tag(h2.fwd, PUSHED, "a fresh host0");
    let sum = h2.sh.ok(
        &format!("head -c {bsize} {TRANSFER} > /root/b.tar && sha256sum /root/b.tar"),
        CMD,
    );
    assert!(
        sum.starts_with(&bsum),
        "the backup came back damaged: {sum}"
    );
    let said = h2.sh.ok("airlift-firstboot restore /root/b.tar 2>&1", CMD);
    eprintln!("          restore: {}", said.trim());
    assert!(
        said.contains("2.0.0") && said.contains("medium"),
        "restore must say release 2 needs its medium: {said}"
    );
    let t = Instant::now();
    loop {
        if h2.serial.all("AIRLIFT-HOST0-READY").len() > ready_before {
            break;
        }
        assert!(
            t.elapsed() < BOOT,
            "host0 did not restart after restore\n{}",
            vm::tail(&h2.serial.text(), 60)
        );
        assert!(
            h2.vm.exited().is_none(),
            "host0 exited\n{}",
            vm::tail(&h2.serial.text(), 60)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while tag_digest(h2.fwd, PUSHED).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_tag(h2.fwd, PUSHED, &pushed, "after restore");
    assert_tag(h2.fwd, KEEP, &want.keep, "after restore");
    host_pull(h2.fwd, PUSHED, &dir);
    let status = vm::get_json(h2.fwd, "/airlift/v1/status").unwrap();
    assert_eq!(
        status["ca-fingerprint"], ca,
        "restore brings host0's CA back"
    );
    assert_eq!(
        node_pull(&mut node, PUSHED),
        pushed,
        "node-1 pulls the pushed image from the restored host0"
    );

    eprintln!(
        "e2e-update figures:\n  release 1 ISO {} bytes; release 2 full ISO {} bytes; update medium {} bytes \
         ({:.1} % of the full ISO)\n  attach → AIRLIFT-UPDATE-LOADED {:.1}s (host-side)\n  backup {} bytes\n  \
         whole run {:.1}s",
        size(m.r1),
        size(m.r2_full),
        size(&m.update),
        100.0 * size(&m.update) as f64 / size(m.r2_full) as f64,
        load_time.as_secs_f64(),
        bsize,
        c.t0.elapsed().as_secs_f64()
    );
    drop(node_vm);
}

/// The backup read back from the transfer disk; checked against the
/// guest's sha256.
fn backup_on_host(dir: &Path, len: u64, sha: &str) -> PathBuf {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(dir.join("transfer.raw"))
        .unwrap()
        .take(len)
        .read_to_end(&mut bytes)
        .unwrap();
    let got = airlift_oci::Digest::sha256_of(&bytes);
    assert_eq!(
        got.hex(),
        sha,
        "the backup read from the transfer disk differs"
    );
    let tar = dir.join("backup.tar");
    std::fs::write(&tar, &bytes).unwrap();
    tar
}
