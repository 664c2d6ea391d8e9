//! The workspaces Admin API over real HTTP, on every database: create, list, get (`default` alias),
//! update, archive with its policy (never the default workspace; not while a live rule lists it or a
//! live service account is a member), the activity events, and a token bound to a new workspace by an
//! exchange.

use serde_json::{Value, json};

use crate::admin::{Admin, rule_body};
use crate::exchange::Env;
use crate::harness::{Db, Site, databases};

const WORKSPACES: &str = "/v1/organizations/workspaces";
const SA: &str = "/v1/organizations/service_accounts";
const RULES: &str = "/v1/organizations/federation_rules";

/// The IDs of a list page's objects, after checking that they are newest first: by `created_at`, then
/// (within one second) by ID, both descending.
fn ids(page: &Value) -> Vec<&str> {
    let keys: Vec<(&str, &str)> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|object| (object["created_at"].as_str().unwrap(), object["id"].as_str().unwrap()))
        .collect();
    assert!(keys.windows(2).all(|pair| pair[0] > pair[1]), "newest first: {keys:?}");
    keys.into_iter().map(|(_, id)| id).collect()
}

/// `ids` sorted, to compare pages whose objects were created within one second.
fn sorted(mut ids: Vec<&str>) -> Vec<&str> {
    ids.sort_unstable();
    ids
}

