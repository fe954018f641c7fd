//! `airlift-firstboot serve` on S3: two stateless instances on one real
//! Garage bucket. A pushes (a layer above the multipart threshold), B
//! serves it; a tag moved through A is seen through B; the bucket holds
//! the documented layout; an instance killed mid-upload leaves no
//! readable partial blob.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use airlift_firstboot::services::registry::s3::{self, Client};
use airlift_integration::firstboot::{creds, ServeConfig, Server, TOKEN};
use airlift_integration::garage::Garage;
use airlift_integration::images::{random_bytes, write_layout, MadeImage, TestImage};
use airlift_integration::tools::{require, run_ok};
use airlift_oci::Digest;

const PREFIX: &str = "airlift/";
const MIB: usize = 1 << 20;

fn skopeo() -> PathBuf {
    require("skopeo", "skopeo")
}

fn instance(tmp: &Path, name: &str, g: &Garage) -> Server {
    let mut extra = g.serve_args();
    extra.extend(
        [
            "--s3-prefix",
            PREFIX,
            "--s3-multipart-threshold-mib",
            "5",
            "--s3-refresh-secs",
            "1",
        ]
        .map(String::from),
    );
    Server::start(&ServeConfig {
        data: tmp.join(name),
        extra,
        env: g.env(),
        push_token: true,
        ..ServeConfig::default()
    })
}

fn client(g: &Garage) -> Client {
    Client::new(&s3::Config {
        endpoint: g.endpoint.clone(),
        bucket: g.bucket.clone(),
        region: g.region.clone(),
        credentials: s3::Credentials {
            access_key_id: g.access_key_id.clone(),
            secret_access_key: g.secret_access_key.clone(),
        },
    })
    .unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn push(layout: &Path, tag: &str, dest: &str) {
    run_ok(Command::new(skopeo()).args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds(),
        &format!("oci:{}:{tag}", layout.display()),
        dest,
    ]));
}

/// The digest `srv` answers for `repo:tag` (None: not found).
fn served_digest(srv: &Server, repo: &str, tag: &str) -> Option<String> {
    let r = srv.request(
        "HEAD",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json",
        )],
        b"",
    );
    (r.status == 200).then(|| r.header("Docker-Content-Digest").unwrap().to_string())
}

/// Poll until `f` holds (the refresh interval is 1 s; give it far more).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} never happened");
}

fn image(dir: &Path, tag: &str, seed: u64, size: usize) -> MadeImage {
    // Gzipped layers: skopeo keeps them (and so the manifest) as they are.
    let image = TestImage {
        gzip: true,
        ..TestImage::random(tag, seed, size)
    };
    write_layout(dir, &[image]).unwrap().remove(0)
}

