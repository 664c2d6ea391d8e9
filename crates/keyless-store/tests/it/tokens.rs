//! Access tokens by hash, `jti` single use (including 20 concurrent first uses), signing keys.

use keyless_core::scope::ScopeSet;
use keyless_store::access_token::AccessTokenRecord;
use keyless_store::signing_key::{EncryptedPrivateKey, SigningKeyRecord};
use keyless_store::{Store, StoreError};

use crate::harness::{self, Db, NOW, Org};

fn token(org: &Org, hash: u8, expires_at: i64) -> AccessTokenRecord {
    AccessTokenRecord {
        hash: vec![hash; 32],
        organization_id: org.id.clone(),
        workspace_id: Some(org.default_workspace.clone()),
        service_account_id: Some(harness::service_account_id("deploy")),
        rule_id: Some(harness::rule_id("main")),
        scope: ScopeSet::parse("workspace:developer workspace:inference").unwrap(),
        created_at: NOW,
        expires_at,
        revoked_at: None,
    }
}

async fn create_token(store: &Store, token: &AccessTokenRecord) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    tx.access_token_create(token).await?;
    tx.commit().await
}

async fn revoke_token(store: &Store, hash: &[u8], at: i64) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    let revoked = tx.access_token_revoke(hash, at).await?;
    tx.commit().await?;
    Ok(revoked)
}

async fn access_tokens_by_hash(db: Db) {
    let store = &db.store;
    let org = harness::seed_org(store, 1).await;
    let org2 = harness::seed_org(store, 2).await;
    let (issuer, account) = harness::seed_issuer_and_account(store, &org).await;
    let mut tx = store.begin().await.unwrap();
    tx.rule_create(&harness::rule(&org, "main", "main", &issuer, &account, NOW))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let minted = token(&org, 1, NOW + 600);
    create_token(store, &minted).await.unwrap();
    assert_eq!(store.access_token_get(&minted.hash).await.unwrap(), minted);
    assert!(minted.is_active(NOW + 599));
    assert!(!minted.is_active(NOW + 600));
    assert!(matches!(
        create_token(store, &minted).await,
        Err(StoreError::Conflict { what: "hash" })
    ));
    assert!(matches!(
        store.access_token_get(&[9; 32]).await,
        Err(StoreError::NotFound)
    ));

    // The bootstrap token names no workspace, account or rule.
    let bootstrap = AccessTokenRecord {
        workspace_id: None,
        service_account_id: None,
        rule_id: None,
        scope: ScopeSet::parse("org:admin").unwrap(),
        ..token(&org, 2, NOW + 86_400)
    };
    create_token(store, &bootstrap).await.unwrap();
    assert_eq!(store.access_token_get(&bootstrap.hash).await.unwrap(), bootstrap);

    // Revocation keeps the first time.
    assert!(revoke_token(store, &minted.hash, NOW + 10).await.unwrap());
    assert!(!revoke_token(store, &minted.hash, NOW + 20).await.unwrap());
    let revoked = store.access_token_get(&minted.hash).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(NOW + 10));
    assert!(!revoked.is_active(NOW + 11));
    assert!(matches!(
        revoke_token(store, &[9; 32], NOW).await,
        Err(StoreError::NotFound)
    ));

    // A token of org2 cannot be bound to org1's objects.
    let cross = AccessTokenRecord {
        organization_id: org2.id.clone(),
        ..token(&org, 3, NOW + 600)
    };
    assert!(matches!(create_token(store, &cross).await, Err(StoreError::NotFound)));

    // Purge removes only tokens that expired before the given time, at most `limit` per call, the
    // oldest expiries first.
    for (n, expires_at) in [(4, NOW - 1), (5, NOW - 300), (6, NOW - 200)] {
        create_token(store, &token(&org, n, expires_at)).await.unwrap();
    }
    assert_eq!(store.access_token_purge(NOW, 2).await.unwrap(), 2);
    assert!(store.access_token_get(&token(&org, 4, NOW - 1).hash).await.is_ok());
    assert!(matches!(
        store.access_token_get(&token(&org, 5, NOW - 300).hash).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.access_token_purge(NOW, 2).await.unwrap(), 1);
    assert_eq!(store.access_token_purge(NOW, 2).await.unwrap(), 0);
    assert!(store.access_token_get(&minted.hash).await.is_ok());
}

