//! Kernel modules: find them by name in a `lib/modules/VERSION` tree,
//! compute the dependency closure from each module's `.modinfo` section,
//! and render `modules.dep` / `modules.alias` the way `depmod` does.
//!
//! Debian's kernel package ships no `modules.dep`, and the host may have
//! no `depmod`, so this reads the ELF objects itself. `.ko`, `.ko.xz` and
//! `.ko.zst` are understood.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection};

use super::kmod_index::Index;

/// A module's canonical name: the file name without `.ko*`, with `-`
/// turned into `_` (as the kernel and modprobe compare them).
pub fn canonical(name: &str) -> String {
    name.replace('-', "_")
}

/// Every module file under a modules tree, by canonical name, as paths
/// relative to the tree (`kernel/fs/isofs/isofs.ko`).
pub fn index(modules_dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![modules_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            let ft = entry.file_type()?;
            let path = entry.path();
            if ft.is_dir() {
                stack.push(path);
                continue;
            }
            let fname = entry.file_name();
            let Some(fname) = fname.to_str() else {
                continue;
            };
            let Some(stem) = module_stem(fname) else {
                continue;
            };
            let rel = path
                .strip_prefix(modules_dir)
                .expect("walked below modules_dir")
                .to_str()
                .with_context(|| format!("{}: path is not UTF-8", path.display()))?
                .to_string();
            // Two files with one name: keep the first in sorted order.
            let name = canonical(stem);
            match out.get(&name) {
                Some(existing) if existing <= &rel => {}
                _ => {
                    out.insert(name, rel);
                }
            }
        }
    }
    Ok(out)
}

fn module_stem(fname: &str) -> Option<&str> {
    [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|ext| fname.strip_suffix(ext))
}

/// An alias as kmod looks it up: `-` becomes `_` except inside `[…]`
/// character classes (kmod normalises the name it is asked for the same way).
pub fn normalize_alias(alias: &str) -> String {
    let mut in_class = false;
    alias
        .chars()
        .map(|c| match c {
            '[' => {
                in_class = true;
                c
            }
            ']' => {
                in_class = false;
                c
            }
            '-' if !in_class => '_',
            c => c,
        })
        .collect()
}

/// What a module's `.modinfo` says about dependencies and aliases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModInfo {
    /// `depends=`: modules that must load first.
    pub depends: Vec<String>,
    /// `softdep=`'s `pre:` and `post:` modules.
    pub softdeps: Vec<String>,
    /// `alias=` patterns.
    pub aliases: Vec<String>,
}

/// Parses the NUL-separated `key=value` strings of a `.modinfo` section.
pub fn parse_modinfo(section: &[u8]) -> ModInfo {
    let mut info = ModInfo::default();
    for raw in section.split(|b| *b == 0) {
        let Ok(s) = std::str::from_utf8(raw) else {
            continue;
        };
        let Some((key, value)) = s.split_once('=') else {
            continue;
        };
        match key {
            "depends" => info
                .depends
                .extend(value.split(',').filter(|d| !d.is_empty()).map(canonical)),
            "softdep" => info.softdeps.extend(
                value
                    .split_whitespace()
                    .filter(|w| *w != "pre:" && *w != "post:")
                    .map(canonical),
            ),
            "alias" => info.aliases.push(value.to_string()),
            _ => {}
        }
    }
    info
}

/// Reads a module file (decompressing `.xz`/`.zst`) and parses its `.modinfo`.
pub fn read_modinfo(path: &Path) -> Result<ModInfo> {
    let raw = fs::read(path).with_context(|| format!("reading module {}", path.display()))?;
    let name = path.to_string_lossy();
    let elf = if name.ends_with(".xz") {
        let mut out = Vec::new();
        lzma_rs::xz_decompress(&mut &raw[..], &mut out)
            .map_err(|e| anyhow::anyhow!("{e:?}"))
            .with_context(|| format!("decompressing {}", path.display()))?;
        out
    } else if name.ends_with(".zst") {
        zstd::decode_all(&raw[..]).with_context(|| format!("decompressing {}", path.display()))?
    } else if name.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .with_context(|| format!("decompressing {}", path.display()))?;
        out
    } else {
        raw
    };
    let file = object::File::parse(&*elf)
        .with_context(|| format!("{} is not an ELF kernel module", path.display()))?;
    let section = file
        .section_by_name(".modinfo")
        .with_context(|| format!("{} has no .modinfo section", path.display()))?;
    let data = section
        .data()
        .with_context(|| format!("reading .modinfo of {}", path.display()))?;
    Ok(parse_modinfo(data))
}

