//! Lays out and writes the hybrid image: plans every directory, path
//! table, continuation area, file extent and the ESP, then writes the
//! metadata at its offsets and streams each payload once.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::eltorito::{self, BootEntry, PLATFORM_EFI, PLATFORM_X86};
use super::encode::{blocks, SECTOR};
use super::fat::{self, FatType};
use super::hybrid::{self, GptPart};
use super::names;
use super::output::Output;
use super::records::{self, Descriptor, VolumeInfo, FLAG_DIR, FLAG_MULTI, MAX_EXTENT};
use super::sums;
use super::susp::{self, Packed};
use super::tree::{Expected, FileSource, Node, Tree};
use super::{IsoImage, WriteReport};

struct Child {
    iso_ident: Vec<u8>,
    joliet_ident: Vec<u8>,
    dir: Option<usize>,
    file: Option<usize>,
    susp: Packed,
}

struct DirPlan {
    parent: usize,
    iso_ident: Vec<u8>,
    joliet_ident: Vec<u8>,
    children: Vec<Child>,
    joliet_order: Vec<usize>,
    dot: Packed,
    dotdot: Packed,
    iso_lba: u32,
    iso_size: u32,
    jol_lba: u32,
    jol_size: u32,
}

struct FilePlan<'a> {
    path: String,
    src: &'a FileSource,
    size: u64,
    lba: u32,
    expect: Option<&'a Expected>,
}

fn nlink(node: &Node) -> u32 {
    match node {
        Node::Dir { children, .. } => {
            2 + children
                .values()
                .filter(|c| matches!(c, Node::Dir { .. }))
                .count() as u32
        }
        _ => 1,
    }
}

fn extents(size: u64) -> u64 {
    blocks(size, MAX_EXTENT).max(1)
}

/// The SUSP entries of a child record.
fn child_entries(name: &str, node: &Node, epoch: i64) -> Vec<Vec<u8>> {
    let mut e = vec![susp::px(node.st_mode(), nlink(node)), susp::tf(epoch)];
    e.extend(susp::nm(name));
    if let Node::Symlink { target, .. } = node {
        e.extend(susp::sl(target));
    }
    e
}

fn room(ident_len: usize) -> usize {
    254 - records::record_base_len(ident_len)
}

/// A directory waiting to be planned: node, parent index, ISO and Joliet
/// identifiers, path.
type Pending<'a> = (&'a Node, usize, Vec<u8>, Vec<u8>, String);

/// Collects directories breadth-first and files in directory order.
fn plan_tree<'a>(root: &'a Node, epoch: i64) -> Result<(Vec<DirPlan>, Vec<FilePlan<'a>>)> {
    let mut dirs: Vec<DirPlan> = Vec::new();
    let mut files: Vec<FilePlan> = Vec::new();
    let mut queue: Vec<Pending> = vec![(root, 0, vec![0], vec![0], String::new())];
    let mut qi = 0;
    while qi < queue.len() {
        let (node, parent, iso_ident, joliet_ident, path) = queue[qi].clone();
        qi += 1;
        let Node::Dir { children, .. } = node else {
            unreachable!()
        };
        let entries: Vec<(&str, bool)> = children
            .iter()
            .map(|(n, c)| (n.as_str(), matches!(c, Node::Dir { .. })))
            .collect();
        let iso_ids = names::primary_names(&entries);
        let jol_ids = names::joliet_names(&entries.iter().map(|e| e.0).collect::<Vec<_>>());
        let me = dirs.len();
        let mut kids = Vec::new();
        for (((name, child), iso), jol) in children.iter().zip(iso_ids).zip(jol_ids) {
            let child_path = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}/{name}")
            };
            let susp = susp::pack(child_entries(name, child, epoch), room(iso.len()))
                .with_context(|| format!("Rock Ridge entries of {child_path:?}"))?;
            let mut c = Child {
                iso_ident: iso.clone(),
                joliet_ident: jol.clone(),
                dir: None,
                file: None,
                susp,
            };
            match child {
                Node::Dir { .. } => queue.push((child, me, iso, jol, child_path)),
                Node::File {
                    src, size, expect, ..
                } => {
                    c.file = Some(files.len());
                    files.push(FilePlan {
                        path: child_path,
                        src,
                        size: *size,
                        lba: 0,
                        expect: expect.as_ref(),
                    });
                }
                Node::Symlink { .. } => {}
            }
            kids.push(c);
        }
        kids.sort_by(|a, b| a.iso_ident.cmp(&b.iso_ident));
        let mut joliet_order: Vec<usize> = (0..kids.len()).collect();
        joliet_order.sort_by(|&a, &b| kids[a].joliet_ident.cmp(&kids[b].joliet_ident));
        let mut dot_entries = Vec::new();
        if me == 0 {
            dot_entries.push(susp::sp());
        }
        dot_entries.push(susp::px(node.st_mode(), nlink(node)));
        dot_entries.push(susp::tf(epoch));
        if me == 0 {
            dot_entries.push(susp::er());
        }
        let dot = susp::pack(dot_entries, room(1))?;
        dirs.push(DirPlan {
            parent,
            iso_ident,
            joliet_ident,
            children: kids,
            joliet_order,
            dot,
            dotdot: Packed::default(),
            iso_lba: 0,
            iso_size: 0,
            jol_lba: 0,
            jol_size: 0,
        });
    }
    // Link child dirs to their plans (queue order == dirs order).
    for (i, (_, parent, iso, _, _)) in queue.iter().enumerate().skip(1) {
        let c = dirs[*parent]
            .children
            .iter_mut()
            .find(|c| &c.iso_ident == iso)
            .expect("child dir");
        c.dir = Some(i);
    }
    // `..` carries the parent's attributes.
    let parent_nodes: Vec<&Node> = queue.iter().map(|q| queue[q.1].0).collect();
    for (d, pn) in dirs.iter_mut().zip(parent_nodes) {
        d.dotdot = susp::pack(
            vec![susp::px(pn.st_mode(), nlink(pn)), susp::tf(epoch)],
            room(1),
        )?;
    }
    Ok((dirs, files))
}

