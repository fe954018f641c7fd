//! The in-memory index of repositories: tags, member manifests and
//! referrers. Built at start from the read-only layers and the data
//! folder's metadata, then kept in step with every write.

use std::collections::{BTreeMap, HashMap};

use airlift_oci::documents::Descriptor;
use airlift_oci::Digest;

/// A manifest's media type and size, enough to answer HEAD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    pub media_type: String,
    pub size: u64,
}

/// One repository.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RepoIndex {
    pub tags: BTreeMap<String, Digest>,
    pub manifests: HashMap<Digest, ManifestInfo>,
    /// Subject digest → referrer digest → its descriptor.
    pub referrers: HashMap<Digest, BTreeMap<Digest, Descriptor>>,
}

impl RepoIndex {
    /// Nothing left in it.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.manifests.is_empty() && self.referrers.is_empty()
    }
}

/// All repositories by stored name.
pub type Repos = BTreeMap<String, RepoIndex>;

/// Entries of a sorted list after `last`, at most `n` (the spec's
/// pagination); the bool says whether more remain.
pub fn paginate(sorted: Vec<String>, n: Option<usize>, last: Option<&str>) -> (Vec<String>, bool) {
    let mut it = sorted
        .into_iter()
        .filter(|s| last.is_none_or(|l| s.as_str() > l))
        .peekable();
    match n {
        None => (it.collect(), false),
        Some(n) => {
            let page: Vec<String> = it.by_ref().take(n).collect();
            let more = it.peek().is_some();
            (page, more)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages() {
        let all: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            paginate(all.clone(), Some(2), None),
            (vec!["a".into(), "b".into()], true)
        );
        assert_eq!(
            paginate(all.clone(), Some(2), Some("b")),
            (vec!["c".into(), "d".into()], false)
        );
        assert_eq!(
            paginate(all.clone(), None, Some("c")),
            (vec!["d".into()], false)
        );
        assert_eq!(paginate(all.clone(), Some(0), None), (vec![], true));
        assert_eq!(paginate(all, Some(9), Some("d")), (vec![], false));
    }
}
