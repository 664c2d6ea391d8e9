//! Services: the logic behind the HTTP handlers, one module per concern.
//!
//! - [`keys`]: the key-encryption key and sealing of signing keys at rest.
//! - [`token`]: minting and hashing keyless's opaque access tokens.
//! - [`jwks`]: issuer keys — the `jwks` block, fetching, caching and polling.
//! - [`admin`]: the Admin API's logic (service accounts, issuers, rules) and its activity events.
//! - [`access`]: introspection and revocation of issued tokens.
//! - [`exchange`]: the token exchange, from request to recorded outcome.
//! - [`recorder`]: group commit of exchange outcomes and their activity events.
//! - [`bootstrap`]: the first start (organization, default workspace, signing key, one-time admin
//!   token), loading the organization on every start, and the offline first org:admin automation
//!   (`keyless bootstrap admin-rule`).

pub mod access;
pub mod admin;
pub mod bootstrap;
pub mod exchange;
pub mod jwks;
pub mod keys;
pub mod recorder;
pub mod token;