async fn lifecycle(db: Db) {
    let site = Site::new(db);
    let admin = Admin::start(&site, db).await;

    // The default workspace exists from the first start; `default` names it.
    let (status, page) = admin.get(WORKSPACES).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["next_page"], Value::Null);
    let default = page["data"][0].clone();
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(default["type"], "workspace");
    assert_eq!(default["name"], "default");
    assert_eq!(default["is_default"], true);
    let default_id = default["id"].as_str().unwrap().to_owned();
    assert!(default_id.starts_with("wrkspc_"), "{default_id}");
    assert_eq!(
        admin.get(&format!("{WORKSPACES}/default")).await,
        (200, default.clone())
    );
    assert_eq!(
        admin.get(&format!("{WORKSPACES}/{default_id}")).await,
        (200, default.clone())
    );

    // Create: the wire object, the same on a get, and its event.
    let created = admin.ok(WORKSPACES, json!({"name": "staging"})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("wrkspc_") && id != default_id, "{id}");
    let fields: Vec<&str> = created.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expect_fields = vec![
        "id",
        "type",
        "name",
        "is_default",
        "created_at",
        "created_by_actor_id",
        "updated_at",
        "updated_by_actor_id",
        "archived_at",
        "archived_by_actor_id",
    ];
    expect_fields.sort_unstable();
    let mut fields = fields;
    fields.sort_unstable();
    assert_eq!(fields, expect_fields, "{created}");
    assert_eq!(created["type"], "workspace");
    assert_eq!(created["name"], "staging");
    assert_eq!(created["is_default"], false);
    assert_eq!(created["created_by_actor_id"], "bootstrap");
    assert_eq!(created["updated_by_actor_id"], "bootstrap");
    assert_eq!(created["archived_at"], Value::Null);
    assert_eq!(created["archived_by_actor_id"], Value::Null);
    let created_at = created["created_at"].as_str().unwrap();
    assert!(
        created_at.len() == 20 && created_at.ends_with('Z'),
        "RFC 3339: {created_at}"
    );
    assert_eq!(admin.get(&format!("{WORKSPACES}/{id}")).await, (200, created.clone()));
    let events = admin.events("platform_workspace_created").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].activity.payload, json!({"event_data": created}));
    assert_eq!(events[0].activity.resource_id.as_deref(), Some(id.as_str()));
    assert_eq!(events[0].activity.actor_id.as_deref(), Some("bootstrap"));
    assert!(events[0].activity.request_id.as_deref().unwrap().starts_with("req_"));

    // Refusals, each naming its field.
    for taken in ["staging", "default"] {
        admin.check_error(
            admin.post(WORKSPACES, json!({"name": taken})).await,
            409,
            "conflict_error",
            "name: already in use",
        );
    }
    admin.check_error(
        admin.post(WORKSPACES, json!({"name": "Bad_Name"})).await,
        400,
        "invalid_request_error",
        "name: ",
    );
    admin.check_error(
        admin.post(WORKSPACES, json!({"name": "x", "is_default": true})).await,
        400,
        "invalid_request_error",
        "is_default: unknown field `is_default`, expected `name`",
    );
    admin.check_error(
        admin.post(WORKSPACES, json!({})).await,
        400,
        "invalid_request_error",
        "missing field `name`",
    );
    admin.check_error(
        admin.get(&format!("{WORKSPACES}/wrkspc_missing")).await,
        404,
        "not_found_error",
        "no such workspace: wrkspc_missing",
    );
    admin.check_error(
        admin.get(&format!("{WORKSPACES}/fdrl_1")).await,
        400,
        "invalid_request_error",
        "id: must be `default` or `wrkspc_`",
    );
    admin.check_error(
        admin
            .post(&format!("{WORKSPACES}/wrkspc_missing"), json!({"name": "x"}))
            .await,
        404,
        "not_found_error",
        "no such workspace",
    );
    admin.check_error(
        admin
            .post(&format!("{WORKSPACES}/wrkspc_missing/archive"), json!({}))
            .await,
        404,
        "not_found_error",
        "no such workspace",
    );

    // Lists: newest first, paged, with the common parameters only.
    let prod = admin.workspace("prod").await;
    let (_, page) = admin.get(WORKSPACES).await;
    let all_ids = ids(&page);
    assert_eq!(sorted(all_ids.clone()), sorted(vec![&prod, &id, &default_id]));
    let (_, first) = admin.get(&format!("{WORKSPACES}?limit=2")).await;
    assert_eq!(ids(&first), all_ids[..2]);
    let cursor = first["next_page"].as_str().unwrap();
    let (_, second) = admin.get(&format!("{WORKSPACES}?limit=2&page={cursor}")).await;
    assert_eq!(ids(&second), all_ids[2..]);
    assert_eq!(second["next_page"], Value::Null);
    admin.check_error(
        admin.get(&format!("{WORKSPACES}?issuer_id=fdis_1")).await,
        400,
        "invalid_request_error",
        "issuer_id: unknown query parameter",
    );

    // Update: a rename, with its change; nothing to change writes nothing; unknown fields are refused.
    let path = format!("{WORKSPACES}/{id}");
    let renamed = admin.ok(&path, json!({"name": "stage"})).await;
    assert_eq!(renamed["name"], "stage");
    assert_eq!(renamed["created_at"], created["created_at"]);
    assert_eq!(admin.get(&path).await, (200, renamed.clone()));
    assert_eq!(admin.ok(&path, json!({"name": "stage"})).await, renamed);
    assert_eq!(admin.ok(&path, json!({})).await, renamed);
    let events = admin.events("platform_workspace_updated").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0].activity.payload,
        json!({
            "event_data": renamed,
            "changes": [{"type": "name", "previous_value": "staging", "current_value": "stage"}],
        })
    );
    assert_eq!(events[0].activity.resource_id.as_deref(), Some(id.as_str()));
    admin.check_error(
        admin.post(&path, json!({"name": "prod"})).await,
        409,
        "conflict_error",
        "name: already in use",
    );
    admin.check_error(
        admin.post(&path, json!({"is_default": true})).await,
        400,
        "invalid_request_error",
        "is_default: unknown field",
    );
    admin.check_error(
        admin.post(&path, json!({"name": "Nope"})).await,
        400,
        "invalid_request_error",
        "name: ",
    );
    // The old name is free again once renamed away.
    let reused = admin.workspace("staging").await;
    // The default workspace can be renamed too, through its alias, and stays the default.
    let main = admin
        .ok(&format!("{WORKSPACES}/default"), json!({"name": "main"}))
        .await;
    assert_eq!(
        (main["id"].as_str(), main["is_default"].as_bool()),
        (Some(default_id.as_str()), Some(true))
    );

    // The default workspace cannot be archived, by either spelling.
    for spelling in ["default", default_id.as_str()] {
        admin.check_error(
            admin.post(&format!("{WORKSPACES}/{spelling}/archive"), json!({})).await,
            400,
            "invalid_request_error",
            "id: workspace",
        );
    }

    // Archive: idempotent with the first archived_at and one event; archived means frozen, hidden from
    // default lists, and its name stays reserved.
    let archive = format!("{WORKSPACES}/{prod}/archive");
    let archived = admin.ok(&archive, json!({})).await;
    assert_eq!(archived["archived_by_actor_id"], "bootstrap");
    assert!(archived["archived_at"].is_string(), "{archived}");
    let again = admin.ok(&archive, json!({})).await;
    assert_eq!(again, archived);
    let events = admin.events("platform_workspace_archived").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].activity.payload, json!({"event_data": archived}));
    admin.check_error(
        admin
            .post(&format!("{WORKSPACES}/{prod}"), json!({"name": "prod2"}))
            .await,
        400,
        "invalid_request_error",
        &format!("id: workspace {prod} is archived"),
    );
    admin.check_error(
        admin.post(WORKSPACES, json!({"name": "prod"})).await,
        409,
        "conflict_error",
        "name: already in use",
    );
    let (_, live) = admin.get(WORKSPACES).await;
    assert_eq!(sorted(ids(&live)), sorted(vec![&reused, &id, &default_id]));
    let (_, all) = admin.get(&format!("{WORKSPACES}?include_archived=true")).await;
    assert_eq!(sorted(ids(&all)), sorted(vec![&reused, &prod, &id, &default_id]));

    // An archived workspace cannot be given to a new membership or rule.
    let account = admin.service_account("worker", "developer").await;
    admin.check_error(
        admin
            .post(
                &format!("{SA}/{account}/workspaces"),
                json!({"workspace_id": prod, "workspace_role": "workspace_developer"}),
            )
            .await,
        400,
        "invalid_request_error",
        &format!("workspace_id: workspace {prod} is archived"),
    );
    let issuer = admin.issuer("ci").await;
    let mut body = rule_body("in-archived", &issuer, &account);
    body["workspace_id"] = json!(prod);
    admin.check_error(
        admin.post(RULES, body).await,
        400,
        "invalid_request_error",
        &format!("workspace_ids: workspace {prod} is archived"),
    );
    let rule = admin.ok(RULES, rule_body("live", &issuer, &account)).await;
    let rule_id = rule["id"].as_str().unwrap();
    admin.check_error(
        admin
            .post(&format!("{RULES}/{rule_id}/workspaces"), json!({"workspace_id": prod}))
            .await,
        400,
        "invalid_request_error",
        &format!("workspace_id: workspace {prod} is archived"),
    );

    // Admin only: no token is 401, a token without org:admin 403.
    let (status, _, _) = admin.call_as("", "GET", WORKSPACES, None).await;
    assert_eq!(status, 401);
    let developer = admin
        .token_with("workspace:developer", Some(&account), crate::exchange::now() + 600)
        .await;
    let (status, _, body) = admin
        .call_as(&developer, "POST", WORKSPACES, Some(&json!({"name": "sneaky"})))
        .await;
    admin.check_error((status, body), 403, "permission_error", "");
    admin.stop().await;
}

