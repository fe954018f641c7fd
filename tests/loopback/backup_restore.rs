//! `airlift-firstboot backup` and `restore` against a real registry
//! folder: a release dir and state made by hand (as first boot leaves
//! them), images pushed with skopeo and a referrer by raw HTTP while
//! `serve` runs, a backup taken while it serves, then restored into a
//! fresh state folder holding only the release (as after a fresh first
//! boot): the pushed images pull and verify, tags and referrers match.
//! Refusals: another appliance, pushed content without --force, damaged
//! archives. The timer units are checked with systemd-analyze.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use airlift_appliance::ReleaseId;
use airlift_firstboot::services::releases::{state, Release, ReleasesState, Source};
use airlift_integration::firstboot::{creds, files_under, ServeConfig, Server, TOKEN};
use airlift_integration::images::{write_layout, Layer, TestImage};
use airlift_integration::tools::{binary, free_port, require, run_ok, workspace_root};
use airlift_oci::documents::media;
use airlift_oci::{Digest, Index, Layout};

const NAME: &str = "backup-test";

fn skopeo() -> PathBuf {
    require("skopeo", "skopeo")
}

fn firstboot(args: &[&str]) -> Output {
    Command::new(binary("airlift-firstboot"))
        .args(args)
        .output()
        .expect("running airlift-firstboot")
}

/// `restore ARCHIVE --config CONFIG --data DATA --no-restart EXTRA…`.
fn restore(archive: &Path, config: &Path, data: &str, extra: &[&str]) -> Output {
    let (a, c) = (archive.to_str().unwrap(), config.to_str().unwrap());
    let mut args = vec!["restore", a, "--config", c, "--data", data, "--no-restart"];
    args.extend(extra);
    firstboot(&args)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn appliance(dir: &Path, name: &str) -> PathBuf {
    let mut file = airlift_integration::host0::appliance_file(free_port(), &[]);
    file.name = name.into();
    let p = dir.join(format!("{name}.json"));
    std::fs::write(&p, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
    p
}

/// The release: its layout made locally; its blobs copied into
/// `data/registry`, its dir and state.json written as first boot does.
fn install_release(data: &Path, src: &Path) -> ReleaseId {
    let reg = Layout::create(&data.join("registry")).unwrap();
    let layout = Layout::open(src).unwrap();
    let index_json = std::fs::read(src.join("index.json")).unwrap();
    let index: Index = serde_json::from_slice(&index_json).unwrap();
    for m in &index.manifests {
        for d in layout.reachable(m).unwrap() {
            reg.put_blob(&layout.read_blob(&d.digest).unwrap(), Some(&d.digest))
                .unwrap();
        }
    }
    let id = ReleaseId {
        name: NAME.into(),
        version: "1".into(),
        bundle: airlift_appliance::release::bundle_id(&index_json),
    };
    let dir = state::release_dir(data, &id.bundle);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.json"), &index_json).unwrap();
    std::fs::copy(src.join("oci-layout"), dir.join("oci-layout")).unwrap();
    std::fs::write(dir.join("bundle.json"), b"{}\n").unwrap();
    std::os::unix::fs::symlink("../../registry/blobs", dir.join("blobs")).unwrap();
    let mut s = ReleasesState::default();
    s.add(Release {
        id: id.clone(),
        images: 1,
        blobs: 3,
        bytes: 0,
        loaded_at: "2026-12-07T00:00:00Z".into(),
        source: Source::Media,
        base: None,
    });
    s.set_current(&id.bundle).unwrap();
    s.save(data).unwrap();
    id
}

/// Secrets as a first boot makes them (different on each host0).
fn secrets(data: &Path, which: &str) {
    let w = |p: &str, body: String, mode| {
        airlift_oci::atomic::write_with_mode(&data.join(p), body.as_bytes(), mode).unwrap()
    };
    w("tls/ca.key", format!("{which} CA KEY"), 0o600);
    w("tls/ca.crt", format!("{which} CA CERT"), 0o644);
    w("admin-token", format!("{which}-token\n"), 0o600);
}

/// An image with gzipped layers: skopeo pushes them as they are (it
/// would compress plain tar layers, changing their digests).
fn gz(ref_name: &str, layers: Vec<Layer>) -> TestImage {
    TestImage {
        ref_name: ref_name.into(),
        layers,
        architecture: "amd64".into(),
        gzip: true,
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    files_under(dir)
        .iter()
        .map(|f| std::fs::metadata(dir.join(f)).unwrap().len())
        .sum()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Push a referrer (an artifact whose subject is `subject`) by raw HTTP.
fn push_referrer(srv: &Server, repo: &str, subject: &Digest, subject_size: usize) -> Digest {
    let auth = format!("Bearer {TOKEN}");
    let h = [("Authorization", auth.as_str())];
    for blob in [&b"{}"[..], b"signature bytes"] {
        let d = Digest::sha256_of(blob);
        let r = srv.request(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
            &h,
            blob,
        );
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }
    let m = serde_json::json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "artifactType": "application/vnd.example.signature",
        "config": {"mediaType": media::OCI_EMPTY, "digest": Digest::sha256_of(b"{}"), "size": 2},
        "layers": [{"mediaType": "application/octet-stream",
                    "digest": Digest::sha256_of(b"signature bytes"), "size": 15}],
        "subject": {"mediaType": media::OCI_MANIFEST, "digest": subject, "size": subject_size},
    });
    let bytes = serde_json::to_vec(&m).unwrap();
    let d = Digest::sha256_of(&bytes);
    let ct = [h[0], ("Content-Type", media::OCI_MANIFEST)];
    let r = srv.request("PUT", &format!("/v2/{repo}/manifests/{d}"), &ct, &bytes);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    d
}

fn push(srv: &Server, layout: &Path, tag: &str, dest: &str) {
    run_ok(Command::new(skopeo()).args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds(),
        &format!("oci:{}:{tag}", layout.display()),
        &format!("docker://{}/{dest}", srv.host()),
    ]));
}

