//! `airlift-firstboot xattrs`: set the extended attributes the root
//! filesystem image could not hold ([`crate::sys::xattrs`]), from the list
//! `airlift build` put in the root. `airlift-xattrs.service` runs it early
//! in boot. Prints one `AIRLIFT-XATTRS set=N failed=M` line; exits
//! non-zero when an attribute could not be set (each named on stderr).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// Set the root filesystem's extended attributes from the build's list.
#[derive(Debug, Clone, clap::Args)]
pub struct XattrsArgs {
    /// The list (JSON) `airlift build` wrote.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/usr/lib/airlift/xattrs.json"
    )]
    pub list: PathBuf,
    /// The root the list's paths are below.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

pub fn run(args: XattrsArgs) -> Result<()> {
    let text =
        std::fs::read(&args.list).with_context(|| format!("reading {}", args.list.display()))?;
    let list: airlift_appliance::xattrs::Manifest = serde_json::from_slice(&text)
        .with_context(|| format!("{}: not an airlift xattr list", args.list.display()))?;
    let report = crate::sys::xattrs::apply(&args.root, &list)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.list.display()))?;
    for f in &report.failed {
        eprintln!("airlift-firstboot xattrs: {f}");
    }
    println!(
        "AIRLIFT-XATTRS set={} failed={}",
        report.set,
        report.failed.len()
    );
    if !report.failed.is_empty() {
        bail!(
            "{} of {} extended attributes could not be set (listed above)",
            report.failed.len(),
            report.failed.len() + report.set
        );
    }
    Ok(())
}
