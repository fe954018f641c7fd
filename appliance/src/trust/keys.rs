//! Trusted public keys as cosign writes them (`cosign generate-key-pair`,
//! `cosign public-key`): PEM `PUBLIC KEY` blocks holding a
//! SubjectPublicKeyInfo for ECDSA P-256 or Ed25519, and verifying a
//! signature with one the way cosign and containers/image do: ECDSA
//! P-256 over the SHA-256 of the message with an ASN.1 DER signature,
//! Ed25519 over the message itself.
//!
//! The cryptography is RustCrypto's `p256` and the dalek project's
//! `ed25519-dalek`: small, maintained, pure Rust, no network and no
//! transparency-log client pulled in (the `sigstore` crate brings TUF,
//! Rekor and Fulcio clients an air gap cannot use).

use std::fmt;

use anyhow::{bail, Result};

/// A public key signatures are checked with.
#[derive(Clone)]
pub enum PublicKey {
    P256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.algorithm())
    }
}

/// OIDs of SubjectPublicKeyInfo algorithms people hand us, to name them.
const ALGORITHMS: &[(&str, &str)] = &[
    ("1.2.840.10045.2.1", "EC"),
    ("1.3.101.112", "Ed25519"),
    ("1.2.840.113549.1.1.1", "RSA"),
    ("1.3.101.113", "Ed448"),
];

/// The curve OID of P-256 (prime256v1).
const P256_CURVE: &str = "1.2.840.10045.3.1.7";

impl PublicKey {
    /// Parse a PEM public key. Errors say what was found instead, never
    /// the PEM text.
    pub fn from_pem(pem: &str) -> Result<PublicKey> {
        use p256::pkcs8::der::Decode;
        use p256::pkcs8::spki::SubjectPublicKeyInfoRef;
        use p256::pkcs8::DecodePublicKey;
        let text = pem.trim();
        let Some(first) = text.lines().next() else {
            bail!("the key is empty; give a PEM public key (-----BEGIN PUBLIC KEY-----)");
        };
        let first = first.trim();
        if first != "-----BEGIN PUBLIC KEY-----" {
            if first.contains("PRIVATE KEY") {
                bail!(
                    "this is a private key; give the public key (`cosign public-key --key …` \
                     prints it: -----BEGIN PUBLIC KEY-----)"
                );
            }
            if first.starts_with("-----BEGIN ") {
                let label = first
                    .trim_start_matches("-----BEGIN ")
                    .trim_end_matches('-')
                    .chars()
                    .filter(|c| c.is_ascii_uppercase() || *c == ' ')
                    .take(40)
                    .collect::<String>();
                bail!(
                    "the PEM block is {label:?}, not PUBLIC KEY; give a SubjectPublicKeyInfo \
                     public key (-----BEGIN PUBLIC KEY-----) as cosign writes it"
                );
            }
            bail!("the key is not PEM; give a public key starting -----BEGIN PUBLIC KEY-----");
        }
        let der = match p256::pkcs8::Document::from_pem(text) {
            Ok((_, doc)) => doc,
            Err(_) => bail!(
                "the PUBLIC KEY block is not valid PEM (bad base64 or missing END line); \
                 export the key again"
            ),
        };
        let spki = SubjectPublicKeyInfoRef::from_der(der.as_bytes()).map_err(|_| {
            anyhow::anyhow!("the PUBLIC KEY block does not hold a SubjectPublicKeyInfo")
        })?;
        let oid = spki.algorithm.oid.to_string();
        match oid.as_str() {
            "1.2.840.10045.2.1" => {
                let curve = spki
                    .algorithm
                    .parameters_oid()
                    .map(|o| o.to_string())
                    .unwrap_or_default();
                if curve != P256_CURVE {
                    bail!(
                        "the EC key is on curve {curve}, not P-256 ({P256_CURVE}); cosign and \
                         containers/image sign with P-256 or Ed25519"
                    );
                }
                let key = p256::ecdsa::VerifyingKey::from_public_key_der(der.as_bytes())
                    .map_err(|_| anyhow::anyhow!("the P-256 public key is not a valid point"))?;
                Ok(PublicKey::P256(key))
            }
            "1.3.101.112" => {
                let key = ed25519_dalek::VerifyingKey::from_public_key_der(der.as_bytes())
                    .map_err(|_| anyhow::anyhow!("the Ed25519 public key is not valid"))?;
                Ok(PublicKey::Ed25519(key))
            }
            other => {
                let name = ALGORITHMS
                    .iter()
                    .find(|(o, _)| *o == other)
                    .map_or("unknown", |(_, n)| n);
                bail!(
                    "the key's algorithm is {name} ({other}); airlift verifies ECDSA P-256 and \
                     Ed25519 keys, as cosign generates them"
                )
            }
        }
    }

