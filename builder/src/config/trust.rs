//! `verify:` → the appliance's [`TrustPolicy`]: each `publicKey` file
//! read (a regular file, size-capped, its text never echoed), parsed as
//! a cosign/sigstore PEM public key, named (by default after its file),
//! and the whole policy checked the way the builder and host0 will use
//! it ([`Verifier::new`]). Every problem names its field
//! (`verify.keys[0].publicKey`) and, for a file, its path.

use std::path::Path;

use airlift_appliance::trust::check::SIMPLE_SIGNING;
use airlift_appliance::trust::keys::PublicKey;
use airlift_appliance::trust::{check_key_name, check_scope};
use airlift_appliance::{TrustPolicy, TrustedKey};

use super::locate::{join_index, join_key};
use super::normalise::Appliance;
use super::problem::Problem;
use super::schema::{Attachments, Verify};

/// Largest public key file read (a PEM public key is a few hundred bytes).
pub const MAX_KEY_BYTES: u64 = 64 * 1024;

/// What to give instead of a wrong `publicKey` file.
const HINT: &str = "point it at a PEM public key (-----BEGIN PUBLIC KEY-----, ECDSA P-256 or \
                    Ed25519) as `cosign generate-key-pair` writes to cosign.pub";

/// The trust policy of `app`'s `verify:` section (`None` without one),
/// its key files read; or every problem found.
pub fn policy(app: &Appliance) -> Result<Option<TrustPolicy>, Vec<Problem>> {
    let Some(verify) = &app.verify else {
        return Ok(None);
    };
    let mut problems = Vec::new();
    let policy = read(verify, &mut |field, message| {
        problems.push(app.origin.problem(field, message))
    });
    if !problems.is_empty() {
        return Err(problems);
    }
    // Each field is sound and each key parsed: what is left is across
    // keys (a name or scope given twice).
    match policy.validate() {
        Ok(_) => Ok(Some(policy)),
        Err(e) => Err(vec![app.origin.problem("verify.keys", format!("{e:#}"))]),
    }
}

/// `verify:` read into a policy; each problem goes to `problem(field,
/// message)`. The policy is complete only when no problem was reported.
fn read(verify: &Verify, problem: &mut dyn FnMut(&str, String)) -> TrustPolicy {
    if verify.keys.is_empty() {
        problem(
            "verify.keys",
            "is empty; list at least one key (publicKey and scopes), or remove verify:".into(),
        );
    }
    let mut keys = Vec::new();
    for (i, k) in verify.keys.iter().enumerate() {
        let field = join_index("verify.keys", i);
        let key_field = join_key(&field, "publicKey");
        let pem = match read_key(&k.public_key) {
            Ok(pem) => Some(pem),
            Err(message) => {
                problem(&key_field, message);
                None
            }
        };
        let name = match &k.name {
            Some(name) => {
                if let Err(e) = check_key_name(name) {
                    problem(&join_key(&field, "name"), format!("{e:#}"));
                }
                name.clone()
            }
            None => {
                let stem = default_name(&k.public_key);
                if let Err(e) = check_key_name(&stem) {
                    problem(
                        &key_field,
                        format!(
                            "the key is named after its file, and {e:#}; set `name:` on this key \
                             (e.g. name: release)"
                        ),
                    );
                }
                stem
            }
        };
        if k.scopes.is_empty() {
            problem(
                &join_key(&field, "scopes"),
                "is empty; list the registries or repository prefixes this key signs \
                 (e.g. [quay.io/example])"
                    .into(),
            );
        }
        for (j, s) in k.scopes.iter().enumerate() {
            if let Err(e) = check_scope(s) {
                problem(
                    &join_index(&join_key(&field, "scopes"), j),
                    format!("{e:#}"),
                );
            }
        }
        keys.push(TrustedKey {
            name,
            scopes: k.scopes.clone(),
            public_key_pem: pem.unwrap_or_default(),
        });
    }
    TrustPolicy {
        keys,
        enforce: verify.enforce,
    }
}

