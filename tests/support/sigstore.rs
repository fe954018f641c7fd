//! Signing test images the way users sign them: key pairs in the
//! sigstore/cosign formats (a `PUBLIC KEY` PEM, and the private key as
//! `ENCRYPTED SIGSTORE PRIVATE KEY`: PKCS#8 sealed with NaCl secretbox
//! under a scrypt-derived key, the format `cosign generate-key-pair`
//! writes and skopeo's `--sign-by-sigstore-private-key` reads), then
//! `skopeo copy --sign-by-sigstore-private-key` into a registry.
//!
//! Debian 12's skopeo (1.9) cannot generate keys, and cosign is not
//! packaged, so the pair is made here with maintained RustCrypto crates;
//! the signing itself is skopeo's. [`TestKey::sign`] signs a payload
//! directly, for hand-made signatures (a corrupted one, an odd identity).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use base64::Engine as _;

/// The simple signing payload's media type (a `.sig` layer's).
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation on a `.sig` layer holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// The seed of the key the e2e configs trust
/// (image-configs/files/e2e-update/signing.pub, checked by a loopback test).
pub const E2E_KEY_SEED: u8 = 0xe2;

/// The passphrase every test key is sealed with.
const PASSPHRASE: &str = "airlift-test-passphrase";

/// Which algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA P-256 with SHA-256 (cosign's default).
    P256,
    /// Ed25519.
    Ed25519,
}

enum Secret {
    P256(p256::ecdsa::SigningKey),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

/// A key pair written to a folder: `<name>.pub`, `<name>.key`
/// (encrypted) and `<name>.pass` (its passphrase).
pub struct TestKey {
    pub kind: KeyKind,
    pub public_pem: String,
    pub public_path: PathBuf,
    pub private_path: PathBuf,
    pub passphrase_path: PathBuf,
    secret: Secret,
}

impl TestKey {
    /// Make a fresh key pair and write its files into `dir`.
    pub fn generate(kind: KeyKind, dir: &Path, name: &str) -> Result<TestKey> {
        let mut rng = rand_core::OsRng;
        let secret = match kind {
            KeyKind::P256 => Secret::P256(p256::ecdsa::SigningKey::random(&mut rng)),
            KeyKind::Ed25519 => {
                Secret::Ed25519(Box::new(ed25519_dalek::SigningKey::generate(&mut rng)))
            }
        };
        TestKey::write(secret, dir, name)
    }

    /// The same key pair every time for `seed`: for a public key committed
    /// beside a static config (image-configs/files/…), whose private half
    /// the test derives instead of committing it.
    pub fn from_seed(kind: KeyKind, seed: u8, dir: &Path, name: &str) -> Result<TestKey> {
        let bytes = [seed.max(1); 32];
        let secret = match kind {
            KeyKind::P256 => Secret::P256(
                p256::ecdsa::SigningKey::from_slice(&bytes).context("a P-256 key from a seed")?,
            ),
            KeyKind::Ed25519 => {
                Secret::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&bytes)))
            }
        };
        TestKey::write(secret, dir, name)
    }

    fn write(secret: Secret, dir: &Path, name: &str) -> Result<TestKey> {
        use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let (kind, pkcs8, public_pem) = match &secret {
            Secret::P256(k) => (
                KeyKind::P256,
                k.to_pkcs8_der().context("encoding the P-256 key")?,
                k.verifying_key()
                    .to_public_key_pem(LineEnding::LF)
                    .context("encoding the P-256 public key")?,
            ),
            Secret::Ed25519(k) => (
                KeyKind::Ed25519,
                k.to_pkcs8_der().context("encoding the Ed25519 key")?,
                k.verifying_key()
                    .to_public_key_pem(LineEnding::LF)
                    .context("encoding the Ed25519 public key")?,
            ),
        };
        let sealed = seal(pkcs8.as_bytes(), PASSPHRASE.as_bytes())?;
        let private_pem = pem_block("ENCRYPTED SIGSTORE PRIVATE KEY", &sealed);
        let key = TestKey {
            kind,
            public_pem,
            public_path: dir.join(format!("{name}.pub")),
            private_path: dir.join(format!("{name}.key")),
            passphrase_path: dir.join(format!("{name}.pass")),
            secret,
        };
        std::fs::write(&key.public_path, &key.public_pem)?;
        std::fs::write(&key.private_path, private_pem)?;
        std::fs::write(&key.passphrase_path, PASSPHRASE)?;
        Ok(key)
    }

    /// Sign `payload` as cosign does: ECDSA P-256 over its SHA-256 (ASN.1
    /// DER), or Ed25519 over the bytes.
    pub fn sign(&self, payload: &[u8]) -> Vec<u8> {
        match &self.secret {
            Secret::P256(k) => {
                use p256::ecdsa::signature::Signer;
                let sig: p256::ecdsa::Signature = k.sign(payload);
                sig.to_der().as_bytes().to_vec()
            }
            Secret::Ed25519(k) => {
                use ed25519_dalek::Signer;
                k.sign(payload).to_bytes().to_vec()
            }
        }
    }

    /// [`TestKey::sign`], base64 as in the `.sig` layer's annotation.
    pub fn sign_base64(&self, payload: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.sign(payload))
    }
}

