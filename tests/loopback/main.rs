//! Integration tests that need nothing but this machine: real clients
//! (skopeo, podman, buildah, containerd, keepalived's config check) against
//! real registries and `airlift-firstboot` processes on 127.0.0.1, and the
//! fuzz corpus replayed. All of them are in `just check` (nextest's
//! `check` profile). One binary, one module per subject: a test keeps the
//! name it had as its own binary, now `module::test` (`registry_hostile::...`).

mod backup_restore;
mod base_image;
mod bundle_attachments;
mod bundle_bad_inputs;
mod bundle_registry_faults;
mod bundle_sources;
mod bundle_verify;
mod ci_recipe;
mod fuzz_corpus;
mod gc_loopback;
mod host0_crash;
mod host0_loopback;
mod host0_releases;
mod host0_signatures;
mod mirrors_clients;
mod registry_clients;
mod registry_crash;
mod registry_hostile;
mod replication_loopback;
mod signature_files;
mod sigstore_signing;
mod status_page;
mod update_media;
mod vip_keepalived;
