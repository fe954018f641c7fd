//! What `airlift inspect` reports of an ISO: volume ids and sizes, El
//! Torito entries, MBR and GPT partitions, the UEFI boot chain and who
//! signed each part ([`super::chain`]), the bundled images from
//! `/airlift/bundle.json`, the root filesystem image (its superblock and
//! its digest from `SHA256SUMS`), read directly from the image file, and
//! its text rendering (pure).

use anyhow::Result;
use serde::Serialize;

use super::chain::{self, UefiChain};
use super::read::{BootEntryInfo, GptPartInfo, Iso, MbrPart};

/// One image of `/airlift/bundle.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    pub reference: String,
    pub digest: String,
    pub size: Option<u64>,
}

/// The root filesystem image on the media (`base.rootOn: media`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootImageInfo {
    pub path: String,
    pub size: u64,
    /// `sha256:<hex>` from `SHA256SUMS` (which `airlift verify` checks).
    pub digest: Option<String>,
    pub superblock: Option<crate::rootimage::superblock::Superblock>,
}

/// Everything `inspect` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub volume_id: String,
    pub joliet_volume_id: Option<String>,
    pub image_bytes: u64,
    pub volume_bytes: u64,
    pub el_torito: Vec<BootEntryInfo>,
    pub mbr: Vec<MbrPart>,
    pub gpt: Option<Vec<GptPartInfo>>,
    /// The UEFI boot chain; `None` without an ESP.
    pub uefi_chain: Option<UefiChain>,
    pub images: Vec<ImageInfo>,
    /// None when the root filesystem is in the initramfs.
    pub root_image: Option<RootImageInfo>,
}

/// Reads the facts `inspect` prints.
pub fn inspect(path: &std::path::Path) -> Result<Inspection> {
    let iso = Iso::open(path)?;
    let mut images = Vec::new();
    if let Some(bytes) = iso.read_file("airlift/bundle.json")? {
        let v: serde_json::Value =
            airlift_oci::quiet_json::parse(&bytes, "/airlift/bundle.json in the ISO")?;
        for i in v["images"].as_array().into_iter().flatten() {
            images.push(ImageInfo {
                reference: i["reference"].as_str().unwrap_or_default().to_string(),
                digest: i["digest"].as_str().unwrap_or_default().to_string(),
                size: i["size"].as_u64(),
            });
        }
    }
    let el_torito = iso.el_torito()?;
    let gpt = iso.gpt()?;
    let uefi_chain = chain::uefi_chain(path, &iso, &gpt, &el_torito)?;
    let root_image = root_image(&iso)?;
    Ok(Inspection {
        volume_id: iso.volume_id.clone(),
        joliet_volume_id: iso.joliet_volume_id.clone(),
        image_bytes: iso.image_bytes,
        volume_bytes: u64::from(iso.volume_sectors) * 2048,
        el_torito,
        mbr: iso.mbr()?,
        gpt,
        uefi_chain,
        images,
        root_image,
    })
}

/// The root filesystem image's facts, if the ISO carries one.
fn root_image(iso: &Iso) -> Result<Option<RootImageInfo>> {
    use std::io::Read;
    let path = crate::rootimage::squashfs::ISO_PATH;
    let Some(entry) = iso.lookup(path)? else {
        return Ok(None);
    };
    let mut head = Vec::with_capacity(128);
    iso.open_file(&entry)?.take(128).read_to_end(&mut head)?;
    let sums = iso.read_file(super::sums::SUMS_PATH)?.unwrap_or_default();
    let digest = String::from_utf8_lossy(&sums).lines().find_map(|l| {
        let (hex, p) = l.split_once("  ")?;
        (p == path).then(|| format!("sha256:{hex}"))
    });
    Ok(Some(RootImageInfo {
        path: format!("/{path}"),
        size: entry.size,
        digest,
        superblock: crate::rootimage::superblock::parse(&head),
    }))
}

fn platform(p: u8) -> String {
    match p {
        0x00 => "BIOS".into(),
        0xEF => "UEFI".into(),
        other => format!("0x{other:02x}"),
    }
}

/// Renders the text form.
pub fn render(i: &Inspection) -> String {
    let mut s = String::new();
    s.push_str(&format!("Volume id:   {}\n", i.volume_id));
    s.push_str(&format!(
        "Image size:  {} bytes (ISO volume {} bytes)\n",
        i.image_bytes, i.volume_bytes
    ));
    s.push_str("El Torito:\n");
    if i.el_torito.is_empty() {
        s.push_str("  (not bootable from CD)\n");
    }
    for (n, e) in i.el_torito.iter().enumerate() {
        let media = if e.media_type == 0 {
            "no-emulation".to_string()
        } else {
            format!("media 0x{:02x}", e.media_type)
        };
        s.push_str(&format!(
            "  {}: {} {} load LBA {} sectors {}{}\n",
            n + 1,
            platform(e.platform),
            media,
            e.lba,
            e.sector_count,
            if e.bootable { "" } else { " (not bootable)" }
        ));
    }
    s.push_str("MBR partitions:\n");
    for p in &i.mbr {
        s.push_str(&format!(
            "  {}: type 0x{:02x}{} start {} sectors {}\n",
            p.index,
            p.type_id,
            if p.bootable { " active" } else { "" },
            p.start,
            p.sectors
        ));
    }
    match &i.gpt {
        None => s.push_str("GPT: none\n"),
        Some(parts) => {
            s.push_str("GPT partitions:\n");
            for p in parts {
                s.push_str(&format!(
                    "  {}: {} start {} size {} sectors name {:?}\n",
                    p.index,
                    p.type_name,
                    p.first,
                    p.last + 1 - p.first,
                    p.name
                ));
            }
        }
    }
    match &i.uefi_chain {
        Some(c) => s.push_str(&chain::render(c)),
        None => s.push_str("UEFI chain:  none (no ESP)\n"),
    }
    s.push_str(&render_root(i.root_image.as_ref()));
    s.push_str(&format!("Images ({}):\n", i.images.len()));
    for im in &i.images {
        let size = im.size.map_or("?".into(), |v| v.to_string());
        s.push_str(&format!(
            "  {} {} {} bytes\n",
            im.reference, im.digest, size
        ));
    }
    s
}

/// The root filesystem line(s).
fn render_root(r: Option<&RootImageInfo>) -> String {
    let Some(r) = r else {
        return "Root filesystem: in the initramfs\n".to_string();
    };
    let what = match &r.superblock {
        Some(sb) => format!(
            "squashfs {}{}, {} inodes, block {}",
            sb.compression,
            sb.level.map_or(String::new(), |l| format!(" level {l}")),
            sb.inodes,
            sb.block_size
        ),
        None => "not a squashfs 4 image".to_string(),
    };
    format!(
        "Root filesystem: {} {} bytes, {what}\n  digest {}\n",
        r.path,
        r.size,
        r.digest.as_deref().unwrap_or("(not in SHA256SUMS)")
    )
}