/// Module names built into the kernel (`modules.builtin`): asking for them
/// is fine and needs no file.
pub fn builtin(modules_dir: &Path) -> Result<BTreeSet<String>> {
    let path = modules_dir.join("modules.builtin");
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(text
        .lines()
        .filter_map(|l| l.rsplit('/').next())
        .filter_map(module_stem)
        .map(canonical)
        .collect())
}

/// `names` split into those the kernel has (a module file in `index`, or
/// built in) and those it lacks, each in the order given.
pub fn present(
    names: &[String],
    index: &BTreeMap<String, String>,
    builtin: &BTreeSet<String>,
) -> (Vec<String>, Vec<String>) {
    names.iter().cloned().partition(|n| {
        let c = canonical(n);
        index.contains_key(&c) || builtin.contains(&c)
    })
}

/// The chosen modules: each one's path, hard dependencies and aliases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Closure {
    /// Canonical name → module.
    pub modules: BTreeMap<String, Module>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Path relative to the modules tree.
    pub rel: String,
    pub info: ModInfo,
}

/// The dependency closure of `wanted` (hard dependencies and softdeps
/// that exist as modules). `lookup` gives a module's [`ModInfo`] from its
/// relative path. Unknown names are an error naming them, unless built in.
pub fn closure(
    wanted: &[String],
    index: &BTreeMap<String, String>,
    builtin: &BTreeSet<String>,
    mut lookup: impl FnMut(&str) -> Result<ModInfo>,
) -> Result<Closure> {
    let mut out = Closure::default();
    let mut queue: Vec<(String, Option<String>)> =
        wanted.iter().rev().map(|w| (canonical(w), None)).collect();
    let mut missing = Vec::new();
    while let Some((name, needed_by)) = queue.pop() {
        if out.modules.contains_key(&name) {
            continue;
        }
        let Some(rel) = index.get(&name) else {
            if builtin.contains(&name) {
                continue;
            }
            match needed_by {
                // A softdep that does not exist is not an error (depmod
                // ignores them too); a hard one is.
                Some(parent) if !is_hard_dep(&out, &parent, &name) => continue,
                Some(parent) => missing.push(format!("{name} (needed by {parent})")),
                None => missing.push(name),
            }
            continue;
        };
        let info = lookup(rel).with_context(|| format!("module {name}"))?;
        for dep in info.depends.iter().chain(info.softdeps.iter()).rev() {
            queue.push((dep.clone(), Some(name.clone())));
        }
        out.modules.insert(
            name,
            Module {
                rel: rel.clone(),
                info,
            },
        );
    }
    if !missing.is_empty() {
        bail!(
            "kernel modules not found in the modules folder: {} (check base.modules, base.extraModules and base.modulesDir)",
            missing.join(", ")
        );
    }
    Ok(out)
}

fn is_hard_dep(c: &Closure, parent: &str, name: &str) -> bool {
    c.modules
        .get(parent)
        .is_some_and(|m| m.info.depends.iter().any(|d| d == name))
}

impl Closure {
    /// `modules.dep` as depmod writes it: one line per module,
    /// `path: dep dep …` with every transitive hard dependency, ordered so
    /// a module comes before the modules it needs (modprobe loads the list
    /// from the end).
    pub fn modules_dep(&self) -> String {
        self.modules
            .values()
            .map(|m| format!("{}\n", self.dep_line(m)))
            .collect()
    }

    fn dep_line(&self, m: &Module) -> String {
        let mut line = format!("{}:", m.rel);
        for dep in self.load_order_of_deps(m) {
            line.push(' ');
            line.push_str(&self.modules[&dep].rel);
        }
        line
    }

