//! `keyless bootstrap admin-rule` as a process, on SQLite and (with `KEYLESS_TEST_POSTGRES_URL`) on a
//! fresh PostgreSQL database: it creates the issuer, the admin service account and the `org:admin`
//! rule that `keyless serve` then serves (also while it runs), reuses what already says the same,
//! refuses a different rule under the same name, a loose subject and a bad issuer URL, each with one
//! line and exit 1.

use std::path::Path;

use serde_json::json;

use crate::support::{Db, Server, Site, databases};

const GITHUB: &str = "https://token.actions.githubusercontent.com";
const SUBJECT: &str = "repo:acme/infra:ref:refs/heads/main";
/// The public URL `bootstrap admin-rule` reports when nothing configures one.
const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";

/// The IDs in `bootstrap admin-rule`'s text output: the second word of each of its first four lines.
fn ids_of(text: &str) -> [String; 4] {
    let ids: Vec<String> = text
        .lines()
        .take(4)
        .map(|line| {
            let mut words = line.split("  ").map(str::trim).filter(|word| !word.is_empty());
            words.next().unwrap();
            words.next().unwrap().to_owned()
        })
        .collect();
    ids.try_into().unwrap()
}

fn first_start_note(data_dir: &Path) -> String {
    format!(
        "first start: organization created; a one-time org:admin token (valid 24 hours) is in {}\n",
        data_dir.join("bootstrap.json").display()
    )
}

