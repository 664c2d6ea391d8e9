//! The Admin API client and the CLI's admin nouns against a real `keyless serve`:
//! - the `keyless-api` types are complete: every object, list, answer and feed page the server sends
//!   decodes and serializes back to exactly the server's JSON (on SQLite and, with
//!   `KEYLESS_TEST_POSTGRES_URL`, PostgreSQL);
//! - the pagers walk `next_page` and the feed's `after_id` across pages, and stop at a cap;
//! - `keyless issuers|service-accounts|rules|activities …` run as a user would: flags, `--from-file`
//!   (file and stdin, flags over file fields), `--output json|yaml|table`, exit codes 0/1/2 with one
//!   line on stderr, `activities list --follow` printing an event recorded after it started, and
//!   `completions`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use keyless_api::{
    ActivityFeed, FederationIssuer, FederationRule, Page, RuleWorkspace, RuleWorkspaces, ServiceAccount, VerifyReport,
    WorkspaceMembership, WorkspaceMembershipDeleted,
};
use keyless_client::admin::{ActivityFilter, Admin, ListOptions};
use keyless_client::{Api, Credential};
use keyless_jose::{Algorithm, SigningKey};
use secrecy::SecretString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::support::{Db, Run, Server, Site, databases};

/// A running server with its admin token.
pub(crate) struct App {
    _site: Site,
    pub(crate) server: Server,
    pub(crate) token: String,
}

impl App {
    pub(crate) fn start(db: Db) -> App {
        let site = Site::new(db);
        let server = Server::start(&site);
        let (_, token) = site.bootstrap_file();
        App {
            _site: site,
            server,
            token,
        }
    }

    pub(crate) fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port)
    }

    pub(crate) fn api(&self) -> Api {
        Api::new(
            &self.base_url(),
            Credential::Bearer(SecretString::from(self.token.clone())),
        )
        .unwrap()
    }

    /// `keyless <args>` with only the server's URL and the admin token in the environment.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_keyless"));
        command
            .env_clear()
            .env("KEYLESS_BASE_URL", self.base_url())
            .env("KEYLESS_AUTH_TOKEN", &self.token)
            .env("NO_COLOR", "1")
            .args(args);
        command
    }

    pub(crate) fn cli(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().unwrap())
    }

    pub(crate) fn cli_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        Run::from(child.wait_with_output().unwrap())
    }

    /// `keyless <args> --output json`, which must succeed; its JSON.
    pub(crate) fn json(&self, args: &[&str]) -> Value {
        let run = self.cli(&[args, &["--output", "json"]].concat());
        assert_eq!(run.stderr, "", "{args:?}: {run:#?}");
        run.json()
    }
}

impl Run {
    /// Asserts the server refused: exit 2, nothing on stdout, one `error: …` line quoting the request.
    pub(crate) fn assert_server_error(&self, message: &str) {
        assert_eq!(self.code, Some(2), "{self:#?}");
        assert_eq!(self.stdout, "", "{self:#?}");
        assert!(
            self.stderr.starts_with(&format!("error: {message} (HTTP ")),
            "{self:#?}"
        );
        assert!(self.stderr.contains(", request req_"), "{self:#?}");
        assert_eq!(self.stderr.lines().count(), 1, "{self:#?}");
    }

