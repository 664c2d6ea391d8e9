//! keyless-client against a real keyless server in-process on loopback.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

#[cfg(feature = "resource-server")]
mod resource;
mod sources;
