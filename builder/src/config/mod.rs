//! The image config: its schema, and the pure steps parse → normalise →
//! validate.

pub mod locate;
pub mod normalise;
pub mod parse;
pub mod problem;
pub mod schema;

pub use normalise::{normalise, Appliance, ImageEntry, Origin};
pub use parse::parse;
pub use problem::{ConfigError, Position, Problem};
pub use schema::*;
