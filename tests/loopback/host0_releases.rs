//! Releases on host0 (issue #19): release 1 is the boot media, release 2
//! comes as an update medium (a folder or an OCI archive written here by
//! hand as DESIGN19.md describes: the new index.json and bundle.json,
//! update.json naming the base, only the blobs release 1 lacks). host0
//! loads it without a restart while pulls go on, moves the tags, rolls
//! back and forward, refuses another appliance's medium and one whose
//! base it does not hold, and survives kill -9 anywhere in a load.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use airlift_integration::firstboot::files_under;
use airlift_integration::host0::{self, Host0, Host0Dirs};
use airlift_integration::images::{write_layout, Layer, MadeImage, TestImage};
use airlift_integration::tools::{binary, require};
use airlift_oci::Digest;
use serde_json::{json, Value};

const NAME: &str = "host0-test";

fn image(ref_name: &str, seed: u64, layers: u64, size: usize) -> TestImage {
    TestImage {
        ref_name: ref_name.to_string(),
        layers: (0..layers)
            .map(|l| Layer::Random {
                seed: seed * 100 + l,
                size,
            })
            .collect(),
        architecture: "amd64".to_string(),
        gzip: false,
    }
}

/// Release 1: kept (unchanged in 2), app (changed in 2), old (dropped in 2).
fn release1() -> Vec<TestImage> {
    vec![
        image("quay.io/rel/kept:1", 1, 2, 200_000),
        image("quay.io/rel/app:1", 2, 2, 200_000),
        image("quay.io/rel/old:1", 3, 1, 200_000),
    ]
}

/// Release 2: kept as is, app changed, new added with `new_layers` MB.
fn release2(new_layers: u64) -> Vec<TestImage> {
    vec![
        image("quay.io/rel/kept:1", 1, 2, 200_000),
        image("quay.io/rel/app:1", 22, 2, 200_000),
        image("quay.io/rel/new:1", 4, new_layers, 1_000_000),
    ]
}

fn bundle_json(name: &str, version: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schema": "airlift.bundle/v1", "name": name, "version": version, "images": [],
        "totals": {"images": 0, "blobs": 0, "uniqueBytes": 0, "referencedBytes": 0, "savedBytes": 0}
    }))
    .unwrap()
}

fn id(name: &str, version: &str, layout: &Path) -> Value {
    let index = std::fs::read(layout.join("index.json")).unwrap();
    json!({"name": name, "version": version, "bundle": Digest::sha256_of(&index).to_string()})
}

/// A full medium folder: the layout with bundle.json beside it.
fn full_medium(dir: &Path, name: &str, version: &str, images: &[TestImage]) -> Vec<MadeImage> {
    let made = write_layout(dir, images).unwrap();
    std::fs::write(dir.join("bundle.json"), bundle_json(name, version)).unwrap();
    made
}

fn blob_names(layout: &Path) -> BTreeSet<String> {
    files_under(&layout.join("blobs")).into_iter().collect()
}

/// An update folder: `full`'s index.json, bundle.json, update.json on
/// `base`, and only the blobs `base_layout` lacks.
fn update_medium(dir: &Path, full: &Path, base: Value, name: &str, version: &str) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    for f in ["oci-layout", "index.json"] {
        std::fs::copy(full.join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join("bundle.json"), bundle_json(name, version)).unwrap();
    let update = json!({
        "schema": "airlift.update/v1",
        "release": id(name, version, full),
        "base": base,
        "carried": {"blobs": 0, "bytes": 0}, "total": {"blobs": 0, "bytes": 0},
        "added": [], "changed": [], "removed": []
    });
    std::fs::write(
        dir.join("update.json"),
        serde_json::to_vec(&update).unwrap(),
    )
    .unwrap();
    let base_blobs = blob_names(&dir.join("../media"));
    for rel in blob_names(full) {
        if !base_blobs.contains(&rel) {
            std::fs::copy(full.join("blobs").join(&rel), dir.join("blobs").join(&rel)).unwrap();
        }
    }
}

