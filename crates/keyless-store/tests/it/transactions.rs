//! Transactions: a change and its activity event commit together or not at all; uncommitted changes are
//! invisible; reads inside a transaction lock, so concurrent read-modify-write loses no update.

use std::future::Future;
use std::task::Poll;

use keyless_core::id::OrganizationId;
use keyless_core::scope::ScopeSet;
use keyless_store::access_token::AccessTokenRecord;
use keyless_store::activity::ActivityQuery;
use keyless_store::{Store, StoreError};

use crate::harness::{self, Db, NOW, Org};

/// How a change fails after its first writes.
#[derive(Debug, Clone, Copy)]
enum Failure {
    /// The transaction is dropped without a commit (an early return, a panic, a cancelled request).
    Dropped,
    /// The caller rolls back.
    RolledBack,
    /// A later statement hits a unique constraint (the service account name is taken).
    Conflict,
    /// A later statement names an object that does not exist (a token bound to a missing rule).
    MissingReference,
}

async fn events_about(store: &Store, org: &OrganizationId, resource: &str) -> usize {
    let query = ActivityQuery {
        resource_id: Some(resource.to_owned()),
        ..ActivityQuery::default()
    };
    store.activity_list(org, &query).await.unwrap().items.len()
}

fn token(org: &Org, rule: &str) -> AccessTokenRecord {
    AccessTokenRecord {
        hash: vec![42; 32],
        organization_id: org.id.clone(),
        workspace_id: Some(org.default_workspace.clone()),
        service_account_id: None,
        rule_id: Some(harness::rule_id(rule)),
        scope: ScopeSet::default_grant(),
        created_at: NOW,
        expires_at: NOW + 600,
        revoked_at: None,
    }
}

async fn failed_change_leaves_neither_row_nor_activity(db: Db) {
    let store = &db.store;
    let org = harness::seed_org(store, 1).await;
    let mut tx = store.begin().await.unwrap();
    tx.service_account_create(&harness::service_account(&org, "taken", "taken", NOW))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    for failure in [
        Failure::Dropped,
        Failure::RolledBack,
        Failure::Conflict,
        Failure::MissingReference,
    ] {
        let account = harness::service_account(&org, "fresh", "fresh", NOW);
        let mut tx = store.begin().await.unwrap();
        tx.service_account_create(&account).await.unwrap();
        tx.activity_append(&harness::activity(
            &org.id,
            "platform_service_account_created",
            Some("svac_fresh"),
            NOW,
        ))
        .await
        .unwrap();
        match failure {
            Failure::Dropped => drop(tx),
            Failure::RolledBack => tx.rollback().await.unwrap(),
            Failure::Conflict => {
                let clash = harness::service_account(&org, "other", "taken", NOW);
                assert!(matches!(
                    tx.service_account_create(&clash).await,
                    Err(StoreError::Conflict { what: "name" })
                ));
            }
            Failure::MissingReference => {
                assert!(matches!(
                    tx.access_token_create(&token(&org, "missing")).await,
                    Err(StoreError::NotFound)
                ));
            }
        }
        assert!(
            matches!(
                store.service_account_get(&org.id, &account.id).await,
                Err(StoreError::NotFound)
            ),
            "{failure:?}"
        );
        assert_eq!(events_about(store, &org.id, "svac_fresh").await, 0, "{failure:?}");
    }

    // The same change, committed: both the row and its event exist.
    let account = harness::service_account(&org, "fresh", "fresh", NOW);
    let mut tx = store.begin().await.unwrap();
    tx.service_account_create(&account).await.unwrap();
    tx.activity_append(&harness::activity(
        &org.id,
        "platform_service_account_created",
        Some("svac_fresh"),
        NOW,
    ))
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.service_account_get(&org.id, &account.id).await.unwrap(), account);
    assert_eq!(events_about(store, &org.id, "svac_fresh").await, 1);
}

