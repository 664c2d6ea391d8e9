//! The RFC examples, verbatim: RFC 7515 A.2 (RS256) and A.3 (ES256), RFC 7520 §4.1 (RS256),
//! §4.2 (PS384) and §4.3 (ES512), RFC 8037 A.3/A.4 (Ed25519), RFC 7638 §3.1 (thumbprint).
//!
//! Provenance: the RFC 7515, RFC 8037 and RFC 7638 values are the RFCs' own; the RFC 7520 keys
//! and Figures 13/20/27 are taken from the `rfc7520` groups of Wycheproof's
//! `json_web_signature_test.json` with Wycheproof's added `alg` member removed (the RFC's keys
//! carry none). Every value was checked against an independent implementation before it was
//! kept. RFC 7520's payload is text, not JSON: `verify_jws` accepts it and `verify_jwt` refuses it
//! as `invalid_json` (it is not JSON at all, so not merely "not an object").

use keyless_jose::{Algorithm, Jwk, SigningKey};
use serde_json::{Map, Value, json};

use crate::{Expect, check, jwks, rfc7638_thumbprint, unb64};

/// RFC 7515 A.1–A.4's JWT claims set, as the example encodes it (CRLF and spaces included).
const RFC7515_PAYLOAD_B64: &str =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";

/// RFC 7515 A.2.1: the RSA key's modulus (e = AQAB).
const RFC7515_A2_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";

/// RFC 7515 A.2.1: the complete JWS.
const RFC7515_A2_JWS: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

/// RFC 7515 A.3.1: the P-256 key's public point.
const RFC7515_A3_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const RFC7515_A3_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

/// RFC 7515 A.3.1: the complete JWS.
const RFC7515_A3_JWS: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

/// RFC 7520 §4 (Figure 5): the payload every example signs.
const RFC7520_PAYLOAD: &str = "It\u{2019}s a dangerous business, Frodo, going out your door. You step onto the road, and if you don't keep your feet, there\u{2019}s no knowing where you might be swept off to.";

const RFC7520_KID: &str = "bilbo.baggins@hobbiton.example";

/// RFC 7520 Figures 3/4: the RSA key (public and private members).
const RFC7520_RSA_N: &str = "n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw";
const RFC7520_RSA_D: &str = "bWUC9B-EFRIo8kpGfh0ZuyGPvMNKvYWNtB_ikiH9k20eT-O1q_I78eiZkpXxXQ0UTEs2LsNRS-8uJbvQ-A1irkwMSMkK1J3XTGgdrhCku9gRldY7sNA_AKZGh-Q661_42rINLRCe8W-nZ34ui_qOfkLnK9QWDDqpaIsA-bMwWWSDFu2MUBYwkHTMEzLYGqOe04noqeq1hExBTHBOBdkMXiuFhUq1BU6l-DqEiWxqg82sXt2h-LMnT3046AOYJoRioz75tSUQfGCshWTBnP5uDjd18kKhyv07lhfSJdrPdM5Plyl21hsFf4L_mHCuoFau7gdsPfHPxxjVOcOpBrQzwQ";
const RFC7520_RSA_P: &str = "3Slxg_DwTXJcb6095RoXygQCAZ5RnAvZlno1yhHtnUex_fp7AZ_9nRaO7HX_-SFfGQeutao2TDjDAWU4Vupk8rw9JR0AzZ0N2fvuIAmr_WCsmGpeNqQnev1T7IyEsnh8UMt-n5CafhkikzhEsrmndH6LxOrvRJlsPp6Zv8bUq0k";
const RFC7520_RSA_Q: &str = "uKE2dh-cTf6ERF4k4e_jy78GfPYUIaUyoSSJuBzp3Cubk3OCqs6grT8bR_cu0Dm1MZwWmtdqDyI95HrUeq3MP15vMMON8lHTeZu2lmKvwqW7anV5UzhM1iZ7z4yMkuUwFWoBvyY898EXvRD-hdqRxHlSqAZ192zB3pVFJ0s7pFc";
const RFC7520_RSA_DP: &str = "B8PVvXkvJrj2L-GYQ7v3y9r6Kw5g9SahXBwsWUzp19TVlgI-YV85q1NIb1rxQtD-IsXXR3-TanevuRPRt5OBOdiMGQp8pbt26gljYfKU_E9xn-RULHz0-ed9E9gXLKD4VGngpz-PfQ_q29pk5xWHoJp009Qf1HvChixRX59ehik";
const RFC7520_RSA_DQ: &str = "CLDmDGduhylc9o7r84rEUVn7pzQ6PF83Y-iBZx5NT-TpnOZKF1pErAMVeKzFEl41DlHHqqBLSM0W1sOFbwTxYWZDm6sI6og5iTbwQGIC3gnJKbi_7k_vJgGHwHxgPaX2PnvP-zyEkDERuf-ry4c_Z11Cq9AqC2yeL6kdKT1cYF8";
const RFC7520_RSA_QI: &str = "3PiqvXQN0zwMeE-sBvZgi289XP9XCQF3VWqPzMKnIgQp7_Tugo6-NZBKCQsMf3HaEGBjTVJs_jcK8-TRXvaKe-7ZMaQj8VfBdYkssbu0NKDDhjJ-GtiseaDVWt7dcH0cfwxgFUHpQh7FoCrjFJ6h6ZEpMF6xmujs4qMpPz8aaI4";

