//! `DATA/releases/state.json`: the releases host0 holds, in the order
//! they were loaded, and the current one (whose tags are served). Pure
//! data and its atomic load and save; what changes it lives beside it.

use std::path::{Path, PathBuf};

use airlift_appliance::ReleaseId;
use airlift_oci::{atomic, Digest};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The folder under host0's state folder (`/var/lib/airlift`).
pub const DIR: &str = "releases";
/// The state file in [`DIR`].
pub const STATE_FILE: &str = "state.json";
/// The `schema` value this airlift writes and reads.
pub const STATE_SCHEMA: &str = "airlift.releases/v1";

/// Where a release came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The boot media (or a full ISO given as an update).
    Media,
    /// An update medium (`update.json`).
    Update,
    /// Recorded by `airlift-firstboot restore`.
    Restore,
}

/// One release on host0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Release {
    pub id: ReleaseId,
    /// Images (tags) in its `index.json`.
    pub images: u64,
    /// Distinct blobs it reaches and their bytes.
    pub blobs: u64,
    pub bytes: u64,
    /// When it finished loading (RFC 3339 UTC).
    pub loaded_at: String,
    pub source: Source,
    /// The release an update was built on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<ReleaseId>,
}

/// The state file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReleasesState {
    /// [`STATE_SCHEMA`].
    pub schema: String,
    /// The bundle digest of the release whose tags are served; None
    /// before the first release has finished loading.
    pub current: Option<Digest>,
    /// Every release held, oldest load first.
    pub releases: Vec<Release>,
}

impl Default for ReleasesState {
    fn default() -> Self {
        ReleasesState {
            schema: STATE_SCHEMA.to_string(),
            current: None,
            releases: Vec::new(),
        }
    }
}

/// `DATA/releases/state.json`.
pub fn state_path(data: &Path) -> PathBuf {
    data.join(DIR).join(STATE_FILE)
}

/// `DATA/releases/<hex>`: where a release's layout is kept.
pub fn release_dir(data: &Path, bundle: &Digest) -> PathBuf {
    data.join(DIR).join(bundle.hex())
}

