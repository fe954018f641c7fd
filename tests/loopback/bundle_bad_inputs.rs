//! Bad inputs to `airlift bundle`: each fails with an error naming what
//! is wrong, and the output folder (a previous, good bundle) is left
//! exactly as it was, with no temp folders beside it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use airlift_builder::bundler::{write_bundle, BundleOptions};
use airlift_builder::sources::{ImageRequest, SourceSpec};
use airlift_integration::images::{write_layout, Layer, MadeImage, TestImage};
use airlift_integration::tools::{binary, run_ok};
use airlift_oci::{Digest, Layout};

fn opts() -> BundleOptions {
    BundleOptions {
        name: "test".into(),
        version: "1".into(),
        concurrency: 2,
        progress: false,
        ..BundleOptions::default()
    }
}

/// A source layout with one image, and a good bundle already at `out/bundle`.
struct Fixture {
    work: tempfile::TempDir,
    src: PathBuf,
    made: MadeImage,
    out: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        let made = write_layout(
            &src,
            &[TestImage {
                ref_name: "1.0".into(),
                layers: vec![Layer::Random {
                    seed: 11,
                    size: 30_000,
                }],
                architecture: "amd64".into(),
                gzip: false,
            }],
        )
        .unwrap()
        .remove(0);
        let out = work.path().join("out").join("bundle");
        fs::create_dir(work.path().join("out")).unwrap();
        // A previous good bundle from a different image.
        let prev = work.path().join("prev");
        write_layout(
            &prev,
            &[TestImage {
                ref_name: "old".into(),
                layers: vec![Layer::Random {
                    seed: 12,
                    size: 1_000,
                }],
                architecture: "amd64".into(),
                gzip: false,
            }],
        )
        .unwrap();
        write_bundle(
            &[req(SourceSpec::OciLayout {
                path: prev,
                reference: None,
            })],
            &out,
            &opts(),
        )
        .unwrap();
        Fixture {
            work,
            src,
            made,
            out,
        }
    }

    /// Run `spec` and check it fails with every `needle` in the message
    /// and leaves the output untouched.
    fn fails(&self, spec: SourceSpec, needles: &[&str]) -> String {
        let before = snapshot(&self.out);
        let err = write_bundle(&[req(spec)], &self.out, &opts()).unwrap_err();
        let msg = format!("{err:#}");
        for n in needles {
            assert!(msg.contains(n), "error lacks {n:?}: {msg}");
        }
        assert_eq!(snapshot(&self.out), before, "the output changed");
        let beside: Vec<_> = fs::read_dir(self.out.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(beside, vec!["bundle"], "temp folders left behind");
        msg
    }

    fn layer(&self) -> Digest {
        self.made.blobs[1].clone()
    }

    fn archive_with(&self, extra: impl FnOnce(&mut tar::Builder<fs::File>)) -> PathBuf {
        let path = self.work.path().join("bad.tar");
        let mut b = tar::Builder::new(fs::File::create(&path).unwrap());
        extra(&mut b);
        b.append_dir_all(".", &self.src).unwrap();
        b.finish().unwrap();
        path
    }
}

fn req(source: SourceSpec) -> ImageRequest {
    ImageRequest {
        reference: "quay.io/org/app:1.0".parse().unwrap(),
        source,
        platforms: vec![],
    }
}

/// Every file under `dir` with its content digest.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Digest> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), Digest::sha256_of(&fs::read(&p).unwrap()));
            }
        }
    }
    assert!(!out.is_empty());
    out
}

