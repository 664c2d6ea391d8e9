//! The conformance suite of `keyless-jose`: the one integration-test binary of the crate.
//!
//! Modules, in reading order:
//! - `wycheproof_jose`: every case of Project Wycheproof's JWS and JWK files, each coming out as
//!   the file says under keyless's stricter policy (every deviation named in a table).
//! - `wycheproof_primitives`: the `wycheproof` crate's ECDSA (P1363), Ed25519, RSA PKCS#1 v1.5 and
//!   RSA-PSS vectors, driven through [`keyless_jose::verify_signature`].
//! - `rfc_examples`: RFC 7515, RFC 7520, RFC 8037 and RFC 7638 examples, verbatim.
//! - `attacks`: one test per known JWS/JWT attack, named after what it guards.
//! - `properties`: proptest — no panic on hostile input, no mutated token accepted.
//! - `signing`: sign → verify round trips, published JWKS, PKCS#8 import.
//!
//! Every token goes through one helper, [`check`], which runs both [`verify_jws`] and
//! [`verify_jwt`] and holds them to one [`Expect`]ation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

mod attacks;
mod properties;
mod rfc_examples;
mod signing;
mod wycheproof_jose;
mod wycheproof_primitives;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyless_jose::{Jwks, JwsError, Limits, VerifiedJws, verify_jws, verify_jwt};
use serde_json::{Map, Value};

/// The codes `verify_jwt` may add on top of an accepting `verify_jws`: the payload is not
/// acceptable claims.
pub(crate) const PAYLOAD_CODES: &[&str] = &[
    "invalid_json",
    "not_a_json_object",
    "duplicate_member",
    "json_too_deep",
    "nul_in_string",
];

/// What a token must come out as.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Expect {
    /// `verify_jws` and `verify_jwt` both accept.
    Jwt,
    /// `verify_jws` accepts; `verify_jwt` accepts too, or refuses for a payload reason only
    /// ([`PAYLOAD_CODES`]): the payload is arbitrary bytes.
    Jws,
    /// `verify_jws` accepts (the signature is good); `verify_jwt` refuses the payload with this code.
    JwsNotJwt(&'static str),
    /// Both refuse with this code.
    Refused(&'static str),
    /// Both refuse with one of these codes: which check fires first is the implementation's
    /// choice, and every listed one is a correct reason.
    RefusedOneOf(&'static [&'static str]),
    /// Both refuse, for any reason.
    RefusedAny,
}

/// Checks `token` against `jwks` under the default [`Limits`]; panics on any other outcome.
/// Returns what `verify_jws` accepted, if it did.
pub(crate) fn check(token: &str, jwks: &Jwks, expect: Expect) -> Option<VerifiedJws> {
    check_with(token, jwks, &Limits::default(), expect)
}

/// [`check`] under explicit limits.
pub(crate) fn check_with(token: &str, jwks: &Jwks, limits: &Limits, expect: Expect) -> Option<VerifiedJws> {
    match judge(token, jwks, limits, expect) {
        Ok(res) => res.ok(),
        Err(why) => panic!("{why}"),
    }
}

