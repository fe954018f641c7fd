//! `airlift validate CONFIG`: parse, normalise and check an image config
//! and every file it references, writing nothing. Prints
//! `CONFIG: ok (…)` or every problem (one per line) and fails.

use std::path::PathBuf;

use anyhow::Result;

use crate::config::{self, Appliance, ConfigError, DhcpMode, ImageSource, Purpose};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image config (YAML).
    pub config: PathBuf,
    /// Check for `airlift bundle` (images only: `base` may be absent)
    /// or for `airlift build` (everything).
    #[arg(long = "for", value_enum, default_value_t = For::Build)]
    pub purpose: For,
    /// Print nothing when the config is fine.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Which command the config is checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum For {
    Bundle,
    Build,
}

impl From<For> for Purpose {
    fn from(f: For) -> Purpose {
        match f {
            For::Bundle => Purpose::Bundle,
            For::Build => Purpose::Build,
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    match config::load_and_validate(&args.config, args.purpose.into()) {
        Ok(app) => {
            if !args.quiet {
                println!("{}: ok ({})", args.config.display(), summary(&app));
            }
            Ok(())
        }
        Err(err) => match err.downcast_ref::<ConfigError>() {
            Some(ce) => {
                for p in &ce.problems {
                    eprintln!("{p}");
                }
                let n = ce.problems.len();
                anyhow::bail!(
                    "{}: {n} problem{}",
                    args.config.display(),
                    if n == 1 { "" } else { "s" }
                )
            }
            None => Err(err),
        },
    }
}

/// One line saying what the config holds: `3 images (1 pulled), base,
/// 2 overlays, netboot off, volume AIRLIFT`.
pub fn summary(app: &Appliance) -> String {
    let images = app.images.len();
    let pulled = app
        .images
        .iter()
        .filter(|i| matches!(i.source, ImageSource::Registry(_)))
        .count();
    let mut parts = vec![format!(
        "{images} image{} ({pulled} pulled from registries, {} from local files)",
        plural(images),
        images - pulled
    )];
    parts.push(match &app.base {
        Some(crate::config::BaseSpec::Paths(_)) => "base".to_string(),
        Some(crate::config::BaseSpec::Image(i)) => {
            format!("base image {} (read at build)", i.image.reference)
        }
        None => "no base".to_string(),
    });
    let overlays = app.overlays.len();
    parts.push(format!("{overlays} overlay{}", plural(overlays)));
    parts.push(if app.netboot.enabled {
        let dhcp = match app.netboot.dhcp {
            DhcpMode::Proxy => "proxy DHCP",
            DhcpMode::Full => "full DHCP",
            DhcpMode::Off => "no DHCP",
        };
        let nodes = app.netboot.nodes.len();
        format!("netboot with {dhcp}, {nodes} known node{}", plural(nodes))
    } else {
        "netboot off".to_string()
    });
    parts.push(format!("registry port {}", app.registry.port));
    parts.push(format!("volume {}", app.output.volume_label));
    parts.join(", ")
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{normalise, parse, Origin};
    use std::path::Path;

    #[test]
    fn summary_counts_what_the_config_holds() {
        let text = "\
apiVersion: airlift/v1alpha1
kind: Appliance
metadata: { name: x, version: '1' }
images:
  - ref: nginx:1.25
  - ref: quay.io/a/b:1
    from: { ociArchive: { path: b.tar } }
overlays: [o]
netboot: { enabled: true, nodes: [{ mac: '52:54:00:00:00:01' }] }
";
        let file = Path::new("/c/x.yaml");
        let app = normalise(
            parse(text, file).unwrap(),
            Origin::new(file, text),
            &|_: &str| None,
        )
        .unwrap();
        assert_eq!(
            summary(&app),
            "2 images (1 pulled from registries, 1 from local files), no base, 1 overlay, \
             netboot with proxy DHCP, 1 known node, registry port 5000, volume AIRLIFT"
        );
    }
}
