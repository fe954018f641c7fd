//! What refers to a bundled image (a cosign `.sig` and `.att`, an SPDX
//! SBOM pushed as an OCI 1.1 referrer) is carried into the bundle beside
//! it, from every kind of source that can hold it:
//! - Debian's `docker-registry`, which lacks the referrers API: the
//!   referrers tag schema (`sha256-<hex>` index) and the cosign tags;
//! - host0's own registry (the real `airlift-firstboot`), which has the
//!   referrers API;
//! - an OCI layout folder and an oci-archive holding the referrer and a
//!   `sha256-<hex>.sig` entry.
//!
//! The config's `attachments:` section narrows or turns it off; a
//! corrupted attachment blob fails the bundle naming its digest; and
//! host0 serving the bundle answers the referrers API with the SBOM and
//! serves the `.sig` tag.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use airlift_appliance::bundle_manifest::{ATTACHMENT_SUBJECT, BUNDLE_MANIFEST_FILE};
use airlift_appliance::{AttachmentKind, BundleManifest};
use airlift_builder::bundler::{write_bundle, BundleOptions};
use airlift_builder::sources::{ImageRequest, SourceSpec};
use airlift_integration::host0::{self, curl, Host0, Host0Dirs};
use airlift_integration::images::{write_layout, MadeImage, TestImage};
use airlift_integration::registry::{RegistryOptions, TestRegistry};
use airlift_integration::sigstore::{sig_tag, KeyKind, PushTarget, TestKey, SIMPLE_SIGNING};
use airlift_integration::tools::{binary, require, run_ok, run_or_stderr};
use airlift_oci::documents::{media, Descriptor, REF_NAME};
use airlift_oci::{Digest, Layout};

const SPDX: &str = "application/spdx+json";
const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
const SBOM_BODY: &[u8] = br#"{"spdxVersion":"SPDX-2.3","name":"app"}"#;

/// An artifact manifest as ORAS and cosign write them: the empty config,
/// one layer of `layer_type` holding `content`, `artifactType` and
/// `subject` when given. `put` stores a blob and returns its digest.
fn artifact(
    put: &dyn Fn(&[u8]) -> String,
    artifact_type: Option<&str>,
    layer_type: &str,
    content: &[u8],
    subject: Option<&Descriptor>,
) -> Vec<u8> {
    let config = put(b"{}");
    let layer = put(content);
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": { "mediaType": media::OCI_EMPTY, "digest": config, "size": 2 },
        "layers": [{ "mediaType": layer_type, "digest": layer, "size": content.len() }],
    });
    if let Some(t) = artifact_type {
        m["artifactType"] = t.into();
    }
    if let Some(s) = subject {
        m["subject"] = serde_json::json!({
            "mediaType": s.media_type, "digest": s.digest.to_string(), "size": s.size,
        });
    }
    serde_json::to_vec(&m).unwrap()
}

