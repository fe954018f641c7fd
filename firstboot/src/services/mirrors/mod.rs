//! Mirror configuration for container runtimes: one [`MirrorSpec`] in,
//! each runtime's own config files out.
//!
//! The renderers are pure (`spec -> files`); [`apply::apply`] writes them
//! under a target root, merging into files the user owns and backing up
//! anything it replaces.
//!
//! | runtime | files |
//! |---|---|
//! | crio, podman (and skopeo, buildah) | [`registries_conf`]: a registries.conf.d drop-in, certs.d CA |
//! | containerd | [`containerd`]: certs.d/`<upstream>`/hosts.toml, CA, config_path check |
//! | k3s, rke2 | [`rancher`]: registries.yaml (merged), CA |
//! | docker | [`docker`]: daemon.json (merged), certs.d CA |
//!
//! The CA also goes into the system trust store ([`trust`]) whenever one
//! is given. When the spec carries a trust policy, every machine also gets
//! the signature files ([`signatures`]: keys, admission policies, and
//! containers-policy.json where containers/image can verify sigstore
//! signatures, as [`signature_probe`] finds out).

pub mod apply;
pub mod containerd;
pub mod detect;
pub mod docker;
pub mod rancher;
pub mod registries_conf;
pub mod runtimes;
pub mod signature_probe;
pub mod signatures;
pub mod spec;
pub mod trust;

use std::fmt::Write as _;
use std::path::PathBuf;

/// The runtimes (their names are the builder config's `runtimes:` values).
pub use airlift_appliance::Runtime;
pub use apply::{apply, apply_with, ApplyReport};
pub use signatures::Sigstore;
pub use spec::{Endpoint, MirrorSpec, Scheme, DEFAULT_UPSTREAMS};

/// The first line of every file airlift writes whole (where the format
/// has comments).
pub const HEADER: &str = "# Written by airlift-firstboot; a re-run replaces this file.";

/// The first line of a base config airlift writes only because none
/// existed: from then on it is the user's.
pub const BASE_HEADER: &str =
    "# Written by airlift-firstboot because none existed; airlift never changes it again.";

/// How [`apply()`] treats an existing file at a rendered path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// airlift's own file (drop-in, hosts.toml, CA): replaced whole.
    Owned,
    /// A minimal base config, written only when no file exists; an
    /// existing one is the user's and is left alone.
    IfAbsent,
    /// containerd's config.toml: written when absent; an existing one is
    /// never edited, only checked for `config_path` (a warning if not).
    ContainerdConfig,
    /// k3s/RKE2 registries.yaml: our upstreams merged into the user's.
    MergeRancher,
    /// Docker's daemon.json: our mirrors merged into the user's keys.
    MergeDocker,
    /// containers-policy.json: our scopes merged into the user's policy.
    MergePolicyJson,
}

/// One rendered file. For merged kinds, `content` is what is written
/// when no file exists yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Absolute path on the node (`/etc/...`); [`apply()`] puts it under a root.
    pub path: PathBuf,
    /// The file's content.
    pub content: String,
    /// What to do when a file is already there.
    pub kind: FileKind,
}

impl RenderedFile {
    pub(crate) fn owned(path: impl Into<PathBuf>, content: String) -> RenderedFile {
        RenderedFile {
            path: path.into(),
            content,
            kind: FileKind::Owned,
        }
    }
}

/// The CA, when there is one, as `<certs_d>/<host:port>/ca.crt` for every
/// HTTPS endpoint: the per-registry trust folder layout docker and the
/// containers tools (podman, CRI-O, skopeo) share.
pub(crate) fn ca_per_endpoint(spec: &MirrorSpec, certs_d: &str) -> Vec<RenderedFile> {
    let Some(ca) = spec.ca_file_content() else {
        return Vec::new();
    };
    spec.https_endpoints()
        .map(|e| RenderedFile::owned(format!("{certs_d}/{}/ca.crt", e.host), ca.clone()))
        .collect()
}

/// The files one runtime needs (the trust-store CA not included; see
/// [`trust::files`]).
pub fn files_for(spec: &MirrorSpec, runtime: Runtime) -> Vec<RenderedFile> {
    match runtime {
        Runtime::Crio | Runtime::Podman => registries_conf::files(spec),
        Runtime::Containerd => containerd::files(spec),
        Runtime::K3s => rancher::files(spec, rancher::Flavour::K3s),
        Runtime::Rke2 => rancher::files(spec, rancher::Flavour::Rke2),
        Runtime::Docker => docker::files(spec),
    }
}

/// A runtime's files as one text for people wiring nodes by hand: each
/// file's path as a comment header, then its content.
pub fn render_text(spec: &MirrorSpec, runtime: Runtime) -> String {
    let mut out = String::new();
    for (i, f) in files_for(spec, runtime).iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let note = match f.kind {
            FileKind::Owned => "",
            FileKind::IfAbsent => " (only if the file does not exist yet)",
            FileKind::ContainerdConfig => {
                " (only if absent; an existing config.toml needs this config_path line)"
            }
            FileKind::MergeRancher | FileKind::MergeDocker | FileKind::MergePolicyJson => {
                " (merge into an existing file: `airlift-firstboot` keeps other keys)"
            }
        };
        let _ = writeln!(out, "# ===== {}{note} =====", f.path.display());
        out.push_str(&f.content);
        if !f.content.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// Quote a string for TOML (a basic string).
pub(crate) fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_names_match_the_builder_config() {
        for r in Runtime::ALL {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.name()));
            assert_eq!(
                <Runtime as clap::ValueEnum>::from_str(r.name(), false).unwrap(),
                r
            );
        }
        let rs: Vec<Runtime> =
            serde_yaml::from_str("[crio, podman, containerd, k3s, rke2, docker]").unwrap();
        assert_eq!(rs, Runtime::ALL);
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_str(r#"a"b\c"#), r#""a\"b\\c""#);
        let v: toml::Value = toml::from_str(&format!("k = {}", toml_str("x\ny\"z"))).unwrap();
        assert_eq!(v["k"].as_str(), Some("x\ny\"z"));
    }
}
