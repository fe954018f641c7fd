//! Finding attachments in an OCI layout or oci-archive: `index.json`
//! entries whose manifest has a `subject`, and entries named with the
//! cosign tags.

use airlift_appliance::Attachment;
use airlift_oci::Digest;
use anyhow::Result;

use super::Filter;
use crate::sources::SourceSpec;
use crate::store::Store;

/// Copy into `store` every attachment `source` holds for `subjects` that
/// `filter` keeps, each verified; returns their records. A registry
/// source is handled by [`super::registry`]; a docker-archive has none.
///
/// Contract placeholder: the `local` work replaces this body.
pub fn carry(
    source: &SourceSpec,
    subjects: &[Digest],
    filter: &Filter,
    store: &Store,
) -> Result<Vec<Attachment>> {
    let _ = (source, subjects, filter, store);
    Ok(Vec::new())
}
