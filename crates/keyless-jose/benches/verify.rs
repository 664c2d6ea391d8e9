//! What the JOSE layer costs on top of the signature check itself.
//!
//! For each of RS256, PS256, ES256, ES384 and EdDSA, one criterion group (`jose_<ALG>`) holds,
//! side by side on the same key and the same GitHub-Actions-shaped token (32 claims, ~1 KB of JSON):
//! - `verify_jwt`: the full path — split, base64url, strict header JSON, key selection in a
//!   4-key JWKS, signature, strict claims JSON;
//! - `verify_jws`: the same without parsing the claims (the payload stays bytes), which splits the
//!   JOSE overhead into the signature path and the claims parse;
//! - `aws_lc_rs`: the bare primitive, `ParsedPublicKey::verify_sig` on the same signing input
//!   with the key parsed and the signature decoded outside the loop;
//! - `decode_unverified`: split and decode only, no signature.
//!
//! Run with `cargo bench -p keyless-jose --bench verify -- --noplot`, or `cargo xtask bench jose`
//! for a table of medians and the JOSE/raw ratio.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

use std::hint::black_box;

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use keyless_jose::{Algorithm, Jwks, Limits, SigningKey, decode_unverified, public_jwks, verify_jws, verify_jwt};
use serde_json::{Map, Value, json};

const IAT: i64 = 1_795_867_180;

/// A GitHub Actions OIDC token's claim set, as GitHub issues it for a push to `main`.
fn github_claims() -> Map<String, Value> {
    json!({
        "jti": "8e1c7a32-5b0e-4f0a-9f43-0d1c5e0b6a11",
        "sub": "repo:acme/api:ref:refs/heads/main",
        "aud": "https://keyless.example",
        "ref": "refs/heads/main",
        "sha": "d6e5f1c2a0b9e8d7c6b5a4f3e2d1c0b9a8f7e6d5",
        "repository": "acme/api",
        "repository_owner": "acme",
        "repository_owner_id": "987654321",
        "run_id": "9876543210",
        "run_number": "1042",
        "run_attempt": "1",
        "repository_visibility": "private",
        "repository_id": "123456789",
        "actor_id": "1234567",
        "actor": "octocat",
        "workflow": "deploy",
        "head_ref": "",
        "base_ref": "",
        "event_name": "push",
        "ref_protected": "true",
        "ref_type": "branch",
        "workflow_ref": "acme/api/.github/workflows/deploy.yml@refs/heads/main",
        "workflow_sha": "d6e5f1c2a0b9e8d7c6b5a4f3e2d1c0b9a8f7e6d5",
        "job_workflow_ref": "acme/api/.github/workflows/deploy.yml@refs/heads/main",
        "job_workflow_sha": "d6e5f1c2a0b9e8d7c6b5a4f3e2d1c0b9a8f7e6d5",
        "runner_environment": "github-hosted",
        "environment": "production",
        "enterprise": "acme-enterprise",
        "iss": "https://token.actions.githubusercontent.com",
        "nbf": IAT - 300,
        "exp": IAT + 300,
        "iat": IAT,
    })
    .as_object()
    .unwrap()
    .clone()
}

/// The bare `aws-lc-rs` key for `key`'s public JWK, built the way a caller without JOSE would.
fn raw_key(key: &SigningKey) -> ParsedPublicKey {
    let jwk = key.public_jwk();
    let member = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
    match key.alg() {
        Algorithm::Rs256 | Algorithm::Ps256 => {
            let params = match key.alg() {
                Algorithm::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                _ => &signature::RSA_PKCS1_2048_8192_SHA256,
            };
            RsaPublicKeyComponents {
                n: member("n"),
                e: member("e"),
            }
            .to_parsed_public_key(params)
            .unwrap()
        }
        Algorithm::Es256 | Algorithm::Es384 => {
            let params = match key.alg() {
                Algorithm::Es384 => &signature::ECDSA_P384_SHA384_FIXED,
                _ => &signature::ECDSA_P256_SHA256_FIXED,
            };
            let mut point = vec![0x04];
            point.extend(member("x"));
            point.extend(member("y"));
            ParsedPublicKey::new(params, point).unwrap()
        }
        Algorithm::EdDsa => ParsedPublicKey::new(&signature::ED25519, member("x")).unwrap(),
        other => unreachable!("{other} is not benchmarked"),
    }
}

fn bench(c: &mut Criterion) {
    let claims = github_claims();
    let limits = Limits::default();
    for alg in [
        Algorithm::Rs256,
        Algorithm::Ps256,
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::EdDsa,
    ] {
        let key = SigningKey::generate(alg).unwrap();
        let token = key.sign_jwt(&claims).unwrap();
        // An issuer's JWKS mid-rotation: the signing key among three others of the same
        // algorithm, so selection by `kid` has to look.
        let others: Vec<SigningKey> = (0..3).map(|_| SigningKey::generate(alg).unwrap()).collect();
        let document = public_jwks(&[&others[0], &others[1], &key, &others[2]]);
        let jwks = Jwks::from_json(&serde_json::to_vec(&document).unwrap()).unwrap();
        assert_eq!(jwks.keys().len(), 4);
        assert!(verify_jwt(&token, &jwks, &limits).is_ok());

        let (signing_input, signature_b64) = token.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature_b64).unwrap();
        let raw = raw_key(&key);
        raw.verify_sig(signing_input.as_bytes(), &signature).unwrap();

        let mut group = c.benchmark_group(format!("jose_{}", alg.name()));
        group.bench_function("verify_jwt", |b| {
            b.iter(|| verify_jwt(black_box(&token), black_box(&jwks), &limits).unwrap())
        });
        group.bench_function("verify_jws", |b| {
            b.iter(|| verify_jws(black_box(&token), black_box(&jwks), &limits).unwrap())
        });
        group.bench_function("aws_lc_rs", |b| {
            b.iter(|| {
                raw.verify_sig(black_box(signing_input.as_bytes()), black_box(&signature))
                    .unwrap()
            })
        });
        group.bench_function("decode_unverified", |b| {
            b.iter(|| decode_unverified(black_box(&token), &limits).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
