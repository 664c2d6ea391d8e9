//! The README's walkthrough ("A first exchange, with the CLI"), run as written: the shell block after
//! the marker comment is executed by bash against a real `keyless serve` on its embedded default,
//! with three stand-ins a test machine needs — `kubectl` prints a JWKS this test holds the key of,
//! the projected token path is a temporary file, and `KEYLESS_BASE_URL` names the server's free port.
//! If the README changes, this test runs the new text.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keyless_jose::{Algorithm, SigningKey};
use serde_json::{Value, json};

use crate::support::{free_port, http, status_and_body};

const MARKER: &str = "<!-- crates/keyless/tests/it/readme.rs runs this block as is";
const TOKEN_PATH: &str = "/var/run/secrets/keyless/token";

/// The shell block after the marker.
fn walkthrough() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let after = &readme[readme.find(MARKER).expect("the README marks its tested walkthrough")..];
    let start = after.find("```sh\n").unwrap() + "```sh\n".len();
    let end = after[start..].find("```").unwrap();
    after[start..start + end].to_owned()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn the_readme_walkthrough_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let (home, data, work, bin) = (
        dir.path().join("home"),
        dir.path().join("data"),
        dir.path().join("work"),
        dir.path().join("bin"),
    );
    for path in [&home, &data, &work, &bin] {
        std::fs::create_dir_all(path).unwrap();
    }
    let keyless = env!("CARGO_BIN_EXE_keyless");
    let path_var = format!(
        "{}:{}:{}",
        bin.display(),
        Path::new(keyless).parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let port = free_port();
    let base_url = format!("http://127.0.0.1:{port}");
    // `keyless serve` on its embedded default: the per-user data directory (here under XDG_DATA_HOME).
    let _server = Killed(
        Command::new(keyless)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env_clear()
            .env("HOME", &home)
            .env("XDG_DATA_HOME", &data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while http(port, "GET", "/readyz", &[], "").is_none_or(|response| !response.starts_with("HTTP/1.1 200")) {
        assert!(Instant::now() < deadline, "keyless serve did not become ready");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The cluster: its key, `kubectl get --raw /openid/v1/jwks`, and a projected token as the kubelet
    // writes it (audience keyless's public_url, the nested kubernetes.io claims, one hour).
    let key = SigningKey::generate(Algorithm::Rs256).unwrap();
    let jwks = json!({ "keys": [key.public_jwk()] });
    let jwks_file = dir.path().join("cluster-jwks.json");
    std::fs::write(&jwks_file, jwks.to_string()).unwrap();
    write_executable(
        &bin.join("kubectl"),
        &format!(
            "#!/bin/sh\n[ \"$*\" = 'get --raw /openid/v1/jwks' ] || {{ echo \"kubectl stand-in: $*\" >&2; exit 1; }}\ncat '{}'\n",
            jwks_file.display()
        ),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = json!({
        "iss": "https://kubernetes.default.svc.cluster.local",
        "sub": "system:serviceaccount:prod:deployer",
        "aud": [base_url],
        "iat": now, "nbf": now, "exp": now + 3600,
        "kubernetes.io": {
            "namespace": "prod",
            "pod": {"name": "deployer-7d9f8-x2k4q", "uid": "3f2c1a9e-8b7d-4c6e-9f10-2a3b4c5d6e7f"},
            "serviceaccount": {"name": "deployer", "uid": "a1b2c3d4-e5f6-4a5b-8c7d-9e0f1a2b3c4d"},
        },
    });
    let token_file = dir.path().join("projected-token");
    std::fs::write(&token_file, key.sign_jwt(claims.as_object().unwrap()).unwrap()).unwrap();

    let script = walkthrough().replace(TOKEN_PATH, token_file.to_str().unwrap());
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(&work)
        .env_clear()
        .env("PATH", &path_var)
        .env("HOME", &home)
        .env("XDG_DATA_HOME", &data)
        .env("KEYLESS_BASE_URL", &base_url)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        out.status.success(),
        "the walkthrough failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );

    // `keyless token` printed an access token bound to the service account the rule targets.
    let access_token = stdout
        .lines()
        .find(|line| line.starts_with("keyless_at_"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let env_file = std::fs::read_to_string(work.join("workload.env")).unwrap();
    let account = env_file
        .lines()
        .find_map(|line| line.strip_prefix("KEYLESS_SERVICE_ACCOUNT_ID="))
        .unwrap()
        .to_owned();
    assert!(stderr.contains(&format!("must carry aud \"{base_url}\"")), "{stderr}");
    // The activity feed (the block's last command) shows the exchange.
    assert!(stdout.contains("platform_federated_authentication"), "{stdout}");

    let bootstrap: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("keyless/bootstrap.json")).unwrap()).unwrap();
    let answer: Value = serde_json::from_str(&introspect(
        port,
        bootstrap["admin_token"].as_str().unwrap(),
        access_token,
    ))
    .unwrap();
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["sub"], account.as_str(), "{answer}");
}

/// RFC 7662 introspection of `token` (the body of the answer).
fn introspect(port: u16, bearer: &str, token: &str) -> String {
    let authorization = format!("Bearer {bearer}");
    let headers = [
        ("authorization", authorization.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let response = http(
        port,
        "POST",
        "/v1/oauth/introspect",
        &headers,
        &format!("token={token}"),
    )
    .unwrap();
    let (status, body) = status_and_body(&response).unwrap();
    assert_eq!(status, 200, "{response}");
    body
}
