//! Workspace API keys and the usage summary against a real `keyless serve`:
//! - the typed client's `ApiKey`, `CreatedApiKey`, `Page<ApiKey>` and `UsageSummary` serialize back to
//!   exactly the server's JSON;
//! - `keyless api-keys create|list|get|update|revoke` as a user runs them: the key printed once (table:
//!   below the row, a warning on stderr; `-o json`: `.key`; `-o id`: the ID and a warning), never again
//!   — not by `list`, `get`, `update`, `revoke`, nor in the activity feed;
//! - `keyless usage` over the default 24 hours, `--since` and filters, as a table and as JSON.
//!
//! No request is made *with* a key here (that is the authorization path's test), so `last_used_at`
//! stays null and the usage summary has no rows.

use keyless_api::{ApiKey, CreatedApiKey, Page, UsageSummary};
use keyless_client::admin::{Admin, ListOptions, UsageFilter};
use serde_json::{Value, json};

use crate::admin::{App, assert_exact, runtime};
use crate::support::{Db, databases};

/// RFC 3339 to Unix seconds.
fn unix(text: &str) -> i64 {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

/// Asserts `hint` is the key's hint: `<start>…<end>`, a prefix and a suffix of `key`, and not the key.
fn assert_hint_of(hint: &str, key: &str) {
    let (start, end) = hint
        .split_once('…')
        .unwrap_or_else(|| panic!("no … in the hint {hint:?}"));
    assert!(start.starts_with("keyless_ak_"), "{hint}");
    assert!(
        key.starts_with(start) && key.ends_with(end),
        "{hint} is not a hint of the created key"
    );
    assert!(start.len() + end.len() < key.len(), "{hint} shows the whole key");
}

#[test]
fn api_keys_round_trip_the_servers_json_exactly() {
    for db in databases() {
        let app = App::start(db);
        let api = app.api();
        let admin = Admin::new(api.clone());
        runtime().block_on(async {
            let body = json!({"name": "ci-legacy", "oauth_scope": "workspace:developer",
                              "expires_at": "2099-12-01T00:00:00Z"});
            let raw_created: Value = api.post(&["v1", "organizations", "api_keys"], &body).await.unwrap();
            let created: CreatedApiKey = serde_json::from_value(raw_created.clone()).unwrap();
            assert_exact("created api key", &created, &raw_created);
            let id = created.api_key.id.clone();

            let typed = admin.api_keys().get(&id).await.unwrap();
            let raw: Value = api.get(&["v1", "organizations", "api_keys", &id], &[]).await.unwrap();
            assert_exact("api key", &typed, &raw);
            assert_eq!(
                typed, created.api_key,
                "{db:?}: the object after creation is the created one"
            );
            assert!(raw.get("key").is_none(), "{raw}");

            let created_by_client = admin
                .api_keys()
                .create(&serde_json::from_value(json!({"name": "second", "workspace_id": "default"})).unwrap())
                .await
                .unwrap();
            assert!(created_by_client.key.expose_secret().starts_with("keyless_ak_"));

            let all = ListOptions {
                include_archived: true,
                ..ListOptions::default()
            };
            let typed: Page<ApiKey> = admin.api_keys().list(&all, Some("default")).await.unwrap();
            let raw_list: Value = api
                .get(
                    &["v1", "organizations", "api_keys"],
                    &[("include_archived", "true"), ("workspace_id", "default")],
                )
                .await
                .unwrap();
            assert_exact("api key list", &typed, &raw_list);
            assert_eq!(typed.data.len(), 2, "{raw_list}");

            let updated = admin
                .api_keys()
                .update(&id, &serde_json::from_value(json!({"status": "inactive"})).unwrap())
                .await
                .unwrap();
            assert_exact(
                "updated api key",
                &updated,
                &api.get(&["v1", "organizations", "api_keys", &id], &[]).await.unwrap(),
            );
            let archived = admin.api_keys().archive(&id).await.unwrap();
            assert_exact(
                "archived api key",
                &archived,
                &api.get(&["v1", "organizations", "api_keys", &id], &[]).await.unwrap(),
            );

            let summary: UsageSummary = admin
                .usage()
                .summary(&UsageFilter {
                    starting_at: Some("2026-01-01T00:00:00Z".to_owned()),
                    ..UsageFilter::default()
                })
                .await
                .unwrap();
            let raw_usage: Value = api
                .get(
                    &["v1", "organizations", "usage"],
                    &[("starting_at", "2026-01-01T00:00:00Z")],
                )
                .await
                .unwrap();
            assert_exact("usage summary", &summary, &raw_usage);
        });
    }
}

#[test]
fn api_keys_through_the_cli_show_the_key_once() {
    let app = App::start(Db::Sqlite);

    // Table: the row, then the key; the warning on stderr, without the key.
    let table = app.cli(&["api-keys", "create", "--name", "ci-legacy"]);
    assert_eq!(table.code, Some(0), "{table:#?}");
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{table:#?}");
    assert!(
        lines[0].starts_with("ID  ") && lines[0].contains("  KEY HINT  "),
        "{table:#?}"
    );
    assert!(
        lines[1].starts_with("apikey_") && lines[1].contains("  ci-legacy  "),
        "{table:#?}"
    );
    assert_eq!(lines[2], "");
    let key = lines[3]
        .strip_prefix("key: keyless_ak_")
        .map(|rest| format!("keyless_ak_{rest}"));
    let key = key.unwrap_or_else(|| panic!("no key line: {table:#?}"));
    assert!(
        table
            .stderr
            .starts_with("warning: the key above is shown only this once"),
        "{table:#?}"
    );
    assert!(!table.stderr.contains(&key), "{table:#?}");
    let first_id = lines[1].split_whitespace().next().unwrap().to_owned();

    // JSON: the object, its defaults, and the key in `.key`.
    let created = app.json(&[
        "api-keys",
        "create",
        "--name",
        "deploy",
        "--scope",
        "workspace:developer",
        "--workspace",
        "default",
        "--expires-at",
        "2099-12-01T00:00:00Z",
    ]);
    let id = created["id"].as_str().unwrap().to_owned();
    let hex = id.strip_prefix("apikey_").unwrap();
    assert!(
        hex.len() == 32 && hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{id}"
    );
    assert_eq!(created["type"], json!("api_key"));
    assert_eq!(created["name"], json!("deploy"));
    assert!(
        created["workspace_id"].as_str().unwrap().starts_with("wrkspc_"),
        "{created}"
    );
    assert_eq!(created["oauth_scope"], json!("workspace:developer"));
    assert_eq!(created["status"], json!("active"));
    assert_eq!(created["expires_at"], json!("2099-12-01T00:00:00Z"));
    assert_eq!(created["last_used_at"], Value::Null);
    assert_eq!(created["archived_at"], Value::Null);
    let deploy_key = created["key"].as_str().unwrap().to_owned();
    assert_hint_of(created["partial_key_hint"].as_str().unwrap(), &deploy_key);
    assert_ne!(deploy_key, key);

    // -o id: the ID only, and a warning that the key is gone.
    let id_only = app.cli(&["api-keys", "create", "--name", "scripted", "-o", "id"]);
    assert_eq!(id_only.code, Some(0), "{id_only:#?}");
    assert!(
        id_only.stdout.starts_with("apikey_") && id_only.stdout.lines().count() == 1,
        "{id_only:#?}"
    );
    assert!(
        id_only.stderr.starts_with("warning: -o id prints only the ID"),
        "{id_only:#?}"
    );

    // The default scope.
    let first = app.json(&["api-keys", "get", &first_id]);
    assert_eq!(first["oauth_scope"], json!("workspace:developer"));
    assert_hint_of(first["partial_key_hint"].as_str().unwrap(), &key);

    // list and get: hints, never keys; last_used_at null before any use.
    let listed = app.json(&["api-keys", "list"]);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    for api_key in listed {
        assert!(api_key.get("key").is_none(), "{api_key}");
        assert_eq!(api_key["last_used_at"], Value::Null, "{api_key}");
        assert!(
            api_key["partial_key_hint"].as_str().unwrap().starts_with("keyless_ak_"),
            "{api_key}"
        );
    }
    let got = app.json(&["api-keys", "get", &id]);
    let mut without_key = created.clone();
    without_key.as_object_mut().unwrap().remove("key");
    assert_eq!(got, without_key, "get shows the created object without the key");
    let in_default = app.json(&["api-keys", "list", "--workspace", "default"]);
    assert_eq!(in_default.as_array().unwrap().len(), 3, "{in_default}");
    let table = app.cli(&["api-keys", "list"]);
    assert_eq!(table.code, Some(0), "{table:#?}");
    assert_eq!(table.stdout.lines().count(), 4, "{table:#?}");
    let deploy_line = table.stdout.lines().find(|line| line.starts_with(&id)).unwrap();
    assert!(deploy_line.contains("  active  "), "{table:#?}");
    assert!(
        deploy_line.contains(created["partial_key_hint"].as_str().unwrap()),
        "{table:#?}"
    );
    let yaml = app.cli(&["api-keys", "get", &id, "-o", "yaml"]);
    assert!(yaml.stdout.contains("last_used_at: null\n"), "{yaml:#?}");

    // Disable, enable, rename.
    let inactive = app.json(&["api-keys", "update", &id, "--status", "inactive"]);
    assert_eq!(inactive["status"], json!("inactive"));
    assert_eq!(inactive["archived_at"], Value::Null);
    let active = app.json(&["api-keys", "update", &id, "--status", "active", "--name", "deploy-2"]);
    assert_eq!(active["status"], json!("active"));
    assert_eq!(active["name"], json!("deploy-2"));
    let inactive = app.json(&["api-keys", "update", &id, "--status", "inactive"]);
    assert_eq!(inactive["status"], json!("inactive"));

    // Revoke: archived for good; revoking again changes nothing.
    let revoked = app.json(&["api-keys", "revoke", &id]);
    assert_eq!(revoked["status"], json!("archived"));
    assert!(revoked["archived_at"].is_string(), "{revoked}");
    assert_eq!(app.json(&["api-keys", "revoke", &id]), revoked);
    let got = app.json(&["api-keys", "get", &id]);
    assert_eq!(got["status"], json!("archived"));
    assert_eq!(got, revoked);
    assert_eq!(app.json(&["api-keys", "list"]).as_array().unwrap().len(), 2);
    assert_eq!(
        app.json(&["api-keys", "list", "--include-archived"])
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Errors: one line, the right exit code.
    let archived_update = app.cli(&["api-keys", "update", &id, "--status", "active"]);
    assert_eq!(
        archived_update.code,
        Some(2),
        "a revoked key stays revoked: {archived_update:#?}"
    );
    assert!(
        archived_update.stderr.contains("invalid_request_error"),
        "{archived_update:#?}"
    );
    let taken = app.cli(&["api-keys", "create", "--name", "ci-legacy"]);
    assert_eq!(taken.code, Some(2), "{taken:#?}");
    assert!(
        taken.stderr.contains("conflict_error") && !taken.stderr.contains("keyless_ak_"),
        "{taken:#?}"
    );
    let missing = app.cli(&["api-keys", "get", "apikey_0123456789abcdef0123456789abcdef"]);
    assert_eq!(missing.code, Some(2), "{missing:#?}");
    assert!(missing.stderr.contains("not_found_error"), "{missing:#?}");
    app.cli(&["api-keys", "create"])
        .assert_local_error("the flags: missing field `name`");
    let usage_error = app.cli(&["api-keys", "update", &id, "--status", "archived"]);
    assert_eq!(usage_error.code, Some(2), "{usage_error:#?}");
    assert!(
        usage_error.stderr.contains("invalid value 'archived'"),
        "{usage_error:#?}"
    );

    // The feed records each change, and never the key.
    for kind in [
        "platform_api_key_created",
        "platform_api_key_updated",
        "platform_api_key_archived",
    ] {
        let events = app.json(&["activities", "list", "--type", kind]);
        assert!(!events.as_array().unwrap().is_empty(), "no {kind} event");
    }
    let created_events = app.json(&["activities", "list", "--type", "platform_api_key_created"]);
    assert_eq!(created_events.as_array().unwrap().len(), 3, "{created_events}");
    let feed = app.cli(&["activities", "list", "-o", "json"]);
    assert_eq!(feed.code, Some(0), "{feed:#?}");
    for secret in [&key, &deploy_key] {
        assert!(!feed.stdout.contains(secret.as_str()), "the feed holds a key");
    }
}

#[test]
fn usage_prints_the_range_and_its_rows() {
    let app = App::start(Db::Sqlite);
    let created = app.json(&["api-keys", "create", "--name", "ci"]);
    let id = created["id"].as_str().unwrap();

    // JSON: the range the server summed (the last 24 hours, whole buckets at most an hour wider), and
    // no rows, as nothing used a key.
    let summary = app.json(&["usage"]);
    let decoded: UsageSummary = serde_json::from_value(summary.clone()).unwrap();
    let span = unix(&decoded.ending_at) - unix(&decoded.starting_at);
    assert!((23 * 3600..=26 * 3600).contains(&span), "{summary}");
    assert_eq!(summary["data"], json!([]), "{summary}");
    let week = app.json(&["usage", "--since", "7d", "--principal", id, "--workspace", "default"]);
    let span = unix(week["ending_at"].as_str().unwrap()) - unix(week["starting_at"].as_str().unwrap());
    assert!((7 * 86_400 - 3600..=7 * 86_400 + 2 * 3600).contains(&span), "{week}");
    let fixed = app.json(&[
        "usage",
        "--starting-at",
        "2026-01-01T00:00:00Z",
        "--ending-at",
        "2026-01-02T00:00:00Z",
    ]);
    assert_eq!(fixed["starting_at"], json!("2026-01-01T00:00:00Z"), "{fixed}");
    assert_eq!(fixed["ending_at"], json!("2026-01-02T00:00:00Z"), "{fixed}");

    // Table: the range, and the words for an empty one.
    let table = app.cli(&[
        "usage",
        "--starting-at",
        "2026-01-01T00:00:00Z",
        "--ending-at",
        "2026-01-02T00:00:00Z",
    ]);
    assert_eq!(table.code, Some(0), "{table:#?}");
    assert_eq!(
        table.stdout,
        "from 2026-01-01T00:00:00Z to 2026-01-02T00:00:00Z: no requests\n"
    );

    // Errors: a bad --since is a usage error; a range the server refuses, the server's.
    let bad = app.cli(&["usage", "--since", "soon"]);
    assert_eq!(bad.code, Some(2), "{bad:#?}");
    assert!(bad.stderr.contains("invalid value 'soon' for '--since"), "{bad:#?}");
    let refused = app.cli(&["usage", "--starting-at", "yesterday"]);
    assert_eq!(refused.code, Some(2), "{refused:#?}");
    assert!(
        refused.stderr.starts_with("error: ") && refused.stderr.contains("invalid_request_error"),
        "{refused:#?}"
    );
}
