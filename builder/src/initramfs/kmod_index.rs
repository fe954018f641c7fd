//! kmod's binary index files (`modules.dep.bin`, `modules.alias.bin`, …),
//! which kmod's `modprobe` (and so udev's module autoloading) reads
//! instead of the text files. Without them it finds no module at all.
//!
//! Format (all integers u32 big-endian): magic `0xB007F457`, version
//! `0x00020001`, root node offset; then nodes of a radix trie whose
//! single-child chains are folded into a "prefix". A node offset carries
//! flags in its high nibble saying which parts the node has:
//! `0x80000000` prefix (NUL-ended string), `0x20000000` children (first
//! char, last char, one offset per char in between, 0 for none),
//! `0x40000000` values (count, then priority + NUL-ended string each,
//! ascending priority).

use std::collections::BTreeMap;

use anyhow::{bail, Result};

const MAGIC: u32 = 0xB007_F457;
const VERSION: u32 = 0x0002_0001;
const HAS_PREFIX: u32 = 0x8000_0000;
const HAS_VALUES: u32 = 0x4000_0000;
const HAS_CHILDREN: u32 = 0x2000_0000;
const OFFSET_MASK: u32 = 0x0FFF_FFFF;

/// Keys mapped to values with priorities; rendered with [`Index::encode`].
#[derive(Debug, Default, Clone)]
pub struct Index {
    entries: BTreeMap<Vec<u8>, Values>,
}

impl Index {
    pub fn new() -> Index {
        Index::default()
    }

    /// Adds a value for `key` (ASCII, as kmod's reader indexes children by
    /// 7-bit character). Duplicate values for a key are kept once.
    pub fn insert(&mut self, key: &str, value: &str, priority: u32) -> Result<()> {
        if !key.is_ascii() || key.bytes().any(|b| b == 0) || value.bytes().any(|b| b == 0) {
            bail!("kmod index key {key:?} must be ASCII without NUL");
        }
        let values = self.entries.entry(key.as_bytes().to_vec()).or_default();
        if !values.iter().any(|(_, v)| v == value) {
            values.push((priority, value.to_string()));
            values.sort();
        }
        Ok(())
    }

    /// The index file's bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let keys: Vec<Entry> = self
            .entries
            .iter()
            .map(|(k, v)| (k.as_slice(), v))
            .collect();
        let root = build(&keys, true);
        let mut out = vec![0u8; 12];
        let root_offset = write_node(&root, &mut out)?;
        out[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        out[4..8].copy_from_slice(&VERSION.to_be_bytes());
        out[8..12].copy_from_slice(&root_offset.to_be_bytes());
        Ok(out)
    }
}

/// Values of one key: (priority, value), ascending.
type Values = Vec<(u32, String)>;
/// A key (the part not yet consumed by the trie) and its values.
type Entry<'a> = (&'a [u8], &'a Values);

struct Node {
    prefix: Vec<u8>,
    values: Values,
    children: BTreeMap<u8, Node>,
}

/// Builds the trie of `keys` (sorted, unique, with the consumed part
/// already stripped): the node's prefix is the keys' common prefix (none
/// at the root), a key ending there gives the node's values, the rest
/// are grouped by their next character.
fn build(keys: &[Entry], root: bool) -> Node {
    let lcp = if root || keys.is_empty() {
        0
    } else {
        let first = keys[0].0;
        let mut n = first.len();
        for (k, _) in &keys[1..] {
            n = n.min(
                first
                    .iter()
                    .zip(k.iter())
                    .take_while(|(a, b)| a == b)
                    .count(),
            );
        }
        n
    };
    let prefix = keys.first().map_or(Vec::new(), |k| k.0[..lcp].to_vec());
    let mut values = Vec::new();
    let mut groups: BTreeMap<u8, Vec<Entry>> = BTreeMap::new();
    for (k, v) in keys {
        let rest = &k[lcp..];
        match rest.split_first() {
            None => values.extend(v.iter().cloned()),
            Some((c, tail)) => groups.entry(*c).or_default().push((tail, *v)),
        }
    }
    let children = groups
        .into_iter()
        .map(|(c, group)| (c, build(&group, false)))
        .collect();
    Node {
        prefix,
        values,
        children,
    }
}

