//! What an update medium carries, decided without I/O: every blob the new
//! release reaches, minus those the previous release is known to hold,
//! and the `update.json` that says so ([`UpdateManifest`]).
//!
//! What counts as held depends on what PREVIOUS was ([`Held`]): a
//! previous ISO gives its exact blob files; a `bundle.json` only names
//! images, so a new image whose top digest (and kept platforms) is the
//! same as one of the previous release's is held whole, and every other
//! blob is carried, even one that an older image happened to share.

use std::collections::{BTreeMap, BTreeSet};

use airlift_appliance::release::{
    BlobCount, ImageChange, ReleaseId, UpdateManifest, UPDATE_SCHEMA,
};
use airlift_appliance::BundleManifest;
use airlift_oci::Digest;

/// What the previous release is known to hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// Blob files known present (the previous ISO's, or those an update
    /// medium carried), by digest.
    pub blobs: BTreeSet<Digest>,
    /// Images whose every blob is present: (top digest, kept platforms).
    pub images: BTreeSet<(Digest, Vec<String>)>,
}

/// One image of the new release and every blob it reaches, with sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewImage {
    pub digest: Digest,
    pub platforms: Vec<String>,
    pub blobs: BTreeMap<Digest, u64>,
}

/// The blobs of the new release: all of them, and those to carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub total: BTreeMap<Digest, u64>,
    pub carried: BTreeMap<Digest, u64>,
}

impl Plan {
    /// Which of `images`' blobs `held` lacks.
    pub fn new(images: &[NewImage], held: &Held) -> Plan {
        let mut plan = Plan::default();
        let mut present = BTreeSet::new();
        for im in images {
            if held
                .images
                .contains(&(im.digest.clone(), im.platforms.clone()))
            {
                present.extend(im.blobs.keys().cloned());
            }
            plan.total.extend(im.blobs.clone());
        }
        for (d, size) in &plan.total {
            if !present.contains(d) && !held.blobs.contains(d) {
                plan.carried.insert(d.clone(), *size);
            }
        }
        plan
    }
}

fn count(blobs: &BTreeMap<Digest, u64>) -> BlobCount {
    BlobCount {
        blobs: blobs.len() as u64,
        bytes: blobs.values().sum(),
    }
}

