//! The bytes of planned directories: ISO 9660 and Joliet directory
//! extents and the four path tables. Pure functions of the plan; used
//! twice, once with placeholder LBAs to size the extents (a record's
//! length does not depend on the LBAs in it) and once to emit them.

use std::collections::HashMap;

use super::encode::{blocks, SECTOR};
use super::plan::{DirPlan, FilePlan};
use super::records::{self, FLAG_DIR, FLAG_MULTI, MAX_EXTENT};
use super::susp::{self, Packed};

/// Where a record's continuation area went, per (dir, slot): slot 0 is
/// `.`, 1 is `..`, 2+i child i. Value: (LBA, offset, length).
pub type CeMap = HashMap<(usize, usize), (u32, u32, u32)>;

/// The record's System Use bytes, its CE entry pointing at its area.
fn with_ce(p: &Packed, key: (usize, usize), ce: &CeMap) -> Vec<u8> {
    let mut b = p.inline.clone();
    if let Some(at) = p.ce_at {
        let (lba, off, len) = ce[&key];
        b[at..at + susp::CE_LEN].copy_from_slice(&susp::ce(lba, off, len));
    }
    b
}

/// Number of extents a file of `size` bytes is written as.
fn extents(size: u64) -> u64 {
    blocks(size, MAX_EXTENT).max(1)
}

/// Directory `i` of the ISO 9660 tree, with Rock Ridge.
pub fn iso_dir_bytes(
    dirs: &[DirPlan],
    files: &[FilePlan],
    i: usize,
    epoch: i64,
    ce: &CeMap,
) -> Vec<u8> {
    let d = &dirs[i];
    let p = &dirs[d.parent];
    let dot = with_ce(&d.dot, (i, 0), ce);
    let dotdot = with_ce(&d.dotdot, (i, 1), ce);
    let mut recs = vec![
        records::dir_record(&[0], d.iso_lba, d.iso_size, FLAG_DIR, epoch, &dot),
        records::dir_record(&[1], p.iso_lba, p.iso_size, FLAG_DIR, epoch, &dotdot),
    ];
    for (k, c) in d.children.iter().enumerate() {
        let su = with_ce(&c.susp, (i, 2 + k), ce);
        if let Some(sub) = c.dir {
            let s = &dirs[sub];
            recs.push(records::dir_record(
                &c.iso_ident,
                s.iso_lba,
                s.iso_size,
                FLAG_DIR,
                epoch,
                &su,
            ));
        } else if let Some(f) = c.file {
            file_records(&mut recs, &c.iso_ident, &files[f], epoch, &su);
        } else {
            recs.push(records::dir_record(&c.iso_ident, 0, 0, 0, epoch, &su));
        }
    }
    records::pack_records(&recs)
}

/// A file's records: one per extent, all but the last flagged multi-extent.
fn file_records(recs: &mut Vec<Vec<u8>>, ident: &[u8], f: &FilePlan, epoch: i64, su: &[u8]) {
    let n = extents(f.size);
    for k in 0..n {
        let off = k * MAX_EXTENT;
        let len = (f.size - off.min(f.size)).min(MAX_EXTENT);
        let lba = if f.size == 0 {
            0
        } else {
            f.lba + (off / SECTOR) as u32
        };
        let flags = if k + 1 < n { FLAG_MULTI } else { 0 };
        recs.push(records::dir_record(
            ident, lba, len as u32, flags, epoch, su,
        ));
    }
}

/// Directory `i` of the Joliet tree (no System Use).
pub fn joliet_dir_bytes(dirs: &[DirPlan], files: &[FilePlan], i: usize, epoch: i64) -> Vec<u8> {
    let d = &dirs[i];
    let p = &dirs[d.parent];
    let mut recs = vec![
        records::dir_record(&[0], d.jol_lba, d.jol_size, FLAG_DIR, epoch, &[]),
        records::dir_record(&[1], p.jol_lba, p.jol_size, FLAG_DIR, epoch, &[]),
    ];
    for &k in &d.joliet_order {
        let c = &d.children[k];
        if let Some(sub) = c.dir {
            let s = &dirs[sub];
            recs.push(records::dir_record(
                &c.joliet_ident,
                s.jol_lba,
                s.jol_size,
                FLAG_DIR,
                epoch,
                &[],
            ));
        } else if let Some(f) = c.file {
            file_records(&mut recs, &c.joliet_ident, &files[f], epoch, &[]);
        } else {
            recs.push(records::dir_record(&c.joliet_ident, 0, 0, 0, epoch, &[]));
        }
    }
    records::pack_records(&recs)
}