    /// kmod's binary indexes, `(file name, bytes)`: `modules.dep.bin`
    /// (name → dep line), `modules.alias.bin` (alias → name),
    /// `modules.symbols.bin` (empty: symbol lookups are not supported),
    /// `modules.builtin.bin` and `modules.builtin.alias.bin` (from
    /// `modules.builtin` and `modules.builtin.modinfo`).
    pub fn kmod_indexes(
        &self,
        builtin: &BTreeSet<String>,
        builtin_modinfo: &[u8],
    ) -> Result<Vec<(&'static str, Vec<u8>)>> {
        let mut dep = Index::new();
        let mut alias = Index::new();
        for (i, (name, m)) in self.modules.iter().enumerate() {
            dep.insert(name, &self.dep_line(m), i as u32)?;
            for a in &m.info.aliases {
                alias.insert(&normalize_alias(a), name, i as u32)?;
            }
        }
        let mut builtin_idx = Index::new();
        for name in builtin {
            builtin_idx.insert(name, "", 0)?;
        }
        let mut builtin_alias = Index::new();
        for entry in builtin_modinfo.split(|b| *b == 0) {
            let Ok(s) = std::str::from_utf8(entry) else {
                continue;
            };
            if let Some((module, rest)) = s.split_once('.') {
                if let Some(a) = rest.strip_prefix("alias=") {
                    if a.is_ascii() {
                        builtin_alias.insert(&normalize_alias(a), &canonical(module), 0)?;
                    }
                }
            }
        }
        Ok(vec![
            ("modules.dep.bin", dep.encode()?),
            ("modules.alias.bin", alias.encode()?),
            ("modules.symbols.bin", Index::new().encode()?),
            ("modules.builtin.bin", builtin_idx.encode()?),
            ("modules.builtin.alias.bin", builtin_alias.encode()?),
        ])
    }

    /// Transitive hard deps of `m`, each before what it needs.
    fn load_order_of_deps(&self, m: &Module) -> Vec<String> {
        // Post-order DFS gives "needed before needer"; reverse it.
        fn visit(c: &Closure, name: &str, seen: &mut BTreeSet<String>, post: &mut Vec<String>) {
            if !seen.insert(name.to_string()) {
                return;
            }
            if let Some(m) = c.modules.get(name) {
                let mut deps = m.info.depends.clone();
                deps.sort();
                for d in deps {
                    visit(c, &d, seen, post);
                }
                post.push(name.to_string());
            }
        }
        let mut seen = BTreeSet::new();
        let mut post = Vec::new();
        let mut deps = m.info.depends.clone();
        deps.sort();
        for d in deps {
            visit(self, &d, &mut seen, &mut post);
        }
        post.reverse();
        post
    }

    /// `modules.alias`: `alias PATTERN NAME` lines.
    pub fn modules_alias(&self) -> String {
        let mut lines = Vec::new();
        for (name, m) in &self.modules {
            for a in &m.info.aliases {
                lines.push(format!("alias {a} {name}\n"));
            }
        }
        lines.concat()
    }

