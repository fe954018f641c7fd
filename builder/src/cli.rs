//! The `airlift` command line: one clap derive enum per level; the doc
//! comments are the help text.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

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
    Validate {
        /// The image config (YAML).
        config: PathBuf,
    },
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Validate { config } => {
            anyhow::bail!("validate {}: not implemented yet", config.display())
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
