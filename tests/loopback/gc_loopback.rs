//! Garbage collection on host0's state folder, built by hand in the
//! on-disk format of issue #19 (`DATA/releases/state.json`, release
//! layouts whose blobs are the registry's), with pushes through
//! `airlift-firstboot serve` and skopeo, and `airlift-firstboot gc
//! --offline`. Asserted: keep 1 removes exactly the dropped release's
//! unique blobs and the blobs of deleted manifests; kept and pushed
//! images still pull and verify; a dry run lists the same set and
//! changes nothing; kill -9 at many points leaves every kept blob whole
//! and a rerun finishes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use airlift_appliance::ReleaseId;
use airlift_firstboot::services::releases::{Release, ReleasesState, Source};
use airlift_integration::firstboot::{
    assert_blobs_whole, creds, files_under, ServeConfig, Server, TOKEN,
};
use airlift_integration::images::{write_layout, MadeImage, TestImage};
use airlift_integration::tools::{binary, require, run_ok};
use airlift_oci::Digest;

const SIZE: usize = 40_000;

/// A release written into `data` as host0 keeps it.
struct Rel {
    id: ReleaseId,
    made: Vec<MadeImage>,
}

/// gzip layers: skopeo pushes them unchanged, so digests are the layout's.
fn random(ref_name: &str, seed: u64) -> TestImage {
    TestImage {
        gzip: true,
        ..TestImage::random(ref_name, seed, SIZE)
    }
}

fn image(name: &str, seed: u64) -> TestImage {
    random(&format!("quay.io/demo/{name}:1"), seed)
}

fn reach(m: &MadeImage) -> BTreeSet<Digest> {
    let mut s: BTreeSet<Digest> = m.blobs.iter().cloned().collect();
    s.insert(m.manifest.digest.clone());
    s
}

fn blob_path(data: &Path, d: &Digest) -> PathBuf {
    data.join("registry/blobs")
        .join(d.algorithm().as_str())
        .join(d.hex())
}

/// Write `images` as release `version`: its blobs into the registry's
/// data folder, its layout into `DATA/releases/<hex>/`.
fn release(data: &Path, version: &str, images: &[TestImage]) -> Rel {
    let src = data.with_file_name(format!("src-{version}"));
    let made = write_layout(&src, images).unwrap();
    let blobs = data.join("registry/blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    for f in std::fs::read_dir(src.join("blobs/sha256")).unwrap() {
        let f = f.unwrap();
        let to = blobs.join(f.file_name());
        if !to.exists() {
            std::fs::copy(f.path(), to).unwrap();
        }
    }
    let index = std::fs::read(src.join("index.json")).unwrap();
    let id = ReleaseId {
        name: "demo".into(),
        version: version.into(),
        bundle: airlift_appliance::release::bundle_id(&index),
    };
    let dir = data.join("releases").join(id.bundle.hex());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(src.join("oci-layout"), dir.join("oci-layout")).unwrap();
    std::fs::write(dir.join("index.json"), &index).unwrap();
    std::fs::write(dir.join("bundle.json"), b"{}\n").unwrap();
    std::os::unix::fs::symlink("../../registry/blobs", dir.join("blobs")).unwrap();
    Rel { id, made }
}

fn save_state(data: &Path, rels: &[&Rel], current: &Rel) {
    let mut s = ReleasesState::default();
    for r in rels {
        s.add(Release {
            id: r.id.clone(),
            images: r.made.len() as u64,
            blobs: 0,
            bytes: 0,
            loaded_at: "2026-12-01T00:00:00Z".into(),
            source: Source::Media,
            base: None,
        });
    }
    s.set_current(&current.id.bundle).unwrap();
    s.save(data).unwrap();
}

/// `airlift-firstboot gc --offline --grace-secs 0 --keep 1 --json [extra]`.
fn gc(data: &Path, extra: &[&str]) -> (serde_json::Value, String) {
    let out = Command::new(binary("airlift-firstboot"))
        .args([
            "gc",
            "--offline",
            "--grace-secs",
            "0",
            "--keep",
            "1",
            "--json",
        ])
        .arg("--data")
        .arg(data)
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "gc failed: {stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

fn listed(report: &serde_json::Value) -> BTreeSet<Digest> {
    report["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["digest"].as_str().unwrap().parse().unwrap())
        .collect()
}

fn skopeo() -> PathBuf {
    require("skopeo", "skopeo")
}

/// Push with skopeo; the registry must hold the layout's manifest digest.
fn push(srv: &Server, layout: &Path, to: &str, made: &MadeImage) {
    run_ok(Command::new(skopeo()).args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds(),
        &format!("oci:{}:1.0", layout.display()),
        &format!("docker://{}/{to}", srv.host()),
    ]));
    let (repo, tag) = to.rsplit_once(':').unwrap();
    let r = srv.request(
        "HEAD",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("Accept", &made.manifest.media_type)],
        b"",
    );
    let want = made.manifest.digest.to_string();
    assert_eq!(r.header("docker-content-digest"), Some(want.as_str()));
}

