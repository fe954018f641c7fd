//! The descriptors a pushed manifest points at must name what is
//! stored: each blob exists with the declared size, and each child of
//! an index is itself a manifest (its bytes parse as the type its
//! descriptor declares), not a layer blob. Foreign layers (with `urls`)
//! are not checked.

use airlift_oci::documents::{media, Descriptor};

use crate::services::registry::error::{Code, RegistryError, Result};
use crate::services::registry::manifest::{inspect, Inspected, MAX_MANIFEST_BYTES};
use crate::services::registry::Registry;

fn refused(code: Code, d: &Descriptor, msg: String) -> RegistryError {
    RegistryError::new(code, msg).with_detail(serde_json::json!({
        "digest": d.digest.to_string(),
        "size": d.size,
        "mediaType": d.media_type,
    }))
}

fn is_manifest_type(mt: &str) -> bool {
    media::is_index(mt) || media::is_manifest(mt)
}

/// Check every descriptor of `inspected` against the store.
pub async fn check(reg: &Registry, inspected: &Inspected) -> Result<()> {
    for child in &inspected.children {
        if child.extra.contains_key("urls") {
            continue;
        }
        let what = if inspected.is_index {
            "manifest"
        } else {
            "blob"
        };
        let Some(blob) = reg.store.blob(&child.digest).await else {
            return Err(refused(
                Code::ManifestBlobUnknown,
                child,
                format!(
                    "the manifest references {what} {}, which is not stored: push it first",
                    child.digest
                ),
            ));
        };
        if blob.size != child.size {
            return Err(refused(
                Code::ManifestInvalid,
                child,
                format!(
                    "the descriptor of {what} {} says {} bytes but the stored {what} has {}",
                    child.digest, child.size, blob.size
                ),
            ));
        }
        if inspected.is_index {
            check_child_manifest(reg, child, blob).await?;
        }
    }
    Ok(())
}

/// An index child must be a manifest or index of the type it declares.
async fn check_child_manifest(
    reg: &Registry,
    child: &Descriptor,
    blob: crate::services::registry::store::Blob,
) -> Result<()> {
    let not_manifest = |why: String| {
        refused(
            Code::ManifestInvalid,
            child,
            format!("index child {} is not a manifest: {why}", child.digest),
        )
    };
    if !is_manifest_type(&child.media_type) {
        return Err(not_manifest(format!(
            "its descriptor's mediaType is {}",
            child.media_type
        )));
    }
    if blob.size > MAX_MANIFEST_BYTES as u64 {
        return Err(not_manifest(format!("it has {} bytes", blob.size)));
    }
    let bytes = reg.store.read_blob(&blob).await?;
    let found = inspect(&bytes, None)
        .map_err(|_| not_manifest("its content is not a manifest document".into()))?;
    if found.is_index != media::is_index(&child.media_type) {
        return Err(not_manifest(format!(
            "its descriptor says {} but it is {}",
            child.media_type, found.media_type
        )));
    }
    Ok(())
}
