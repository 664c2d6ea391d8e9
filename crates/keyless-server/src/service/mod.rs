//! Services: the logic behind the HTTP handlers, one module per concern.
//!
//! - [`keys`]: the key-encryption key and sealing of signing keys at rest.
//! - [`token`]: minting and hashing keyless's opaque access tokens.
//! - [`jwks`]: issuer keys — the `jwks` block, fetching, caching and polling.
//! - [`admin`]: the Admin API's logic (service accounts, issuers, rules) and its activity events.
//! - [`access`]: introspection and revocation of issued tokens.
//! - [`exchange`]: the token exchange, from request to recorded outcome.
//! - [`recorder`]: group commit of exchange outcomes and their activity events.
//! - [`authorize`]: request authorization for the protected API (credential, route scopes, rate
//!   limits), behind `/v1/authorize` and the built-in proxy.
//! - [`request_log`]: every authorized or refused request as an `api_request` event and usage counts,
//!   written in batches off the request path.
//! - [`purge`]: expired access tokens and `jti` records deleted in the background.
//! - [`checkpoint`]: SQLite's write-ahead log checkpointed in the background, off the writer.
//! - [`bootstrap`]: the first start (organization, default workspace, signing key, one-time admin
//!   token), loading the organization on every start, and the offline first org:admin automation
//!   (`keyless bootstrap admin-rule`).

pub mod access;
pub mod admin;
pub mod authorize;
pub mod bootstrap;
pub mod checkpoint;
pub mod exchange;
pub mod jwks;
pub mod keys;
pub mod purge;
pub mod recorder;
pub mod request_log;
pub mod token;
