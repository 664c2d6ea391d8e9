//! Every case of Project Wycheproof's JWS and JWK vectors, under keyless's policy.
//!
//! Data (`data/wycheproof/`, copied unchanged): "Data files from the C2SP/wycheproof repository
//! (`testvectors_v1/json_web_signature_test.json`, `json_web_key_test.json`), licensed Apache-2.0
//! by their authors. Format: `testGroups[]` each with a `private` (and sometimes `public`) JWK and
//! `tests[]` with `tcId`, `comment`, `flags`, `jws` (compact string, or a JSON-serialization
//! object) and `result` (`valid` / `invalid`)."
//!
//! Each group's key set is its `public` member or, when absent, the public part of `private`
//! (private members removed; an `oct` key stays `oct` and is refused by policy). Every `invalid`
//! case must be refused. Every `valid` case must be accepted by `verify_jws`, except the cases
//! named in [`POLICY_REFUSALS`], which must be refused with exactly the code named there. The
//! table must stay exact: a listed case that is no longer refused for that reason fails the test.

use std::collections::BTreeMap;

use keyless_jose::{Jwks, Limits, decode_unverified};
use serde_json::{Value, json};

use crate::{Expect, judge, unb64};

const JWS: &str = "json_web_signature_test.json";
const JWK: &str = "json_web_key_test.json";
const JWS_DATA: &str = include_str!("data/wycheproof/json_web_signature_test.json");
const JWK_DATA: &str = include_str!("data/wycheproof/json_web_key_test.json");

/// `valid` cases keyless refuses, each with the exact code and the policy that refuses it:
/// (tcId, file, code, why).
const POLICY_REFUSALS: &[(u64, &str, &str, &str)] = &[
    // Symmetric algorithms are refused by policy (DESIGN.md §1): the header's HS* is refused
    // before any key is looked at, so the code is alg_symmetric even though the group's oct key
    // was also skipped (unsupported_kty).
    (1, JWS, "alg_symmetric", "HS256 token, oct key"),
    (348, JWS, "alg_symmetric", "RFC 7520 Figure 35, HS256"),
    (352, JWS, "alg_symmetric", "RFC 7520 Figure 35, HS256"),
    (357, JWS, "alg_symmetric", "HS256 MAC"),
    (358, JWS, "alg_symmetric", "HS256 MAC, edge case"),
    (359, JWS, "alg_symmetric", "HS256 MAC, edge case"),
    (376, JWS, "alg_symmetric", "HS256 with spaces in the header JSON"),
    (
        377,
        JWS,
        "alg_symmetric",
        "HS256 with a tab and newline in the header JSON",
    ),
    (2, JWK, "alg_symmetric", "HS256 with a keyset of two oct keys"),
    (13, JWK, "alg_symmetric", "HS256 with a long oct key"),
    (14, JWK, "alg_symmetric", "HS384 with a long oct key"),
    (15, JWK, "alg_symmetric", "HS512 with a long oct key"),
    // Canonical base64url only: Wycheproof marks valid a token whose header segment carries a
    // '?' that lenient decoders skip; we refuse it while decoding the header.
    (
        372,
        JWS,
        "invalid_base64",
        "'?' inserted in the header segment (and HS256)",
    ),
    // Same with the '?' in the payload segment: the header (HS256) is judged before the payload
    // is decoded — nothing after the header is parsed before the signature is checked — so the
    // algorithm policy is what refuses it.
    (
        373,
        JWS,
        "alg_symmetric",
        "'?' inserted in the payload segment, HS256 header",
    ),
    // A JWK's own `alg` must agree with the token's: Wycheproof's copy of the RFC 7520 RSA key
    // carries alg PS256 while Figure 20 is signed with PS384 (the RFC's key has no alg; see
    // rfc_examples.rs for the RFC form, which is accepted).
    (
        346,
        JWS,
        "key_algorithm_mismatch",
        "RFC 7520 Figure 20 (PS384) against a key with alg PS256",
    ),
    (
        350,
        JWS,
        "key_algorithm_mismatch",
        "RFC 7520 Figure 20 (PS384) against a key with alg PS256 and key_ops [verify]",
    ),
    // Wycheproof's copy of the RFC 7520 P-521 key carries alg "ES521", which is no registered
    // JWS algorithm (ES512 is): the key is skipped as unknown_alg, so no key has the token's kid.
    (
        347,
        JWS,
        "kid_not_found",
        "RFC 7520 Figure 27 (ES512); the only key says alg ES521 and is skipped",
    ),
    (
        351,
        JWS,
        "kid_not_found",
        "RFC 7520 Figure 27 (ES512); the only key says alg ES521 (key_ops [verify]) and is skipped",
    ),
];

