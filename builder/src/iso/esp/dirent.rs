//! FAT directory entries: 8.3 short names (with `~N` tails when needed),
//! VFAT long-name entries and their checksum, and the 32-byte entry with
//! the epoch as every timestamp.

use airlift_oci::civil_time::civil;

pub fn fat_date_time(epoch: i64) -> (u16, u16) {
    let c = civil(epoch);
    let (y, mo, d, h, mi, s) = if c.year < 1980 {
        (1980, 1, 1, 0, 0, 0)
    } else if c.year > 2107 {
        (2107, 12, 31, 23, 59, 58)
    } else {
        (c.year, c.month, c.day, c.hour, c.minute, c.second)
    };
    let date = (((y - 1980) as u16) << 9) | (u16::from(mo) << 5) | u16::from(d);
    let time = (u16::from(h) << 11) | (u16::from(mi) << 5) | u16::from(s / 2);
    (date, time)
}

fn valid_83_char(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || "_-~!#$%&'()@^`{}".contains(c)
}

/// The 11-byte short name if `name` is already a plain upper-case 8.3 name.
pub fn plain_83(name: &str) -> Option<[u8; 11]> {
    let (base, ext) = match name.split_once('.') {
        Some((b, e)) => (b, e),
        None => (name, ""),
    };
    if base.is_empty() || base.len() > 8 || ext.len() > 3 || ext.contains('.') {
        return None;
    }
    if !base.chars().chain(ext.chars()).all(valid_83_char) {
        return None;
    }
    let mut out = [b' '; 11];
    out[..base.len()].copy_from_slice(base.as_bytes());
    out[8..8 + ext.len()].copy_from_slice(ext.as_bytes());
    Some(out)
}

fn short_basis(name: &str) -> (String, String) {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| c.to_ascii_uppercase())
            .filter(|&c| c != ' ' && c != '.')
            .map(|c| if valid_83_char(c) { c } else { '_' })
            .collect()
    };
    match name.rfind('.') {
        Some(i) if i > 0 => (
            clean(&name[..i]),
            clean(&name[i + 1..]).chars().take(3).collect(),
        ),
        _ => (clean(name), String::new()),
    }
}

/// Short names for one directory's entries (in the given order): plain
/// 8.3 names as they are, upper-cased 8.3 names if unique, else `BASE~N`.
/// The bool says whether long-name entries are needed.
pub fn short_names(names: &[&str]) -> Vec<([u8; 11], bool)> {
    let mut used = std::collections::HashSet::new();
    let mut out = Vec::new();
    for name in names {
        if let Some(s) = plain_83(name) {
            used.insert(s);
            out.push((s, false));
            continue;
        }
        if let Some(s) = plain_83(&name.to_ascii_uppercase()) {
            if used.insert(s) {
                out.push((s, true));
                continue;
            }
        }
        let (base, ext) = short_basis(name);
        let base = if base.is_empty() {
            "_".to_string()
        } else {
            base
        };
        let mut n = 1;
        loop {
            let tail = format!("~{n}");
            let keep = (8 - tail.len()).min(base.len());
            let mut s = [b' '; 11];
            let b = format!("{}{}", &base[..keep], tail);
            s[..b.len()].copy_from_slice(b.as_bytes());
            s[8..8 + ext.len()].copy_from_slice(ext.as_bytes());
            if used.insert(s) {
                out.push((s, true));
                break;
            }
            n += 1;
        }
    }
    out
}

/// The VFAT checksum of a short name.
pub fn lfn_checksum(short: &[u8; 11]) -> u8 {
    short.iter().fold(0u8, |sum, &c| {
        ((sum & 1) << 7).wrapping_add(sum >> 1).wrapping_add(c)
    })
}

/// Long-name entries for `name`, in on-disk order (last piece first).
pub fn lfn_entries(name: &str, short: &[u8; 11]) -> Vec<[u8; 32]> {
    let units: Vec<u16> = name.encode_utf16().collect();
    let count = units.len().div_ceil(13);
    let sum = lfn_checksum(short);
    let mut out = Vec::with_capacity(count);
    for seq in (1..=count).rev() {
        let mut chars = [0xFFFFu16; 13];
        for (i, slot) in chars.iter_mut().enumerate() {
            let idx = (seq - 1) * 13 + i;
            if idx < units.len() {
                *slot = units[idx];
            } else if idx == units.len() {
                *slot = 0;
            }
        }
        let mut e = [0u8; 32];
        e[0] = seq as u8 | if seq == count { 0x40 } else { 0 };
        e[11] = 0x0F;
        e[13] = sum;
        let put = |e: &mut [u8; 32], off: usize, cs: &[u16]| {
            for (i, c) in cs.iter().enumerate() {
                e[off + 2 * i..off + 2 * i + 2].copy_from_slice(&c.to_le_bytes());
            }
        };
        put(&mut e, 1, &chars[0..5]);
        put(&mut e, 14, &chars[5..11]);
        put(&mut e, 28, &chars[11..13]);
        out.push(e);
    }
    out
}

/// One 32-byte directory entry.
pub fn dir_entry(short: &[u8; 11], attr: u8, cluster: u32, size: u32, epoch: i64) -> [u8; 32] {
    let (date, time) = fat_date_time(epoch);
    let mut e = [0u8; 32];
    e[..11].copy_from_slice(short);
    e[11] = attr;
    e[14..16].copy_from_slice(&time.to_le_bytes());
    e[16..18].copy_from_slice(&date.to_le_bytes());
    e[18..20].copy_from_slice(&date.to_le_bytes());
    e[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
    e[22..24].copy_from_slice(&time.to_le_bytes());
    e[24..26].copy_from_slice(&date.to_le_bytes());
    e[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
    e[28..32].copy_from_slice(&size.to_le_bytes());
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_names() {
        assert_eq!(&plain_83("BOOTX64.EFI").unwrap(), b"BOOTX64 EFI");
        assert!(plain_83("loader").is_none());
        assert!(plain_83("a.b.c").is_none());
        let s = short_names(&[
            "loader",
            "LOADER.CONF",
            "entries",
            "systemd-bootx64.efi",
            "systemd-bootx64.efi2",
        ]);
        assert_eq!(&s[0].0, b"LOADER     ");
        assert!(s[0].1);
        assert_eq!(&s[1].0, b"LOADER~1CON");
        assert!(s[1].1);
        assert_eq!(&s[2].0, b"ENTRIES    ");
        assert_eq!(&s[3].0, b"SYSTEM~1EFI");
        assert_eq!(&s[4].0, b"SYSTEM~2EFI");
    }

    #[test]
    fn lfn_layout() {
        let short = *b"LOADER     ";
        let e = lfn_entries("loader.conf", &short);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0][0], 0x41);
        assert_eq!(e[0][11], 0x0F);
        assert_eq!(e[0][13], lfn_checksum(&short));
        assert_eq!(&e[0][1..3], &[b'l', 0]);
        // 11 chars, then a NUL, then 0xFFFF padding.
        assert_eq!(&e[0][28..30], &[0, 0]);
        assert_eq!(&e[0][30..32], &[0xFF, 0xFF]);
        assert_eq!(lfn_entries(&"x".repeat(26), &short).len(), 2);
    }

    #[test]
    fn dates_clamp_to_fat_range() {
        assert_eq!(fat_date_time(0), ((1 << 5) | 1, 0));
    }
}
