//! `airlift-firstboot rollback [RELEASE]`: make a held release current
//! again (`POST /airlift/v1/releases/current`): by default the newest
//! held release that is not current, so a second rollback goes forward.

use anyhow::Result;

use super::releases::{block_on, HostArgs};

/// Move the tags to another held release.
#[derive(Debug, Clone, clap::Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub host: HostArgs,
    /// The release: its version, bundle digest, or 12+ hex digits of it.
    #[arg(value_name = "RELEASE")]
    pub release: Option<String>,
}

/// Run the command.
pub fn run(args: RollbackArgs) -> Result<()> {
    let client = args.host.client()?;
    let answer = block_on(async {
        client
            .post(
                crate::api::releases::CURRENT_PATH,
                &serde_json::json!({ "release": args.release }),
            )
            .await
    })?;
    let id = &answer["release"];
    println!(
        "serving release {} {} now",
        id["name"].as_str().unwrap_or(""),
        id["version"].as_str().unwrap_or("")
    );
    Ok(())
}