/// `invalid` cases whose reason is unambiguous, asserted with that exact code. Other invalid
/// cases need only be refused. (tcId, file, code)
const INVALID_CODES: &[(u64, &str, &str)] = &[
    (31, JWS, "alg_symmetric"),
    // An attacker's jwk header is ignored: the victim's key (same kid) refuses the signature.
    (32, JWS, "bad_signature"),
    // WrongPrimitive: a PS512 header over RSxxx/PSxxx signatures of the PS512 key.
    (331, JWS, "bad_signature"),
    (333, JWS, "bad_signature"),
    (335, JWS, "bad_signature"),
    (337, JWS, "bad_signature"),
    (339, JWS, "bad_signature"),
    // WrongPrimitive: the token names another algorithm than the key's own alg PS512.
    (332, JWS, "key_algorithm_mismatch"),
    (334, JWS, "key_algorithm_mismatch"),
    (336, JWS, "key_algorithm_mismatch"),
    (338, JWS, "key_algorithm_mismatch"),
    (340, JWS, "key_algorithm_mismatch"),
    // PS256 signatures of 257, 258, 258 and 254 bytes for a 256-byte modulus.
    (316, JWS, "bad_signature_length"),
    (317, JWS, "bad_signature_length"),
    (318, JWS, "bad_signature_length"),
    (319, JWS, "bad_signature_length"),
    // ES256 signatures of 66 and 514 bytes (JOSE's ECDSA signature is exactly 64 bytes).
    (379, JWS, "bad_signature_length"),
    (380, JWS, "bad_signature_length"),
    (381, JWS, "bad_signature_length"),
    (382, JWS, "bad_signature_length"),
    (383, JWS, "bad_signature_length"),
    (384, JWS, "bad_signature_length"),
    (385, JWS, "bad_signature_length"),
    // Keys refused at JWK parse: the token's kid then names no usable key.
    (6, JWK, "kid_not_found"),
    (7, JWK, "kid_not_found"),
    (8, JWK, "kid_not_found"),
    (9, JWK, "kid_not_found"),
    (19, JWK, "kid_not_found"),
    (20, JWK, "kid_not_found"),
    (21, JWK, "kid_not_found"),
    (22, JWK, "kid_not_found"),
    (23, JWK, "kid_not_found"),
    (24, JWK, "kid_not_found"),
    (353, JWS, "kid_not_found"),
    (354, JWS, "kid_not_found"),
    (355, JWS, "kid_not_found"),
    (356, JWS, "kid_not_found"),
];