/// RFC 7520 Figure 2: the P-521 key.
const RFC7520_EC_X: &str = "AHKZLLOsCOzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_oJXu9A5RkTKqjqvjyekWF-7ytDyRXYgCF5cj0Kt";
const RFC7520_EC_Y: &str = "AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfmC6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR1";
const RFC7520_EC_D: &str = "AAhRON2r9cqXX1hg-RoI6R1tX5p2rUAYdmpHZoC1XNM56KtscrX6zbKipQrCW9CGZH3T4ubpnoTKLDYJ_fF3_rJt";

/// RFC 7520 Figure 13: RS256 (deterministic, so keyless must reproduce it byte for byte).
const RFC7520_FIGURE_13: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9.SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcmUgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4.MRjdkly7_-oTPTS3AXP41iQIGKa80A0ZmTuV5MEaHoxnW2e5CZ5NlKtainoFmKZopdHM1O2U4mwzJdQx996ivp83xuglII7PNDi84wnB-BDkoBwA78185hX-Es4JIwmDLJK3lfWRa-XtL0RnltuYv746iYTh_qHRD68BNt1uSNCrUCTJDt5aAE6x8wW1Kt9eRo4QPocSadnHXFxnt8Is9UzpERV0ePPQdLuW3IS_de3xyIrDaLGdjluPxUAhb6L2aXic1U12podGU0KLUQSE_oI-ZnmKJ3F4uOZDnd6QZWJushZ41Axf_fcIe8u9ipH84ogoree7vjbU5y18kDquDg";

/// RFC 7520 Figure 20: PS384.
const RFC7520_FIGURE_20: &str = "eyJhbGciOiJQUzM4NCIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9.SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcmUgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4.cu22eBqkYDKgIlTpzDXGvaFfz6WGoz7fUDcfT0kkOy42miAh2qyBzk1xEsnk2IpN6-tPid6VrklHkqsGqDqHCdP6O8TTB5dDDItllVo6_1OLPpcbUrhiUSMxbbXUvdvWXzg-UD8biiReQFlfz28zGWVsdiNAUf8ZnyPEgVFn442ZdNqiVJRmBqrYRXe8P_ijQ7p8Vdz0TTrxUeT3lm8d9shnr2lfJT8ImUjvAA2Xez2Mlp8cBE5awDzT0qI0n6uiP1aCN_2_jLAeQTlqRHtfa64QQSUmFAAjVKPbByi7xho0uTOcbH510a6GYmJUAfmWjwZ6oD4ifKo8DYM-X72Eaw";

/// RFC 7520 Figure 27: ES512.
const RFC7520_FIGURE_27: &str = "eyJhbGciOiJFUzUxMiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9.SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcmUgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4.AE_R_YZCChjn4791jSQCrdPZCNYqHXCTZH0-JZGYNlaAjP2kqaluUIIUnC9qvbu9Plon7KRTzoNEuT4Va2cmL1eJAQy3mtPBu_u_sDDyYjnAMDxXPn7XrT0lw-kvAD890jl8e2puQens_IEKBpHABlsbEPX6sFY8OcGDqoRuBomu9xQ2";

/// RFC 8037 A.1/A.2: the Ed25519 key.
const RFC8037_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
/// RFC 8037 A.3: its thumbprint.
const RFC8037_THUMBPRINT: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
/// RFC 8037 A.4: "Example of Ed25519 signing" signed with it.
const RFC8037_A4_JWS: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

/// RFC 7638 §3.1: the RSA key (RFC 7517 A.1's "2011-04-29") and its thumbprint.
const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
const RFC7638_THUMBPRINT: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

/// RFC 7520's RSA key as the RFC gives it (Figure 4: public and private members, no alg).
fn rfc7520_rsa_jwk() -> Value {
    json!({
        "kty": "RSA", "kid": RFC7520_KID, "use": "sig",
        "n": RFC7520_RSA_N, "e": "AQAB", "d": RFC7520_RSA_D, "p": RFC7520_RSA_P, "q": RFC7520_RSA_Q,
        "dp": RFC7520_RSA_DP, "dq": RFC7520_RSA_DQ, "qi": RFC7520_RSA_QI
    })
}

