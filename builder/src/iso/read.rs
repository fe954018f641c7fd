//! Reading an ISO image without mounting it: volume descriptors, the
//! directory tree (Rock Ridge names, else Joliet, else primary names),
//! file contents (multi-extent aware), El Torito entries and the MBR/GPT.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::hybrid::{guid_text, BASIC_DATA_TYPE, ESP_TYPE};
use super::walk_guard::{WalkGuard, MAX_DIR_BYTES};

const SECTOR: u64 = 2048;

/// What a directory entry is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Dir,
    File,
    Symlink { target: String },
}

/// One entry of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
    /// POSIX `st_mode` from Rock Ridge, if present.
    pub mode: Option<u32>,
    pub size: u64,
    /// (LBA, length) of each extent.
    #[serde(skip)]
    pub extents: Vec<(u32, u32)>,
}

/// Which directory tree names come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Naming {
    RockRidge,
    Joliet,
    Primary,
}

/// An El Torito catalog entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootEntryInfo {
    /// 0x00 BIOS, 0xEF UEFI.
    pub platform: u8,
    pub bootable: bool,
    /// 0 = no emulation.
    pub media_type: u8,
    pub load_segment: u16,
    pub sector_count: u16,
    pub lba: u32,
}

/// An MBR partition entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MbrPart {
    pub index: usize,
    pub bootable: bool,
    pub type_id: u8,
    pub start: u32,
    pub sectors: u32,
}

/// A GPT partition entry (512-byte LBAs, inclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GptPartInfo {
    pub index: usize,
    pub type_guid: String,
    /// "EFI System", "Basic data" or the GUID.
    pub type_name: String,
    pub guid: String,
    pub first: u64,
    pub last: u64,
    pub name: String,
}

/// An open ISO image.
pub struct Iso {
    file: File,
    pub volume_id: String,
    /// Joliet volume id, if a Joliet SVD exists.
    pub joliet_volume_id: Option<String>,
    pub volume_sectors: u32,
    pub image_bytes: u64,
    pub naming: Naming,
    pub boot_catalog_lba: Option<u32>,
    root: Entry,
}

fn trim_text(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches([' ', '\0'])
        .to_string()
}

fn ucs2_text(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
        .trim_end_matches([' ', '\0'])
        .to_string()
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// A raw directory record.
struct Raw<'a> {
    lba: u32,
    size: u32,
    flags: u8,
    ident: &'a [u8],
    su: &'a [u8],
}

fn parse_records(data: &[u8]) -> Vec<Raw<'_>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let len = data[pos] as usize;
        if len == 0 {
            pos = (pos / 2048 + 1) * 2048;
            continue;
        }
        if len < 34 || pos + len > data.len() {
            break;
        }
        let r = &data[pos..pos + len];
        let il = r[32] as usize;
        if 33 + il > len {
            break;
        }
        let su_start = 33 + il + usize::from(il & 1 == 0);
        out.push(Raw {
            lba: le32(&r[2..6]),
            size: le32(&r[10..14]),
            flags: r[25],
            ident: &r[33..33 + il],
            su: &r[su_start.min(len)..],
        });
        pos += len;
    }
    out
}

#[derive(Default)]
struct RrInfo {
    name: Option<String>,
    mode: Option<u32>,
    symlink: Option<String>,
    sp: bool,
}

