//! System Use Sharing Protocol (SUSP 1.12) and Rock Ridge (RRIP 1.10)
//! entries: SP, PX, TF, NM, SL, ER and CE, and the packing of a record's
//! entries into its System Use area plus at most one continuation area.

use anyhow::{bail, Result};

use super::encode::{both32, dir_date};

/// The Rock Ridge extension identifier announced by the ER entry.
pub const RRIP_ID: &[u8] = b"RRIP_1991A";
const RRIP_DES: &[u8] =
    b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
const RRIP_SRC: &[u8] = b"PLEASE CONTACT THE DISC PUBLISHER FOR THE SPECIFICATION SOURCE";
/// Length of a CE entry.
pub const CE_LEN: usize = 28;

fn entry(sig: &[u8; 2], body: &[u8]) -> Vec<u8> {
    let mut e = Vec::with_capacity(4 + body.len());
    e.extend_from_slice(sig);
    e.push((4 + body.len()) as u8);
    e.push(1);
    e.extend_from_slice(body);
    e
}

/// SP: marks SUSP use, in the first record (`.`) of the root directory.
pub fn sp() -> Vec<u8> {
    entry(b"SP", &[0xBE, 0xEF, 0])
}

/// PX: POSIX mode, link count, uid and gid (RRIP 1.10, 36 bytes).
pub fn px(st_mode: u32, nlink: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(32);
    b.extend_from_slice(&both32(st_mode));
    b.extend_from_slice(&both32(nlink));
    b.extend_from_slice(&both32(0));
    b.extend_from_slice(&both32(0));
    entry(b"PX", &b)
}

/// TF: modification, access and attribute-change times, all `epoch`.
pub fn tf(epoch: i64) -> Vec<u8> {
    let mut b = vec![0x02 | 0x04 | 0x08];
    for _ in 0..3 {
        b.extend_from_slice(&dir_date(epoch));
    }
    entry(b"TF", &b)
}

/// NM: the real name, split over several entries (CONTINUE flag) when long.
pub fn nm(name: &str) -> Vec<Vec<u8>> {
    let bytes = name.as_bytes();
    let chunks: Vec<&[u8]> = bytes.chunks(250).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut b = vec![u8::from(i + 1 < chunks.len())];
            b.extend_from_slice(c);
            entry(b"NM", &b)
        })
        .collect()
}

/// SL: a symlink target as component records, split over several SL
/// entries (CONTINUE flag) when long.
pub fn sl(target: &str) -> Vec<Vec<u8>> {
    let mut comps: Vec<Vec<u8>> = Vec::new();
    if target.starts_with('/') {
        comps.push(vec![0x08, 0]);
    }
    for part in target.split('/').filter(|p| !p.is_empty()) {
        match part {
            "." => comps.push(vec![0x02, 0]),
            ".." => comps.push(vec![0x04, 0]),
            _ => {
                let chunks: Vec<&[u8]> = part.as_bytes().chunks(200).collect();
                for (i, c) in chunks.iter().enumerate() {
                    let mut r = vec![u8::from(i + 1 < chunks.len()), c.len() as u8];
                    r.extend_from_slice(c);
                    comps.push(r);
                }
            }
        }
    }
    let mut groups: Vec<Vec<u8>> = vec![Vec::new()];
    for c in comps {
        let cur = groups.last_mut().expect("non-empty");
        if 5 + cur.len() + c.len() > 255 {
            groups.push(c);
        } else {
            cur.extend_from_slice(&c);
        }
    }
    let n = groups.len();
    groups
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            let mut b = vec![u8::from(i + 1 < n)];
            b.extend_from_slice(&g);
            entry(b"SL", &b)
        })
        .collect()
}

/// ER: announces the Rock Ridge extension (root `.` record).
pub fn er() -> Vec<u8> {
    let mut b = vec![
        RRIP_ID.len() as u8,
        RRIP_DES.len() as u8,
        RRIP_SRC.len() as u8,
        1,
    ];
    b.extend_from_slice(RRIP_ID);
    b.extend_from_slice(RRIP_DES);
    b.extend_from_slice(RRIP_SRC);
    entry(b"ER", &b)
}

