//! `keyless token`, `keyless exec`, `keyless auth status` and `keyless profile` as processes against a
//! real `keyless serve`: a workload's identity token in a file becomes an access token through the
//! credential chain, processes share the disk cache (a single-use `jti` is exchanged once), a
//! refused exchange is exit 2 with the failed check and the request ID, and a leftover static key
//! is reported.

use std::process::{Command, Stdio};

use keyless_jose::{Algorithm, SigningKey};
use serde_json::{Value, json};

use crate::support::{Db, Run, Server, Site};

const ISSUER: &str = "https://ci.keyless-test.example";
const SUBJECT: &str = "repo:acme/app:ref:refs/heads/main";

/// A server with an issuer (inline keys), a service account and a rule for `SUBJECT`.
struct Federation {
    site: Site,
    server: Server,
    key: SigningKey,
    organization_id: String,
    admin_token: String,
    rule_id: String,
    base_url: String,
    home: tempfile::TempDir,
}

impl Federation {
    fn start() -> Federation {
        let site = Site::new(Db::Sqlite);
        let server = Server::start(&site);
        let (organization_id, admin_token) = site.bootstrap_file();
        let key = SigningKey::generate(Algorithm::Es256).unwrap();
        let issuer = server.api(
            "POST",
            "/v1/organizations/federation_issuers",
            &admin_token,
            Some(json!({"name": "ci", "issuer_url": ISSUER, "jwks": {"type": "inline", "keys": [key.public_jwk()]}})),
            200,
        );
        let account = server.api(
            "POST",
            "/v1/organizations/service_accounts",
            &admin_token,
            Some(json!({"name": "deployer"})),
            200,
        );
        let rule = server.api(
            "POST",
            "/v1/organizations/federation_rules",
            &admin_token,
            Some(json!({
                "name": "deploy-main",
                "issuer_id": issuer["id"],
                "match": {"subject_prefix": SUBJECT},
                "target": {"type": "service_account", "service_account_id": account["id"]},
                "token_lifetime_seconds": 600,
            })),
            200,
        );
        let base_url = format!("http://127.0.0.1:{}", server.port);
        Federation {
            site,
            server,
            key,
            organization_id,
            admin_token,
            rule_id: rule["id"].as_str().unwrap().to_owned(),
            base_url,
            home: tempfile::tempdir().unwrap(),
        }
    }

    /// A workload token as GitHub Actions would issue it, with a fresh `jti`, for `audience`.
    fn identity_token(&self, audience: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let claims = json!({
            "iss": ISSUER, "sub": SUBJECT, "aud": audience,
            "jti": format!("{}-{}", std::process::id(), now),
            "repository": "acme/app", "ref": "refs/heads/main",
            "iat": now, "nbf": now - 5, "exp": now + 300,
        });
        self.key.sign_jwt(claims.as_object().unwrap()).unwrap()
    }

    /// Writes an identity token file (with the trailing newline `echo` leaves).
    fn token_file(&self, audience: &str) -> std::path::PathBuf {
        let path = self.home.path().join("identity-token");
        std::fs::write(&path, format!("{}\n", self.identity_token(audience))).unwrap();
        path
    }

    /// `keyless <args>` with a clean environment: only HOME (the config directory) and `vars`.
    fn keyless(&self, args: &[&str], vars: &[(&str, &str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_keyless"));
        command
            .env_clear()
            .env("HOME", self.home.path())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .args(args)
            .envs(vars.iter().copied());
        command
    }

    fn run(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        Run::from(self.keyless(args, vars).output().unwrap())
    }

    /// The federation environment of a workload reading `file`.
    fn federation_vars<'a>(&'a self, file: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("KEYLESS_BASE_URL", self.base_url.as_str()),
            ("KEYLESS_FEDERATION_RULE_ID", self.rule_id.as_str()),
            ("KEYLESS_ORGANIZATION_ID", self.organization_id.as_str()),
            ("KEYLESS_IDENTITY_TOKEN_FILE", file),
        ]
    }

