//! The harness of airlift's integration tests (and of `airlift-bench`):
//! locating the built binaries and the real tools the tests drive, making
//! small container images locally (nothing is pulled from the internet),
//! starting the servers they talk to (`airlift-firstboot serve` and
//! `host0`, `docker-registry`, containerd, Garage) and the VMs they boot.

pub mod base_image;
pub mod containerd;
pub mod fake_base;
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
pub mod sigstore;
pub mod tools;
pub mod unprivileged;
pub mod update_images;
pub mod vm;