/// Groups whose keys are skipped when the JWKS is parsed, identified by one of their tcIds, with
/// the codes a skipped key may carry (several where the key has several faults and which one is
/// reported first is the implementation's choice). Every group not listed skips no key.
const KEY_SKIPS: &[(u64, &str, &[&str], &str)] = &[
    (1, JWS, &["unsupported_kty"], "oct key"),
    (347, JWS, &["unknown_alg"], "alg ES521 on P-521"),
    (348, JWS, &["unsupported_kty"], "oct key"),
    (351, JWS, &["unknown_alg"], "alg ES521 on P-521, key_ops [verify]"),
    (352, JWS, &["unsupported_kty"], "oct key"),
    (353, JWS, &["not_for_signing"], "RSA key with use enc"),
    (354, JWS, &["not_for_signing"], "EC key with use enc"),
    (355, JWS, &["not_for_signing"], "RSA key with key_ops [encrypt]"),
    (356, JWS, &["not_for_signing"], "EC key with key_ops [encrypt]"),
    (357, JWS, &["unsupported_kty"], "oct key"),
    (1, JWK, &["unsupported_kty"], "the oct key of a mixed set"),
    (2, JWK, &["unsupported_kty"], "oct keys"),
    (4, JWK, &["unsupported_kty"], "oct keys"),
    (6, JWK, &["not_for_signing", "unknown_alg"], "alg RSA1_5, use enc"),
    (7, JWK, &["rsa_roca"], "ROCA-vulnerable modulus"),
    (8, JWK, &["rsa_too_small"], "1024-bit modulus"),
    (9, JWK, &["rsa_bad_exponent"], "e = 1"),
    (10, JWK, &["unsupported_kty"], "oct key"),
    (11, JWK, &["unsupported_kty"], "oct key"),
    (12, JWK, &["unsupported_kty"], "oct key"),
    (13, JWK, &["unsupported_kty"], "oct key"),
    (14, JWK, &["unsupported_kty"], "oct key"),
    (15, JWK, &["unsupported_kty"], "oct key"),
    (16, JWK, &["unsupported_kty"], "empty oct key"),
    (17, JWK, &["unsupported_kty"], "empty oct key"),
    (18, JWK, &["unsupported_kty"], "empty oct key"),
    (19, JWK, &["unknown_alg"], "alg ES521 on P-256"),
    (20, JWK, &["unknown_alg"], "alg ES224"),
    (21, JWK, &["not_for_signing"], "use enc"),
    (22, JWK, &["ec_point_invalid"], "point not on P-256"),
    (
        23,
        JWK,
        &["ec_bad_coordinate", "alg_key_mismatch"],
        "crv P-384 with 32-byte coordinates and alg ES256",
    ),
    (
        24,
        JWK,
        &["bad_member", "alg_key_mismatch"],
        "kty RSA with EC members and alg ES256",
    ),
    (25, JWK, &["unsupported_kty"], "AES-GCM oct key"),
    (26, JWK, &["unsupported_kty"], "AES-KW oct key"),
];

/// One Wycheproof case with the key set of its group.
struct Case {
    file: &'static str,
    group: usize,
    tc_id: u64,
    comment: String,
    valid: bool,
    jws: Value,
    jwks_doc: Value,
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (file, data) in [(JWS, JWS_DATA), (JWK, JWK_DATA)] {
        let doc: Value = serde_json::from_str(data).unwrap();
        let mut n_file = 0;
        for (group_idx, group) in doc["testGroups"].as_array().unwrap().iter().enumerate() {
            let jwks_doc = group_jwks(group);
            for test in group["tests"].as_array().unwrap() {
                n_file += 1;
                let result = test["result"].as_str().unwrap();
                assert!(matches!(result, "valid" | "invalid"), "unexpected result {result}");
                cases.push(Case {
                    file,
                    group: group_idx,
                    tc_id: test["tcId"].as_u64().unwrap(),
                    comment: test["comment"].as_str().unwrap_or_default().to_owned(),
                    valid: result == "valid",
                    jws: test["jws"].clone(),
                    jwks_doc: jwks_doc.clone(),
                });
            }
        }
        assert_eq!(n_file, doc["numberOfTests"].as_u64().unwrap(), "{file}: numberOfTests");
    }
    cases
}

/// The group's public keys as a JWKS document: `public`, else `private` without its private
/// members. Both may be one JWK or a `{"keys": [...]}` set.
fn group_jwks(group: &Value) -> Value {
    let keys = group.get("public").unwrap_or(&group["private"]);
    let keys: Vec<Value> = match keys.get("keys") {
        Some(set) => set.as_array().unwrap().clone(),
        None => vec![keys.clone()],
    };
    let public: Vec<Value> = keys
        .into_iter()
        .map(|mut key| {
            let members = key.as_object_mut().unwrap();
            for private in ["d", "p", "q", "dp", "dq", "qi", "oth"] {
                members.remove(private);
            }
            key
        })
        .collect();
    json!({ "keys": public })
}

