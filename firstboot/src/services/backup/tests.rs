//! Round trips and refusals on folders built by hand: a host0 state
//! folder with a release dir, pushed images, a referrer, TLS files and
//! the admin token; backed up, read back into a fresh folder, installed.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use airlift_appliance::ReleaseId;
use airlift_oci::documents::media;
use airlift_oci::{Descriptor, Index, Layout};

use super::*;

/// The admin token's file in the state folder (`api::admin::TOKEN_FILE`).
const TOKEN: &str = "admin-token";
use crate::services::registry::store::meta::Meta;
use crate::services::releases::{state, Release, ReleasesState, Source};

/// Put a one-layer image in `reg`; returns its manifest descriptor.
fn image(reg: &Layout, layer: &[u8], subject: Option<&Descriptor>) -> Descriptor {
    let (l, ls) = reg.put_blob(layer, None).unwrap();
    let (c, cs) = reg.put_blob(b"{}", None).unwrap();
    let mut m = serde_json::json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "digest": c, "size": cs},
        "layers": [{"mediaType": media::OCI_LAYER_TAR, "digest": l, "size": ls}],
    });
    if let Some(s) = subject {
        m["subject"] = serde_json::to_value(s).unwrap();
    }
    let (d, size) = reg
        .put_blob(&serde_json::to_vec(&m).unwrap(), None)
        .unwrap();
    Descriptor::new(media::OCI_MANIFEST, d, size)
}

/// A host0 state folder: release "demo 1" (one image, its blobs in the
/// registry), one pushed image sharing the release's config blob, a
/// referrer of it, TLS files and the admin token.
fn host0(data: &Path) -> (Descriptor, Descriptor, ReleaseId) {
    let reg = Layout::create(&data.join("registry")).unwrap();
    let bundled = image(&reg, &[7u8; 5000], None);
    let mut index = Index::empty();
    index.manifests.push(bundled.clone());
    let index_json = serde_json::to_vec(&index).unwrap();
    let id = ReleaseId {
        name: "demo".into(),
        version: "1".into(),
        bundle: airlift_appliance::release::bundle_id(&index_json),
    };
    release_dir(data, &id, &index_json);
    let pushed = image(&reg, b"pushed layer", None);
    let referrer = image(&reg, b"signature", Some(&pushed));
    let meta = Meta::new(&data.join("registry/repositories")).unwrap();
    for m in [&pushed, &referrer] {
        meta.put_manifest("team/app", &m.digest, &m.media_type)
            .unwrap();
    }
    meta.put_tag("team/app", "1.0", &pushed.digest).unwrap();
    meta.put_referrer("team/app", &pushed.digest, &referrer)
        .unwrap();
    let tls = data.join("tls");
    airlift_oci::atomic::write_with_mode(&tls.join("ca.key"), b"CA KEY", 0o600).unwrap();
    airlift_oci::atomic::write_with_mode(&tls.join("ca.crt"), b"CA CERT", 0o644).unwrap();
    airlift_oci::atomic::write_with_mode(&data.join(TOKEN), b"admin token\n", 0o600).unwrap();
    (pushed, referrer, id)
}

fn release_dir(data: &Path, id: &ReleaseId, index_json: &[u8]) {
    let dir = state::release_dir(data, &id.bundle);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.json"), index_json).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(dir.join("bundle.json"), b"{}").unwrap();
    std::os::unix::fs::symlink("../../registry/blobs", dir.join("blobs")).unwrap();
    let mut s = ReleasesState::load(data).unwrap();
    s.add(Release {
        id: id.clone(),
        images: 1,
        blobs: 3,
        bytes: 5000,
        loaded_at: "2026-12-07T00:00:00Z".into(),
        source: Source::Media,
        base: None,
    });
    s.set_current(&id.bundle).unwrap();
    s.save(data).unwrap();
}