    /// `ECDSA P-256` or `Ed25519`.
    pub fn algorithm(&self) -> &'static str {
        match self {
            PublicKey::P256(_) => "ECDSA P-256",
            PublicKey::Ed25519(_) => "Ed25519",
        }
    }

    /// Does `signature` sign `message` with this key? ECDSA: DER
    /// signature over SHA-256(message); Ed25519: 64 bytes over message.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            PublicKey::P256(k) => {
                use p256::ecdsa::signature::Verifier;
                match p256::ecdsa::Signature::from_der(signature) {
                    Ok(sig) => k.verify(message, &sig).is_ok(),
                    Err(_) => false,
                }
            }
            PublicKey::Ed25519(k) => match <[u8; 64]>::try_from(signature) {
                Ok(bytes) => {
                    let sig = ed25519_dalek::Signature::from_bytes(&bytes);
                    k.verify_strict(message, &sig).is_ok()
                }
                Err(_) => false,
            },
        }
    }
}

#[cfg(test)]
pub(crate) mod test_keys {
    //! Fixed test keys (no RNG needed): a P-256 and an Ed25519 signer.
    use p256::pkcs8::{EncodePublicKey, LineEnding};

    pub fn p256(seed: u8) -> p256::ecdsa::SigningKey {
        let mut bytes = [0u8; 32];
        bytes[31] = seed.max(1);
        bytes[0] = 0x42;
        p256::ecdsa::SigningKey::from_slice(&bytes).unwrap()
    }

    pub fn ed25519(seed: u8) -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
    }

    pub fn p256_pem(k: &p256::ecdsa::SigningKey) -> String {
        k.verifying_key().to_public_key_pem(LineEnding::LF).unwrap()
    }

    pub fn ed25519_pem(k: &ed25519_dalek::SigningKey) -> String {
        k.verifying_key().to_public_key_pem(LineEnding::LF).unwrap()
    }

    pub fn p256_sign(k: &p256::ecdsa::SigningKey, msg: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer;
        let s: p256::ecdsa::Signature = k.sign(msg);
        s.to_der().as_bytes().to_vec()
    }

    pub fn ed25519_sign(k: &ed25519_dalek::SigningKey, msg: &[u8]) -> Vec<u8> {
        use ed25519_dalek::Signer;
        k.sign(msg).to_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::test_keys::*;
    use super::*;

    #[test]
    fn both_algorithms_verify_their_own_signatures_only() {
        let (a, b) = (p256(1), p256(2));
        let ka = PublicKey::from_pem(&p256_pem(&a)).unwrap();
        assert_eq!(ka.algorithm(), "ECDSA P-256");
        // Many messages: ECDSA signatures with a high S must verify too
        // (Go's signers do not normalise S).
        for i in 0..32u8 {
            let msg = [i; 40];
            let sig = p256_sign(&a, &msg);
            assert!(ka.verifies(&msg, &sig));
            assert!(!ka.verifies(b"other", &sig));
            assert!(!ka.verifies(&msg, &p256_sign(&b, &msg)));
            let high = p256::ecdsa::Signature::from_der(&sig).unwrap();
            let (r, s) = high.split_scalars();
            let flipped = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
            assert!(ka.verifies(&msg, flipped.to_der().as_bytes()), "S and -S");
        }
        let (e, f) = (ed25519(1), ed25519(2));
        let ke = PublicKey::from_pem(&ed25519_pem(&e)).unwrap();
        assert_eq!(ke.algorithm(), "Ed25519");
        let sig = ed25519_sign(&e, b"m");
        assert!(ke.verifies(b"m", &sig));
        assert!(!ke.verifies(b"n", &sig));
        assert!(!ke.verifies(b"m", &ed25519_sign(&f, b"m")));
        assert!(!ke.verifies(b"m", &sig[..63]));
        assert!(!ka.verifies(b"m", b"\x30\x02junk"));
    }

    #[test]
    fn wrong_keys_are_named_without_their_text() {
        let cases = [
            ("", "empty"),
            ("hello", "not PEM"),
            (
                "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
                "private key",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "\"CERTIFICATE\"",
            ),
            ("-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n", "not valid PEM"),
        ];
        for (pem, want) in cases {
            let e = format!("{:#}", PublicKey::from_pem(pem).unwrap_err());
            assert!(e.contains(want), "{pem:?}: {e}");
            assert!(!e.contains("AAAA"), "{e}");
        }
        // A P-384 key: named as such.
        let p384 = "-----BEGIN PUBLIC KEY-----\n\
            MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEuiAdxn47wdPS1O5+2Y+sA5lMwUS1Kuuv\n\
            qx/IDd1XK2VsXb1V2XEN1MHgCz62BK3pJaF8pUOuUGC2IB1XBcQ7VaBYNa1IWzq4\n\
            gO1ulxCnmoLNnn3b5G8nzp7gIE5H12v2\n\
            -----END PUBLIC KEY-----\n";
        let e = format!("{:#}", PublicKey::from_pem(p384).unwrap_err());
        assert!(e.contains("1.3.132.0.34") && e.contains("P-256"), "{e}");
    }
}
