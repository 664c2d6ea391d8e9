//! `keyless token inspect` against real tokens, JWKS files and a JWKS served over HTTP on loopback.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use keyless_jose::{Algorithm, SigningKey, public_jwks};
use serde_json::{Map, Value, json};

const ISSUER: &str = "https://token.actions.githubusercontent.com";
const AUDIENCE: &str = "https://keyless.example";

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// GitHub-Actions-shaped claims issued `age` seconds ago with a 300 s lifetime.
fn github_claims(age: i64) -> Map<String, Value> {
    let iat = now() - age;
    json!({
        "jti": "5b6a3ec1-7b3c-4a39-9c44-0f1e2d3c4b5a", "sub": "repo:acme/api:ref:refs/heads/main",
        "aud": AUDIENCE, "ref": "refs/heads/main", "repository": "acme/api", "repository_owner": "acme",
        "repository_id": "123456789", "repository_owner_id": "987654", "run_id": "1", "actor": "octocat",
        "iss": ISSUER, "iat": iat, "nbf": iat - 600, "exp": iat + 300,
    })
    .as_object()
    .unwrap()
    .clone()
}

struct Fixture {
    dir: tempfile::TempDir,
    key: SigningKey,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate(Algorithm::Rs256).unwrap();
        let other = SigningKey::generate(Algorithm::Es256).unwrap();
        std::fs::write(dir.path().join("jwks.json"), public_jwks(&[&key, &other]).to_string()).unwrap();
        Fixture { dir, key }
    }

    fn jwks_path(&self) -> String {
        self.dir.path().join("jwks.json").to_str().unwrap().to_owned()
    }

    fn token(&self, claims: &Map<String, Value>) -> String {
        self.key.sign_jwt(claims).unwrap()
    }
}

