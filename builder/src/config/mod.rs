//! The image config: its schema, and the pure steps parse → normalise →
//! validate.

pub mod schema;

pub use schema::*;
