//! The airlift builder: from one image config to one bootable hybrid ISO.

pub mod build;
pub mod cli;
pub mod commands;
pub mod config;
pub mod initramfs;
pub mod logging;
