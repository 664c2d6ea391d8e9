//! Real clients, not ours: the `anthropic` Python SDK (JSON jwt-bearer) and python `google-auth`
//! (`external_account`, RFC 8693 form) each complete an exchange against the running server; the token
//! they receive is then checked by introspection.
//!
//! The Python with both packages is named by `KEYLESS_TEST_PYTHON` (`.ci/run` creates a virtual
//! environment and sets it). Without it the test says so and passes — except in CI (`CI` set), where a
//! missing interpreter fails the test instead of skipping it.

use std::process::Command;

use serde_json::Value;

use crate::exchange::Env;
use crate::harness::databases;

pub(crate) fn python() -> Option<String> {
    match std::env::var("KEYLESS_TEST_PYTHON") {
        Ok(python) => Some(python),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("KEYLESS_TEST_PYTHON is not set in CI: the real-client tests must run")
        }
        Err(_) => {
            eprintln!("KEYLESS_TEST_PYTHON is not set: the anthropic and google-auth clients are not exercised");
            None
        }
    }
}

fn script() -> String {
    format!("{}/tests/interop/clients.py", env!("CARGO_MANIFEST_DIR"))
}

/// Runs one client mode with `vars`; returns its JSON line.
pub(crate) async fn run_client(python: &str, mode: &str, vars: &[(&str, String)]) -> Value {
    let mut command = Command::new(python);
    command
        .arg(script())
        .arg(mode)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (name, value) in vars {
        command.env(name, value);
    }
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{mode} failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn assert_active(env: &Env, token: &str) {
    let response = env
        .app
        .http
        .post(env.app.url("/v1/oauth/introspect"))
        .bearer_auth(&env.admin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["service_account_id"], env.service_account_id.as_str(), "{body}");
    assert_eq!(body["federation_rule_id"], env.rule_id.as_str(), "{body}");
}

#[tokio::test]
async fn anthropic_sdk_and_google_auth_complete_exchanges() {
    let Some(python) = python() else { return };
    for db in databases() {
        let env = Env::start(db).await;
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        // Written with a trailing newline, as `echo` and kubelet-style writers leave it.
        std::fs::write(&token_file, format!("{}\n", env.token())).unwrap();
        let anthropic = run_client(
            &python,
            "anthropic",
            &[
                ("ANTHROPIC_BASE_URL", env.app.base_url.clone()),
                ("ANTHROPIC_FEDERATION_RULE_ID", env.rule_id.clone()),
                ("ANTHROPIC_ORGANIZATION_ID", env.organization_id.clone()),
                ("ANTHROPIC_SERVICE_ACCOUNT_ID", env.service_account_id.clone()),
                ("ANTHROPIC_IDENTITY_TOKEN_FILE", token_file.display().to_string()),
            ],
        )
        .await;
        assert_active(&env, anthropic["access_token"].as_str().unwrap()).await;

        // A fresh token (the first one's jti is spent).
        std::fs::write(&token_file, format!("{}\n", env.token())).unwrap();
        let google = run_client(
            &python,
            "google-auth",
            &[
                ("KEYLESS_TOKEN_URL", env.app.url("/v1/oauth/token")),
                ("KEYLESS_RULE_ID", env.rule_id.clone()),
                ("KEYLESS_TOKEN_FILE", token_file.display().to_string()),
                ("KEYLESS_SCOPE", "workspace:developer".to_owned()),
            ],
        )
        .await;
        assert_active(&env, google["access_token"].as_str().unwrap()).await;
        env.app.stop().await.unwrap();
    }
}
