//! The blob checks of a build: which blobs the ISO writer copies from
//! their source files and hashes, which it copies on the verification
//! record's word ([`crate::verified`]), and what it adds to the record.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use anyhow::Result;

use super::BUNDLE_ISO_DIR;
use crate::bundler;
use crate::iso::{self, FileSource};
use crate::verified;

/// Make the ISO writer copy each blob the bundler linked without reading
/// (`unverified`) from its source file and check it against its digest
/// as it writes it, unless `record` vouches for the file as it is now.
pub fn expect_digests(
    tree: &mut iso::Tree,
    unverified: &BTreeMap<airlift_oci::Digest, bundler::Unverified>,
    record: Option<&verified::Record>,
) -> Result<()> {
    for (digest, u) in unverified {
        let iso_path = format!("{BUNDLE_ISO_DIR}/{}", digest.blob_path());
        tree.replace_with_file(&iso_path, FileSource::Path(u.file.clone()), 0o644)?;
        let trusted =
            record.and_then(|r| verified::FileKey::at(&u.file).filter(|key| r.trusts(digest, key)));
        tree.expect_digest(
            &iso_path,
            iso::Expected {
                digest: digest.clone(),
                source: u.source.clone(),
                trusted,
            },
        )?;
    }
    Ok(())
}

/// Adds the blob files this build hashed (`checks`, from a check that
/// started at `started`) to the record and saves it in its folder. A record that
/// cannot be written costs the next build a hash, not this one its ISO.
pub fn remember(
    cache: Option<(&Path, &mut verified::Record)>,
    checks: &iso::Checks,
    started: SystemTime,
) {
    let Some((dir, record)) = cache else { return };
    let mut added = 0;
    for c in &checks.checked {
        added += usize::from(record.add(&c.digest, c.key, &c.file, started));
    }
    if added == 0 {
        return;
    }
    match record.save(dir) {
        Ok(()) => tracing::debug!("verification record: {added} blob files added"),
        Err(e) => tracing::warn!("{e:#}; the next build hashes these blobs again"),
    }
}
