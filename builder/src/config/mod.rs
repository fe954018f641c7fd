//! The image config: its schema, and the pure steps parse → normalise →
//! validate.
//!
//! ```text
//! text ──parse──▶ Config ──normalise──▶ Appliance ──validate──▶ ok / every problem
//! ```
//!
//! [`load`] reads, parses and normalises a config file; [`load_and_validate`]
//! also checks every file it points at. Errors are [`ConfigError`]s (one
//! [`Problem`] per line: `FILE:LINE:COLUMN: field PATH: MESSAGE`).

pub mod checks;
pub mod locate;
pub mod normalise;
pub mod parse;
pub mod problem;
pub mod schema;
pub mod validate;

use std::path::Path;

use anyhow::{Context, Result};

pub use normalise::{normalise, process_env, Appliance, ImageEntry, Origin};
pub use parse::parse;
pub use problem::{ConfigError, Position, Problem};
pub use schema::*;
pub use validate::{validate, Purpose};

/// Read, parse and normalise the config at `path` (`${VAR}` from the
/// process environment). The error is a [`ConfigError`] when the config
/// itself is wrong.
pub fn load(path: &Path) -> Result<Appliance> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading image config {}", path.display()))?;
    let config = parse(&text, path)?;
    let origin = Origin::new(path, &text);
    Ok(normalise(config, origin, &process_env)?)
}

/// [`load`], then [`validate`] for `purpose`; the error lists every problem.
pub fn load_and_validate(path: &Path, purpose: Purpose) -> Result<Appliance> {
    let app = load(path)?;
    validate(&app, purpose).map_err(ConfigError::from)?;
    Ok(app)
}
