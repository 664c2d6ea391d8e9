//! Resource-server verification: accept a request only if it carries a valid keyless access token
//! with the right scopes (feature `resource-server`).
//!
//! keyless access tokens are opaque (`keyless_at_…`); a resource server learns what one is by asking
//! keyless (`POST /v1/oauth/introspect`, RFC 7662) with its own credential — a bearer token holding the
//! least-privilege scope `oauth:introspect`. This module does that well: cached, coalesced, bounded,
//! failing closed.
//!
//! Parts, in reading order:
//! - [`Verifier`] (`verifier`): `verify(token) -> Result<Principal, Denial>`; the cache (keyed by
//!   SHA-256 of the token, bounded), single flight per token, [`bearer_token`].
//! - [`Principal`] (`principal`): who the token is for and its scopes; [`Principal::require_scope`].
//! - [`Denial`] (`denial`): why a request is refused, and its RFC 6750 answer (401 / 403 / 503 / 500
//!   with `WWW-Authenticate` and a JSON body).
//! - [`RequireToken`] and [`RequireScope`] (`layer`): tower layers.
//! - `extract`: `Principal` as an axum extractor, `Denial` as an axum response.
//! - [`Clock`], [`SystemClock`], [`ManualClock`] (`clock`): time is a parameter.
//!
//! # The bounds
//! - **Revocation** takes effect within `max_ttl` (default **10 s**, [`VerifierBuilder::max_ttl`]): an
//!   active answer is trusted for at most that long, then keyless is asked again. A verifier that has
//!   not seen the token since the revocation refuses it at once.
//! - **Expiry** is exact: an active answer is never kept past the token's `exp`, and a token is refused
//!   from its `exp` second on by the verifier's clock, whatever keyless or the cache says.
//! - An inactive answer is remembered for `negative_ttl` (default 2 s), so one bad token in a loop costs
//!   one introspection call per period; a string not shaped like a keyless token costs none.
//! - At most `capacity` answers (default 10 000) are held; the token itself is never stored.
//! - **Failing closed**: if keyless cannot be reached, times out ([`VerifierBuilder::timeout`], default
//!   5 s), refuses the resource server's credential or answers something unexpected, the request is
//!   refused with 503 — never let through, and no stale answer is used.
//!
//! # Tokens
//! Read from `Authorization: Bearer <token>` only (scheme case-insensitive), never from query strings
//! (RFC 6750 §2.3 is not supported: URLs end up in logs).
//!
//! # Wiring (axum)
//! ```no_run
//! use axum::Router;
//! use axum::routing::get;
//! use keyless_client::resource::{Denial, Principal, RequireScope, RequireToken, Verifier};
//!
//! async fn whoami(principal: Principal) -> axum::Json<Principal> {
//!     axum::Json(principal)
//! }
//!
//! async fn delete_file(principal: Principal) -> Result<&'static str, Denial> {
//!     principal.require_scope("files:delete")?; // 403 with `scope="files:delete"` if missing
//!     Ok("deleted")
//! }
//!
//! fn app(verifier: Verifier) -> Router {
//!     Router::new()
//!         .route("/files", get(|| async { "files" }).layer(RequireScope::new("files:read")))
//!         .route("/files/delete", get(delete_file))
//!         .route("/whoami", get(whoami))
//!         .layer(RequireToken::new(verifier))
//! }
//! ```
//! See `examples/resource_api.rs` for a runnable API.
//!
//! # Must not
//! Let a request through that was not checked; read the token from anywhere but the `Authorization`
//! header; keep or log a token (only its SHA-256, in memory); send the cause of a 503 to the caller.

mod cache;
mod denial;
mod extract;
mod layer;
mod principal;
mod verifier;

pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use denial::{Denial, REALM};
pub use layer::{RequireScope, RequireScopeService, RequireToken, RequireTokenService};
pub use principal::Principal;
pub use verifier::{
    DEFAULT_CAPACITY, DEFAULT_MAX_TTL, DEFAULT_NEGATIVE_TTL, DEFAULT_TIMEOUT, Verifier, VerifierBuilder, bearer_token,
};