impl ReleasesState {
    /// Read the state of host0's state folder `data`; an absent file is
    /// an empty list. A damaged one is an error naming the file.
    pub fn load(data: &Path) -> Result<ReleasesState> {
        let path = state_path(data);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ReleasesState::default())
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let s: ReleasesState = airlift_oci::quiet_json::parse(&bytes, &path.display().to_string())?;
        if s.schema != STATE_SCHEMA {
            bail!(
                "{}: schema {:?} is not {STATE_SCHEMA:?}; this airlift-firstboot cannot read it",
                path.display(),
                s.schema
            );
        }
        Ok(s)
    }

    /// Write it atomically (temp file, fsync, rename).
    pub fn save(&self, data: &Path) -> Result<()> {
        let path = state_path(data);
        atomic::create_dir_all(path.parent().expect("has a parent"))?;
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        atomic::write(&path, &bytes)
    }

    /// The release whose tags are served.
    pub fn current(&self) -> Option<&Release> {
        let c = self.current.as_ref()?;
        self.get(c)
    }

    /// The release with this bundle digest.
    pub fn get(&self, bundle: &Digest) -> Option<&Release> {
        self.releases.iter().find(|r| &r.id.bundle == bundle)
    }

    /// The release `name` names ([`ReleaseId::matches`]: a version, a
    /// bundle digest or 12+ of its hex digits). Several matching (one
    /// version built twice) is an error listing them.
    pub fn find(&self, name: &str) -> Result<&Release> {
        let found: Vec<&Release> = self
            .releases
            .iter()
            .filter(|r| r.id.matches(name))
            .collect();
        match found.as_slice() {
            [one] => Ok(one),
            [] => bail!(
                "no release {name:?} on host0; it holds {}",
                self.names().join(", ")
            ),
            many => bail!(
                "{name:?} names {} releases ({}); give the bundle digest",
                many.len(),
                many.iter()
                    .map(|r| r.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The releases garbage collection keeps with `keep` (at least 1):
    /// the current one, then the `keep - 1` most recently loaded others.
    pub fn kept(&self, keep: u32) -> Vec<&Release> {
        let mut out: Vec<&Release> = self.current().into_iter().collect();
        let others = self
            .releases
            .iter()
            .rev()
            .filter(|r| Some(&r.id.bundle) != self.current.as_ref());
        out.extend(others.take((keep.max(1) as usize).saturating_sub(out.len())));
        out
    }

    /// Record a finished load: a release with the same bundle is
    /// replaced and moves to the end (the most recent load).
    pub fn add(&mut self, r: Release) {
        self.releases.retain(|x| x.id.bundle != r.id.bundle);
        self.releases.push(r);
    }

    /// Serve `bundle`'s tags from now on; it must be held.
    pub fn set_current(&mut self, bundle: &Digest) -> Result<()> {
        if self.get(bundle).is_none() {
            bail!("release {bundle} is not on host0");
        }
        self.current = Some(bundle.clone());
        Ok(())
    }

    /// Forget a release (never the current one).
    pub fn remove(&mut self, bundle: &Digest) -> Result<()> {
        if self.current.as_ref() == Some(bundle) {
            bail!("release {bundle} is the current one and cannot be removed");
        }
        self.releases.retain(|r| &r.id.bundle != bundle);
        Ok(())
    }

    /// `name version (short)` of every release, oldest first.
    pub fn names(&self) -> Vec<String> {
        self.releases.iter().map(|r| r.id.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(version: &str) -> Release {
        Release {
            id: ReleaseId {
                name: "demo".into(),
                version: version.into(),
                bundle: airlift_appliance::release::bundle_id(version.as_bytes()),
            },
            images: 1,
            blobs: 2,
            bytes: 3,
            loaded_at: "2026-12-07T00:00:00Z".into(),
            source: Source::Media,
            base: None,
        }
    }

    #[test]
    fn kept_is_current_then_most_recent_loads() {
        let mut s = ReleasesState::default();
        assert!(s.kept(2).is_empty());
        for v in ["1", "2", "3"] {
            s.add(rel(v));
        }
        s.set_current(&rel("3").id.bundle).unwrap();
        fn versions(s: &ReleasesState, k: u32) -> Vec<String> {
            s.kept(k).iter().map(|r| r.id.version.clone()).collect()
        }
        assert_eq!(versions(&s, 2), ["3", "2"]);
        assert_eq!(versions(&s, 1), ["3"]);
        assert_eq!(versions(&s, 0), ["3"], "keep 0 still keeps the current one");
        assert_eq!(versions(&s, 9), ["3", "2", "1"]);
        // A rollback to 1 keeps 1 and the newest other, 3.
        s.set_current(&rel("1").id.bundle).unwrap();
        assert_eq!(versions(&s, 2), ["1", "3"]);
    }

    #[test]
    fn find_add_remove_and_current() {
        let mut s = ReleasesState::default();
        s.add(rel("1"));
        s.add(rel("2"));
        assert_eq!(s.find("2").unwrap().id.version, "2");
        let e = s.find("7").unwrap_err().to_string();
        assert!(
            e.contains("no release \"7\"") && e.contains("demo 1 ("),
            "{e}"
        );
        assert!(s.set_current(&rel("9").id.bundle).is_err());
        s.set_current(&rel("2").id.bundle).unwrap();
        assert!(s.remove(&rel("2").id.bundle).is_err());
        s.remove(&rel("1").id.bundle).unwrap();
        assert_eq!(s.names().len(), 1);
        // Re-adding moves a release to the end.
        s.add(rel("1"));
        s.add(rel("2"));
        assert_eq!(s.releases.last().unwrap().id.version, "2");
        assert_eq!(s.releases.len(), 2);
    }

    #[test]
    fn saves_atomically_and_reads_back() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(
            ReleasesState::load(t.path()).unwrap(),
            ReleasesState::default()
        );
        let mut s = ReleasesState::default();
        s.add(rel("1"));
        s.set_current(&rel("1").id.bundle).unwrap();
        s.save(t.path()).unwrap();
        assert_eq!(ReleasesState::load(t.path()).unwrap(), s);
        std::fs::write(state_path(t.path()), b"{\"schema\": 7, \"secret\"").unwrap();
        let e = format!("{:#}", ReleasesState::load(t.path()).unwrap_err());
        assert!(e.contains("state.json") && !e.contains("secret"), "{e}");
    }
}
