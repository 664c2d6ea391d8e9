//! Admin objects: create, get, update, archive; names unique per organization and type; IDs scoped to
//! their organization; workspace memberships; rule workspaces and references.

use std::collections::BTreeSet;

use keyless_core::id::{IssuerId, ServiceAccountId};
use keyless_core::lifetime::TokenLifetime;
use keyless_core::rule::{MatchDraft, RuleWorkspaces};
use keyless_core::scope::ScopeSet;
use keyless_core::service_account::OrganizationRole;
use keyless_store::audit::Audit;
use keyless_store::issuer::IssuerPollStatus;
use keyless_store::rule::RuleFilter;
use keyless_store::service_account::{WorkspaceMembership, WorkspaceRole};
use keyless_store::{Limit, ListQuery, Store, StoreError};
use serde_json::json;

use crate::harness::{self, ADMIN, Db, NOW, Org};

/// The kinds of named, archivable objects.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Workspace,
    ServiceAccount,
    Issuer,
    Rule,
}

pub(crate) const KINDS: [Kind; 4] = [Kind::Workspace, Kind::ServiceAccount, Kind::Issuer, Kind::Rule];

/// Creates object `id` of `kind` named `object_name` in its own transaction. Rules use the issuer and
/// account of [`harness::seed_issuer_and_account`].
pub(crate) async fn create(
    store: &Store,
    org: &Org,
    kind: Kind,
    id: &str,
    object_name: &str,
    at: i64,
) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    match kind {
        Kind::Workspace => {
            tx.workspace_create(&harness::workspace(org, id, object_name, at))
                .await?
        }
        Kind::ServiceAccount => {
            tx.service_account_create(&harness::service_account(org, id, object_name, at))
                .await?
        }
        Kind::Issuer => tx.issuer_create(&harness::issuer(org, id, object_name, at)).await?,
        Kind::Rule => {
            let rule = harness::rule(
                org,
                id,
                object_name,
                &harness::issuer_id("gh"),
                &harness::service_account_id("deploy"),
                at,
            );
            tx.rule_create(&rule).await?
        }
    }
    tx.commit().await
}

/// Archives object `id` of `kind` in its own transaction.
pub(crate) async fn archive(
    store: &Store,
    org: &Org,
    kind: Kind,
    id: &str,
    at: i64,
    actor: &str,
) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    let archived = match kind {
        Kind::Workspace => {
            tx.workspace_archive(&org.id, &harness::workspace_id(id), at, actor)
                .await?
        }
        Kind::ServiceAccount => {
            tx.service_account_archive(&org.id, &harness::service_account_id(id), at, actor)
                .await?
        }
        Kind::Issuer => tx.issuer_archive(&org.id, &harness::issuer_id(id), at, actor).await?,
        Kind::Rule => tx.rule_archive(&org.id, &harness::rule_id(id), at, actor).await?,
    };
    tx.commit().await?;
    Ok(archived)
}

/// The audit columns of object `id` of `kind`, read outside a transaction.
pub(crate) async fn audit(store: &Store, org: &Org, kind: Kind, id: &str) -> Result<Audit, StoreError> {
    Ok(match kind {
        Kind::Workspace => store.workspace_get(&org.id, &harness::workspace_id(id)).await?.audit,
        Kind::ServiceAccount => {
            store
                .service_account_get(&org.id, &harness::service_account_id(id))
                .await?
                .audit
        }
        Kind::Issuer => store.issuer_get(&org.id, &harness::issuer_id(id)).await?.audit,
        Kind::Rule => store.rule_get(&org.id, &harness::rule_id(id)).await?.audit,
    })
}

/// Two organizations, each with the issuer and service account rules need.
async fn two_orgs(store: &Store) -> (Org, Org) {
    let org1 = harness::seed_org(store, 1).await;
    let org2 = harness::seed_org(store, 2).await;
    harness::seed_issuer_and_account(store, &org1).await;
    let mut tx = store.begin().await.unwrap();
    tx.issuer_create(&harness::issuer(&org2, "gh2", "github", NOW))
        .await
        .unwrap();
    tx.service_account_create(&harness::service_account(&org2, "deploy2", "deploy", NOW))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (org1, org2)
}

