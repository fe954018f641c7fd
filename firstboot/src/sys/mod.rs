//! The operating system at the edges: systemd's readiness protocol
//! ([`notify`]), console milestones ([`console`]), logging to the journal ([`logging`]), network interfaces
//! and the host name ([`net`]), wall-clock time as RFC 3339 text ([`time`]).

pub mod console;
pub mod logging;
pub mod net;
pub mod notify;
pub mod time;
