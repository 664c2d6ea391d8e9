//! keyless's own signing: sign → verify round trips for all ten algorithms, the published JWKS,
//! and PKCS#8 import, each checked against values computed here independently.

use std::sync::OnceLock;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use keyless_jose::{Algorithm, Jwks, Limits, SigningKey, decode_unverified, public_jwks, verify_jwt};
use serde_json::{Map, Value, json};

use crate::{Expect, b64, check, jwks, rfc7638_thumbprint, unb64};

/// One generated key per algorithm, shared by the tests of this module (RSA generation is slow).
pub(crate) fn keys() -> &'static [SigningKey] {
    static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        Algorithm::ALL
            .iter()
            .map(|alg| SigningKey::generate(*alg).unwrap_or_else(|err| panic!("generate {alg:?}: {err}")))
            .collect()
    })
}

fn signature_len(alg: Algorithm) -> usize {
    match alg {
        Algorithm::Rs256
        | Algorithm::Rs384
        | Algorithm::Rs512
        | Algorithm::Ps256
        | Algorithm::Ps384
        | Algorithm::Ps512 => 256,
        Algorithm::Es256 | Algorithm::EdDsa => 64,
        Algorithm::Es384 => 96,
        Algorithm::Es512 => 132,
    }
}

fn claims() -> Map<String, Value> {
    let claims = json!({
        "iss": "https://issuer.example",
        "sub": "repo:acme/app:ref:refs/heads/main",
        "aud": ["keyless", "other"],
        "iat": 1_700_000_000,
        "exp": 1_700_000_600,
        "nested": { "a": [1, 2.5, null, true], "ü": "\u{1f510}" }
    });
    claims.as_object().unwrap().clone()
}

#[test]
fn algorithm_names_round_trip_and_are_case_sensitive() {
    let names: Vec<&str> = Algorithm::ALL.iter().map(|alg| alg.name()).collect();
    assert_eq!(
        names,
        [
            "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"
        ]
    );
    for alg in Algorithm::ALL {
        assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
        assert_eq!(Algorithm::from_name(&alg.name().to_lowercase()), None);
        assert_eq!(Algorithm::from_name(&format!("{} ", alg.name())), None);
    }
    for refused in [
        "none", "None", "HS256", "HS384", "HS512", "ES256K", "ES521", "EDDSA", "Ed25519", "RSA1_5", "",
    ] {
        assert_eq!(Algorithm::from_name(refused), None, "{refused}");
    }
}

#[test]
fn every_algorithm_signs_a_jwt_that_verifies() {
    for key in keys() {
        let token = key.sign_jwt(&claims()).unwrap();
        let keys = jwks(&[key.public_jwk()]);
        let verified = check(&token, &keys, Expect::Jwt).unwrap();
        assert_eq!(verified.header.alg, key.alg());
        assert_eq!(verified.header.kid.as_deref(), Some(key.kid()));
        assert_eq!(verified.header.typ.as_deref(), Some("JWT"));
        assert_eq!(verified.key_thumbprint, key.kid());
        let jwt = verify_jwt(&token, &keys, &Limits::default()).unwrap();
        assert_eq!(jwt.claims, claims(), "{:?}", key.alg());
        // The header is exactly {alg, kid, typ}.
        let header = decode_unverified(&token, &Limits::default()).unwrap().header;
        let expected = json!({ "alg": key.alg().name(), "kid": key.kid(), "typ": "JWT" });
        assert_eq!(Value::Object(header), expected);
        // JOSE signature sizes: the modulus length for RSA, fixed-length R || S for ECDSA.
        let signature = unb64(token.rsplit('.').next().unwrap());
        assert_eq!(signature.len(), signature_len(key.alg()), "{:?}", key.alg());
    }
}

#[test]
fn every_algorithm_signs_compact_with_the_header_as_given() {
    let payload = [0u8, 1, 2, 0xfe, 0xff, b'.'];
    for key in keys() {
        let header = json!({ "alg": key.alg().name(), "kid": key.kid(), "cty": "octets", "x-extra": [1, "two"] });
        let header = header.as_object().unwrap();
        let token = key.sign_compact(header, &payload).unwrap();
        let keys = jwks(&[key.public_jwk()]);
        let verified = check(&token, &keys, Expect::JwsNotJwt("invalid_json")).unwrap();
        assert_eq!(verified.payload, payload);
        assert_eq!(&verified.header.raw, header);
        assert_eq!(&decode_unverified(&token, &Limits::default()).unwrap().header, header);
    }
}