fn assert_conflict<T: std::fmt::Debug>(res: Result<T, StoreError>, what: &str, context: impl std::fmt::Debug) {
    match res {
        Err(StoreError::Conflict { what: seen }) => assert_eq!(seen, what, "{context:?}"),
        other => panic!("{context:?}: expected a conflict on {what}, got {other:?}"),
    }
}

fn assert_not_found<T: std::fmt::Debug>(res: Result<T, StoreError>, context: impl std::fmt::Debug) {
    assert!(matches!(res, Err(StoreError::NotFound)), "{context:?}: {res:?}");
}

async fn names_are_unique_per_organization_and_type(db: Db) {
    let store = &db.store;
    let (org1, org2) = two_orgs(store).await;
    for kind in KINDS {
        // "alpha" is free in every type: names are unique per type, not across types.
        create(store, &org1, kind, "alpha1", "alpha", NOW).await.unwrap();
        assert_conflict(create(store, &org1, kind, "alpha2", "alpha", NOW).await, "name", kind);
        // Another organization may use the name.
        if matches!(kind, Kind::Rule) {
            let mut tx = store.begin().await.unwrap();
            let rule = harness::rule(
                &org2,
                "alpha3",
                "alpha",
                &harness::issuer_id("gh2"),
                &harness::service_account_id("deploy2"),
                NOW,
            );
            tx.rule_create(&rule).await.unwrap();
            tx.commit().await.unwrap();
        } else {
            create(store, &org2, kind, "alpha3", "alpha", NOW).await.unwrap();
        }
        // Archived objects keep their names.
        assert!(archive(store, &org1, kind, "alpha1", NOW, ADMIN).await.unwrap());
        assert_conflict(create(store, &org1, kind, "alpha4", "alpha", NOW).await, "name", kind);
        // A taken ID is a conflict on `id`.
        assert_conflict(create(store, &org1, kind, "alpha1", "beta", NOW).await, "id", kind);
    }
}

async fn archive_is_idempotent_and_keeps_the_first(db: Db) {
    let store = &db.store;
    let (org1, org2) = two_orgs(store).await;
    for kind in KINDS {
        create(store, &org1, kind, "gamma", "gamma", NOW).await.unwrap();
        assert!(!audit(store, &org1, kind, "gamma").await.unwrap().is_archived());
        assert!(
            archive(store, &org1, kind, "gamma", NOW + 10, "svac_first")
                .await
                .unwrap(),
            "{kind:?}"
        );
        assert!(
            !archive(store, &org1, kind, "gamma", NOW + 20, "svac_second")
                .await
                .unwrap(),
            "{kind:?}"
        );
        let archived = audit(store, &org1, kind, "gamma").await.unwrap();
        assert_eq!(archived.archived_at, Some(NOW + 10), "{kind:?}");
        assert_eq!(archived.archived_by_actor_id.as_deref(), Some("svac_first"), "{kind:?}");
        assert_eq!(archived.created_at, NOW, "{kind:?}");
        assert_not_found(archive(store, &org1, kind, "missing", NOW, ADMIN).await, kind);
        // An object is invisible from another organization.
        assert_not_found(audit(store, &org2, kind, "gamma").await, kind);
        assert_not_found(archive(store, &org2, kind, "gamma", NOW, ADMIN).await, kind);
    }
}

