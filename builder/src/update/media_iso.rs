//! The update ISO: data only (no kernel, no boot entries: it is loaded by
//! a running host0, never booted), with the appliance's volume label so
//! host0's media watcher knows it, holding
//! `/airlift/bundle/{oci-layout,index.json,bundle.json,blobs/…}` (only the
//! carried blobs), `/airlift/bundle.json`, `/airlift/update.json` and
//! `SHA256SUMS` (every file but the blobs, which `airlift verify` checks
//! by their names).

use anyhow::Result;

use airlift_appliance::release::UPDATE_ISO_PATH;

use super::Written;
use crate::iso::{FileSource, IsoImage, Tree};
use crate::pipeline::{expect_digests, BUNDLE_ISO_DIR};

/// The ISO image for `w`, labelled `volume_id`.
pub fn image(volume_id: &str, w: &Written) -> Result<IsoImage> {
    let mut tree = Tree::new();
    let file = |name: &str| FileSource::Path(w.bundle_dir.join(name));
    for name in ["oci-layout", "index.json", "bundle.json"] {
        tree.add_file(&format!("{BUNDLE_ISO_DIR}/{name}"), file(name), 0o644)?;
    }
    tree.add_dir(&format!("{BUNDLE_ISO_DIR}/blobs/sha256"), 0o755)?;
    for d in w.carried.keys() {
        let path = d.blob_path();
        tree.add_file(&format!("{BUNDLE_ISO_DIR}/{path}"), file(&path), 0o644)?;
    }
    let unverified = w
        .unverified
        .iter()
        .filter(|(d, _)| w.carried.contains_key(*d))
        .map(|(d, u)| (d.clone(), u.clone()))
        .collect();
    expect_digests(&mut tree, &unverified, w.record)?;
    tree.set_modes(BUNDLE_ISO_DIR, 0o644, 0o755)?;
    tree.add_file("airlift/bundle.json", file("bundle.json"), 0o644)?;
    tree.add_file(
        UPDATE_ISO_PATH,
        FileSource::Bytes(w.update_json.clone()),
        0o644,
    )?;
    Ok(IsoImage {
        volume_id: volume_id.to_string(),
        epoch: w.epoch,
        tree,
        bios: None,
        uefi: None,
        sha256sums: true,
    })
}
