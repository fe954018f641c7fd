//! The appliance base from a container image (`base.image`): the image
//! pulled like any other, its layers flattened into the root filesystem
//! tree ([`flatten`]), and the kernel, modules and boot loaders taken
//! from where distributions put them in such images.

pub mod flatten;
pub mod locate;
pub mod materialise;
pub mod pull;
pub mod resolve;

pub use resolve::{resolve, Resolved};