async fn workspace_lifecycle(db: Db) {
    let store = &db.store;
    let org = harness::seed_org(store, 1).await;
    let default = store.workspace_get_default(&org.id).await.unwrap();
    assert_eq!(default.id, org.default_workspace);
    assert!(default.is_default);

    let staging = harness::workspace(&org, "staging", "staging", NOW + 1);
    let mut tx = store.begin().await.unwrap();
    tx.workspace_create(&staging).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.workspace_get(&org.id, &staging.id).await.unwrap(), staging);

    let mut tx = store.begin().await.unwrap();
    let mut renamed = tx.workspace_get(&org.id, &staging.id).await.unwrap();
    renamed.name = harness::name("preprod");
    renamed.audit.touch(NOW + 5, "svac_editor");
    tx.workspace_update(&renamed).await.unwrap();
    tx.commit().await.unwrap();
    let stored = store.workspace_get(&org.id, &staging.id).await.unwrap();
    assert_eq!(stored, renamed);
    assert_eq!(stored.audit.updated_by_actor_id, "svac_editor");
    assert_eq!(stored.audit.created_at, NOW + 1);

    let mut tx = store.begin().await.unwrap();
    let mut clash = renamed.clone();
    clash.name = harness::name("default");
    assert_conflict(tx.workspace_update(&clash).await, "name", "rename onto default");
    drop(tx);

    let mut second_default = harness::workspace(&org, "other", "other", NOW);
    second_default.is_default = true;
    let mut tx = store.begin().await.unwrap();
    assert_conflict(
        tx.workspace_create(&second_default).await,
        "default workspace",
        "second default",
    );
    drop(tx);

    let mut tx = store.begin().await.unwrap();
    let mut missing = renamed.clone();
    missing.id = harness::workspace_id("missing");
    assert_not_found(tx.workspace_update(&missing).await, "update missing");
}

async fn service_account_lifecycle(db: Db) {
    let store = &db.store;
    let org = harness::seed_org(store, 1).await;
    let mut account = harness::service_account(&org, "ci", "ci", NOW);
    account.description = None;
    let mut tx = store.begin().await.unwrap();
    tx.service_account_create(&account).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.service_account_get(&org.id, &account.id).await.unwrap(), account);

    let mut tx = store.begin().await.unwrap();
    let mut updated = tx.service_account_get(&org.id, &account.id).await.unwrap();
    updated.description = Some("runs CI".to_owned());
    updated.organization_role = OrganizationRole::Admin;
    updated.audit.touch(NOW + 60, "user_alice");
    let mut with_new_name = updated.clone();
    with_new_name.name = harness::name("renamed");
    tx.service_account_update(&with_new_name).await.unwrap();
    tx.commit().await.unwrap();
    let stored = store.service_account_get(&org.id, &account.id).await.unwrap();
    assert_eq!(stored, updated, "the name is immutable; the rest is written");

    let view = stored.to_service_account();
    assert_eq!(view.id, account.id);
    assert_eq!(view.organization_role, OrganizationRole::Admin);
    assert!(!view.archived);

    let mut tx = store.begin().await.unwrap();
    let mut missing = updated.clone();
    missing.id = harness::service_account_id("missing");
    assert_not_found(tx.service_account_update(&missing).await, "update missing");
}

