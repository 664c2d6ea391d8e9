//! Known attacks on JWS/JWT verifiers, one test per attack, named after what it guards.
//!
//! Unless a test says otherwise, the hostile token is *properly signed* by the victim's own key
//! (the tests hold the private half), so the one fault under test is the only possible reason
//! to refuse it.

use std::sync::OnceLock;

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keyless_jose::{Algorithm, Jwks, Limits, SigningKey, decode_unverified};
use serde_json::{Map, Value, json};

use crate::{Expect, b64, check, check_with, compact, jwks, unb64};

/// The victim issuer. Its ES256 key is also held as an aws-lc-rs pair, to sign arbitrary raw
/// header bytes (duplicate members, odd encodings) that no `Map` can express.
struct Victim {
    es256: SigningKey,
    es256_raw: EcdsaKeyPair,
    es256_pkcs8: Vec<u8>,
    es384: SigningKey,
    es512: SigningKey,
    rs256: SigningKey,
    rsa_pkcs8: Vec<u8>,
    rsa_spki: Vec<u8>,
    rsa_pkcs1: Vec<u8>,
    ed25519: SigningKey,
}

fn victim() -> &'static Victim {
    static VICTIM: OnceLock<Victim> = OnceLock::new();
    VICTIM.get_or_init(|| {
        let es256_raw = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let es256_pkcs8 = es256_raw.to_pkcs8v1().unwrap().as_ref().to_vec();
        let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let rsa_pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&rsa).unwrap();
        let rsa_spki = AsDer::<PublicKeyX509Der>::as_der(rsa.public_key())
            .unwrap()
            .as_ref()
            .to_vec();
        Victim {
            es256: SigningKey::from_pkcs8(Algorithm::Es256, &es256_pkcs8).unwrap(),
            es256_raw,
            es256_pkcs8,
            es384: SigningKey::generate(Algorithm::Es384).unwrap(),
            es512: SigningKey::generate(Algorithm::Es512).unwrap(),
            rs256: SigningKey::from_pkcs8(Algorithm::Rs256, rsa_pkcs8.as_ref()).unwrap(),
            rsa_pkcs8: rsa_pkcs8.as_ref().to_vec(),
            rsa_spki,
            rsa_pkcs1: rsa.public_key().as_ref().to_vec(),
            ed25519: SigningKey::generate(Algorithm::EdDsa).unwrap(),
        }
    })
}

fn kid() -> &'static str {
    victim().es256.kid()
}

/// The victim's JWKS: its ES256 key only.
fn es256_jwks() -> Jwks {
    jwks(&[victim().es256.public_jwk()])
}

const CLAIMS: &[u8] = br#"{"sub":"victim","aud":"keyless","exp":4102444800}"#;

/// A compact token over raw header and payload bytes, signed by the victim's ES256 key.
fn raw_token(header: &[u8], payload: &[u8]) -> String {
    let signing_input = format!("{}.{}", b64(header), b64(payload));
    let sig = victim()
        .es256_raw
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .unwrap();
    format!("{signing_input}.{}", b64(sig.as_ref()))
}

