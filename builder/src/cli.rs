//! The `airlift` command line: one clap derive enum per level; the doc
//! comments are the help text. Each subcommand's flags and body live in
//! `commands/<name>.rs`.

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::commands;

/// Build one bootable hybrid ISO that carries an air-gapped cluster's
/// container images, kernel, root filesystem and first-boot service.
#[derive(Debug, Parser)]
#[command(name = "airlift", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check an image config and every file it references, without writing anything.
    Validate(commands::validate::Args),
    /// Collect every image of a config into one OCI image layout (the bundle).
    Bundle(commands::bundle::Args),
    /// Build the bootable hybrid ISO (BIOS and UEFI, CD and USB stick).
    Build(commands::build::Args),
    /// Print an ISO's boot entries, partition table and bundled images.
    Inspect(commands::inspect::Args),
    /// Check every blob digest and SHA256SUMS inside an ISO.
    Verify(commands::verify::Args),
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Validate(args) => commands::validate::run(args),
        Command::Bundle(args) => commands::bundle::run(args),
        Command::Build(args) => commands::build::run(args),
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Verify(args) => commands::verify::run(args),
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