async fn service_account_memberships(db: Db) {
    let store = &db.store;
    let (org1, org2) = two_orgs(store).await;
    let account = harness::service_account_id("deploy");
    let mut tx = store.begin().await.unwrap();
    tx.workspace_create(&harness::workspace(&org1, "prod", "prod", NOW))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let membership = |workspace: &str, role: WorkspaceRole| WorkspaceMembership {
        organization_id: org1.id.clone(),
        service_account_id: account.clone(),
        workspace_id: harness::workspace_id(workspace),
        workspace_role: role,
        created_at: NOW,
        created_by_actor_id: ADMIN.to_owned(),
        updated_at: NOW,
        updated_by_actor_id: ADMIN.to_owned(),
    };
    for role in WorkspaceRole::ALL {
        assert_eq!(WorkspaceRole::parse(role.as_str()), Some(role));
        let mut tx = store.begin().await.unwrap();
        tx.service_account_workspace_add(&membership("prod", role))
            .await
            .unwrap();
        assert_conflict(
            tx.service_account_workspace_add(&membership("prod", role)).await,
            "workspace membership",
            role,
        );
        drop(tx);
    }

    let mut tx = store.begin().await.unwrap();
    tx.service_account_workspace_add(&membership("prod", WorkspaceRole::Developer))
        .await
        .unwrap();
    tx.service_account_workspace_add(&membership("default1", WorkspaceRole::User))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let listed = store.service_account_workspace_list(&org1.id, &account).await.unwrap();
    assert_eq!(
        listed,
        vec![
            membership("default1", WorkspaceRole::User),
            membership("prod", WorkspaceRole::Developer)
        ]
    );

    let mut tx = store.begin().await.unwrap();
    let mut promoted = tx
        .service_account_workspace_get(&org1.id, &account, &harness::workspace_id("prod"))
        .await
        .unwrap();
    promoted.workspace_role = WorkspaceRole::Admin;
    promoted.updated_at = NOW + 1;
    tx.service_account_workspace_update(&promoted).await.unwrap();
    tx.commit().await.unwrap();
    let listed = store.service_account_workspace_list(&org1.id, &account).await.unwrap();
    assert_eq!(listed[1], promoted);

    let mut tx = store.begin().await.unwrap();
    tx.service_account_workspace_remove(&org1.id, &account, &harness::workspace_id("prod"))
        .await
        .unwrap();
    assert_not_found(
        tx.service_account_workspace_remove(&org1.id, &account, &harness::workspace_id("prod"))
            .await,
        "second remove",
    );
    assert_not_found(
        tx.service_account_workspace_update(&membership("prod", WorkspaceRole::User))
            .await,
        "update removed",
    );
    tx.commit().await.unwrap();
    assert_eq!(
        store
            .service_account_workspace_list(&org1.id, &account)
            .await
            .unwrap()
            .len(),
        1
    );

    // A membership cannot cross organizations: org2's default workspace is not in org1.
    let mut tx = store.begin().await.unwrap();
    let mut cross = membership("default2", WorkspaceRole::User);
    assert_not_found(
        tx.service_account_workspace_add(&cross).await,
        "workspace of another org",
    );
    drop(tx);
    cross.organization_id = org2.id.clone();
    let mut tx = store.begin().await.unwrap();
    assert_not_found(tx.service_account_workspace_add(&cross).await, "account of another org");
}

async fn issuer_lifecycle(db: Db) {
    let store = &db.store;
    let org = harness::seed_org(store, 1).await;
    let mut issuer = harness::issuer(&org, "k8s", "kubernetes", NOW);
    issuer.jwks =
        json!({"type": "inline", "keys": [{"kty": "EC", "crv": "P-256", "x": "f83O", "y": "x_FE", "kid": "k1"}]});
    issuer.check_jti = false;
    issuer.max_jwt_lifetime_seconds = 176_400;
    let mut tx = store.begin().await.unwrap();
    tx.issuer_create(&issuer).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.issuer_get(&org.id, &issuer.id).await.unwrap(), issuer);

    let view = issuer.to_issuer();
    assert_eq!(view.issuer_url, "https://kubernetes.example.com");
    assert!(!view.check_jti);
    assert_eq!(view.max_jwt_lifetime_seconds, 176_400);

    let status = IssuerPollStatus {
        consecutive_failures: 3,
        last_fetched_at: Some(NOW - 600),
        next_poll_at: Some(NOW + 300),
        last_error: Some("connection refused".to_owned()),
    };
    store
        .issuer_poll_status_set(&org.id, &issuer.id, &status, Some(NOW))
        .await
        .unwrap();
    let polled = store.issuer_get(&org.id, &issuer.id).await.unwrap();
    assert_eq!(polled.poll_status, status);
    assert_eq!(polled.jwks_polling_disabled_at, Some(NOW));
    assert_not_found(
        store
            .issuer_poll_status_set(&org.id, &harness::issuer_id("missing"), &status, None)
            .await,
        "poll status of a missing issuer",
    );

    // An update resumes polling and leaves the poll status alone.
    let mut tx = store.begin().await.unwrap();
    let mut updated = tx.issuer_get(&org.id, &issuer.id).await.unwrap();
    updated.issuer_url = "https://k8s.example.com".to_owned();
    updated.jwks = json!({"type": "explicit_url", "url": "https://k8s.example.com/jwks"});
    updated.check_jti = true;
    updated.jwks_polling_disabled_at = None;
    updated.audit.touch(NOW + 1, "user_bob");
    tx.issuer_update(&updated).await.unwrap();
    tx.commit().await.unwrap();
    let stored = store.issuer_get(&org.id, &issuer.id).await.unwrap();
    assert_eq!(stored, updated);
    assert_eq!(stored.poll_status, status);

    // A reset (with an admin change) starts polling over and keeps the last success.
    store
        .issuer_poll_status_set(&org.id, &issuer.id, &status, Some(NOW + 2))
        .await
        .unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.issuer_poll_status_reset(&org.id, &issuer.id).await.unwrap();
    assert_not_found(
        tx.issuer_poll_status_reset(&org.id, &harness::issuer_id("missing"))
            .await,
        "poll reset of a missing issuer",
    );
    tx.commit().await.unwrap();
    let reset = store.issuer_get(&org.id, &issuer.id).await.unwrap();
    assert_eq!(
        reset.poll_status,
        IssuerPollStatus {
            consecutive_failures: 0,
            last_fetched_at: Some(NOW - 600),
            next_poll_at: None,
            last_error: None,
        }
    );
    assert_eq!(reset.jwks_polling_disabled_at, None);
    let due = store.issuer_list_due(NOW, Limit::default()).await.unwrap();
    assert!(
        due.iter().any(|due| due.id == issuer.id),
        "a reset issuer is due at once"
    );
}

