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
