//! The services roles are made of: the OCI [`registry`], [`mirrors`]
//! config for each container runtime, [`netboot`], joining host0
//! ([`join`]), high availability ([`ha`]: virtual IP and replication),
//! [`tls`] material, the boot [`media`], the bundle [`loader`], garbage
//! collection ([`gc`]), the machine's reported [`status`] with its
//! [`disk_use`], the [`media_watch`] that finds update media attached
//! while host0 runs, and host0's [`backup`] and restore.

pub mod backup;
pub mod disk_use;
pub mod gc;
pub mod ha;
pub mod join;
pub mod loader;
pub mod media;
pub mod media_watch;
pub mod mirrors;
pub mod netboot;
pub mod registry;
pub mod releases;
pub mod status;
pub mod tls;
