//! Unit tests of declarative configuration: parsing (strict, with paths), the pure plan over a fixed
//! server state (creates, updates with previous and new values, prune, references, archived names),
//! the export round trip, and the JSON Schema held to the model.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::*;

fn audit(archived: bool) -> Value {
    json!({
        "created_at": "2026-05-01T12:00:00Z", "created_by_actor_id": "bootstrap",
        "updated_at": "2026-05-01T12:00:00Z", "updated_by_actor_id": "bootstrap",
        "archived_at": if archived { json!("2026-05-02T00:00:00Z") } else { Value::Null },
        "archived_by_actor_id": if archived { json!("bootstrap") } else { Value::Null },
    })
}

fn object<T: serde::de::DeserializeOwned>(mut fields: Value, archived: bool) -> T {
    if let (Some(map), Value::Object(audit)) = (fields.as_object_mut(), audit(archived)) {
        map.extend(audit);
    }
    serde_json::from_value(fields).unwrap()
}

/// A server with the default workspace, `ci` (with a membership), an issuer `gha`, a rule `deploy`,
/// and archived objects named `old`.
fn state() -> State {
    let mut state = State {
        workspaces: vec![
            object(
                json!({"id": "wrkspc_d", "type": "workspace", "name": "default", "is_default": true}),
                false,
            ),
            object(
                json!({"id": "wrkspc_p", "type": "workspace", "name": "prod", "is_default": false}),
                false,
            ),
            object(
                json!({"id": "wrkspc_o", "type": "workspace", "name": "old", "is_default": false}),
                true,
            ),
        ],
        service_accounts: vec![
            object(
                json!({"id": "svac_ci", "type": "service_account", "name": "ci", "description": "CI",
                "organization_role": "developer"}),
                false,
            ),
            object(
                json!({"id": "svac_o", "type": "service_account", "name": "old", "description": null,
                "organization_role": "developer"}),
                true,
            ),
        ],
        issuers: vec![object(
            json!({"id": "fdis_g", "type": "federation_issuer", "name": "gha",
                "issuer_url": "https://token.actions.githubusercontent.com",
                "jwks": {"type": "discovery", "discovery_base": null, "ca_cert_pem": null}, "check_jti": true,
                "max_jwt_lifetime_seconds": 3600, "jwks_polling_disabled_at": null,
                "poll_status": {"consecutive_failures": 0, "last_fetched_at": null, "next_poll_at": null,
                    "last_error": null}}),
            false,
        )],
        rules: vec![object(
            json!({"id": "fdrl_d", "type": "federation_rule", "name": "deploy", "description": null,
                "issuer_id": "fdis_g",
                "match": {"subject_prefix": "repo:acme/app:ref:refs/heads/main", "audience": null,
                    "claims": {"repository_owner_id": "42"}, "condition": null},
                "target": {"type": "service_account", "service_account_id": "svac_ci"},
                "oauth_scope": "workspace:developer files:read", "token_lifetime_seconds": 900,
                "workspace_ids": ["wrkspc_p"], "applies_to_all_workspaces": false}),
            false,
        )],
        ..State::default()
    };
    state.memberships.insert(
        "svac_ci".to_owned(),
        vec![
            serde_json::from_value(json!({"type": "service_account_workspace_membership",
                "service_account_id": "svac_ci", "workspace_id": "wrkspc_d", "workspace_role": "workspace_user",
                "implicit": true, "created_at": "t", "created_by_actor_id": "a", "updated_at": "t",
                "updated_by_actor_id": "a"}))
            .unwrap(),
            serde_json::from_value(json!({"type": "service_account_workspace_membership",
                "service_account_id": "svac_ci", "workspace_id": "wrkspc_p",
                "workspace_role": "workspace_developer", "implicit": false, "created_at": "t",
                "created_by_actor_id": "a", "updated_at": "t", "updated_by_actor_id": "a"}))
            .unwrap(),
        ],
    );
    state
}

const FILE: &str = r#"
version: 1
workspaces:
  - name: prod
service_accounts:
  - name: ci
    description: CI
    workspaces:
      - {workspace: prod, role: workspace_developer}
issuers:
  - name: gha
    issuer_url: https://token.actions.githubusercontent.com
rules:
  - name: deploy
    issuer: gha
    match:
      subject_prefix: "repo:acme/app:ref:refs/heads/main"
      claims: {repository_owner_id: "42"}
    service_account: ci
    oauth_scope: files:read workspace:developer
    token_lifetime_seconds: 900
    workspaces: [prod]
