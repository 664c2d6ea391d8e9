//! `keyless apply` and `keyless export` against a real server (SQLite and, with
//! `KEYLESS_TEST_POSTGRES_URL`, PostgreSQL): create everything, idempotence, updates with previous and
//! new values, prune, the export round trip, invalid files, and rule lints in the apply output.

use std::path::{Path, PathBuf};

use keyless_jose::{Algorithm, SigningKey};
use serde_json::{Value, json};

use crate::admin::App;
use crate::support::{Run, databases};

fn config(keys: &Value, description: &str, subject: &str, with_loose_rule: bool) -> String {
    let mut text = format!(
        r#"version: 1
workspaces:
  - name: prod
service_accounts:
  - name: deployer
    description: {description}
    workspaces:
      - {{workspace: prod, role: workspace_developer}}
issuers:
  - name: github
    issuer_url: https://token.actions.githubusercontent.com
    jwks: {{type: inline, keys: {keys}}}
rules:
  - name: deploy
    issuer: github
    match:
      subject_prefix: "{subject}"
      claims: {{repository_owner_id: "42"}}
    service_account: deployer
    oauth_scope: workspace:developer
    token_lifetime_seconds: 900
    workspaces: [prod]
"#
    );
    if with_loose_rule {
        text.push_str(
            r#"  - name: loose
    issuer: github
    match:
      subject_prefix: "repo:acme/*"
      claims: {repository_owner: acme}
    service_account: deployer
"#,
        );
    }
    text
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn apply(app: &App, file: &Path, extra: &[&str]) -> Run {
    app.cli(&[&["apply", "-f", file.to_str().unwrap()], extra].concat())
}

fn assert_no_changes(run: &Run) {
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(run.stdout, "no changes\n", "{run:#?}");
}

#[test]
fn apply_plan_prune_and_export_converge_on_both_databases() {
    for db in databases() {
        let app = App::start(db);
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate(Algorithm::Es256).unwrap();
        let keys = json!([key.public_jwk()]);
        let main = "repo:acme/app:ref:refs/heads/main";
        let file = write(dir.path(), "org.yaml", &config(&keys, "Deploys", main, true));

        // Everything is created, and the lint rule's warnings are shown.
        let run = apply(&app, &file, &[]);
        assert_eq!(run.code, Some(0), "{db:?}: {run:#?}");
        for line in [
            "+ create workspace prod\n",
            "+ create service_account deployer\n",
            "+ create issuer github\n",
            "+ create rule deploy\n",
            "+ create rule loose\n",
            "    warning: mutable_claim (match.claims.repository_owner): ",
            "applied: 5 to create, 0 to update, 0 to archive\n",
        ] {
            assert!(run.stdout.contains(line), "{db:?}: {line}: {run:#?}");
        }
        let rules = app.json(&["rules", "list"]);
        let deploy = rules
            .as_array()
            .unwrap()
            .iter()
            .find(|rule| rule["name"] == "deploy")
            .unwrap();
        assert_eq!(deploy["match"]["subject_prefix"], main);
        assert_eq!(deploy["token_lifetime_seconds"], 900);
        let workspaces = app.json(&["workspaces", "list"]);
        let prod = workspaces
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == "prod")
            .unwrap();
        assert_eq!(deploy["workspace_ids"], json!([prod["id"]]));
        let accounts = app.json(&["service-accounts", "list"]);
        let deployer = accounts
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "deployer")
            .unwrap();
        assert_eq!(deployer["description"], "Deploys");
        assert_eq!(deploy["target"]["service_account_id"], deployer["id"]);
        let memberships = app.json(&[
            "service-accounts",
            "workspaces",
            "list",
            deployer["id"].as_str().unwrap(),
        ]);
        assert!(
            memberships
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["workspace_id"] == prod["id"] && m["workspace_role"] == "workspace_developer"),
            "{memberships}"
        );

        // Idempotent.
        assert_no_changes(&apply(&app, &file, &[]));

        // Exactly the two edits, with previous and new values; then applied, converged.
        let release = "repo:acme/app:ref:refs/heads/release";
        let edited = write(dir.path(), "edited.yaml", &config(&keys, "Deploys prod", release, true));
        let plan = apply(&app, &edited, &["--plan", "-o", "json"]).json();
        assert_eq!(
            plan,
            json!({"changes": [
                {"action": "update", "kind": "service_account", "name": "deployer", "id": deployer["id"],
                 "fields": [{"field": "description", "previous": "Deploys", "new": "Deploys prod"}]},
                {"action": "update", "kind": "rule", "name": "deploy", "id": deploy["id"],
                 "fields": [{"field": "match.subject_prefix", "previous": main, "new": release}]},
            ], "rules": [{"name": "deploy", "status": "valid", "warnings": []}]}),
            "{db:?}"
        );
        let text_plan = apply(&app, &edited, &["--plan"]);
        assert!(
            text_plan.stdout.contains(&format!(
                "~ update rule deploy\n    match.subject_prefix: \"{main}\" → \"{release}\"\n"
            )),
            "{text_plan:#?}"
        );
        let run = apply(&app, &edited, &[]);
        assert!(
            run.stdout
                .ends_with("applied: 0 to create, 2 to update, 0 to archive\n"),
            "{run:#?}"
        );
        assert_no_changes(&apply(&app, &edited, &["--plan"]));

        // A rule left out of the file stays without --prune and is archived with it.
        let without = write(
            dir.path(),
            "without.yaml",
            &config(&keys, "Deploys prod", release, false),
        );
        assert_no_changes(&apply(&app, &without, &["--plan"]));
        let run = apply(&app, &without, &["--plan", "--prune"]);
        assert_eq!(
            run.stdout,
            "- archive rule loose\nplan: 0 to create, 0 to update, 1 to archive\n"
        );
        let run = apply(&app, &without, &["--prune"]);
        assert_eq!(run.code, Some(0), "{run:#?}");
        let rules = app.json(&["rules", "list", "--include-archived"]);
        let loose = rules
            .as_array()
            .unwrap()
            .iter()
            .find(|rule| rule["name"] == "loose")
            .unwrap();
        assert!(loose["archived_at"].is_string(), "{loose}");
        assert_no_changes(&apply(&app, &without, &["--prune"]));

        // The archived name stays reserved.
        let run = apply(&app, &file, &["--plan"]);
        run.assert_local_error("rules[1].name: `loose` is the name of an archived rule");

        // Export, then apply the export: no changes (also with --prune: it holds everything live).
        let export = app.cli(&["export"]);
        assert_eq!(export.code, Some(0), "{export:#?}");
        let exported = write(dir.path(), "export.yaml", &export.stdout);
        assert_no_changes(&apply(&app, &exported, &["--plan", "--prune"]));
        let export_json = app.cli(&["export", "-o", "json"]);
        let exported_json = write(dir.path(), "export.json", &export_json.stdout);
        assert_no_changes(&apply(&app, &exported_json, &["--plan"]));

        // Invalid files: exit 1, the path named, nothing applied.
        let typo = write(
            dir.path(),
            "typo.yaml",
            &config(&keys, "x", release, false).replace("subject_prefix:", "subject_prefx:"),
        );
        apply(&app, &typo, &[]).assert_local_error("rules[0].match.subject_prefx: unknown field `subject_prefx`");
        let dangling = write(
            dir.path(),
            "dangling.yaml",
            &config(&keys, "x", release, false).replace("service_account: deployer", "service_account: nobody"),
        );
        apply(&app, &dangling, &[]).assert_local_error(
            "rules[0].service_account: no service account named `nobody` in the file or on the server",
        );
        let duplicate = write(
            dir.path(),
            "duplicate.yaml",
            &config(&keys, "x", release, false).replace("  - name: prod\n", "  - name: prod\n  - name: prod\n"),
        );
        apply(&app, &duplicate, &[])
            .assert_local_error("workspaces[1].name: duplicate name `prod` (also workspaces[0])");
        assert_no_changes(&apply(&app, &without, &["--plan"]));

        // The plan shows each written rule's lint warnings, asked of the server before anything changes.
        let widened = write(
            dir.path(),
            "widened.yaml",
            &config(&keys, "Deploys prod", release, false).replace(
                "claims: {repository_owner_id: \"42\"}",
                "claims: {repository_owner: acme}",
            ),
        );
        let run = apply(&app, &widened, &["--plan"]);
        assert_eq!(run.code, Some(0), "{run:#?}");
        assert!(
            run.stdout.contains("~ update rule deploy\n")
                && run
                    .stdout
                    .contains("    warning: mutable_claim (match.claims.repository_owner): "),
            "{run:#?}"
        );
        let events_before = app.json(&["activities", "list", "--limit", "100"]);

        // A rule the server would refuse stops the apply before anything changes: the plan says why.
        let refused_text = config(&keys, "Deploys prod", release, false)
            .replace("  - name: prod\n", "  - name: prod\n  - name: staging\n")
            + "  - {name: bad, issuer: github, service_account: deployer, match: {audience: x}}\n";
        let refused = write(dir.path(), "refused.yaml", &refused_text);
        let run = apply(&app, &refused, &["--plan"]);
        assert_eq!(run.code, Some(1), "{run:#?}");
        assert!(
            run.stdout
                .contains("+ create rule bad\n    refused: no_identity_constraint (match: "),
            "{run:#?}"
        );
        apply(&app, &refused, &[])
            .assert_local_error("the server would refuse rule bad: match: an identity constraint is required");
        assert_eq!(
            app.json(&["activities", "list", "--limit", "100"]),
            events_before,
            "neither the plan nor the refused apply changed anything"
        );

        // A rule naming an issuer the plan creates is checked when applied: a refusal then stops the
        // apply there and says what was applied already; the next apply converges.
        let deferred_text = refused_text
            .replace(
                "rules:\n",
                "  - name: ci\n    issuer_url: https://ci.example.com\n    jwks: {type: inline, keys: KEYS}\nrules:\n",
            )
            .replacen("KEYS", &keys.to_string(), 1)
            .replace("{name: bad, issuer: github,", "{name: bad, issuer: ci,");
        let deferred = write(dir.path(), "deferred.yaml", &deferred_text);
        let run = apply(&app, &deferred, &["--plan"]);
        assert!(
            run.stdout
                .contains("+ create rule bad\n    lints: issuer ci is created by this plan: checked when applied\n"),
            "{run:#?}"
        );
        let run = apply(&app, &deferred, &[]);
        assert_eq!(run.code, Some(2), "{run:#?}");
        assert_eq!(
            run.stdout, "+ create workspace staging\n+ create issuer ci\n",
            "{run:#?}"
        );
        let mut stderr = run.stderr.lines();
        assert_eq!(
            stderr.next().unwrap(),
            "error: 2 of 3 changes were applied before `create rule bad` failed; nothing was rolled back \
             (fix the cause and apply again: it converges)"
        );
        assert!(
            stderr.next().unwrap().starts_with("error: create rule bad: match: "),
            "{run:#?}"
        );
        let fixed = write(
            dir.path(),
            "fixed.yaml",
            &deferred_text.replace(
                "match: {audience: x}",
                "match: {subject_prefix: \"repo:acme/app:ref:refs/heads/main\"}",
            ),
        );
        let run = apply(&app, &fixed, &[]);
        assert_eq!(
            run.stdout, "+ create rule bad\napplied: 1 to create, 0 to update, 0 to archive\n",
            "{run:#?}"
        );
        assert_no_changes(&apply(&app, &fixed, &[]));

        // The schema is printed without a server.
        let schema: Value = serde_json::from_str(&app.cli(&["export", "--schema"]).stdout).unwrap();
        assert_eq!(schema["properties"]["version"]["const"], 1);
    }
}