/// A raw tar member with any name, type and link target (the tar crate's
/// own setters refuse unsafe names, which is what this test needs).
fn raw_member(
    b: &mut tar::Builder<fs::File>,
    name: &str,
    kind: tar::EntryType,
    link: &str,
    data: &[u8],
) {
    let mut h = tar::Header::new_old();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

#[test]
fn flipped_byte_in_a_layout_blob_names_digest_and_source() {
    let f = Fixture::new();
    let layer = f.layer();
    let path = f.src.join(layer.blob_path());
    let mut bytes = fs::read(&path).unwrap();
    bytes[1000] ^= 0x01;
    fs::write(&path, bytes).unwrap();
    let src = f.src.display().to_string();
    f.fails(
        SourceSpec::OciLayout {
            path: f.src.clone(),
            reference: Some("1.0".into()),
        },
        &[&layer.to_string(), &src, "quay.io/org/app:1.0", "mismatch"],
    );
}

#[test]
fn index_digest_that_does_not_match_the_manifest() {
    let f = Fixture::new();
    // index.json names a digest whose blob holds the real manifest's bytes.
    let layout = Layout::open(&f.src).unwrap();
    let real = layout.read_blob(&f.made.manifest.digest).unwrap();
    let fake = Digest::sha256_of(b"not the manifest");
    fs::write(f.src.join(fake.blob_path()), &real).unwrap();
    let mut index = layout.read_index().unwrap();
    index.manifests[0].digest = fake.clone();
    layout.write_index(&index).unwrap();
    f.fails(
        SourceSpec::OciLayout {
            path: f.src.clone(),
            reference: None,
        },
        &[&fake.to_string(), "failed verification"],
    );
}

#[test]
fn truncated_archive() {
    let f = Fixture::new();
    let tar = f.archive_with(|_| {});
    let len = fs::metadata(&tar).unwrap().len();
    let file = fs::OpenOptions::new().write(true).open(&tar).unwrap();
    file.set_len(len / 2).unwrap();
    let name = tar.display().to_string();
    f.fails(
        SourceSpec::OciArchive {
            path: tar,
            reference: None,
        },
        &[&name, "truncated"],
    );

    // A docker-archive made by skopeo, cut inside its layer.
    let docker = f.work.path().join("docker.tar");
    run_ok(
        Command::new(airlift_integration::tools::require("skopeo", "skopeo"))
            .args(["copy", "--quiet"])
            .arg(format!("oci:{}:1.0", f.src.display()))
            .arg(format!(
                "docker-archive:{}:quay.io/org/app:1.0",
                docker.display()
            )),
    );
    let len = fs::metadata(&docker).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&docker)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let name = docker.display().to_string();
    f.fails(
        SourceSpec::DockerArchive {
            path: docker,
            reference: None,
        },
        &[&name, "truncated"],
    );
}

#[test]
fn archive_members_that_escape() {
    let f = Fixture::new();
    let cases: [(&str, tar::EntryType, &str, &str); 4] = [
        ("../evil", tar::EntryType::Regular, "", "`..`"),
        ("/etc/evil", tar::EntryType::Regular, "", "absolute"),
        (
            "blobs/link",
            tar::EntryType::Symlink,
            "../../../etc/passwd",
            "outside the archive",
        ),
        (
            "hard",
            tar::EntryType::Link,
            "/etc/shadow",
            "outside the archive",
        ),
    ];
    for (name, kind, link, needle) in cases {
        let tar = f.archive_with(|b| raw_member(b, name, kind, link, b"x"));
        let msg = f.fails(
            SourceSpec::OciArchive {
                path: tar.clone(),
                reference: None,
            },
            &[needle, &tar.display().to_string()],
        );
        assert!(msg.contains(name), "{msg}");
    }
    let tar = f.archive_with(|b| raw_member(b, "dev/null", tar::EntryType::Char, "", b""));
    f.fails(
        SourceSpec::OciArchive {
            path: tar,
            reference: None,
        },
        &["dev/null", "Char"],
    );
}

