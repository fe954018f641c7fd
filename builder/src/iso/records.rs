//! ISO 9660 structures: directory records, volume descriptors (primary
//! and Joliet supplementary) and path table records.

use super::encode::{both16, both32, dir_date, put_padded, ucs2be, vol_date, vol_date_unset};

/// Largest extent of one directory record: 4 GiB minus one sector.
pub const MAX_EXTENT: u64 = 0xFFFF_F800;
/// Directory flag.
pub const FLAG_DIR: u8 = 0x02;
/// Multi-extent flag: more records of this file follow.
pub const FLAG_MULTI: u8 = 0x80;

/// Length of the fixed part plus identifier (and its pad byte).
pub fn record_base_len(ident_len: usize) -> usize {
    33 + ident_len + usize::from(ident_len & 1 == 0)
}

/// One directory record; `su` is the System Use area (SUSP entries).
pub fn dir_record(ident: &[u8], lba: u32, size: u32, flags: u8, epoch: i64, su: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(record_base_len(ident.len()) + su.len() + 1);
    r.push(0);
    r.push(0);
    r.extend_from_slice(&both32(lba));
    r.extend_from_slice(&both32(size));
    r.extend_from_slice(&dir_date(epoch));
    r.push(flags);
    r.push(0);
    r.push(0);
    r.extend_from_slice(&both16(1));
    r.push(ident.len() as u8);
    r.extend_from_slice(ident);
    if ident.len() & 1 == 0 {
        r.push(0);
    }
    r.extend_from_slice(su);
    if r.len() % 2 == 1 {
        r.push(0);
    }
    assert!(r.len() <= 255, "directory record longer than 255 bytes");
    r[0] = r.len() as u8;
    r
}

/// Packs records into 2048-byte sectors; a record never crosses a sector.
pub fn pack_records(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        let used = out.len() % 2048;
        if used + r.len() > 2048 {
            out.resize(out.len() + 2048 - used, 0);
        }
        out.extend_from_slice(r);
    }
    let len = out.len().div_ceil(2048).max(1) * 2048;
    out.resize(len, 0);
    out
}

/// Which volume descriptor to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Descriptor {
    Primary,
    Joliet,
}

/// Inputs of a primary or Joliet volume descriptor.
pub struct VolumeInfo<'a> {
    pub volume_id: &'a str,
    pub volume_sectors: u32,
    pub path_table_size: u32,
    pub l_table_lba: u32,
    pub m_table_lba: u32,
    pub root_record: &'a [u8],
    pub epoch: i64,
}

fn put_text(kind: Descriptor, dst: &mut [u8], s: &str) {
    match kind {
        Descriptor::Primary => put_padded(dst, s.as_bytes(), b' '),
        Descriptor::Joliet => {
            let enc = ucs2be(s);
            for (i, pair) in dst.chunks_mut(2).enumerate() {
                let (a, b) = match enc.get(2 * i..2 * i + 2) {
                    Some(p) => (p[0], p[1]),
                    None => (0, b' '),
                };
                pair[0] = a;
                if pair.len() > 1 {
                    pair[1] = b;
                }
            }
        }
    }
}

/// A primary (type 1) or Joliet supplementary (type 2) volume descriptor.
pub fn volume_descriptor(kind: Descriptor, v: &VolumeInfo) -> [u8; 2048] {
    let mut s = [0u8; 2048];
    s[0] = if kind == Descriptor::Primary { 1 } else { 2 };
    s[1..6].copy_from_slice(b"CD001");
    s[6] = 1;
    put_text(kind, &mut s[8..40], "");
    put_text(kind, &mut s[40..72], v.volume_id);
    s[80..88].copy_from_slice(&both32(v.volume_sectors));
    if kind == Descriptor::Joliet {
        s[88..91].copy_from_slice(b"%/E");
    }
    s[120..124].copy_from_slice(&both16(1));
    s[124..128].copy_from_slice(&both16(1));
    s[128..132].copy_from_slice(&both16(2048));
    s[132..140].copy_from_slice(&both32(v.path_table_size));
    s[140..144].copy_from_slice(&v.l_table_lba.to_le_bytes());
    s[148..152].copy_from_slice(&v.m_table_lba.to_be_bytes());
    s[156..190].copy_from_slice(v.root_record);
    put_text(kind, &mut s[190..318], "");
    put_text(kind, &mut s[318..446], "");
    put_text(kind, &mut s[446..574], "");
    put_text(kind, &mut s[574..702], "AIRLIFT");
    put_text(kind, &mut s[702..813], "");
    s[813..830].copy_from_slice(&vol_date(v.epoch));
    s[830..847].copy_from_slice(&vol_date(v.epoch));
    s[847..864].copy_from_slice(&vol_date_unset());
    s[864..881].copy_from_slice(&vol_date(v.epoch));
    s[881] = 1;
    s
}