impl Iso {
    /// Opens and parses the volume descriptors.
    pub fn open(path: &Path) -> Result<Iso> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let image_bytes = file.metadata()?.len();
        let mut volume_id = None;
        let mut volume_sectors = 0;
        let mut root_raw = None;
        let mut joliet = None;
        let mut boot_catalog_lba = None;
        for lba in 16..64u64 {
            let mut s = [0u8; 2048];
            file.read_exact_at(&mut s, lba * SECTOR)
                .with_context(|| format!("{}: reading volume descriptor {lba}", path.display()))?;
            if &s[1..6] != b"CD001" {
                bail!(
                    "{}: sector {lba} is not an ISO 9660 volume descriptor; not an ISO image?",
                    path.display()
                );
            }
            match s[0] {
                0 if s[7..30] == *b"EL TORITO SPECIFICATION" => {
                    boot_catalog_lba = Some(le32(&s[71..75]))
                }
                1 => {
                    volume_id = Some(trim_text(&s[40..72]));
                    volume_sectors = le32(&s[80..84]);
                    root_raw = Some((le32(&s[158..162]), le32(&s[166..170])));
                }
                2 if &s[88..91] == b"%/E" || &s[88..91] == b"%/@" || &s[88..91] == b"%/C" => {
                    joliet = Some((
                        ucs2_text(&s[40..72]),
                        le32(&s[158..162]),
                        le32(&s[166..170]),
                    ));
                }
                255 => break,
                _ => {}
            }
        }
        let (Some(volume_id), Some((root_lba, root_size))) = (volume_id, root_raw) else {
            bail!("{}: no primary volume descriptor", path.display());
        };
        let mut iso = Iso {
            file,
            volume_id,
            joliet_volume_id: joliet.as_ref().map(|j| j.0.clone()),
            volume_sectors,
            image_bytes,
            naming: Naming::Primary,
            boot_catalog_lba,
            root: Entry {
                name: String::new(),
                kind: Kind::Dir,
                mode: None,
                size: u64::from(root_size),
                extents: vec![(root_lba, root_size)],
            },
        };
        // Rock Ridge: SP in the root's `.` record.
        let data = iso.read_extent(root_lba, root_size.min(2048))?;
        let has_rr = parse_records(&data)
            .first()
            .is_some_and(|r| iso.susp(r.su).map(|i| i.sp).unwrap_or(false));
        if has_rr {
            iso.naming = Naming::RockRidge;
        } else if let Some((_, lba, size)) = joliet {
            iso.naming = Naming::Joliet;
            iso.root.extents = vec![(lba, size)];
            iso.root.size = u64::from(size);
        }
        Ok(iso)
    }

    fn read_extent(&self, lba: u32, len: u32) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len as usize];
        self.file
            .read_exact_at(&mut buf, u64::from(lba) * SECTOR)
            .with_context(|| format!("reading {len} bytes at sector {lba}"))?;
        Ok(buf)
    }

    fn susp(&self, su: &[u8]) -> Result<RrInfo> {
        let mut info = RrInfo::default();
        let mut areas: Vec<Vec<u8>> = vec![su.to_vec()];
        let mut hops = 0;
        let mut name = Vec::new();
        let mut link: Option<String> = None;
        let mut link_cont = false;
        while let Some(area) = areas.pop() {
            let mut p = 0;
            while p + 4 <= area.len() {
                let sig = &area[p..p + 2];
                let len = area[p + 2] as usize;
                if len < 4 || p + len > area.len() {
                    break;
                }
                let e = &area[p..p + len];
                match sig {
                    b"SP" => info.sp = true,
                    b"PX" if len >= 36 => info.mode = Some(le32(&e[4..8])),
                    b"NM" if len >= 5 => name.extend_from_slice(&e[5..]),
                    b"SL" if len >= 5 => {
                        let mut t = link.take().unwrap_or_default();
                        let mut q = 5;
                        while q + 2 <= e.len() {
                            let flags = e[q];
                            let cl = e[q + 1] as usize;
                            let content = &e[q + 2..(q + 2 + cl).min(e.len())];
                            if !t.is_empty() && !t.ends_with('/') && !link_cont {
                                t.push('/');
                            }
                            match flags & !1 {
                                0x02 => t.push('.'),
                                0x04 => t.push_str(".."),
                                0x08 => t.push('/'),
                                _ => t.push_str(&String::from_utf8_lossy(content)),
                            }
                            link_cont = flags & 1 == 1;
                            q += 2 + cl;
                        }
                        link = Some(t);
                    }
                    b"CE" if len >= 28 => {
                        hops += 1;
                        if hops > 16 {
                            bail!("Rock Ridge continuation loop");
                        }
                        let (lba, off, l) = (le32(&e[4..8]), le32(&e[12..16]), le32(&e[20..24]));
                        let mut buf = vec![0u8; l as usize];
                        self.file
                            .read_exact_at(&mut buf, u64::from(lba) * SECTOR + u64::from(off))?;
                        areas.push(buf);
                    }
                    b"ST" => break,
                    _ => {}
                }
                p += len;
            }
        }
        if !name.is_empty() {
            info.name = Some(String::from_utf8_lossy(&name).into_owned());
        }
        info.symlink = link;
        Ok(info)
    }

    /// The root directory.
    pub fn root(&self) -> &Entry {
        &self.root
    }

    /// The entries of a directory (without `.` and `..`).
    pub fn read_dir(&self, dir: &Entry) -> Result<Vec<Entry>> {
        let Some(&(lba, len)) = dir.extents.first() else {
            return Ok(Vec::new());
        };
        if len > MAX_DIR_BYTES {
            bail!(
                "ISO directory {:?} claims {len} bytes (more than {MAX_DIR_BYTES}); the image is \
                 corrupt or hostile",
                dir.name
            );
        }
        let data = self.read_extent(lba, len)?;
        let mut out: Vec<Entry> = Vec::new();
        let mut pending: Option<Entry> = None;
        for r in parse_records(&data) {
            if r.ident == [0] || r.ident == [1] {
                continue;
            }
            if let Some(p) = pending.as_mut() {
                p.extents.push((r.lba, r.size));
                p.size += u64::from(r.size);
                if r.flags & 0x80 == 0 {
                    out.push(pending.take().expect("pending"));
                }
                continue;
            }
            let (name, mode, symlink) = match self.naming {
                Naming::RockRidge => {
                    let i = self.susp(r.su)?;
                    let fallback = primary_name(r.ident);
                    (i.name.unwrap_or(fallback), i.mode, i.symlink)
                }
                Naming::Joliet => (
                    ucs2_text(r.ident).trim_end_matches(";1").to_string(),
                    None,
                    None,
                ),
                Naming::Primary => (primary_name(r.ident), None, None),
            };
            let kind = if r.flags & 0x02 != 0 {
                Kind::Dir
            } else if let Some(target) =
                symlink.filter(|_| mode.is_none_or(|m| m & 0o170000 == 0o120000))
            {
                Kind::Symlink { target }
            } else {
                Kind::File
            };
            let e = Entry {
                name,
                kind,
                mode,
                size: u64::from(r.size),
                extents: vec![(r.lba, r.size)],
            };
            if r.flags & 0x80 != 0 {
                pending = Some(e);
            } else {
                out.push(e);
            }
        }
        if let Some(p) = pending {
            bail!("multi-extent file {:?} has no final extent", p.name);
        }
        Ok(out)
    }

    /// Looks an entry up by path (`/a/b` or `a/b`).
    pub fn lookup(&self, path: &str) -> Result<Option<Entry>> {
        let mut cur = self.root.clone();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            if cur.kind != Kind::Dir {
                return Ok(None);
            }
            match self.read_dir(&cur)?.into_iter().find(|e| e.name == part) {
                Some(e) => cur = e,
                None => return Ok(None),
            }
        }
        Ok(Some(cur))
    }

    /// Every entry below the root, depth-first, as (path, entry). Fails,
    /// naming the path, on a directory met twice (a loop), nesting deeper
    /// than `walk_guard::MAX_DEPTH` or too many entries.
    pub fn walk(&self) -> Result<Vec<(String, Entry)>> {
        let mut out = Vec::new();
        let mut guard = WalkGuard::default();
        let mut stack = vec![(String::new(), self.root.clone(), 0usize)];
        while let Some((path, dir, depth)) = stack.pop() {
            let lba = dir.extents.first().map_or(0, |e| e.0);
            guard.enter(&path, lba, depth)?;
            let entries = self
                .read_dir(&dir)
                .with_context(|| format!("reading ISO directory {path:?}"))?;
            guard.count(&path, entries.len())?;
            for e in entries {
                let p = if path.is_empty() {
                    e.name.clone()
                } else {
                    format!("{path}/{}", e.name)
                };
                if e.kind == Kind::Dir {
                    stack.push((p.clone(), e.clone(), depth + 1));
                }
                out.push((p, e));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// A reader over a file's bytes (all extents in order).
    pub fn open_file(&self, e: &Entry) -> Result<FileReader<'_>> {
        if e.kind != Kind::File {
            bail!("{:?} is not a regular file", e.name);
        }
        Ok(FileReader {
            file: &self.file,
            extents: e.extents.clone(),
            idx: 0,
            pos: 0,
        })
    }

    /// Reads a whole (small) file.
    pub fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let Some(e) = self.lookup(path)? else {
            return Ok(None);
        };
        if e.size > 64 << 20 {
            bail!("{path} is {} bytes; stream it with open_file", e.size);
        }
        let mut v = Vec::new();
        self.open_file(&e)?.read_to_end(&mut v)?;
        Ok(Some(v))
    }

    /// The El Torito catalog entries (empty without a boot record).
    pub fn el_torito(&self) -> Result<Vec<BootEntryInfo>> {
        let Some(lba) = self.boot_catalog_lba else {
            return Ok(Vec::new());
        };
        let c = self.read_extent(lba, 2048)?;
        if c[0] != 1 || c[30..32] != [0x55, 0xAA] {
            bail!("El Torito boot catalog at sector {lba} has no valid validation entry");
        }
        let entry = |e: &[u8], platform: u8| BootEntryInfo {
            platform,
            bootable: e[0] == 0x88,
            media_type: e[1],
            load_segment: u16::from_le_bytes([e[2], e[3]]),
            sector_count: u16::from_le_bytes([e[6], e[7]]),
            lba: le32(&e[8..12]),
        };
        let mut out = vec![entry(&c[32..64], c[1])];
        let mut p = 64;
        while p + 32 <= 2048 && (c[p] == 0x90 || c[p] == 0x91) {
            let platform = c[p + 1];
            let n = u16::from_le_bytes([c[p + 2], c[p + 3]]) as usize;
            let last = c[p] == 0x91;
            p += 32;
            for _ in 0..n {
                if p + 32 > 2048 {
                    break;
                }
                out.push(entry(&c[p..p + 32], platform));
                p += 32;
            }
            if last {
                break;
            }
        }
        Ok(out)
    }

    /// MBR partition entries (non-empty ones).
    pub fn mbr(&self) -> Result<Vec<MbrPart>> {
        let mut s = [0u8; 512];
        self.file.read_exact_at(&mut s, 0)?;
        if s[510..512] != [0x55, 0xAA] {
            return Ok(Vec::new());
        }
        Ok((0..4)
            .filter_map(|i| {
                let e = &s[446 + 16 * i..462 + 16 * i];
                (e[4] != 0 || le32(&e[12..16]) != 0).then(|| MbrPart {
                    index: i + 1,
                    bootable: e[0] == 0x80,
                    type_id: e[4],
                    start: le32(&e[8..12]),
                    sectors: le32(&e[12..16]),
                })
            })
            .collect())
    }

    /// GPT partitions from the primary header at LBA 1, if there is one.
    pub fn gpt(&self) -> Result<Option<Vec<GptPartInfo>>> {
        let mut h = [0u8; 512];
        self.file.read_exact_at(&mut h, 512)?;
        if &h[0..8] != b"EFI PART" {
            return Ok(None);
        }
        let lba = u64::from_le_bytes(h[72..80].try_into().expect("8 bytes"));
        let count = le32(&h[80..84]).min(1024) as usize;
        let size = le32(&h[84..88]) as usize;
        if size < 128 {
            bail!("GPT entry size {size} is invalid");
        }
        let mut a = vec![0u8; count * size];
        self.file.read_exact_at(&mut a, lba * 512)?;
        let mut out = Vec::new();
        for (i, e) in a.chunks(size).enumerate() {
            let t: [u8; 16] = e[0..16].try_into().expect("16 bytes");
            if t == [0; 16] {
                continue;
            }
            let type_name = if t == ESP_TYPE {
                "EFI System".to_string()
            } else if t == BASIC_DATA_TYPE {
                "Basic data".to_string()
            } else {
                guid_text(&t)
            };
            let units: Vec<u16> = e[56..128]
                .chunks(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|&u| u != 0)
                .collect();
            out.push(GptPartInfo {
                index: i + 1,
                type_guid: guid_text(&t),
                type_name,
                guid: guid_text(&e[16..32].try_into().expect("16 bytes")),
                first: u64::from_le_bytes(e[32..40].try_into().expect("8 bytes")),
                last: u64::from_le_bytes(e[40..48].try_into().expect("8 bytes")),
                name: String::from_utf16_lossy(&units),
            });
        }
        Ok(Some(out))
    }
}

fn primary_name(ident: &[u8]) -> String {
    let s = String::from_utf8_lossy(ident);
    let s = s.split(';').next().unwrap_or("");
    s.strip_suffix('.').unwrap_or(s).to_string()
}

/// Streams a file's extents.
pub struct FileReader<'a> {
    file: &'a File,
    extents: Vec<(u32, u32)>,
    idx: usize,
    pos: u64,
}

impl Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some(&(lba, len)) = self.extents.get(self.idx) {
            let left = u64::from(len) - self.pos;
            if left == 0 {
                self.idx += 1;
                self.pos = 0;
                continue;
            }
            let n = (buf.len() as u64).min(left) as usize;
            let got = self
                .file
                .read_at(&mut buf[..n], u64::from(lba) * SECTOR + self.pos)?;
            if got == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "ISO image is truncated",
                ));
            }
            self.pos += got as u64;
            return Ok(got);
        }
        Ok(0)
    }
}