#[test]
fn missing_files_and_unknown_refs() {
    let f = Fixture::new();
    let missing = f.work.path().join("no-such-layout");
    f.fails(
        SourceSpec::OciLayout {
            path: missing.clone(),
            reference: None,
        },
        &[&missing.display().to_string()],
    );
    let missing_tar = f.work.path().join("no-such.tar");
    f.fails(
        SourceSpec::DockerArchive {
            path: missing_tar.clone(),
            reference: None,
        },
        &[&missing_tar.display().to_string()],
    );
    f.fails(
        SourceSpec::OciLayout {
            path: f.src.clone(),
            reference: Some("2.0".into()),
        },
        &["\"2.0\"", "available: 1.0"],
    );
    // A blob the manifest names is gone.
    fs::remove_file(f.src.join(f.layer().blob_path())).unwrap();
    f.fails(
        SourceSpec::OciLayout {
            path: f.src.clone(),
            reference: None,
        },
        &[&f.layer().to_string(), "missing"],
    );
}

#[test]
fn cli_bundles_a_config_and_rejects_a_bad_reference() {
    let f = Fixture::new();
    let airlift = binary("airlift");
    let config = |reference: &str| {
        format!(
            "apiVersion: airlift/v1alpha1\nkind: Appliance\nmetadata: {{ name: demo, version: 1.0.0 }}\n\
             images:\n  - ref: {reference}\n    from: {{ ociLayout: {{ path: src, ref: \"1.0\" }} }}\n"
        )
    };
    let good = f.work.path().join("good.yaml");
    fs::write(&good, config("quay.io/org/app:1.0")).unwrap();
    let out = f.work.path().join("cli-bundle");
    run_ok(
        Command::new(&airlift)
            .arg("bundle")
            .arg(&good)
            .arg("-o")
            .arg(&out),
    );
    let index = Layout::open(&out).unwrap().read_index().unwrap();
    assert_eq!(index.manifests[0].ref_name(), Some("quay.io/org/app:1.0"));

    let before = snapshot(&out);
    let bad = f.work.path().join("bad.yaml");
    fs::write(&bad, config("Quay.io/Org/App:1.0")).unwrap();
    let o = Command::new(&airlift)
        .arg("bundle")
        .arg(&bad)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("Quay.io/Org/App:1.0"), "{stderr}");
    assert_eq!(snapshot(&out), before);

    let o = Command::new(&airlift)
        .arg("bundle")
        .arg(f.work.path().join("missing.yaml"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.yaml"));
    assert_eq!(snapshot(&out), before);
}

/// Puts a chain of `depth` indexes, each listing the next, above the
/// fixture's manifest and makes index.json point at the top one.
fn nest_in_indexes(f: &Fixture, depth: usize) -> Vec<Digest> {
    use airlift_oci::documents::{media, Descriptor, REF_NAME};
    let layout = Layout::open(&f.src).unwrap();
    let mut index = layout.read_index().unwrap();
    let mut child = index.manifests[0].clone();
    child.annotations.clear();
    let mut chain = Vec::new();
    for _ in 0..depth {
        let doc = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_INDEX,
            "manifests": [child],
        });
        let bytes = serde_json::to_vec(&doc).unwrap();
        let digest = Digest::sha256_of(&bytes);
        fs::write(f.src.join(digest.blob_path()), &bytes).unwrap();
        child = Descriptor::new(media::OCI_INDEX, digest.clone(), bytes.len() as u64);
        chain.push(digest);
    }
    child.annotations.insert(REF_NAME.into(), "1.0".into());
    index.manifests = vec![child];
    layout.write_index(&index).unwrap();
    chain.reverse(); // top first
    chain
}

