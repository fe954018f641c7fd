//! Subcommands whose work is more than a call into one library module:
//! their arguments and `run` functions, one file each.

pub mod backup;
pub mod gc;
pub mod health;
pub mod host0;
pub mod join;
pub mod releases;
pub mod render;
pub mod replica;
pub mod restore;
pub mod rollback;
pub mod status;
pub mod update;
pub mod xattrs;
