//! Services: the logic behind the HTTP handlers, one module per concern.
//!
//! - [`keys`]: the key-encryption key and sealing of signing keys at rest.
//! - [`token`]: minting and hashing keyless's opaque access tokens.
//! - [`jwks`]: issuer keys — the `jwks` block, fetching, caching and polling.
//! - [`bootstrap`]: the first start (organization, default workspace, signing key, one-time admin
//!   token) and loading the organization on every start.

pub mod bootstrap;
pub mod jwks;
pub mod keys;
pub mod token;
