//! The checks an update load makes before it writes anything, as pure
//! functions: the medium is this appliance's, the release an update
//! builds on is held, and which of the medium's blobs are still needed.

use std::collections::HashSet;

use airlift_appliance::{ReleaseId, UpdateManifest};
use airlift_oci::Digest;
use anyhow::{bail, Result};

use super::state::ReleasesState;

/// Refuse another appliance's medium and an update whose base release
/// is not on host0.
pub fn check(
    appliance: &str,
    id: &ReleaseId,
    update: Option<&UpdateManifest>,
    state: &ReleasesState,
) -> Result<()> {
    if id.name != appliance {
        bail!(
            "another appliance's medium: it is for {}, this host0 is {appliance}",
            id.name
        );
    }
    if let Some(u) = update {
        if u.base.name != appliance {
            bail!(
                "another appliance's medium: it updates {}, this host0 is {appliance}",
                u.base.name
            );
        }
        if state.get(&u.base.bundle).is_none() {
            let held = state.names();
            bail!(
                "{id} needs release {} on host0, which holds {}: load that first",
                u.base,
                if held.is_empty() {
                    "no release".to_string()
                } else {
                    held.join(", ")
                }
            );
        }
    }
    Ok(())
}

/// The medium's blobs still to copy: those `present` says are not in
/// the registry with their size.
pub fn missing(
    carried: &[(Digest, u64)],
    present: impl Fn(&Digest, u64) -> bool,
) -> Vec<(Digest, u64)> {
    let mut seen = HashSet::new();
    carried
        .iter()
        .filter(|(d, s)| seen.insert(d.clone()) && !present(d, *s))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::releases::state::{Release, Source};
    use airlift_appliance::release::{bundle_id, BlobCount, UPDATE_SCHEMA};

    fn id(name: &str, v: &str) -> ReleaseId {
        ReleaseId {
            name: name.into(),
            version: v.into(),
            bundle: bundle_id(v.as_bytes()),
        }
    }

    fn update(base: ReleaseId) -> UpdateManifest {
        UpdateManifest {
            schema: UPDATE_SCHEMA.into(),
            release: id("demo", "2"),
            base,
            carried: BlobCount::default(),
            total: BlobCount::default(),
            added: vec![],
            changed: vec![],
            removed: vec![],
        }
    }

    fn held(v: &str) -> ReleasesState {
        let mut s = ReleasesState::default();
        s.add(Release {
            id: id("demo", v),
            images: 0,
            blobs: 0,
            bytes: 0,
            loaded_at: String::new(),
            source: Source::Media,
            base: None,
        });
        s
    }

    #[test]
    fn refuses_another_appliance_and_a_missing_base() {
        let s = held("1");
        let e = check("demo", &id("other", "2"), None, &s)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "another appliance's medium: it is for other, this host0 is demo"
        );
        assert!(
            check("demo", &id("demo", "2"), None, &s).is_ok(),
            "a full medium needs no base"
        );
        let u = update(id("demo", "1"));
        assert!(check("demo", &u.release, Some(&u), &s).is_ok());
        let u = update(id("demo", "1.5"));
        let e = check("demo", &u.release, Some(&u), &s)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("needs release demo 1.5 (")
                && e.contains("which holds demo 1 (")
                && e.ends_with("load that first"),
            "{e}"
        );
        let e = check("demo", &u.release, Some(&u), &ReleasesState::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("which holds no release"), "{e}");
    }

    #[test]
    fn only_absent_blobs_are_needed_once_each() {
        let (a, b) = (Digest::sha256_of(b"a"), Digest::sha256_of(b"b"));
        let carried = vec![(a.clone(), 1), (b.clone(), 2), (b.clone(), 2)];
        assert_eq!(missing(&carried, |d, _| d == &a), vec![(b.clone(), 2)]);
        assert_eq!(missing(&carried, |_, _| true), vec![]);
    }
}
