//! File identifiers for the two directory trees: ISO 9660 level-2 names
//! (d-characters, `NAME.EXT;1`) for the primary tree, whose real names are
//! carried by Rock Ridge, and UCS-2 names of at most 64 characters for
//! Joliet. Both are made unique within a directory deterministically.

use std::collections::HashSet;

use super::encode::ucs2be;

/// Longest Joliet identifier, in UCS-2 code units.
pub const JOLIET_MAX: usize = 64;

fn d_chars(s: &str) -> String {
    s.chars()
        .map(|c| {
            let c = c.to_ascii_uppercase();
            if c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn with_suffix(base: &str, n: usize, max: usize) -> String {
    let suffix = format!("_{n}");
    let keep = max.saturating_sub(suffix.len()).min(base.len());
    format!("{}{}", &base[..keep], suffix)
}

/// The primary-tree identifier for `name` (without uniqueness handling):
/// `(base, ext)`; `ext` is `None` for directories.
fn primary_parts(name: &str, is_dir: bool) -> (String, Option<String>) {
    if is_dir {
        let mut b = d_chars(name);
        b.truncate(31);
        return (b, None);
    }
    let (base, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i + 1..]),
        _ => (name, ""),
    };
    let mut ext = d_chars(ext);
    ext.truncate(8);
    let mut base = d_chars(base);
    base.truncate(30 - ext.len());
    (base, Some(ext))
}

/// Assigns unique primary identifiers (bytes, as written in the directory
/// record) to the entries of one directory, given in any order.
pub fn primary_names(entries: &[(&str, bool)]) -> Vec<Vec<u8>> {
    let mut used = HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for (name, is_dir) in entries {
        let (base, ext) = primary_parts(name, *is_dir);
        let max = if ext.is_some() {
            30 - ext.as_ref().map_or(0, |e| e.len())
        } else {
            31
        };
        let mut candidate = base.clone();
        let mut n = 1;
        while !used.insert((candidate.clone(), ext.clone())) {
            candidate = with_suffix(&base, n, max);
            n += 1;
        }
        let ident = match ext {
            Some(e) => format!("{candidate}.{e};1"),
            None => candidate,
        };
        out.push(ident.into_bytes());
    }
    out
}

fn joliet_clean(name: &str) -> Vec<u16> {
    name.chars()
        .map(|c| {
            if matches!(c, '*' | '/' | ':' | ';' | '?' | '\\') || (c as u32) < 0x20 {
                '_'
            } else {
                c
            }
        })
        .collect::<String>()
        .encode_utf16()
        .collect()
}

fn joliet_shorten(units: &[u16], ext_len: usize, suffix: &[u16]) -> Vec<u16> {
    let keep_ext = if ext_len + suffix.len() < JOLIET_MAX / 2 {
        ext_len
    } else {
        0
    };
    let (base, ext) = units.split_at(units.len() - keep_ext);
    let room = JOLIET_MAX - keep_ext - suffix.len();
    let mut out: Vec<u16> = base[..base.len().min(room)].to_vec();
    // Never split a surrogate pair.
    if out.last().is_some_and(|u| (0xD800..0xDC00).contains(u)) {
        out.pop();
    }
    out.extend_from_slice(suffix);
    out.extend_from_slice(ext);
    out
}

/// Assigns unique Joliet identifiers (UCS-2 big-endian bytes) to the
/// entries of one directory: names over 64 characters are truncated
/// (keeping a short extension) and collisions get a `~N` suffix.
pub fn joliet_names(entries: &[&str]) -> Vec<Vec<u8>> {
    let mut used = HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for name in entries {
        let units = joliet_clean(name);
        let ext_len = name
            .rfind('.')
            .filter(|&i| i > 0)
            .map_or(0, |i| name[i..].encode_utf16().count());
        let mut candidate = if units.len() > JOLIET_MAX {
            joliet_shorten(&units, ext_len, &[])
        } else {
            units.clone()
        };
        let mut n = 1;
        while !used.insert(candidate.clone()) {
            let suffix: Vec<u16> = format!("~{n}").encode_utf16().collect();
            candidate = joliet_shorten(&units, ext_len, &suffix);
            n += 1;
        }
        let s = String::from_utf16_lossy(&candidate);
        out.push(ucs2be(&s));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_names_are_level2_and_unique() {
        let names = primary_names(&[
            ("isolinux.cfg", false),
            ("ldlinux.c32", false),
            ("sha256", true),
            ("a-b.tar.gz", false),
            ("noext", false),
            ("0123456789012345678901234567890123456789", false),
            ("0123456789012345678901234567890123456789xx", false),
        ]);
        let s: Vec<String> = names
            .iter()
            .map(|n| String::from_utf8(n.clone()).unwrap())
            .collect();
        assert_eq!(s[0], "ISOLINUX.CFG;1");
        assert_eq!(s[1], "LDLINUX.C32;1");
        assert_eq!(s[2], "SHA256");
        assert_eq!(s[3], "A_B_TAR.GZ;1");
        assert_eq!(s[4], "NOEXT.;1");
        assert_eq!(s[5], "012345678901234567890123456789.;1");
        assert_eq!(s[6], "0123456789012345678901234567_1.;1");
    }

    #[test]
    fn joliet_names_truncate_to_64_and_stay_unique() {
        let long_a = format!("{}.json", "a".repeat(80));
        let long_b = format!("{}b.json", "a".repeat(80));
        let hex = "f".repeat(64);
        let names = joliet_names(&[&long_a, &long_b, &hex, "x:y"]);
        let back: Vec<String> = names
            .iter()
            .map(|b| {
                String::from_utf16(
                    &b.chunks(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect::<Vec<_>>(),
                )
                .unwrap()
            })
            .collect();
        assert_eq!(back[0].encode_utf16().count(), 64);
        assert!(back[0].ends_with(".json"));
        assert_ne!(back[0], back[1]);
        assert!(back[1].ends_with("~1.json"));
        assert_eq!(back[2], hex);
        assert_eq!(back[3], "x_y");
    }
}