async fn archive_policy(db: Db) {
    let site = Site::new(db);
    let admin = Admin::start(&site, db).await;
    let team = admin.workspace("team").await;
    let archive = format!("{WORKSPACES}/{team}/archive");
    let issuer = admin.issuer("ci").await;
    let account = admin.service_account("worker", "developer").await;

    // A live rule enabled in it (listed) blocks, and is named.
    let mut body = rule_body("team-deploy", &issuer, &account);
    body["workspace_id"] = json!(team);
    let rule = admin.ok(RULES, body).await;
    let rule_id = rule["id"].as_str().unwrap().to_owned();
    admin.check_error(
        admin.post(&archive, json!({})).await,
        409,
        "conflict_error",
        &format!(
            "workspace {team} is used by 1 live federation rule(s) enabled in it ({rule_id}); disable the rules \
             in this workspace or archive them first"
        ),
    );

    // So does a live service account's explicit membership; both are named.
    let memberships = format!("{SA}/{account}/workspaces");
    admin
        .ok(
            &memberships,
            json!({"workspace_id": team, "workspace_role": "workspace_developer"}),
        )
        .await;
    admin.check_error(
        admin.post(&archive, json!({})).await,
        409,
        "conflict_error",
        &format!(
            "workspace {team} is used by 1 live federation rule(s) enabled in it ({rule_id}) and 1 live service \
             account(s) with a membership of it ({account})"
        ),
    );

    // A rule for all workspaces does not list it and does not block.
    let mut everywhere = rule_body("everywhere", &issuer, &account);
    everywhere["applies_to_all_workspaces"] = json!(true);
    admin.ok(RULES, everywhere).await;

    // Move the rule to the default workspace: only the membership is left.
    let rule_workspaces = format!("{RULES}/{rule_id}/workspaces");
    admin.ok(&rule_workspaces, json!({"workspace_id": "default"})).await;
    let (status, _) = admin.delete(&format!("{rule_workspaces}/{team}")).await;
    assert_eq!(status, 200);
    admin.check_error(
        admin.post(&archive, json!({})).await,
        409,
        "conflict_error",
        &format!(
            "workspace {team} is used by 1 live service account(s) with a membership of it ({account}); remove \
             the memberships first"
        ),
    );
    assert!(admin.events("platform_workspace_archived").await.is_empty());

    // Removing the membership clears the way.
    let (status, _) = admin.delete(&format!("{memberships}/{team}")).await;
    assert_eq!(status, 200);
    let archived = admin.ok(&archive, json!({})).await;
    assert!(archived["archived_at"].is_string(), "{archived}");

    // An archived rule or an archived member does not block either.
    let lab = admin.workspace("lab").await;
    let mut body = rule_body("lab-only", &issuer, &account);
    body["workspace_id"] = json!(lab);
    let lab_rule = admin.ok(RULES, body).await;
    let leaver = admin.service_account("leaver", "developer").await;
    admin
        .ok(
            &format!("{SA}/{leaver}/workspaces"),
            json!({"workspace_id": lab, "workspace_role": "workspace_user"}),
        )
        .await;
    let lab_archive = format!("{WORKSPACES}/{lab}/archive");
    assert_eq!(admin.post(&lab_archive, json!({})).await.0, 409);
    admin
        .ok(
            &format!("{RULES}/{}/archive", lab_rule["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    admin.ok(&format!("{SA}/{leaver}/archive"), json!({})).await;
    admin.ok(&lab_archive, json!({})).await;
    assert_eq!(admin.events("platform_workspace_archived").await.len(), 2);
    admin.stop().await;
}

/// A rule enabled in a new workspace mints, for an exchange naming that workspace, a token bound to it.
async fn exchange_in_a_new_workspace(db: Db) {
    let env = Env::start(db).await;
    let (status, workspace) = env
        .app
        .post_authed(&env.admin, WORKSPACES, &json!({"name": "payments"}))
        .await;
    assert_eq!(status, 200, "{workspace}");
    let workspace_id = workspace["id"].as_str().unwrap();

    // Not enabled there yet: refused.
    let mut body = env.body(&env.token());
    body["workspace_id"] = json!(workspace_id);
    let reply = env.exchange(&body).await;
    assert_eq!(reply.status, 400, "{db:?}: {}", reply.body);

    let (status, rule) = env
        .app
        .post_authed(
            &env.admin,
            &format!("{RULES}/{}/workspaces", env.rule_id),
            &json!({"workspace_id": workspace_id}),
        )
        .await;
    assert_eq!(status, 200, "{rule}");
    let mut body = env.body(&env.token());
    body["workspace_id"] = json!(workspace_id);
    let reply = env.exchange(&body).await;
    assert_eq!(reply.status, 200, "{db:?}: {}", reply.body);
    let event = env.exchange_event(&reply.request_id).await;
    assert_eq!(event["event_data"]["workspace_id"], workspace_id, "{event}");

    let token = reply.body["access_token"].as_str().unwrap();
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
    let introspection: Value = response.json().await.unwrap();
    assert_eq!(introspection["active"], true, "{introspection}");
    assert_eq!(introspection["workspace_id"], workspace_id, "{introspection}");

    // While the rule is enabled there, the workspace cannot be archived.
    let (status, refused) = env
        .app
        .post_authed(&env.admin, &format!("{WORKSPACES}/{workspace_id}/archive"), &json!({}))
        .await;
    assert_eq!(status, 409, "{refused}");

    // A rule for all workspaces lists none, so the exchange checks the requested one is live: an
    // archived or unknown workspace is refused (workspace_not_enabled), never minted for.
    let (status, rule) = env
        .app
        .post_authed(
            &env.admin,
            &format!("{RULES}/{}", env.rule_id),
            &json!({"applies_to_all_workspaces": true}),
        )
        .await;
    assert_eq!(status, 200, "{rule}");
    let (status, archived) = env
        .app
        .post_authed(&env.admin, &format!("{WORKSPACES}/{workspace_id}/archive"), &json!({}))
        .await;
    assert_eq!(
        status, 200,
        "an all-workspaces rule does not block the archive: {archived}"
    );
    for (workspace, why) in [
        (workspace_id, "archived"),
        ("wrkspc_0123456789abcdef0123456789abcdef", "unknown"),
    ] {
        let mut body = env.body(&env.token());
        body["workspace_id"] = json!(workspace);
        let reply = env.exchange(&body).await;
        assert_eq!(reply.status, 400, "{db:?} {why}: {}", reply.body);
        assert_eq!(
            reply.body["error_code"], "workspace_not_enabled",
            "{db:?} {why}: {}",
            reply.body
        );
    }
    let (status, live) = env
        .app
        .post_authed(&env.admin, WORKSPACES, &json!({"name": "billing"}))
        .await;
    assert_eq!(status, 200, "{live}");
    let mut body = env.body(&env.token());
    body["workspace_id"] = live["id"].clone();
    let reply = env.exchange(&body).await;
    assert_eq!(reply.status, 200, "{db:?}: a live workspace: {}", reply.body);
    env.app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspaces_lifecycle() {
    for db in databases() {
        lifecycle(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspaces_archive_policy() {
    for db in databases() {
        archive_policy(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspaces_exchange_binds_tokens_to_a_new_workspace() {
    for db in databases() {
        exchange_in_a_new_workspace(db).await;
    }
}