/// Writes `node` after its children (so their offsets are known) and
/// returns its flagged offset.
fn write_node(node: &Node, out: &mut Vec<u8>) -> Result<u32> {
    let mut child_offsets = BTreeMap::new();
    for (c, child) in &node.children {
        child_offsets.insert(*c, write_node(child, out)?);
    }
    let offset = u32::try_from(out.len()).ok().filter(|o| *o <= OFFSET_MASK);
    let Some(offset) = offset else {
        bail!("kmod index larger than 256 MiB");
    };
    let mut flags = 0;
    if !node.prefix.is_empty() {
        flags |= HAS_PREFIX;
        out.extend_from_slice(&node.prefix);
        out.push(0);
    }
    if let (Some(first), Some(last)) = (
        child_offsets.keys().next().copied(),
        child_offsets.keys().next_back().copied(),
    ) {
        flags |= HAS_CHILDREN;
        out.push(first);
        out.push(last);
        for c in first..=last {
            let o = child_offsets.get(&c).copied().unwrap_or(0);
            out.extend_from_slice(&o.to_be_bytes());
        }
    }
    if !node.values.is_empty() {
        flags |= HAS_VALUES;
        out.extend_from_slice(&(node.values.len() as u32).to_be_bytes());
        for (prio, value) in &node.values {
            out.extend_from_slice(&prio.to_be_bytes());
            out.extend_from_slice(value.as_bytes());
            out.push(0);
        }
    }
    Ok(offset | flags)
}

/// Looks `key` up in an encoded index (exact match; for tests and checks).
pub fn lookup(index: &[u8], key: &str) -> Option<Vec<String>> {
    let be = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(index.get(at..at + 4)?.try_into().ok()?))
    };
    if be(0)? != MAGIC || be(4)? != VERSION {
        return None;
    }
    let mut node = be(8)?;
    let key = key.as_bytes();
    let mut i = 0;
    loop {
        let mut at = (node & OFFSET_MASK) as usize;
        if node & HAS_PREFIX != 0 {
            let end = at + index.get(at..)?.iter().position(|b| *b == 0)?;
            let prefix = &index[at..end];
            if key.get(i..i + prefix.len())? != prefix {
                return None;
            }
            i += prefix.len();
            at = end + 1;
        }
        let (mut first, mut last) = (1u8, 0u8);
        let children_at = at;
        if node & HAS_CHILDREN != 0 {
            first = *index.get(at)?;
            last = *index.get(at + 1)?;
            at += 2 + 4 * (last as usize - first as usize + 1);
        }
        if i == key.len() {
            if node & HAS_VALUES == 0 {
                return None;
            }
            let count = be(at)? as usize;
            at += 4;
            let mut values = Vec::with_capacity(count);
            for _ in 0..count {
                at += 4;
                let end = at + index.get(at..)?.iter().position(|b| *b == 0)?;
                values.push(String::from_utf8_lossy(&index[at..end]).into_owned());
                at = end + 1;
            }
            return Some(values);
        }
        let c = key[i];
        if node & HAS_CHILDREN == 0 || c < first || c > last {
            return None;
        }
        node = be(children_at + 2 + 4 * (c - first) as usize)?;
        if node == 0 {
            return None;
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_found_and_others_are_not() {
        let mut idx = Index::new();
        for (k, v) in [
            ("ask", "1"),
            ("ate", "2"),
            ("on", "3"),
            ("once", "4"),
            ("one", "5"),
        ] {
            idx.insert(k, v, 0).unwrap();
        }
        idx.insert("on", "3b", 7).unwrap();
        let bytes = idx.encode().unwrap();
        assert_eq!(&bytes[0..4], &[0xB0, 0x07, 0xF4, 0x57]);
        assert_eq!(lookup(&bytes, "ask").unwrap(), ["1"]);
        assert_eq!(lookup(&bytes, "once").unwrap(), ["4"]);
        assert_eq!(lookup(&bytes, "on").unwrap(), ["3", "3b"]);
        for missing in ["a", "o", "as", "onc", "ones", "x", ""] {
            assert_eq!(lookup(&bytes, missing), None, "{missing}");
        }
    }

    #[test]
    fn an_empty_index_is_just_a_root() {
        let bytes = Index::new().encode().unwrap();
        assert_eq!(lookup(&bytes, "x"), None);
    }

    #[test]
    fn non_ascii_keys_are_refused() {
        assert!(Index::new().insert("é", "x", 0).is_err());
    }
}
