//! A small DER reader: enough to walk PKCS#7 SignedData and X.509
//! certificates for names and serial numbers. It reads, never verifies.
//!
//! Why not RustCrypto's `cms`/`x509-cert`: `airlift inspect` only needs
//! the signer's subject and issuer, and a 100-line bounds-checked walker
//! does that without four more crates (and their versions to keep in step)
//! in a builder that does no cryptography itself.

use anyhow::{bail, Result};

pub const SEQUENCE: u8 = 0x30;
pub const SET: u8 = 0x31;
pub const INTEGER: u8 = 0x02;
pub const OID: u8 = 0x06;
/// `[0]` constructed, context-specific (EXPLICIT `[0]` or IMPLICIT SET).
pub const CONTEXT_0: u8 = 0xa0;

/// One TLV: its tag, its content and all its bytes (tag and length too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

/// Reads one TLV from the front of `input`; returns it and the rest.
pub fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first().ok_or_else(|| eof("a tag"))?;
    if tag & 0x1f == 0x1f {
        bail!("DER: multi-byte tags are not used in signatures");
    }
    let (&first, mut rest) = rest.split_first().ok_or_else(|| eof("a length"))?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            bail!("DER: unsupported length form 0x{first:02x}");
        }
        let bytes = rest.get(..n).ok_or_else(|| eof("a length"))?;
        rest = &rest[n..];
        bytes.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b))
    };
    let header = input.len() - rest.len();
    let content = rest.get(..len).ok_or_else(|| eof("content"))?;
    Ok((
        Tlv {
            tag,
            content,
            raw: &input[..header + len],
        },
        &rest[len..],
    ))
}

fn eof(what: &str) -> anyhow::Error {
    anyhow::anyhow!("DER: truncated before {what}")
}

/// Reads one TLV with tag `tag`.
pub fn expect(input: &[u8], tag: u8) -> Result<(Tlv<'_>, &[u8])> {
    let (t, rest) = read(input)?;
    if t.tag != tag {
        bail!("DER: expected tag 0x{tag:02x}, found 0x{:02x}", t.tag);
    }
    Ok((t, rest))
}

/// Every TLV inside `content`, in order.
pub fn children(mut content: &[u8]) -> Result<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (t, rest) = read(content)?;
        out.push(t);
        content = rest;
    }
    Ok(out)
}

/// The text of a directory string (UTF8String, PrintableString,
/// IA5String, T61String as Latin-1, BMPString).
pub fn string(t: &Tlv) -> String {
    match t.tag {
        0x1e => {
            let units: Vec<u16> = t
                .content
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        0x14 => t.content.iter().map(|b| char::from(*b)).collect(),
        _ => String::from_utf8_lossy(t.content).into_owned(),
    }
}

/// An X.501 Name as `CN` when it has one, else its attributes joined
/// (`C=US, O=SnakeOil`), with the short names of the common ones.
pub fn name(t: &Tlv) -> Result<String> {
    let mut parts = Vec::new();
    for rdn in children(t.content)? {
        for atv in children(rdn.content)? {
            let (oid, rest) = expect(atv.content, OID)?;
            let (value, _) = read(rest)?;
            let key = match oid.content {
                [0x55, 0x04, 0x03] => "CN",
                [0x55, 0x04, 0x06] => "C",
                [0x55, 0x04, 0x07] => "L",
                [0x55, 0x04, 0x08] => "ST",
                [0x55, 0x04, 0x0a] => "O",
                [0x55, 0x04, 0x0b] => "OU",
                _ => continue,
            };
            parts.push((key, string(&value)));
        }
    }
    if let Some((_, cn)) = parts.iter().find(|(k, _)| *k == "CN") {
        return Ok(cn.clone());
    }
    Ok(parts
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let (t, rest) = read(&[0x04, 0x02, 1, 2, 9]).unwrap();
        assert_eq!((t.tag, t.content, rest), (0x04, &[1u8, 2][..], &[9u8][..]));
        let mut long = vec![0x04, 0x81, 200];
        long.extend([7u8; 200]);
        let (t, rest) = read(&long).unwrap();
        assert_eq!((t.content.len(), t.raw.len(), rest.len()), (200, 203, 0));
    }

    #[test]
    fn refuses_truncated_and_odd_forms() {
        assert!(read(&[]).is_err());
        assert!(read(&[0x30]).is_err());
        assert!(read(&[0x30, 0x05, 1]).is_err(), "content past the end");
        assert!(read(&[0x30, 0x80]).is_err(), "indefinite length is BER");
        assert!(read(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err());
        assert!(read(&[0x1f, 0x01, 0x00]).is_err());
        assert!(expect(&[0x31, 0x00], SEQUENCE).is_err());
    }

    #[test]
    fn names_prefer_the_common_name() {
        // SEQ { SET { SEQ { O, "Snake" } } , SET { SEQ { C, "US" } } }
        let o = [
            0x31, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x04, 0x0a, 0x13, 0x03, b'S', b'n', b'k',
        ];
        let c = [
            0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, b'U', b'S',
        ];
        let mut seq = vec![0x30, (o.len() + c.len()) as u8];
        seq.extend(c);
        seq.extend(o);
        let (t, _) = read(&seq).unwrap();
        assert_eq!(name(&t).unwrap(), "C=US, O=Snk");
        let cn = [
            0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x02, b'h', b'i',
        ];
        let mut seq = vec![0x30, (o.len() + cn.len()) as u8];
        seq.extend(o);
        seq.extend(cn);
        let (t, _) = read(&seq).unwrap();
        assert_eq!(name(&t).unwrap(), "hi");
    }
}