fn backup(data: &Path, out: &Path) -> plan::Plan {
    let inputs = collect::collect(
        data,
        &data.join(TOKEN),
        "demo",
        "2026-12-07T00:00:00Z",
        None,
    )
    .unwrap();
    let p = plan::plan(&inputs, "test").unwrap();
    write::write(out, &data.join("registry"), &p).unwrap();
    p
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn accept(_: &BackupInfo) -> anyhow::Result<()> {
    Ok(())
}

/// A fresh host0 after first boot: the release's blobs and dir present.
fn fresh(t: &Path, from: &Path) -> PathBuf {
    let fresh = t.join("fresh");
    let reg = Layout::create(&fresh.join("registry")).unwrap();
    let s = ReleasesState::load(from).unwrap();
    let id = s.releases[0].id.clone();
    let index = std::fs::read(state::release_dir(from, &id.bundle).join("index.json")).unwrap();
    let idx: Index = serde_json::from_slice(&index).unwrap();
    for d in reach::reach(&from.join("registry"), &idx.manifests)
        .unwrap()
        .present
        .keys()
    {
        let bytes = std::fs::read(reach::blob_path(&from.join("registry"), d)).unwrap();
        reg.put_blob(&bytes, Some(d)).unwrap();
    }
    release_dir(&fresh, &id, &index);
    fresh
}

#[test]
fn backs_up_pushed_content_and_restores_it_onto_a_fresh_host0() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    let (pushed, referrer, id) = host0(&data);
    let out = t.path().join("b.tar");
    let p = backup(&data, &out);
    assert_eq!(mode(&out), 0o600);
    // Pushed: manifest and own layer; referrer: manifest and layer. The
    // config `{}` both share with the release is left out.
    assert_eq!(p.info.blobs.len(), 4, "{:?}", p.info.blobs);
    assert_eq!((p.info.left_out_blobs, p.info.left_out_bytes), (1, 2));
    assert_eq!(p.info.releases, vec![id.clone()]);
    // Same content, same bytes.
    let again = t.path().join("again.tar");
    backup(&data, &again);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());

    let fresh = fresh(t.path(), &data);
    let r = read::read(&out, &fresh.join("registry"), &accept).unwrap();
    assert_eq!(r.blobs, 4);
    let done = install::install(&fresh, &fresh.join(TOKEN), &r).unwrap();
    assert_eq!(done.releases, vec![id.clone()]);
    assert!(done.need_media.is_empty());
    let repos = Meta::new(&fresh.join("registry/repositories"))
        .unwrap()
        .load(&|_| Some(1))
        .unwrap();
    assert_eq!(repos["team/app"].tags["1.0"], pushed.digest);
    assert!(repos["team/app"].referrers[&pushed.digest].contains_key(&referrer.digest));
    for d in [&pushed.digest, &referrer.digest] {
        assert!(reach::blob_path(&fresh.join("registry"), d).is_file());
    }
    assert_eq!(std::fs::read(fresh.join("tls/ca.key")).unwrap(), b"CA KEY");
    assert_eq!(mode(&fresh.join("tls/ca.key")), 0o600);
    assert_eq!(mode(&fresh.join("tls/ca.crt")), 0o644);
    assert_eq!(mode(&fresh.join("admin-token")), 0o600);
    assert_eq!(std::fs::read(fresh.join(TOKEN)).unwrap(), b"admin token\n");
    assert_eq!(
        ReleasesState::load(&fresh).unwrap().current,
        Some(id.bundle)
    );
}

#[test]
fn a_release_whose_blobs_are_absent_is_reported_and_left_out() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    let (_, _, id1) = host0(&data);
    // Release 2: an image whose blobs the fresh host0 will not have.
    let reg = Layout::open(&data.join("registry")).unwrap();
    let mut index = Index::empty();
    index.manifests.push(image(&reg, &[9u8; 7000], None));
    let index_json = serde_json::to_vec(&index).unwrap();
    let id2 = ReleaseId {
        name: "demo".into(),
        version: "2".into(),
        bundle: airlift_appliance::release::bundle_id(&index_json),
    };
    release_dir(&data, &id2, &index_json);
    let out = t.path().join("b.tar");
    let p = backup(&data, &out);
    assert_eq!(p.info.releases.len(), 2);
    let fresh = fresh(t.path(), &data);
    let r = read::read(&out, &fresh.join("registry"), &accept).unwrap();
    let done = install::install(&fresh, &fresh.join(TOKEN), &r).unwrap();
    assert_eq!(done.releases, vec![id1.clone()]);
    assert_eq!(done.need_media.len(), 1);
    assert_eq!(done.need_media[0].0, id2);
    let s = ReleasesState::load(&fresh).unwrap();
    assert_eq!(s.names().len(), 1);
    assert_eq!(
        s.current,
        Some(id1.bundle),
        "release 2 was current but is not held"
    );
    assert!(!state::release_dir(&fresh, &id2.bundle).exists());
}