/// A simple signing payload for `identity` (a docker reference) and
/// `digest` (`sha256:…`), as cosign and containers/image write it.
pub fn simple_signing_payload(identity: &str, digest: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": { "docker-reference": identity },
            "image": { "docker-manifest-digest": digest },
            "type": "cosign container image signature"
        },
        "optional": null
    }))
    .expect("a JSON value encodes")
}

/// `skopeo copy --sign-by-sigstore-private-key KEY SRC DEST` (plain HTTP
/// and unverified TLS allowed both ways), signing for `identity` when
/// given (skopeo's default is DEST's reference). skopeo writes the
/// signature as the `sha256-<hex>.sig` tag beside DEST when the
/// destination's registries.d says `use-sigstore-attachments: true`, so
/// a registries.d folder saying so for every registry is passed in.
pub fn skopeo_copy_signed(
    scratch: &Path,
    src: &str,
    dest: &str,
    key: &TestKey,
    identity: Option<&str>,
) -> Result<()> {
    let regd = scratch.join("registries.d");
    std::fs::create_dir_all(&regd)?;
    std::fs::write(
        regd.join("sigstore.yaml"),
        "default-docker:\n  use-sigstore-attachments: true\n",
    )?;
    let mut cmd = Command::new(crate::tools::require("skopeo", "skopeo"));
    cmd.arg("--registries.d")
        .arg(&regd)
        .args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .arg("--sign-by-sigstore-private-key")
        .arg(&key.private_path)
        .arg("--sign-passphrase-file")
        .arg(&key.passphrase_path);
    if let Some(id) = identity {
        cmd.args(["--sign-identity", id]);
    }
    cmd.args([src, dest]);
    let out = cmd.output().context("running skopeo")?;
    if !out.status.success() {
        bail!(
            "skopeo copy --sign-by-sigstore-private-key {src} {dest} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The `.sig` tag cosign and containers/image use for `digest`.
pub fn sig_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

/// go-securesystemslib's `encrypted` format: scrypt (N=32768, r=8,
/// p=1, cosign's parameters) derives a NaCl secretbox key.
fn seal(plain: &[u8], passphrase: &[u8]) -> Result<Vec<u8>> {
    use crypto_secretbox::aead::{Aead, KeyInit};
    use rand_core::RngCore;
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 24];
    rand_core::OsRng.fill_bytes(&mut salt);
    rand_core::OsRng.fill_bytes(&mut nonce);
    let params = scrypt::Params::new(15, 8, 1, 32)
        .map_err(|_| anyhow::anyhow!("scrypt parameters N=2^15, r=8, p=1 are refused"))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(passphrase, &salt, &params, &mut key)
        .map_err(|_| anyhow::anyhow!("deriving the sealing key"))?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(&key.into());
    let sealed = cipher
        .encrypt(&nonce.into(), plain)
        .map_err(|_| anyhow::anyhow!("sealing the private key"))?;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    Ok(serde_json::to_vec(&serde_json::json!({
        "kdf": {
            "name": "scrypt",
            "params": { "N": 32768, "r": 8, "p": 1 },
            "salt": b64(&salt),
        },
        "cipher": { "name": "nacl/secretbox", "nonce": b64(&nonce) },
        "ciphertext": b64(&sealed),
    }))?)
}

fn pem_block(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// One simple signing layer of a `.sig` manifest: the payload and the
/// base64 signature for its annotation.
pub struct SignatureLayer {
    pub payload: Vec<u8>,
    pub signature_b64: String,
}

impl SignatureLayer {
    /// A layer signing `digest` for `identity` with `key`.
    pub fn new(key: &TestKey, identity: &str, digest: &str) -> SignatureLayer {
        let payload = simple_signing_payload(identity, digest);
        let signature_b64 = key.sign_base64(&payload);
        SignatureLayer {
            payload,
            signature_b64,
        }
    }
}

/// Where to push, over plain HTTP: the registry's address and, when it
/// wants them, Basic credentials.
pub struct PushTarget {
    pub addr: std::net::SocketAddr,
    pub basic: Option<(String, String)>,
}

impl PushTarget {
    fn auth(&self) -> Option<String> {
        self.basic.as_ref().map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        })
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<crate::http::RawResponse> {
        let auth = self.auth();
        let mut h: Vec<(&str, &str)> = headers.to_vec();
        if let Some(a) = &auth {
            h.push(("Authorization", a));
        }
        crate::http::request(self.addr, method, path, &h, body)
    }

    /// Upload one blob (POST, then PUT with the digest); returns its digest.
    pub fn push_blob(&self, repo: &str, bytes: &[u8]) -> Result<String> {
        let digest = airlift_oci::Digest::sha256_of(bytes).to_string();
        let r = self.send("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"")?;
        if r.status != 202 {
            bail!("starting a blob upload to {repo}: HTTP {}", r.status);
        }
        let location = r.header("Location").context("no upload Location")?;
        let path = match location.find("/v2/") {
            Some(i) => &location[i..],
            None => location,
        };
        let sep = if path.contains('?') { '&' } else { '?' };
        let r = self.send(
            "PUT",
            &format!("{path}{sep}digest={digest}"),
            &[("Content-Type", "application/octet-stream")],
            bytes,
        )?;
        if r.status != 201 {
            bail!(
                "finishing the upload of {digest} to {repo}: HTTP {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
        Ok(digest)
    }

    /// PUT a manifest at `reference` (a tag or digest); returns its digest.
    pub fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String> {
        let r = self.send(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Content-Type", media_type)],
            bytes,
        )?;
        if r.status != 201 {
            bail!(
                "pushing manifest {repo}:{reference}: HTTP {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
        Ok(airlift_oci::Digest::sha256_of(bytes).to_string())
    }

    /// Push a `.sig` manifest for `digest` into `repo` in cosign's format
    /// ([`signature_manifest`]) under the `sha256-<hex>.sig` tag. Returns
    /// the `.sig` manifest's digest.
    pub fn push_signatures(
        &self,
        repo: &str,
        digest: &str,
        layers: &[SignatureLayer],
    ) -> Result<String> {
        let (manifest, blobs) = signature_manifest(layers)?;
        for b in &blobs {
            self.push_blob(repo, b)?;
        }
        self.push_manifest(
            repo,
            &sig_tag(digest),
            "application/vnd.oci.image.manifest.v1+json",
            &manifest,
        )
    }

    /// [`PushTarget::push_signatures`] with one signature by `key` for
    /// `identity`.
    pub fn sign(&self, repo: &str, digest: &str, identity: &str, key: &TestKey) -> Result<String> {
        self.push_signatures(repo, digest, &[SignatureLayer::new(key, identity, digest)])
    }
}

/// A `.sig` manifest in cosign's format (what cosign and containers/image
/// write): a config naming the payloads, and one
/// `application/vnd.dev.cosign.simplesigning.v1+json` layer per signature
/// with its base64 signature in the `dev.cosignproject.cosign/signature`
/// annotation. Returns the manifest and the blobs it needs.
pub fn signature_manifest(layers: &[SignatureLayer]) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut blobs = Vec::new();
    for l in layers {
        let d = airlift_oci::Digest::sha256_of(&l.payload).to_string();
        diff_ids.push(d.clone());
        descs.push(serde_json::json!({
            "mediaType": SIMPLE_SIGNING,
            "size": l.payload.len(),
            "digest": d,
            "annotations": { SIGNATURE_ANNOTATION: l.signature_b64 },
        }));
        blobs.push(l.payload.clone());
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{ "created": "0001-01-01T00:00:00Z" }],
        "os": "",
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "config": {},
    }))?;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": config.len(),
            "digest": airlift_oci::Digest::sha256_of(&config).to_string(),
        },
        "layers": descs,
    }))?;
    blobs.push(config);
    Ok((manifest, blobs))
}

/// Write a `.sig` manifest for `digest`, one signature by `key` for
/// `identity`, as the only image of an OCI layout at `dir` (named
/// `ref_name`), for `skopeo copy --preserve-digests` to a registry only
/// reachable over TLS. Returns the `.sig` manifest's digest.
pub fn write_signature_layout(
    dir: &Path,
    ref_name: &str,
    key: &TestKey,
    identity: &str,
    digest: &str,
) -> Result<String> {
    use airlift_oci::documents::{Descriptor, Index, REF_NAME};
    let (manifest, blobs) = signature_manifest(&[SignatureLayer::new(key, identity, digest)])?;
    let layout = airlift_oci::Layout::create(dir)?;
    for b in &blobs {
        layout.put_blob(b, None)?;
    }
    let (d, size) = layout.put_blob(&manifest, None)?;
    let mut desc = Descriptor::new(
        "application/vnd.oci.image.manifest.v1+json",
        d.clone(),
        size,
    );
    desc.annotations
        .insert(REF_NAME.to_string(), ref_name.to_string());
    let mut index = Index::empty();
    index.manifests.push(desc);
    layout.write_index(&index)?;
    Ok(d.to_string())
}
