//! The `airlift-firstboot` command line: a thin dispatcher.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::services::registry::ServeOptions;

/// The appliance's registry, first-boot and join service.
#[derive(Debug, Parser)]
#[command(name = "airlift-firstboot", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands. Those only systemd units and keepalived call
/// (`host0`, `join`, `replica`, `health`) are hidden from `--help`, as
/// bootc hides its internal ones: they still parse and run as before.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the version and exit.
    Version,
    /// Run the OCI registry serving the bundle and a writable store.
    Serve(Box<ServeOptions>),
    /// Print a container runtime's mirror config for airlift registries.
    Render(crate::commands::render::RenderArgs),
    /// First machine's boot service: serve the bundle, load it, configure runtimes, join endpoint.
    #[command(name = "host0", hide = true)]
    Host0(crate::commands::host0::Host0Args),
    /// A netbooted node's service: fetch its config from host0, configure the runtimes.
    #[command(hide = true)]
    Join(crate::commands::join::JoinArgs),
    /// A registry replica's service: join as a replica, serve a full copy of host0's registry, keep it in sync.
    #[command(hide = true)]
    Replica(crate::commands::replica::ReplicaArgs),
    /// Show host0's state (bundle load, images, nodes), as its status page does.
    Status(crate::commands::status::StatusArgs),
    /// List host0's releases (current marked *) and the update load in progress.
    Releases(crate::commands::releases::ReleasesArgs),
    /// Load a release medium (folder, ISO, device or OCI archive) on host0 and move the tags to it.
    Update(crate::commands::update::UpdateArgs),
    /// Move host0's tags to another held release (default: the newest one that is not current).
    Rollback(crate::commands::rollback::RollbackArgs),
    /// Delete blobs no kept release and no pushed image references (`--dry-run` lists them).
    Gc(crate::commands::gc::GcArgs),
    /// Back up host0 (pushed images, tags, releases state, CA, admin token) into one tar.
    Backup(crate::commands::backup::BackupArgs),
    /// Restore a backup onto a freshly installed host0 of the same appliance.
    Restore(crate::commands::restore::RestoreArgs),
    /// Exit 0 when a registry answers GET /v2/ (200 or 401), else 1: keepalived's check for the virtual IP.
    #[command(hide = true)]
    Health(crate::commands::health::HealthArgs),
    /// Set the root filesystem's extended attributes (file capabilities) the image could not hold: airlift-xattrs.service runs it at boot.
    #[command(hide = true)]
    Xattrs(crate::commands::xattrs::XattrsArgs),
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Version => {
            println!("airlift-firstboot {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Serve(opts) => {
            init_logging();
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?
                .block_on(crate::services::registry::serve(*opts))
        }
        Command::Render(args) => crate::commands::render::run(args),
        Command::Host0(args) => crate::commands::host0::run(args),
        Command::Join(args) => crate::commands::join::run(args),
        Command::Status(args) => crate::commands::status::run(args),
        Command::Health(args) => crate::commands::health::run(args),
        Command::Xattrs(args) => crate::commands::xattrs::run(args),
        Command::Releases(args) => crate::commands::releases::run(args),
        Command::Update(args) => crate::commands::update::run(args),
        Command::Rollback(args) => crate::commands::rollback::run(args),
        Command::Gc(args) => crate::commands::gc::run(args),
        Command::Replica(args) => crate::commands::replica::run(args),
        Command::Backup(args) => crate::commands::backup::run(args),
        Command::Restore(args) => crate::commands::restore::run(args),
    }
}

/// Log to stderr; `RUST_LOG` overrides the default `info`.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_flags_parse() {
        let cli = Cli::try_parse_from([
            "airlift-firstboot",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            "/d",
            "--layer",
            "/a",
            "--layer",
            "/b",
            "--allow-delete",
        ])
        .unwrap();
        let Command::Serve(o) = cli.command else {
            panic!()
        };
        assert_eq!(o.layers.len(), 2);
        assert!(o.allow_delete);
        assert!(Cli::try_parse_from([
            "airlift-firstboot",
            "serve",
            "--data",
            "/d",
            "--tls-cert",
            "c"
        ])
        .is_err());
    }

    /// The subcommands `--help` lists: the user-facing ones, in order.
    fn listed_in_help() -> Vec<String> {
        let help = Cli::command().render_help().to_string();
        let commands = help
            .split("Commands:")
            .nth(1)
            .and_then(|rest| rest.split("Options:").next())
            .expect("a Commands section in --help");
        commands
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn help_lists_only_the_user_facing_subcommands() {
        assert_eq!(
            listed_in_help(),
            [
                "version", "serve", "render", "status", "releases", "update", "rollback", "gc",
                "backup", "restore", "help"
            ]
        );
    }

    #[test]
    fn hidden_subcommands_still_parse() {
        let parsed = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("airlift-firstboot").chain(args.iter().copied()))
                .unwrap_or_else(|e| panic!("{args:?}: {e}"))
                .command
        };
        let Command::Host0(h) = parsed(&["host0", "--data", "/d", "--force-load"]) else {
            panic!("host0 did not parse as Host0")
        };
        assert_eq!(h.data, std::path::Path::new("/d"));
        assert!(h.force_load);
        let Command::Join(j) = parsed(&["join", "--refresh", "--root", "/r"]) else {
            panic!("join did not parse as Join")
        };
        assert!(j.refresh);
        assert_eq!(j.root, std::path::Path::new("/r"));
        let Command::Replica(r) = parsed(&["replica", "--listen", "127.0.0.1:5001"]) else {
            panic!("replica did not parse as Replica")
        };
        assert_eq!(r.listen, Some("127.0.0.1:5001".parse().unwrap()));
        let Command::Health(c) = parsed(&["health", "--timeout-secs", "5"]) else {
            panic!("health did not parse as Health")
        };
        assert_eq!(c.timeout_secs, 5);
    }

    #[test]
    fn hidden_subcommands_keep_their_own_help() {
        for name in ["host0", "join", "replica", "health"] {
            let err = Cli::try_parse_from(["airlift-firstboot", name, "--help"])
                .expect_err("--help stops parsing");
            assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp, "{name}");
            let text = err.to_string();
            assert!(
                text.contains(&format!("airlift-firstboot {name}")),
                "{name} --help: {text}"
            );
        }
    }
}
