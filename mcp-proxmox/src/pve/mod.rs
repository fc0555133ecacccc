//! Talking to Proxmox VE: the HTTP client, TLS, errors and lenient record types.

pub mod client;
pub mod error;
pub mod lenient;
pub mod tls;
pub mod types;

pub use client::{PveClient, path};
pub use error::PveError;
