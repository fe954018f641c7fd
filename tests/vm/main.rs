//! Integration tests that need the boot base (`just base`), and mostly
//! QEMU: ISOs built with the real `airlift build` and booted under TCG,
//! alone or as a netboot cluster. Out of `just check`; in `just test`, and
//! one module at a time from the justfile (`just boot-matrix`, `just e2e-ha`...).
//!
//! One process for all of them on purpose: an ISO built from one image
//! config is built once and shared by every module that boots it
//! (`vm::built`: boot_demo and host0_qemu boot the same demo ISO), and the
//! VM slots (`vm::slots`) bound how many QEMU processes and ISO builds run
//! at once across every module (a cluster test takes them all).

mod boot_demo;
mod boot_matrix;
mod boot_modules;
mod demo_tour;
mod e2e_ha;
mod e2e_netboot;
mod e2e_storage;
mod e2e_update;
mod hardware_matrix;
mod host0_qemu;
mod k8s_node_base;
mod netboot_secure_boot;
mod own_keys;
mod root_image;
mod secure_boot;
