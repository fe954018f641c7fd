//! Shared helpers for airlift's integration tests: locating the built
//! binaries, checking for the real tools the tests drive, and making
//! small container images locally (nothing is pulled from the internet).

pub mod containerd;
pub mod fault_proxy;
pub mod firstboot;
pub mod garage;
pub mod host0;
pub mod http;
pub mod images;
pub mod netns;
pub mod oci_suite;
pub mod own_process;
pub mod registry;
pub mod tools;
pub mod vm;