/// An index chain 1000 deep used to overflow the stack (rc 134, staging
/// folder left); now it is refused past 8 levels, naming the digest at
/// the limit, and nothing is left behind. A shallow chain still bundles.
#[test]
fn deeply_nested_indexes_are_refused() {
    let f = Fixture::new();
    let chain = nest_in_indexes(&f, 1000);
    let msg = f.fails(
        SourceSpec::OciLayout {
            path: f.src.clone(),
            reference: None,
        },
        &["nested", &chain[8].to_string(), "depth 9"],
    );
    assert!(msg.contains(&f.src.display().to_string()), "{msg}");

    // The same as an oci-archive.
    let tar = f.archive_with(|_| {});
    f.fails(
        SourceSpec::OciArchive {
            path: tar.clone(),
            reference: None,
        },
        &["nested", &chain[8].to_string(), &tar.display().to_string()],
    );

    let g = Fixture::new();
    nest_in_indexes(&g, 3);
    write_bundle(
        &[req(SourceSpec::OciLayout {
            path: g.src.clone(),
            reference: None,
        })],
        &g.out,
        &opts(),
    )
    .unwrap();
}

/// A blob of the previous output corrupted without changing its size is
/// not carried into the new bundle: reuse checks the digest, and the blob
/// is copied again from the source.
#[test]
fn a_corrupted_blob_in_the_previous_output_is_not_reused() {
    let f = Fixture::new();
    let spec = || {
        req(SourceSpec::OciLayout {
            path: f.src.clone(),
            reference: None,
        })
    };
    write_bundle(&[spec()], &f.out, &opts()).unwrap();
    let layer = f.layer();
    let path = f.out.join(layer.blob_path());
    let mut bytes = fs::read(&path).unwrap();
    bytes[100] ^= 0x01;
    // A new file (not through a link the source might share).
    fs::remove_file(&path).unwrap();
    fs::write(&path, &bytes).unwrap();

    let report = write_bundle(&[spec()], &f.out, &opts()).unwrap();
    let now = fs::read(f.out.join(layer.blob_path())).unwrap();
    assert_eq!(
        Digest::sha256_of(&now),
        layer,
        "the corrupted blob was reused"
    );
    assert_eq!(report.stats.fetched_blobs, 1, "{:?}", report.stats);
    assert_eq!(report.stats.reused_blobs, 2, "{:?}", report.stats);
}

/// Errors never echo a file's content: an archive path pointed at a
/// secret text file, an index.json and a credentials file holding
/// secrets where structure was expected. Each error names the file.
#[test]
fn errors_never_echo_file_content() {
    const SECRET: &str = "s3cretHASH";
    let f = Fixture::new();
    // Like /etc/shadow: text lines, longer than a tar block.
    let shadow = f.work.path().join("shadow");
    let mut text = format!("root:$6${SECRET}:19000:0:99999:7:::\n");
    for i in 0..30 {
        text.push_str(&format!("user{i}:{SECRET}:19000:0:99999:7:::\n"));
    }
    fs::write(&shadow, &text).unwrap();
    for spec in [
        SourceSpec::OciArchive {
            path: shadow.clone(),
            reference: None,
        },
        SourceSpec::DockerArchive {
            path: shadow.clone(),
            reference: None,
        },
    ] {
        let msg = f.fails(spec, &[&shadow.display().to_string(), "tar"]);
        assert!(!msg.contains(SECRET) && !msg.contains("root:"), "{msg}");
    }

    // index.json with a string where the list of manifests belongs.
    let index = f.src.join("index.json");
    fs::write(
        &index,
        format!(r#"{{"schemaVersion":2,"manifests":"{SECRET}"}}"#),
    )
    .unwrap();
    let msg = f.fails(
        SourceSpec::OciLayout {
            path: f.src.clone(),
            reference: None,
        },
        &["index.json"],
    );
    assert!(!msg.contains(SECRET), "{msg}");

    // A credentials file with a string where the auths map belongs.
    let auth = f.work.path().join("auth.json");
    fs::write(&auth, format!(r#"{{"auths":"{SECRET}"}}"#)).unwrap();
    let e = airlift_builder::sources::registry::auth::load_credentials(&auth, &["quay.io"])
        .unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains(&auth.display().to_string()), "{msg}");
    assert!(!msg.contains(SECRET), "{msg}");
}
