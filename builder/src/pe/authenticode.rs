//! Who signed a PE image: each Authenticode signature (PKCS#7
//! SignedData) in its certificate table, reduced to the signing
//! certificate's subject and issuer.
//!
//! ```text
//! ContentInfo { signedData, [0] SignedData { version, digestAlgorithms,
//!   contentInfo, [0] certificates, [1] crls?, signerInfos { SignerInfo {
//!   version, issuerAndSerialNumber, … } } } }
//! ```
//! The signer's certificate is the one whose issuer and serial number the
//! SignerInfo names. Nothing is verified here: firmware does that.

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::der::{self, children, expect, Tlv, CONTEXT_0, INTEGER, OID, SEQUENCE, SET};

/// `1.2.840.113549.1.7.2` (PKCS#7 signedData).
const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];

/// One signer of a PE image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signer {
    /// The signing certificate's subject (its CN, else its attributes).
    pub subject: String,
    /// Its issuer, likewise.
    pub issuer: String,
}

/// The signers of the PE image `pe`, one per signature; empty when it
/// carries none.
pub fn signers_of_pe(pe: &[u8]) -> Result<Vec<Signer>> {
    let mut out = Vec::new();
    for (k, blob) in super::signatures(pe)?.into_iter().enumerate() {
        out.extend(signers(blob).with_context(|| format!("reading signature {}", k + 1))?);
    }
    Ok(out)
}

/// The issuer Name and serial INTEGER of a certificate's TBS part.
fn cert_issuer_serial<'a>(cert: &Tlv<'a>) -> Result<(Tlv<'a>, Tlv<'a>, Tlv<'a>)> {
    let (tbs, _) = expect(cert.content, SEQUENCE)?;
    let mut fields = children(tbs.content)?.into_iter();
    let mut serial = fields.next().context("empty certificate")?;
    if serial.tag == CONTEXT_0 {
        serial = fields.next().context("certificate without serial")?;
    }
    let _algorithm = fields.next();
    let issuer = fields.next().context("certificate without issuer")?;
    let _validity = fields.next();
    let subject = fields.next().context("certificate without subject")?;
    if serial.tag != INTEGER || issuer.tag != SEQUENCE || subject.tag != SEQUENCE {
        bail!("malformed certificate");
    }
    Ok((issuer, serial, subject))
}

/// The signers of one PKCS#7 SignedData blob.
pub fn signers(blob: &[u8]) -> Result<Vec<Signer>> {
    let (info, _) = expect(blob, SEQUENCE)?;
    let (oid, rest) = expect(info.content, OID)?;
    if oid.content != SIGNED_DATA {
        bail!("the signature is not PKCS#7 SignedData");
    }
    let (explicit, _) = expect(rest, CONTEXT_0)?;
    let (signed, _) = expect(explicit.content, SEQUENCE)?;
    let parts = children(signed.content)?;
    let certs = parts
        .iter()
        .find(|t| t.tag == CONTEXT_0)
        .map_or(Ok(Vec::new()), |t| children(t.content))?;
    let infos = parts
        .iter()
        .rev()
        .find(|t| t.tag == SET)
        .context("SignedData without signerInfos")?;
    let mut out = Vec::new();
    for info in children(infos.content)? {
        let mut fields = children(info.content)?.into_iter().skip(1);
        let id = fields.next().context("SignerInfo without signer id")?;
        if id.tag != SEQUENCE {
            bail!("SignerInfo names its signer by key id; only issuer and serial are read");
        }
        let (issuer, rest) = expect(id.content, SEQUENCE)?;
        let (serial, _) = expect(rest, INTEGER)?;
        let cert = certs.iter().find(|c| {
            cert_issuer_serial(c).is_ok_and(|(i, s, _)| i.raw == issuer.raw && s.raw == serial.raw)
        });
        let signer = match cert {
            Some(c) => {
                let (issuer, _, subject) = cert_issuer_serial(c)?;
                Signer {
                    subject: der::name(&subject)?,
                    issuer: der::name(&issuer)?,
                }
            }
            None => Signer {
                subject: "(certificate not included)".to_string(),
                issuer: der::name(&issuer)?,
            },
        };
        out.push(signer);
    }
    Ok(out)
}
