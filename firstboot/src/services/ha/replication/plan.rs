//! What a replica must do to match the source: pure, from the two
//! catalogues alone.

use airlift_oci::documents::media;
use airlift_oci::Digest;

use crate::services::registry::store::snapshot::StoreState;

/// A manifest to fetch (or adopt, if its bytes are already here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub repo: String,
    pub digest: Digest,
    pub media_type: String,
}

/// The changes, in the order they must be made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Image manifests first, then indexes (whose children are
    /// manifests), so a parent never arrives before its children.
    pub manifests: Vec<Fetch>,
    /// Tags to set (new or moved), after every manifest.
    pub tags: Vec<(String, String, Digest)>,
    /// Tags the source no longer has.
    pub untag: Vec<(String, String)>,
    /// Manifests the source no longer has in that repository.
    pub remove: Vec<(String, Digest)>,
}

impl Plan {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.manifests.is_empty()
            && self.tags.is_empty()
            && self.untag.is_empty()
            && self.remove.is_empty()
    }
}

/// Diff `local` against `remote`.
pub fn plan(local: &StoreState, remote: &StoreState) -> Plan {
    let mut p = Plan::default();
    let mut indexes = Vec::new();
    for (repo, want) in remote {
        let have = local.get(repo);
        for (d, mt) in &want.manifests {
            if have.is_some_and(|h| h.manifests.contains_key(d)) {
                continue;
            }
            let f = Fetch {
                repo: repo.clone(),
                digest: d.clone(),
                media_type: mt.clone(),
            };
            if media::is_index(mt) {
                indexes.push(f);
            } else {
                p.manifests.push(f);
            }
        }
        for (tag, d) in &want.tags {
            if have.and_then(|h| h.tags.get(tag)) != Some(d) {
                p.tags.push((repo.clone(), tag.clone(), d.clone()));
            }
        }
    }
    p.manifests.extend(indexes);
    for (repo, have) in local {
        let want = remote.get(repo);
        for tag in have.tags.keys() {
            if !want.is_some_and(|w| w.tags.contains_key(tag)) {
                p.untag.push((repo.clone(), tag.clone()));
            }
        }
        for d in have.manifests.keys() {
            if !want.is_some_and(|w| w.manifests.contains_key(d)) {
                p.remove.push((repo.clone(), d.clone()));
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::registry::store::snapshot::RepoState;

    fn d(n: u8) -> Digest {
        Digest::sha256_of(&[n])
    }

    fn repo(manifests: &[(u8, &str)], tags: &[(&str, u8)]) -> RepoState {
        RepoState {
            manifests: manifests
                .iter()
                .map(|(n, mt)| (d(*n), mt.to_string()))
                .collect(),
            tags: tags.iter().map(|(t, n)| (t.to_string(), d(*n))).collect(),
        }
    }

    const M: &str = media::OCI_MANIFEST;
    const I: &str = media::OCI_INDEX;

    #[test]
    fn everything_is_fetched_into_an_empty_replica_children_first_tags_last() {
        let remote: StoreState = [(
            "quay.io/a".to_string(),
            repo(&[(1, I), (2, M), (3, M)], &[("1.0", 1)]),
        )]
        .into();
        let p = plan(&StoreState::new(), &remote);
        let order: Vec<&Digest> = p.manifests.iter().map(|f| &f.digest).collect();
        assert_eq!(
            order.last(),
            Some(&&d(1)),
            "the index comes last: {order:?}"
        );
        assert_eq!(order.len(), 3);
        assert_eq!(p.tags, [("quay.io/a".into(), "1.0".into(), d(1))]);
        assert!(p.untag.is_empty() && p.remove.is_empty());
        assert!(plan(&remote, &remote).is_empty());
    }

    #[test]
    fn moved_and_removed_tags_and_manifests() {
        let local: StoreState = [
            (
                "r".to_string(),
                repo(&[(1, M), (2, M)], &[("a", 1), ("b", 2)]),
            ),
            ("gone".to_string(), repo(&[(9, M)], &[("x", 9)])),
        ]
        .into();
        let remote: StoreState = [("r".to_string(), repo(&[(1, M), (3, M)], &[("a", 3)]))].into();
        let p = plan(&local, &remote);
        assert_eq!(p.manifests.len(), 1);
        assert_eq!(p.manifests[0].digest, d(3));
        assert_eq!(p.tags, [("r".into(), "a".into(), d(3))]);
        assert_eq!(
            p.untag,
            [("gone".into(), "x".into()), ("r".into(), "b".into())]
        );
        assert_eq!(p.remove, [("gone".into(), d(9)), ("r".into(), d(2))]);
    }
}