/// `dir` as one OCI archive at `out`.
fn archive(dir: &Path, out: &Path) {
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    for rel in files_under(dir) {
        b.append_path_with_name(dir.join(&rel), &rel).unwrap();
    }
    b.finish().unwrap();
}

/// Two releases on disk: `tmp/media` (1.0) and the update `tmp/update` (2.0).
fn media(tmp: &Path, new_layers: u64) -> (Vec<MadeImage>, Vec<MadeImage>) {
    let one = full_medium(&tmp.join("media"), NAME, "1.0", &release1());
    let full2 = tmp.join("full2");
    let two = full_medium(&full2, NAME, "2.0", &release2(new_layers));
    let base = id(NAME, "1.0", &tmp.join("media"));
    update_medium(&tmp.join("update"), &full2, base, NAME, "2.0");
    (one, two)
}

fn start_loaded(tmp: &Path) -> Host0 {
    let file = host0::appliance_file(host0::port(), &["quay.io"]);
    let dirs = Host0Dirs::new(tmp, &tmp.join("media"), &file);
    let mut h = Host0::start(&dirs, &["--force-load"]);
    h.wait_line("AIRLIFT-HOST0-LOADED", Duration::from_secs(120));
    h.wait_state("ready", Duration::from_secs(60));
    h
}

/// `airlift-firstboot ARGS --config --data` of this host0: (exit ok, stdout, stderr).
fn cli(dirs: &Host0Dirs, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(binary("airlift-firstboot"))
        .args(args)
        .arg("--config")
        .arg(&dirs.config)
        .arg("--data")
        .arg(&dirs.data)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn releases(dirs: &Host0Dirs) -> Value {
    let (ok, out, err) = cli(dirs, &["releases", "--json"]);
    assert!(ok, "releases: {err}");
    serde_json::from_str(&out).unwrap()
}

/// GET `path` into a file: (HTTP code, bytes).
fn get(dirs: &Host0Dirs, path: &str) -> (u16, Vec<u8>) {
    let f = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new(require("curl", "curl"))
        .args(["-sS", "--max-time", "30", "--cacert"])
        .arg(dirs.ca())
        .args(["-H", "Accept: application/vnd.oci.image.manifest.v1+json"])
        .args(["-w", "%{http_code}", "-o"])
        .arg(f.path())
        .arg(format!("https://{}{path}", dirs.host()))
        .output()
        .unwrap();
    let code = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    (code, std::fs::read(f.path()).unwrap_or_default())
}

/// The manifest digest `reference` (`repo:tag`) resolves to, if any.
fn tag_digest(dirs: &Host0Dirs, reference: &str) -> Option<Digest> {
    let (repo, tag) = reference.rsplit_once(':').unwrap();
    let (code, body) = get(dirs, &format!("/v2/{repo}/manifests/{tag}"));
    (code == 200).then(|| Digest::sha256_of(&body))
}

/// Pull `m` by digest and check every blob hashes to its name.
fn pull_verified(dirs: &Host0Dirs, m: &MadeImage) {
    let repo = m.ref_name.rsplit_once(':').unwrap().0;
    let d = &m.manifest.digest;
    let (code, body) = get(dirs, &format!("/v2/{repo}/manifests/{d}"));
    assert_eq!(
        (code, Digest::sha256_of(&body)),
        (200, d.clone()),
        "{}",
        m.ref_name
    );
    for b in &m.blobs {
        let (code, bytes) = get(dirs, &format!("/v2/{repo}/blobs/{b}"));
        assert_eq!(code, 200, "{} blob {b}", m.ref_name);
        assert_eq!(&Digest::sha256_of(&bytes), b, "{} blob {b}", m.ref_name);
    }
}

fn by_ref<'a>(made: &'a [MadeImage], r: &str) -> &'a MadeImage {
    made.iter().find(|m| m.ref_name == r).unwrap()
}

