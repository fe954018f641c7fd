//! `airlift verify ISO`: check an ISO's content without mounting it (see
//! [`crate::iso::verify`]; an update ISO's blobs left to its base release
//! are not problems), or an update OCI archive
//! ([`crate::update::verify_archive`]), and print what was checked and
//! every problem.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::iso::verify::verify;
use crate::update::medium::{sniff, Container};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ISO image, or update OCI archive (.tar), to read.
    pub iso: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let r = match sniff(&args.iso)? {
        Some(Container::Archive) => crate::update::verify_archive::verify(&args.iso)?,
        _ => verify(&args.iso)?,
    };
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
