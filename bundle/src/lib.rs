//! The airlift image bundle: one OCI image layout holding every image of
//! an appliance, with digests verified as bytes move, fully qualified
//! image references, and the bundle manifest.

pub mod appliance;
pub mod atomic;
pub mod civil_time;
pub mod digest;
pub mod layout;
pub mod manifest;
pub mod oci;
pub mod quiet_json;
pub mod reference;

pub use digest::{Algorithm, Digest};
pub use layout::{BlobWriter, Layout};
pub use manifest::{BundleImage, BundleManifest, Totals};
pub use oci::{Descriptor, Document, Index, Manifest, Platform};
pub use reference::Reference;
