//! airlift-firstboot: the appliance's registry, first-boot and join service.

pub mod appliance;
pub mod cli;
pub mod commands;
pub mod host0;
pub mod images_api;
pub mod join;
pub mod join_api;
pub mod loader;
pub mod logging;
pub mod media;
pub mod mirrors;
pub mod netboot;
pub mod registry;
pub mod replication;
pub mod status;
pub mod storage;
pub mod tls;
pub mod vip;
pub mod web;
