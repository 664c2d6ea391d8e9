//! Issuer keys: where they come from, how they are fetched, cached and polled, and the dry run.
//!
//! Parts, in reading order:
//! - [`source`]: the `jwks` block of an issuer (`discovery` | `explicit_url` | `inline`) and the static
//!   URL policy ([`source::check_url`]).
//! - [`address`]: the dynamic URL policy — only public addresses, checked inside the HTTP client's DNS
//!   resolver.
//! - [`fetch`]: [`fetch::Fetcher`] — discovery document, then JWKS, with size cap, timeouts, same-origin
//!   redirects only, and a typed [`fetch::FetchError`] with stable codes.
//! - [`cache`]: [`IssuerKeys`], what the token exchange calls — freshness from HTTP caching headers within
//!   bounds, one coalesced re-fetch per cooldown on an unknown `kid`, last good keys kept while fetches
//!   fail (up to a staleness bound).
//! - [`poll`]: the background poller that keeps the cache warm and the issuers' `poll_status` visible.
//! - [`verify`]: "Verify issuer", a dry run that reports what a fetch finds, touching no cache or store.
//!
//! Must not: read the clock (time is a parameter, except the poller's tick, which reads
//! `crate::clock`), follow redirects to another origin, use proxies, or put response bodies or secrets
//! in errors and logs. Operator documentation: `docs/issuers.md`.

pub mod address;
pub mod cache;
pub mod fetch;
pub mod poll;
pub mod source;
pub mod verify;

pub use cache::{IssuerKeys, KeySettings, KeysError};
pub use fetch::{FetchError, FetchSettings};
pub use poll::PollSettings;