"#;

/// The plan's changes as `action kind name [fields]` lines.
fn summary(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .map(|change| {
            let fields: Vec<String> = change
                .fields
                .iter()
                .map(|field| format!("{}: {} -> {}", field.field, field.previous, field.new))
                .collect();
            format!("{change} [{}]", fields.join(", "))
        })
        .collect()
}

fn check(state: &State, file: &str, prune: bool, expect: &[&str]) {
    let document = parse(file).unwrap();
    let plan = plan(state, &document, prune).unwrap();
    assert_eq!(summary(&plan), expect);
}

fn check_problem(state: &State, file: &str, prune: bool, expect: &str) {
    let message = match parse(file) {
        Err(problems) => problems.to_string(),
        Ok(document) => plan(state, &document, prune).unwrap_err().to_string(),
    };
    assert_eq!(message, expect);
}

#[test]
fn a_file_that_matches_the_server_plans_nothing() {
    check(&state(), FILE, false, &[]);
    // Leaving the default workspace out of the file never archives it, even with --prune.
    check(&state(), FILE, true, &[]);
}

#[test]
fn an_export_plans_nothing_against_the_state_it_came_from() {
    let exported = state().export();
    let text = exported.to_yaml().unwrap();
    assert_eq!(parse(&text).unwrap(), exported);
    check(&state(), &text, true, &[]);
}

#[test]
fn an_empty_server_gets_everything_created_in_dependency_order() {
    let empty = State {
        workspaces: state().workspaces.into_iter().take(1).collect(),
        ..State::default()
    };
    let document = parse(FILE).unwrap();
    let plan = plan(&empty, &document, false).unwrap();
    let order: Vec<String> = plan.changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        order,
        [
            "create workspace prod",
            "create service_account ci",
            "create issuer gha",
            "create rule deploy"
        ]
    );
    assert_eq!(plan.count(Action::Create), 4);
}

#[test]
fn updates_list_exactly_the_changed_fields_with_previous_and_new_values() {
    let edited = FILE
        .replace("description: CI", "description: Continuous integration")
        .replace("refs/heads/main", "refs/heads/release")
        .replace("role: workspace_developer", "role: workspace_admin");
    check(
        &state(),
        &edited,
        false,
        &[
            "update service_account ci [description: \"CI\" -> \"Continuous integration\", \
             workspaces.prod: \"workspace_developer\" -> \"workspace_admin\"]",
            "update rule deploy [match.subject_prefix: \"repo:acme/app:ref:refs/heads/main\" -> \
             \"repo:acme/app:ref:refs/heads/release\"]",
        ],
    );
    // Defaults count as values: leaving token_lifetime_seconds out means 3600; workspaces out, the
    // default workspace.
    let defaults = FILE
        .replace("    token_lifetime_seconds: 900\n", "")
        .replace("    workspaces: [prod]\n", "");
    check(
        &state(),
        &defaults,
        false,
        &["update rule deploy [token_lifetime_seconds: 900 -> 3600, workspaces: [\"prod\"] -> [\"default\"]]"],
    );
    let all = FILE.replace("workspaces: [prod]", "workspaces: all");
    check(
        &state(),
        &all,
        false,
        &["update rule deploy [workspaces: [\"prod\"] -> \"all\"]"],
    );
}

#[test]
fn a_removed_membership_is_an_update_of_its_account() {
    let text = FILE.replace(
        "    workspaces:\n      - {workspace: prod, role: workspace_developer}\n",
        "",
    );
    check(
        &state(),
        &text,
        false,
        &["update service_account ci [workspaces.prod: \"workspace_developer\" -> null]"],
    );
}

#[test]
fn undeclared_objects_are_archived_only_with_prune_and_in_reverse_order() {
    let text = "version: 1\nworkspaces: [{name: prod}]\n";
    check(&state(), text, false, &[]);
    check(
        &state(),
        text,
        true,
        &[
            "archive rule deploy []",
            "archive issuer gha []",
            "archive service_account ci []",
        ],
    );
    check(
        &state(),
        "version: 1\n",
        true,
        &[
            "archive rule deploy []",
            "archive issuer gha []",
            "archive service_account ci []",
            "archive workspace prod []",
        ],
    );
}