/// The referrers tag schema's index listing `entries` (digest, size,
/// artifact type).
fn referrers_index(entries: &[(&str, usize, &str)]) -> Vec<u8> {
    let manifests: Vec<_> = entries
        .iter()
        .map(|(d, size, t)| {
            serde_json::json!({
                "mediaType": media::OCI_MANIFEST, "digest": d, "size": size, "artifactType": t,
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": manifests,
    }))
    .unwrap()
}

fn image_layout(dir: &Path, seed: u64) -> MadeImage {
    write_layout(dir, &[TestImage::random("app", seed, 8192)])
        .unwrap()
        .remove(0)
}

fn bundle_json(out: &Path) -> BundleManifest {
    serde_json::from_slice(&fs::read(out.join(BUNDLE_MANIFEST_FILE)).unwrap()).unwrap()
}

/// `index.json` names of the bundle at `out`, with each entry's subject
/// annotation.
fn index_names(out: &Path) -> Vec<(String, Option<String>)> {
    Layout::open(out)
        .unwrap()
        .read_index()
        .unwrap()
        .manifests
        .iter()
        .map(|d| {
            (
                d.ref_name().unwrap_or_default().to_string(),
                d.annotations.get(ATTACHMENT_SUBJECT).cloned(),
            )
        })
        .collect()
}

fn opts() -> BundleOptions {
    BundleOptions {
        name: "test".into(),
        version: "1".into(),
        concurrency: 2,
        progress: false,
        ..BundleOptions::default()
    }
}

/// `airlift bundle` of one registry image with `attachments` appended
/// to the config; `Err(stderr)` on failure.
fn cli_bundle(
    work: &Path,
    reg: &TestRegistry,
    attachments: &str,
    out: &Path,
) -> Result<(), String> {
    let config = work.join(format!(
        "cfg-{}.yaml",
        out.file_name().unwrap().to_string_lossy()
    ));
    fs::write(
        &config,
        format!(
            "apiVersion: airlift/v1alpha1\nkind: Appliance\nmetadata: {{ name: demo, version: 1.0.0 }}\n\
             images:\n  - ref: quay.io/test/app:1.0\n    from: {{ registry: {{ mirror: \"{}\", insecure: true }} }}\n\
             {attachments}",
            reg.url()
        ),
    )
    .unwrap();
    run_or_stderr(
        Command::new(binary("airlift"))
            .arg("bundle")
            .arg(&config)
            .arg("-o")
            .arg(out),
    )
}

/// A registry holding `test/app:1.0`, signed (`.sig`), attested (`.att`)
/// and with an SBOM referrer listed in the referrers tag schema.
struct Source {
    reg: TestRegistry,
    image: Descriptor,
    sig: String,
    att: String,
    sbom: String,
    sbom_layer: String,
}

fn source(work: &Path, storage: &Path) -> Source {
    let layout = work.join("layout");
    let made = image_layout(&layout, 91);
    let reg = TestRegistry::try_start(&RegistryOptions {
        dir: Some(storage.to_path_buf()),
        ..RegistryOptions::default()
    })
    .unwrap();
    reg.push_layout(&layout, "app", "test/app:1.0");
    let image = made.manifest.clone();
    let digest = image.digest.to_string();
    let t = PushTarget {
        addr: reg.addr(),
        basic: None,
    };
    let key = TestKey::generate(KeyKind::P256, work, "k").unwrap();
    let sig = t
        .sign("test/app", &digest, "quay.io/test/app:1.0", &key)
        .unwrap();
    let put = |b: &[u8]| t.push_blob("test/app", b).unwrap();
    let sbom_bytes = artifact(&put, Some(SPDX), SPDX, SBOM_BODY, Some(&image));
    let sbom_digest = Digest::sha256_of(&sbom_bytes).to_string();
    let sbom = t
        .push_manifest("test/app", &sbom_digest, media::OCI_MANIFEST, &sbom_bytes)
        .unwrap();
    // docker-registry has no referrers API: a client pushing a referrer
    // keeps the `sha256-<hex>` index up to date, as the spec asks.
    let schema_tag = digest.replacen(':', "-", 1);
    t.push_manifest(
        "test/app",
        &schema_tag,
        media::OCI_INDEX,
        &referrers_index(&[(&sbom, sbom_bytes.len(), SPDX)]),
    )
    .unwrap();
    let att_bytes = artifact(&put, None, DSSE, br#"{"payloadType":"x"}"#, None);
    let att = t
        .push_manifest(
            "test/app",
            &format!("{schema_tag}.att"),
            media::OCI_MANIFEST,
            &att_bytes,
        )
        .unwrap();
    Source {
        reg,
        image,
        sig,
        att,
        sbom,
        sbom_layer: Digest::sha256_of(SBOM_BODY).to_string(),
    }
}

#[test]
fn registry_without_the_api_carries_sig_att_and_tag_schema_referrers_and_host0_serves_them() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = source(w, &w.join("registry"));
    let digest = src.image.digest.to_string();
    let hex = digest.trim_start_matches("sha256:");

    // Everything, by default.
    let out = w.join("all");
    cli_bundle(w, &src.reg, "", &out).unwrap();
    let names = index_names(&out);
    let subject = Some(digest.clone());
    assert_eq!(
        names,
        vec![
            ("quay.io/test/app:1.0".to_string(), None),
            (format!("quay.io/test/app@{}", src.sbom), subject.clone()),
            (
                format!("quay.io/test/app:sha256-{hex}.sig"),
                subject.clone()
            ),
            (
                format!("quay.io/test/app:sha256-{hex}.att"),
                subject.clone()
            ),
        ]
    );
    let bj = bundle_json(&out);
    let im = &bj.images[0];
    let mut got: Vec<_> = im
        .attachments
        .iter()
        .map(|a| {
            (
                a.kind,
                a.digest.to_string(),
                a.tag.clone(),
                a.artifact_type.clone(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (
            AttachmentKind::Signature,
            src.sig.clone(),
            Some(format!("sha256-{hex}.sig")),
            SIMPLE_SIGNING.to_string(),
        ),
        (
            AttachmentKind::Attestation,
            src.att.clone(),
            Some(format!("sha256-{hex}.att")),
            DSSE.to_string(),
        ),
        (
            AttachmentKind::Sbom,
            src.sbom.clone(),
            None,
            SPDX.to_string(),
        ),
    ];
    want.sort();
    assert_eq!(got, want);
    assert!(im.attachments.iter().all(|a| a.subject == src.image.digest));
    // Sizes count the attachments' blobs; every blob is in the bundle.
    let layout = Layout::open(&out).unwrap();
    let mut all = std::collections::BTreeMap::new();
    for d in layout.read_index().unwrap().manifests {
        all.extend(airlift_builder::bundler::image_blobs(&layout, &d).unwrap());
    }
    let image_only = airlift_builder::bundler::image_blobs(&layout, &src.image).unwrap();
    assert!(all.len() > image_only.len() + 3);
    assert_eq!(im.size, all.values().sum::<u64>());
    assert_eq!(bj.totals.unique_bytes, im.size);
    assert!(im.attachments.iter().all(|a| a.size > 0));
    assert!(layout.has_blob(&src.sbom_layer.parse().unwrap()));
    // The tag schema was read: the registry has no referrers API.
    let log = src.reg.log_text();
    assert!(
        log.contains(&format!("/v2/test/app/manifests/sha256-{hex} ")),
        "{log}"
    );

    // Only SBOMs.
    let sboms = w.join("sboms");
    cli_bundle(
        w,
        &src.reg,
        "attachments:\n  artifactTypes: [application/spdx+json]\n",
        &sboms,
    )
    .unwrap();
    let names = index_names(&sboms);
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(names[1].0, format!("quay.io/test/app@{}", src.sbom));
    let a = &bundle_json(&sboms).images[0].attachments;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].kind, AttachmentKind::Sbom);

    // Nothing, and nothing asked for.
    // Every attachment lookup: cosign tags, the tag schema, the API.
    let lookups = |log: String| {
        log.lines()
            .filter(|l| l.contains("/manifests/sha256-") || l.contains("/referrers/"))
            .count()
    };
    let before = lookups(src.reg.log_text());
    assert!(before > 0, "the earlier bundles' lookups are in the log");
    let none = w.join("none");
    cli_bundle(w, &src.reg, "attachments:\n  carry: false\n", &none).unwrap();
    assert_eq!(index_names(&none).len(), 1);
    assert!(bundle_json(&none).images[0].attachments.is_empty());
    assert_eq!(lookups(src.reg.log_text()), before);

    // A bad artifact type is refused naming the field.
    let e = cli_bundle(
        w,
        &src.reg,
        "attachments:\n  artifactTypes: [spdx]\n",
        &w.join("bad"),
    )
    .unwrap_err();
    assert!(
        e.contains("attachments.artifactTypes[0]") && e.contains("not a media type"),
        "{e}"
    );

    // host0 serving the bundle: the referrers API lists the SBOM from
    // the first second, and the `.sig` tag is served.
    let h0 = w.join("host0");
    fs::create_dir_all(&h0).unwrap();
    let file = host0::appliance_file(host0::port(), &["quay.io"]);
    let dirs = Host0Dirs::new(&h0, &out, &file);
    let _h = Host0::start(&dirs, &[]);
    let (code, body) = curl(&dirs, &["/v2/quay.io/test/app/referrers/", &digest], &[]);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let listed = v["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{body}");
    assert_eq!(listed[0]["digest"], src.sbom.as_str());
    assert_eq!(listed[0]["artifactType"], SPDX);
    let (code, body) = curl(
        &dirs,
        &["/v2/quay.io/test/app/manifests/", &sig_tag(&digest)],
        &["-H", &format!("Accept: {}", media::OCI_MANIFEST)],
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(Digest::sha256_of(body.as_bytes()).to_string(), src.sig);
}

#[test]
fn a_corrupted_attachment_blob_at_the_registry_fails_the_bundle_naming_it() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let storage = w.join("registry");
    let src = source(w, &storage);
    // Same length, other bytes: the registry serves it as is.
    let hex = src.sbom_layer.trim_start_matches("sha256:");
    let data = storage.join(format!(
        "data/docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let mut bytes = fs::read(&data).unwrap();
    bytes[0] ^= 0x20;
    fs::write(&data, bytes).unwrap();
    let out = w.join("out");
    let e = cli_bundle(w, &src.reg, "", &out).unwrap_err();
    assert!(
        e.contains(&src.sbom_layer) && e.contains("failed verification"),
        "{e}"
    );
    assert!(!out.exists());
}

/// A layout holding the image `1.0`, a `.sig` entry named by its cosign
/// tag, and an SBOM referrer entry without a name.
fn layout_with_attachments(dir: &Path) -> (MadeImage, Digest, Digest, Digest) {
    let made = image_layout(dir, 92);
    let layout = Layout::open(dir).unwrap();
    let put = |b: &[u8]| layout.put_blob(b, None).unwrap().0.to_string();
    let digest = made.manifest.digest.to_string();
    let payload =
        airlift_integration::sigstore::simple_signing_payload("quay.io/test/app:1.0", &digest);
    let sig = artifact(&put, None, SIMPLE_SIGNING, &payload, None);
    let sbom = artifact(&put, Some(SPDX), SPDX, SBOM_BODY, Some(&made.manifest));
    let mut index = layout.read_index().unwrap();
    let mut entry = |bytes: &[u8], name: Option<String>| {
        let (d, size) = layout.put_blob(bytes, None).unwrap();
        let mut desc = Descriptor::new(media::OCI_MANIFEST, d.clone(), size);
        if let Some(n) = name {
            desc.annotations.insert(REF_NAME.into(), n);
        }
        index.manifests.push(desc);
        d
    };
    let sig_d = entry(&sig, Some(sig_tag(&digest)));
    let sbom_d = entry(&sbom, None);
    layout.write_index(&index).unwrap();
    (made, sig_d, sbom_d, Digest::sha256_of(&payload))
}

#[test]
fn oci_layouts_and_archives_carry_their_referrers_and_sig_entries() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let dir = w.join("layout");
    let (made, sig, sbom, payload) = layout_with_attachments(&dir);
    let archive = w.join("app.tar");
    run_ok(
        Command::new(require("tar", "tar"))
            .arg("-C")
            .arg(&dir)
            .arg("-cf")
            .arg(&archive)
            .arg("."),
    );
    let req = |source: SourceSpec| ImageRequest {
        reference: "quay.io/test/app:1.0".parse().unwrap(),
        source,
        platforms: vec![],
    };
    let sources = [
        SourceSpec::OciLayout {
            path: dir.clone(),
            reference: Some("app".into()),
        },
        SourceSpec::OciArchive {
            path: archive.clone(),
            reference: Some("app".into()),
        },
    ];
    let hex = made.manifest.digest.to_string();
    let hex = hex.trim_start_matches("sha256:");
    for (i, s) in sources.into_iter().enumerate() {
        let out = w.join(format!("out{i}"));
        let report = write_bundle(&[req(s)], &out, &opts()).unwrap();
        let a = &report.manifest.images[0].attachments;
        let mut got: Vec<_> = a.iter().map(|a| (a.kind, a.digest.clone())).collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                (AttachmentKind::Signature, sig.clone()),
                (AttachmentKind::Sbom, sbom.clone())
            ]
        );
        let names: Vec<String> = index_names(&out).into_iter().map(|n| n.0).collect();
        assert!(
            names.contains(&format!("quay.io/test/app:sha256-{hex}.sig")),
            "{names:?}"
        );
        assert!(
            names.contains(&format!("quay.io/test/app@{sbom}")),
            "{names:?}"
        );
        assert!(Layout::open(&out).unwrap().has_blob(&payload));
    }
    // A docker-archive holds none; carry: false looks at nothing.
    let off = BundleOptions {
        attachments: airlift_builder::attachments::Filter {
            carry: false,
            artifact_types: vec![],
        },
        ..opts()
    };
    let source = SourceSpec::OciLayout {
        path: dir.clone(),
        reference: Some("app".into()),
    };
    let report = write_bundle(&[req(source.clone())], &w.join("off"), &off).unwrap();
    assert!(report.manifest.images[0].attachments.is_empty());

    // The `.sig` payload corrupted at the source: a new bundle fails
    // naming its digest, and none is written.
    let path = dir.join(payload.blob_path());
    let mut bytes = fs::read(&path).unwrap();
    bytes[0] ^= 0x20;
    fs::write(&path, bytes).unwrap();
    let fresh = w.join("fresh");
    let e = write_bundle(&[req(source)], &fresh, &opts()).unwrap_err();
    let e = format!("{e:#}");
    assert!(
        e.contains(&payload.to_string()) && e.contains("failed verification"),
        "{e}"
    );
    assert!(!fresh.exists());
}

/// Push with curl to host0 (TLS, its CA, the push token as a Bearer token).
fn host0_put(dirs: &Host0Dirs, token: &str, path: &str, method: &str, ct: &str, body: &Path) {
    let auth = format!("Authorization: Bearer {token}");
    let ct = format!("Content-Type: {ct}");
    let data = format!("@{}", body.display());
    let (code, text) = curl(
        dirs,
        &[path],
        &["-X", method, "-H", &auth, "-H", &ct, "--data-binary", &data],
    );
    assert_eq!(code, 201, "{method} {path}: {text}");
}

#[test]
fn host0s_referrers_api_as_a_source_carries_the_sbom() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // host0 with pushes allowed, serving some other bundle.
    let media_dir = w.join("media");
    image_layout(&media_dir, 93);
    let mut file = host0::appliance_file(host0::port(), &["quay.io"]);
    file.registry.push = true;
    file.storage.allow_ram_push = true;
    let h0 = w.join("host0");
    fs::create_dir_all(&h0).unwrap();
    let dirs = Host0Dirs::new(&h0, &media_dir, &file);
    let token = "attachments-test-push-token";
    fs::write(dirs.config.parent().unwrap().join("push-token"), token).unwrap();
    let mut h = Host0::start(&dirs, &[]);
    h.wait_state("ready", Duration::from_secs(60));

    // The image, by skopeo, into host0's own namespace (`x/app`).
    let layout = w.join("layout");
    let made = image_layout(&layout, 94);
    run_ok(
        Command::new(require("skopeo", "skopeo"))
            .args([
                "copy",
                "--quiet",
                "--preserve-digests",
                "--dest-tls-verify=false",
            ])
            .arg(format!("--dest-creds=push:{token}"))
            .arg(format!("oci:{}:app", layout.display()))
            .arg(format!("docker://{}/x/app:1.0", dirs.host())),
    );
    // The SBOM referrer, by hand: blobs (monolithic uploads), manifest.
    let blobs = w.join("blobs");
    fs::create_dir_all(&blobs).unwrap();
    let put = |b: &[u8]| {
        let d = Digest::sha256_of(b).to_string();
        let f = blobs.join(d.replace(':', "-"));
        fs::write(&f, b).unwrap();
        host0_put(
            &dirs,
            token,
            &format!("/v2/x/app/blobs/uploads/?digest={d}"),
            "POST",
            "application/octet-stream",
            &f,
        );
        d
    };
    let sbom = artifact(&put, Some(SPDX), SPDX, SBOM_BODY, Some(&made.manifest));
    let sbom_d = Digest::sha256_of(&sbom);
    let f = blobs.join("sbom.json");
    fs::write(&f, &sbom).unwrap();
    host0_put(
        &dirs,
        token,
        &format!("/v2/x/app/manifests/{sbom_d}"),
        "PUT",
        media::OCI_MANIFEST,
        &f,
    );

    // Bundle from host0 as a registry (TLS, its own certificate: insecure).
    let reference = format!("{}/x/app:1.0", dirs.host());
    let req = ImageRequest {
        reference: reference.parse().unwrap(),
        source: SourceSpec::Registry {
            mirror: None,
            credentials: None,
            insecure: true,
        },
        platforms: vec![],
    };
    let out: PathBuf = w.join("out");
    let report = write_bundle(&[req], &out, &opts()).unwrap();
    let a = &report.manifest.images[0].attachments;
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0].digest, sbom_d);
    assert_eq!(a[0].kind, AttachmentKind::Sbom);
    assert_eq!(a[0].artifact_type, SPDX);
    assert!(a[0].tag.is_none());
    let names = index_names(&out);
    assert_eq!(
        names[1],
        (
            format!("{}/x/app@{sbom_d}", dirs.host()),
            Some(made.manifest.digest.to_string())
        )
    );
    h.kill9();
}