/// Runs both verification entry points and compares them with `expect`. The outer `Err` is the
/// description of a wrong outcome; the inner result is `verify_jws`'s.
pub(crate) fn judge(
    token: &str,
    jwks: &Jwks,
    limits: &Limits,
    expect: Expect,
) -> Result<Result<VerifiedJws, JwsError>, String> {
    let jws = verify_jws(token, jwks, limits);
    let jwt = verify_jwt(token, jwks, limits);
    let shown = show(token);
    let jws_outcome = match &jws {
        Ok(_) => "accepted".to_owned(),
        Err(err) => format!("refused {} ({err})", err.code()),
    };
    let jwt_outcome = match &jwt {
        Ok(_) => "accepted".to_owned(),
        Err(err) => format!("refused {} ({err})", err.code()),
    };
    // verify_jwt is verify_jws plus a claims parse: it refuses whatever verify_jws refuses, for
    // the same reason, and when both accept they agree on header, key and payload.
    match (&jws, &jwt) {
        (Err(a), Err(b)) if a.code() != b.code() => {
            return Err(format!(
                "{shown}: verify_jws refused {} but verify_jwt refused {}",
                a.code(),
                b.code()
            ));
        }
        (Err(a), Ok(_)) => {
            return Err(format!(
                "{shown}: verify_jws refused {} but verify_jwt accepted",
                a.code()
            ));
        }
        (Ok(a), Ok(b)) => {
            if a.header.alg != b.header.alg || a.header.kid != b.header.kid || a.key_thumbprint != b.key_thumbprint {
                return Err(format!("{shown}: verify_jws and verify_jwt disagree on header or key"));
            }
            let claims: Map<String, Value> = serde_json::from_slice(&a.payload)
                .map_err(|err| format!("{shown}: verify_jwt accepted a payload serde_json refuses: {err}"))?;
            if claims != b.claims {
                return Err(format!("{shown}: verify_jwt's claims differ from verify_jws's payload"));
            }
        }
        _ => {}
    }
    let ok = match expect {
        Expect::Jwt => jws.is_ok() && jwt.is_ok(),
        Expect::Jws => jws.is_ok() && jwt.as_ref().err().is_none_or(|err| PAYLOAD_CODES.contains(&err.code())),
        Expect::JwsNotJwt(code) => jws.is_ok() && jwt.as_ref().err().is_some_and(|err| err.code() == code),
        Expect::Refused(code) => jws.as_ref().err().is_some_and(|err| err.code() == code),
        Expect::RefusedOneOf(codes) => jws.as_ref().err().is_some_and(|err| codes.contains(&err.code())),
        Expect::RefusedAny => jws.is_err(),
    };
    if !ok {
        return Err(format!(
            "{shown}: expected {expect:?}; verify_jws {jws_outcome}, verify_jwt {jwt_outcome}"
        ));
    }
    Ok(jws)
}

/// A token shortened for messages.
pub(crate) fn show(token: &str) -> String {
    if token.len() <= 100 {
        format!("{token:?}")
    } else {
        let head: String = token.chars().take(80).collect();
        format!("{head:?}… ({} bytes)", token.len())
    }
}

/// Unpadded base64url.
pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url test data.
pub(crate) fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(text)
        .unwrap_or_else(|err| panic!("test data {text:?} is not base64url: {err}"))
}

/// A compact token from raw header bytes, payload bytes and signature bytes.
pub(crate) fn compact(header: &[u8], payload: &[u8], signature: &[u8]) -> String {
    format!("{}.{}.{}", b64(header), b64(payload), b64(signature))
}

/// A JWKS from JWK values that must all be usable.
pub(crate) fn jwks(keys: &[Value]) -> Jwks {
    let doc = serde_json::json!({ "keys": keys });
    let jwks = Jwks::from_json(doc.to_string().as_bytes()).expect("the JWKS document parses");
    let skipped: Vec<_> = jwks.skipped().iter().map(|s| (s.index, s.error.code())).collect();
    assert!(skipped.is_empty(), "test keys were skipped: {skipped:?}");
    jwks
}

/// The RFC 7638 thumbprint of a public JWK, computed here independently of the crate: SHA-256 over
/// the required members in lexicographic order, no whitespace.
pub(crate) fn rfc7638_thumbprint(jwk: &Value) -> String {
    let member = |name: &str| {
        let value = jwk.get(name).unwrap_or_else(|| panic!("jwk lacks {name}: {jwk}"));
        serde_json::to_string(value).unwrap()
    };
    let canonical = match jwk["kty"].as_str() {
        Some("RSA") => format!(r#"{{"e":{},"kty":"RSA","n":{}}}"#, member("e"), member("n")),
        Some("EC") => format!(
            r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
            member("crv"),
            member("x"),
            member("y")
        ),
        Some("OKP") => format!(r#"{{"crv":{},"kty":"OKP","x":{}}}"#, member("crv"), member("x")),
        other => panic!("no thumbprint for kty {other:?}"),
    };
    b64(digest::digest(&digest::SHA256, canonical.as_bytes()))
}