/// Pull `reference` into a fresh layout (skopeo verifies each digest).
fn pull(srv: &Server, reference: &str, into: &Path) {
    run_ok(Command::new(skopeo()).args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/{reference}", srv.host()),
        &format!("oci:{}:x", into.display()),
    ]));
}

fn serve(data: &Path, layer: &Path) -> Server {
    Server::start(&ServeConfig {
        data: data.join("registry"),
        layers: vec![layer.to_path_buf()],
        push_token: true,
        allow_delete: true,
        ..ServeConfig::default()
    })
}

fn pushed_layout(tmp: &Path, name: &str, seed: u64) -> (PathBuf, MadeImage) {
    let dir = tmp.join(format!("push-{name}"));
    let made = write_layout(&dir, &[random("1.0", seed)])
        .unwrap()
        .remove(0);
    (dir, made)
}

#[test]
fn gc_keeps_the_kept_release_and_pushed_images_and_frees_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let r1 = release(
        &data,
        "1.0",
        &[image("a", 1), image("b", 2), image("d", 3), image("e", 4)],
    );
    let r2 = release(&data, "2.0", &[image("a", 1), image("c", 5)]);
    assert_eq!(
        r1.made[0].manifest.digest, r2.made[0].manifest.digest,
        "image a must be shared by both releases for this test"
    );
    save_state(&data, &[&r1, &r2], &r2);
    let r2_dir = data.join("releases").join(r2.id.bundle.hex());
    let r1_dir = data.join("releases").join(r1.id.bundle.hex());

    // Pushed: a copy of release 1's b, p, x (in two repositories, deleted
    // from one) and y (deleted).
    let mut srv = serve(&data, &r2_dir);
    let (b_src, b) = pushed_layout(tmp.path(), "b", 2);
    assert_eq!(b.manifest.digest, r1.made[1].manifest.digest);
    push(&srv, &b_src, "pushed/b:1.0", &b);
    let (p_src, p) = pushed_layout(tmp.path(), "p", 6);
    push(&srv, &p_src, "pushed/p:1.0", &p);
    let (x_src, x) = pushed_layout(tmp.path(), "x", 7);
    push(&srv, &x_src, "pushed/x1:1.0", &x);
    push(&srv, &x_src, "pushed/x2:1.0", &x);
    let (y_src, y) = pushed_layout(tmp.path(), "y", 8);
    push(&srv, &y_src, "pushed/y:1.0", &y);
    let auth = format!("Bearer {TOKEN}");
    for (repo, m) in [("pushed/x1", &x), ("pushed/y", &y)] {
        let r = srv.request(
            "DELETE",
            &format!("/v2/{repo}/manifests/{}", m.manifest.digest),
            &[("Authorization", &auth)],
            b"",
        );
        assert_eq!(
            r.status,
            202,
            "deleting {repo}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    // --offline refuses while host0's port answers.
    let config = tmp.path().join("appliance.json");
    let file = airlift_integration::host0::appliance_file(srv.addr.port(), &[]);
    std::fs::write(&config, serde_json::to_vec(&file).unwrap()).unwrap();
    let out = Command::new(binary("airlift-firstboot"))
        .args(["gc", "--offline", "--grace-secs", "0", "--keep", "1"])
        .arg("--config")
        .arg(&config)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("stop it first"),
        "{err}"
    );
    srv.kill9();

    let mut want: BTreeSet<Digest> = reach(&r1.made[2]);
    want.extend(reach(&r1.made[3]));
    want.extend(reach(&y));
    let before = files_under(&data);
    let state_before = std::fs::read(data.join("releases/state.json")).unwrap();

    // A dry run lists exactly that and changes nothing.
    let (dry, _) = gc(&data, &["--dry-run"]);
    assert_eq!(listed(&dry), want, "{dry:#}");
    assert_eq!(dry["dryRun"], true);
    assert_eq!(
        dry["releasesDropped"],
        serde_json::json!([r1.id.to_string()])
    );
    let sizes: u64 = want
        .iter()
        .map(|d| std::fs::metadata(blob_path(&data, d)).unwrap().len())
        .sum();
    assert_eq!(dry["bytes"], sizes);
    assert_eq!(dry["blobCount"], want.len());
    for b in dry["blobs"].as_array().unwrap() {
        let d: Digest = b["digest"].as_str().unwrap().parse().unwrap();
        let from = if reach(&y).contains(&d) {
            serde_json::json!([])
        } else {
            serde_json::json!([r1.id.to_string()])
        };
        assert_eq!(b["releases"], from, "{b}");
    }
    assert_eq!(files_under(&data), before, "the dry run changed files");
    assert_eq!(
        std::fs::read(data.join("releases/state.json")).unwrap(),
        state_before
    );

    // The run removes the same set, forgets release 1, keeps the rest.
    let (done, stderr) = gc(&data, &[]);
    assert_eq!(listed(&done), want, "{done:#}");
    assert!(
        stderr.contains(&format!("AIRLIFT-GC freed {} blobs {sizes}", want.len())),
        "{stderr}"
    );
    let state = ReleasesState::load(&data).unwrap();
    assert_eq!(state.names(), vec![r2.id.to_string()]);
    assert!(!r1_dir.exists() && r2_dir.join("index.json").is_file());
    for f in before.iter().filter(|f| f.starts_with("registry/blobs/")) {
        let d: Digest = f["registry/blobs/".len()..]
            .replacen('/', ":", 1)
            .parse()
            .unwrap();
        assert_eq!(data.join(f).exists(), !want.contains(&d), "{f}");
    }
    assert_blobs_whole(&data.join("registry"));

    // Every kept and pushed image still pulls and verifies.
    let srv = serve(&data, &r2_dir);
    for (i, reference) in [
        "quay.io/demo/a:1",
        "quay.io/demo/c:1",
        "pushed/b:1.0",
        "pushed/p:1.0",
        "pushed/x2:1.0",
    ]
    .iter()
    .enumerate()
    {
        pull(&srv, reference, &tmp.path().join(format!("pulled-{i}")));
    }

    // A rerun finds nothing more.
    let (again, _) = gc(&data, &[]);
    assert_eq!(again["blobCount"], 0, "{again:#}");
}

