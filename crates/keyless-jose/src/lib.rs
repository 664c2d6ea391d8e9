//! keyless-jose: JWS, JWK and JWKS — parsing, verification and signing, strict by construction.
//!
//! Parts, in reading order:
//! - [`Algorithm`]: the ten asymmetric algorithms accepted; `none` and `HS*` cannot be named.
//! - `json` (private): the strict JSON reader every untrusted byte goes through (no duplicate
//!   members, bounded depth, no NUL).
//! - [`Jwk`], [`Jwks`]: public keys validated once at parse time (size, exponent, ROCA, point on
//!   the curve, `use`/`key_ops`, `alg` agreement) and pre-parsed for verification.
//! - [`verify_jws`], [`verify_jwt`], [`decode_unverified`]: compact tokens; every refusal is a
//!   [`JwsError`] with a stable [`JwsError::code`].
//! - [`SigningKey`], [`public_jwks`]: keyless's own keys (ES256 by default, EdDSA, RS256, …).
//!
//! Key selection policy: the key comes only from the [`Jwks`] the caller passes, never from the
//! token (`jwk`, `jku`, `x5u`, `x5c` headers are not read). A token with a `kid` uses the one key
//! with that `kid` that fits its `alg`; a token without `kid` is accepted only when exactly one
//! key of the set fits its `alg` (type, curve and the key's own `alg`).
//!
//! This crate does no IO, is not async and never reads the clock: claim validation (`exp`, …)
//! belongs to `keyless-core`.

mod algorithm;
mod b64;
mod json;
mod jwk;
mod jws;
mod roca;
mod sign;

pub use algorithm::{Algorithm, Curve, KeyFamily};
pub use jwk::{Jwk, JwkError, Jwks, JwksError, SkippedKey};
pub use jws::{
    Header, JwsError, Limits, Segment, Unverified, VerifiedJws, VerifiedJwt, decode_unverified, verify_jws, verify_jwt,
    verify_signature,
};
pub use sign::{Pkcs8, SignError, SigningKey, public_jwks};
