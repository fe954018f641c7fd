//! `base.modulesDir`, `base.modules` and `base.extraModules`: the folder
//! is there whenever a set of modules is in force (the server set is, when
//! `modules` is absent), each name is well formed, and each name the
//! config gives is a module of that kernel (a file or built in).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{Kind, Validator};
use crate::config::checks;
use crate::config::locate::join_index;
use crate::config::Base;
use crate::initramfs::modules;

const WHAT: &str = "a lib/modules/VERSION folder";

impl Validator<'_> {
    /// `base.modules` and `base.extraModules` name modules in the right
    /// form; whether every name was.
    pub(super) fn module_names(&mut self, modules: Option<&[String]>, extra: &[String]) -> bool {
        let lists = [
            ("base.modules", modules.unwrap_or_default()),
            ("base.extraModules", extra),
        ];
        let mut well_formed = true;
        for (field, names) in lists {
            for (i, m) in names.iter().enumerate() {
                let r = checks::module_name(m);
                well_formed &= r.is_ok();
                self.check(&join_index(field, i), r);
            }
        }
        well_formed
    }

    /// No `base.kernelArgs` entry is empty.
    pub(super) fn kernel_args(&mut self, args: &[String]) {
        for (i, a) in args.iter().enumerate() {
            if a.trim().is_empty() {
                self.problem(&join_index("base.kernelArgs", i), "is empty; remove it");
            }
        }
    }

    pub(super) fn modules(&mut self, b: &Base) {
        let well_formed = self.module_names(b.modules.as_deref(), &b.extra_modules);
        let Some(dir) = &b.modules_dir else {
            self.no_modules_dir(b);
            return;
        };
        if !self.expect("base.modulesDir", dir, Kind::Dir, WHAT) || !well_formed {
            return;
        }
        let known = match (modules::index(dir), modules::builtin(dir)) {
            (Ok(index), Ok(builtin)) => Known { index, builtin },
            (Err(e), _) | (_, Err(e)) => {
                self.problem(
                    "base.modulesDir",
                    format!(
                        "{} cannot be read ({e:#}); point it at {WHAT}",
                        dir.display()
                    ),
                );
                return;
            }
        };
        let lists = [
            ("base.modules", b.modules.as_deref().unwrap_or_default()),
            ("base.extraModules", b.extra_modules.as_slice()),
        ];
        for (field, names) in lists {
            for (i, m) in names.iter().enumerate() {
                if !known.has(m) {
                    self.problem(&join_index(field, i), missing(m, dir));
                }
            }
        }
    }

    /// No `modulesDir`: a problem when any set of modules is in force.
    fn no_modules_dir(&mut self, b: &Base) {
        const SET_IT: &str =
            "names modules but base.modulesDir is not set; set it to the lib/modules/VERSION folder";
        match &b.modules {
            None => self.problem(
                "base",
                "has no modulesDir, and with base.modules absent the initramfs gets airlift's \
                 server set of kernel modules (storage, network, USB, filesystems): set \
                 base.modulesDir to the kernel's lib/modules/VERSION folder, or write \
                 `modules: []` for an initramfs with no modules",
            ),
            Some(m) if !m.is_empty() => self.problem("base.modules", SET_IT),
            Some(_) => {}
        }
        if !b.extra_modules.is_empty() {
            self.problem("base.extraModules", SET_IT);
        }
    }
}

/// The modules a kernel has: files by canonical name, and built-ins.
struct Known {
    index: BTreeMap<String, String>,
    builtin: BTreeSet<String>,
}

impl Known {
    fn has(&self, name: &str) -> bool {
        let c = modules::canonical(name);
        self.index.contains_key(&c) || self.builtin.contains(&c)
    }
}

fn missing(name: &str, dir: &Path) -> String {
    format!(
        "kernel module {name:?} is not in {} (no such module file below it, and not built in \
         per its modules.builtin); check the spelling, or point base.modulesDir at the kernel \
         that has it",
        dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::{one, problems, GOOD};
    use super::super::Purpose;

    const LISTED: &str = "  modules: [virtio_blk]\n";

    #[test]
    fn names_the_kernel_lacks_are_errors_with_their_position_and_folder() {
        let e = one(&GOOD.replace(LISTED, "  modules: [virtio_blk, no_such_nic]\n"));
        assert!(e.starts_with("27:25: field base.modules[1]: "), "{e}");
        assert!(
            e.contains("kernel module \"no_such_nic\" is not in "),
            "{e}"
        );
        assert!(e.contains("base/modules"), "{e}");
        let e = one(&GOOD.replace(LISTED, "  extraModules: [virtio-blk, unix, nope]\n"));
        assert!(e.starts_with("27:36: field base.extraModules[2]: "), "{e}");
        assert!(e.contains("\"nope\""), "{e}");
    }

    #[test]
    fn built_in_names_and_either_spelling_are_fine() {
        let text = GOOD.replace(
            LISTED,
            "  modules: [virtio-blk, unix]\n  extraModules: [virtio_blk]\n",
        );
        assert_eq!(problems(&text, Purpose::Build), Vec::<String>::new());
        let text = GOOD.replace(LISTED, "");
        assert_eq!(problems(&text, Purpose::Build), Vec::<String>::new());
    }

    #[test]
    fn the_server_set_needs_a_modules_folder() {
        let no_dir = GOOD.replace("  modulesDir: ${BASE}/modules\n", "");
        let e = one(&no_dir.replace(LISTED, ""));
        assert!(e.starts_with("22:1: field base: has no modulesDir"), "{e}");
        assert!(e.contains("server set") && e.contains("modules: []"), "{e}");
        let e = one(&no_dir);
        assert!(
            e.contains("field base.modules: names modules but base.modulesDir is not set"),
            "{e}"
        );
        let e = one(&no_dir.replace(LISTED, "  modules: []\n  extraModules: [igb]\n"));
        assert!(e.contains("field base.extraModules: names modules"), "{e}");
        let none = no_dir.replace(LISTED, "  modules: []\n");
        assert_eq!(problems(&none, Purpose::Build), Vec::<String>::new());
    }

    #[test]
    fn malformed_names_are_reported_before_the_folder_is_read() {
        let e = one(&GOOD.replace(LISTED, "  extraModules: [igb.ko]\n"));
        assert!(
            e.contains("field base.extraModules[0]: \"igb.ko\" is not a module name"),
            "{e}"
        );
    }
}