/// `{"alg":"ES256","kid":<victim>}` plus `extra` members, as JSON text.
fn header_with(extra: &str) -> Vec<u8> {
    format!(r#"{{"alg":"ES256","kid":"{}"{extra}}}"#, kid()).into_bytes()
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[test]
fn victim_tokens_are_accepted() {
    // The baseline every other test departs from.
    check(&raw_token(&header_with(""), CLAIMS), &es256_jwks(), Expect::Jwt);
    check(&raw_token(br#"{"alg":"ES256"}"#, CLAIMS), &es256_jwks(), Expect::Jwt);
}

#[test]
fn alg_none_is_refused_in_every_spelling() {
    let victim_set = jwks(&[
        victim().es256.public_jwk(),
        victim().rs256.public_jwk(),
        victim().ed25519.public_jwk(),
    ]);
    for alg in ["none", "None", "NONE", "nOnE", "NoNe", "nONE"] {
        for kid in [None, Some(kid())] {
            let mut header = json!({ "alg": alg });
            if let Some(kid) = kid {
                header["kid"] = json!(kid);
            }
            let h = b64(header.to_string());
            let p = b64(CLAIMS);
            // Empty signature segment: the classic unsecured JWS.
            check(&format!("{h}.{p}."), &victim_set, Expect::Refused("alg_none"));
            // With a real signature of the victim over this very input, and with garbage.
            let signed = raw_token(header.to_string().as_bytes(), CLAIMS);
            check(&signed, &victim_set, Expect::Refused("alg_none"));
            check(
                &format!("{h}.{p}.{}", b64([7u8; 64])),
                &victim_set,
                Expect::Refused("alg_none"),
            );
            // Without the signature segment at all: not a compact JWS.
            check(&format!("{h}.{p}"), &victim_set, Expect::Refused("malformed_segments"));
        }
    }
}

#[test]
fn hs256_keyed_with_the_victims_public_key_is_refused() {
    // The RS256→HS256 confusion: an attacker MACs with the victim's *public* key bytes, hoping
    // the verifier feeds its RSA key to HMAC. Every form of the public key is tried.
    let v = victim();
    let pem_body: Vec<String> = STANDARD
        .encode(&v.rsa_spki)
        .as_bytes()
        .chunks(64)
        .map(|line| String::from_utf8(line.to_vec()).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        pem_body.join("\n")
    );
    let jwk_json = v.rs256.public_jwk().to_string();
    let n = unb64(v.rs256.public_jwk()["n"].as_str().unwrap());
    let secrets: [&[u8]; 6] = [
        &v.rsa_spki,
        &v.rsa_pkcs1,
        pem.as_bytes(),
        pem.trim_end().as_bytes(),
        jwk_json.as_bytes(),
        &n,
    ];
    let victim_set = jwks(&[v.rs256.public_jwk()]);
    for (alg, mac) in [
        ("HS256", hmac::HMAC_SHA256),
        ("HS384", hmac::HMAC_SHA384),
        ("HS512", hmac::HMAC_SHA512),
    ] {
        for secret in secrets {
            for header in [json!({ "alg": alg, "kid": v.rs256.kid() }), json!({ "alg": alg })] {
                let signing_input = format!("{}.{}", b64(header.to_string()), b64(CLAIMS));
                let tag = hmac::sign(&hmac::Key::new(mac, secret), signing_input.as_bytes());
                let token = format!("{signing_input}.{}", b64(tag.as_ref()));
                check(&token, &victim_set, Expect::Refused("alg_symmetric"));
            }
        }
    }
}

#[test]
fn attacker_keys_in_jwk_jku_x5u_x5c_headers_are_ignored() {
    // The key comes only from the caller's JWKS: an attacker's key embedded in (or pointed to
    // by) the header must not verify the attacker's own signature.
    let attacker = SigningKey::generate(Algorithm::Es256).unwrap();
    let attacker_x5c = STANDARD.encode(b"attacker certificate (never parsed)");
    let members: [(&str, Value); 4] = [
        ("jwk", attacker.public_jwk()),
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        ("x5c", json!([attacker_x5c])),
    ];
    let all_four = Value::Object(members.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect());
    let mut variants: Vec<Value> = members.iter().map(|(k, v)| json!({ *k: v })).collect();
    variants.push(all_four);
    for extra in variants {
        for (header_kid, expect) in [
            (Some(kid()), Expect::Refused("bad_signature")),
            (Some(attacker.kid()), Expect::Refused("kid_not_found")),
            // No kid: the victim's set has exactly one ES256 key, which refuses the signature.
            (None, Expect::Refused("bad_signature")),
        ] {
            let mut header = extra.clone();
            header["alg"] = json!("ES256");
            if let Some(header_kid) = header_kid {
                header["kid"] = json!(header_kid);
            }
            let token = attacker.sign_compact(header.as_object().unwrap(), CLAIMS).unwrap();
            check(&token, &es256_jwks(), expect);
            // Sanity: the attacker's signature is good — with the attacker's key it verifies.
            if header_kid != Some(kid()) {
                check(&token, &jwks(&[attacker.public_jwk()]), Expect::Jwt);
            }
        }
    }
}

/// The order of each curve's group (SEC 2), big-endian, at the coordinate length.
const P256_N: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
const P384_N: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";
const P521_N: &str = "01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn int_at(len: usize, value: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; len - value.len()];
    out.extend_from_slice(value);
    out
}

#[test]
fn psychic_ecdsa_signatures_are_refused() {
    // CVE-2022-21449: r = s = 0 (and friends) verified for any message in a broken verifier.
    let v = victim();
    for (key, n_hex, len) in [(&v.es256, P256_N, 32), (&v.es384, P384_N, 48), (&v.es512, P521_N, 66)] {
        let n = hex(n_hex);
        assert_eq!(n.len(), len);
        let zero = vec![0u8; len];
        let one = int_at(len, &[1]);
        let signatures: Vec<(&str, Vec<u8>)> = vec![
            ("all zero", [zero.clone(), zero.clone()].concat()),
            ("r = s = n", [n.clone(), n.clone()].concat()),
            ("r = 0, s = 1", [zero.clone(), one.clone()].concat()),
            ("r = 1, s = 0", [one.clone(), zero.clone()].concat()),
            ("r = n, s = 1", [n.clone(), one.clone()].concat()),
            ("r = 0, s = n", [zero.clone(), n.clone()].concat()),
            ("all 0xff", vec![0xff; 2 * len]),
        ];
        let header = json!({ "alg": key.alg().name(), "kid": key.kid() });
        for (what, sig) in signatures {
            let token = compact(header.to_string().as_bytes(), CLAIMS, &sig);
            let res = keyless_jose::verify_jws(&token, &jwks(&[key.public_jwk()]), &Limits::default());
            assert_eq!(
                res.err().map(|e| e.code()),
                Some("bad_signature"),
                "{:?}: {what}",
                key.alg()
            );
        }
    }
}

#[test]
fn der_encoded_ecdsa_signature_is_refused() {
    // A genuine signature of the victim, in ASN.1 DER instead of JOSE's R || S.
    let v = victim();
    let der_signer = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &v.es256_pkcs8).unwrap();
    for _ in 0..8 {
        let signing_input = format!("{}.{}", b64(header_with("")), b64(CLAIMS));
        let sig = der_signer.sign(&SystemRandom::new(), signing_input.as_bytes()).unwrap();
        assert_eq!(sig.as_ref()[0], 0x30, "a DER SEQUENCE");
        let token = format!("{signing_input}.{}", b64(sig.as_ref()));
        check(
            &token,
            &es256_jwks(),
            Expect::RefusedOneOf(&["bad_signature_length", "bad_signature"]),
        );
    }
}

/// The expected outcome of appending one base64url character to a canonical segment of
/// `len` characters: a length of 1 mod 4 is never base64; otherwise the new last character's
/// unused low bits must be zero.
fn appended_char_outcome(len: usize, appended: char) -> Expect {
    let value = u32::try_from(b64_alphabet_index(appended)).unwrap();
    let unused_bits = match (len + 1) % 4 {
        1 => return Expect::Refused("invalid_base64"),
        2 => 4,
        3 => 2,
        _ => 0,
    };
    if value & ((1 << unused_bits) - 1) != 0 {
        Expect::Refused("invalid_base64")
    } else {
        Expect::Refused("bad_signature_length")
    }
}

fn b64_alphabet_index(c: char) -> usize {
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        .find(c)
        .unwrap()
}

#[test]
fn truncated_and_padded_signatures_are_refused_for_every_algorithm() {
    for key in crate::signing::keys() {
        let keys = jwks(&[key.public_jwk()]);
        let token = key.sign_jwt(&object(json!({ "sub": "victim" }))).unwrap();
        check(&token, &keys, Expect::Jwt);
        let (signing_input, sig_b64) = token.rsplit_once('.').unwrap();
        let sig = unb64(sig_b64);
        let with_sig = |bytes: &[u8]| format!("{signing_input}.{}", b64(bytes));
        let mut flipped = sig.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let byte_variants: Vec<(&str, Vec<u8>, Expect)> = vec![
            (
                "last byte dropped",
                sig[..sig.len() - 1].to_vec(),
                Expect::Refused("bad_signature_length"),
            ),
            (
                "zero byte appended",
                [&sig[..], &[0]].concat(),
                Expect::Refused("bad_signature_length"),
            ),
            (
                "zero byte prepended",
                [&[0], &sig[..]].concat(),
                Expect::Refused("bad_signature_length"),
            ),
            ("empty", Vec::new(), Expect::Refused("bad_signature_length")),
            (
                "doubled",
                [&sig[..], &sig[..]].concat(),
                Expect::Refused("bad_signature_length"),
            ),
            ("last bit flipped", flipped, Expect::Refused("bad_signature")),
        ];
        for (what, bytes, expect) in byte_variants {
            let res = crate::judge(&with_sig(&bytes), &keys, &Limits::default(), expect);
            assert!(res.is_ok(), "{:?}, {what}: {}", key.alg(), res.err().unwrap());
        }
        let text_variants: Vec<(&str, String, Expect)> = vec![
            (
                "'A' appended",
                format!("{token}A"),
                appended_char_outcome(sig_b64.len(), 'A'),
            ),
            (
                "'B' appended",
                format!("{token}B"),
                appended_char_outcome(sig_b64.len(), 'B'),
            ),
            ("'=' appended", format!("{token}="), Expect::Refused("invalid_base64")),
            ("'==' appended", format!("{token}=="), Expect::Refused("invalid_base64")),
            (
                "last char dropped",
                token[..token.len() - 1].to_owned(),
                Expect::RefusedOneOf(&["invalid_base64", "bad_signature_length"]),
            ),
            (
                "trailing dot",
                format!("{token}."),
                Expect::Refused("malformed_segments"),
            ),
        ];
        for (what, variant, expect) in text_variants {
            let res = crate::judge(&variant, &keys, &Limits::default(), expect);
            assert!(res.is_ok(), "{:?}, {what}: {}", key.alg(), res.err().unwrap());
        }
    }
}

#[test]
fn a_token_of_another_key_with_the_victims_kid_is_refused() {
    // Another issuer (or an attacker) signs with its own key of the same type and claims the
    // victim's kid: selection by kid finds the victim's key, which refuses the signature.
    let rsa_pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&RsaKeyPair::generate(KeySize::Rsa2048).unwrap())
        .unwrap()
        .as_ref()
        .to_vec();
    for victim_key in crate::signing::keys() {
        let alg = victim_key.alg();
        let other = match alg {
            Algorithm::Rs256
            | Algorithm::Rs384
            | Algorithm::Rs512
            | Algorithm::Ps256
            | Algorithm::Ps384
            | Algorithm::Ps512 => SigningKey::from_pkcs8(alg, &rsa_pkcs8).unwrap(),
            _ => SigningKey::generate(alg).unwrap(),
        };
        assert_ne!(other.kid(), victim_key.kid());
        let header = json!({ "alg": alg.name(), "kid": victim_key.kid() });
        let token = other.sign_compact(header.as_object().unwrap(), CLAIMS).unwrap();
        check(
            &token,
            &jwks(&[victim_key.public_jwk()]),
            Expect::Refused("bad_signature"),
        );
        // And the victim's set with the other key under the same kid is ambiguous, not "first wins".
        let mut twin = other.public_jwk();
        twin["kid"] = json!(victim_key.kid());
        check(
            &token,
            &jwks(&[victim_key.public_jwk(), twin]),
            Expect::Refused("kid_ambiguous"),
        );
    }
}

#[test]
fn hostile_kid_values_are_refused_without_panic() {
    let long_kid = "k".repeat(10_000);
    let kid_upper = kid().to_uppercase();
    let cases: Vec<(String, Expect)> = vec![
        (
            r#""../../../../etc/passwd""#.to_owned(),
            Expect::Refused("kid_not_found"),
        ),
        (
            r#""..\\..\\windows\\win.ini""#.to_owned(),
            Expect::Refused("kid_not_found"),
        ),
        (r#""\"""#.to_owned(), Expect::Refused("kid_not_found")),
        (r#""'""#.to_owned(), Expect::Refused("kid_not_found")),
        (r#""' OR '1'='1""#.to_owned(), Expect::Refused("kid_not_found")),
        (r#""$(reboot)""#.to_owned(), Expect::Refused("kid_not_found")),
        (r#""""#.to_owned(), Expect::Refused("kid_not_found")),
        (format!("\"{long_kid}\""), Expect::Refused("kid_not_found")),
        (format!("\"{kid_upper}\""), Expect::Refused("kid_not_found")),
        (format!("\"{} \"", kid()), Expect::Refused("kid_not_found")),
        (format!("\" {}\"", kid()), Expect::Refused("kid_not_found")),
        // U+0000 is refused in every string of a header, a kid included.
        (r#""a\u0000b""#.to_owned(), Expect::Refused("nul_in_string")),
        (format!(r#""{}\u0000""#, kid()), Expect::Refused("nul_in_string")),
        ("42".to_owned(), Expect::Refused("invalid_kid")),
        ("-1.5e3".to_owned(), Expect::Refused("invalid_kid")),
        (format!(r#"{{"kid":"{}"}}"#, kid()), Expect::Refused("invalid_kid")),
        (format!(r#"["{}"]"#, kid()), Expect::Refused("invalid_kid")),
        ("null".to_owned(), Expect::Refused("invalid_kid")),
        ("true".to_owned(), Expect::Refused("invalid_kid")),
    ];
    for (kid_json, expect) in cases {
        let header = format!(r#"{{"alg":"ES256","kid":{kid_json}}}"#);
        check(&raw_token(header.as_bytes(), CLAIMS), &es256_jwks(), expect);
    }
    // kids compare as exact code points: no Unicode normalization, no case folding.
    let mut cafe = victim().es256.public_jwk();
    cafe["kid"] = json!("caf\u{e9}");
    let keys = jwks(&[cafe]);
    check(
        &raw_token(r#"{"alg":"ES256","kid":"caf\u00e9"}"#.as_bytes(), CLAIMS),
        &keys,
        Expect::Jwt,
    );
    check(
        &raw_token(r#"{"alg":"ES256","kid":"cafe\u0301"}"#.as_bytes(), CLAIMS),
        &keys,
        Expect::Refused("kid_not_found"),
    );
    check(
        &raw_token(r#"{"alg":"ES256","kid":"CAF\u00c9"}"#.as_bytes(), CLAIMS),
        &keys,
        Expect::Refused("kid_not_found"),
    );
}

/// A validly signed token of exactly `len` bytes (padding a claim and, where the base64 length
/// cannot land on `len`, the header's whitespace).
fn token_of_len(len: usize) -> String {
    for spaces in 0..4 {
        let header = format!(r#"{{"alg":"ES256","kid":"{}"{}}}"#, kid(), " ".repeat(spaces));
        for filler in 0..len {
            let payload = format!(r#"{{"sub":"victim","pad":"{}"}}"#, "a".repeat(filler));
            let predicted = b64(&header).len() + 1 + b64(&payload).len() + 1 + 86;
            if predicted == len {
                let token = raw_token(header.as_bytes(), payload.as_bytes());
                assert_eq!(token.len(), len);
                return token;
            }
            if predicted > len {
                break;
            }
        }
    }
    panic!("no token of {len} bytes")
}

#[test]
fn oversized_token_is_refused() {
    let limits = Limits::default();
    assert_eq!(limits.max_token_bytes, 16 * 1024);
    assert_eq!(limits.max_json_depth, 16);
    // At the limit a good token is accepted; one byte more is refused before anything is parsed.
    check(&token_of_len(16 * 1024), &es256_jwks(), Expect::Jwt);
    check(
        &token_of_len(16 * 1024 + 1),
        &es256_jwks(),
        Expect::Refused("token_too_large"),
    );
    check(
        &"a".repeat(16 * 1024 + 1),
        &es256_jwks(),
        Expect::Refused("token_too_large"),
    );
    check(&".".repeat(1 << 20), &es256_jwks(), Expect::Refused("token_too_large"));
    assert_eq!(
        decode_unverified(&token_of_len(16 * 1024 + 1), &limits)
            .err()
            .map(|e| e.code()),
        Some("token_too_large")
    );
    // The limit is the caller's.
    let token = token_of_len(2000);
    let tight = Limits {
        max_token_bytes: 1999,
        ..Limits::default()
    };
    check_with(&token, &es256_jwks(), &tight, Expect::Refused("token_too_large"));
}

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn deeply_nested_json_is_refused_without_stack_overflow() {
    // max_json_depth counts nested objects and arrays, the outermost object included.
    let roomy = Limits {
        max_token_bytes: 1 << 20,
        ..Limits::default()
    };
    let keys = es256_jwks();
    // Header: the object plus 15 arrays = 16 levels is accepted; 17 and beyond are refused.
    let at_limit = header_with(&format!(r#","x":{}"#, nested(15)));
    check_with(&raw_token(&at_limit, CLAIMS), &keys, &roomy, Expect::Jwt);
    for depth in [16, 17, 100, 10_000, 100_000] {
        let header = header_with(&format!(r#","x":{}"#, nested(depth)));
        check_with(
            &raw_token(&header, CLAIMS),
            &keys,
            &roomy,
            Expect::Refused("json_too_deep"),
        );
        let header = header_with(&format!(r#","x":{}{}"#, r#"{"a":"#.repeat(depth), "}".repeat(depth)));
        check_with(
            &raw_token(&header, CLAIMS),
            &keys,
            &roomy,
            Expect::Refused("json_too_deep"),
        );
    }
    // Payload: the same bound applies to claims (verify_jws takes any bytes; verify_jwt parses).
    let at_limit = format!(r#"{{"sub":"victim","x":{}}}"#, nested(15));
    check_with(
        &raw_token(&header_with(""), at_limit.as_bytes()),
        &keys,
        &roomy,
        Expect::Jwt,
    );
    for depth in [16, 17, 10_000, 100_000] {
        let payload = format!(r#"{{"sub":"victim","x":{}}}"#, nested(depth));
        let token = raw_token(&header_with(""), payload.as_bytes());
        check_with(&token, &keys, &roomy, Expect::JwsNotJwt("json_too_deep"));
        let unverified = decode_unverified(&token, &roomy).unwrap();
        assert_eq!(unverified.payload, payload.as_bytes());
    }
    // A JWKS document is bounded too.
    let deep_jwks = format!(r#"{{"keys":[{}]}}"#, nested(100_000));
    if let Ok(set) = Jwks::from_json(deep_jwks.as_bytes()) {
        assert!(set.keys().is_empty(), "a key came out of a 100 000-deep document");
    }
    // The caller's bound is used.
    let shallow = Limits {
        max_json_depth: 2,
        ..roomy
    };
    let header = header_with(r#","x":[[]]"#);
    check_with(
        &raw_token(&header, CLAIMS),
        &keys,
        &shallow,
        Expect::Refused("json_too_deep"),
    );
}

#[test]
fn duplicate_members_are_refused() {
    // "first wins" vs "last wins" differs between parsers: a token must not mean two things.
    let keys = es256_jwks();
    let k = kid();
    let headers = [
        format!(r#"{{"alg":"ES256","kid":"{k}","alg":"none"}}"#),
        format!(r#"{{"alg":"none","kid":"{k}","alg":"ES256"}}"#),
        format!(r#"{{"alg":"ES256","alg":"ES256","kid":"{k}"}}"#),
        format!(r#"{{"alg":"ES256","kid":"{k}","kid":"other"}}"#),
        // The same name spelled with an escape is the same member.
        format!(r#"{{"alg":"ES256","\u0061lg":"none","kid":"{k}"}}"#),
        format!(r#"{{"alg":"ES256","kid":"{k}","x":{{"a":1,"a":2}}}}"#),
    ];
    for header in headers {
        check(
            &raw_token(header.as_bytes(), CLAIMS),
            &keys,
            Expect::Refused("duplicate_member"),
        );
    }
    let payloads: [&[u8]; 5] = [
        br#"{"sub":"victim","sub":"admin"}"#,
        br#"{"sub":"admin","aud":"keyless","sub":"victim"}"#,
        br#"{"sub":"victim","\u0073ub":"admin"}"#,
        br#"{"sub":"victim","x":{"a":1,"a":1}}"#,
        br#"{"sub":"victim","x":[{"a":1},{"b":1,"b":2}]}"#,
    ];
    for payload in payloads {
        check(
            &raw_token(&header_with(""), payload),
            &keys,
            Expect::JwsNotJwt("duplicate_member"),
        );
    }
}

#[test]
fn non_utf8_json_is_refused() {
    let keys = es256_jwks();
    let payloads: [&[u8]; 4] = [
        b"{\"sub\":\"\xff\"}",
        b"{\"sub\":\"\xc0\xaf\"}",
        b"{\"sub\":\"\xed\xa0\x80\"}",
        b"\xef\xbb\xbf{\"sub\":\"victim\"}",
    ];
    for payload in payloads {
        check(
            &raw_token(&header_with(""), payload),
            &keys,
            Expect::JwsNotJwt("invalid_json"),
        );
    }
    let mut header = header_with(r#","x":"#);
    header.truncate(header.len() - 1);
    header.extend_from_slice(b"\"\xff\"}");
    check(&raw_token(&header, CLAIMS), &keys, Expect::Refused("invalid_json"));
    // UTF-16 JSON is not JSON text for JOSE.
    let utf16: Vec<u8> = r#"{"alg":"ES256"}"#.encode_utf16().flat_map(u16::to_le_bytes).collect();
    check(&raw_token(&utf16, CLAIMS), &keys, Expect::Refused("invalid_json"));
}

#[test]
fn nul_in_strings_is_refused() {
    let keys = es256_jwks();
    for payload in [
        r#"{"sub":"admin\u0000.victim"}"#,
        r#"{"sub":"victim","su\u0000b":"admin"}"#,
        r#"{"sub":"victim","x":["\u0000"]}"#,
    ] {
        check(
            &raw_token(&header_with(""), payload.as_bytes()),
            &keys,
            Expect::JwsNotJwt("nul_in_string"),
        );
    }
    check(
        &raw_token(&header_with(r#","x":"\u0000""#), CLAIMS),
        &keys,
        Expect::Refused("nul_in_string"),
    );
    // A raw control character inside a string is not JSON at all.
    check(
        &raw_token(&header_with(""), b"{\"sub\":\"a\x00b\"}"),
        &keys,
        Expect::JwsNotJwt("invalid_json"),
    );
}

#[test]
fn lone_surrogate_escapes_are_refused() {
    let keys = es256_jwks();
    for payload in [
        r#"{"sub":"\ud800"}"#,
        r#"{"sub":"\udc00"}"#,
        r#"{"sub":"\ud800\u0041"}"#,
        r#"{"sub":"\udfff\ud800"}"#,
        r#"{"\ud800":"victim"}"#,
    ] {
        check(
            &raw_token(&header_with(""), payload.as_bytes()),
            &keys,
            Expect::JwsNotJwt("invalid_json"),
        );
    }
    check(
        &raw_token(&header_with(r#","x":"\ud800""#), CLAIMS),
        &keys,
        Expect::Refused("invalid_json"),
    );
    // A proper pair is fine.
    let verified = check(
        &raw_token(&header_with(""), r#"{"sub":"\ud83d\udd10"}"#.as_bytes()),
        &keys,
        Expect::Jwt,
    )
    .unwrap();
    assert_eq!(verified.payload, r#"{"sub":"\ud83d\udd10"}"#.as_bytes());
}

#[test]
fn crit_and_b64_false_are_refused() {
    // No extension is understood, so any crit is refused (RFC 7515 §4.1.11); b64:false (RFC 7797)
    // changes what is signed and is not supported.
    let keys = es256_jwks();
    for extra in [
        r#","crit":["exp"],"exp":4102444800"#,
        r#","crit":[]"#,
        r#","crit":["kid"]"#,
        r#","crit":"exp""#,
        r#","crit":null"#,
    ] {
        check(
            &raw_token(&header_with(extra), CLAIMS),
            &keys,
            Expect::Refused("crit_unsupported"),
        );
    }
    check(
        &raw_token(&header_with(r#","b64":false"#), CLAIMS),
        &keys,
        Expect::Refused("b64_unsupported"),
    );
    check(
        &raw_token(&header_with(r#","b64":false,"crit":["b64"]"#), CLAIMS),
        &keys,
        Expect::RefusedOneOf(&["crit_unsupported", "b64_unsupported"]),
    );
    // With b64:false the payload segment would be the raw payload: refused however signed.
    let header = header_with(r#","b64":false"#);
    let signing_input = format!("{}.{}", b64(&header), "{\"sub\":\"victim\"}");
    let sig = victim()
        .es256_raw
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .unwrap();
    check(
        &format!("{}..{}", b64(&header), b64(sig.as_ref())),
        &keys,
        Expect::Refused("b64_unsupported"),
    );
}

/// A victim token whose segment `index` contains a '-' or '_' and ends in a character with
/// unused low bits (its length is not a multiple of 4), for the base64 tests.
fn base64_probe(index: usize) -> String {
    for i in 0..10_000 {
        // '?' (0x3f) and '>' (0x3e) produce '_' and '-' in many positions.
        let filler = format!("{}{}{i}", "?".repeat(i % 5), ">".repeat(i % 3));
        let header = header_with(&format!(r#","n":"{filler}""#));
        let payload = format!(r#"{{"sub":"victim","n":"{filler}"}}"#);
        let token = raw_token(&header, payload.as_bytes());
        let segment = token.split('.').nth(index).unwrap();
        if segment.contains(['-', '_']) && !segment.len().is_multiple_of(4) {
            return token;
        }
    }
    panic!("no probe token found for segment {index}")
}

/// `token` with its signature replaced by the victim's signature over its first two segments
/// exactly as they are.
fn resign(token: &str) -> String {
    let (signing_input, _) = token.rsplit_once('.').unwrap();
    let sig = victim()
        .es256_raw
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .unwrap();
    format!("{signing_input}.{}", b64(sig.as_ref()))
}

/// A named rewrite of one segment.
type SegmentEdit = (&'static str, Box<dyn Fn(&str) -> String>);

/// `token` with segment `index` rewritten by `edit`.
fn edit_segment(token: &str, index: usize, edit: impl Fn(&str) -> String) -> String {
    let mut segments: Vec<String> = token.split('.').map(str::to_owned).collect();
    segments[index] = edit(&segments[index]);
    segments.join(".")
}

#[test]
fn non_canonical_base64_is_refused() {
    let keys = es256_jwks();
    for index in 0..3 {
        let token = base64_probe(index);
        check(&token, &keys, Expect::Jwt);
        let edits: Vec<SegmentEdit> = vec![
            ("'=' padding", Box::new(|s: &str| format!("{s}="))),
            ("'==' padding", Box::new(|s: &str| format!("{s}=="))),
            (
                "standard alphabet '+'",
                Box::new(|s: &str| s.replacen('-', "+", 1).replacen('_', "/", 1)),
            ),
            ("space inside", Box::new(|s: &str| format!("{} {}", &s[..4], &s[4..]))),
            ("leading space", Box::new(|s: &str| format!(" {s}"))),
            ("trailing space", Box::new(|s: &str| format!("{s} "))),
            ("line break", Box::new(|s: &str| format!("{}\n{}", &s[..4], &s[4..]))),
            ("CRLF", Box::new(|s: &str| format!("{}\r\n{}", &s[..4], &s[4..]))),
            ("tab", Box::new(|s: &str| format!("{}\t{}", &s[..4], &s[4..]))),
            (
                "PEM-style wrapping",
                Box::new(|s: &str| {
                    s.as_bytes()
                        .chunks(16)
                        .map(|c| String::from_utf8(c.to_vec()).unwrap())
                        .collect::<Vec<_>>()
                        .join("\n")
                }),
            ),
            (
                "non-canonical trailing bits",
                Box::new(|s: &str| {
                    let last = s.chars().last().unwrap();
                    let unused = if s.len() % 4 == 2 { 4 } else { 2 };
                    let idx = b64_alphabet_index(last);
                    assert_eq!(idx & ((1 << unused) - 1), 0, "canonical input");
                    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
                    format!("{}{}", &s[..s.len() - 1], alphabet.chars().nth(idx | 1).unwrap())
                }),
            ),
            (
                "percent-encoded",
                Box::new(|s: &str| s.replacen('-', "%2D", 1).replacen('_', "%5F", 1)),
            ),
        ];
        for (what, edit) in edits {
            let mut variant = edit_segment(&token, index, edit);
            assert_ne!(variant, token);
            if index < 2 {
                // Re-signed as edited: the issuer itself produced this encoding, so a lenient
                // decoder would accept the token — only strict decoding refuses it.
                variant = resign(&variant);
            }
            let res = crate::judge(&variant, &keys, &Limits::default(), Expect::Refused("invalid_base64"));
            assert!(res.is_ok(), "segment {index}, {what}: {}", res.err().unwrap());
        }
    }
    // Whitespace around the whole token is not trimmed either.
    let token = base64_probe(0);
    for variant in [
        resign(&format!(" {token}")),
        format!("{token}\n"),
        format!("{token}\r\n"),
        resign(&format!("\t{token}")),
    ] {
        check(&variant, &keys, Expect::Refused("invalid_base64"));
    }
}

#[test]
fn header_that_is_not_an_object_is_refused() {
    let keys = es256_jwks();
    for header in ["[]", r#"["alg","ES256"]"#, r#""ES256""#, "null", "42", "true"] {
        check(
            &raw_token(header.as_bytes(), CLAIMS),
            &keys,
            Expect::Refused("not_a_json_object"),
        );
    }
    let k = kid();
    for header in [
        String::new(),
        " ".to_owned(),
        format!(r#"{{"alg":"ES256","kid":"{k}"}} x"#),
        format!(r#"{{"alg":"ES256","kid":"{k}"}}{{}}"#),
        format!(r#"{{"alg":"ES256","kid":"{k}",}}"#),
        format!(r#"{{'alg':'ES256','kid':'{k}'}}"#),
        format!(r#"{{"alg":"ES256",/* c */"kid":"{k}"}}"#),
        format!(r#"{{alg:"ES256","kid":"{k}"}}"#),
        format!(r#"{{"alg":"ES256","kid":"{k}""#),
    ] {
        check(
            &raw_token(header.as_bytes(), CLAIMS),
            &keys,
            Expect::Refused("invalid_json"),
        );
    }
    for payload in ["[]", r#"["sub"]"#, r#""victim""#, "123400", "null"] {
        check(
            &raw_token(&header_with(""), payload.as_bytes()),
            &keys,
            Expect::JwsNotJwt("not_a_json_object"),
        );
    }
    for payload in ["", "{", r#"{"sub":"victim"} x"#, "{'sub':'victim'}"] {
        check(
            &raw_token(&header_with(""), payload.as_bytes()),
            &keys,
            Expect::JwsNotJwt("invalid_json"),
        );
    }
}

#[test]
fn alg_header_is_matched_exactly() {
    let keys = es256_jwks();
    let k = kid();
    let cases: [(String, Expect); 13] = [
        (r#""es256""#.to_owned(), Expect::Refused("alg_unsupported")),
        (r#""ES256 ""#.to_owned(), Expect::Refused("alg_unsupported")),
        (r#"" ES256""#.to_owned(), Expect::Refused("alg_unsupported")),
        (r#""ES256K""#.to_owned(), Expect::Refused("alg_unsupported")),
        (r#""Ed25519""#.to_owned(), Expect::Refused("alg_unsupported")),
        (r#""EDDSA""#.to_owned(), Expect::Refused("alg_unsupported")),
        (r#""RSA1_5""#.to_owned(), Expect::Refused("alg_unsupported")),
        (r#""HS256""#.to_owned(), Expect::Refused("alg_symmetric")),
        (
            r#""hs512""#.to_owned(),
            Expect::RefusedOneOf(&["alg_symmetric", "alg_unsupported"]),
        ),
        (r#""ES256\u0000""#.to_owned(), Expect::Refused("nul_in_string")),
        (
            "256".to_owned(),
            Expect::RefusedOneOf(&["alg_missing", "alg_unsupported"]),
        ),
        (
            "null".to_owned(),
            Expect::RefusedOneOf(&["alg_missing", "alg_unsupported"]),
        ),
        (
            r#"["ES256"]"#.to_owned(),
            Expect::RefusedOneOf(&["alg_missing", "alg_unsupported"]),
        ),
    ];
    for (alg_json, expect) in cases {
        let header = format!(r#"{{"alg":{alg_json},"kid":"{k}"}}"#);
        check(&raw_token(header.as_bytes(), CLAIMS), &keys, expect);
    }
    let header = format!(r#"{{"kid":"{k}"}}"#);
    check(
        &raw_token(header.as_bytes(), CLAIMS),
        &keys,
        Expect::Refused("alg_missing"),
    );
    check(&raw_token(b"{}", CLAIMS), &keys, Expect::Refused("alg_missing"));
}

/// A public JWK without its `alg` member: type and curve alone must bind it.
fn without_alg(mut jwk: Value) -> Value {
    jwk.as_object_mut().unwrap().remove("alg");
    jwk
}

#[test]
fn alg_and_key_type_confusion_is_refused() {
    let v = victim();
    let keys = crate::signing::keys();
    let by_alg = |alg: Algorithm| keys.iter().find(|k| k.alg() == alg).unwrap();
    // Victim keys, published once without alg (type and curve bind) and once with (alg binds).
    let victims = [
        &v.es256,
        &v.es384,
        &v.es512,
        &v.rs256,
        &v.ed25519,
        by_alg(Algorithm::Ps256),
    ];
    let cases: [(Algorithm, &SigningKey); 13] = [
        (Algorithm::Rs256, &v.es256),
        (Algorithm::Ps256, &v.es256),
        (Algorithm::Es256, &v.es384),
        (Algorithm::Es384, &v.es256),
        (Algorithm::Es512, &v.es256),
        (Algorithm::Es256, &v.es512),
        (Algorithm::Es256, &v.rs256),
        (Algorithm::EdDsa, &v.rs256),
        (Algorithm::EdDsa, &v.es256),
        (Algorithm::Es256, &v.ed25519),
        (Algorithm::Rs256, &v.ed25519),
        (Algorithm::Ps512, &v.ed25519),
        (Algorithm::Es512, &v.es384),
    ];
    for with_alg in [false, true] {
        let published: Vec<Value> = victims
            .iter()
            .map(|k| {
                if with_alg {
                    k.public_jwk()
                } else {
                    without_alg(k.public_jwk())
                }
            })
            .collect();
        let set = jwks(&published);
        for (alg, victim_key) in cases {
            // Signed by a genuine key of the header's algorithm, naming the victim key's kid.
            let header = json!({ "alg": alg.name(), "kid": victim_key.kid() });
            let token = by_alg(alg).sign_compact(header.as_object().unwrap(), CLAIMS).unwrap();
            check(&token, &set, Expect::Refused("key_algorithm_mismatch"));
        }
    }
    // RSA keys carrying an alg are bound to it: PKCS#1 v1.5 and PSS, and the hash, do not mix.
    for (token_alg, key_alg) in [
        (Algorithm::Ps256, Algorithm::Rs256),
        (Algorithm::Rs256, Algorithm::Ps256),
        (Algorithm::Rs384, Algorithm::Rs256),
        (Algorithm::Ps512, Algorithm::Ps256),
    ] {
        let key = SigningKey::from_pkcs8(key_alg, &v.rsa_pkcs8).unwrap();
        let same_key_other_alg = SigningKey::from_pkcs8(token_alg, &v.rsa_pkcs8).unwrap();
        let header = json!({ "alg": token_alg.name(), "kid": key.kid() });
        let token = same_key_other_alg
            .sign_compact(header.as_object().unwrap(), CLAIMS)
            .unwrap();
        check(
            &token,
            &jwks(&[key.public_jwk()]),
            Expect::Refused("key_algorithm_mismatch"),
        );
        // Without alg on the JWK the same token is fine: the key really made that signature.
        check(&token, &jwks(&[without_alg(key.public_jwk())]), Expect::Jwt);
    }
}

#[test]
fn kid_less_tokens_need_exactly_one_fitting_key() {
    // Policy: a token without kid is accepted only when exactly one key of the set fits its alg
    // (key type, curve and the key's own alg). Keys that cannot verify that alg do not count,
    // so an issuer publishing one EC key and one RSA key still verifies kid-less tokens; two
    // fitting keys make the token ambiguous, and no key is tried "until one works".
    let v = victim();
    let other_es256 = SigningKey::generate(Algorithm::Es256).unwrap();
    let token = raw_token(br#"{"alg":"ES256"}"#, CLAIMS);
    let fits_one = [
        vec![v.es256.public_jwk(), v.rs256.public_jwk()],
        vec![v.es256.public_jwk(), v.es384.public_jwk(), v.ed25519.public_jwk()],
        vec![without_alg(v.es256.public_jwk()), without_alg(v.rs256.public_jwk())],
    ];
    for set in fits_one {
        check(&token, &jwks(&set), Expect::Jwt);
    }
    // An RSA key whose own alg is PS256 does not fit RS256; two RSA keys without alg both do.
    let rs256_token = v
        .rs256
        .sign_compact(json!({ "alg": "RS256" }).as_object().unwrap(), CLAIMS)
        .unwrap();
    let ps256_key = crate::signing::keys()
        .iter()
        .find(|k| k.alg() == Algorithm::Ps256)
        .unwrap();
    check(
        &rs256_token,
        &jwks(&[ps256_key.public_jwk(), v.rs256.public_jwk()]),
        Expect::Jwt,
    );
    check(
        &rs256_token,
        &jwks(&[ps256_key.public_jwk(), without_alg(v.rs256.public_jwk())]),
        Expect::Jwt,
    );
    check(
        &rs256_token,
        &jwks(&[without_alg(ps256_key.public_jwk()), without_alg(v.rs256.public_jwk())]),
        Expect::Refused("kid_ambiguous"),
    );
    let fits_two = [
        vec![v.es256.public_jwk(), other_es256.public_jwk()],
        vec![without_alg(v.es256.public_jwk()), without_alg(other_es256.public_jwk())],
        vec![other_es256.public_jwk(), v.rs256.public_jwk(), v.es256.public_jwk()],
    ];
    for set in fits_two {
        check(&token, &jwks(&set), Expect::Refused("kid_ambiguous"));
    }
    // No fitting key at all.
    check(
        &token,
        &jwks(&[v.rs256.public_jwk(), v.es384.public_jwk()]),
        Expect::RefusedOneOf(&["kid_not_found", "kid_ambiguous"]),
    );
    check(
        &token,
        &jwks(&[]),
        Expect::RefusedOneOf(&["kid_not_found", "kid_ambiguous"]),
    );
    // A kid naming one fitting key and one key of another type selects the fitting one; a kid
    // naming two fitting keys is ambiguous.
    let mut rsa_same_kid = v.rs256.public_jwk();
    rsa_same_kid["kid"] = json!(kid());
    let mut es_same_kid = other_es256.public_jwk();
    es_same_kid["kid"] = json!(kid());
    let token = raw_token(&header_with(""), CLAIMS);
    check(&token, &jwks(&[rsa_same_kid, v.es256.public_jwk()]), Expect::Jwt);
    check(
        &token,
        &jwks(&[es_same_kid, v.es256.public_jwk()]),
        Expect::Refused("kid_ambiguous"),
    );
}