/// `update.json` for `plan`: `release` over `base`, images compared by
/// reference between the two bundle manifests (each list sorted by it).
pub fn manifest(
    release: ReleaseId,
    base: ReleaseId,
    new: &BundleManifest,
    old: &BundleManifest,
    plan: &Plan,
) -> UpdateManifest {
    let by_ref = |m: &BundleManifest| -> BTreeMap<String, Digest> {
        m.images
            .iter()
            .map(|i| (i.reference.clone(), i.digest.clone()))
            .collect()
    };
    let (new_refs, old_refs) = (by_ref(new), by_ref(old));
    let change = |reference: &str, from: Option<&Digest>, to: Option<&Digest>| ImageChange {
        reference: reference.to_string(),
        from: from.cloned(),
        to: to.cloned(),
    };
    let (mut added, mut changed, mut removed) = (Vec::new(), Vec::new(), Vec::new());
    for (r, to) in &new_refs {
        match old_refs.get(r) {
            None => added.push(change(r, None, Some(to))),
            Some(from) if from != to => changed.push(change(r, Some(from), Some(to))),
            Some(_) => {}
        }
    }
    for (r, from) in &old_refs {
        if !new_refs.contains_key(r) {
            removed.push(change(r, Some(from), None));
        }
    }
    UpdateManifest {
        schema: UPDATE_SCHEMA.to_string(),
        release,
        base,
        carried: count(&plan.carried),
        total: count(&plan.total),
        added,
        changed,
        removed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlift_appliance::{BundleImage, Totals};

    fn d(n: u8) -> Digest {
        Digest::sha256_of(&[n])
    }

    fn image(top: u8, blobs: &[u8]) -> NewImage {
        NewImage {
            digest: d(top),
            platforms: vec!["linux/amd64".into()],
            blobs: std::iter::once(top)
                .chain(blobs.iter().copied())
                .map(|b| (d(b), u64::from(b) * 10))
                .collect(),
        }
    }

    fn bundle(version: &str, images: &[(&str, u8)]) -> BundleManifest {
        BundleManifest {
            schema: "airlift.bundle/v1".into(),
            name: "demo".into(),
            version: version.into(),
            images: images
                .iter()
                .map(|(r, top)| BundleImage {
                    reference: r.to_string(),
                    digest: d(*top),
                    media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                    platforms: vec!["linux/amd64".into()],
                    size: 0,
                    attachments: Vec::new(),
                    signatures: Vec::new(),
                })
                .collect(),
            totals: Totals::default(),
            base: None,
        }
    }

    fn id(version: &str) -> ReleaseId {
        ReleaseId {
            name: "demo".into(),
            version: version.into(),
            bundle: d(200),
        }
    }

    #[test]
    fn an_exact_blob_set_carries_only_what_it_lacks() {
        let images = [image(1, &[10, 11]), image(2, &[11, 12])];
        let held = Held {
            blobs: [d(1), d(10), d(11)].into_iter().collect(),
            images: BTreeSet::new(),
        };
        let p = Plan::new(&images, &held);
        assert_eq!(p.total.len(), 5);
        let carried: Vec<_> = p.carried.keys().cloned().collect();
        assert_eq!(carried, {
            let mut v = vec![d(2), d(12)];
            v.sort();
            v
        });
        assert_eq!(p.carried[&d(12)], 120);
    }

    #[test]
    fn named_images_count_as_held_only_with_the_same_digest_and_platforms() {
        let images = [image(1, &[10, 11]), image(2, &[11, 12])];
        let mut held = Held::default();
        held.images.insert((d(1), vec!["linux/amd64".into()]));
        // Same top digest, other platforms: its children may differ.
        held.images.insert((d(2), vec!["linux/arm64".into()]));
        let p = Plan::new(&images, &held);
        let carried: BTreeSet<_> = p.carried.keys().cloned().collect();
        assert_eq!(carried, [d(2), d(12)].into_iter().collect());
        // Blob 11 is shared with the held image 1, so it stays behind.
        assert!(!p.carried.contains_key(&d(11)));
        let none = Plan::new(&images, &Held::default());
        assert_eq!(none.carried, none.total);
    }

    #[test]
    fn the_manifest_names_added_changed_and_removed_images() {
        let old = bundle("1", &[("a:1", 1), ("b:1", 2), ("gone:1", 3)]);
        let new = bundle("2", &[("a:1", 1), ("b:1", 4), ("new:1", 5)]);
        let plan = Plan {
            total: [(d(1), 5), (d(4), 7)].into_iter().collect(),
            carried: [(d(4), 7)].into_iter().collect(),
        };
        let m = manifest(id("2"), id("1"), &new, &old, &plan);
        assert_eq!(m.schema, UPDATE_SCHEMA);
        assert_eq!((m.carried.blobs, m.carried.bytes), (1, 7));
        assert_eq!((m.total.blobs, m.total.bytes), (2, 12));
        let refs = |v: &[ImageChange]| v.iter().map(|c| c.reference.clone()).collect::<Vec<_>>();
        assert_eq!(refs(&m.added), ["new:1"]);
        assert_eq!(refs(&m.changed), ["b:1"]);
        assert_eq!(refs(&m.removed), ["gone:1"]);
        assert_eq!(m.changed[0].from, Some(d(2)));
        assert_eq!(m.changed[0].to, Some(d(4)));
        assert_eq!(
            (m.added[0].from.clone(), m.added[0].to.clone()),
            (None, Some(d(5)))
        );
        assert_eq!(
            (m.removed[0].from.clone(), m.removed[0].to.clone()),
            (Some(d(3)), None)
        );
    }
}