/// RFC 7520's P-521 key as the RFC gives it (Figure 2, no alg).
fn rfc7520_ec_jwk() -> Value {
    json!({
        "kty": "EC", "kid": RFC7520_KID, "use": "sig", "crv": "P-521",
        "x": RFC7520_EC_X, "y": RFC7520_EC_Y, "d": RFC7520_EC_D
    })
}

fn rfc8037_jwk() -> Value {
    json!({ "kty": "OKP", "crv": "Ed25519", "d": RFC8037_D, "x": RFC8037_X })
}

fn assert_rfc7515_claims(claims: &Map<String, Value>) {
    assert_eq!(claims.get("iss"), Some(&json!("joe")));
    assert_eq!(claims.get("exp"), Some(&json!(1_300_819_380)));
    assert_eq!(claims.get("http://example.com/is_root"), Some(&json!(true)));
    assert_eq!(claims.len(), 3);
}

#[test]
fn rfc7515_a2_rs256_jwt_verifies() {
    let keys = jwks(&[json!({ "kty": "RSA", "n": RFC7515_A2_N, "e": "AQAB" })]);
    let verified = check(RFC7515_A2_JWS, &keys, Expect::Jwt).unwrap();
    assert_eq!(verified.header.alg, Algorithm::Rs256);
    assert_eq!(verified.header.kid, None);
    assert_eq!(verified.payload, unb64(RFC7515_PAYLOAD_B64));
    let claims = keyless_jose::verify_jwt(RFC7515_A2_JWS, &keys, &keyless_jose::Limits::default()).unwrap();
    assert_rfc7515_claims(&claims.claims);
}

#[test]
fn rfc7515_a3_es256_jwt_verifies() {
    let keys = jwks(&[json!({ "kty": "EC", "crv": "P-256", "x": RFC7515_A3_X, "y": RFC7515_A3_Y })]);
    let verified = check(RFC7515_A3_JWS, &keys, Expect::Jwt).unwrap();
    assert_eq!(verified.header.alg, Algorithm::Es256);
    let claims = keyless_jose::verify_jwt(RFC7515_A3_JWS, &keys, &keyless_jose::Limits::default()).unwrap();
    assert_rfc7515_claims(&claims.claims);
}

#[test]
fn rfc7520_4_1_rs256_figure13_verifies() {
    let keys = jwks(&[rfc7520_rsa_jwk()]);
    let verified = check(RFC7520_FIGURE_13, &keys, Expect::JwsNotJwt("invalid_json")).unwrap();
    assert_eq!(verified.header.alg, Algorithm::Rs256);
    assert_eq!(verified.header.kid.as_deref(), Some(RFC7520_KID));
    assert_eq!(verified.payload, RFC7520_PAYLOAD.as_bytes());
    assert_eq!(verified.key_thumbprint, rfc7638_thumbprint(&rfc7520_rsa_jwk()));
}

#[test]
fn rfc7520_4_1_rs256_signing_reproduces_figure13() {
    // RSASSA-PKCS1-v1_5 is deterministic: keyless's signer must produce the RFC's bytes.
    let der = rsa_pkcs8(&[
        RFC7520_RSA_N,
        "AQAB",
        RFC7520_RSA_D,
        RFC7520_RSA_P,
        RFC7520_RSA_Q,
        RFC7520_RSA_DP,
        RFC7520_RSA_DQ,
        RFC7520_RSA_QI,
    ]);
    let key = SigningKey::from_pkcs8(Algorithm::Rs256, &der).unwrap();
    assert_eq!(key.kid(), rfc7638_thumbprint(&rfc7520_rsa_jwk()));
    let header = json!({ "alg": "RS256", "kid": RFC7520_KID });
    let token = key
        .sign_compact(header.as_object().unwrap(), RFC7520_PAYLOAD.as_bytes())
        .unwrap();
    assert_eq!(token, RFC7520_FIGURE_13);
}

#[test]
fn rfc7520_4_2_ps384_figure20_verifies() {
    let keys = jwks(&[rfc7520_rsa_jwk()]);
    let verified = check(RFC7520_FIGURE_20, &keys, Expect::JwsNotJwt("invalid_json")).unwrap();
    assert_eq!(verified.header.alg, Algorithm::Ps384);
    assert_eq!(verified.payload, RFC7520_PAYLOAD.as_bytes());
}

#[test]
fn rfc7520_4_2_figure20_is_refused_by_a_key_whose_alg_disagrees() {
    // Wycheproof's copy of the key says alg PS256; a JWK's own alg binds it (RFC 7517 §4.4).
    let mut key = rfc7520_rsa_jwk();
    key["alg"] = json!("PS256");
    check(
        RFC7520_FIGURE_20,
        &jwks(&[key]),
        Expect::Refused("key_algorithm_mismatch"),
    );
}

