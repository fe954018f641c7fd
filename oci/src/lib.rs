//! OCI building blocks shared by the builder and the appliance: digests,
//! fully qualified image references, OCI image layouts (read, and written
//! with every digest verified as bytes move), the OCI documents (index,
//! manifest, descriptor), atomic file writes, civil dates (RFC 3339), and
//! JSON parsing whose errors never echo the input.

pub mod atomic;
pub mod civil_time;
pub mod digest;
pub mod documents;
pub mod layout;
pub mod quiet_json;
pub mod reference;

pub use digest::{Algorithm, Digest};
pub use documents::{Descriptor, Document, Index, Manifest, Platform};
pub use layout::{BlobWriter, Layout};
pub use reference::Reference;
