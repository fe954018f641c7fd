//! `airlift verify ISO`: check an ISO's content without mounting it (see
//! [`crate::iso::verify`]; an update ISO's blobs left to its base release
//! are not problems) and print what was checked and every problem.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::iso::verify::verify;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ISO image to read.
    pub iso: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let r = verify(&args.iso)?;
    println!(
        "{}: {} blobs, {} SHA256SUMS entries, {} descriptors checked",
        args.iso.display(),
        r.blobs_checked,
        r.sums_checked,
        r.descriptors_checked
    );
    if r.in_base > 0 {
        println!(
            "an update medium: {} descriptors are left to its base release (not carried)",
            r.in_base
        );
    }
    if r.failures.is_empty() {
        println!("OK");
        return Ok(());
    }
    for f in &r.failures {
        println!("FAILED {f}");
    }
    bail!(
        "{}: {} problem(s) found; rebuild the ISO or re-copy it",
        args.iso.display(),
        r.failures.len()
    )
}