async fn issuers_due_for_polling(db: Db) {
    let store = &db.store;
    let org1 = harness::seed_org(store, 1).await;
    let org2 = harness::seed_org(store, 2).await;
    // (org, id, next_poll_at, polling disabled, archived, due)
    let cases = [
        (&org1, "never", None, false, false, true),
        (&org1, "overdue", Some(NOW - 100), false, false, true),
        (&org2, "now", Some(NOW), false, false, true),
        (&org1, "later", Some(NOW + 1), false, false, false),
        (&org1, "paused", Some(NOW - 50), true, false, false),
        (&org2, "archived", Some(NOW - 50), false, true, false),
    ];
    let mut tx = store.begin().await.unwrap();
    for (org, id, next_poll_at, paused, archived, _) in &cases {
        let mut issuer = harness::issuer(org, id, id, NOW);
        issuer.poll_status.next_poll_at = *next_poll_at;
        issuer.jwks_polling_disabled_at = paused.then_some(NOW - 10);
        issuer.audit.archived_at = archived.then_some(NOW - 5);
        tx.issuer_create(&issuer).await.unwrap();
    }
    tx.commit().await.unwrap();
    let due: Vec<String> = store
        .issuer_list_due(NOW, keyless_store::Limit::default())
        .await
        .unwrap()
        .into_iter()
        .map(|issuer| issuer.id.to_string())
        .collect();
    assert_eq!(due, ["fdis_never", "fdis_overdue", "fdis_now"]);
    let first = store
        .issuer_list_due(NOW, keyless_store::Limit::new(1).unwrap())
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
}

