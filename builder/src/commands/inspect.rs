//! `airlift inspect`: print what [`crate::iso::inspect`] reads of an ISO
//! (volume, boot entries, partitions, bundled images) and what release
//! it brings ([`crate::update::describe`]: full, or an update with the
//! release it needs and what it changes); of an update OCI archive
//! (`.tar`), the release part alone. As JSON or as text.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::iso::inspect::{inspect, render};
use crate::update::describe::{self, MediumInfo};
use crate::update::medium::{sniff, Container, Medium};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ISO image, or update OCI archive (.tar), to read.
    pub iso: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<()> {
    if sniff(&args.iso)? == Some(Container::Archive) {
        let info = MediumInfo::of(&Medium::open(&args.iso)?);
        if args.json {
            let v = serde_json::json!({ "release": info });
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            print!("{}", describe::render(&info));
        }
        return Ok(());
    }
    let i = inspect(&args.iso)?;
    let release = release_of(&args.iso);
    if args.json {
        let mut v = serde_json::to_value(&i)?;
        v["release"] = match &release {
            Ok(info) => serde_json::to_value(info)?,
            Err(_) => serde_json::Value::Null,
        };
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render(&i));
        match &release {
            Ok(info) => print!("{}", describe::render(info)),
            Err(e) => println!("Release:     none ({e:#})"),
        }
    }
    Ok(())
}

/// The release an ISO brings, if it is an airlift release medium.
fn release_of(path: &Path) -> Result<MediumInfo> {
    Ok(MediumInfo::of(&Medium::open(path)?))
}
