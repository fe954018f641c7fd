//! Reading `/etc/airlift/appliance.json`. The type is shared with the
//! builder, which writes the file: [`airlift_appliance`].

use std::path::Path;

use anyhow::Result;

pub use airlift_appliance::{ApplianceFile, RegistryFile, Role, Runtime, Storage, TlsMode};

/// The file's path on the appliance.
pub const DEFAULT_PATH: &str = "/etc/airlift/appliance.json";

/// Read and check the appliance file at `path`.
pub fn load(path: &Path) -> Result<ApplianceFile> {
    ApplianceFile::load(path)
}