#[test]
fn admin_rule_creates_the_three_objects_that_keyless_serve_then_serves() {
    for db in databases() {
        let site = Site::new(db);
        let run = site.bootstrap(&["--issuer", GITHUB, "--subject", SUBJECT]);
        assert_eq!(run.code, Some(0), "{db:?}: {run:#?}");
        assert_eq!(run.stderr, first_start_note(&site.data_dir()), "{db:?}");
        let [organization_id, issuer_id, service_account_id, rule_id] = ids_of(&run.stdout);
        assert!(issuer_id.starts_with("fdis_"), "{issuer_id}");
        assert!(service_account_id.starts_with("svac_"), "{service_account_id}");
        assert!(rule_id.starts_with("fdrl_"), "{rule_id}");
        assert_eq!(
            run.stdout,
            format!(
                "organization       {organization_id}\n\
                 federation issuer  {issuer_id}  created  bootstrap-token-actions-githubusercontent-com\n\
                 service account    {service_account_id}  created  bootstrap-admin (organization_role admin)\n\
                 federation rule    {rule_id}  created  bootstrap-admin-rule (scope org:admin)\n\
                 \n\
                 Next step: the workload exchanges its OIDC token for an org:admin access token.\n\
                 The token must carry iss {GITHUB}, sub {SUBJECT} and aud {DEFAULT_PUBLIC_URL} (the server's public_url).\n\
                 \n\
                 \x20 POST {DEFAULT_PUBLIC_URL}/v1/oauth/token\n\
                 \x20 Content-Type: application/json\n\
                 \n\
                 \x20 {{\"grant_type\": \"urn:ietf:params:oauth:grant-type:jwt-bearer\", \"assertion\": \"<the workload's OIDC token>\", \
                 \"federation_rule_id\": \"{rule_id}\", \"organization_id\": \"{organization_id}\", \
                 \"service_account_id\": \"{service_account_id}\"}}\n"
            ),
            "{db:?}"
        );
        let (file_organization_id, admin_token) = site.bootstrap_file();
        assert_eq!(file_organization_id, organization_id);
        assert_eq!(
            site.data_dir().join("keyless.db").exists(),
            db == Db::Sqlite,
            "{db:?}: the storage the flags name was used"
        );

        let server = Server::start(&site);
        let rule = server.api(
            "GET",
            &format!("/v1/organizations/federation_rules/{rule_id}"),
            &admin_token,
            None,
            200,
        );
        assert_eq!(rule["id"], json!(rule_id));
        assert_eq!(rule["name"], json!("bootstrap-admin-rule"));
        assert_eq!(rule["oauth_scope"], json!("org:admin"));
        assert_eq!(rule["issuer_id"], json!(issuer_id));
        assert_eq!(
            rule["match"],
            json!({"subject_prefix": SUBJECT, "audience": null, "claims": null, "condition": null})
        );
        assert_eq!(
            rule["target"],
            json!({"type": "service_account", "service_account_id": service_account_id})
        );
        assert_eq!(rule["created_by_actor_id"], json!("keyless-bootstrap-cli"));
        let service_account = server.api(
            "GET",
            &format!("/v1/organizations/service_accounts/{service_account_id}"),
            &admin_token,
            None,
            200,
        );
        assert_eq!(service_account["organization_role"], json!("admin"));
        let issuer = server.api(
            "GET",
            &format!("/v1/organizations/federation_issuers/{issuer_id}"),
            &admin_token,
            None,
            200,
        );
        assert_eq!(issuer["issuer_url"], json!(GITHUB));
        assert_eq!(issuer["jwks"]["type"], json!("discovery"));
        // One activity event per object, by the CLI's actor, under one request ID.
        let feed = server.api(
            "GET",
            "/v1/organizations/activities?actor_id=keyless-bootstrap-cli",
            &admin_token,
            None,
            200,
        );
        let events = feed["data"].as_array().unwrap();
        let mut seen: Vec<(&str, &str)> = events
            .iter()
            .map(|event| (event["type"].as_str().unwrap(), event["resource_id"].as_str().unwrap()))
            .collect();
        seen.sort_unstable();
        let mut expected = vec![
            ("platform_federation_issuer_created", issuer_id.as_str()),
            ("platform_federation_rule_created", rule_id.as_str()),
            ("platform_service_account_created", service_account_id.as_str()),
        ];
        expected.sort_unstable();
        assert_eq!(seen, expected, "{db:?}");
        assert!(events[0]["request_id"].as_str().unwrap().starts_with("req_"));
        assert!(
            events
                .iter()
                .all(|event| event["request_id"] == events[0]["request_id"])
        );

        // While the server runs: a second rule for another workload (explicit audience) reuses the
        // issuer and the service account, and the server serves it at once.
        let second = site.bootstrap(&[
            "--issuer",
            GITHUB,
            "--subject",
            "repo:acme/deploy:environment:prod",
            "--audience",
            "https://keyless.acme.example",
            "--rule-name",
            "deploy-admin",
            "--output",
            "json",
        ]);
        let second_json = second.json();
        assert_eq!(
            second.stderr,
            format!(
                "note: reusing the active federation issuer {issuer_id} (bootstrap-token-actions-githubusercontent-com) \
                 for {GITHUB}\nnote: reusing the active admin service account {service_account_id} (bootstrap-admin)\n"
            )
        );
        let second_rule_id = second_json["federation_rule_id"].as_str().unwrap().to_owned();
        assert_ne!(second_rule_id, rule_id);
        assert_eq!(
            second_json,
            json!({
                "organization_id": organization_id,
                "issuer_id": issuer_id,
                "service_account_id": service_account_id,
                "federation_rule_id": second_rule_id,
                "created": {"issuer": false, "service_account": false, "federation_rule": true},
            })
        );
        let second_rule = server.api(
            "GET",
            &format!("/v1/organizations/federation_rules/{second_rule_id}"),
            &admin_token,
            None,
            200,
        );
        assert_eq!(second_rule["oauth_scope"], json!("org:admin"));
        assert_eq!(
            second_rule["match"]["subject_prefix"],
            json!("repo:acme/deploy:environment:prod")
        );
        assert_eq!(second_rule["match"]["audience"], json!("https://keyless.acme.example"));

        // A developer service account under the requested name is refused, not promoted.
        let developer = server.api(
            "POST",
            "/v1/organizations/service_accounts",
            &admin_token,
            Some(json!({"name": "ci-developer"})),
            200,
        );
        let developer_id = developer["id"].as_str().unwrap();
        site.bootstrap(&[
            "--issuer",
            GITHUB,
            "--subject",
            SUBJECT,
            "--service-account-name",
            "ci-developer",
            "--rule-name",
            "ci-admin",
        ])
        .assert_refused(&format!(
            "--service-account-name: the service account ci-developer ({developer_id}) has organization_role \
             developer, not admin; promote it through the Admin API or pass another --service-account-name"
        ));
        let developer = server.api(
            "GET",
            &format!("/v1/organizations/service_accounts/{developer_id}"),
            &admin_token,
            None,
            200,
        );
        assert_eq!(developer["organization_role"], json!("developer"));
    }
}

