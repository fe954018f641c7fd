//! The `airlift-firstboot` command line.

use anyhow::Result;
use clap::{Parser, Subcommand};

/// The appliance's registry, first-boot and join service.
#[derive(Debug, Parser)]
#[command(name = "airlift-firstboot", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the version and exit.
    Version,
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Version => {
            println!("airlift-firstboot {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
