//! Arbitrary bytes as a compact token against a fixed JWKS of five keys (RS256, PS256, ES256, ES384,
//! EdDSA; `fuzz/fixtures/jwks.json`, which the seeds in `fuzz/seeds/jws_verify/` are signed with).
//!
//! Beyond "never panics", it holds these invariants:
//! - acceptance is never spurious: when `verify_jwt` accepts, the reported key is in the set, fits the
//!   header's `alg` (and `kid`), and the token's own signature segment verifies over its signing input
//!   both with `verify_signature` and with a bare `aws-lc-rs` key built independently from the JWK;
//! - `verify_jws` and `verify_jwt` agree, except that `verify_jwt` may refuse a payload that is not a
//!   JSON object;
//! - an accepted token decodes unverified to the same header and claims.
#![no_main]

use std::collections::HashMap;
use std::sync::LazyLock;

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyless_jose::{Algorithm, Jwks, Limits, decode_unverified, verify_jws, verify_jwt, verify_signature};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const PAYLOAD_CODES: [&str; 5] = [
    "invalid_json",
    "not_a_json_object",
    "duplicate_member",
    "json_too_deep",
    "nul_in_string",
];

static JWKS: LazyLock<Jwks> = LazyLock::new(|| {
    let jwks = Jwks::from_json(include_bytes!("../fixtures/jwks.json")).unwrap();
    assert_eq!(jwks.keys().len(), 5, "fixture keys skipped: {:?}", jwks.skipped());
    jwks
});

/// An independent oracle: `aws-lc-rs` keys built straight from the fixture's JSON, by (kid, alg).
static RAW: LazyLock<HashMap<(String, Algorithm), ParsedPublicKey>> = LazyLock::new(|| {
    let document: Value = serde_json::from_slice(include_bytes!("../fixtures/jwks.json")).unwrap();
    let mut raw = HashMap::new();
    for jwk in document["keys"].as_array().unwrap() {
        let member = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
        let alg = Algorithm::from_name(jwk["alg"].as_str().unwrap()).unwrap();
        let key = match alg {
            Algorithm::Rs256 | Algorithm::Ps256 => RsaPublicKeyComponents {
                n: member("n"),
                e: member("e"),
            }
            .to_parsed_public_key(if alg == Algorithm::Rs256 {
                &signature::RSA_PKCS1_2048_8192_SHA256
            } else {
                &signature::RSA_PSS_2048_8192_SHA256
            })
            .unwrap(),
            Algorithm::Es256 | Algorithm::Es384 => {
                let mut point = vec![4];
                point.extend(member("x"));
                point.extend(member("y"));
                let params = if alg == Algorithm::Es256 {
                    &signature::ECDSA_P256_SHA256_FIXED
                } else {
                    &signature::ECDSA_P384_SHA384_FIXED
                };
                ParsedPublicKey::new(params, point).unwrap()
            }
            Algorithm::EdDsa => ParsedPublicKey::new(&signature::ED25519, member("x")).unwrap(),
            other => panic!("no {other} key in the fixture"),
        };
        raw.insert((jwk["kid"].as_str().unwrap().to_owned(), alg), key);
    }
    raw
});

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let limits = Limits::default();
    let unverified = decode_unverified(token, &limits);
    let jws = verify_jws(token, &JWKS, &limits);
    let jwt = verify_jwt(token, &JWKS, &limits);

    match (&jws, &jwt) {
        (Ok(jws), Ok(jwt)) => {
            assert_eq!(jws.header, jwt.header);
            assert_eq!(jws.key_thumbprint, jwt.key_thumbprint);
        }
        (Ok(_), Err(err)) => assert!(PAYLOAD_CODES.contains(&err.code()), "jwt-only refusal {err:?}"),
        (Err(jws_err), Err(jwt_err)) => assert_eq!(jws_err, jwt_err),
        (Err(err), Ok(_)) => panic!("verify_jwt accepted what verify_jws refused: {err:?}"),
    }

    let Ok(verified) = jwt else {
        return;
    };
    // Acceptance is never spurious.
    let jwk = JWKS
        .keys()
        .iter()
        .find(|jwk| jwk.thumbprint() == verified.key_thumbprint)
        .expect("the reported key is in the set");
    let alg = verified.header.alg;
    assert!(jwk.fits(alg));
    if let Some(kid) = &verified.header.kid {
        assert_eq!(jwk.kid(), Some(kid.as_str()));
    }
    let (signing_input, signature_b64) = token.rsplit_once('.').expect("three segments");
    let signature = URL_SAFE_NO_PAD.decode(signature_b64).expect("canonical signature");
    verify_signature(jwk, alg, signing_input.as_bytes(), &signature).expect("verify_signature agrees");
    let raw = RAW
        .get(&(jwk.kid().unwrap_or_default().to_owned(), alg))
        .expect("a raw key for the accepted (kid, alg)");
    raw.verify_sig(signing_input.as_bytes(), &signature)
        .expect("bare aws-lc-rs agrees");

    let unverified = unverified.expect("an accepted token decodes");
    assert_eq!(unverified.header, verified.header.raw);
    assert_eq!(unverified.claims(&limits).as_ref(), Ok(&verified.claims));
});
