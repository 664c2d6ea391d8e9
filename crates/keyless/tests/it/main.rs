//! The `keyless` binary run as a process, as a user would.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod admin;
mod api_keys;
mod apply;
mod bootstrap;
mod credentials;
mod inspect;
mod readme;
mod serve;
mod support;