#[test]
fn two_instances_share_one_bucket() {
    let tmp = tempfile::tempdir().unwrap();
    let g = Garage::start("registry");
    let a = instance(tmp.path(), "a", &g);
    let b = instance(tmp.path(), "b", &g);
    let repo = "quay.io/org/big";

    // A 20 MiB random layer, above the 5 MiB threshold: multipart.
    let layout = tmp.path().join("big");
    let big = image(&layout, "1.0", 7, 20 * MIB);
    let t = Instant::now();
    push(&layout, "1.0", &format!("docker://{}/{repo}:1.0", a.host()));
    let push_secs = t.elapsed().as_secs_f64();
    assert!(
        a.log_text().contains("S3 multipart upload of"),
        "the big layer was not sent in parts:\n{}",
        a.log_text()
    );

    // B never saw the push: it answers from the bucket.
    let out = tmp.path().join("pulled");
    let t = Instant::now();
    run_ok(Command::new(skopeo()).args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/{repo}:1.0", b.host()),
        &format!("dir:{}", out.display()),
    ]));
    let pull_secs = t.elapsed().as_secs_f64();
    assert_eq!(
        served_digest(&b, repo, "1.0").as_deref(),
        Some(big.manifest.digest.to_string().as_str())
    );
    let mut layer_bytes = 0;
    for blob in &big.blobs {
        let copied = std::fs::read(out.join(blob.hex())).unwrap();
        assert_eq!(&Digest::sha256_of(&copied), blob, "blob pulled through B");
        layer_bytes = layer_bytes.max(copied.len());
    }
    let mib = layer_bytes as f64 / MIB as f64;
    eprintln!(
        "figures: push of a {mib:.1} MiB layer through A {push_secs:.2} s ({:.0} MiB/s), \
         pull through B {pull_secs:.2} s ({:.0} MiB/s)",
        mib / push_secs,
        mib / pull_secs
    );
    // A ranged GET through B comes from the bucket's bytes.
    let layer = big.blobs.iter().max_by_key(|d| {
        std::fs::metadata(out.join(d.hex()))
            .map(|m| m.len())
            .unwrap_or(0)
    });
    let layer = layer.unwrap();
    let whole = std::fs::read(out.join(layer.hex())).unwrap();
    let r = b.request(
        "GET",
        &format!("/v2/{repo}/blobs/{layer}"),
        &[("Range", "bytes=6000000-6000099")],
        b"",
    );
    assert_eq!(r.status, 206);
    assert!(r.body == whole[6_000_000..6_000_100]);

    // Move the tag through A (B knows the old target), add a new tag.
    let small_layout = tmp.path().join("small");
    let small = image(&small_layout, "1.0", 8, 100_000);
    push(
        &small_layout,
        "1.0",
        &format!("docker://{}/{repo}:1.0", a.host()),
    );
    push(
        &small_layout,
        "1.0",
        &format!("docker://{}/{repo}:2.0", a.host()),
    );
    let want = small.manifest.digest.to_string();
    eventually("B serving the moved tag", || {
        served_digest(&b, repo, "1.0").as_deref() == Some(want.as_str())
    });
    // 2.0 was never seen by B: looked up in the bucket at once.
    assert_eq!(
        served_digest(&b, repo, "2.0").as_deref(),
        Some(want.as_str())
    );
    eventually("B listing both tags", || {
        let r = b.request("GET", &format!("/v2/{repo}/tags/list"), &[], b"");
        r.status == 200 && String::from_utf8_lossy(&r.body).contains("\"2.0\"")
    });
    let r = b.request("GET", "/v2/_catalog", &[], b"");
    assert!(String::from_utf8_lossy(&r.body).contains(repo));

    // The bucket holds the documented layout, nothing else.
    let keys: BTreeSet<(String, u64)> = rt()
        .block_on(client(&g).list(""))
        .unwrap()
        .into_iter()
        .map(|o| (o.key, o.size))
        .collect();
    let names: BTreeSet<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    for d in big.blobs.iter().chain(&small.blobs) {
        assert!(
            names.contains(format!("{PREFIX}blobs/sha256/{}", d.hex()).as_str()),
            "{d}"
        );
    }
    let size_of_layer = keys
        .iter()
        .find(|(k, _)| k.ends_with(layer.hex()))
        .map(|(_, s)| *s);
    assert_eq!(size_of_layer, Some(whole.len() as u64));
    for m in [&big.manifest.digest, &small.manifest.digest] {
        let marker = format!("{PREFIX}repositories/{repo}/_manifests/sha256/{}", m.hex());
        assert!(names.contains(marker.as_str()), "{marker} in {names:#?}");
    }
    for t in ["1.0", "2.0"] {
        let key = format!("{PREFIX}repositories/{repo}/_tags/{t}");
        let got = rt().block_on(client(&g).get(&key)).unwrap().unwrap();
        assert_eq!(String::from_utf8_lossy(&got), want, "{key}");
    }
    for k in &names {
        assert!(
            k.starts_with(&format!("{PREFIX}blobs/sha256/"))
                || k.starts_with(&format!("{PREFIX}repositories/{repo}/_")),
            "unexpected object {k}"
        );
    }
    assert!(rt()
        .block_on(client(&g).list_multipart(""))
        .unwrap()
        .is_empty());
}

#[test]
fn a_kill_mid_upload_leaves_no_readable_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let g = Garage::start("registry");
    let mut a = instance(tmp.path(), "a", &g);
    let b = instance(tmp.path(), "b", &g);
    let repo = "quay.io/org/crash";
    // 100 MiB in 5 MiB parts: 20 parts, killed after the second.
    let data = random_bytes(42, 100 * MIB);
    let digest = Digest::sha256_of(&data);
    let auth = format!("Bearer {TOKEN}");
    let r = a.request(
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 202);
    let location = r.header("Location").unwrap().to_string();
    let r = a.request("PATCH", &location, &[("Authorization", &auth)], &data);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let sep = if location.contains('?') { '&' } else { '?' };
    let finish = format!("{location}{sep}digest={digest}");
    let addr = a.addr;
    let put = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "PUT {finish} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    });
    eventually("A sending part 2", || {
        a.log_text().contains("sent part 2/20")
    });
    a.kill9();
    let answer = put.join().unwrap();
    assert!(
        !answer.starts_with("HTTP/1.1 201"),
        "the upload finished before the kill; the test proves nothing:\n{answer}"
    );

    // Nothing of the blob is readable, through B or in the bucket.
    let c = client(&g);
    let key = format!("{PREFIX}blobs/sha256/{}", digest.hex());
    assert_eq!(rt().block_on(c.head(&key)).unwrap(), None);
    let r = b.request("HEAD", &format!("/v2/{repo}/blobs/{digest}"), &[], b"");
    assert_eq!(r.status, 404);
    let r = b.request("GET", &format!("/v2/{repo}/blobs/{digest}"), &[], b"");
    assert_eq!(r.status, 404);
    let listed = rt().block_on(c.list(&format!("{PREFIX}blobs/"))).unwrap();
    assert!(listed.iter().all(|o| o.key != key), "{listed:?}");
    // The unfinished multipart upload is only that: abortable, never a blob.
    let pending = rt().block_on(c.list_multipart(PREFIX)).unwrap();
    for (k, id) in &pending {
        assert_eq!(k, &key);
        rt().block_on(c.abort_multipart(k, id)).unwrap();
    }
    assert!(rt().block_on(c.list_multipart(PREFIX)).unwrap().is_empty());
    assert_eq!(rt().block_on(c.head(&key)).unwrap(), None);
}