fn parse_jwks(case: &Case) -> Jwks {
    Jwks::from_json(case.jwks_doc.to_string().as_bytes())
        .unwrap_or_else(|err| panic!("{} tcId {}: the JWKS document is refused: {err}", case.file, case.tc_id))
}

/// The token of a case: compact strings as they are, a JSON serialization as its JSON text.
fn token(case: &Case) -> String {
    match &case.jws {
        Value::String(compact) => compact.clone(),
        other => other.to_string(),
    }
}

/// What an `invalid` case must come out as.
fn invalid_expectation(case: &Case) -> Expect {
    if let Some((_, _, code)) = INVALID_CODES
        .iter()
        .find(|(id, file, _)| *id == case.tc_id && *file == case.file)
    {
        return Expect::Refused(code);
    }
    // The JSON serialization: an object, which the file stores as a string.
    let compact = token(case);
    if compact.trim_start().starts_with('{') {
        return Expect::Refused("json_serialization");
    }
    if compact.split('.').count() != 3 {
        return Expect::Refused("malformed_segments");
    }
    let header_alg = compact
        .split('.')
        .next()
        .and_then(|h| base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, h).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|header| header.get("alg").and_then(Value::as_str).map(str::to_owned));
    if header_alg.is_some_and(|alg| alg.eq_ignore_ascii_case("none")) {
        return Expect::Refused("alg_none");
    }
    Expect::RefusedAny
}

