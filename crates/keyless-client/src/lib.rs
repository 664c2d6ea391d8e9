//! keyless-client: the Rust client library; everything the CLI does goes through it.
