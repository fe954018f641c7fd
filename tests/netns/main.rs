//! Integration tests that need root for network namespaces and veth pairs:
//! several machines simulated on one host. Out of `just check`; in
//! `just test`.

mod vip_vrrp;