#[test]
fn public_jwks_parses_back_with_kids_equal_to_rfc7638_thumbprints() {
    let all: Vec<&SigningKey> = keys().iter().collect();
    let doc = public_jwks(&all);
    let entries = doc["keys"].as_array().unwrap();
    assert_eq!(entries.len(), all.len());
    for (entry, key) in entries.iter().zip(&all) {
        assert_eq!(entry["kid"], json!(key.kid()));
        assert_eq!(
            entry["kid"],
            json!(rfc7638_thumbprint(entry)),
            "kid is the RFC 7638 thumbprint"
        );
        assert_eq!(entry["alg"], json!(key.alg().name()));
        assert_eq!(entry["use"], json!("sig"));
        assert_eq!(entry, &key.public_jwk());
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(entry.get(private).is_none(), "published JWK carries {private}");
        }
    }
    let parsed = Jwks::from_json(doc.to_string().as_bytes()).unwrap();
    assert!(parsed.skipped().is_empty());
    assert_eq!(parsed.keys().len(), all.len());
    for (jwk, key) in parsed.keys().iter().zip(&all) {
        assert_eq!(jwk.kid(), Some(key.kid()));
        assert_eq!(jwk.thumbprint(), key.kid());
        assert_eq!(jwk.alg(), Some(key.alg()));
    }
    // Every key's tokens verify against the whole published set, with or without kid: each
    // key carries its alg, so exactly one key of the set fits each algorithm.
    for key in &all {
        let token = key.sign_jwt(&claims()).unwrap();
        let verified = check(&token, &parsed, Expect::Jwt).unwrap();
        assert_eq!(verified.key_thumbprint, key.kid());
        let header = json!({ "alg": key.alg().name() });
        let token = key.sign_compact(header.as_object().unwrap(), b"{}").unwrap();
        let verified = check(&token, &parsed, Expect::Jwt).unwrap();
        assert_eq!(verified.key_thumbprint, key.kid());
    }
}

#[test]
fn pkcs8_round_trip_keeps_the_kid() {
    for key in keys() {
        let reloaded = SigningKey::from_pkcs8(key.alg(), key.pkcs8().der()).unwrap();
        assert_eq!(reloaded.kid(), key.kid());
        assert_eq!(reloaded.public_jwk(), key.public_jwk());
        // The reloaded key signs tokens the original's public key verifies.
        let token = reloaded.sign_jwt(&claims()).unwrap();
        check(&token, &jwks(&[key.public_jwk()]), Expect::Jwt);
    }
}

/// PKCS#8 documents made by aws-lc-rs directly, with the public JWK computed here.
fn foreign_pkcs8() -> Vec<(Vec<Algorithm>, Vec<u8>, Value)> {
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let rsa_public = rsa.public_key();
    let rsa_jwk = json!({
        "kty": "RSA",
        "n": b64(rsa_public.modulus().big_endian_without_leading_zero()),
        "e": b64(rsa_public.exponent().big_endian_without_leading_zero()),
    });
    let rsa_der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&rsa)
        .unwrap()
        .as_ref()
        .to_vec();
    let mut out = vec![(
        vec![
            Algorithm::Rs256,
            Algorithm::Rs384,
            Algorithm::Rs512,
            Algorithm::Ps256,
            Algorithm::Ps384,
            Algorithm::Ps512,
        ],
        rsa_der,
        rsa_jwk,
    )];
    for (alg, signing, crv, len) in [
        (
            Algorithm::Es256,
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            "P-256",
            32,
        ),
        (
            Algorithm::Es384,
            &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            "P-384",
            48,
        ),
        (
            Algorithm::Es512,
            &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
            "P-521",
            66,
        ),
    ] {
        let pair = EcdsaKeyPair::generate(signing).unwrap();
        let point = pair.public_key().as_ref();
        assert_eq!(point.len(), 1 + 2 * len);
        let jwk = json!({ "kty": "EC", "crv": crv, "x": b64(&point[1..=len]), "y": b64(&point[1 + len..]) });
        out.push((vec![alg], pair.to_pkcs8v1().unwrap().as_ref().to_vec(), jwk));
    }
    let ed = Ed25519KeyPair::generate().unwrap();
    let ed_jwk = json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(ed.public_key().as_ref()) });
    out.push((
        vec![Algorithm::EdDsa],
        ed.to_pkcs8v1().unwrap().as_ref().to_vec(),
        ed_jwk.clone(),
    ));
    out.push((vec![Algorithm::EdDsa], ed.to_pkcs8().unwrap().as_ref().to_vec(), ed_jwk));
    out
}

