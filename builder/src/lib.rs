//! The airlift builder: from one image config to one bootable hybrid ISO.

pub mod attachments;
pub mod baseimage;
pub mod bundler;
pub mod cli;
pub mod commands;
pub mod config;
pub mod initramfs;
pub mod iso;
pub mod logging;
pub mod pe;
pub mod pipeline;
pub mod progress;
pub mod rootimage;
pub mod signing;
pub mod small_file;
pub mod sources;
pub mod store;
pub mod update;
pub mod verified;
