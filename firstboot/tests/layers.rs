//! The import rules of firstboot's floors, checked on the source text so
//! they stay true: a module only uses modules on its own floor or below
//! (commands → roles → api → services → datadisk → sys), roles never use
//! each other, and the registry's storage knows nothing of HTTP.
//!
//! Only code outside `#[cfg(test)]` counts: a test may reach anywhere.

use std::path::{Path, PathBuf};

/// The floor of a top-level module of the crate (lower = higher up).
fn floor(top: &str) -> Option<u8> {
    Some(match top {
        "main" | "cli" | "commands" => 0,
        "roles" => 1,
        "api" => 2,
        "services" => 3,
        "datadisk" => 4,
        "sys" => 5,
        _ => return None,
    })
}

/// Every `.rs` file under `dir`, sorted.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The file's code lines outside tests and comments, numbered from 1.
fn code_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        out.push((i + 1, line));
    }
    out
}

/// The module path (below the crate root) of each `crate::a::b` in `line`.
fn crate_paths(line: &str) -> Vec<Vec<&str>> {
    line.match_indices("crate::")
        .filter(|(i, _)| {
            let before = line[..*i].chars().next_back();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
        .map(|(i, m)| {
            line[i + m.len()..]
                .split("::")
                .map(|s| {
                    s.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or("")
                })
                .take_while(|s| !s.is_empty())
                .collect()
        })
        .collect()
}

/// Where `file` sits: its top-level module and, under `roles/`, its role.
fn place(root: &Path, file: &Path) -> (String, Option<String>) {
    let rel: Vec<String> = file
        .strip_prefix(root)
        .unwrap()
        .with_extension("")
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let role = (rel[0] == "roles" && rel.len() > 1 && rel[1] != "mod").then(|| rel[1].clone());
    (rel[0].clone(), role)
}

/// Every broken rule in the tree at `root`, one line each.
fn violations(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for file in sources(root) {
        let (top, role) = place(root, &file);
        if top == "lib" {
            continue;
        }
        let Some(own) = floor(&top) else {
            out.push(format!(
                "{}: top-level module `{top}` has no floor",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let rel = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for (n, line) in code_lines(&text) {
            for path in crate_paths(line) {
                let Some(first) = path.first() else { continue };
                let Some(theirs) = floor(first) else {
                    out.push(format!("{rel}:{n}: `crate::{first}` is not a floor"));
                    continue;
                };
                if theirs < own {
                    out.push(format!(
                        "{rel}:{n}: `{top}` uses `crate::{}`, a floor above it",
                        path.join("::")
                    ));
                }
                if let (Some(mine), true) = (&role, *first == "roles") {
                    if path.get(1).is_some_and(|r| r != mine) {
                        out.push(format!(
                            "{rel}:{n}: role `{mine}` uses `crate::{}`",
                            path.join("::")
                        ));
                    }
                }
            }
            if rel.starts_with("services/registry/store/")
                && ["axum", "http::", "hyper", "StatusCode", "HeaderMap"]
                    .iter()
                    .any(|w| line.contains(w))
            {
                out.push(format!(
                    "{rel}:{n}: the registry's storage uses an HTTP type"
                ));
            }
        }
    }
    out
}

#[test]
fn firstboot_floors_only_point_down() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&root);
    assert!(
        found.is_empty(),
        "import rules broken:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checker_sees_each_kind_of_violation() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write("lib.rs", "pub mod roles;\n");
    write("services/mirrors.rs", "use crate::api::join;\n");
    write(
        "roles/node/mod.rs",
        "use crate::roles::host0::x;\nuse crate::services::join;\n",
    );
    write(
        "roles/host0/mod.rs",
        "// crate::roles::node in a comment is fine\n#[cfg(test)]\nuse crate::roles::node;\n",
    );
    write("services/registry/store/mod.rs", "use axum::body::Body;\n");
    write("util.rs", "");
    let found = violations(root);
    let has = |s: &str| found.iter().any(|f| f.contains(s));
    assert!(
        has("services/mirrors.rs:1: `services` uses `crate::api::join`"),
        "{found:?}"
    );
    assert!(
        has("roles/node/mod.rs:1: role `node` uses `crate::roles::host0::x`"),
        "{found:?}"
    );
    assert!(
        has("services/registry/store/mod.rs:1: the registry's storage uses an HTTP type"),
        "{found:?}"
    );
    assert!(has("top-level module `util` has no floor"), "{found:?}");
    assert_eq!(found.len(), 4, "{found:?}");
}