    /// `modules.softdep`: `softdep NAME pre: A B` lines for softdeps kept.
    pub fn modules_softdep(&self) -> String {
        let mut out = String::new();
        for (name, m) in &self.modules {
            let kept: Vec<&str> = m
                .info
                .softdeps
                .iter()
                .filter(|s| self.modules.contains_key(*s))
                .map(String::as_str)
                .collect();
            if !kept.is_empty() {
                out.push_str(&format!("softdep {name} pre: {}\n", kept.join(" ")));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(deps: &[&str]) -> ModInfo {
        ModInfo {
            depends: deps.iter().map(|s| s.to_string()).collect(),
            ..ModInfo::default()
        }
    }

    fn fake() -> (BTreeMap<String, String>, BTreeMap<String, ModInfo>) {
        let mods = [
            (
                "sr_mod",
                "kernel/drivers/scsi/sr_mod.ko",
                vec!["cdrom", "scsi_mod"],
            ),
            ("cdrom", "kernel/drivers/cdrom/cdrom.ko", vec![]),
            (
                "scsi_mod",
                "kernel/drivers/scsi/scsi_mod.ko",
                vec!["scsi_common"],
            ),
            ("scsi_common", "kernel/drivers/scsi/scsi_common.ko", vec![]),
            ("isofs", "kernel/fs/isofs/isofs.ko", vec![]),
            ("ata_piix", "kernel/drivers/ata/ata_piix.ko", vec!["libata"]),
            ("libata", "kernel/drivers/ata/libata.ko", vec!["scsi_mod"]),
        ];
        let index = mods
            .iter()
            .map(|(n, r, _)| (n.to_string(), r.to_string()))
            .collect();
        let infos = mods
            .iter()
            .map(|(_, r, d)| (r.to_string(), info(d)))
            .collect();
        (index, infos)
    }

    #[test]
    fn aliases_are_normalised_outside_character_classes() {
        assert_eq!(normalize_alias("fs-iso9660"), "fs_iso9660");
        assert_eq!(normalize_alias("pci:v*d[0-9]*-x"), "pci:v*d[0-9]*_x");
    }

    #[test]
    fn modinfo_strings_are_parsed() {
        let sec = b"license=GPL\0depends=libata,scsi_mod\0softdep=pre: crc32c\0alias=pci:v00008086d*\0intree=Y\0";
        let i = parse_modinfo(sec);
        assert_eq!(i.depends, ["libata", "scsi_mod"]);
        assert_eq!(i.softdeps, ["crc32c"]);
        assert_eq!(i.aliases, ["pci:v00008086d*"]);
        assert_eq!(parse_modinfo(b"depends=\0").depends, Vec::<String>::new());
    }

    #[test]
    fn closure_follows_dependencies_and_renders_depmod_format() {
        let (index, infos) = fake();
        let c = closure(
            &["sr_mod".into(), "isofs".into()],
            &index,
            &BTreeSet::new(),
            |rel| Ok(infos[rel].clone()),
        )
        .unwrap();
        let names: Vec<_> = c.modules.keys().cloned().collect();
        assert_eq!(
            names,
            ["cdrom", "isofs", "scsi_common", "scsi_mod", "sr_mod"]
        );
        let dep = c.modules_dep();
        assert!(dep.contains("kernel/fs/isofs/isofs.ko:\n"), "{dep}");
        // sr_mod: every transitive dep, a needer before what it needs.
        let line = dep
            .lines()
            .find(|l| l.starts_with("kernel/drivers/scsi/sr_mod.ko:"))
            .unwrap();
        let deps: Vec<_> = line.split_once(": ").unwrap().1.split(' ').collect();
        let pos = |s: &str| deps.iter().position(|d| d.contains(s)).unwrap();
        assert_eq!(deps.len(), 3);
        assert!(pos("scsi_mod") < pos("scsi_common"));
    }

    #[test]
    fn unknown_modules_are_named_and_builtins_are_fine() {
        let (index, infos) = fake();
        let builtin: BTreeSet<String> = ["crc32c".to_string()].into();
        let err = closure(
            &["isofs".into(), "nope-mod".into(), "crc32c".into()],
            &index,
            &builtin,
            |rel| Ok(infos[rel].clone()),
        )
        .unwrap_err();
        assert!(err.to_string().contains("nope_mod"), "{err}");
        assert!(!err.to_string().contains("crc32c"), "{err}");
    }

    #[test]
    fn present_splits_names_the_kernel_has_from_the_rest() {
        let (index, _) = fake();
        let builtin: BTreeSet<String> = ["crc32c".to_string()].into();
        let names = ["isofs", "crc32c", "ice", "sr-mod"].map(String::from);
        let (have, lack) = present(&names, &index, &builtin);
        assert_eq!(have, ["isofs", "crc32c", "sr-mod"]);
        assert_eq!(lack, ["ice"]);
    }

    #[test]
    fn missing_softdeps_are_ignored() {
        let (index, mut infos) = fake();
        infos.get_mut("kernel/fs/isofs/isofs.ko").unwrap().softdeps = vec!["zlib_x".into()];
        let c = closure(&["isofs".into()], &index, &BTreeSet::new(), |rel| {
            Ok(infos[rel].clone())
        })
        .unwrap();
        assert_eq!(c.modules.len(), 1);
    }
}