async fn rule_lifecycle(db: Db) {
    let store = &db.store;
    let (org1, org2) = two_orgs(store).await;
    let issuer = harness::issuer_id("gh");
    let account = harness::service_account_id("deploy");
    let mut tx = store.begin().await.unwrap();
    tx.workspace_create(&harness::workspace(&org1, "prod", "prod", NOW))
        .await
        .unwrap();
    tx.service_account_create(&harness::service_account(&org1, "admin", "admin", NOW))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut rule = harness::rule(&org1, "main", "main", &issuer, &account, NOW);
    rule.description = Some("main branch deploys".to_owned());
    rule.oauth_scope = ScopeSet::parse("workspace:developer workspace:inference").unwrap();
    rule.workspaces = RuleWorkspaces::Listed(BTreeSet::from([
        org1.default_workspace.clone(),
        harness::workspace_id("prod"),
    ]));
    let mut tx = store.begin().await.unwrap();
    tx.rule_create(&rule).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.rule_get(&org1.id, &rule.id).await.unwrap(), rule);

    // Update: match, target, scope, lifetime replaced; workspaces replaced whole; the issuer is immutable.
    let mut tx = store.begin().await.unwrap();
    let mut updated = tx.rule_get(&org1.id, &rule.id).await.unwrap();
    updated.r#match = MatchDraft {
        subject_prefix: None,
        audience: Some("https://keyless.example.com".to_owned()),
        claims: None,
        condition: Some("claims.environment == \"prod\"".to_owned()),
    };
    updated.service_account_id = harness::service_account_id("admin");
    updated.oauth_scope = ScopeSet::parse("org:admin").unwrap();
    updated.token_lifetime = TokenLifetime::new(86_400).unwrap();
    updated.workspaces = RuleWorkspaces::All;
    updated.audit.touch(NOW + 1, "user_carol");
    let mut moved = updated.clone();
    moved.issuer_id = harness::issuer_id("other");
    tx.rule_update(&moved).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.rule_get(&org1.id, &rule.id).await.unwrap(), updated);

    let mut tx = store.begin().await.unwrap();
    let mut listed = updated.clone();
    listed.workspaces = RuleWorkspaces::Listed(BTreeSet::from([harness::workspace_id("prod")]));
    tx.rule_update(&listed).await.unwrap();
    tx.rule_workspace_add(&org1.id, &rule.id, &org1.default_workspace)
        .await
        .unwrap();
    assert_conflict(
        tx.rule_workspace_add(&org1.id, &rule.id, &org1.default_workspace).await,
        "rule workspace",
        "add twice",
    );
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    tx.rule_update(&listed).await.unwrap();
    tx.rule_workspace_add(&org1.id, &rule.id, &org1.default_workspace)
        .await
        .unwrap();
    tx.rule_workspace_remove(&org1.id, &rule.id, &harness::workspace_id("prod"))
        .await
        .unwrap();
    assert_not_found(
        tx.rule_workspace_remove(&org1.id, &rule.id, &harness::workspace_id("prod"))
            .await,
        "remove twice",
    );
    assert_not_found(
        tx.rule_workspace_add(&org1.id, &rule.id, &org2.default_workspace).await,
        "a workspace of another organization",
    );
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    tx.rule_update(&listed).await.unwrap();
    tx.rule_workspace_add(&org1.id, &rule.id, &org1.default_workspace)
        .await
        .unwrap();
    tx.rule_workspace_remove(&org1.id, &rule.id, &harness::workspace_id("prod"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store.rule_get(&org1.id, &rule.id).await.unwrap().workspaces,
        RuleWorkspaces::Listed(BTreeSet::from([org1.default_workspace.clone()]))
    );

    let mut tx = store.begin().await.unwrap();
    let mut missing = updated.clone();
    missing.id = harness::rule_id("missing");
    assert_not_found(tx.rule_update(&missing).await, "update missing");
}

async fn rules_never_cross_organizations(db: Db) {
    let store = &db.store;
    let (org1, _org2) = two_orgs(store).await;
    // (issuer, target, workspace): org1's rule naming any object of org2 is refused.
    let cases: [(IssuerId, ServiceAccountId, _); 3] = [
        (
            harness::issuer_id("gh2"),
            harness::service_account_id("deploy"),
            org1.default_workspace.clone(),
        ),
        (
            harness::issuer_id("gh"),
            harness::service_account_id("deploy2"),
            org1.default_workspace.clone(),
        ),
        (
            harness::issuer_id("gh"),
            harness::service_account_id("deploy"),
            harness::workspace_id("default2"),
        ),
    ];
    for (idx, (issuer, target, workspace)) in cases.into_iter().enumerate() {
        let mut rule = harness::rule(&org1, "cross", "cross", &issuer, &target, NOW);
        rule.workspaces = RuleWorkspaces::Listed(BTreeSet::from([workspace]));
        let mut tx = store.begin().await.unwrap();
        assert_not_found(tx.rule_create(&rule).await, idx);
    }
    let page = store
        .rule_list(&org1.id, &RuleFilter::default(), &ListQuery::default())
        .await
        .unwrap();
    assert!(page.items.is_empty());
}

