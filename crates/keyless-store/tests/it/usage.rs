//! The hourly usage counts' retention.

use keyless_store::usage::UsageCount;

use crate::harness::{self, Db, NOW};

/// Usage retention deletes one organization's counts of hours before the cutoff, oldest hours first and
/// at most `limit` per call; later hours and other organizations keep theirs.
async fn usage_purge_by_hour(db: Db) {
    let store = &db.store;
    let org = harness::seed_org(store, 1).await;
    let org2 = harness::seed_org(store, 2).await;
    let count = |org: &keyless_core::id::OrganizationId, hour: i64, principal_id: &str| UsageCount {
        organization_id: org.clone(),
        hour,
        principal_id: principal_id.to_owned(),
        workspace_id: "wrkspc_x".to_owned(),
        requests: 1,
        refused: 0,
        rate_limited: 0,
        upstream_errors: 0,
        latency_us_sum: 10,
        last_request_at: hour + 1,
    };
    let hour = NOW - NOW.rem_euclid(3600);
    let counts = [
        count(&org.id, hour - 7200, "svac_a"),
        count(&org.id, hour - 7200, "svac_b"),
        count(&org.id, hour - 3600, "svac_a"),
        count(&org.id, hour, "svac_a"),
        count(&org2.id, hour - 7200, "svac_a"),
    ];
    let mut tx = store.begin().await.unwrap();
    tx.usage_add_many(&counts).await.unwrap();
    tx.commit().await.unwrap();
    let hours = |org: keyless_core::id::OrganizationId| async move {
        let mut rows = Vec::new();
        for start in [hour - 7200, hour - 3600, hour] {
            let summary = store
                .usage_summary(&org, start, start + 3600, None, None)
                .await
                .unwrap();
            rows.push(summary.len());
        }
        rows
    };

    assert_eq!(store.usage_purge(&org.id, hour - 7200, 10).await.unwrap(), 0);
    assert_eq!(store.usage_purge(&org.id, hour, 2).await.unwrap(), 2);
    assert_eq!(
        hours(org.id.clone()).await,
        [0, 1, 1],
        "the oldest hour's two rows first"
    );
    assert_eq!(store.usage_purge(&org.id, hour, 2).await.unwrap(), 1);
    assert_eq!(store.usage_purge(&org.id, hour, 2).await.unwrap(), 0);
    assert_eq!(hours(org.id.clone()).await, [0, 0, 1]);
    assert_eq!(
        hours(org2.id.clone()).await,
        [1, 0, 0],
        "another organization's counts stay"
    );
}

conformance!(usage_purge_by_hour);
