//! Regenerates the fixed JWKS of the `jws_verify` target and the token and JWK seeds signed with it.
//!
//! Run from the repository root: `cargo run --manifest-path fuzz/Cargo.toml --example make_seeds`.
//! Fresh keys are generated each time and their private halves are dropped: only the public JWKS
//! (`fuzz/fixtures/jwks.json`) and the seeds are written, so the two always change together.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

use std::fs;
use std::path::Path;

use keyless_jose::{Algorithm, Jwks, Limits, SigningKey, public_jwks, verify_jws, verify_jwt};
use serde_json::{Map, Value, json};

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
        "repository_id": "123456789",
        "repository_visibility": "private",
        "run_id": "9876543210",
        "run_attempt": "1",
        "actor": "octocat",
        "workflow_ref": "acme/api/.github/workflows/deploy.yml@refs/heads/main",
        "event_name": "push",
        "ref_type": "branch",
        "environment": "production",
        "runner_environment": "github-hosted",
        "iss": "https://token.actions.githubusercontent.com",
        "nbf": 1_795_866_880,
        "exp": 1_795_867_480,
        "iat": 1_795_867_180,
    })
    .as_object()
    .unwrap()
    .clone()
}

fn write(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap();
    println!("wrote {} ({} bytes)", path.display(), bytes.len());
}

fn main() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tokens = fuzz.join("seeds/jws_verify");
    let jwks_seeds = fuzz.join("seeds/jwk_parse");
    let keys: Vec<SigningKey> = [
        Algorithm::Rs256,
        Algorithm::Ps256,
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::EdDsa,
    ]
    .into_iter()
    .map(|alg| SigningKey::generate(alg).unwrap())
    .collect();
    let document = serde_json::to_vec_pretty(&public_jwks(&keys.iter().collect::<Vec<_>>())).unwrap();
    write(&fuzz.join("fixtures/jwks.json"), &document);
    write(&jwks_seeds.join("jwks.json"), &document);

    // The seeds must reach the accepting path of `jws_verify`.
    let jwks = Jwks::from_json(&document).unwrap();
    let limits = Limits::default();

    let claims = github_claims();
    for key in &keys {
        let name = key.alg().name().to_lowercase();
        let token = key.sign_jwt(&claims).unwrap();
        assert_eq!(verify_jwt(&token, &jwks, &limits).unwrap().key_thumbprint, key.kid());
        write(&tokens.join(format!("{name}.jwt")), token.as_bytes());
        write(
            &jwks_seeds.join(format!("{name}.json")),
            &serde_json::to_vec(&key.public_jwk()).unwrap(),
        );
    }
    let es256 = keys.iter().find(|key| key.alg() == Algorithm::Es256).unwrap();
    let eddsa = keys.iter().find(|key| key.alg() == Algorithm::EdDsa).unwrap();
    let no_kid = json!({ "alg": "ES256", "typ": "JWT" });
    let payload = serde_json::to_vec(&claims).unwrap();
    let token = es256.sign_compact(no_kid.as_object().unwrap(), &payload).unwrap();
    assert!(verify_jwt(&token, &jwks, &limits).is_ok());
    write(&tokens.join("es256_no_kid.jwt"), token.as_bytes());
    let header = json!({ "alg": "EdDSA", "kid": eddsa.kid() });
    let token = eddsa.sign_compact(header.as_object().unwrap(), b"not json").unwrap();
    assert!(verify_jws(&token, &jwks, &limits).is_ok() && verify_jwt(&token, &jwks, &limits).is_err());
    write(&tokens.join("eddsa_not_json_payload.jws"), token.as_bytes());
    // {"alg":"none"}.{"sub":"x"}.
    write(&tokens.join("alg_none.jwt"), b"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.");

    let mut with_ops = es256.public_jwk();
    with_ops["key_ops"] = json!(["verify"]);
    with_ops.as_object_mut().unwrap().remove("use");
    write(
        &jwks_seeds.join("es256_key_ops.json"),
        &serde_json::to_vec(&with_ops).unwrap(),
    );
    write(
        &jwks_seeds.join("oct.json"),
        br#"{"kty":"oct","k":"c2VjcmV0","alg":"HS256","kid":"hmac"}"#,
    );
}