/// Nothing but verified blobs lands in `fresh`: no metadata, no state,
/// no private file.
fn assert_nothing_installed(fresh: &Path) {
    assert!(!fresh.join("registry/repositories").exists());
    assert!(!fresh.join("tls").exists());
    assert!(!fresh.join("admin-token").exists());
    assert!(!fresh.join("releases").exists());
}

fn refused(archive: &Path, t: &Path) -> String {
    let fresh = t.join(format!(
        "fresh-{}",
        archive.file_name().unwrap().to_string_lossy()
    ));
    let e = read::read(archive, &fresh.join("registry"), &accept)
        .map(|_| ())
        .unwrap_err();
    assert_nothing_installed(&fresh);
    format!("{e:#}")
}

#[test]
fn damaged_archives_are_refused_naming_the_entry() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    host0(&data);
    let out = t.path().join("b.tar");
    let p = backup(&data, &out);
    let bytes = std::fs::read(&out).unwrap();
    // Truncated in the middle of the last blob, and at an entry boundary.
    let cut = t.path().join("cut.tar");
    std::fs::write(&cut, &bytes[..bytes.len() - 1024 - 600]).unwrap();
    let e = refused(&cut, t.path());
    assert!(e.contains("truncated") || e.contains("damaged"), "{e}");
    // A flipped byte in a blob: find the blob's content in the archive.
    let last = p.entries.last().unwrap();
    let plan::Body::Blob(b) = &last.body else {
        panic!()
    };
    let content = std::fs::read(reach::blob_path(&data.join("registry"), &b.digest)).unwrap();
    let at = bytes
        .windows(content.len())
        .position(|w| w == content.as_slice())
        .unwrap();
    // Cut at the last entry's header: a whole archive of fewer entries.
    let boundary = t.path().join("boundary.tar");
    std::fs::write(&boundary, &bytes[..at - 512]).unwrap();
    let e = refused(&boundary, t.path());
    assert!(e.contains(&last.path) && e.contains("truncated"), "{e}");
    let mut flipped = bytes.clone();
    flipped[at] ^= 0xff;
    let flip = t.path().join("flip.tar");
    std::fs::write(&flip, &flipped).unwrap();
    let e = refused(&flip, t.path());
    assert!(
        e.contains(&last.path) && e.contains("digest mismatch"),
        "{e}"
    );
    // Hostile entries after a valid info.
    let info = match &p.entries[0].body {
        plan::Body::Bytes(b) => b.clone(),
        plan::Body::Blob(_) => panic!(),
    };
    for (name, kind) in [
        ("../x", tar::EntryType::Regular),
        ("/etc/x", tar::EntryType::Regular),
        ("airlift/private/admin-token", tar::EntryType::Symlink),
    ] {
        let hostile = t.path().join(format!("hostile-{}.tar", name.len()));
        let mut tb = tar::Builder::new(std::fs::File::create(&hostile).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(info.len() as u64);
        h.set_mode(0o644);
        tb.append_data(&mut h, entry::INFO, info.as_slice())
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(0);
        // Write the raw name: the tar crate refuses `..` itself.
        let field = &mut h.as_old_mut().name;
        field[..name.len()].copy_from_slice(name.as_bytes());
        if kind == tar::EntryType::Symlink {
            h.set_link_name("/etc/shadow").unwrap();
        }
        h.set_cksum();
        tb.append(&h, std::io::empty()).unwrap();
        tb.finish().unwrap();
        drop(tb);
        let e = refused(&hostile, t.path());
        assert!(
            e.contains(&format!("{name:?}")) && e.contains("refused"),
            "{name}: {e}"
        );
        assert!(!t.path().join("x").exists() && !Path::new("/etc/x").exists());
    }
}

#[test]
fn a_refused_backup_writes_nothing_at_all() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    host0(&data);
    let out = t.path().join("b.tar");
    backup(&data, &out);
    let fresh = t.path().join("fresh");
    let e = read::read(&out, &fresh.join("registry"), &|i: &BackupInfo| {
        anyhow::bail!("another appliance's backup: it is for {:?}", i.appliance)
    })
    .unwrap_err();
    assert!(e.to_string().contains("\"demo\""), "{e}");
    assert!(!fresh.exists(), "the check runs before anything is written");
}