#[test]
fn wycheproof_jose_vectors_come_out_as_the_file_says_under_our_policy() {
    let limits = Limits::default();
    let mut wrong = Vec::new();
    let mut per_file: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut valid_accepted, mut invalid_refused, mut policy_refused) = (0, 0, 0);
    let mut listed_seen = Vec::new();
    let all = cases();
    for case in &all {
        *per_file.entry(case.file).or_default() += 1;
        let jwks = parse_jwks(case);
        let token = token(case);
        let listed = POLICY_REFUSALS
            .iter()
            .find(|(id, file, _, _)| *id == case.tc_id && *file == case.file);
        let expect = match (case.valid, listed) {
            (true, Some((_, _, code, _))) => Expect::Refused(code),
            (true, None) => Expect::Jws,
            (false, Some(_)) => {
                wrong.push(format!(
                    "{} tcId {}: listed in POLICY_REFUSALS but the file says invalid",
                    case.file, case.tc_id
                ));
                continue;
            }
            (false, None) => invalid_expectation(case),
        };
        if listed.is_some() {
            listed_seen.push((case.tc_id, case.file));
        }
        match judge(&token, &jwks, &limits, expect) {
            Err(why) => wrong.push(format!("{} tcId {} ({}): {why}", case.file, case.tc_id, case.comment)),
            Ok(Ok(verified)) => {
                valid_accepted += 1;
                // The accepted payload is the token's, and the key is the group's key of that kid.
                let payload_b64 = token.split('.').nth(1).unwrap();
                if verified.payload != unb64(payload_b64) {
                    wrong.push(format!("{} tcId {}: payload differs", case.file, case.tc_id));
                }
                let key_ok = jwks.keys().iter().any(|jwk| {
                    jwk.thumbprint() == verified.key_thumbprint && jwk.kid() == verified.header.kid.as_deref()
                });
                if !key_ok {
                    wrong.push(format!(
                        "{} tcId {}: key_thumbprint names no key of that kid",
                        case.file, case.tc_id
                    ));
                }
            }
            Ok(Err(_)) if case.valid => policy_refused += 1,
            Ok(Err(_)) => invalid_refused += 1,
        }
    }
    for (id, file, code, why) in POLICY_REFUSALS {
        if !listed_seen.contains(&(*id, *file)) {
            wrong.push(format!(
                "POLICY_REFUSALS lists {file} tcId {id} ({code}: {why}) but no such case"
            ));
        }
    }
    for (id, file, _) in INVALID_CODES {
        if !all
            .iter()
            .any(|case| case.tc_id == *id && case.file == *file && !case.valid)
        {
            wrong.push(format!(
                "INVALID_CODES lists {file} tcId {id}, which is no invalid case"
            ));
        }
    }
    println!(
        "wycheproof jose: {} cases ({}); valid accepted {valid_accepted}, invalid refused {invalid_refused}, \
         policy refusals {policy_refused}, wrong {}",
        all.len(),
        per_file
            .iter()
            .map(|(f, n)| format!("{f}: {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        wrong.len()
    );
    assert!(
        wrong.is_empty(),
        "{} wrong outcomes:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(valid_accepted + invalid_refused + policy_refused, all.len());
    assert_eq!(policy_refused, POLICY_REFUSALS.len());
}

#[test]
fn wycheproof_keys_are_skipped_for_the_named_reason() {
    let all = cases();
    let mut wrong = Vec::new();
    for (id, file, _, _) in KEY_SKIPS {
        if !all.iter().any(|case| case.tc_id == *id && case.file == *file) {
            wrong.push(format!("KEY_SKIPS lists {file} tcId {id}, which does not exist"));
        }
    }
    let mut groups: Vec<(&str, usize)> = all.iter().map(|case| (case.file, case.group)).collect();
    groups.dedup();
    for (file, group) in groups {
        let members: Vec<&Case> = all.iter().filter(|c| c.file == file && c.group == group).collect();
        let first = members[0];
        let jwks = parse_jwks(first);
        let skipped: Vec<(usize, &str)> = jwks.skipped().iter().map(|s| (s.index, s.error.code())).collect();
        let listed = KEY_SKIPS
            .iter()
            .find(|(id, f, _, _)| *f == file && members.iter().any(|c| c.tc_id == *id));
        let at = format!("{file} group of tcId {}", first.tc_id);
        match listed {
            None if skipped.is_empty() => {}
            None => wrong.push(format!("{at}: keys skipped {skipped:?}, none expected")),
            Some((_, _, codes, why)) => {
                if skipped.is_empty() || skipped.iter().any(|(_, code)| !codes.contains(code)) {
                    wrong.push(format!(
                        "{at} ({why}): keys skipped {skipped:?}, expected one of {codes:?}"
                    ));
                }
            }
        }
        // Skipping never loses a key silently: every entry is either usable or listed as skipped.
        let total = first.jwks_doc["keys"].as_array().unwrap().len();
        if jwks.keys().len() + skipped.len() != total {
            wrong.push(format!(
                "{at}: {total} entries, {} usable + {} skipped",
                jwks.keys().len(),
                skipped.len()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn wycheproof_tokens_decode_unverified_agrees_on_structure() {
    // decode_unverified checks structure only: every case whose header and payload are canonical
    // base64url of a strict JSON object header decodes, whatever its algorithm or signature.
    let limits = Limits::default();
    for case in cases() {
        let Value::String(compact) = &case.jws else {
            let err = decode_unverified(&token(&case), &limits).err().map(|e| e.code());
            assert_eq!(err, Some("json_serialization"), "{} tcId {}", case.file, case.tc_id);
            continue;
        };
        let res = decode_unverified(compact, &limits);
        if case.valid
            && !POLICY_REFUSALS
                .iter()
                .any(|(id, f, _, _)| *id == case.tc_id && *f == case.file)
        {
            let unverified =
                res.unwrap_or_else(|err| panic!("{} tcId {}: decode_unverified refused {err}", case.file, case.tc_id));
            assert_eq!(unverified.payload, unb64(compact.split('.').nth(1).unwrap()));
            assert!(unverified.header.contains_key("alg"));
        }
    }
}
