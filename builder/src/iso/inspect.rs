//! What `airlift inspect` reports of an ISO: volume ids and sizes, El
//! Torito entries, MBR and GPT partitions, the UEFI boot chain and who
//! signed each part ([`super::chain`]), the bundled images from
//! `/airlift/bundle.json`, the root filesystem image (its superblock and
//! its digest from `SHA256SUMS`), read directly from the image file, and
//! its text rendering (pure).

use airlift_appliance::bundle_manifest::BaseImageRecord;
use airlift_appliance::{Attachment, VerifiedSignature};
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
    /// What refers to it and was carried (signatures, SBOMs, attestations).
    pub attachments: Vec<Attachment>,
    /// Signatures verified at build, with the key that verified each.
    pub signatures: Vec<VerifiedSignature>,
}

impl ImageInfo {
    /// One image of a parsed `bundle.json`; lists that do not parse are
    /// left empty (an older or damaged file still shows its images).
    fn of(v: &serde_json::Value) -> ImageInfo {
        fn list<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Vec<T> {
            serde_json::from_value(v.clone()).unwrap_or_default()
        }
        ImageInfo {
            reference: v["reference"].as_str().unwrap_or_default().to_string(),
            digest: v["digest"].as_str().unwrap_or_default().to_string(),
            size: v["size"].as_u64(),
            attachments: list(&v["attachments"]),
            signatures: list(&v["signatures"]),
        }
    }
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
    /// The base image the OS came from (`bundle.json`'s `base`); None
    /// for a base given as host paths.
    pub base: Option<BaseImageRecord>,
}

/// Reads the facts `inspect` prints.
pub fn inspect(path: &std::path::Path) -> Result<Inspection> {
    let iso = Iso::open(path)?;
    let mut images = Vec::new();
    let mut base = None;
    if let Some(bytes) = iso.read_file("airlift/bundle.json")? {
        let v: serde_json::Value =
            airlift_oci::quiet_json::parse(&bytes, "/airlift/bundle.json in the ISO")?;
        for i in v["images"].as_array().into_iter().flatten() {
            images.push(ImageInfo::of(i));
        }
        if !v["base"].is_null() {
            base = Some(serde_json::from_value(v["base"].clone()).map_err(|_| {
                anyhow::anyhow!(
                    "/airlift/bundle.json in the ISO: field base is not a base image record \
                         this airlift reads (made by a newer airlift, or damaged)"
                )
            })?);
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
        base,
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
    s.push_str(&render_base(i.base.as_ref()));
    s.push_str(&format!("Images ({}):\n", i.images.len()));
    for im in &i.images {
        let size = im.size.map_or("?".into(), |v| v.to_string());
        s.push_str(&format!(
            "  {} {} {} bytes\n",
            im.reference, im.digest, size
        ));
        s.push_str(&render_attachments(im));
    }
    s
}

/// An image's attachments and verified signatures, one line each.
fn render_attachments(im: &ImageInfo) -> String {
    let mut s = String::new();
    for a in &im.attachments {
        let of = if a.subject.to_string() == im.digest {
            String::new()
        } else {
            format!(" of {}", a.subject)
        };
        s.push_str(&format!(
            "    {} {} {}{}{of}\n",
            a.kind.as_str(),
            a.artifact_type,
            a.digest,
            a.tag
                .as_deref()
                .map_or(String::new(), |t| format!(" tag {t}"))
        ));
    }
    for v in &im.signatures {
        s.push_str(&format!(
            "    signed by key {} for {} ({})\n",
            v.key, v.identity, v.signature
        ));
    }
    s
}

/// The base image's lines: reference and digests, kernel, signers.
pub fn render_base(b: Option<&BaseImageRecord>) -> String {
    let Some(b) = b else {
        return "Base image:  none (base from host paths)\n".to_string();
    };
    let mut s = format!("Base image:  {}\n", b.pinned());
    s.push_str(&format!(
        "  manifest linux/amd64 {}, kernel {}\n",
        b.manifest_digest, b.kernel_release
    ));
    if b.signatures.is_empty() {
        s.push_str(&format!("  {}\n", b.signed_by()));
    }
    for sig in &b.signatures {
        s.push_str(&format!(
            "  signed by key {} for {} ({})\n",
            sig.key, sig.identity, sig.signature
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_list_their_attachments_and_signatures() {
        let top = format!("sha256:{}", "a".repeat(64));
        let child = format!("sha256:{}", "b".repeat(64));
        let sig = format!("sha256:{}", "c".repeat(64));
        let sbom = format!("sha256:{}", "d".repeat(64));
        let v = serde_json::json!({
            "reference": "quay.io/org/app:1.0", "digest": top, "size": 10,
            "attachments": [
                { "subject": top, "digest": sig, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "kind": "signature", "artifactType": "application/vnd.dev.cosign.simplesigning.v1+json",
                  "tag": "sha256-aaaa.sig", "size": 5 },
                { "subject": child, "digest": sbom, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "kind": "sbom", "artifactType": "application/spdx+json", "size": 7 },
            ],
            "signatures": [{ "subject": top, "key": "release", "identity": "quay.io/org/app:1.0", "signature": sig }],
        });
        let im = ImageInfo::of(&v);
        assert_eq!(im.attachments.len(), 2);
        assert_eq!(im.signatures[0].key, "release");
        let text = render_attachments(&im);
        assert_eq!(
            text,
            format!(
                "    signature application/vnd.dev.cosign.simplesigning.v1+json {sig} tag sha256-aaaa.sig\n\
                 \x20   sbom application/spdx+json {sbom} of {child}\n\
                 \x20   signed by key release for quay.io/org/app:1.0 ({sig})\n"
            )
        );
        let json = serde_json::to_value(&im).unwrap();
        assert_eq!(
            json["attachments"][1]["artifactType"],
            "application/spdx+json"
        );
        assert_eq!(json["signatures"][0]["identity"], "quay.io/org/app:1.0");
        // An older bundle.json without the lists still shows the image.
        let old = ImageInfo::of(&serde_json::json!({ "reference": "x", "digest": top }));
        assert!(old.attachments.is_empty() && old.signatures.is_empty());
    }

    #[test]
    fn the_base_image_is_rendered_with_its_kernel_and_signers() {
        use airlift_oci::Digest;
        let d = |b: &[u8]| Digest::sha256_of(b);
        let mut b = BaseImageRecord {
            reference: "registry.airlift.test/base/demo:bookworm".into(),
            digest: d(b"top"),
            manifest_digest: d(b"amd64"),
            kernel_release: "6.1.0-18-amd64".into(),
            signatures: Vec::new(),
        };
        assert_eq!(
            render_base(None),
            "Base image:  none (base from host paths)\n"
        );
        assert_eq!(
            render_base(Some(&b)),
            format!(
                "Base image:  registry.airlift.test/base/demo:bookworm@{}\n  manifest \
                 linux/amd64 {}, kernel 6.1.0-18-amd64\n  no signature checked (no verify: key covers it)\n",
                d(b"top"),
                d(b"amd64")
            )
        );
        b.signatures.push(VerifiedSignature {
            subject: d(b"top"),
            key: "ci".into(),
            identity: "registry.airlift.test/base/demo:bookworm".into(),
            signature: d(b"sig"),
        });
        assert!(render_base(Some(&b)).ends_with(&format!(
            "  signed by key ci for registry.airlift.test/base/demo:bookworm ({})\n",
            d(b"sig")
        )));
    }
}
