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
pub mod redact;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_and_validate_a_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bundle.yaml");
        let text = "\
apiVersion: airlift/v1alpha1
kind: Appliance
metadata: { name: config-load, version: '1' }
images:
  - ref: quay.io/a/b:1
    from: { dockerArchive: { path: saved.tar } }
";
        std::fs::write(&file, text).unwrap();
        // Loading does not look at the files the config names...
        let app = load(&file).unwrap();
        assert_eq!(app.images[0].reference.to_string(), "quay.io/a/b:1");
        assert_eq!(app.origin.file, file);
        // ...validating does, and the error is a ConfigError listing problems.
        let err = load_and_validate(&file, Purpose::Bundle).unwrap_err();
        let ce = err.downcast_ref::<ConfigError>().expect("a ConfigError");
        assert_eq!(ce.problems.len(), 1);
        assert_eq!(
            ce.problems[0].field.as_deref(),
            Some("images[0].from.dockerArchive.path")
        );
        assert_eq!(
            ce.problems[0].position,
            Some(Position {
                line: 6,
                column: 30
            })
        );
        std::fs::write(dir.path().join("saved.tar"), b"tar").unwrap();
        assert!(load_and_validate(&file, Purpose::Bundle).is_ok());
        // A file that cannot be read is an I/O error naming it.
        let missing = dir.path().join("nope.yaml");
        let err = load(&missing).unwrap_err();
        assert!(err.downcast_ref::<ConfigError>().is_none());
        assert!(format!("{err:#}").contains("nope.yaml"), "{err:#}");
    }
}
