//! The operating system at the edges: systemd's readiness protocol
//! ([`notify`]), console milestones ([`console`]), logging to the journal
//! ([`logging`]), network interfaces and the host name ([`net`]), the
//! firmware's Secure Boot state ([`secure_boot`]). Time as
//! RFC 3339 text is `airlift_oci::civil_time`, shared with the builder.

pub mod console;
pub mod disk_space;
pub mod logging;
pub mod net;
pub mod notify;
pub mod secure_boot;
pub mod xattrs;
