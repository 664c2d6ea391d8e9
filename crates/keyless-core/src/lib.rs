//! keyless-core: the domain of keyless — which tokens a federation rule accepts, and what it grants.
//!
//! # Layout (reading order)
//! - [`id`], [`name`]: typed identifiers (`fdis_`, `fdrl_`, `svac_`, `wrkspc_`, organization UUIDs) and
//!   object names.
//! - [`issuer`], [`service_account`]: the stored objects as the decision sees them, and the table of
//!   shared issuers ([`issuer::SharedIssuer`]).
//! - [`rejection`]: every rejection code in one enum, its OAuth error, its caller-safe message and the
//!   detail (`check`, `expected`, `seen`) for the activity feed.
//! - [`claims`]: validation of a verified token's registered claims (`iss`, `sub`, `aud`, `exp`, `nbf`,
//!   `iat`, `jti`).
//! - [`condition`]: CEL conditions, compiled safely at write time and evaluated per token.
//! - [`rule`]: the federation rule model, its two-stage parsing and write-time validation, and matching.
//! - [`scope`], [`lifetime`]: the granted scope and token lifetime.
//! - [`lint`]: known mistakes in valid rules (warnings with stable codes) and the refusals' codes.
//! - [`exchange`]: [`exchange::decide`], the whole decision.
//! - [`simulate`]: the decision explained: every check of one rule against one claim set, with the
//!   verdict `decide` gives.
//! - [`route`]: the operator's route table — which scopes a request to the protected API needs — and
//!   the canonical request path it is matched on.
//!
//! # Must not
//! No IO, nothing async, and no clock: `now` is always a parameter (Unix seconds, `i64`). Signature
//! verification lives in `keyless-jose`; storage (including `jti` records) in `keyless-store`; HTTP in
//! `keyless-server`. The only thread this crate starts is the compiler thread of [`condition`].

pub mod claims;
pub mod condition;
pub mod exchange;
pub mod id;
pub mod issuer;
pub mod lifetime;
pub mod lint;
pub mod name;
pub mod rejection;
pub mod route;
pub mod rule;
pub mod scope;
pub mod service_account;
pub mod simulate;
