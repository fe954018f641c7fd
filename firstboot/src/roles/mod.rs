//! What a machine is: [`host0`] (the first machine: media, registry,
//! netboot, join), [`node`] (a machine that joins host0 and points its
//! container runtimes at it) and [`replica`] (a node that also keeps a full
//! copy of host0's registry). Roles use the floors below; they never import
//! each other.

pub mod host0;
pub mod node;
pub mod replica;
