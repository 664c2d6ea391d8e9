//! Properties over generated input: no panic on hostile bytes, and no mutated token accepted.
//!
//! Case counts stay moderate (256, or 64 for the expensive ones) so the suite is fast in debug
//! builds; a failure is shrunk and persisted by proptest as usual.

use std::sync::OnceLock;

use keyless_jose::{Jwk, Jwks, Limits, decode_unverified, verify_jws, verify_jwt};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

use crate::{b64, jwks};

/// One valid token per algorithm, with the JWKS that verifies it.
fn fixtures() -> &'static [(Jwks, String)] {
    static FIXTURES: OnceLock<Vec<(Jwks, String)>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        crate::signing::keys()
            .iter()
            .map(|key| {
                let claims = json!({ "sub": "workload", "aud": "keyless", "exp": 4_102_444_800_u64 });
                let token = key.sign_jwt(claims.as_object().unwrap()).unwrap();
                let set = jwks(&[key.public_jwk()]);
                assert!(verify_jwt(&token, &set, &Limits::default()).is_ok());
                (set, token)
            })
            .collect()
    })
}

/// Both entry points and the structural decoder, on any string: they may refuse, never panic.
fn exercise(token: &str, set: &Jwks) {
    let limits = Limits::default();
    let _ = decode_unverified(token, &limits);
    let jws = verify_jws(token, set, &limits);
    let jwt = verify_jwt(token, set, &limits);
    if let (Err(a), Err(b)) = (&jws, &jwt) {
        assert_eq!(a.code(), b.code());
    }
    assert!(!(jws.is_err() && jwt.is_ok()));
}

/// A JSON value, biased towards the members and values JOSE parsers look at.
fn arb_json() -> impl Strategy<Value = Value> {
    let names = prop::sample::select(vec![
        "kty", "crv", "x", "y", "n", "e", "d", "k", "alg", "use", "key_ops", "kid", "keys", "crit", "b64", "jwk",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "RSA",
            "EC",
            "OKP",
            "oct",
            "P-256",
            "P-384",
            "P-521",
            "Ed25519",
            "X25519",
            "secp256k1",
            "sig",
            "enc",
            "verify",
            "ES256",
            "RS256",
            "PS384",
            "EdDSA",
            "HS256",
            "none",
            "AQAB",
            "AQ",
            "",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|bytes| Value::String(b64(bytes))),
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        let name = prop_oneof![names.clone().prop_map(str::to_owned), "\\PC{0,6}"];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((name, inner), 0..8).prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// A JWK-shaped object with plausible members of random content and sizes.
fn arb_jwk() -> impl Strategy<Value = Value> {
    let kty = prop::sample::select(vec!["RSA", "EC", "OKP", "oct", "rsa", ""]);
    let crv = prop::option::of(prop::sample::select(vec![
        "P-256", "P-384", "P-521", "Ed25519", "Ed448", "P-256K",
    ]));
    let bytes = |max| prop::option::of(prop::collection::vec(any::<u8>(), 0..max).prop_map(b64));
    let alg = prop::option::of(prop::sample::select(vec![
        "RS256", "PS512", "ES256", "ES384", "ES512", "EdDSA", "HS256", "ES521", "none",
    ]));
    (
        kty,
        crv,
        bytes(600),
        bytes(9),
        bytes(70),
        bytes(70),
        alg,
        prop::option::of(arb_json()),
    )
        .prop_map(|(kty, crv, n, e, x, y, alg, extra)| {
            let mut jwk = json!({ "kty": kty });
            for (name, value) in [
                ("crv", crv.map(str::to_owned)),
                ("n", n),
                ("e", e),
                ("x", x),
                ("y", y),
                ("alg", alg.map(str::to_owned)),
            ] {
                if let Some(value) = value {
                    jwk[name] = json!(value);
                }
            }
            if let Some(extra) = extra {
                jwk["key_ops"] = extra;
            }
            jwk
        })
}

/// One dot-separated segment: base64url-ish text, or the encoding of bytes, JSON or a header.
fn arb_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_=+/ -]{0,64}",
        prop::collection::vec(any::<u8>(), 0..128).prop_map(b64),
        arb_json().prop_map(|value| b64(value.to_string())),
        (
            prop::sample::select(vec!["ES256", "RS256", "EdDSA", "none", "HS256", "PS512", "ES512"]),
            prop::option::of("[a-zA-Z0-9_-]{0,43}"),
        )
            .prop_map(|(alg, kid)| {
                let mut header = json!({ "alg": alg });
                if let Some(kid) = kid {
                    header["kid"] = json!(kid);
                }
                b64(header.to_string())
            }),
    ]
}