/// The volume descriptor set terminator.
pub fn terminator() -> [u8; 2048] {
    let mut s = [0u8; 2048];
    s[0] = 255;
    s[1..6].copy_from_slice(b"CD001");
    s[6] = 1;
    s
}

/// One path table record, little-endian (L) or big-endian (M).
pub fn path_record(ident: &[u8], lba: u32, parent: u16, big_endian: bool) -> Vec<u8> {
    let mut r = vec![ident.len() as u8, 0];
    if big_endian {
        r.extend_from_slice(&lba.to_be_bytes());
        r.extend_from_slice(&parent.to_be_bytes());
    } else {
        r.extend_from_slice(&lba.to_le_bytes());
        r.extend_from_slice(&parent.to_le_bytes());
    }
    r.extend_from_slice(ident);
    if ident.len() % 2 == 1 {
        r.push(0);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_record_fields() {
        let r = dir_record(b"A.;1", 20, 5000, 0, 0, &[]);
        assert_eq!(r[0] as usize, r.len());
        assert_eq!(r.len(), 38);
        assert_eq!(&r[2..10], &both32(20));
        assert_eq!(&r[10..18], &both32(5000));
        assert_eq!(r[18], 70); // 1970
        assert_eq!(r[32], 4);
        assert_eq!(&r[33..37], b"A.;1");
        // An odd identifier needs no pad byte; odd System Use gets one.
        let r = dir_record(b"ABC", 1, 1, FLAG_DIR, 0, &[1, 2, 3]);
        assert_eq!(r.len(), 40);
        assert_eq!(r[25], FLAG_DIR);
        assert_eq!(record_base_len(3), 36);
        assert_eq!(record_base_len(4), 38);
    }

    #[test]
    fn records_never_cross_sectors() {
        let recs: Vec<Vec<u8>> = (0..20).map(|_| vec![0xAA; 200]).collect();
        let out = pack_records(&recs);
        assert_eq!(out.len(), 4096);
        assert_eq!(out[2000], 0);
        assert_eq!(out[2048], 0xAA);
    }

    #[test]
    fn descriptors() {
        let root = dir_record(&[0], 30, 2048, FLAG_DIR, 0, &[]);
        let v = VolumeInfo {
            volume_id: "AIRLIFT_TEST",
            volume_sectors: 100,
            path_table_size: 10,
            l_table_lba: 21,
            m_table_lba: 22,
            root_record: &root,
            epoch: 0,
        };
        let p = volume_descriptor(Descriptor::Primary, &v);
        assert_eq!(&p[40..52], b"AIRLIFT_TEST");
        assert_eq!(p[52], b' ');
        assert_eq!(&p[80..88], &both32(100));
        assert_eq!(&p[148..152], &22u32.to_be_bytes());
        let j = volume_descriptor(Descriptor::Joliet, &v);
        assert_eq!(j[0], 2);
        assert_eq!(&j[88..91], b"%/E");
        assert_eq!(&j[40..44], &[0, b'A', 0, b'I']);
        assert_eq!(&j[64..66], &[0, b' ']);
        assert_eq!(
            path_record(&[0], 30, 1, false),
            vec![1, 0, 30, 0, 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(
            path_record(b"AB", 30, 1, true),
            vec![2, 0, 0, 0, 0, 30, 0, 1, b'A', b'B']
        );
    }
}