/// `update PATH` fails and changes nothing: `state.json`, the blob
/// files and release 2's new tag as before. Its stderr.
fn refused_without_change(dirs: &Host0Dirs, path: &Path, what: &str) -> String {
    let (state, blobs) = (state_bytes(dirs), blob_names(&dirs.registry_data()));
    let (ok, _, err) = cli(dirs, &["update", path.to_str().unwrap()]);
    assert!(!ok, "{what} loaded");
    assert_eq!(state_bytes(dirs), state, "state.json changed by {what}");
    let after = blob_names(&dirs.registry_data());
    assert_eq!(after, blobs, "blobs were written by {what}");
    assert_eq!(tag_digest(dirs, "quay.io/rel/new:1"), None);
    err
}

fn state_bytes(dirs: &Host0Dirs) -> Vec<u8> {
    std::fs::read(dirs.data.join("releases/state.json")).unwrap()
}

#[test]
fn an_update_loads_without_a_restart_while_pulls_go_on_and_rollback_moves_the_tags() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = media(tmp.path(), 40);
    let mut h = start_loaded(tmp.path());
    let dirs = h.dirs.clone();
    let v = releases(&dirs);
    assert_eq!(v["releases"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["releases"][0]["id"]["version"], "1.0");
    assert_eq!(v["current"], v["releases"][0]["id"]["bundle"]);

    // skopeo pulls the unchanged image over and over while the update loads.
    let skopeo = require("skopeo", "skopeo");
    let certs = tmp.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(dirs.ca(), certs.join("ca.crt")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let puller = {
        let (stop, dirs, out) = (stop.clone(), dirs.clone(), tmp.path().join("pulled"));
        let certs = certs.clone();
        std::thread::spawn(move || {
            let mut pulls = 0;
            while !stop.load(Ordering::SeqCst) || pulls == 0 {
                let _ = std::fs::remove_dir_all(&out);
                let o = Command::new(&skopeo)
                    .args(["copy", "--src-cert-dir"])
                    .arg(&certs)
                    .arg(format!("docker://{}/quay.io/rel/kept:1", dirs.host()))
                    .arg(format!("dir:{}", out.display()))
                    .output()
                    .unwrap();
                assert!(
                    o.status.success(),
                    "pull {pulls} failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                pulls += 1;
            }
            pulls
        })
    };
    let update = tmp.path().join("update");
    let (ok, out, err) = cli(&dirs, &["update", update.to_str().unwrap()]);
    stop.store(true, Ordering::SeqCst);
    assert!(ok, "update failed: {out}{err}");
    assert!(
        out.contains(&format!("loaded; serving {NAME} 2.0 (")),
        "{out}"
    );
    let pulls = puller.join().unwrap();
    eprintln!("{pulls} pulls during the update load, none failed");
    h.wait_line(
        &format!("AIRLIFT-UPDATE-LOADED {NAME} 2.0 "),
        Duration::from_secs(10),
    );

    let digest = |m: &[MadeImage], r: &str| Some(by_ref(m, r).manifest.digest.clone());
    let serving_two = |dirs: &Host0Dirs| {
        assert_eq!(
            tag_digest(dirs, "quay.io/rel/app:1"),
            digest(&two, "quay.io/rel/app:1")
        );
        assert_eq!(
            tag_digest(dirs, "quay.io/rel/new:1"),
            digest(&two, "quay.io/rel/new:1")
        );
        assert_eq!(
            tag_digest(dirs, "quay.io/rel/kept:1"),
            digest(&one, "quay.io/rel/kept:1")
        );
        assert_eq!(
            tag_digest(dirs, "quay.io/rel/old:1"),
            None,
            "the dropped image's tag"
        );
    };
    serving_two(&dirs);
    // Release 1's dropped image still pulls by digest until collected.
    pull_verified(&dirs, by_ref(&one, "quay.io/rel/old:1"));
    pull_verified(&dirs, by_ref(&two, "quay.io/rel/new:1"));
    let v = releases(&dirs);
    let rs = v["releases"].as_array().unwrap();
    assert_eq!(rs.len(), 2, "{v}");
    assert_eq!(
        (rs[1]["id"]["version"].as_str(), rs[1]["current"].as_bool()),
        (Some("2.0"), Some(true))
    );
    assert_eq!(rs[1]["source"], "update");
    assert_eq!(rs[1]["base"]["version"], "1.0");
    assert_eq!(rs[1]["images"], 3);
    assert!(v["loading"].is_null(), "{v}");
    let (ok, table, _) = cli(&dirs, &["releases"]);
    assert!(
        ok && table.lines().any(|l| l.starts_with("* host0-test 2.0")),
        "{table}"
    );

    // Back to 1.0, then forward again (the default target both times).
    let (ok, out, err) = cli(&dirs, &["rollback"]);
    assert!(
        ok && out.contains("serving release host0-test 1.0"),
        "{out}{err}"
    );
    h.wait_line(
        &format!("AIRLIFT-ROLLBACK {NAME} 1.0"),
        Duration::from_secs(10),
    );
    assert_eq!(
        tag_digest(&dirs, "quay.io/rel/app:1"),
        digest(&one, "quay.io/rel/app:1")
    );
    assert_eq!(
        tag_digest(&dirs, "quay.io/rel/old:1"),
        digest(&one, "quay.io/rel/old:1")
    );
    assert_eq!(tag_digest(&dirs, "quay.io/rel/new:1"), None);
    let (ok, out, err) = cli(&dirs, &["rollback", "2.0"]);
    assert!(
        ok && out.contains("serving release host0-test 2.0"),
        "{out}{err}"
    );
    serving_two(&dirs);
    let (ok, _, err) = cli(&dirs, &["rollback", "9.9"]);
    assert!(!ok && err.contains("no release \"9.9\""), "{err}");

    // A restart with release 1's media attached keeps 2.0 current.
    drop(h);
    let h = Host0::start(&dirs, &["--force-load"]);
    assert_eq!(h.status()["state"], "ready");
    serving_two(&dirs);
    for m in one.iter().chain(&two) {
        pull_verified(&dirs, m);
    }
}

#[test]
fn another_appliances_medium_and_a_missing_base_are_refused_then_an_archive_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = media(tmp.path(), 2);
    let h = start_loaded(tmp.path());
    let dirs = h.dirs.clone();
    let other = tmp.path().join("other");
    full_medium(&other, "other-appliance", "7.0", &release2(1));
    let full2 = tmp.path().join("full2");
    let orphan = tmp.path().join("orphan");
    let missing_base = json!({"name": NAME, "version": "0.9",
        "bundle": Digest::sha256_of(b"never loaded").to_string()});
    update_medium(&orphan, &full2, missing_base, NAME, "2.0");

    let err = refused_without_change(&dirs, &other, "another appliance's medium");
    assert!(
        err.contains(
            "another appliance's medium: it is for other-appliance, this host0 is host0-test"
        ),
        "{err}"
    );
    let err = refused_without_change(&dirs, &orphan, "an update without its base");
    assert!(
        err.contains("needs release host0-test 0.9 (")
            && err.contains("which holds host0-test 1.0 (")
            && err.contains("load that first"),
        "{err}"
    );
    let v = releases(&dirs);
    assert_eq!(v["loading"]["state"], "failed", "{v}");

    // The same update as one OCI archive.
    let tar = tmp.path().join("update.tar");
    archive(&tmp.path().join("update"), &tar);
    let (ok, out, err) = cli(&dirs, &["update", tar.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    for m in &two {
        assert_eq!(
            tag_digest(&dirs, &m.ref_name),
            Some(m.manifest.digest.clone())
        );
        pull_verified(&dirs, m);
    }
    pull_verified(&dirs, by_ref(&one, "quay.io/rel/old:1"));
}

#[test]
fn kill9_anywhere_in_an_update_load_keeps_every_image_and_the_load_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = media(tmp.path(), 150);
    let mut h = start_loaded(tmp.path());
    let dirs = h.dirs.clone();
    let update = tmp.path().join("update");
    let mut kills = 0;
    for round in 0..5u64 {
        let (ok, out, err) = cli(&dirs, &["update", "--no-wait", update.to_str().unwrap()]);
        assert!(ok, "{out}{err}");
        // Kill at a later point each round (by blobs copied so far).
        let at = round * 12;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let v = releases(&dirs);
            let l = &v["loading"];
            if l.is_null() {
                break; // done before this point: no kill this round
            }
            assert_ne!(l["state"], "failed", "{v}");
            if l["blobsDone"].as_u64().unwrap_or(0) >= at {
                h.kill9();
                kills += 1;
                break;
            }
            assert!(Instant::now() < deadline, "{v}");
        }
        drop(h);
        // Whatever was written is whole, and every kept image pulls.
        assert_whole(&dirs.registry_data());
        h = Host0::start(&dirs, &["--force-load"]);
        h.wait_state("ready", Duration::from_secs(60));
        let current = releases(&dirs)["current"].clone();
        for m in &one {
            pull_verified(&dirs, m);
        }
        let v = releases(&dirs);
        if v["releases"].as_array().unwrap().len() == 2 {
            break; // the last round's load completed before the kill
        }
        assert_eq!(
            current,
            id(NAME, "1.0", &tmp.path().join("media"))["bundle"]
        );
    }
    assert!(kills >= 2, "the load never ran long enough to be killed");
    let (ok, out, err) = cli(&dirs, &["update", update.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    for m in &two {
        assert_eq!(
            tag_digest(&dirs, &m.ref_name),
            Some(m.manifest.digest.clone())
        );
        pull_verified(&dirs, m);
    }
    assert_whole(&dirs.registry_data());
    assert!(
        !files_under(&dirs.data)
            .iter()
            .any(|f| f.rsplit('/').next().is_some_and(|n| n.starts_with('.'))),
        "temp files left"
    );
}

/// Every blob file (not temp) in the registry hashes to its name.
fn assert_whole(data: &Path) {
    for rel in files_under(&data.join("blobs")) {
        if rel.rsplit('/').next().is_some_and(|n| n.starts_with('.')) {
            continue;
        }
        let d: Digest = rel.replacen('/', ":", 1).parse().unwrap();
        let p: PathBuf = data.join("blobs").join(&rel);
        assert_eq!(Digest::sha256_of(&std::fs::read(p).unwrap()), d, "{rel}");
    }
}

/// An update that would eat into the reserve (`storage.reserveMiB`,
/// here more than any disk) is refused before a blob is written, naming
/// what it needs and what gc would free; host0 goes on serving release 1.
#[test]
fn an_update_that_would_not_fit_is_refused_and_host0_keeps_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, _) = media(tmp.path(), 2);
    let mut file = host0::appliance_file(host0::port(), &["quay.io"]);
    file.storage.reserve_mib = Some(1 << 30); // 1 PiB
    let dirs = Host0Dirs::new(tmp.path(), &tmp.path().join("media"), &file);
    let mut h = Host0::start(&dirs, &["--force-load"]);
    h.wait_line("AIRLIFT-HOST0-LOADED", Duration::from_secs(120));
    h.wait_state("ready", Duration::from_secs(60));

    let update = tmp.path().join("update");
    let err = refused_without_change(&dirs, &update, "an update into the reserve");
    assert!(
        err.contains("not enough space for loading release host0-test 2.0")
            && err.contains("kept in reserve")
            && err.contains("garbage collection would free nothing"),
        "{err}"
    );
    for m in &one {
        pull_verified(&dirs, m);
    }
    h.kill9();
}