    /// RFC 7662 introspection of `token` with the admin token.
    fn introspect(&self, token: &str) -> Value {
        let (status, body) = self
            .server
            .form("/v1/oauth/introspect", &self.admin_token, &format!("token={token}"))
            .unwrap();
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// How many exchanges succeeded, per the activity feed.
    fn successful_exchanges(&self) -> usize {
        let feed = self.server.api(
            "GET",
            "/v1/organizations/activities?type=platform_federated_authentication&limit=100",
            &self.admin_token,
            None,
            200,
        );
        feed["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|event| event["status"]["outcome"] == "success")
            .count()
    }
}

#[test]
fn keyless_token_exchanges_a_token_file_and_processes_share_the_cache() {
    let fed = Federation::start();
    let file = fed.token_file(&fed.base_url);
    let file = file.to_str().unwrap();
    let vars = fed.federation_vars(file);

    // Two processes at once: one exchange (the identity token's jti is single-use, so a second
    // exchange would have been refused), and both print the same token.
    let spawn = || {
        fed.keyless(&["token"], &vars)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    let first = Run::from(first.wait_with_output().unwrap());
    let second = Run::from(second.wait_with_output().unwrap());
    assert_eq!(first.code, Some(0), "{first:#?}");
    assert_eq!(second.code, Some(0), "{second:#?}");
    let token = first.stdout.trim().to_owned();
    assert_eq!(second.stdout.trim(), token);
    assert_eq!(fed.successful_exchanges(), 1);

    let introspection = fed.introspect(&token);
    assert_eq!(introspection["active"], true, "{introspection}");
    assert_eq!(introspection["scope"], "workspace:developer");

    // JSON output from the cache: no new exchange.
    let json = fed.run(&["token", "--output", "json"], &vars).json();
    assert_eq!(json["access_token"], token.as_str());
    assert_eq!(json["token_type"], "Bearer");
    assert!(json["expires_in"].as_i64().unwrap() > 500, "{json}");
    assert!(
        json["source"].as_str().unwrap().contains("federation environment"),
        "{json}"
    );
    assert_eq!(fed.successful_exchanges(), 1);
    // The cache file is private.
    let cache_dir = fed.home.path().join(".config/keyless/cache");
    let entry = std::fs::read_dir(&cache_dir).unwrap().next().unwrap().unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(entry.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    assert!(fed.site.data_dir().is_dir());
}

#[test]
fn a_refused_exchange_is_exit_2_with_the_check_and_the_request_id() {
    let fed = Federation::start();
    let file = fed.token_file("https://somewhere-else.example");
    let run = fed.run(&["token"], &fed.federation_vars(file.to_str().unwrap()));
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr.lines().count(), 1, "{run:#?}");
    assert!(run.stderr.starts_with("error: "), "{run:#?}");
    assert!(
        run.stderr.contains("invalid_grant") && run.stderr.contains("request req_"),
        "{run:#?}"
    );
    assert!(!run.stderr.contains("panicked"));

    let nothing = fed.run(&["token"], &[]);
    assert_eq!(nothing.code, Some(1), "{nothing:#?}");
    assert!(
        nothing.stderr.starts_with("error: no credentials found"),
        "{nothing:#?}"
    );
}

#[test]
fn exec_passes_the_token_and_the_exit_status() {
    let fed = Federation::start();
    let file = fed.token_file(&fed.base_url);
    let mut vars = fed.federation_vars(file.to_str().unwrap());
    let printed = fed.run(
        &[
            "exec",
            "--env",
            "OTHER_TOKEN",
            "--",
            "sh",
            "-c",
            r#"printf '%s %s %s%s' "$KEYLESS_AUTH_TOKEN" "$OTHER_TOKEN" "${KEYLESS_IDENTITY_TOKEN_FILE:-none}" "${KEYLESS_FEDERATION_RULE_ID:-}""#,
        ],
        &vars,
    );
    assert_eq!(printed.code, Some(0), "{printed:#?}");
    let words: Vec<&str> = printed.stdout.split(' ').collect();
    assert_eq!(words.len(), 3, "{printed:#?}");
    assert_eq!(words[0], words[1]);
    assert_eq!(words[2], "none");
    assert_eq!(fed.introspect(words[0])["active"], true);

    let status = fed.run(&["exec", "--", "sh", "-c", "exit 7"], &vars);
    assert_eq!(status.code, Some(7), "{status:#?}");

    // The child runs inside the workload's federation setup and gets no means to mint more.
    vars.push(("KEYLESS_IDENTITY_TOKEN", "not-used"));
    let missing = fed.run(&["exec", "--", "/nonexistent/program"], &vars);
    assert_eq!(missing.code, Some(1), "{missing:#?}");
    assert!(
        missing.stderr.contains("could not run \"/nonexistent/program\""),
        "{missing:#?}"
    );
}

#[test]
fn auth_status_names_the_winner_and_warns_about_a_leftover_key() {
    let fed = Federation::start();
    let file = fed.token_file(&fed.base_url);
    let mut vars = fed.federation_vars(file.to_str().unwrap());
    let status = fed.run(&["auth", "status", "--check"], &vars);
    assert_eq!(status.code, Some(0), "{status:#?}");
    assert!(status.stdout.contains("→ federation environment"), "{}", status.stdout);
    assert!(status.stdout.contains("check:      ok"), "{}", status.stdout);

    vars.push(("KEYLESS_API_KEY", "sk-leftover-key"));
    let shadowed = fed.run(&["auth", "status", "--output", "json"], &vars);
    let json = shadowed.json();
    assert_eq!(
        json["steps"].as_array().unwrap().last().unwrap()["name"],
        "KEYLESS_API_KEY"
    );
    assert!(
        shadowed
            .stderr
            .contains("warning: KEYLESS_API_KEY takes precedence over the federation setup"),
        "{shadowed:#?}"
    );
    assert!(!shadowed.stdout.contains("sk-leftover-key") && !shadowed.stderr.contains("sk-leftover-key"));
    let token = fed.run(&["token"], &vars);
    assert_eq!(token.code, Some(1), "an API key is not an access token: {token:#?}");
}

#[test]
fn profiles_hold_federation_settings_and_stored_tokens() {
    let fed = Federation::start();
    let file = fed.token_file(&fed.base_url);
    let set = fed.run(
        &[
            "profile",
            "set",
            "ci",
            "--auth-type",
            "oidc-federation",
            "--server-url",
            &fed.base_url,
            "--organization-id",
            &fed.organization_id,
            "--federation-rule-id",
            &fed.rule_id,
            "--identity-token-file",
            file.to_str().unwrap(),
            "--activate",
        ],
        &[],
    );
    assert_eq!(set.code, Some(0), "{set:#?}");
    let token = fed.run(&["token"], &[]);
    assert_eq!(token.code, Some(0), "{token:#?}");
    assert_eq!(fed.introspect(token.stdout.trim())["active"], true);
    let credentials = fed.home.path().join(".config/keyless/credentials/ci.json");
    assert!(
        credentials.is_file(),
        "the profile's token is cached in credentials/ci.json"
    );

    // An admin profile holding the bootstrap token, written from stdin.
    let mut child = fed
        .keyless(
            &[
                "profile",
                "set",
                "admin",
                "--auth-type",
                "user-oauth",
                "--server-url",
                &fed.base_url,
                "--access-token-stdin",
            ],
            &[],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(fed.admin_token.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let listed = fed.run(&["profile", "list", "--output", "json"], &[]).json();
    let names: Vec<(&str, bool)> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|profile| (profile["name"].as_str().unwrap(), profile["active"].as_bool().unwrap()))
        .collect();
    assert_eq!(names, [("admin", false), ("ci", true)]);
    let admin = fed.run(&["token", "--profile", "admin"], &[]);
    assert_eq!(admin.stdout.trim(), fed.admin_token);
    let shown = fed.run(&["profile", "get", "admin", "--output", "json"], &[]);
    assert!(
        !shown.stdout.contains(&fed.admin_token),
        "profile get never shows a token"
    );
    assert_eq!(shown.json()["credentials"]["has_access_token"], true);

    // A credentials file others can read is refused.
    use std::os::unix::fs::PermissionsExt;
    let stored = fed.home.path().join(".config/keyless/credentials/admin.json");
    std::fs::set_permissions(&stored, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = fed.run(&["token", "--profile", "admin"], &[]);
    assert_eq!(refused.code, Some(1), "{refused:#?}");
    assert!(refused.stderr.contains("chmod 600"), "{refused:#?}");
}
