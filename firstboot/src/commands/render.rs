//! `airlift-firstboot render`: print one runtime's mirror config, for
//! people wiring nodes by hand.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::services::mirrors::{self, Endpoint, MirrorSpec, Runtime, DEFAULT_UPSTREAMS};

/// Print a container runtime's mirror config for the given airlift
/// registries: each file's path as a comment header, then its content.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Without --upstream, mirrors docker.io, quay.io, registry.k8s.io, ghcr.io and gcr.io.\n\
Files marked 'merge' must be merged into an existing file by hand (keep your other keys);\n\
`airlift-firstboot` does that itself when it applies the config on a node."
)]
pub struct RenderArgs {
    /// The runtime whose config to print.
    #[arg(long, value_enum)]
    pub runtime: Runtime,
    /// An airlift registry, https://HOST:PORT or http://HOST:PORT; repeat
    /// for replicas, most preferred first.
    #[arg(long = "server", value_name = "URL", required = true, value_parser = parse_endpoint)]
    pub servers: Vec<Endpoint>,
    /// The CA certificate (PEM) that signed the registries' certificates.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// An upstream registry to mirror; repeat [default: docker.io quay.io
    /// registry.k8s.io ghcr.io gcr.io].
    #[arg(long = "upstream", value_name = "HOST")]
    pub upstreams: Vec<String>,
}

fn parse_endpoint(s: &str) -> Result<Endpoint, String> {
    Endpoint::parse_url(s).map_err(|e| format!("{e:#}"))
}

/// The mirror spec the arguments describe (naming an `http://` server is
/// the consent to plain HTTP).
pub fn spec(args: &RenderArgs) -> Result<MirrorSpec> {
    let ca_pem = match &args.ca {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading the CA certificate {}", p.display()))?,
        ),
        None => None,
    };
    let upstreams = if args.upstreams.is_empty() {
        DEFAULT_UPSTREAMS.iter().map(|s| s.to_string()).collect()
    } else {
        args.upstreams.clone()
    };
    let spec = MirrorSpec::new(args.servers.clone(), upstreams, ca_pem);
    spec.validate().with_context(|| match &args.ca {
        Some(p) => format!("checking --server, --upstream and --ca {}", p.display()),
        None => "checking --server and --upstream".to_string(),
    })?;
    Ok(spec)
}

/// The text `render` prints.
pub fn render(args: &RenderArgs) -> Result<String> {
    Ok(mirrors::render_text(&spec(args)?, args.runtime))
}

/// Print the config to stdout.
pub fn run(args: RenderArgs) -> Result<()> {
    print!("{}", render(&args)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        args: RenderArgs,
    }

    fn parse(argv: &[&str]) -> Result<RenderArgs, clap::Error> {
        T::try_parse_from(std::iter::once("render").chain(argv.iter().copied())).map(|t| t.args)
    }

    #[test]
    fn defaults_and_repeated_flags() {
        let a = parse(&[
            "--runtime",
            "k3s",
            "--server",
            "https://a:1",
            "--server",
            "http://b:2",
        ])
        .unwrap();
        assert_eq!(
            a.servers,
            vec![Endpoint::https("a:1"), Endpoint::http("b:2")]
        );
        let s = spec(&a).unwrap();
        assert_eq!(s.upstreams, DEFAULT_UPSTREAMS);
        assert!(s.insecure);
        let text = render(&a).unwrap();
        assert!(
            text.starts_with("# ===== /etc/rancher/k3s/registries.yaml"),
            "{text}"
        );
        assert!(text.contains("registry.k8s.io:"), "{text}");
    }

    #[test]
    fn bad_arguments_are_named() {
        let e = parse(&["--runtime", "cri-o", "--server", "https://a:1"]).unwrap_err();
        assert!(e.to_string().contains("cri-o"), "{e}");
        let e = parse(&["--runtime", "crio", "--server", "a:1"]).unwrap_err();
        assert!(e.to_string().contains("https://"), "{e}");
        assert!(
            parse(&["--runtime", "crio"]).is_err(),
            "--server is required"
        );
        let a = parse(&[
            "--runtime",
            "crio",
            "--server",
            "https://a:1",
            "--ca",
            "/nonexistent/ca.crt",
        ])
        .unwrap();
        assert!(format!("{:#}", render(&a).unwrap_err()).contains("/nonexistent/ca.crt"));
        let a = parse(&[
            "--runtime",
            "crio",
            "--server",
            "https://a:1",
            "--upstream",
            "not a host",
        ])
        .unwrap();
        assert!(format!("{:#}", render(&a).unwrap_err()).contains("upstreams[0]"));
    }
}
