//! The server run for real: port 0, a fresh data directory (and, when `KEYLESS_TEST_POSTGRES_URL`
//! is set, a fresh PostgreSQL database), driven over HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    missing_docs
)]

mod activities;
mod admin;
mod authorize;
mod exchange;
mod harness;
mod interop;
mod introspection;
mod jwks;
mod nginx;
mod oidc;
mod openapi;
mod providers;
mod proxy;
mod purge;
mod rejections;
mod replay;
mod serve;
mod shadow;
mod simulate;
mod well_known;
mod workspaces;