async fn uncommitted_changes_are_invisible(db: Db) {
    let store = &db.store;
    let org = harness::seed_org(store, 1).await;
    let (issuer, account) = harness::seed_issuer_and_account(store, &org).await;
    let mut tx = store.begin().await.unwrap();
    tx.rule_create(&harness::rule(&org, "main", "main", &issuer, &account, NOW))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // A minted token and its event: nobody sees the token before the event is committed.
    let minted = token(&org, "main");
    let mut tx = store.begin().await.unwrap();
    tx.access_token_create(&minted).await.unwrap();
    tx.activity_append(&harness::activity(
        &org.id,
        "platform_federated_authentication",
        Some("fdrl_main"),
        NOW,
    ))
    .await
    .unwrap();
    assert!(matches!(
        store.access_token_get(&minted.hash).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(events_about(store, &org.id, "fdrl_main").await, 0);
    tx.commit().await.unwrap();
    assert_eq!(store.access_token_get(&minted.hash).await.unwrap(), minted);
    assert_eq!(events_about(store, &org.id, "fdrl_main").await, 1);
}

async fn concurrent_read_modify_write_loses_no_update(db: Db) {
    let store = db.store.clone();
    let org = harness::seed_org(&store, 1).await;
    let mut account = harness::service_account(&org, "counter", "counter", NOW);
    account.description = Some(String::new());
    let mut tx = store.begin().await.unwrap();
    tx.service_account_create(&account).await.unwrap();
    tx.commit().await.unwrap();

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            let org_id = org.id.clone();
            let id = account.id.clone();
            tokio::spawn(async move {
                let mut tx = store.begin().await.unwrap();
                let mut current = tx.service_account_get(&org_id, &id).await.unwrap();
                current.description.get_or_insert_with(String::new).push('x');
                tx.service_account_update(&current).await.unwrap();
                tx.commit().await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let stored = store.service_account_get(&org.id, &account.id).await.unwrap();
    assert_eq!(stored.description.as_deref(), Some("x".repeat(20).as_str()));
}

/// A multi-row append that fails part-way (on SQLite its earlier rows are not undone on their own)
/// leaves a transaction that cannot commit: the commit fails and rolls everything back.
async fn a_failed_append_cannot_commit(db: Db) {
    let store = &db.store;
    let org = harness::seed_org(store, 1).await;
    let account = harness::service_account(&org, "fresh", "fresh", NOW);
    let good = AccessTokenRecord {
        hash: vec![7; 32],
        rule_id: None,
        ..token(&org, "unused")
    };
    let mut tx = store.begin().await.unwrap();
    tx.service_account_create(&account).await.unwrap();
    assert!(matches!(
        tx.access_token_create_many(&[good.clone(), token(&org, "missing")])
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(
        tx.commit().await.is_err(),
        "a transaction with a failed append committed"
    );
    assert!(matches!(
        store.access_token_get(&good.hash).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.service_account_get(&org.id, &account.id).await,
        Err(StoreError::NotFound)
    ));

    // The same rows without the bad one commit.
    let mut tx = store.begin().await.unwrap();
    tx.service_account_create(&account).await.unwrap();
    tx.access_token_create(&good).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.access_token_get(&good.hash).await.unwrap(), good);
}

/// Runs `future` for at most `polls` polls; if it is still pending after the last, drops it there — right
/// after it sent a command to the database and before it read the answer — and returns `None`.
async fn cut_after<F: Future>(polls: usize, future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut left = polls;
    std::future::poll_fn(|cx| {
        left -= 1;
        match future.as_mut().poll(cx) {
            Poll::Ready(output) => Poll::Ready(Some(output)),
            Poll::Pending if left == 0 => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// A change abandoned at any point (a client that hangs up cancels its request's future wherever it
/// waits: for the write connection, the `BEGIN`, a statement, the `COMMIT`) leaves its row and its
/// event together or not at all, and never leaves the write connection unusable: the next change
/// commits. Each round cuts the change after one pending poll, then two, and so on, until it completes
/// on its own; how often it is pending depends on the database's threads, so rounds repeat until it
/// has been cut at twenty points in all.
async fn a_change_cancelled_anywhere_is_all_or_nothing(db: Db) {
    let store = &db.store;
    let org = harness::seed_org(store, 1).await;
    let mut cancelled = 0;
    for round in 0..50 {
        for polls in 1.. {
            let id = format!("cut{round}x{polls}");
            let account = harness::service_account(&org, &id, &id, NOW);
            let resource = format!("svac_{id}");
            let change = async {
                let mut tx = store.begin().await?;
                tx.service_account_create(&account).await?;
                tx.activity_append(&harness::activity(
                    &org.id,
                    "platform_service_account_created",
                    Some(&resource),
                    NOW,
                ))
                .await?;
                tx.commit().await
            };
            let outcome = cut_after(polls, change).await;

            // The next change goes through: nothing was left holding the write connection or its lock.
            let next = harness::service_account(&org, &format!("next{id}"), &format!("next{id}"), NOW);
            let mut tx = store.begin().await.unwrap();
            tx.service_account_create(&next).await.unwrap();
            tx.commit().await.unwrap();

            let stored = store.service_account_get(&org.id, &account.id).await.is_ok();
            let events = events_about(store, &org.id, &resource).await;
            assert_eq!(events, usize::from(stored), "{id}: row and event disagree");
            match outcome {
                Some(result) => {
                    result.unwrap();
                    assert!(stored, "{id}: a change that returned Ok is stored");
                    break;
                }
                None => cancelled += 1,
            }
        }
        if cancelled >= 20 {
            return;
        }
    }
    panic!("in 50 rounds the change was cut at only {cancelled} points");
}

conformance!(
    a_change_cancelled_anywhere_is_all_or_nothing,
    a_failed_append_cannot_commit,
    failed_change_leaves_neither_row_nor_activity,
    uncommitted_changes_are_invisible,
    concurrent_read_modify_write_loses_no_update,
);