fn keyless(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyless"))
        .args(args)
        .env_remove("KEYLESS_JWKS")
        .env_remove("KEYLESS_ISSUER")
        .env_remove("KEYLESS_AUDIENCE")
        .env_remove("KEYLESS_OUTPUT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

/// Runs inspect and checks the exit code and that stdout mentions `needle`.
fn check(args: &[&str], stdin: Option<&str>, exit: i32, needle: &str) -> String {
    let out = keyless(args, stdin);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        out.status.code(),
        Some(exit),
        "args {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains(needle) || stderr.contains(needle),
        "{needle:?} missing\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

#[test]
fn valid_token_verifies_against_a_jwks_file() {
    let fx = Fixture::new();
    let token = fx.token(&github_claims(10));
    let out = check(
        &[
            "token",
            "inspect",
            "--jwks",
            &fx.jwks_path(),
            "--issuer",
            ISSUER,
            "--audience",
            AUDIENCE,
            &token,
        ],
        None,
        0,
        "result: valid",
    );
    assert!(
        out.contains("repo:acme/api:ref:refs/heads/main"),
        "claims are printed:\n{out}"
    );
    assert!(out.contains(fx.key.kid()), "the verifying key is named:\n{out}");
}

#[test]
fn token_from_stdin_with_trailing_newline_is_stripped() {
    let fx = Fixture::new();
    let token = format!("{}\n", fx.token(&github_claims(10)));
    check(
        &["token", "inspect", "--jwks", &fx.jwks_path(), "-"],
        Some(&token),
        0,
        "result: valid",
    );
}

#[test]
fn each_failing_check_is_named() {
    let fx = Fixture::new();
    let jwks = fx.jwks_path();
    let fresh = fx.token(&github_claims(10));
    let expired = fx.token(&github_claims(1000));
    let mut long = github_claims(10);
    long.insert("exp".into(), json!(now() + 7200));
    let long = fx.token(&long);
    let stranger = SigningKey::generate(Algorithm::Rs256).unwrap();
    let mut header = Map::new();
    header.insert("alg".into(), json!("RS256"));
    header.insert("kid".into(), json!(fx.key.kid()));
    let forged = stranger
        .sign_compact(&header, &serde_json::to_vec(&github_claims(10)).unwrap())
        .unwrap();
    let unknown_kid = stranger.sign_jwt(&github_claims(10)).unwrap();
    let none = format!("eyJhbGciOiJub25lIn0.{}.", fresh.split('.').nth(1).unwrap());

    check(
        &["token", "inspect", "--jwks", &jwks, &expired],
        None,
        1,
        "token_expired",
    );
    check(
        &["token", "inspect", "--jwks", &jwks, &long],
        None,
        1,
        "token_lifetime_exceeds_maximum",
    );
    check(
        &["token", "inspect", "--jwks", &jwks, "--max-lifetime", "86400", &long],
        None,
        0,
        "result: valid",
    );
    check(
        &["token", "inspect", "--jwks", &jwks, &forged],
        None,
        1,
        "bad_signature",
    );
    check(
        &["token", "inspect", "--jwks", &jwks, &unknown_kid],
        None,
        1,
        "kid_not_found",
    );
    check(&["token", "inspect", "--jwks", &jwks, &none], None, 1, "alg_none");
    check(
        &[
            "token",
            "inspect",
            "--jwks",
            &jwks,
            "--issuer",
            "https://gitlab.com",
            &fresh,
        ],
        None,
        1,
        "issuer_mismatch",
    );
    check(
        &["token", "inspect", "--jwks", &jwks, "--audience", "other", &fresh],
        None,
        1,
        "audience_mismatch",
    );
    check(&["token", "inspect", "not.a.jwt"], None, 1, "invalid_base64");
}

#[test]
fn json_output_is_one_document() {
    let fx = Fixture::new();
    let expired = fx.token(&github_claims(1000));
    let out = check(
        &[
            "token",
            "inspect",
            "--jwks",
            &fx.jwks_path(),
            "--output",
            "json",
            &expired,
        ],
        None,
        1,
        "{",
    );
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["valid"], json!(false));
    assert_eq!(doc["error_code"], json!("token_expired"));
    assert_eq!(doc["claims"]["sub"], json!("repo:acme/api:ref:refs/heads/main"));
    assert_eq!(doc["header"]["alg"], json!("RS256"));
    let signature = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "signature")
        .unwrap();
    assert_eq!(signature["status"], json!("passed"));
}

#[test]
fn without_jwks_the_signature_is_reported_unchecked() {
    let fx = Fixture::new();
    let out = check(
        &["token", "inspect", &fx.token(&github_claims(10))],
        None,
        0,
        "result: valid",
    );
    assert!(out.contains("skipped  signature"), "{out}");
}

#[test]
fn a_single_jwk_file_is_a_key_set() {
    let fx = Fixture::new();
    let path = fx.dir.path().join("key.json");
    std::fs::write(&path, fx.key.public_jwk().to_string()).unwrap();
    let token = fx.token(&github_claims(10));
    check(
        &["token", "inspect", "--jwks", path.to_str().unwrap(), &token],
        None,
        0,
        "result: valid",
    );
}

#[test]
fn usage_errors_exit_2() {
    check(&["token", "inspect"], None, 2, "TOKEN");
    check(
        &["token", "inspect", "--jwks", "/nonexistent/jwks.json", "a.b.c"],
        None,
        2,
        "/nonexistent/jwks.json",
    );
    check(
        &["token", "inspect", "--jwks", "http://jwks.example/keys", "a.b.c"],
        None,
        2,
        "only on loopback",
    );
    check(&["token", "inspect", "--output", "yaml", "a.b.c"], None, 2, "yaml");
}

/// Serves `body` to `requests` HTTP requests on a loopback port; returns the URL.
fn serve_once(body: String, requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).unwrap();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(response.as_bytes()).unwrap();
        }
    });
    url
}

#[test]
fn jwks_is_fetched_over_http_on_loopback() {
    let fx = Fixture::new();
    let url = serve_once(std::fs::read_to_string(fx.jwks_path()).unwrap(), 1);
    let token = fx.token(&github_claims(10));
    check(&["token", "inspect", "--jwks", &url, &token], None, 0, "result: valid");
}
