//! containerd: one `certs.d/<upstream>/hosts.toml` per upstream.
//!
//! Each lists the airlift endpoints as `[host."scheme://HOST:PORT"]`
//! tables, in order, with `capabilities = ["pull", "resolve"]`; `server`
//! is the upstream itself, the last resort. containerd asks a mirror for
//! `/v2/org/app/...?ns=quay.io`, which the airlift registry maps to the
//! upstream's namespace, so no path is needed on the host URL.
//!
//! containerd's CRI plugin reads these files only when its config sets
//! `config_path = "/etc/containerd/certs.d"`. A missing config.toml is
//! written (minimal, version 2); an existing one is never edited, only
//! checked by [`check_config`], which says which line to add.

use std::fmt::Write as _;

use super::{toml_str, FileKind, MirrorSpec, RenderedFile, BASE_HEADER, HEADER};

/// The hosts folder containerd is pointed at.
pub const CERTS_D: &str = "/etc/containerd/certs.d";
/// containerd's main config.
pub const CONFIG: &str = "/etc/containerd/config.toml";
/// The CA every hosts.toml refers to (one shared file).
pub const CA: &str = "/etc/containerd/certs.d/airlift-ca.crt";

/// The URL containerd falls back to for an upstream: Docker Hub's API
/// lives on `registry-1.docker.io`.
pub fn upstream_server(upstream: &str) -> String {
    match upstream {
        "docker.io" => "https://registry-1.docker.io".to_string(),
        u => format!("https://{u}"),
    }
}

/// One upstream's hosts.toml.
pub fn render_hosts(spec: &MirrorSpec, upstream: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{HEADER}");
    let _ = writeln!(
        out,
        "# Pull {upstream} through the airlift registries, tried in order; `server` is the last resort."
    );
    let _ = writeln!(out, "server = {}", toml_str(&upstream_server(upstream)));
    let ca = spec.ca_file_content().is_some();
    for e in &spec.registries {
        let _ = write!(
            out,
            "\n[host.{}]\n  capabilities = [\"pull\", \"resolve\"]\n",
            toml_str(&e.url())
        );
        if ca && !e.is_http() {
            let _ = writeln!(out, "  ca = {}", toml_str(CA));
        }
    }
    out
}

/// The minimal config.toml for nodes that have none: version 2, and the
/// one line that makes the CRI plugin read the hosts folder.
pub fn render_config() -> String {
    format!(
        "{BASE_HEADER}\n# No config.toml existed; this minimal one only points the CRI plugin at the\n\
         # per-registry hosts.toml files (airlift's mirrors). Everything else is containerd's default.\n\
         version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = {}\n",
        toml_str(CERTS_D)
    )
}

/// Every hosts.toml, the shared CA, and config.toml (if absent).
pub fn files(spec: &MirrorSpec) -> Vec<RenderedFile> {
    let mut files: Vec<RenderedFile> = spec
        .upstreams
        .iter()
        .map(|u| RenderedFile::owned(format!("{CERTS_D}/{u}/hosts.toml"), render_hosts(spec, u)))
        .collect();
    if let Some(ca) = spec.ca_file_content() {
        files.push(RenderedFile::owned(CA, ca));
    }
    files.push(RenderedFile {
        path: CONFIG.into(),
        content: render_config(),
        kind: FileKind::ContainerdConfig,
    });
    files
}

/// What an existing config.toml says about `config_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigCheck {
    /// `config_path` includes the hosts folder: nothing to do.
    Ok,
    /// The file needs a change; the text says exactly which.
    NeedsChange(String),
}

/// Check an existing config.toml for `config_path` (versions 1, 2 and 3
/// keep it in different tables). Never edits it.
pub fn check_config(existing: &str) -> ConfigCheck {
    let value: toml::Value = match toml::from_str(existing) {
        Ok(v) => v,
        Err(e) => {
            return ConfigCheck::NeedsChange(format!(
                "{CONFIG} does not parse as TOML ({}); fix it, then make sure it sets \
                 config_path = \"{CERTS_D}\" for the CRI registry",
                e.message()
            ))
        }
    };
    let version = value
        .get("version")
        .and_then(|v| v.as_integer())
        .unwrap_or(1);
    let table = match version {
        1 => "plugins.cri.registry",
        2 => "plugins.\"io.containerd.grpc.v1.cri\".registry",
        _ => "plugins.\"io.containerd.cri.v1.images\".registry",
    };
    let plugin = match version {
        1 => "cri",
        2 => "io.containerd.grpc.v1.cri",
        _ => "io.containerd.cri.v1.images",
    };
    let found = value
        .get("plugins")
        .and_then(|p| p.get(plugin))
        .and_then(|c| c.get("registry"))
        .and_then(|r| r.get("config_path"))
        .and_then(|c| c.as_str());
    match found {
        Some(p) if p.split(':').any(|c| c.trim_end_matches('/') == CERTS_D) => ConfigCheck::Ok,
        Some(p) => ConfigCheck::NeedsChange(format!(
            "{CONFIG} sets config_path = {p:?} under [{table}], so containerd will not read \
             airlift's mirrors in {CERTS_D}; change that line to config_path = \"{CERTS_D}\" \
             (or copy the hosts.toml folders into {p}) and restart containerd"
        )),
        None => ConfigCheck::NeedsChange(format!(
            "{CONFIG} (version {version}) has no config_path, so containerd will not read \
             airlift's mirrors; add these lines and restart containerd:\n\
             [{table}]\n  config_path = \"{CERTS_D}\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_path_found_in_each_version() {
        assert_eq!(check_config(&render_config()), ConfigCheck::Ok);
        let v1 = "[plugins.cri.registry]\nconfig_path = \"/etc/containerd/certs.d/\"\n";
        assert_eq!(check_config(v1), ConfigCheck::Ok);
        let v3 = "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\nconfig_path = '/x:/etc/containerd/certs.d'\n";
        assert_eq!(check_config(v3), ConfigCheck::Ok);
    }

    #[test]
    fn missing_or_other_config_path_says_which_line_to_add() {
        let ConfigCheck::NeedsChange(w) = check_config("version = 2\n[plugins]\n") else {
            panic!()
        };
        assert!(
            w.contains("[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\""),
            "{w}"
        );
        let ConfigCheck::NeedsChange(w) =
            check_config("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/opt/hosts\"\n")
        else {
            panic!()
        };
        assert!(w.contains("/opt/hosts"), "{w}");
        let ConfigCheck::NeedsChange(w) = check_config("version = [") else {
            panic!()
        };
        assert!(w.contains("does not parse"), "{w}");
    }

    #[test]
    fn docker_hub_falls_back_to_registry_1() {
        assert_eq!(upstream_server("docker.io"), "https://registry-1.docker.io");
        assert_eq!(upstream_server("quay.io"), "https://quay.io");
    }
}