#[test]
fn pkcs8_from_another_implementation_gives_the_rfc7638_kid() {
    for (algs, der, jwk) in foreign_pkcs8() {
        for alg in algs {
            let key = SigningKey::from_pkcs8(alg, &der).unwrap_or_else(|err| panic!("{alg:?}: {err}"));
            assert_eq!(key.kid(), rfc7638_thumbprint(&jwk), "{alg:?}");
            assert_eq!(key.alg(), alg);
            // Verified with the JWK computed here (kid = the thumbprint computed here, no alg).
            let mut published = jwk.clone();
            published["kid"] = json!(rfc7638_thumbprint(&jwk));
            let token = key.sign_jwt(&claims()).unwrap();
            let verified = check(&token, &jwks(&[published]), Expect::Jwt).unwrap();
            assert_eq!(verified.key_thumbprint, key.kid());
        }
    }
}

#[test]
fn pkcs8_of_another_key_type_is_refused() {
    let foreign = foreign_pkcs8();
    let der_of = |alg: Algorithm| {
        foreign
            .iter()
            .find(|(algs, _, _)| algs.contains(&alg))
            .unwrap()
            .1
            .clone()
    };
    let cases = [
        (Algorithm::Es256, der_of(Algorithm::Es384)),
        (Algorithm::Es384, der_of(Algorithm::Es256)),
        (Algorithm::Es512, der_of(Algorithm::Es256)),
        (Algorithm::Es256, der_of(Algorithm::Rs256)),
        (Algorithm::Rs256, der_of(Algorithm::Es256)),
        (Algorithm::Rs256, der_of(Algorithm::EdDsa)),
        (Algorithm::EdDsa, der_of(Algorithm::Es256)),
        (Algorithm::EdDsa, der_of(Algorithm::Ps256)),
        (Algorithm::Es256, b"not a key".to_vec()),
        (Algorithm::Rs256, Vec::new()),
    ];
    for (alg, der) in cases {
        assert!(
            SigningKey::from_pkcs8(alg, &der).is_err(),
            "{alg:?} accepted another key type"
        );
    }
}

#[test]
fn generated_keys_are_fresh() {
    let a = SigningKey::generate(Algorithm::Es256).unwrap();
    let b = SigningKey::generate(Algorithm::Es256).unwrap();
    assert_ne!(a.kid(), b.kid());
    // A token of one is not accepted by the other, although both carry alg ES256.
    let token = a.sign_jwt(&claims()).unwrap();
    let mut forged_kid_header = json!({ "alg": "ES256", "kid": b.kid() });
    let forged = a
        .sign_compact(forged_kid_header.as_object_mut().unwrap(), b"{}")
        .unwrap();
    check(&token, &jwks(&[b.public_jwk()]), Expect::Refused("kid_not_found"));
    check(&forged, &jwks(&[b.public_jwk()]), Expect::Refused("bad_signature"));
}

#[test]
fn debug_output_never_shows_private_key_material() {
    for key in keys() {
        let der = key.pkcs8().der();
        let shown = format!("{key:?} {:?} {key:#?}", key.pkcs8());
        assert!(shown.contains(key.kid()), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
        // Neither the DER, in any common encoding, nor any 16-byte window of it appears.
        let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
        for window in der.windows(16).step_by(8) {
            assert!(!shown.contains(&b64(window)), "base64url of private bytes in {shown}");
        }
        assert!(
            !shown.contains(&hex[hex.len() - 32..]),
            "hex of private bytes in {shown}"
        );
        assert!(
            !shown.contains(&format!("{:?}", &der[der.len() - 8..])),
            "byte list in {shown}"
        );
    }
}
