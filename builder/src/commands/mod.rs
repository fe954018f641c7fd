//! One module per `airlift` subcommand: its flags (clap `Args`) and its body.

pub mod build;
pub mod bundle;
pub mod inspect;
pub mod validate;
pub mod verify;