#[test]
fn running_it_twice_reuses_everything_and_a_different_rule_under_the_name_is_refused() {
    for db in databases() {
        let site = Site::new(db);
        let args = ["--issuer", GITHUB, "--subject", SUBJECT, "--output", "json"];
        let first = site.bootstrap(&args).json();
        assert_eq!(
            first["created"],
            json!({"issuer": true, "service_account": true, "federation_rule": true}),
            "{db:?}"
        );
        let again = site.bootstrap(&args);
        let again_json = again.json();
        assert_eq!(
            again_json,
            json!({
                "organization_id": first["organization_id"],
                "issuer_id": first["issuer_id"],
                "service_account_id": first["service_account_id"],
                "federation_rule_id": first["federation_rule_id"],
                "created": {"issuer": false, "service_account": false, "federation_rule": false},
            }),
            "{db:?}"
        );
        let (issuer_id, service_account_id, rule_id) = (
            first["issuer_id"].as_str().unwrap(),
            first["service_account_id"].as_str().unwrap(),
            first["federation_rule_id"].as_str().unwrap(),
        );
        assert_eq!(
            again.stderr,
            format!(
                "note: reusing the active federation issuer {issuer_id} (bootstrap-token-actions-githubusercontent-com) \
                 for {GITHUB}\n\
                 note: reusing the active admin service account {service_account_id} (bootstrap-admin)\n\
                 note: reusing the federation rule {rule_id} (bootstrap-admin-rule): it already grants org:admin to \
                 this subject\n"
            ),
            "{db:?}"
        );

        // Another workload under the default rule name: refused, and nothing is created.
        site.bootstrap(&["--issuer", GITHUB, "--subject", "repo:acme/other:ref:refs/heads/main"])
            .assert_refused(&format!(
                "--rule-name: the federation rule bootstrap-admin-rule ({rule_id}) already exists with a different \
                 match.subject_prefix; nothing was changed: pass another --rule-name, or change or archive {rule_id} \
                 through the Admin API"
            ));
        // A rule name in use by a rule on another issuer is refused before that issuer is created.
        site.bootstrap(&["--issuer", "https://gitlab.acme.example", "--subject", SUBJECT])
            .assert_refused(&format!(
                "--rule-name: the federation rule bootstrap-admin-rule ({rule_id}) already exists with a different \
                 issuer_id; nothing was changed: pass another --rule-name, or change or archive {rule_id} \
                 through the Admin API"
            ));
        let after = site.bootstrap(&args).json();
        assert_eq!(after, again_json, "{db:?}: the refusals changed nothing");
        let created = site
            .bootstrap(&[
                "--issuer",
                "https://gitlab.acme.example",
                "--subject",
                SUBJECT,
                "--rule-name",
                "gitlab-admin",
                "--output",
                "json",
            ])
            .json();
        assert_eq!(
            created["created"],
            json!({"issuer": true, "service_account": false, "federation_rule": true}),
            "{db:?}: the refused run left no issuer behind"
        );
    }
}

#[test]
fn a_loose_subject_is_refused_before_anything_is_written() {
    for db in databases() {
        let site = Site::new(db);
        site.bootstrap(&["--issuer", GITHUB, "--subject", "*"]).assert_refused(
            "--subject: `*` matches every subject of the issuer; an org:admin rule needs the exact subject of one \
             workload",
        );
        site.bootstrap(&["--issuer", GITHUB, "--subject", "*", "--allow-prefix"])
            .assert_refused(
                "--subject: `*` matches every subject of the issuer; an org:admin rule needs the exact subject of \
                 one workload",
            );
        site.bootstrap(&["--issuer", GITHUB, "--subject", "repo:acme/*"])
            .assert_refused(
                "--subject: `repo:acme/*` is a prefix pattern (trailing `*`) that would grant org:admin to every \
             matching subject; give the exact subject, or pass --allow-prefix if a prefix is really meant",
            );
        assert!(!site.data_dir().exists(), "{db:?}: a refused request writes nothing");

        let run = site.bootstrap(&[
            "--issuer",
            GITHUB,
            "--subject",
            "repo:acme/*",
            "--allow-prefix",
            "--output",
            "json",
        ]);
        assert_eq!(
            run.json()["created"],
            json!({"issuer": true, "service_account": true, "federation_rule": true}),
            "{db:?}"
        );
    }
}

#[test]
fn an_invalid_issuer_url_is_one_line_and_exit_1() {
    for db in databases() {
        let site = Site::new(db);
        site.bootstrap(&["--issuer", "ftp://x", "--subject", SUBJECT])
            .assert_refused("--issuer: url must use https scheme");
        site.bootstrap(&["--issuer", "not a url", "--subject", SUBJECT])
            .assert_refused("--issuer: not a valid URL (relative URL without a base)");
        site.bootstrap(&[
            "--issuer",
            GITHUB,
            "--subject",
            SUBJECT,
            "--jwks-url",
            "http://x.example/jwks",
        ])
        .assert_refused("--jwks-url: url must use https scheme");
        assert!(!site.data_dir().exists(), "{db:?}: a refused request writes nothing");
    }
}
