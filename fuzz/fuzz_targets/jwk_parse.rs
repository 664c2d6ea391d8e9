//! Arbitrary bytes as one JWK and as a JWKS document.
//!
//! Beyond "never panics": a JWK that parses re-parses from its own `public_json()` to the same key
//! (thumbprint, `kid`, `alg`, and the algorithms it fits); a JWKS that parses re-parses from its own
//! `public_json()` to the same keys in the same order, none skipped.
#![no_main]

use keyless_jose::{Algorithm, Jwk, Jwks};
use libfuzzer_sys::fuzz_target;

fn same_key(a: &Jwk, b: &Jwk) {
    assert_eq!(a.thumbprint(), b.thumbprint());
    assert_eq!(a.kid(), b.kid());
    assert_eq!(a.alg(), b.alg());
    for alg in Algorithm::ALL {
        assert_eq!(a.fits(alg), b.fits(alg), "fits({alg})");
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(jwk) = Jwk::from_json(data) {
        let again = serde_json::to_vec(&jwk.public_json()).expect("public_json serializes");
        let reparsed = Jwk::from_json(&again).expect("public_json re-parses");
        same_key(&jwk, &reparsed);
    }
    if let Ok(jwks) = Jwks::from_json(data) {
        let again = serde_json::to_vec(&jwks.public_json()).expect("public_json serializes");
        let reparsed = Jwks::from_json(&again).expect("public_json re-parses");
        assert!(reparsed.skipped().is_empty(), "{:?}", reparsed.skipped());
        assert_eq!(jwks.keys().len(), reparsed.keys().len());
        for (a, b) in jwks.keys().iter().zip(reparsed.keys()) {
            same_key(a, b);
        }
    }
});