#[test]
fn references_resolve_to_the_file_or_to_live_server_objects() {
    // On the server but not in the file: fine without --prune.
    let only_rule = "version: 1\nrules:\n  - name: deploy\n    issuer: gha\n    service_account: ci\n    \
        match: {subject_prefix: \"repo:acme/app:ref:refs/heads/main\", claims: {repository_owner_id: \"42\"}}\n    \
        oauth_scope: workspace:developer files:read\n    token_lifetime_seconds: 900\n    workspaces: [prod]\n";
    check(&state(), only_rule, false, &[]);
    check_problem(
        &state(),
        only_rule,
        true,
        "rules[0].issuer: the issuer `gha` is not in the file, so --prune would archive it: declare it; \
         rules[0].service_account: the service account `ci` is not in the file, so --prune would archive it: \
         declare it; rules[0].workspaces[0]: the workspace `prod` is not in the file, so --prune would archive \
         it: declare it",
    );
    check_problem(
        &state(),
        &FILE
            .replace("issuer: gha\n    match", "issuer: gitlab\n    match")
            .replace("name: deploy", "name: deploy-gitlab"),
        false,
        "rules[0].issuer: no issuer named `gitlab` in the file or on the server",
    );
    check_problem(
        &state(),
        &FILE.replace("workspaces: [prod]", "workspaces: [old]"),
        false,
        "rules[0].workspaces[0]: the workspace `old` is archived",
    );
}

#[test]
fn a_declared_name_of_an_archived_object_is_refused() {
    check_problem(
        &state(),
        "version: 1\nservice_accounts: [{name: old}]\n",
        false,
        "service_accounts[0].name: `old` is the name of an archived service account (svac_o); archived names \
         stay reserved: choose another",
    );
}

#[test]
fn a_rule_cannot_change_issuer() {
    let text = FILE
        .replace("issuer: gha\n    match", "issuer: other\n    match")
        .replace(
            "issuers:\n  - name: gha",
            "issuers:\n  - {name: other, issuer_url: \"https://other.example\"}\n  - name: gha",
        );
    check_problem(
        &state(),
        &text,
        false,
        "rules[0].issuer: a rule's issuer is immutable (`deploy` is `gha` on the server): give the rule a new name",
    );
}

#[test]
fn parsing_is_strict_and_names_the_path() {
    let typo = FILE.replace("subject_prefix:", "subject_prefx:");
    let message = parse(&typo).unwrap_err().to_string();
    assert!(
        message.starts_with("rules[0].match.subject_prefx: unknown field `subject_prefx`"),
        "{message}"
    );
    check_problem(
        &state(),
        "version: 2\n",
        false,
        "version: unsupported version 2 (this client reads version 1)",
    );
    check_problem(
        &state(),
        "version: 1\nworkspaces: [{name: a}, {name: b}, {name: a}]\n",
        false,
        "workspaces[2].name: duplicate name `a` (also workspaces[0])",
    );
    check_problem(
        &state(),
        &FILE.replace("workspaces: [prod]", "workspaces: [prod, prod]"),
        false,
        "rules[0].workspaces[1]: duplicate name `prod` (also rules[0].workspaces[0])",
    );
    let message = parse(&FILE.replace("workspaces: [prod]", "workspaces: every"))
        .unwrap_err()
        .to_string();
    assert!(message.starts_with("rules[0].workspaces: invalid value"), "{message}");
    let message = parse("version: 1\nissuers: [{name: x, issuer_url: u, jwks: {type: inline, keys: [], url: u}}]\n")
        .unwrap_err()
        .to_string();
    assert!(message.contains("unknown field `url`"), "{message}");
    // JSON is read too.
    let json_text = serde_json::to_string(&parse(FILE).unwrap()).unwrap();
    assert_eq!(parse(&json_text).unwrap(), parse(FILE).unwrap());
}

/// A document with every field of every object set (each jwks kind and each workspaces form).
fn full_example() -> Document {
    parse(
        r#"
version: 1
workspaces: [{name: prod}]
service_accounts:
  - name: ci
    description: d
    organization_role: admin
    workspaces: [{workspace: prod, role: workspace_admin}]
issuers:
  - {name: a, issuer_url: "https://a", check_jti: false, max_jwt_lifetime_seconds: 60,
     jwks: {type: discovery, discovery_base: "https://b", ca_cert_pem: pem}}
  - {name: b, issuer_url: "https://b", jwks: {type: explicit_url, url: "https://b/jwks", ca_cert_pem: pem}}
  - {name: c, issuer_url: "https://c", jwks: {type: inline, keys: [{kty: OKP}]}}
rules:
  - name: r
    description: d
    issuer: a
    match: {subject_prefix: s, audience: a, claims: {k: v}, condition: "true"}
    service_account: ci
    oauth_scope: workspace:developer
    token_lifetime_seconds: 600
    workspaces: [prod]
  - {name: s, issuer: a, match: {subject_prefix: s}, service_account: ci, workspaces: all, mode: shadow}
"#,
    )
    .unwrap()
}