async fn live_rules_are_counted_and_filtered(db: Db) {
    let store = &db.store;
    let org = harness::seed_org(store, 1).await;
    let (issuer, account) = harness::seed_issuer_and_account(store, &org).await;
    let mut tx = store.begin().await.unwrap();
    tx.issuer_create(&harness::issuer(&org, "gl", "gitlab", NOW))
        .await
        .unwrap();
    tx.service_account_create(&harness::service_account(&org, "ops", "ops", NOW))
        .await
        .unwrap();
    let other_issuer = harness::issuer_id("gl");
    let other_account = harness::service_account_id("ops");
    // (id, issuer, target, archived)
    let rules = [
        ("r1", &issuer, &account, false),
        ("r2", &issuer, &other_account, false),
        ("r3", &other_issuer, &account, false),
        ("r4", &issuer, &account, true),
    ];
    for (idx, (id, rule_issuer, target, archived)) in rules.iter().enumerate() {
        let at = NOW + i64::try_from(idx).unwrap();
        let mut rule = harness::rule(&org, id, id, rule_issuer, target, at);
        rule.audit.archived_at = archived.then_some(at);
        tx.rule_create(&rule).await.unwrap();
    }
    tx.commit().await.unwrap();

    let filter = |issuer: Option<&IssuerId>, account: Option<&ServiceAccountId>| RuleFilter {
        issuer_id: issuer.cloned(),
        service_account_id: account.cloned(),
    };
    // (filter, live count, listed ids without / with archived)
    let cases = [
        (
            filter(None, None),
            3,
            vec!["r3", "r2", "r1"],
            vec!["r4", "r3", "r2", "r1"],
        ),
        (filter(Some(&issuer), None), 2, vec!["r2", "r1"], vec!["r4", "r2", "r1"]),
        (
            filter(None, Some(&account)),
            2,
            vec!["r3", "r1"],
            vec!["r4", "r3", "r1"],
        ),
        (filter(Some(&issuer), Some(&account)), 1, vec!["r1"], vec!["r4", "r1"]),
        (filter(Some(&harness::issuer_id("none")), None), 0, vec![], vec![]),
    ];
    for (filter, live, listed, listed_with_archived) in cases {
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.rule_count_live(&org.id, &filter).await.unwrap(), live, "{filter:?}");
        drop(tx);
        for (include_archived, expected) in [(false, listed), (true, listed_with_archived)] {
            let list = ListQuery {
                include_archived,
                ..ListQuery::default()
            };
            let page = store.rule_list(&org.id, &filter, &list).await.unwrap();
            let ids: Vec<String> = page.items.iter().map(|rule| rule.id.to_string()).collect();
            let expected: Vec<String> = expected.iter().map(|id| format!("fdrl_{id}")).collect();
            assert_eq!(ids, expected, "{filter:?} include_archived={include_archived}");
        }
    }
}

/// The configuration generation counts an organization's bumps, and only its own; the rule with its
/// issuer and service account reads as the three records.
async fn config_generation_and_rule_parties(db: Db) {
    let store = &db.store;
    let org = harness::seed_org(store, 1).await;
    let other = harness::seed_org(store, 2).await;
    assert_eq!(store.config_generation(&org.id).await.unwrap(), 0);
    for _ in 0..2 {
        let mut tx = store.begin().await.unwrap();
        tx.config_generation_bump(&org.id).await.unwrap();
        tx.commit().await.unwrap();
    }
    // A bump rolled back is not counted.
    let mut tx = store.begin().await.unwrap();
    tx.config_generation_bump(&org.id).await.unwrap();
    drop(tx);
    assert_eq!(store.config_generation(&org.id).await.unwrap(), 2);
    assert_eq!(store.config_generation(&other.id).await.unwrap(), 0);
    let unknown = keyless_core::id::OrganizationId::parse("00000000-0000-4000-8000-00000000abcd").unwrap();
    assert!(matches!(
        store.config_generation(&unknown).await,
        Err(StoreError::NotFound)
    ));
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.config_generation_bump(&unknown).await,
        Err(StoreError::NotFound)
    ));
    drop(tx);

    let (issuer, account) = harness::seed_issuer_and_account(store, &org).await;
    let rule = harness::rule(&org, "main", "main", &issuer, &account, NOW);
    let mut tx = store.begin().await.unwrap();
    tx.rule_create(&rule).await.unwrap();
    tx.commit().await.unwrap();
    let (got_rule, got_issuer, got_account) = store.rule_get_with_parties(&org.id, &rule.id).await.unwrap();
    assert_eq!(got_rule, store.rule_get(&org.id, &rule.id).await.unwrap());
    assert_eq!(got_issuer, store.issuer_get(&org.id, &rule.issuer_id).await.unwrap());
    assert_eq!(
        got_account,
        store
            .service_account_get(&org.id, &rule.service_account_id)
            .await
            .unwrap()
    );
    assert!(matches!(
        store.rule_get_with_parties(&other.id, &rule.id).await,
        Err(StoreError::NotFound)
    ));
}