/// How a valid token is damaged.
#[derive(Clone, Debug)]
enum Mutation {
    /// Flip one of the low seven bits of some bytes (the token stays ASCII).
    FlipBits(Vec<(Index, u8)>),
    Truncate(Index),
    Insert(Index, char),
    Delete(Index),
    /// Replace one segment with another segment of the same token.
    CopySegment(usize, usize),
    /// Replace a byte range with a run of one character.
    Overwrite(Index, usize, char),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    let some_char = prop_oneof![
        prop::sample::select(vec![
            '.', '=', ' ', '\n', '+', '/', '-', '_', 'A', '0', '{', '"', '\u{0}'
        ]),
        any::<char>(),
    ];
    prop_oneof![
        prop::collection::vec((any::<Index>(), 0u8..7), 1..4).prop_map(Mutation::FlipBits),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), some_char.clone()).prop_map(|(at, c)| Mutation::Insert(at, c)),
        any::<Index>().prop_map(Mutation::Delete),
        (0usize..3, 0usize..3).prop_map(|(from, to)| Mutation::CopySegment(from, to)),
        (any::<Index>(), 1usize..8, some_char).prop_map(|(at, len, c)| Mutation::Overwrite(at, len, c)),
    ]
}

fn apply(token: &str, mutation: &Mutation) -> String {
    let bytes = token.as_bytes();
    match mutation {
        Mutation::FlipBits(flips) => {
            let mut bytes = bytes.to_vec();
            for (at, bit) in flips {
                let i = at.index(bytes.len());
                bytes[i] ^= 1 << bit;
            }
            String::from_utf8(bytes).expect("flipping a low bit of ASCII stays ASCII")
        }
        Mutation::Truncate(at) => token[..at.index(token.len())].to_owned(),
        Mutation::Insert(at, c) => {
            let i = at.index(token.len() + 1);
            format!("{}{c}{}", &token[..i], &token[i..])
        }
        Mutation::Delete(at) => {
            let i = at.index(token.len());
            format!("{}{}", &token[..i], &token[i + 1..])
        }
        Mutation::CopySegment(from, to) => {
            let mut segments: Vec<&str> = token.split('.').collect();
            segments[*to] = segments[*from];
            segments.join(".")
        }
        Mutation::Overwrite(at, len, c) => {
            let i = at.index(token.len());
            let end = (i + len).min(token.len());
            format!("{}{}{}", &token[..i], c.to_string().repeat(end - i), &token[end..])
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(token in any::<String>(), which in 0usize..10) {
        exercise(&token, &fixtures()[which].0);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), which in 0usize..10) {
        exercise(&String::from_utf8_lossy(&bytes), &fixtures()[which].0);
    }

    #[test]
    fn dot_joined_base64url_segments_never_panic(
        segments in prop::collection::vec(arb_segment(), 0..6),
        which in 0usize..10,
    ) {
        exercise(&segments.join("."), &fixtures()[which].0);
    }

    #[test]
    fn a_mutated_token_is_accepted_only_if_unchanged(mutation in arb_mutation(), which in 0usize..10) {
        let (set, token) = &fixtures()[which];
        let mutated = apply(token, &mutation);
        exercise(&mutated, set);
        let accepted = verify_jws(&mutated, set, &Limits::default()).is_ok();
        prop_assert!(!accepted || mutated == *token, "mutated token accepted: {mutation:?} -> {mutated}");
    }

    #[test]
    fn jwks_from_json_never_panics_on_json_values(value in arb_json()) {
        let _ = Jwks::from_json(value.to_string().as_bytes());
        let _ = Jwks::from_json(json!({ "keys": [value.clone()] }).to_string().as_bytes());
        let _ = Jwk::from_value(&value);
    }

    #[test]
    fn jwks_from_json_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = Jwks::from_json(&bytes);
        let _ = Jwk::from_json(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn jwk_shaped_values_never_panic_and_skips_are_accounted_for(keys in prop::collection::vec(arb_jwk(), 0..4)) {
        let doc = json!({ "keys": keys });
        let set = Jwks::from_json(doc.to_string().as_bytes()).unwrap();
        prop_assert_eq!(set.keys().len() + set.skipped().len(), keys.len());
        for (jwk, value) in set.keys().iter().zip(keys.iter().filter(|v| Jwk::from_value(v).is_ok())) {
            // A usable key's thumbprint is RFC 7638's over its public members.
            prop_assert_eq!(jwk.thumbprint(), crate::rfc7638_thumbprint(value));
        }
        // Tokens against a set of random keys never panic either.
        for (_, token) in fixtures() {
            exercise(token, &set);
        }
    }

    #[test]
    fn segments_of_valid_tokens_recombined_are_refused(picks in prop::collection::vec(0usize..10, 3)) {
        // Header, payload and signature taken from different valid tokens never verify,
        // unless all three come from the same token.
        let parts: Vec<&str> = picks
            .iter()
            .enumerate()
            .map(|(slot, which)| fixtures()[*which].1.split('.').nth(slot).unwrap())
            .collect();
        let token = parts.join(".");
        for (set, original) in fixtures() {
            let accepted = verify_jws(&token, set, &Limits::default()).is_ok();
            prop_assert!(!accepted || token == *original, "recombined token accepted");
        }
    }
}