async fn record_jti(store: &Store, issuer: &str, jti: &str, keep_until: i64) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    tx.jti_record(&harness::issuer_id(issuer), jti, keep_until).await?;
    tx.commit().await
}

async fn jti_is_single_use(db: Db) {
    let store = &db.store;
    // (issuer, jti, keep_until, expected): replays conflict per issuer. A replayed token carries the
    // same `exp`, so the same `keep_until`; the same `jti` with another `exp` is another token (only its
    // issuer could sign one), which the key (issuer, keep_until, jti) lets through.
    let cases = [
        ("gh", "abc", NOW + 60, Ok(())),
        ("gh", "abc", NOW + 60, Err("jti")),
        ("gh", "abc", NOW + 999, Ok(())),
        ("gh", "abc", NOW + 999, Err("jti")),
        ("gl", "abc", NOW + 60, Ok(())),
        ("gh", "ABC", NOW + 60, Ok(())),
        ("gh", "old", NOW - 1, Ok(())),
    ];
    for (issuer, jti, keep_until, expected) in cases {
        let res = record_jti(store, issuer, jti, keep_until).await;
        match (res, expected) {
            (Ok(()), Ok(())) => {}
            (Err(StoreError::Conflict { what }), Err(expected)) => assert_eq!(what, expected),
            (res, expected) => panic!("{issuer} {jti}: {res:?}, expected {expected:?}"),
        }
    }

    // A replay does not abort the transaction: the rest of a group commit goes through.
    let org = harness::seed_org(store, 1).await;
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.jti_record(&harness::issuer_id("gh"), "abc", NOW + 60).await,
        Err(StoreError::Conflict { what: "jti" })
    ));
    tx.jti_record(&harness::issuer_id("gh"), "fresh", NOW + 60)
        .await
        .unwrap();
    let id = tx
        .activity_append(&harness::activity(
            &org.id,
            "platform_federated_authentication",
            None,
            NOW,
        ))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(store.activity_get(&org.id, id).await.is_ok());
    assert!(record_jti(store, "gh", "fresh", NOW + 60).await.is_err());

    // Purge drops what expired before `now`, at most `limit` per call, walking the registered issuers
    // of every organization; a purged jti may be recorded again.
    let other = harness::seed_org(store, 2).await;
    let mut tx = store.begin().await.unwrap();
    tx.issuer_create(&harness::issuer(&org, "gh", "github", NOW))
        .await
        .unwrap();
    tx.issuer_create(&harness::issuer(&other, "gl", "gitlab", NOW))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    record_jti(store, "gl", "older", NOW - 5).await.unwrap();
    record_jti(store, "gl", "oldest", NOW - 9).await.unwrap();
    assert_eq!(store.jti_purge(NOW, 1).await.unwrap(), 1);
    assert_eq!(store.jti_purge(NOW, 10).await.unwrap(), 2);
    assert_eq!(store.jti_purge(NOW, 10).await.unwrap(), 0);
    record_jti(store, "gh", "old", NOW - 1).await.unwrap();
    record_jti(store, "gl", "older", NOW - 5).await.unwrap();
    record_jti(store, "gl", "oldest", NOW - 9).await.unwrap();
    assert!(
        record_jti(store, "gh", "abc", NOW + 60).await.is_err(),
        "unexpired records stay"
    );
}

async fn concurrent_jti_first_use_has_one_winner(db: Db) {
    let store = db.store.clone();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { record_jti(&store, "gh", "race", NOW + 60).await })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::Conflict { what: "jti" }) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(won, 1);
}

