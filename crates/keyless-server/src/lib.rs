//! keyless-server: `keyless serve` — the only crate that knows HTTP-server types.
//!
//! Parts, in reading order:
//! - [`config`]: the server's settings, layered defaults → `keyless.toml` → `KEYLESS_*` environment
//!   (`__` for nesting) → command-line flags, parsed raw then validated.
//! - [`service`]: the logic behind the handlers; today [`service::keys`], which seals keyless's
//!   signing keys at rest under a key-encryption key.
//!
//! The HTTP layer (`http/`), state and the rest of the services arrive with the token service.
//! Must not: know SQL (that is `keyless-store`), or decide an exchange (that is `keyless-core`).

pub mod config;
pub mod service;
