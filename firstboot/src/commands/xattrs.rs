//! `airlift-firstboot xattrs`: set the extended attributes the root
//! filesystem image could not hold ([`crate::sys::xattrs`]), from the list
//! `airlift build` put in the root. `airlift-xattrs.service` runs it early
//! in boot. Prints one `AIRLIFT-XATTRS set=N unsupported=U failed=M`
//! line; exits non-zero when an attribute could not be set (each named on
//! stderr; attributes the root's filesystem does not support are named
//! too, but do not fail it).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// Where the list is, as an absolute path.
fn default_list() -> String {
    format!("/{}", airlift_appliance::xattrs::MANIFEST_PATH)
}

/// Set the root filesystem's extended attributes from the build's list.
#[derive(Debug, Clone, clap::Args)]
pub struct XattrsArgs {
    /// The list (JSON) `airlift build` wrote.
    #[arg(long, value_name = "FILE", default_value_t = default_list())]
    pub list: String,
    /// The root the list's paths are below.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

pub fn run(args: XattrsArgs) -> Result<()> {
    let text = std::fs::read(&args.list).with_context(|| format!("reading {}", args.list))?;
    let list: airlift_appliance::xattrs::Manifest =
        airlift_oci::quiet_json::parse(&text, &args.list)?;
    let report = crate::sys::xattrs::apply(&args.root, &list)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.list))?;
    for f in &report.unsupported {
        eprintln!("airlift-firstboot xattrs: not set: {f}");
    }
    for f in &report.failed {
        eprintln!("airlift-firstboot xattrs: failed: {f}");
    }
    println!(
        "AIRLIFT-XATTRS set={} unsupported={} failed={}",
        report.set,
        report.unsupported.len(),
        report.failed.len()
    );
    if !report.failed.is_empty() {
        bail!(
            "{} extended attributes could not be set (listed above)",
            report.failed.len()
        );
    }
    Ok(())
}