/// CE: points at the continuation area holding the remaining entries.
pub fn ce(lba: u32, offset: u32, len: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(24);
    b.extend_from_slice(&both32(lba));
    b.extend_from_slice(&both32(offset));
    b.extend_from_slice(&both32(len));
    entry(b"CE", &b)
}

/// A record's SUSP entries once packed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Packed {
    /// Bytes for the System Use area (a CE placeholder at `ce_at` if any).
    pub inline: Vec<u8>,
    /// Offset of the CE entry inside `inline`, when there is a continuation.
    pub ce_at: Option<usize>,
    /// Bytes of the continuation area.
    pub cont: Vec<u8>,
}

/// Packs `entries` into `room` bytes of System Use area, moving the tail
/// into one continuation area (at most one 2048-byte block) when needed.
pub fn pack(entries: Vec<Vec<u8>>, room: usize) -> Result<Packed> {
    let total: usize = entries.iter().map(Vec::len).sum();
    if total <= room {
        return Ok(Packed {
            inline: entries.concat(),
            ce_at: None,
            cont: Vec::new(),
        });
    }
    let mut inline = Vec::new();
    let mut cont = Vec::new();
    let mut spilled = false;
    for e in entries {
        if !spilled && inline.len() + e.len() + CE_LEN <= room {
            inline.extend_from_slice(&e);
        } else {
            spilled = true;
            cont.extend_from_slice(&e);
        }
    }
    if inline.len() + CE_LEN > room {
        bail!("directory record has no room for a Rock Ridge continuation entry");
    }
    if cont.len() > 2048 {
        bail!("Rock Ridge data of one entry is {} bytes, more than one 2048-byte block; shorten the name or symlink target", cont.len());
    }
    let ce_at = inline.len();
    inline.extend_from_slice(&ce(0, 0, 0));
    Ok(Packed {
        inline,
        ce_at: Some(ce_at),
        cont,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_entries() {
        assert_eq!(sp(), vec![b'S', b'P', 7, 1, 0xBE, 0xEF, 0]);
        let p = px(0o100644, 1);
        assert_eq!(p.len(), 36);
        assert_eq!(&p[4..8], &0o100644u32.to_le_bytes());
        assert_eq!(&p[8..12], &0o100644u32.to_be_bytes());
        assert_eq!(tf(0).len(), 26);
        assert_eq!(tf(0)[4], 0x0E);
        assert_eq!(ce(20, 8, 100).len(), CE_LEN);
        let e = er();
        assert_eq!(e[2] as usize, e.len());
        assert_eq!(&e[8..18], RRIP_ID);
    }

    #[test]
    fn nm_splits_long_names() {
        let long = "x".repeat(255);
        let parts = nm(&long);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0][4], 1);
        assert_eq!(parts[1][4], 0);
        assert_eq!(parts[0].len() - 5 + parts[1].len() - 5, 255);
        assert_eq!(nm("vmlinuz"), vec![b"NM\x0c\x01\x00vmlinuz".to_vec()]);
    }

    #[test]
    fn sl_components() {
        let e = &sl("/usr/../lib")[0];
        // header, flags, then ROOT, PARENT... components.
        assert_eq!(&e[..2], b"SL");
        assert_eq!(e[4], 0);
        assert_eq!(&e[5..7], &[0x08, 0]);
        assert_eq!(&e[7..12], &[0, 3, b'u', b's', b'r']);
        assert_eq!(&e[12..14], &[0x04, 0]);
        assert_eq!(&e[14..19], &[0, 3, b'l', b'i', b'b']);
        let long = sl(&vec!["abcdefghij"; 60].join("/"));
        assert!(long.len() > 1);
        assert!(long.iter().all(|e| e.len() <= 255));
        assert_eq!(long[0][4], 1);
    }

    #[test]
    fn pack_spills_into_continuation() {
        let small = pack(vec![px(0, 1), tf(0)], 200).unwrap();
        assert_eq!(small.inline.len(), 62);
        assert!(small.ce_at.is_none());
        let big = pack(vec![sp(), px(0, 1), tf(0), er()], 150).unwrap();
        assert_eq!(big.ce_at, Some(7 + 36 + 26));
        assert_eq!(&big.inline[69..71], b"CE");
        assert_eq!(big.cont, er());
    }
}
