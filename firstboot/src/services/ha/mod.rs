//! High availability of the registry: the virtual IP that moves between
//! host0 and replicas ([`vip`]) and replication of host0's registry to
//! replicas ([`replication`]).

pub mod replication;
pub mod vip;