fn get(srv: &Server, path: &str) -> serde_json::Value {
    let r = srv.request("GET", path, &[], b"");
    assert_eq!(
        r.status,
        200,
        "{path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    serde_json::from_slice(&r.body).unwrap()
}

/// What the pushed images look like to a client: tags and referrers.
fn view(srv: &Server, app: &Digest) -> (serde_json::Value, serde_json::Value, Vec<String>) {
    let referrers: Vec<String> = get(srv, &format!("/v2/team/app/referrers/{app}"))["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect();
    (
        get(srv, "/v2/team/app/tags/list"),
        get(srv, "/v2/team/tool/tags/list"),
        referrers,
    )
}

#[test]
fn backup_leaves_release_blobs_out_and_restore_brings_pushed_images_back() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let config = appliance(t, NAME);
    // The release: one 2 MB image. Pushed: app (the release's layer plus
    // its own 300 kB) and tool (200 kB) under two tags, and a referrer.
    let base = Layer::Random {
        seed: 1,
        size: 2_000_000,
    };
    let rel_src = t.join("release");
    let rel_made = write_layout(&rel_src, &[gz("base:1", vec![base.clone()])]).unwrap();
    let src = t.join("src");
    let own = |seed, size| Layer::Random { seed, size };
    let app = gz("app", vec![base, own(2, 300_000)]);
    let made = write_layout(&src, &[app, gz("tool", vec![own(3, 200_000)])]).unwrap();
    let data = t.join("data");
    let id = install_release(&data, &rel_src);
    secrets(&data, "old");
    let srv = Server::start(&ServeConfig {
        data: data.join("registry"),
        push_token: true,
        ..ServeConfig::default()
    });
    push(&srv, &src, "app", "team/app:1.0");
    push(&srv, &src, "tool", "team/tool:2");
    push(&srv, &src, "tool", "team/tool:latest");
    let app_digest = made[0].manifest.digest.clone();
    let sig = push_referrer(
        &srv,
        "team/app",
        &app_digest,
        made[0].manifest.size as usize,
    );
    let before = view(&srv, &app_digest);
    assert_eq!(before.2, vec![sig.to_string()]);

    // Backup while serving, into a folder as the timer does.
    let backups = t.join("backups");
    let (c, d) = (config.to_str().unwrap(), data.to_str().unwrap());
    let out = firstboot(&[
        "backup",
        "-o",
        &format!("{}/", backups.display()),
        "--keep-last",
        "7",
        "--config",
        c,
        "--data",
        d,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    println!("backup said:\n{said}");
    assert!(
        said.contains("keep it like a password") && said.contains("3 images"),
        "{said}"
    );
    let archives = files_under(&backups);
    assert_eq!(archives.len(), 1, "{archives:?}");
    assert!(archives[0].starts_with("airlift-backup-") && archives[0].ends_with(".tar"));
    let archive = backups.join(&archives[0]);
    assert_eq!(mode(&archive), 0o600);
    assert_eq!(mode(&backups), 0o700);
    drop(srv);

    // Sizes: the release's 2 MB layer is left out; the pushed bytes are in.
    let size = std::fs::metadata(&archive).unwrap().len();
    let registry_blobs = dir_bytes(&data.join("registry/blobs"));
    let pushed_own = 300_000 + 200_000;
    println!("backup size: archive {size} bytes; registry blob folder {registry_blobs} bytes");
    assert!(
        size > pushed_own && size < pushed_own + 200_000,
        "archive {size} bytes"
    );
    assert!(registry_blobs > 2_000_000 + pushed_own);
    let names: Vec<String> = tar::Archive::new(std::fs::File::open(&archive).unwrap())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names[0], "airlift-backup.json");
    let base_layer = rel_made[0].blobs.last().unwrap();
    assert!(
        made[0].blobs.contains(base_layer),
        "app shares the release's layer"
    );
    assert!(
        !names.contains(&format!("blobs/sha256/{}", base_layer.hex())),
        "{names:?}"
    );
    assert!(names.contains(&format!("blobs/sha256/{}", app_digest.hex())));

    // A fresh host0: first boot loaded the release and made its own secrets.
    let fresh = t.join("fresh");
    install_release(&fresh, &rel_src);
    secrets(&fresh, "new");
    let f = fresh.to_str().unwrap();
    let tool_layer = made[1].blobs.last().unwrap();
    let tool_bytes = Layout::open(&src).unwrap().read_blob(tool_layer).unwrap();
    refusals(t, &archive, f, (tool_layer, &tool_bytes));
    let out = restore(&archive, &config, f, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    println!("restore said:\n{said}");
    assert!(
        said.contains(&format!("release {id}: held")) && said.contains("restart host0"),
        "{said}"
    );
    // Restored secrets replace the fresh ones, 0600.
    assert_eq!(
        std::fs::read_to_string(fresh.join("admin-token")).unwrap(),
        "old-token\n"
    );
    assert_eq!(
        std::fs::read_to_string(fresh.join("tls/ca.key")).unwrap(),
        "old CA KEY"
    );
    assert_eq!(
        (
            mode(&fresh.join("admin-token")),
            mode(&fresh.join("tls/ca.key"))
        ),
        (0o600, 0o600)
    );
    assert_eq!(
        ReleasesState::load(&fresh).unwrap().current,
        Some(id.bundle.clone())
    );
    // Now it holds pushed content: refused without --force, done with it.
    let out = restore(&archive, &config, f, &[]);
    assert!(
        !out.status.success() && text(&out).contains("--force"),
        "{}",
        text(&out)
    );
    let out = restore(&archive, &config, f, &["--force"]);
    assert!(out.status.success(), "{}", text(&out));

    // Served from the restored folder: same tags, referrers, images.
    let srv = Server::start(&ServeConfig {
        data: fresh.join("registry"),
        ..ServeConfig::default()
    });
    assert_eq!(view(&srv, &app_digest), before);
    for (image, repo) in [(&made[0], "team/app:1.0"), (&made[1], "team/tool:latest")] {
        let dir = t.join(format!("pulled-{}", image.ref_name));
        run_ok(Command::new(skopeo()).args([
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{}/{repo}", srv.host()),
            &format!("dir:{}", dir.display()),
        ]));
        let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
        assert_eq!(
            Digest::sha256_of(&manifest),
            image.manifest.digest,
            "{repo}"
        );
        for blob in &image.blobs {
            let bytes = std::fs::read(dir.join(blob.hex())).unwrap();
            assert_eq!(&Digest::sha256_of(&bytes), blob, "{repo}");
        }
    }
}

/// Another appliance's config, and damaged archives: each refused with
/// the reason, and nothing but the release is left in `fresh`. `blob`
/// is a blob the archive carries (digest, content), to damage.
fn refusals(t: &Path, archive: &Path, fresh: &str, blob: (&Digest, &[u8])) {
    let before = files_under(Path::new(fresh));
    let other = appliance(t, "other-appliance");
    let out = restore(archive, &other, fresh, &[]);
    let said = text(&out);
    assert!(
        !out.status.success() && said.contains("another appliance's backup"),
        "{said}"
    );
    let bytes = std::fs::read(archive).unwrap();
    let config = t.join(format!("{NAME}.json"));
    let damaged = |name: &str, body: &[u8], expect: &str| {
        let p = t.join(name);
        std::fs::write(&p, body).unwrap();
        let out = restore(&p, &config, fresh, &[]);
        let said = text(&out);
        assert!(
            !out.status.success() && said.contains(expect),
            "{name}: {said}"
        );
        assert!(
            !Path::new(fresh).join("registry/repositories").exists(),
            "{name}"
        );
    };
    damaged("truncated.tar", &bytes[..bytes.len() / 2], "blobs/sha256/");
    let mut flipped = bytes.clone();
    let at = bytes
        .windows(blob.1.len())
        .position(|w| w == blob.1)
        .unwrap();
    flipped[at + blob.1.len() / 2] ^= 1;
    let entry = format!("entry \"blobs/sha256/{}\" is damaged", blob.0.hex());
    damaged("flipped.tar", &flipped, &entry);
    // A hostile entry after a whole info.
    let info_len = 512
        + bytes[124..136]
            .iter()
            .filter(|b| b.is_ascii_digit())
            .fold(0usize, |n, b| n * 8 + (b - b'0') as usize)
            .div_ceil(512)
            * 512;
    let mut hostile = bytes[..info_len].to_vec();
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..4].copy_from_slice(b"../x");
    h.set_size(0);
    h.set_mode(0o644);
    h.set_cksum();
    hostile.extend_from_slice(h.as_bytes());
    hostile.extend_from_slice(&[0; 1024]);
    damaged("hostile.tar", &hostile, "\"../x\" is refused");
    assert!(!t.join("x").exists());
    // Only inert verified blobs may have been added (also seen through
    // the release dir's `blobs` link).
    let after: Vec<String> = files_under(Path::new(fresh))
        .into_iter()
        .filter(|f| !f.contains("blobs/sha256/"))
        .collect();
    let before: Vec<String> = before
        .into_iter()
        .filter(|f| !f.contains("blobs/sha256/"))
        .collect();
    assert_eq!(after, before);
}

#[test]
fn the_backup_timer_is_off_by_default_and_its_units_verify() {
    let units = workspace_root().join("overlays/base/etc/systemd/system");
    let timer = std::fs::read_to_string(units.join("airlift-backup.timer")).unwrap();
    for line in [
        "OnCalendar=daily",
        "Persistent=true",
        "WantedBy=timers.target",
    ] {
        assert!(timer.lines().any(|l| l == line), "{line}");
    }
    for wants in ["timers.target.wants", "multi-user.target.wants"] {
        assert!(
            !units.join(wants).join("airlift-backup.timer").exists(),
            "enabled in {wants}"
        );
        assert!(
            !units.join(wants).join("airlift-backup.service").exists(),
            "enabled in {wants}"
        );
    }
    let service = std::fs::read_to_string(units.join("airlift-backup.service")).unwrap();
    let exec = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    assert_eq!(
        exec,
        "/usr/bin/airlift-firstboot backup -o /var/lib/airlift/backups/ --keep-last 7"
    );
    // systemd-analyze checks the binary exists: point it at a stand-in.
    let analyze = require("systemd-analyze", "systemd");
    let tmp = tempfile::tempdir().unwrap();
    let stub = tmp.path().join("airlift-firstboot");
    std::fs::write(&stub, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let svc = tmp.path().join("airlift-backup.service");
    std::fs::write(
        &svc,
        service.replace("/usr/bin/airlift-firstboot", stub.to_str().unwrap()),
    )
    .unwrap();
    std::fs::write(tmp.path().join("airlift-backup.timer"), &timer).unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .args([&svc, &tmp.path().join("airlift-backup.timer")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}