/// Path table (L or M) for one tree: breadth-first, children in identifier order.
pub fn path_table(dirs: &[DirPlan], joliet: bool, big_endian: bool) -> Vec<u8> {
    let mut order = vec![0usize];
    let mut number = vec![0u16; dirs.len()];
    let mut qi = 0;
    let mut out = Vec::new();
    while qi < order.len() {
        let i = order[qi];
        qi += 1;
        number[i] = qi as u16;
        let d = &dirs[i];
        let (ident, lba) = if joliet {
            (&d.joliet_ident, d.jol_lba)
        } else {
            (&d.iso_ident, d.iso_lba)
        };
        out.extend(records::path_record(
            ident,
            lba,
            number[d.parent].max(1),
            big_endian,
        ));
        let kids: Vec<usize> = if joliet {
            d.joliet_order
                .iter()
                .filter_map(|&k| d.children[k].dir)
                .collect()
        } else {
            d.children.iter().filter_map(|c| c.dir).collect()
        };
        order.extend(kids);
    }
    out
}

/// The records that need a continuation area, in (dir, slot) order.
pub fn continuation_keys(dirs: &[DirPlan]) -> Vec<(usize, usize)> {
    let mut keys = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        if d.dot.ce_at.is_some() {
            keys.push((i, 0));
        }
        if d.dotdot.ce_at.is_some() {
            keys.push((i, 1));
        }
        for (k, c) in d.children.iter().enumerate() {
            if c.susp.ce_at.is_some() {
                keys.push((i, 2 + k));
            }
        }
    }
    keys
}

/// The packed SUSP entries of one (dir, slot).
pub fn packed(dirs: &[DirPlan], (i, slot): (usize, usize)) -> &Packed {
    match slot {
        0 => &dirs[i].dot,
        1 => &dirs[i].dotdot,
        k => &dirs[i].children[k - 2].susp,
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::plan_tree;
    use super::super::tree::{FileSource, Tree};
    use super::*;

    #[test]
    fn file_records_split_at_the_extent_limit() {
        let src = FileSource::Bytes(Vec::new());
        let f = |size| FilePlan {
            path: "f".into(),
            src: &src,
            size,
            lba: 100,
            expect: None,
        };
        let mut recs = Vec::new();
        file_records(&mut recs, b"F;1", &f(0), 0, &[]);
        assert_eq!(recs.len(), 1);
        assert_eq!(&recs[0][2..6], &0u32.to_le_bytes(), "empty file: LBA 0");
        let mut recs = Vec::new();
        file_records(&mut recs, b"F;1", &f(MAX_EXTENT + 10), 0, &[]);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0][25] & FLAG_MULTI, FLAG_MULTI);
        assert_eq!(recs[1][25] & FLAG_MULTI, 0);
        assert_eq!(&recs[0][10..14], &(MAX_EXTENT as u32).to_le_bytes());
        assert_eq!(&recs[1][10..14], &10u32.to_le_bytes());
        let second = 100 + (MAX_EXTENT / SECTOR) as u32;
        assert_eq!(&recs[1][2..6], &second.to_le_bytes());
    }

    #[test]
    fn path_table_lists_directories_breadth_first_with_parent_numbers() {
        let mut t = Tree::new();
        t.add_dir("/a/deep", 0o755).unwrap();
        t.add_dir("/b", 0o755).unwrap();
        let p = plan_tree(&t.root, 0).unwrap();
        let table = path_table(&p.dirs, false, false);
        // Root (ident 1 byte, padded to 10), A (9 + 1 pad), B, DEEP (12).
        assert_eq!(table.len(), 10 + 10 + 10 + 12);
        assert_eq!(&table[8..9], &[0]);
        assert_eq!(&table[18..19], b"A");
        assert_eq!(&table[28..29], b"B");
        assert_eq!(&table[38..42], b"DEEP");
        // DEEP's parent is directory number 2 (A).
        assert_eq!(&table[36..38], &2u16.to_le_bytes());
        let m = path_table(&p.dirs, false, true);
        assert_eq!(&m[36..38], &2u16.to_be_bytes());
    }
}