/// Continuation area location per (dir, slot): slot 0 `.`, 1 `..`, 2+i child i.
type CeMap = HashMap<(usize, usize), (u32, u32, u32)>;

fn with_ce(p: &Packed, key: (usize, usize), ce: &CeMap) -> Vec<u8> {
    let mut b = p.inline.clone();
    if let Some(at) = p.ce_at {
        let (lba, off, len) = ce[&key];
        b[at..at + susp::CE_LEN].copy_from_slice(&susp::ce(lba, off, len));
    }
    b
}

fn iso_dir_bytes(
    dirs: &[DirPlan],
    files: &[FilePlan],
    i: usize,
    epoch: i64,
    ce: &CeMap,
) -> Vec<u8> {
    let d = &dirs[i];
    let p = &dirs[d.parent];
    let mut recs = vec![
        records::dir_record(
            &[0],
            d.iso_lba,
            d.iso_size,
            FLAG_DIR,
            epoch,
            &with_ce(&d.dot, (i, 0), ce),
        ),
        records::dir_record(
            &[1],
            p.iso_lba,
            p.iso_size,
            FLAG_DIR,
            epoch,
            &with_ce(&d.dotdot, (i, 1), ce),
        ),
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

fn joliet_dir_bytes(dirs: &[DirPlan], files: &[FilePlan], i: usize, epoch: i64) -> Vec<u8> {
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
fn path_table(dirs: &[DirPlan], joliet: bool, big_endian: bool) -> Vec<u8> {
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

fn pad_sector(mut v: Vec<u8>) -> Vec<u8> {
    let n = v.len().div_ceil(2048).max(1) * 2048;
    v.resize(n, 0);
    v
}

/// `tree` with a zero-filled `SHA256SUMS` of the length its sums will
/// have, so the layout can place it before any file is hashed.
fn sums_placeholder(tree: &Tree) -> Result<Tree> {
    if tree.get(sums::SUMS_PATH).is_some() {
        bail!(
            "the ISO tree already has {}; the writer makes it (IsoImage::sha256sums)",
            sums::SUMS_PATH
        );
    }
    let mut t = tree.clone();
    t.add_file(
        sums::SUMS_PATH,
        FileSource::Bytes(vec![0; sums::sums_len(tree)]),
        0o644,
    )?;
    Ok(t)
}

/// Writes `image` to `out` (atomically). See the module docs for the layout.
pub fn write(image: &IsoImage, out: &Path) -> Result<WriteReport> {
    image.validate()?;
    let epoch = image.epoch;
    let with_sums;
    let tree = if image.sha256sums {
        with_sums = sums_placeholder(&image.tree)?;
        &with_sums
    } else {
        &image.tree
    };
    let (mut dirs, mut files) = plan_tree(&tree.root, epoch)?;

    // Sizes first (records do not change length once LBAs are known).
    let ce0: CeMap = continuation_keys(&dirs)
        .into_iter()
        .map(|k| (k, (0, 0, 0)))
        .collect();
    for i in 0..dirs.len() {
        dirs[i].iso_size = iso_dir_bytes(&dirs, &files, i, epoch, &ce0).len() as u32;
        dirs[i].jol_size = joliet_dir_bytes(&dirs, &files, i, epoch).len() as u32;
    }
    let pt_iso_len = path_table(&dirs, false, false).len();
    let pt_jol_len = path_table(&dirs, true, false).len();

    // Fixed descriptors.
    let boot = image.bios.is_some() || image.uefi.is_some();
    let mut lba: u32 = 16;
    let pvd_lba = lba;
    lba += 1;
    let boot_record_lba = boot.then(|| {
        lba += 1;
        lba - 1
    });
    let svd_lba = lba;
    lba += 2; // SVD + terminator
    let catalog_lba = boot.then(|| {
        lba += 1;
        lba - 1
    });
    let pt_sectors = |len: usize| blocks(len as u64, SECTOR) as u32;
    let l_iso = lba;
    lba += pt_sectors(pt_iso_len);
    let m_iso = lba;
    lba += pt_sectors(pt_iso_len);
    let l_jol = lba;
    lba += pt_sectors(pt_jol_len);
    let m_jol = lba;
    lba += pt_sectors(pt_jol_len);
    for d in dirs.iter_mut() {
        d.iso_lba = lba;
        lba += d.iso_size / 2048;
    }
    for d in dirs.iter_mut() {
        d.jol_lba = lba;
        lba += d.jol_size / 2048;
    }
    // Continuation areas, packed without crossing sectors.
    let mut ce_map = CeMap::new();
    let mut ce_bytes: Vec<u8> = Vec::new();
    let ce_start = lba;
    for key in continuation_keys(&dirs) {
        let p = packed(&dirs, key);
        let used = ce_bytes.len() % 2048;
        if used + p.cont.len() > 2048 {
            ce_bytes.resize(ce_bytes.len() + 2048 - used, 0);
        }
        let pos = ce_bytes.len() as u64;
        ce_map.insert(
            key,
            (
                ce_start + (pos / SECTOR) as u32,
                (pos % SECTOR) as u32,
                p.cont.len() as u32,
            ),
        );
        ce_bytes.extend_from_slice(&p.cont);
    }
    if !ce_bytes.is_empty() {
        ce_bytes = pad_sector(ce_bytes);
        lba += (ce_bytes.len() / 2048) as u32;
    }
    // File data.
    let mut payload_bytes = 0u64;
    for f in files.iter_mut() {
        if f.size > 0 {
            f.lba = lba;
            let sectors = blocks(f.size, SECTOR);
            if u64::from(lba) + sectors > u64::from(u32::MAX) {
                bail!("the ISO would exceed 8 TiB at {}", f.path);
            }
            lba += sectors as u32;
            payload_bytes += f.size;
        }
    }
    // The ESP: the last extent of the volume (see module docs).
    let esp_inputs: Vec<(String, u64)> = match &image.uefi {
        Some(u) => u
            .esp_files
            .iter()
            .map(|(p, s)| {
                Ok((
                    p.clone(),
                    s.len().with_context(|| format!("ESP file {p:?}"))?,
                ))
            })
            .collect::<Result<_>>()?,
        None => Vec::new(),
    };
    let ids = Ids::new(image, &files, lba);
    let esp = match &image.uefi {
        Some(_) => {
            let plan = fat::plan(&esp_inputs, epoch, ids.fat_serial)?;
            let esp_lba = lba;
            lba += (plan.total_bytes / SECTOR) as u32;
            Some((esp_lba, plan))
        }
        None => None,
    };
    let volume_sectors = lba;
    let volume_bytes = u64::from(volume_sectors) * SECTOR;
    // Backup GPT (33 sectors of 512) after the volume, image kept 2048-aligned.
    let image_bytes = volume_bytes + 9 * SECTOR;
    let total_512 = image_bytes / 512;

    // Boot file.
    let bios = match &image.bios {
        Some(b) => {
            let Some(Node::File { src, size, .. }) = tree.get(&b.boot_file) else {
                bail!(
                    "BIOS boot file {:?} is not a file in the ISO tree; add it first",
                    b.boot_file
                );
            };
            if *size > 16 << 20 {
                bail!(
                    "BIOS boot file {:?} is {size} bytes; isolinux.bin is far smaller",
                    b.boot_file
                );
            }
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut src.open()?, &mut bytes)?;
            if bytes.len() < 64 {
                bail!("BIOS boot file {:?} is shorter than 64 bytes", b.boot_file);
            }
            let f = files
                .iter()
                .find(|f| std::ptr::eq(f.src, src))
                .expect("boot file planned");
            let mbr_code = std::fs::read(&b.mbr_code)
                .with_context(|| format!("reading the MBR boot code {}", b.mbr_code.display()))?;
            if mbr_code.len() < 432 {
                bail!(
                    "MBR boot code {} is shorter than 432 bytes (expected isohdpfx.bin)",
                    b.mbr_code.display()
                );
            }
            let table = eltorito::boot_info_table(pvd_lba, f.lba, &bytes);
            Some((f.lba, table, mbr_code))
        }
        None => None,
    };
    // SHA256SUMS, of the bytes the ISO holds (the boot file patched).
    let sums_write = if image.sha256sums {
        let boot_path = image
            .bios
            .as_ref()
            .map(|b| super::tree::split_path(&b.boot_file).map(|p| p.join("/")))
            .transpose()?;
        let patch = match (&bios, &boot_path) {
            (Some((_, table, _)), Some(path)) => Some(sums::Patch {
                path,
                at: 8,
                bytes: table,
            }),
            _ => None,
        };
        let text = sums::sha256sums(tree, patch.as_ref())
            .context("hashing the ISO's files for SHA256SUMS")?;
        let f = files
            .iter()
            .find(|f| f.path == sums::SUMS_PATH)
            .expect("SHA256SUMS planned");
        if text.len() as u64 != f.size {
            bail!(
                "SHA256SUMS is {} bytes, {} were reserved (a file changed while the ISO was written?)",
                text.len(),
                f.size
            );
        }
        Some((f.lba, text))
    } else {
        None
    };

    // Boot catalog.
    let mut entries = Vec::new();
    if let Some((file_lba, _, _)) = &bios {
        entries.push(BootEntry {
            platform: PLATFORM_X86,
            sector_count: 4,
            lba: *file_lba,
        });
    }
    let mut uefi_count = None;
    if let Some((esp_lba, plan)) = &esp {
        let sectors = plan.total_bytes / 512;
        // OVMF treats a count below 2 as "to the end of the volume", which is
        // exactly the ESP since it is the volume's last extent.
        let count = u16::try_from(sectors).unwrap_or(0);
        uefi_count = Some(count);
        entries.push(BootEntry {
            platform: PLATFORM_EFI,
            sector_count: count,
            lba: *esp_lba,
        });
    }

    // GPT.
    let mut parts = Vec::new();
    let data_last = match &esp {
        Some((esp_lba, _)) => u64::from(*esp_lba) * 4 - 1,
        None => volume_bytes / 512 - 1,
    };
    parts.push(GptPart {
        type_guid: hybrid::BASIC_DATA_TYPE,
        guid: ids.part1,
        first: 64,
        last: data_last,
        name: "ISO9660".into(),
    });
    if let Some((esp_lba, plan)) = &esp {
        parts.push(GptPart {
            type_guid: hybrid::ESP_TYPE,
            guid: ids.part2,
            first: u64::from(*esp_lba) * 4,
            last: u64::from(*esp_lba) * 4 + plan.total_bytes / 512 - 1,
            name: "EFI System Partition".into(),
        });
    }
    let gpt_entries = hybrid::gpt_entries(&parts);
    let mbr = hybrid::mbr(
        bios.as_ref().map(|(_, _, code)| code.as_slice()),
        bios.as_ref().map_or(0, |(l, _, _)| u64::from(*l) * 4),
        ids.mbr_signature,
        total_512,
    );

    // Write everything.
    let o = Output::create(out, image_bytes)?;
    o.write_at(0, &mbr)?;
    o.write_at(
        512,
        &hybrid::gpt_header(true, total_512, &ids.disk, &gpt_entries),
    )?;
    o.write_at(1024, &gpt_entries)?;
    o.write_at((total_512 - 33) * 512, &gpt_entries)?;
    o.write_at(
        (total_512 - 1) * 512,
        &hybrid::gpt_header(false, total_512, &ids.disk, &gpt_entries),
    )?;

    let iso_root = records::dir_record(
        &[0],
        dirs[0].iso_lba,
        dirs[0].iso_size,
        FLAG_DIR,
        epoch,
        &[],
    );
    let jol_root = records::dir_record(
        &[0],
        dirs[0].jol_lba,
        dirs[0].jol_size,
        FLAG_DIR,
        epoch,
        &[],
    );
    let mut vi = VolumeInfo {
        volume_id: &image.volume_id,
        volume_sectors,
        path_table_size: pt_iso_len as u32,
        l_table_lba: l_iso,
        m_table_lba: m_iso,
        root_record: &iso_root,
        epoch,
    };
    o.write_at(
        u64::from(pvd_lba) * SECTOR,
        &records::volume_descriptor(Descriptor::Primary, &vi),
    )?;
    vi.path_table_size = pt_jol_len as u32;
    vi.l_table_lba = l_jol;
    vi.m_table_lba = m_jol;
    vi.root_record = &jol_root;
    let jol_label: String = image.volume_id.chars().take(16).collect();
    vi.volume_id = &jol_label;
    o.write_at(
        u64::from(svd_lba) * SECTOR,
        &records::volume_descriptor(Descriptor::Joliet, &vi),
    )?;
    o.write_at(u64::from(svd_lba + 1) * SECTOR, &records::terminator())?;
    if let (Some(br), Some(cat)) = (boot_record_lba, catalog_lba) {
        o.write_at(u64::from(br) * SECTOR, &eltorito::boot_record(cat))?;
        o.write_at(u64::from(cat) * SECTOR, &eltorito::catalog(&entries))?;
    }
    o.write_at(u64::from(l_iso) * SECTOR, &path_table(&dirs, false, false))?;
    o.write_at(u64::from(m_iso) * SECTOR, &path_table(&dirs, false, true))?;
    o.write_at(u64::from(l_jol) * SECTOR, &path_table(&dirs, true, false))?;
    o.write_at(u64::from(m_jol) * SECTOR, &path_table(&dirs, true, true))?;
    for i in 0..dirs.len() {
        let b = iso_dir_bytes(&dirs, &files, i, epoch, &ce_map);
        debug_assert_eq!(b.len() as u32, dirs[i].iso_size);
        o.write_at(u64::from(dirs[i].iso_lba) * SECTOR, &b)?;
        o.write_at(
            u64::from(dirs[i].jol_lba) * SECTOR,
            &joliet_dir_bytes(&dirs, &files, i, epoch),
        )?;
    }
    if !ce_bytes.is_empty() {
        o.write_at(u64::from(ce_start) * SECTOR, &ce_bytes)?;
    }
    let t = std::time::Instant::now();
    // The payloads, then the rest and the fsync while the digest checker
    // finishes; renamed into place only when both succeeded.
    let esp_report = copy_payloads(&o, &files, || {
        tracing::debug!(
            "iso: {payload_bytes} payload bytes copied in {:.2}s",
            t.elapsed().as_secs_f64()
        );
        if let Some((file_lba, table, _)) = &bios {
            o.write_at(u64::from(*file_lba) * SECTOR + 8, table)?;
        }
        if let Some((sums_lba, text)) = &sums_write {
            if !text.is_empty() {
                o.write_at(u64::from(*sums_lba) * SECTOR, text.as_bytes())?;
            }
        }
        let mut esp_report = None;
        if let (Some((esp_lba, plan)), Some(u)) = (&esp, &image.uefi) {
            let base = u64::from(*esp_lba) * SECTOR;
            for (off, bytes) in &plan.meta {
                o.write_at(base + off, bytes)?;
            }
            for (off, idx) in &plan.files {
                let (path, src) = &u.esp_files[*idx];
                o.copy_in(src, base + off, esp_inputs[*idx].1)
                    .with_context(|| format!("ESP file {path:?}"))?;
            }
            esp_report = Some(super::EspReport {
                lba: *esp_lba,
                bytes: plan.total_bytes,
                fat32: plan.fat_type == FatType::Fat32,
                cluster_bytes: plan.cluster_bytes,
                catalog_sector_count: uefi_count.unwrap_or(0),
            });
        }
        o.sync()?;
        tracing::debug!(
            "iso: everything written and fsynced at {:.2}s",
            t.elapsed().as_secs_f64()
        );
        Ok(esp_report)
    })?;
    tracing::debug!(
        "iso: payload digests checked at {:.2}s",
        t.elapsed().as_secs_f64()
    );
    o.persist()?;
    Ok(WriteReport {
        image_bytes,
        volume_sectors,
        boot_catalog_lba: catalog_lba,
        bios_boot_lba: bios.as_ref().map(|(l, _, _)| *l),
        esp: esp_report,
        files: files.len(),
        payload_bytes,
        disk_guid: hybrid::guid_text(&ids.disk),
    })
}

/// Payload bytes copied between two early write-back nudges.
const FLUSH_EVERY: u64 = 64 << 20;

/// Copies every payload to its extent, then runs `then` (the rest of
/// the image and its fsync). Files with an expected digest are hashed as
/// written, read back from the output (so the check covers exactly the
/// image's bytes), on a second thread that trails the copies: hashing
/// overlaps the copies and the fsync. A mismatch is the error, whatever
/// `then` returned.
fn copy_payloads<T>(o: &Output, files: &[FilePlan], then: impl FnOnce() -> Result<T>) -> Result<T> {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<&FilePlan>(files.len().max(1));
        let checker = scope.spawn(move || -> Result<()> {
            for f in rx {
                let expect = f.expect.expect("only files with a digest are sent");
                o.check_digest(u64::from(f.lba) * SECTOR, f.size, &expect.digest)
                    .with_context(|| {
                        format!(
                            "blob {} from {} (ISO file {}) failed verification; the source is corrupt \
                             or was changed",
                            expect.digest, expect.source, f.path
                        )
                    })?;
            }
            Ok(())
        });
        // Write back what is copied while the copies go on, so the final
        // fsync has little left to do. Nudges coalesce. Its first error is
        // kept and returned: a later fsync on this file would not report
        // it again.
        let (nudge, nudged) = std::sync::mpsc::sync_channel::<()>(1);
        let flusher = scope.spawn(move || -> Result<()> {
            for () in nudged {
                o.sync_data()?;
            }
            Ok(())
        });
        let copied = (|| -> Result<()> {
            let mut since_nudge = 0u64;
            for f in files {
                if f.size > 0 {
                    o.copy_in(f.src, u64::from(f.lba) * SECTOR, f.size)?;
                }
                since_nudge += f.size;
                if since_nudge >= FLUSH_EVERY {
                    since_nudge = 0;
                    let _ = nudge.try_send(());
                }
                if f.expect.is_some() && tx.send(f).is_err() {
                    // The checker stopped on a mismatch: its error wins.
                    break;
                }
            }
            Ok(())
        })();
        drop(tx);
        drop(nudge);
        let flushed = flusher.join().expect("the flusher panicked");
        let rest = copied.and(flushed).and_then(|()| then());
        let checked = checker.join().expect("the digest checker panicked");
        checked.and(rest)
    })
}

fn continuation_keys(dirs: &[DirPlan]) -> Vec<(usize, usize)> {
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

fn packed(dirs: &[DirPlan], (i, slot): (usize, usize)) -> &Packed {
    match slot {
        0 => &dirs[i].dot,
        1 => &dirs[i].dotdot,
        k => &dirs[i].children[k - 2].susp,
    }
}

/// Deterministic identifiers derived from the volume id, epoch and layout.
struct Ids {
    disk: [u8; 16],
    part1: [u8; 16],
    part2: [u8; 16],
    mbr_signature: u32,
    fat_serial: u32,
}

impl Ids {
    fn new(image: &IsoImage, files: &[FilePlan], data_end: u32) -> Ids {
        let mut h = Sha256::new();
        h.update(b"airlift-iso\0");
        h.update(image.volume_id.as_bytes());
        h.update(image.epoch.to_le_bytes());
        h.update(data_end.to_le_bytes());
        for f in files {
            h.update(f.path.as_bytes());
            h.update(f.size.to_le_bytes());
        }
        let seed = h.finalize();
        let derive = |what: &[u8]| {
            let mut h = Sha256::new();
            h.update(seed);
            h.update(what);
            h.finalize()
        };
        let m = derive(b"mbr");
        let f = derive(b"fat");
        Ids {
            disk: hybrid::guid_from_hash(&derive(b"disk")),
            part1: hybrid::guid_from_hash(&derive(b"part1")),
            part2: hybrid::guid_from_hash(&derive(b"part2")),
            mbr_signature: u32::from_le_bytes([m[0], m[1], m[2], m[3]]),
            fat_serial: u32::from_le_bytes([f[0], f[1], f[2], f[3]]),
        }
    }
}