/// Run `gc --offline` on a copy of `template`, pausing `pause_ms` per
/// step, killed after `kill_ms`; true if it was killed before it ended.
fn killed_run(work: &Path, kill_ms: u64) -> bool {
    let mut child = Command::new(binary("airlift-firstboot"))
        .args(["gc", "--offline", "--grace-secs", "0", "--keep", "1"])
        .arg("--data")
        .arg(work)
        .env("AIRLIFT_GC_TEST_PAUSE_MS", "30")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(kill_ms));
    let _ = child.kill();
    let status = child.wait().unwrap();
    !status.success()
}

#[test]
fn gc_offline_killed_anywhere_keeps_every_kept_blob_and_a_rerun_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let template = tmp.path().join("data");
    let r1 = release(
        &template,
        "1.0",
        &[
            image("a", 1),
            image("b", 2),
            image("d", 3),
            image("e", 4),
            image("f", 9),
        ],
    );
    let r2 = release(&template, "2.0", &[image("a", 1), image("c", 5)]);
    save_state(&template, &[&r1, &r2], &r2);
    // b is pushed too (its metadata marker, as the registry writes it).
    let marker = template
        .join("registry/repositories/pushed/b/_manifests/sha256")
        .join(r1.made[1].manifest.digest.hex());
    std::fs::create_dir_all(marker.parent().unwrap()).unwrap();
    std::fs::write(&marker, &r1.made[1].manifest.media_type).unwrap();

    let mut kept: BTreeSet<Digest> = reach(&r2.made[0]);
    kept.extend(reach(&r2.made[1]));
    kept.extend(reach(&r1.made[1]));
    let mut doomed: BTreeSet<Digest> = BTreeSet::new();
    for m in &r1.made[2..] {
        doomed.extend(reach(m));
    }
    let mut interrupted = 0;
    let mut work = PathBuf::new();
    for i in 0..20u64 {
        work = tmp.path().join(format!("run-{i}"));
        run_ok(Command::new("cp").arg("-a").arg(&template).arg(&work));
        let kill_ms = (i * 53) % 20 * 20;
        if killed_run(&work, kill_ms) {
            interrupted += 1;
        }
        for d in &kept {
            assert!(
                blob_path(&work, d).is_file(),
                "run {i}: kept blob {d} is gone"
            );
        }
        assert_blobs_whole(&work.join("registry"));
        let state = ReleasesState::load(&work).unwrap();
        assert_eq!(state.current.as_ref(), Some(&r2.id.bundle), "run {i}");
        let r2_index = work
            .join("releases")
            .join(r2.id.bundle.hex())
            .join("index.json");
        assert!(r2_index.is_file(), "run {i}");
        let left = doomed
            .iter()
            .filter(|d| blob_path(&work, d).exists())
            .count();
        eprintln!(
            "run {i}: killed at {kill_ms} ms, {left} of {} doomed blobs left",
            doomed.len()
        );

        let (_, _) = gc(&work, &[]);
        for d in &doomed {
            assert!(
                !blob_path(&work, d).exists(),
                "run {i}: {d} survived the rerun"
            );
        }
        for d in &kept {
            assert!(
                blob_path(&work, d).is_file(),
                "run {i}: kept blob {d} is gone"
            );
        }
        assert_eq!(
            ReleasesState::load(&work).unwrap().names(),
            vec![r2.id.to_string()]
        );
        assert!(
            !work.join("releases").join(r1.id.bundle.hex()).exists(),
            "run {i}"
        );
    }
    assert!(interrupted > 0, "no run was interrupted");
    eprintln!("{interrupted} of 20 runs were killed before they ended");

    let srv = serve(&work, &work.join("releases").join(r2.id.bundle.hex()));
    pull(&srv, "quay.io/demo/a:1", &tmp.path().join("pulled-a"));
    pull(&srv, "quay.io/demo/c:1", &tmp.path().join("pulled-c"));
}