/// A workspace's references are the live rules that list it and the live service accounts with an
/// explicit membership of it; rules for all workspaces, archived objects and other workspaces' rows
/// are not.
async fn workspace_references_are_live_listings(db: Db) {
    let store = &db.store;
    let org = harness::seed_org(store, 1).await;
    let (issuer, account) = harness::seed_issuer_and_account(store, &org).await;
    let staging = harness::workspace_id("staging");
    let mut tx = store.begin().await.unwrap();
    tx.workspace_create(&harness::workspace(&org, "staging", "staging", NOW))
        .await
        .unwrap();
    let retired = harness::service_account(&org, "retired", "retired", NOW);
    tx.service_account_create(&retired).await.unwrap();
    // (id, workspaces, archived)
    let rules = [
        (
            "r1",
            RuleWorkspaces::Listed([staging.clone(), org.default_workspace.clone()].into()),
            false,
        ),
        (
            "r2",
            RuleWorkspaces::Listed([org.default_workspace.clone()].into()),
            false,
        ),
        ("r3", RuleWorkspaces::All, false),
        ("r4", RuleWorkspaces::Listed([staging.clone()].into()), true),
        ("r5", RuleWorkspaces::Listed([staging.clone()].into()), false),
    ];
    for (idx, (id, workspaces, archived)) in rules.into_iter().enumerate() {
        let at = NOW + i64::try_from(idx).unwrap();
        let mut rule = harness::rule(&org, id, id, &issuer, &account, at);
        rule.workspaces = workspaces;
        rule.audit.archived_at = archived.then_some(at);
        tx.rule_create(&rule).await.unwrap();
    }
    for service_account_id in [&account, &retired.id] {
        tx.service_account_workspace_add(&WorkspaceMembership {
            organization_id: org.id.clone(),
            service_account_id: service_account_id.clone(),
            workspace_id: staging.clone(),
            workspace_role: WorkspaceRole::Developer,
            created_at: NOW,
            created_by_actor_id: ADMIN.to_owned(),
            updated_at: NOW,
            updated_by_actor_id: ADMIN.to_owned(),
        })
        .await
        .unwrap();
    }
    tx.service_account_archive(&org.id, &retired.id, NOW, ADMIN)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let references = tx.workspace_references(&org.id, &staging).await.unwrap();
    assert_eq!(
        references.rule_ids,
        vec![harness::rule_id("r1"), harness::rule_id("r5")]
    );
    assert_eq!(references.service_account_ids, vec![account.clone()]);
    assert!(!references.is_empty());
    let references = tx.workspace_references(&org.id, &org.default_workspace).await.unwrap();
    assert_eq!(
        references.rule_ids,
        vec![harness::rule_id("r1"), harness::rule_id("r2")]
    );
    assert!(references.service_account_ids.is_empty());
    let nothing = tx
        .workspace_references(&org.id, &harness::workspace_id("missing"))
        .await
        .unwrap();
    assert!(nothing.is_empty(), "{nothing:?}");
}

conformance!(
    config_generation_and_rule_parties,
    workspace_references_are_live_listings,
    names_are_unique_per_organization_and_type,
    archive_is_idempotent_and_keeps_the_first,
    workspace_lifecycle,
    service_account_lifecycle,
    service_account_memberships,
    issuer_lifecycle,
    issuers_due_for_polling,
    rule_lifecycle,
    rules_never_cross_organizations,
    live_rules_are_counted_and_filtered,
);
