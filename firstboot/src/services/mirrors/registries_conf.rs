//! containers-registries.conf(5) version 2, read by CRI-O, podman, skopeo
//! and buildah (all through containers/image).
//!
//! A drop-in, `registries.conf.d/50-airlift.conf`, holds one `[[registry]]`
//! per upstream (`prefix` and `location` = the upstream) with one
//! `[[registry.mirror]]` per airlift endpoint, in order. A mirror location
//! carries the upstream as a path (`10.0.0.1:5000/quay.io`), which makes
//! the client ask for `/v2/quay.io/org/app/...`: the airlift registry's
//! namespaced form. The upstream itself stays the last resort.
//!
//! Drop-ins are merged over the main file by table `prefix`, so the
//! user's own registries.conf is never edited. When it is absent, a
//! minimal one is written (see [`render_main`]). HTTPS endpoints get the
//! CA at `certs.d/HOST:PORT/ca.crt`, where containers/image looks for it.

use std::fmt::Write as _;

use super::{toml_str, FileKind, MirrorSpec, RenderedFile, BASE_HEADER, HEADER};

/// The drop-in airlift owns.
pub const DROP_IN: &str = "/etc/containers/registries.conf.d/50-airlift.conf";
/// The main file, written only when absent.
pub const MAIN: &str = "/etc/containers/registries.conf";
/// Where containers/image looks for a registry's CA.
pub const CERTS_D: &str = "/etc/containers/certs.d";

/// The drop-in.
pub fn render(spec: &MirrorSpec) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{HEADER}");
    out.push_str(
        "# Pull through the airlift registries, tried in order; the upstream is the last resort.\n",
    );
    for upstream in &spec.upstreams {
        // `docker.io` is right as is: short Hub names are expanded to
        // `docker.io/library/...` before the prefix is matched.
        let _ = write!(
            out,
            "\n[[registry]]\nprefix = {q}\nlocation = {q}\n",
            q = toml_str(upstream)
        );
        for e in &spec.registries {
            let _ = write!(
                out,
                "\n[[registry.mirror]]\nlocation = {}\n",
                toml_str(&format!("{}/{upstream}", e.host))
            );
            if e.is_http() {
                out.push_str("insecure = true\n");
            }
        }
    }
    out
}

/// The minimal main registries.conf, for nodes that have none.
///
/// `unqualified-search-registries = ["docker.io"]` gives short names
/// (`busybox`) the meaning Docker and Kubernetes give them, and
/// `docker.io` is mirrored, so they resolve through airlift instead of
/// failing or prompting. Nothing else is set: every other key keeps its
/// built-in default.
pub fn render_main() -> String {
    format!(
        "{BASE_HEADER}\n# No registries.conf existed; airlift's mirrors are in registries.conf.d/50-airlift.conf.\n\
         unqualified-search-registries = [\"docker.io\"]\n"
    )
}

/// The drop-in, the main file (if absent) and one CA per HTTPS endpoint.
pub fn files(spec: &MirrorSpec) -> Vec<RenderedFile> {
    let mut files = vec![
        RenderedFile::owned(DROP_IN, render(spec)),
        RenderedFile {
            path: MAIN.into(),
            content: render_main(),
            kind: FileKind::IfAbsent,
        },
    ];
    files.extend(super::ca_per_endpoint(spec, CERTS_D));
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::mirrors::Endpoint;

    #[test]
    fn drop_in_parses_and_lists_mirrors_in_order() {
        let spec = MirrorSpec::new(
            vec![Endpoint::https("a:1"), Endpoint::http("b:2")],
            vec!["quay.io".into(), "docker.io".into()],
            None,
        );
        let v: toml::Value = toml::from_str(&render(&spec)).unwrap();
        let regs = v["registry"].as_array().unwrap();
        assert_eq!(regs.len(), 2);
        assert_eq!(regs[1]["prefix"].as_str(), Some("docker.io"));
        assert_eq!(regs[1]["location"].as_str(), Some("docker.io"));
        let m = regs[0]["mirror"].as_array().unwrap();
        assert_eq!(m[0]["location"].as_str(), Some("a:1/quay.io"));
        assert!(m[0].get("insecure").is_none());
        assert_eq!(m[1]["location"].as_str(), Some("b:2/quay.io"));
        assert_eq!(m[1]["insecure"].as_bool(), Some(true));
        toml::from_str::<toml::Value>(&render_main()).unwrap();
    }
}
