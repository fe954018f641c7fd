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

pub mod base_spec;
pub mod checks;
pub mod locate;
pub mod normalise;
pub mod parse;
pub mod problem;
pub mod redact;
pub mod requests;
pub mod schema;
pub mod trust;
pub mod validate;

use std::path::Path;

use anyhow::Result;

pub use base_spec::{BaseSpec, ImageBase, InImageBootloader};
pub use normalise::{normalise, process_env, Appliance, ImageEntry, Origin};
pub use parse::parse;
pub use problem::{ConfigError, Position, Problem};
pub use schema::*;
pub use validate::{validate, Purpose};

/// Read, parse and normalise the config at `path` (`${VAR}` from the
/// process environment). The error is a [`ConfigError`] when the config
/// itself is wrong.
pub fn load(path: &Path) -> Result<Appliance> {
    let text = read_config_text(path)?;
    let config = parse(&text, path)?;
    let origin = Origin::new(path, &text);
    Ok(normalise(config, origin, &process_env)?)
}

/// Largest image config read (real ones are a few KiB).
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// The text of the config at `path`: a regular file (after links) of at
/// most [`MAX_CONFIG_BYTES`], read with that bound however it grows.
pub fn read_config_text(path: &Path) -> Result<String> {
    let bytes = crate::small_file::read(
        path,
        MAX_CONFIG_BYTES,
        "image config",
        "give the path of a YAML file",
    )?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "image config {} is not UTF-8 text (invalid byte at offset {}); give the path of a \
             YAML file",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// [`load`], then [`validate()`] for `purpose`; the error lists every
/// problem. Fills [`Appliance::trust`] from `verify:`.
pub fn load_and_validate(path: &Path, purpose: Purpose) -> Result<Appliance> {
    let mut app = load(path)?;
    validate(&app, purpose).map_err(ConfigError::from)?;
    app.trust = trust::policy(&app).map_err(ConfigError::from)?;
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
        // Not a tar: validate opens it as bundle would.
        std::fs::write(dir.path().join("saved.tar"), b"tar").unwrap();
        let err = load_and_validate(&file, Purpose::Bundle).unwrap_err();
        assert!(format!("{err:#}").contains("not a readable tar"), "{err:#}");
        // A real docker archive.
        let mut b = tar::Builder::new(std::fs::File::create(dir.path().join("saved.tar")).unwrap());
        for (name, bytes) in [
            (
                "manifest.json",
                &br#"[{"Config":"c.json","RepoTags":["a/b:1"],"Layers":["l.tar"]}]"#[..],
            ),
            ("c.json", br#"{"os":"linux","architecture":"amd64"}"#),
            ("l.tar", b"layer"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, bytes).unwrap();
        }
        b.finish().unwrap();
        drop(b);
        assert!(load_and_validate(&file, Purpose::Bundle).is_ok());
        // A file that cannot be read is an I/O error naming it.
        let missing = dir.path().join("nope.yaml");
        let err = load(&missing).unwrap_err();
        assert!(err.downcast_ref::<ConfigError>().is_none());
        assert!(format!("{err:#}").contains("nope.yaml"), "{err:#}");
    }
}