async fn signing_keys(db: Db) {
    let store = &db.store;
    let key = |kid: &str, created_at: i64| SigningKeyRecord {
        kid: kid.to_owned(),
        alg: "ES256".to_owned(),
        encrypted_private_key: EncryptedPrivateKey::new(vec![7; 48]),
        created_at,
        retired_at: None,
    };
    let mut tx = store.begin().await.unwrap();
    tx.signing_key_create(&key("k1", NOW)).await.unwrap();
    tx.signing_key_create(&key("k2", NOW + 1)).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.signing_key_create(&key("k1", NOW)).await,
        Err(StoreError::Conflict { what: "kid" })
    ));
    drop(tx);

    let kids = |keys: Vec<SigningKeyRecord>| keys.into_iter().map(|key| key.kid).collect::<Vec<_>>();
    assert_eq!(kids(store.signing_key_list(false).await.unwrap()), ["k2", "k1"]);
    assert_eq!(store.signing_key_list(false).await.unwrap()[1], key("k1", NOW));

    let mut tx = store.begin().await.unwrap();
    assert!(tx.signing_key_retire("k1", NOW + 5).await.unwrap());
    assert!(!tx.signing_key_retire("k1", NOW + 6).await.unwrap());
    assert!(matches!(
        tx.signing_key_retire("k9", NOW).await,
        Err(StoreError::NotFound)
    ));
    tx.commit().await.unwrap();
    assert_eq!(kids(store.signing_key_list(false).await.unwrap()), ["k2"]);
    let all = store.signing_key_list(true).await.unwrap();
    assert_eq!(all[1].retired_at, Some(NOW + 5));

    let debug = format!("{:?}", all[0]);
    assert!(debug.contains("EncryptedPrivateKey(48 bytes)"), "{debug}");
    assert!(!debug.contains("7, 7"), "{debug}");
}

/// A group commit's writes: many `jti` uses and tokens in one statement each, replays reported per use
/// (including a `jti` used twice in one call) without failing the batch.
async fn batched_jti_uses_and_tokens(db: Db) {
    let store = &db.store;
    let org = harness::seed_org(store, 1).await;
    let (issuer, account) = harness::seed_issuer_and_account(store, &org).await;
    let mut tx = store.begin().await.unwrap();
    tx.rule_create(&harness::rule(&org, "main", "main", &issuer, &account, NOW))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    record_jti(store, "gh", "used", NOW + 60).await.unwrap();

    let (gh, gl) = (harness::issuer_id("gh"), harness::issuer_id("gl"));
    let uses = [
        (&gh, "a", NOW + 60),
        (&gh, "used", NOW + 60),
        (&gh, "b", NOW + 60),
        (&gh, "a", NOW + 60),
        (&gl, "a", NOW + 60),
    ];
    let tokens: Vec<AccessTokenRecord> = (10..15).map(|hash| token(&org, hash, NOW + 600)).collect();
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.jti_record_many(&uses).await.unwrap(),
        [true, false, true, false, true]
    );
    assert_eq!(tx.jti_record_many(&[]).await.unwrap(), Vec::<bool>::new());
    tx.access_token_create_many(&tokens).await.unwrap();
    tx.commit().await.unwrap();
    for minted in &tokens {
        assert_eq!(&store.access_token_get(&minted.hash).await.unwrap(), minted);
    }
    assert!(record_jti(store, "gh", "b", NOW + 60).await.is_err());

    // More uses than one statement holds: chunk boundaries keep order and first-use semantics.
    let names: Vec<String> = (0..1200).map(|n| format!("bulk-{}", n % 1100)).collect();
    let bulk: Vec<_> = names.iter().map(|name| (&gh, name.as_str(), NOW + 60)).collect();
    let mut tx = store.begin().await.unwrap();
    let first = tx.jti_record_many(&bulk).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(first.iter().filter(|fresh| **fresh).count(), 1100);
    assert!(first[..1100].iter().all(|fresh| *fresh) && first[1100..].iter().all(|fresh| !*fresh));

    // A stored hash fails the whole batch: nothing of it is kept.
    let mut tx = store.begin().await.unwrap();
    let clash = [token(&org, 20, NOW + 600), token(&org, 10, NOW + 600)];
    assert!(matches!(
        tx.access_token_create_many(&clash).await,
        Err(StoreError::Conflict { what: "hash" })
    ));
    drop(tx);
    assert!(matches!(
        store.access_token_get(&[20; 32]).await,
        Err(StoreError::NotFound)
    ));
}

conformance!(
    batched_jti_uses_and_tokens,
    access_tokens_by_hash,
    jti_is_single_use,
    concurrent_jti_first_use_has_one_winner,
    signing_keys,
);