#[test]
fn platform_manifests_are_subjects_only_when_their_platform_is_kept() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("layout");
    let arch = |a: &str, seed| TestImage {
        architecture: a.into(),
        ..TestImage::random("x", seed, 4096)
    };
    let made = airlift_integration::images::write_multiarch(
        &dir,
        "app",
        &[arch("amd64", 95), arch("arm64", 96)],
    )
    .unwrap();
    let layout = Layout::open(&dir).unwrap();
    let index: airlift_oci::Index =
        serde_json::from_slice(&layout.read_blob(&made.manifest.digest).unwrap()).unwrap();
    let arm = index.manifests[1].clone();
    assert_eq!(arm.platform.as_ref().unwrap().architecture, "arm64");
    // An SBOM of the arm64 manifest, and a `.sig` of the index.
    let put = |b: &[u8]| layout.put_blob(b, None).unwrap().0.to_string();
    let sbom = artifact(&put, Some(SPDX), SPDX, SBOM_BODY, Some(&arm));
    let top = made.manifest.digest.to_string();
    let payload =
        airlift_integration::sigstore::simple_signing_payload("quay.io/test/app:1.0", &top);
    let sig = artifact(&put, None, SIMPLE_SIGNING, &payload, None);
    let mut entries = layout.read_index().unwrap();
    let (sbom_d, size) = layout.put_blob(&sbom, None).unwrap();
    entries
        .manifests
        .push(Descriptor::new(media::OCI_MANIFEST, sbom_d.clone(), size));
    let (sig_d, size) = layout.put_blob(&sig, None).unwrap();
    let mut e = Descriptor::new(media::OCI_MANIFEST, sig_d.clone(), size);
    e.annotations.insert(REF_NAME.into(), sig_tag(&top));
    entries.manifests.push(e);
    layout.write_index(&entries).unwrap();

    let req = |platforms: &[&str]| ImageRequest {
        reference: "quay.io/test/app:1.0".parse().unwrap(),
        source: SourceSpec::OciLayout {
            path: dir.clone(),
            reference: Some("app".into()),
        },
        platforms: platforms.iter().map(|p| p.to_string()).collect(),
    };
    let all = write_bundle(&[req(&[])], &work.path().join("all"), &opts()).unwrap();
    let a = &all.manifest.images[0].attachments;
    let got: Vec<_> = a
        .iter()
        .map(|a| (a.subject.clone(), a.digest.clone()))
        .collect();
    let mut want = vec![
        (made.manifest.digest.clone(), sig_d.clone()),
        (arm.digest.clone(), sbom_d.clone()),
    ];
    want.sort();
    assert_eq!(got, want, "sorted by subject, then digest");
    let amd = write_bundle(&[req(&["linux/amd64"])], &work.path().join("amd"), &opts()).unwrap();
    let a = &amd.manifest.images[0].attachments;
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0].digest, sig_d);
}