#[test]
fn rfc7520_4_3_es512_figure27_verifies() {
    let keys = jwks(&[rfc7520_ec_jwk()]);
    let verified = check(RFC7520_FIGURE_27, &keys, Expect::JwsNotJwt("invalid_json")).unwrap();
    assert_eq!(verified.header.alg, Algorithm::Es512);
    assert_eq!(verified.payload, RFC7520_PAYLOAD.as_bytes());
    assert_eq!(verified.key_thumbprint, rfc7638_thumbprint(&rfc7520_ec_jwk()));
}

#[test]
fn rfc7520_p521_key_with_unregistered_alg_es521_is_refused() {
    let mut key = rfc7520_ec_jwk();
    key["alg"] = json!("ES521");
    let err = Jwk::from_value(&key).err().map(|e| e.code());
    assert_eq!(err, Some("unknown_alg"));
}

#[test]
fn rfc8037_a4_ed25519_verifies() {
    // The RFC's JWK carries the private scalar d: it is ignored, only the public part is used.
    let jwk = Jwk::from_json(rfc8037_jwk().to_string().as_bytes()).unwrap();
    assert_eq!(jwk.thumbprint(), RFC8037_THUMBPRINT);
    let public = jwk.public_json();
    assert_eq!(public.get("d"), None, "public_json must not carry the private key");
    assert_eq!(public["x"], json!(RFC8037_X));
    let keys = jwks(&[rfc8037_jwk()]);
    let verified = check(RFC8037_A4_JWS, &keys, Expect::JwsNotJwt("invalid_json")).unwrap();
    assert_eq!(verified.header.alg, Algorithm::EdDsa);
    assert_eq!(verified.payload, b"Example of Ed25519 signing");
    assert_eq!(verified.key_thumbprint, RFC8037_THUMBPRINT);
}

#[test]
fn rfc8037_a3_thumbprint_of_the_public_key() {
    let public = json!({ "kty": "OKP", "crv": "Ed25519", "x": RFC8037_X });
    assert_eq!(rfc7638_thumbprint(&public), RFC8037_THUMBPRINT);
    assert_eq!(Jwk::from_value(&public).unwrap().thumbprint(), RFC8037_THUMBPRINT);
}

#[test]
fn rfc8037_a4_signing_reproduces_the_example() {
    // Ed25519 is deterministic: keyless's signer must produce the RFC's bytes.
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    ];
    der.extend(unb64(RFC8037_D));
    let key = SigningKey::from_pkcs8(Algorithm::EdDsa, &der).unwrap();
    assert_eq!(key.kid(), RFC8037_THUMBPRINT);
    let header = json!({ "alg": "EdDSA" });
    let token = key
        .sign_compact(header.as_object().unwrap(), b"Example of Ed25519 signing")
        .unwrap();
    assert_eq!(token, RFC8037_A4_JWS);
}

#[test]
fn rfc7638_3_1_thumbprint() {
    // kid and alg are not part of the thumbprint.
    let jwk = json!({ "kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29" });
    assert_eq!(rfc7638_thumbprint(&jwk), RFC7638_THUMBPRINT);
    let parsed = Jwk::from_value(&jwk).unwrap();
    assert_eq!(parsed.thumbprint(), RFC7638_THUMBPRINT);
    assert_eq!(parsed.kid(), Some("2011-04-29"));
    assert_eq!(parsed.alg(), Some(Algorithm::Rs256));
}

/// A PKCS#8 `PrivateKeyInfo` for an RSA key given as JWK members n, e, d, p, q, dp, dq, qi.
fn rsa_pkcs8(members: &[&str; 8]) -> Vec<u8> {
    let mut rsa_private_key = der_integer(&[0]);
    for member in members {
        rsa_private_key.extend(der_integer(&unb64(member)));
    }
    let rsa_private_key = der(0x30, &rsa_private_key);
    // AlgorithmIdentifier { rsaEncryption (1.2.840.113549.1.1.1), NULL }
    let algorithm = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut info = der_integer(&[0]);
    info.extend(algorithm);
    info.extend(der(0x04, &rsa_private_key));
    der(0x30, &info)
}

/// A DER INTEGER holding the unsigned big-endian `value`.
fn der_integer(value: &[u8]) -> Vec<u8> {
    let start = value
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(value.len().saturating_sub(1));
    let mut body = value[start..].to_vec();
    if body.first().is_none_or(|b| b & 0x80 != 0) {
        body.insert(0, 0);
    }
    der(0x02, &body)
}

/// A DER TLV.
fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = body.len();
    if len < 0x80 {
        out.push(u8::try_from(len).unwrap());
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | u8::try_from(bytes.len()).unwrap());
        out.extend(bytes);
    }
    out.extend_from_slice(body);
    out
}
