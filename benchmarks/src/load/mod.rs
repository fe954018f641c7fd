//! The serving benchmark's load client: HTTP/1.1 with keep-alive over
//! plain TCP or over TLS that verifies the server against the bench's own
//! CA (rustls), response heads parsed with httparse, bodies counted and
//! thrown away. One client for every server and both transports, so the
//! rows compare; its own CPU is not counted in any figure.

pub mod conn;
pub mod http1;
pub mod repeat;

pub use conn::{Conn, Endpoint, TlsInfo};
pub use http1::{Exchange, Request};

#[cfg(test)]
mod tests;
