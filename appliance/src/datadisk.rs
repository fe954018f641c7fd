//! host0's persistent storage: the image config's `storage:` section,
//! carried into `appliance.json` as is. The builder checks it against the
//! rest of the config; `airlift-firstboot` finds, prepares and mounts the
//! disk it names.
//!
//! [`DataDisk`]'s fields are declared in alphabetical order: that is the
//! order of its keys in `appliance.json` (the section once passed through
//! a sorted JSON map), and the golden files hold those bytes.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// host0's persistent storage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Storage {
    /// The data disk; none means the appliance runs from RAM and serves
    /// the bundle from the media only.
    #[serde(default)]
    pub data_disk: Option<DataDisk>,
    /// Without a data disk: accept pushes into RAM (lost at reboot).
    #[serde(default)]
    pub allow_ram_push: bool,
    /// Space host0 never fills, in MiB: an update or upload that would
    /// leave less free is refused. None: [`Storage::reserve_bytes`]'s default.
    #[serde(
        default,
        rename = "reserveMiB",
        skip_serializing_if = "Option::is_none"
    )]
    pub reserve_mib: Option<u64>,
    /// The status page warns when the data folder's filesystem is this
    /// full (percent). None: [`DEFAULT_WARN_PERCENT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_percent: Option<u8>,
    /// Releases garbage collection keeps: the current one and the ones
    /// loaded most recently before it. None: [`DEFAULT_KEEP_RELEASES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_releases: Option<u32>,
}

/// The status page warns past this usage (percent) unless `warnPercent` says.
pub const DEFAULT_WARN_PERCENT: u8 = 85;
/// Garbage collection keeps the current and the previous release unless
/// `keepReleases` says.
pub const DEFAULT_KEEP_RELEASES: u32 = 2;
/// The default reserve: 5 % of the data filesystem, at most this (2 GiB).
pub const DEFAULT_RESERVE_CAP: u64 = 2 << 30;

impl Storage {
    /// The bytes to keep free on a filesystem of `fs_size` bytes:
    /// `reserveMiB`, else 5 % of it capped at [`DEFAULT_RESERVE_CAP`].
    pub fn reserve_bytes(&self, fs_size: u64) -> u64 {
        match self.reserve_mib {
            Some(m) => m.saturating_mul(1 << 20),
            None => (fs_size / 20).min(DEFAULT_RESERVE_CAP),
        }
    }

    /// `warnPercent`, else [`DEFAULT_WARN_PERCENT`].
    pub fn warn_percent(&self) -> u8 {
        self.warn_percent.unwrap_or(DEFAULT_WARN_PERCENT)
    }

    /// `keepReleases`, else [`DEFAULT_KEEP_RELEASES`].
    pub fn keep_releases(&self) -> u32 {
        self.keep_releases.unwrap_or(DEFAULT_KEEP_RELEASES)
    }
}

/// Which disk holds `/var/lib/airlift`: one named by path, or the first
/// empty one of a size (exactly one of `device` and `minSizeGiB`; each
/// side checks that with its own message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DataDisk {
    /// A device path or `/dev/disk/by-id/…` link. Exclusive with `minSizeGiB`.
    #[serde(default)]
    pub device: Option<PathBuf>,
    /// The filesystem made on a new data disk.
    #[serde(default)]
    pub filesystem: Filesystem,
    /// Select the first empty disk of at least this size.
    #[serde(default, rename = "minSizeGiB")]
    pub min_size_gib: Option<u64>,
    /// Wipe `device` even if it holds data (never applies to the selector).
    #[serde(default)]
    pub wipe: bool,
}

/// The filesystem made on a new data disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Filesystem {
    #[default]
    Ext4,
    Xfs,
}

impl fmt::Display for Filesystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Filesystem::Ext4 => "ext4",
            Filesystem::Xfs => "xfs",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_out_sorted_and_absent_ones_default() {
        let s = Storage {
            data_disk: Some(DataDisk {
                device: None,
                filesystem: Filesystem::Xfs,
                min_size_gib: Some(100),
                wipe: false,
            }),
            allow_ram_push: false,
            ..Storage::default()
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"dataDisk":{"device":null,"filesystem":"xfs","minSizeGiB":100,"wipe":false},"allowRamPush":false}"#
        );
        let d: DataDisk = serde_json::from_str(r#"{"device": "/dev/vdb"}"#).unwrap();
        assert_eq!(d.filesystem, Filesystem::Ext4);
        assert_eq!((d.min_size_gib, d.wipe), (None, false));
        let s: Storage = serde_json::from_str(r#"{"dataDisk": null}"#).unwrap();
        assert_eq!(s, Storage::default());
        assert_eq!(Filesystem::Xfs.to_string(), "xfs");
    }

    #[test]
    fn day_two_settings_default_and_parse() {
        let s = Storage::default();
        assert_eq!(s.reserve_bytes(10 << 30), (10 << 30) / 20);
        assert_eq!(s.reserve_bytes(1 << 40), DEFAULT_RESERVE_CAP);
        assert_eq!((s.warn_percent(), s.keep_releases()), (85, 2));
        let s: Storage =
            serde_json::from_str(r#"{"reserveMiB": 512, "warnPercent": 70, "keepReleases": 3}"#)
                .unwrap();
        assert_eq!(s.reserve_bytes(1 << 40), 512 << 20);
        assert_eq!((s.warn_percent(), s.keep_releases()), (70, 3));
        assert!(serde_json::to_string(&s)
            .unwrap()
            .contains("\"reserveMiB\":512"));
        assert!(serde_json::from_str::<Storage>(r#"{"reserveMib": 1}"#).is_err());
    }

    #[test]
    fn unknown_fields_and_values_are_refused() {
        for bad in [
            r#"{"dataDisk": {"device": "/dev/vdb", "size": 1}}"#,
            r#"{"dataDisk": {"filesystem": "btrfs"}}"#,
            r#"{"dataDisk": {"minSizeGib": 1}}"#,
            r#"{"dataDisk": "/dev/vdb"}"#,
            r#"{"disk": null}"#,
        ] {
            assert!(serde_json::from_str::<Storage>(bad).is_err(), "{bad}");
        }
    }
}