    /// Asserts a local error: exit 1, nothing on stdout, exactly one `error: …` line containing `part`.
    pub(crate) fn assert_local_error(&self, part: &str) {
        assert_eq!(self.code, Some(1), "{self:#?}");
        assert_eq!(self.stdout, "", "{self:#?}");
        assert!(
            self.stderr.starts_with("error: ") && self.stderr.contains(part),
            "{self:#?}"
        );
        assert_eq!(self.stderr.lines().count(), 1, "{self:#?}");
    }
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A public JWKS of one fresh ES256 key.
fn inline_keys() -> Value {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    json!([key.public_jwk()])
}

/// Asserts that `typed` (what the typed client decoded) serializes to exactly `raw` (the server's JSON
/// for the same thing) and that `raw` decodes and round-trips by itself too.
pub(crate) fn assert_exact<T: Serialize + DeserializeOwned>(what: &str, typed: &T, raw: &Value) {
    assert_eq!(
        &serde_json::to_value(typed).unwrap(),
        raw,
        "{what}: the typed client lost or changed a field"
    );
    let decoded: T = serde_json::from_value(raw.clone()).unwrap();
    assert_eq!(&serde_json::to_value(&decoded).unwrap(), raw, "{what}");
}

#[test]
fn every_object_list_and_feed_page_round_trips_the_servers_json_exactly() {
    for db in databases() {
        let app = App::start(db);
        let api = app.api();
        let admin = Admin::new(api.clone());
        runtime().block_on(async {
            let raw = |segments: Vec<String>| {
                let api = api.clone();
                async move {
                    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
                    api.get::<Value>(&segments, &[]).await.unwrap()
                }
            };
            let path = |rest: &[&str]| -> Vec<String> {
                ["v1", "organizations"]
                    .iter()
                    .chain(rest)
                    .map(|s| (*s).to_owned())
                    .collect()
            };

            // An issuer with inline keys, and the verify report of the same configuration.
            let jwks = json!({"type": "inline", "keys": inline_keys()});
            let issuer: FederationIssuer = api
                .post(
                    &["v1", "organizations", "federation_issuers"],
                    &json!({"name": "inline", "issuer_url": "https://issuer.example.com", "jwks": jwks}),
                )
                .await
                .unwrap();
            let typed = admin.issuers().get(&issuer.id).await.unwrap();
            assert_exact("issuer", &typed, &raw(path(&["federation_issuers", &issuer.id])).await);
            let verify_body = json!({"issuer_url": "https://issuer.example.com", "jwks": jwks});
            let report: VerifyReport = admin
                .issuers()
                .verify(&serde_json::from_value(verify_body.clone()).unwrap())
                .await
                .unwrap();
            let raw_report: Value = api
                .post(&["v1", "organizations", "federation_issuers", "verify"], &verify_body)
                .await
                .unwrap();
            assert!(report.ok, "{raw_report}");
            assert_exact("verify report", &report, &raw_report);

            // A service account with a description, updated (so the feed has `changes`), and a membership.
            let service_account = admin
                .service_accounts()
                .create(&serde_json::from_value(json!({"name": "ci", "description": "d"})).unwrap())
                .await
                .unwrap();
            let service_account = admin
                .service_accounts()
                .update(
                    &service_account.id,
                    &serde_json::from_value(json!({"description": null})).unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(service_account.description, None);
            let typed = admin.service_accounts().get(&service_account.id).await.unwrap();
            assert_exact(
                "service account",
                &typed,
                &raw(path(&["service_accounts", &service_account.id])).await,
            );
            let membership = admin
                .service_accounts()
                .set_workspace(
                    &service_account.id,
                    "default",
                    keyless_api::WorkspaceRole::WorkspaceDeveloper,
                )
                .await
                .unwrap();
            let typed: WorkspaceMembership = admin
                .service_accounts()
                .workspace(&service_account.id, &membership.workspace_id)
                .await
                .unwrap();
            assert_exact(
                "membership",
                &typed,
                &raw(path(&[
                    "service_accounts",
                    &service_account.id,
                    "workspaces",
                    &membership.workspace_id,
                ]))
                .await,
            );
            let typed: Page<WorkspaceMembership> =
                admin.service_accounts().workspaces(&service_account.id).await.unwrap();
            assert_exact(
                "membership list",
                &typed,
                &raw(path(&["service_accounts", &service_account.id, "workspaces"])).await,
            );

            // A rule (every matcher populated) and its workspaces.
            let rule = admin
                .rules()
                .create(
                    &serde_json::from_value(json!({
                        "name": "deploy", "description": "prod deploys", "issuer_id": issuer.id,
                        "match": {"subject_prefix": "repo:acme/app:*", "audience": "https://keyless.example",
                                  "claims": {"environment": "prod"}, "condition": "claims.ref == 'main'"},
                        "target": {"type": "service_account", "service_account_id": service_account.id},
                        "oauth_scope": "workspace:developer", "token_lifetime_seconds": 600,
                    }))
                    .unwrap(),
                )
                .await
                .unwrap();
            let typed = admin.rules().get(&rule.id).await.unwrap();
            assert_exact("rule", &typed, &raw(path(&["federation_rules", &rule.id])).await);
            let typed: RuleWorkspaces = admin.rules().workspaces(&rule.id).await.unwrap();
            assert_exact(
                "rule workspaces",
                &typed,
                &raw(path(&["federation_rules", &rule.id, "workspaces"])).await,
            );
            let workspace_id = typed.data[0].workspace_id.clone();
            let typed: RuleWorkspace = admin.rules().workspace(&rule.id, &workspace_id).await.unwrap();
            assert_exact(
                "rule workspace",
                &typed,
                &raw(path(&["federation_rules", &rule.id, "workspaces", &workspace_id])).await,
            );

            // Lists of each, archived objects included.
            let all = ListOptions {
                include_archived: true,
                ..ListOptions::default()
            };
            let query = [("include_archived", "true")];
            let typed = admin.issuers().list(&all).await.unwrap();
            let raw_list: Value = api
                .get(&["v1", "organizations", "federation_issuers"], &query)
                .await
                .unwrap();
            assert_exact("issuer list", &typed, &raw_list);
            let typed = admin.service_accounts().list(&all).await.unwrap();
            let raw_list: Value = api
                .get(&["v1", "organizations", "service_accounts"], &query)
                .await
                .unwrap();
            assert_exact("service account list", &typed, &raw_list);
            let typed = admin.rules().list(&all, Some(&issuer.id)).await.unwrap();
            let raw_list: Value = api
                .get(
                    &["v1", "organizations", "federation_rules"],
                    &[("include_archived", "true"), ("issuer_id", &issuer.id)],
                )
                .await
                .unwrap();
            assert_exact("rule list", &typed, &raw_list);
            assert_eq!(typed.data.len(), 1);

            // The answers of archive and membership removal.
            let archived_rule: Value = api
                .post(
                    &["v1", "organizations", "federation_rules", &rule.id, "archive"],
                    &json!({}),
                )
                .await
                .unwrap();
            assert_exact::<FederationRule>(
                "archived rule",
                &admin.rules().archive(&rule.id).await.unwrap(),
                &archived_rule,
            );
            assert!(archived_rule["archived_at"].is_string());
            let removed = admin
                .service_accounts()
                .remove_workspace(&service_account.id, &membership.workspace_id)
                .await
                .unwrap();
            let raw_removed = serde_json::to_value(&removed).unwrap();
            assert_eq!(
                raw_removed,
                json!({"type": "service_account_workspace_membership_deleted",
                       "service_account_id": service_account.id, "workspace_id": membership.workspace_id})
            );
            assert_exact::<WorkspaceMembershipDeleted>("membership deleted", &removed, &raw_removed);
            let archived_account = admin.service_accounts().archive(&service_account.id).await.unwrap();
            assert_exact::<ServiceAccount>(
                "archived service account",
                &archived_account,
                &raw(path(&["service_accounts", &service_account.id])).await,
            );

            // The feed: every event kind written above (created, updated with changes, member added,
            // updated, removed, archived), whole.
            let typed: ActivityFeed = admin
                .activities()
                .list(&ActivityFilter {
                    limit: Some(100),
                    ..ActivityFilter::default()
                })
                .await
                .unwrap();
            let raw_feed: Value = api
                .get(&["v1", "organizations", "activities"], &[("limit", "100")])
                .await
                .unwrap();
            assert_exact("activity feed", &typed, &raw_feed);
            let updated = typed
                .data
                .iter()
                .find(|event| event.kind == "platform_service_account_updated")
                .unwrap();
            assert_eq!(
                updated.changes().unwrap(),
                &vec![json!({"type": "description", "previous_value": "d", "current_value": null})]
            );
            assert_eq!(updated.event_data().unwrap()["id"], json!(service_account.id));
        });
    }
}

#[test]
fn pagers_walk_every_page_and_stop_at_a_cap() {
    for db in databases() {
        let app = App::start(db);
        let admin = Admin::new(app.api());
        runtime().block_on(async {
            let mut created = Vec::new();
            for idx in 0..5 {
                let body = serde_json::from_value(json!({"name": format!("pager-{idx}")})).unwrap();
                created.push(admin.service_accounts().create(&body).await.unwrap().id);
            }
            let by_two = ListOptions {
                limit: Some(2),
                ..ListOptions::default()
            };
            // Page by page: 2, 2, 1, then done.
            let mut pager = admin.service_accounts().pages(&by_two);
            let mut sizes = Vec::new();
            while let Some(page) = pager.next_page().await.unwrap() {
                sizes.push(page.data.len());
            }
            assert_eq!(sizes, [2, 2, 1], "{db:?}");
            let all = admin.service_accounts().pages(&by_two).collect(None).await.unwrap();
            let mut ids: Vec<String> = all.into_iter().map(|account| account.id).collect();
            let one_page = admin.service_accounts().list(&ListOptions::default()).await.unwrap();
            assert_eq!(
                ids,
                one_page
                    .data
                    .iter()
                    .map(|account| account.id.clone())
                    .collect::<Vec<_>>(),
                "{db:?}: in the server's order"
            );
            let mut sorted = ids.clone();
            sorted.sort();
            created.sort();
            assert_eq!(sorted, created, "{db:?}: every account once");
            let capped = admin.service_accounts().pages(&by_two).collect(Some(3)).await.unwrap();
            ids.truncate(3);
            assert_eq!(capped.into_iter().map(|account| account.id).collect::<Vec<_>>(), ids);

            // The feed, two events a page, walked by after_id: the same events as one big page.
            let small = ActivityFilter {
                limit: Some(2),
                ..ActivityFilter::default()
            };
            let walked = admin.activities().pages(&small).collect(None).await.unwrap();
            let whole = admin
                .activities()
                .list(&ActivityFilter {
                    limit: Some(100),
                    ..ActivityFilter::default()
                })
                .await
                .unwrap();
            assert_eq!(walked, whole.data, "{db:?}");
            assert_eq!(walked.len(), 6, "{db:?}: the organization and five accounts");
            let capped = admin.activities().pages(&small).collect(Some(3)).await.unwrap();
            assert_eq!(capped, whole.data[..3]);
        });

        // The CLI walks every page by default and stops at --limit.
        let listed = app.json(&["service-accounts", "list", "--page-size", "2"]);
        assert_eq!(listed.as_array().unwrap().len(), 5, "{db:?}");
        let capped = app.json(&["service-accounts", "list", "--page-size", "2", "--limit", "3"]);
        assert_eq!(capped, json!(listed.as_array().unwrap()[..3]), "{db:?}");
    }
}

#[test]
fn service_accounts_from_flags_files_and_stdin_in_every_format() {
    let app = App::start(Db::Sqlite);
    let created = app.json(&["service-accounts", "create", "--name", "ci", "--description", "builds"]);
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("svac_"), "{created}");
    assert_eq!(created["organization_role"], json!("developer"));
    assert_eq!(created["description"], json!("builds"));

    // --from-file, with a flag over one of its fields.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sa.json");
    std::fs::write(
        &file,
        r#"{"name": "deploy", "description": "from the file", "organization_role": "admin"}"#,
    )
    .unwrap();
    let from_file = app.json(&[
        "service-accounts",
        "create",
        "--from-file",
        file.to_str().unwrap(),
        "--description",
        "from the flag",
    ]);
    assert_eq!(from_file["name"], json!("deploy"));
    assert_eq!(from_file["organization_role"], json!("admin"));
    assert_eq!(from_file["description"], json!("from the flag"));

    // Update from stdin, then clear the description with a flag.
    let run = app.cli_stdin(
        &["service-accounts", "update", &id, "--from-file", "-", "-o", "json"],
        r#"{"organization_role": "admin"}"#,
    );
    assert_eq!(run.json()["organization_role"], json!("admin"));
    let cleared = app.json(&["service-accounts", "update", &id, "--clear-description"]);
    assert_eq!(cleared["description"], Value::Null);

    // get: json is the server's object exactly; yaml the same value; table aligned columns.
    let got = app.json(&["service-accounts", "get", &id]);
    assert_eq!(got, cleared);
    let yaml = app.cli(&["service-accounts", "get", &id, "--output", "yaml"]);
    assert_eq!(yaml.code, Some(0), "{yaml:#?}");
    assert!(
        yaml.stdout
            .starts_with(&format!("id: {id}\ntype: service_account\nname: ci\n")),
        "{yaml:#?}"
    );
    assert!(yaml.stdout.contains("description: null\n"), "{yaml:#?}");
    let table = app.cli(&["service-accounts", "list"]);
    assert_eq!(table.code, Some(0), "{table:#?}");
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{table:#?}");
    assert!(
        lines[0].starts_with("ID    ") && lines[0].contains("  NAME  "),
        "{table:#?}"
    );
    assert!(!table.stdout.contains('\x1b'), "no colour in a pipe: {table:#?}");
    let deploy_line = lines.iter().find(|line| line.contains("  deploy  ")).unwrap();
    let ci_line = lines.iter().find(|line| line.contains("  ci  ")).unwrap();
    assert_eq!(
        deploy_line.find("deploy"),
        ci_line.find("ci  "),
        "the NAME column is aligned: {table:#?}"
    );
    assert_eq!(lines[0].find("NAME"), ci_line.find("ci  "), "{table:#?}");

    // Memberships.
    let set = app.json(&[
        "service-accounts",
        "workspaces",
        "set",
        &id,
        "default",
        "--role",
        "workspace_admin",
    ]);
    assert_eq!(set["workspace_role"], json!("workspace_admin"));
    assert_eq!(set["implicit"], json!(false));
    let memberships = app.json(&["service-accounts", "workspaces", "list", &id]);
    assert_eq!(memberships.as_array().unwrap().len(), 1, "{memberships}");
    let removed = app.json(&["service-accounts", "workspaces", "remove", &id, "default"]);
    assert_eq!(removed["type"], json!("service_account_workspace_membership_deleted"));
    let memberships = app.json(&["service-accounts", "workspaces", "list", &id]);
    assert_eq!(memberships[0]["implicit"], json!(true), "{memberships}");

    // Archive, twice: the same object.
    let archived = app.json(&["service-accounts", "archive", &id]);
    assert!(archived["archived_at"].is_string());
    assert_eq!(app.json(&["service-accounts", "archive", &id]), archived);
    let live = app.json(&["service-accounts", "list"]);
    assert_eq!(live.as_array().unwrap().len(), 1);
    let every = app.json(&["service-accounts", "list", "--include-archived"]);
    assert_eq!(every.as_array().unwrap().len(), 2);
}

#[test]
fn errors_are_one_line_with_the_right_exit_code() {
    let app = App::start(Db::Sqlite);
    app.json(&["service-accounts", "create", "--name", "ci"]);
    // The server's refusal: exit 2 with its message and request ID.
    app.cli(&["service-accounts", "create", "--name", "ci"])
        .assert_server_error("name: already in use");
    app.cli(&["rules", "get", "fdrl_missing"])
        .assert_server_error("no such federation rule: fdrl_missing");
    // A usage error is clap's: exit 2.
    let run = app.cli(&["service-accounts", "create", "--name", "x", "--role", "owner"]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("invalid value 'owner'"), "{run:#?}");
    // Local errors: exit 1.
    app.cli(&["issuers", "create", "--from-file", "/nonexistent/issuer.json"])
        .assert_local_error("--from-file /nonexistent/issuer.json: No such file or directory");
    app.cli_stdin(&["workspaces", "create", "--from-file", "-"], r#"{"nmae": "typo"}"#)
        .assert_local_error("--from-file -: unknown field `nmae`");
    app.cli(&["service-accounts", "create"])
        .assert_local_error("the flags: missing field `name`");
    let no_server = Run::from(
        app.command(&["issuers", "list"])
            .env("KEYLESS_BASE_URL", "http://127.0.0.1:1")
            .output()
            .unwrap(),
    );
    no_server.assert_local_error("Connection refused");
    assert!(
        no_server
            .stderr
            .starts_with("error: GET http://127.0.0.1:1/v1/organizations/federation_issuers: ")
    );
    let no_token = Run::from(
        app.command(&["issuers", "list"])
            .env_remove("KEYLESS_AUTH_TOKEN")
            .output()
            .unwrap(),
    );
    no_token.assert_local_error("no credentials found (");
    let bad_token = Run::from(
        app.command(&["issuers", "list"])
            .env("KEYLESS_AUTH_TOKEN", "not-a-token")
            .output()
            .unwrap(),
    );
    assert_eq!(bad_token.code, Some(2), "{bad_token:#?}");
    assert!(bad_token.stderr.contains("authentication_error"), "{bad_token:#?}");
}

#[test]
fn issuers_and_rules_through_the_cli() {
    let app = App::start(Db::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, json!({"keys": inline_keys()}).to_string()).unwrap();
    let jwks_path = jwks_file.to_str().unwrap();

    // verify: a dry run, nothing created.
    let report = app.json(&[
        "issuers",
        "verify",
        "--issuer-url",
        "https://issuer.example.com",
        "--jwks-file",
        jwks_path,
    ]);
    assert_eq!(report["ok"], json!(true), "{report}");
    assert_eq!(report["keys"].as_array().unwrap().len(), 1);
    let text = app.cli(&[
        "issuers",
        "verify",
        "--issuer-url",
        "https://issuer.example.com",
        "--jwks-file",
        jwks_path,
    ]);
    assert_eq!(text.code, Some(0), "{text:#?}");
    assert!(text.stdout.starts_with("ok: true\n"), "{text:#?}");
    assert_eq!(app.json(&["issuers", "list"]), json!([]));

    let issuer = app.json(&[
        "issuers",
        "create",
        "--name",
        "ci-issuer",
        "--issuer-url",
        "https://issuer.example.com",
        "--jwks-file",
        jwks_path,
        "--check-jti",
        "false",
    ]);
    let issuer_id = issuer["id"].as_str().unwrap().to_owned();
    assert_eq!(issuer["jwks"]["type"], json!("inline"));
    assert_eq!(issuer["check_jti"], json!(false));
    let updated = app.json(&["issuers", "update", &issuer_id, "--max-jwt-lifetime-seconds", "600"]);
    assert_eq!(updated["max_jwt_lifetime_seconds"], json!(600));
    assert_eq!(
        updated["jwks"], issuer["jwks"],
        "an update without --jwks-* keeps the keys"
    );
    let table = app.cli(&["issuers", "get", &issuer_id]);
    assert!(
        table.stdout.starts_with("ID  ") && table.stdout.contains("ci-issuer"),
        "{table:#?}"
    );

    let account = app.json(&["service-accounts", "create", "--name", "deployer"]);
    let account_id = account["id"].as_str().unwrap();

    // A rule from flags.
    let rule = app.json(&[
        "rules",
        "create",
        "--name",
        "deploy",
        "--issuer-id",
        &issuer_id,
        "--subject-prefix",
        "repo:acme/app:*",
        "--claim",
        "environment=prod",
        "--service-account-id",
        account_id,
        "--token-lifetime-seconds",
        "900",
    ]);
    let rule_id = rule["id"].as_str().unwrap().to_owned();
    assert_eq!(
        rule["match"],
        json!({"subject_prefix": "repo:acme/app:*", "audience": null, "claims": {"environment": "prod"}, "condition": null})
    );
    assert_eq!(
        rule["target"],
        json!({"type": "service_account", "service_account_id": account_id})
    );
    assert_eq!(rule["oauth_scope"], json!("workspace:developer"));
    assert_eq!(rule["token_lifetime_seconds"], json!(900));

    // A rule from a file, with flags over its fields and inside its match.
    let file = dir.path().join("rule.json");
    std::fs::write(
        &file,
        json!({"name": "from-file", "description": "d", "issuer_id": issuer_id,
               "match": {"subject_prefix": "repo:acme/web:ref:refs/heads/main"},
               "target": {"type": "service_account", "service_account_id": account_id},
               "applies_to_all_workspaces": true})
        .to_string(),
    )
    .unwrap();
    let second = app.json(&[
        "rules",
        "create",
        "--from-file",
        file.to_str().unwrap(),
        "--audience",
        "https://keyless.example",
        "--name",
        "overridden",
    ]);
    assert_eq!(second["name"], json!("overridden"));
    assert_eq!(
        second["match"]["subject_prefix"],
        json!("repo:acme/web:ref:refs/heads/main")
    );
    assert_eq!(second["match"]["audience"], json!("https://keyless.example"));
    assert_eq!(second["applies_to_all_workspaces"], json!(true));
    let second_id = second["id"].as_str().unwrap();

    let listed = app.json(&["rules", "list", "--issuer-id", &issuer_id]);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let yaml = app.cli(&["rules", "get", &rule_id, "-o", "yaml"]);
    assert!(
        yaml.stdout.contains("match:\n  subject_prefix: repo:acme/app:*\n"),
        "{yaml:#?}"
    );

    let updated = app.json(&[
        "rules",
        "update",
        second_id,
        "--clear-description",
        "--oauth-scope",
        "workspace:user",
    ]);
    assert_eq!(updated["description"], Value::Null);
    assert_eq!(updated["oauth_scope"], json!("workspace:user"));
    assert_eq!(updated["match"], second["match"], "no match flag: the match is kept");

    // Rule workspaces.
    let workspaces = app.json(&["rules", "workspaces", "list", &rule_id]);
    assert_eq!(workspaces["applies_to_all_workspaces"], json!(false));
    let default_workspace = workspaces["data"][0]["workspace_id"].as_str().unwrap().to_owned();
    let all = app.cli(&["rules", "workspaces", "list", second_id]);
    assert_eq!(all.stdout, format!("{second_id} applies to all workspaces\n"));
    let again = app.json(&["rules", "workspaces", "add", &rule_id, "default"]);
    assert_eq!(
        again["workspace_ids"],
        json!([default_workspace]),
        "enabling again changes nothing"
    );
    app.cli(&["rules", "workspaces", "remove", &rule_id, "default"])
        .assert_server_error(&format!(
            "workspace_id: {default_workspace} is the rule's only workspace; archive the rule instead"
        ));

    // Archive order: the issuer is refused while rules use it.
    let refused = app.cli(&["issuers", "archive", &issuer_id]);
    assert_eq!(refused.code, Some(2), "{refused:#?}");
    assert!(refused.stderr.contains("conflict_error"), "{refused:#?}");
    for id in [rule_id.as_str(), second_id] {
        assert!(app.json(&["rules", "archive", id])["archived_at"].is_string());
    }
    assert!(app.json(&["issuers", "archive", &issuer_id])["archived_at"].is_string());
}

#[test]
fn activities_filter_by_type_and_follow_new_events() {
    let app = App::start(Db::Sqlite);
    app.json(&["service-accounts", "create", "--name", "first"]);
    let created = app.json(&["activities", "list", "--type", "platform_service_account_created"]);
    let events = created.as_array().unwrap();
    assert_eq!(events.len(), 1, "{created}");
    assert_eq!(events[0]["event_data"]["name"], json!("first"));
    let table = app.cli(&["activities", "list", "--limit", "1"]);
    assert_eq!(table.stdout.lines().count(), 2, "{table:#?}");
    assert!(table.stdout.starts_with("ID  "), "{table:#?}");

    // --follow: the backlog, then an event recorded after it started.
    let mut follower = app
        .command(&[
            "activities",
            "list",
            "--follow",
            "--interval",
            "0.2",
            "--type",
            "platform_service_account_created",
            "-o",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    let stdout = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let next_event = || -> Value {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the follower printed a line in time");
        serde_json::from_str(&line).unwrap()
    };
    assert_eq!(next_event()["event_data"]["name"], json!("first"), "the backlog first");
    let second = app.json(&["service-accounts", "create", "--name", "second"]);
    let event = next_event();
    assert_eq!(event["type"], json!("platform_service_account_created"));
    assert_eq!(event["resource_id"], second["id"]);
    follower.kill().unwrap();
    follower.wait().unwrap();
}

#[test]
fn completions_print_a_script() {
    let run = Run::from(
        Command::new(env!("CARGO_BIN_EXE_keyless"))
            .args(["completions", "bash"])
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(
        run.stdout.contains("_keyless()") && run.stdout.contains("service-accounts"),
        "{run:#?}"
    );
    assert!(run.stdout.contains("complete -F _keyless"), "{run:#?}");
}

/// An issuer `ci` (`https://issuer.example.com`) whose inline JWKS holds a fresh ES256 key, and a
/// service account `deployer`: `(key, issuer, account)`.
fn signing_issuer(app: &App, dir: &std::path::Path) -> (SigningKey, Value, Value) {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let jwks_file = dir.join("jwks.json");
    std::fs::write(&jwks_file, json!({ "keys": [key.public_jwk()] }).to_string()).unwrap();
    let issuer = app.json(&[
        "issuers",
        "create",
        "--name",
        "ci",
        "--issuer-url",
        "https://issuer.example.com",
        "--jwks-file",
        jwks_file.to_str().unwrap(),
    ]);
    let account = app.json(&["service-accounts", "create", "--name", "deployer"]);
    (key, issuer, account)
}

#[test]
fn rules_simulate_prints_every_check_and_the_verdict() {
    let app = App::start(Db::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let (key, issuer, account) = signing_issuer(&app, dir.path());
    let issuer_id = issuer["id"].as_str().unwrap();
    let rule = app.json(&[
        "rules",
        "create",
        "--name",
        "deploy",
        "--issuer-id",
        issuer_id,
        "--subject-prefix",
        "repo:acme/app:*",
        "--claim",
        "repository_owner=acme",
        "--audience",
        "keyless-test",
        "--service-account-id",
        account["id"].as_str().unwrap(),
        "--token-lifetime-seconds",
        "600",
    ]);
    let rule_id = rule["id"].as_str().unwrap();

    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let claims = json!({
        "iss": "https://issuer.example.com", "sub": "repo:acme/app:ref:refs/heads/main", "aud": "keyless-test",
        "repository_owner": "acme", "iat": now, "exp": now + 900,
    });
    let token = key.sign_jwt(claims.as_object().unwrap()).unwrap();
    let token_file = dir.path().join("token.jwt");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let token_path = token_file.to_str().unwrap();

    // A token that would be granted: every check ✓, the verdict with scope and lifetime. The
    // granted lifetime is min(600, 2 × (exp − now)): with exp 900 s out it stays 600 however slowly
    // the CLI runs.
    let granted = app.cli(&["rules", "simulate", "--rule", rule_id, "--token-file", token_path]);
    assert_eq!(granted.code, Some(0), "{granted:#?}");
    assert!(granted.stdout.starts_with("signature: verified\n"), "{granted:#?}");
    assert!(
        granted.stdout.contains(&format!(
            "deploy ({rule_id}): would grant workspace:developer for 600 s\n"
        )),
        "{granted:#?}"
    );
    let subject_row = granted
        .stdout
        .lines()
        .find(|line| line.contains("match.subject_prefix"))
        .unwrap();
    let cells: Vec<&str> = subject_row.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "✓",
            "match.subject_prefix",
            "repo:acme/app:*",
            "repo:acme/app:ref:refs/heads/main",
            "-"
        ]
    );
    assert!(!granted.stdout.contains('✗'), "{granted:#?}");
    assert!(!granted.stdout.contains(&token) && !granted.stderr.contains(&token));

    // The same token from stdin.
    let stdin = app.cli_stdin(
        &["rules", "simulate", "--rule", rule_id, "--token", "-", "-o", "json"],
        &token,
    );
    let answer = stdin.json();
    assert_eq!(answer["verified"], json!(true));
    assert_eq!(answer["results"][0]["verdict"], json!("would_grant"));

    // A claim set the rule rejects: exit 0 (it is a report), both failing matchers marked ✗.
    let mut evil = claims.clone();
    evil["sub"] = json!("repo:evil/app:ref:refs/heads/main");
    evil["repository_owner"] = json!("evil");
    let claims_file = dir.path().join("claims.json");
    std::fs::write(&claims_file, evil.to_string()).unwrap();
    let rejected = app.cli(&[
        "rules",
        "simulate",
        "--issuer",
        issuer_id,
        "--claims-file",
        claims_file.to_str().unwrap(),
    ]);
    assert_eq!(rejected.code, Some(0), "{rejected:#?}");
    assert!(
        rejected.stdout.starts_with("signature: not verified\n"),
        "{rejected:#?}"
    );
    assert!(
        rejected.stdout.contains("would reject: subject_mismatch\n"),
        "{rejected:#?}"
    );
    let failed: Vec<&str> = rejected.stdout.lines().filter(|line| line.starts_with('✗')).collect();
    assert_eq!(failed.len(), 2, "{rejected:#?}");
    assert!(failed[0].contains("match.subject_prefix") && failed[0].ends_with("subject_mismatch"));
    assert!(failed[1].contains("match.claims.repository_owner") && failed[1].ends_with("claim_mismatch"));

    // The typed answer is exactly the server's JSON.
    for body in [
        json!({ "token": token, "rule_id": rule_id }),
        json!({ "claims": evil, "issuer_id": issuer_id, "scope": "workspace:developer" }),
    ] {
        let raw = app.server.api(
            "POST",
            "/v1/organizations/federation_rules/simulate",
            &app.token,
            Some(body),
            200,
        );
        let typed: keyless_api::Simulation = serde_json::from_value(raw.clone()).unwrap();
        assert_exact("simulation", &typed, &raw);
    }

    // A token on the command line is refused before anything is sent; a server refusal exits 2.
    app.cli(&["rules", "simulate", "--rule", rule_id, "--token", &token])
        .assert_local_error("--token: only `-`");
    app.cli(&[
        "rules",
        "simulate",
        "--rule",
        "fdrl_missing",
        "--token-file",
        token_path,
    ])
    .assert_server_error("rule_id: no such federation rule: fdrl_missing");
}

#[test]
fn rules_replay_shows_which_refused_exchanges_a_draft_would_let_through_and_dry_run_creates_nothing() {
    let app = App::start(Db::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let (key, issuer, account) = signing_issuer(&app, dir.path());
    let issuer_id = issuer["id"].as_str().unwrap();
    let account_id = account["id"].as_str().unwrap();
    let rule = app.json(&[
        "rules",
        "create",
        "--name",
        "deploy-main",
        "--issuer-id",
        issuer_id,
        "--subject-prefix",
        "repo:acme/app:ref:refs/heads/main",
        "--audience",
        "keyless-test",
        "--service-account-id",
        account_id,
    ]);
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    for (sub, jti) in [
        ("repo:acme/app:ref:refs/heads/release", "a"),
        ("repo:evil/app:ref:refs/heads/main", "b"),
    ] {
        let claims = json!({
            "iss": "https://issuer.example.com", "sub": sub, "aud": "keyless-test", "jti": jti,
            "iat": now, "exp": now + 300,
        });
        let token = key.sign_jwt(claims.as_object().unwrap()).unwrap();
        let refused = app.server.api(
            "POST",
            "/v1/oauth/token",
            &app.token,
            Some(json!({
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": token,
                "federation_rule_id": rule["id"],
            })),
            400,
        );
        assert_eq!(refused["error_code"], "subject_mismatch", "{refused}");
    }

    let draft = [
        "--issuer-id",
        issuer_id,
        "--subject-prefix",
        "repo:acme/app:ref:refs/heads/*",
        "--audience",
        "keyless-test",
        "--service-account-id",
        account_id,
    ];
    let run = app.cli(&[&["rules", "replay"][..], &draft].concat());
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(
        run.stdout.starts_with(&format!(
            "2 refused exchange(s) of {issuer_id} replayed through the draft: 1 would pass, 0 would pass if \
             their signature verified, 1 would still be refused, 0 not replayable\n"
        )),
        "{run:#?}"
    );
    let rows: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .skip(3)
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{run:#?}");
    assert_eq!(
        rows[0][1..5],
        [
            "repo:evil/app:ref:refs/heads/main",
            "subject_mismatch",
            "would_reject",
            "subject_mismatch"
        ]
    );
    assert_eq!(
        rows[1][1..5],
        [
            "repo:acme/app:ref:refs/heads/release",
            "subject_mismatch",
            "would_pass",
            "workspace:developer"
        ]
    );

    // The stored rule, as it is, refuses both again; the typed answer is exactly the server's JSON.
    let stored = app
        .cli(&["rules", "replay", "--rule", rule["id"].as_str().unwrap(), "-o", "json"])
        .json();
    assert_eq!(stored["summary"]["would_reject"], 2, "{stored}");
    let raw = app.server.api(
        "POST",
        "/v1/organizations/federation_rules/replay",
        &app.token,
        Some(json!({ "rule_id": rule["id"], "limit": 1 })),
        200,
    );
    let typed: keyless_api::Replay = serde_json::from_value(raw.clone()).unwrap();
    assert_exact("replay", &typed, &raw);
    app.cli(&[&["rules", "replay", "--rule", rule["id"].as_str().unwrap()][..], &draft].concat())
        .assert_local_error("--rule: replays a stored rule");

    // --dry-run: a create checked, nothing created; a refusal exits 2 with its message.
    let before = app.json(&["rules", "list"]);
    let run = app.cli(&[&["rules", "create", "--dry-run", "--name", "wider"][..], &draft].concat());
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(run.stdout, "valid: a create would succeed (nothing was created)\n");
    app.cli(&[
        "rules",
        "create",
        "--dry-run",
        "--name",
        "loose",
        "--issuer-id",
        issuer_id,
        "--subject-prefix",
        "*",
        "--service-account-id",
        account_id,
    ])
    .assert_server_error(
        "match: an identity constraint is required: a subject_prefix other than \"*\", a claims entry, or a \
         condition that is not true for an empty claim set",
    );
    assert_eq!(app.json(&["rules", "list"]), before);
}
