//! host0's own HTTP API on the registry port, every endpoint in one folder:
//! the socket and router ([`server`]), joining ([`join`]), the image list
//! ([`images`]), the status page ([`web`]) and its JSON, netboot's plain
//! boot endpoints ([`netboot`]), and replication ([`replication`],
//! [`replicas`]).

pub mod images;
pub mod join;
pub mod netboot;
pub mod replicas;
pub mod replication;
pub mod server;
pub mod web;