/// A key's default name: its file name without the last extension
/// (`keys/release.pub` → `release`).
pub fn default_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The PEM text of the key file at `path`, checked to be a usable
/// public key; the error names the file and what is wrong, never its
/// contents.
pub fn read_key(path: &Path) -> Result<String, String> {
    let bytes = crate::small_file::read(path, MAX_KEY_BYTES, "public key", HINT)
        .map_err(|e| format!("{e:#}; {HINT}"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("public key {} is not PEM text; {HINT}", path.display()))?;
    PublicKey::from_pem(&text).map_err(|e| format!("public key {}: {e:#}", path.display()))?;
    Ok(text)
}

/// Why `attachments:` cannot go with `verify:`, if it cannot: the
/// signatures must be carried, since host0 checks them again when it
/// serves each image. Returns the field and the message.
pub fn attachments_problem(a: &Attachments) -> Option<(&'static str, String)> {
    if !a.carry {
        return Some((
            "attachments.carry",
            "is false, but verify: needs each image's signatures carried (host0 checks them \
             again when it serves the image); remove `carry: false`, or remove verify:"
                .into(),
        ));
    }
    if !a.artifact_types.is_empty() && !a.artifact_types.iter().any(|t| t == SIMPLE_SIGNING) {
        return Some((
            "attachments.artifactTypes",
            format!(
                "leaves out {SIMPLE_SIGNING}, but verify: needs each image's signatures carried \
                 (host0 checks them again when it serves the image); add it to the list"
            ),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use std::fs;

    use p256::pkcs8::{EncodePublicKey, LineEnding};

    use crate::config::validate::{validate, Purpose};
    use crate::config::{load_and_validate, normalise, parse, Origin};

    use super::*;

    fn p256_pem(seed: u8) -> String {
        let mut b = [0x22u8; 32];
        b[31] = seed;
        p256::ecdsa::SigningKey::from_slice(&b)
            .unwrap()
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    }

    fn ed25519_pem(seed: u8) -> String {
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    }

    /// An RSA SubjectPublicKeyInfo (a toy modulus: only its algorithm is
    /// looked at).
    const RSA_PEM: &str = "-----BEGIN PUBLIC KEY-----\n\
        MBowDQYJKoZIhvcNAQEBBQADCQAwBgIBBQIBAw==\n\
        -----END PUBLIC KEY-----\n";

    /// A bundle config with `verify` (YAML under `verify:`) and `extra`
    /// top-level sections, written to `dir/appliance.yaml`.
    fn config(dir: &Path, verify: &str, extra: &str) -> std::path::PathBuf {
        let file = dir.join("appliance.yaml");
        let text = format!(
            "apiVersion: airlift/v1alpha1\nkind: Appliance\nmetadata: {{ name: t, version: '1' \
             }}\nverify:\n{verify}{extra}"
        );
        fs::write(&file, text).unwrap();
        file
    }

    /// The problems `airlift validate` reports for the config at `file`.
    fn problems(file: &Path) -> Vec<Problem> {
        let text = fs::read_to_string(file).unwrap();
        let app = normalise(
            parse(&text, file).unwrap(),
            Origin::new(file, &text),
            &|_| None,
        )
        .unwrap();
        validate(&app, Purpose::Bundle).err().unwrap_or_default()
    }

    #[test]
    fn keys_are_read_relative_to_the_config_and_named_after_their_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("keys")).unwrap();
        fs::write(dir.path().join("keys/release.pub"), p256_pem(1)).unwrap();
        fs::write(dir.path().join("keys/edge.pem"), ed25519_pem(2)).unwrap();
        let file = config(
            dir.path(),
            "  keys:\n    - publicKey: keys/release.pub\n      scopes: [quay.io/example]\n    - \
             name: edge-2026\n      publicKey: keys/edge.pem\n      scopes: [registry.example:5000/edge, \
             docker.io/acme]\n  enforce: false\n",
            "attachments: { artifactTypes: [application/vnd.dev.cosign.simplesigning.v1+json] }\n",
        );
        let app = load_and_validate(&file, Purpose::Bundle).unwrap();
        let trust = app.trust.expect("verify: gives a trust policy");
        assert!(!trust.enforce);
        let names: Vec<_> = trust.keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["release", "edge-2026"]);
        assert_eq!(trust.keys[0].public_key_pem, p256_pem(1));
        assert_eq!(
            trust.keys[1].scopes,
            ["registry.example:5000/edge", "docker.io/acme"]
        );
        airlift_appliance::Verifier::new(&trust).unwrap();

        // No verify: section, no policy.
        fs::write(
            &file,
            "apiVersion: airlift/v1alpha1\nkind: Appliance\nmetadata: { name: t, version: '1' }\n",
        )
        .unwrap();
        assert!(load_and_validate(&file, Purpose::Bundle)
            .unwrap()
            .trust
            .is_none());
    }

    #[test]
    fn bad_key_files_name_the_field_and_file_never_the_text() {
        let dir = tempfile::tempdir().unwrap();
        let secret = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nc2VjcmV0LXRleHQ=\n\
                      -----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n";
        let cases: [(&str, Option<&[u8]>, &str); 6] = [
            ("missing.pub", None, "missing.pub"),
            (
                "cosign.key",
                Some(secret.as_bytes()),
                "this is a private key",
            ),
            ("rsa.pub", Some(RSA_PEM.as_bytes()), "RSA"),
            ("text.pub", Some(b"c2VjcmV0LXRleHQ= hello"), "not PEM"),
            ("binary.pub", Some(&[0xff, 0xfe, 0x00]), "not PEM text"),
            (
                "huge.pub",
                Some(&[b'a'; MAX_KEY_BYTES as usize + 1]),
                "larger than",
            ),
        ];
        for (name, content, want) in cases {
            if let Some(c) = content {
                fs::write(dir.path().join(name), c).unwrap();
            }
            let file = config(
                dir.path(),
                &format!("  keys:\n    - publicKey: {name}\n      scopes: [quay.io/example]\n"),
                "",
            );
            let ps = problems(&file);
            assert_eq!(ps.len(), 1, "{name}: {ps:?}");
            let p = &ps[0];
            assert_eq!(p.field.as_deref(), Some("verify.keys[0].publicKey"), "{p}");
            assert_eq!(p.position.map(|p| p.line), Some(6), "{p}");
            let text = p.to_string();
            assert!(text.contains(want), "{name}: {text}");
            assert!(text.contains(name), "{name}: names the file: {text}");
            assert!(!text.contains("c2VjcmV0LXRleHQ"), "{text}");
        }
    }

    #[test]
    fn names_scopes_and_attachments_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("Release.pub"), p256_pem(1)).unwrap();
        fs::write(dir.path().join("a.pub"), p256_pem(2)).unwrap();
        fs::write(dir.path().join("b.pub"), ed25519_pem(3)).unwrap();
        let fields = |verify: &str, extra: &str| -> Vec<(String, String)> {
            problems(&config(dir.path(), verify, extra))
                .into_iter()
                .map(|p| (p.field.unwrap_or_default(), p.message))
                .collect()
        };
        // A file name that is no key name, a bad scope, no scopes.
        let got = fields(
            "  keys:\n    - publicKey: Release.pub\n      scopes: [nginx]\n    - publicKey: \
             a.pub\n      scopes: []\n",
            "",
        );
        let want_fields = [
            "verify.keys[0].publicKey",
            "verify.keys[0].scopes[0]",
            "verify.keys[1].scopes",
        ];
        assert_eq!(
            got.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(),
            want_fields,
            "{got:?}"
        );
        assert!(got[0].1.contains("set `name:`"), "{got:?}");
        // One scope given to two keys.
        let got = fields(
            "  keys:\n    - publicKey: a.pub\n      scopes: [quay.io/x]\n    - publicKey: b.pub\n      \
             scopes: [quay.io/x]\n",
            "",
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "verify.keys");
        assert!(got[0].1.contains("one key"), "{got:?}");
        // No keys at all.
        let got = fields("  keys: []\n", "");
        assert_eq!(got[0].0, "verify.keys", "{got:?}");
        // Signatures not carried.
        let ok = "  keys:\n    - publicKey: a.pub\n      scopes: [quay.io/x]\n";
        let got = fields(ok, "attachments: { carry: false }\n");
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "attachments.carry");
        assert!(got[0].1.contains("host0 checks them again"), "{got:?}");
        let got = fields(
            ok,
            "attachments: { artifactTypes: [application/spdx+json] }\n",
        );
        assert_eq!(got[0].0, "attachments.artifactTypes", "{got:?}");
        assert!(got[0].1.contains(SIMPLE_SIGNING), "{got:?}");
        assert!(fields(ok, "").is_empty());
    }
}
