//! host0's own HTTP API on the registry port, every endpoint in one folder:
//! the socket and router ([`server`]), joining ([`join`]), the image list
//! ([`images`]), the state as JSON ([`status`]), the status page ([`web`]), netboot's plain
//! boot endpoints ([`netboot`]), and replication ([`replication`],
//! [`replicas`]); JSON responses ([`json`]); and the
//! client `airlift-firstboot status` reads them with ([`client`]).

pub mod admin;
pub mod client;
pub mod gc;
pub mod images;
pub mod join;
pub mod json;
pub mod netboot;
pub mod releases;
pub mod replicas;
pub mod replication;
pub mod server;
pub mod status;
pub mod web;
