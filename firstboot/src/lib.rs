//! airlift-firstboot: the appliance's registry, first-boot and join service.
//!
//! In floors that only point down (`scripts/check-layers.sh` keeps it so):
//! - [`commands`] and [`cli`]: the command line, one file per subcommand;
//! - [`roles`]: what a machine is (`host0`, `node`, `replica`), each a short
//!   sequence of steps over the floors below; roles never import each other;
//! - [`api`]: every endpoint host0 serves on its registry port;
//! - [`services`]: the registry, mirror config, netboot, joining, HA (virtual
//!   IP, replication), TLS, the boot media and the bundle loader;
//! - [`datadisk`] (host0's data disk) and [`sys`] (systemd notify, network
//!   interfaces, atomic writes, time, logging).

pub mod api;
pub mod cli;
pub mod commands;
pub mod datadisk;
pub mod roles;
pub mod services;
pub mod sys;
