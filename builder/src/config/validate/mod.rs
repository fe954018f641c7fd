//! Step 3: check what a normalised config points at and how its fields
//! fit together, collecting every problem (not just the first). Each
//! problem names the file, the field, its line and column, and what to do.

use std::fs;
use std::path::Path;

mod attachments;
mod base;
mod images;
mod modules;
mod secure_boot;
mod services;

use super::checks;
use super::locate::join_key;
use super::normalise::Appliance;
use super::problem::Problem;
use super::trust;

/// What the config is checked for: `airlift bundle` needs only images;
/// `airlift build` also needs `base`; an update medium (`airlift build
/// --update-from`) does not boot, so `base` and the overlays are not
/// checked at all (their files need not exist where it is built).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Bundle,
    Build,
    Update,
}

/// Files `isolinux` must hold.
pub const ISOLINUX_FILES: [&str; 3] = ["isolinux.bin", "ldlinux.c32", "isohdpfx.bin"];

/// Check `app` for `purpose`; every problem found, in config order.
pub fn validate(app: &Appliance, purpose: Purpose) -> Result<(), Vec<Problem>> {
    let mut v = Validator {
        app,
        problems: Vec::new(),
    };
    v.metadata();
    v.images();
    v.attachments();
    if purpose != Purpose::Update {
        v.base(purpose);
        v.overlays();
    }
    v.registry();
    v.netboot(purpose);
    v.runtimes();
    v.storage();
    v.ha();
    v.output();
    v.secure_boot(purpose);
    v.verify();
    if v.problems.is_empty() {
        Ok(())
    } else {
        Err(v.problems)
    }
}

struct Validator<'a> {
    app: &'a Appliance,
    problems: Vec<Problem>,
}

/// What a path should be.
#[derive(Clone, Copy)]
enum Kind {
    File,
    Dir,
}

impl Validator<'_> {
    fn problem(&mut self, field: &str, message: impl Into<String>) {
        self.problems.push(self.app.origin.problem(field, message));
    }

    fn check(&mut self, field: &str, result: Result<(), String>) {
        if let Err(message) = result {
            self.problem(field, message);
        }
    }

    /// `path` exists and is of `kind`; returns whether it is.
    fn expect(&mut self, field: &str, path: &Path, kind: Kind, what: &str) -> bool {
        let result = match (fs::metadata(path), kind) {
            (Ok(m), Kind::File) if m.is_file() => Ok(()),
            (Ok(m), Kind::Dir) if m.is_dir() => Ok(()),
            (Ok(_), Kind::File) => Err(format!(
                "{} is not a regular file; point it at {what}",
                path.display()
            )),
            (Ok(_), Kind::Dir) => Err(format!(
                "{} is not a folder; point it at {what}",
                path.display()
            )),
            (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                "{} does not exist; point it at {what}",
                path.display()
            )),
            (Err(e), _) => Err(format!(
                "{} cannot be read ({e}); point it at {what}",
                path.display()
            )),
        };
        let ok = result.is_ok();
        self.check(field, result);
        ok
    }

    fn metadata(&mut self) {
        let m = &self.app.metadata;
        self.check(
            "metadata.name",
            checks::dns_label(&m.name).map_err(|e| format!("{e} (e.g. edge-cluster)")),
        );
        if m.version.trim().is_empty() {
            self.problem(
                "metadata.version",
                "is empty; write a version such as 1.0.0",
            );
        }
    }

    /// `verify:`: its key files read and parsed, and `attachments:`
    /// carrying the signatures it needs.
    fn verify(&mut self) {
        if self.app.verify.is_none() {
            return;
        }
        if let Some((field, message)) = trust::attachments_problem(&self.app.config.attachments) {
            self.problem(field, message);
        }
        if let Err(problems) = trust::policy(self.app) {
            self.problems.extend(problems);
        }
    }

    fn output(&mut self) {
        let o = &self.app.output;
        self.check("output.volumeLabel", checks::volume_label(&o.volume_label));
        for (iso, local) in &o.extra_files {
            let f = join_key("output.extraFiles", iso);
            self.check(&f, checks::iso_path(iso));
            if !local.exists() {
                self.problem(
                    &f,
                    format!(
                        "{} does not exist; point it at the file or folder to copy into the ISO",
                        local.display()
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod base_image_tests;
#[cfg(test)]
mod tests;
