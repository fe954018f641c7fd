//! airlift-firstboot: the appliance's registry, first-boot and join service.

pub mod cli;
pub mod commands;
pub mod mirrors;
pub mod registry;
pub mod tls;