/// Follows `$ref` (`#/$defs/x`) from `node`.
fn resolve<'a>(schema: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference.trim_start_matches("#/$defs/");
            resolve(schema, &schema["$defs"][name])
        }
        None => node,
    }
}

/// Walks `value` against `node`: every member of an object must be a property of its schema
/// (recording `pointer.property` in `seen`), and every value must match its `const`/`enum`/type.
fn walk(schema: &Value, node: &Value, value: &Value, pointer: &str, seen: &mut BTreeSet<String>) {
    let node = resolve(schema, node);
    if let Some(branches) = node.get("oneOf").and_then(Value::as_array) {
        let index = branches
            .iter()
            .position(|branch| branch_matches(branch, value))
            .unwrap_or_else(|| panic!("{pointer}: no oneOf branch matches {value}"));
        walk(
            schema,
            &branches[index],
            value,
            &format!("{pointer}/oneOf/{index}"),
            seen,
        );
        return;
    }
    if let Some(constant) = node.get("const") {
        assert_eq!(constant, value, "{pointer}");
    }
    if let Some(allowed) = node.get("enum").and_then(Value::as_array) {
        assert!(allowed.contains(value), "{pointer}: {value}");
    }
    match value {
        Value::Object(members) => {
            let properties = node.get("properties").and_then(Value::as_object);
            for (name, member) in members {
                match properties.and_then(|properties| properties.get(name)) {
                    Some(property) => {
                        seen.insert(format!("{pointer}/properties/{name}"));
                        walk(schema, property, member, &format!("{pointer}/properties/{name}"), seen);
                    }
                    None => assert!(
                        node.get("additionalProperties").is_some_and(Value::is_object) || properties.is_none(),
                        "{pointer}: `{name}` is not in the schema"
                    ),
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = node.get("items") {
                for member in items {
                    walk(schema, item, member, &format!("{pointer}/items"), seen);
                }
            }
        }
        _ => {}
    }
}

fn branch_matches(branch: &Value, value: &Value) -> bool {
    match (branch.get("const"), branch.pointer("/properties/type/const"), value) {
        (Some(constant), _, _) => constant == value,
        (None, Some(kind), Value::Object(members)) => members.get("type") == Some(kind),
        (None, None, Value::Array(_)) => branch.get("type") == Some(&json!("array")),
        _ => false,
    }
}

/// Every property pointer an object schema declares, reached from `node` at `pointer`.
fn declared(schema: &Value, node: &Value, pointer: &str, out: &mut BTreeSet<String>, depth: usize) {
    if depth > 12 {
        return;
    }
    let node = resolve(schema, node);
    if let Some(branches) = node.get("oneOf").and_then(Value::as_array) {
        for (index, branch) in branches.iter().enumerate() {
            declared(schema, branch, &format!("{pointer}/oneOf/{index}"), out, depth + 1);
        }
    }
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            let here = format!("{pointer}/properties/{name}");
            out.insert(here.clone());
            declared(schema, property, &here, out, depth + 1);
        }
    }
    if let Some(item) = node.get("items") {
        declared(schema, item, &format!("{pointer}/items"), out, depth + 1);
    }
}

#[test]
fn the_schema_and_the_rust_model_have_the_same_fields() {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let example = serde_json::to_value(full_example()).unwrap();
    let mut seen = BTreeSet::new();
    walk(&schema, &schema, &example, "", &mut seen);
    let mut every = BTreeSet::new();
    declared(&schema, &schema, "", &mut every, 0);
    let missing: Vec<&String> = every.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "in the schema, never written by the model: {missing:?}"
    );
    // And the strictness agrees: every object schema but `claims` and JWKs refuses other members.
    for (name, definition) in schema["$defs"].as_object().unwrap() {
        if definition.get("type") == Some(&json!("object")) {
            assert_eq!(definition["additionalProperties"], json!(false), "{name}");
        }
    }
}
