//! What `airlift inspect` says of a release medium ([`MediumInfo`]): the
//! release it brings and, for an update, the release it needs, what it
//! carries of the total, and the images it adds, changes and removes;
//! and the text rendering (pure).

use airlift_appliance::release::{BlobCount, ImageChange, ReleaseId};
use serde::Serialize;

use super::medium::{Container, Medium};

/// A release medium, as inspect reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MediumInfo {
    /// `full` or `update`.
    pub kind: &'static str,
    pub container: Container,
    pub release: ReleaseId,
    /// The release host0 must hold first (updates only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<ReleaseId>,
    /// Blob files on this medium.
    pub carried: BlobCount,
    /// Every blob the release reaches (what update.json says; for a full
    /// medium, what it carries).
    pub total: BlobCount,
    pub added: Vec<ImageChange>,
    pub changed: Vec<ImageChange>,
    pub removed: Vec<ImageChange>,
}

impl MediumInfo {
    pub fn of(m: &Medium) -> MediumInfo {
        let carried = BlobCount {
            blobs: m.blobs.len() as u64,
            bytes: m.blobs.values().sum(),
        };
        match &m.update {
            None => MediumInfo {
                kind: "full",
                container: m.container,
                release: m.release(),
                base: None,
                carried,
                total: carried,
                added: Vec::new(),
                changed: Vec::new(),
                removed: Vec::new(),
            },
            Some(u) => MediumInfo {
                kind: "update",
                container: m.container,
                release: m.release(),
                base: Some(u.base.clone()),
                carried,
                total: u.total,
                added: u.added.clone(),
                changed: u.changed.clone(),
                removed: u.removed.clone(),
            },
        }
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn digest(d: Option<&airlift_oci::Digest>) -> String {
    d.map_or_else(|| "-".to_string(), |d| d.to_string())
}

/// The text form.
pub fn render(i: &MediumInfo) -> String {
    let mut s = format!("Release:     {}\n", i.release);
    match &i.base {
        None => {
            s.push_str("Medium:      a full release medium: loads on any host0 of this appliance\n")
        }
        Some(b) => s.push_str(&format!(
            "Medium:      an update: needs release {b} on host0 (load that first)\n"
        )),
    }
    s.push_str(&format!(
        "Blobs:       {} of {} carried ({} of {})\n",
        i.carried.blobs,
        i.total.blobs,
        mb(i.carried.bytes),
        mb(i.total.bytes)
    ));
    if i.base.is_none() {
        return s;
    }
    s.push_str(&format!(
        "Changes:     {} added, {} changed, {} removed\n",
        i.added.len(),
        i.changed.len(),
        i.removed.len()
    ));
    for c in &i.added {
        s.push_str(&format!(
            "  added    {} {}\n",
            c.reference,
            digest(c.to.as_ref())
        ));
    }
    for c in &i.changed {
        s.push_str(&format!(
            "  changed  {} {} -> {}\n",
            c.reference,
            digest(c.from.as_ref()),
            digest(c.to.as_ref())
        ));
    }
    for c in &i.removed {
        s.push_str(&format!(
            "  removed  {} {}\n",
            c.reference,
            digest(c.from.as_ref())
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlift_oci::Digest;

    fn id(v: &str, n: u8) -> ReleaseId {
        ReleaseId {
            name: "demo".into(),
            version: v.into(),
            bundle: Digest::sha256_of(&[n]),
        }
    }

    #[test]
    fn an_update_names_its_base_and_changes_a_full_medium_says_it_loads_anywhere() {
        let change = |r: &str, from: Option<u8>, to: Option<u8>| ImageChange {
            reference: r.into(),
            from: from.map(|n| Digest::sha256_of(&[n])),
            to: to.map(|n| Digest::sha256_of(&[n])),
        };
        let mut i = MediumInfo {
            kind: "update",
            container: Container::Archive,
            release: id("2.0", 2),
            base: Some(id("1.0", 1)),
            carried: BlobCount {
                blobs: 3,
                bytes: 3_000_000,
            },
            total: BlobCount {
                blobs: 30,
                bytes: 40_000_000,
            },
            added: vec![change("new:1", None, Some(5))],
            changed: vec![change("app:1", Some(3), Some(4))],
            removed: vec![change("old:1", Some(6), None)],
        };
        let text = render(&i);
        let base = id("1.0", 1);
        assert!(
            text.contains(&format!("needs release {base} on host0")),
            "{text}"
        );
        assert!(
            text.contains("3 of 30 carried (3.0 MB of 40.0 MB)"),
            "{text}"
        );
        assert!(text.contains("1 added, 1 changed, 1 removed"), "{text}");
        let (d3, d4) = (Digest::sha256_of(&[3]), Digest::sha256_of(&[4]));
        assert!(
            text.contains(&format!("  changed  app:1 {d3} -> {d4}\n")),
            "{text}"
        );
        assert!(text.contains("  removed  old:1 sha256:"), "{text}");
        i.base = None;
        let text = render(&i);
        assert!(
            text.contains("a full release medium: loads on any host0"),
            "{text}"
        );
        assert!(!text.contains("Changes:"), "{text}");
    }
}
