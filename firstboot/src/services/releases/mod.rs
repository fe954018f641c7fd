//! Releases on host0: every bundle loaded (the boot media's first, then
//! each update), which one's tags are served, and where each is kept
//! ([`state`]). A release is kept on the data disk as a small OCI layout
//! whose blobs are the registry's, so serving a release is serving that
//! layout as the store's read-only layer.
//!
//! ```text
//! DATA/releases/state.json      the list and the current release (atomic)
//! DATA/releases/<hex>/          one release: oci-layout, index.json,
//!                               bundle.json, update.json (from an update),
//!                               blobs -> ../../registry/blobs
//! ```

pub mod archive;
pub mod checks;
pub mod dir;
pub mod load;
pub mod medium;
pub mod ops;
pub mod progress;
pub mod service;
pub mod state;

pub use ops::{OpGuard, Ops};
pub use service::{AfterLoad, Refused, Releases};
pub use state::{Release, ReleasesState, Source};
