//! The activity feed: append one and many (IDs in order), get, filters, and cursors both ways.

use keyless_store::activity::{Activity, ActivityCursor, ActivityQuery, NewActivity, Payload};
use keyless_store::{Limit, Store, StoreError};
use serde_json::json;
use serde_json::value::RawValue;

use crate::harness::{self, Db, NOW};

async fn append_one_and_many(db: Db) {
    let store = &db.store;
    let org = harness::seed_org(store, 1).await;
    let org2 = harness::seed_org(store, 2).await;
    let mut single = harness::activity(&org.id, "platform_service_account_created", Some("svac_x"), NOW);
    single.request_id = Some("req_1".to_owned());
    single.payload = json!({"current_value": {"name": "x", "nested": [1, 2.5, null, "é"]}});
    let mut tx = store.begin().await.unwrap();
    let id = tx.activity_append(&single).await.unwrap();
    tx.commit().await.unwrap();
    let stored = store.activity_get(&org.id, id).await.unwrap();
    assert_eq!(stored.id, id);
    assert_eq!(stored.activity, single);
    assert!(matches!(
        store.activity_get(&org2.id, id).await,
        Err(StoreError::NotFound)
    ));

    // Many events in one transaction, across several INSERT statements: IDs ascend in input order.
    let many: Vec<Activity> = (0..1203)
        .map(|idx| {
            let mut activity = harness::activity(&org.id, "platform_federated_authentication", None, NOW + idx);
            activity.payload = json!({"idx": idx});
            activity
        })
        .collect();
    let mut tx = store.begin().await.unwrap();
    tx.activity_append_many(&many).await.unwrap();
    tx.activity_append_many::<Activity>(&[]).await.unwrap();
    tx.commit().await.unwrap();
    let mut ids: Vec<i64> = store
        .activity_scan(&org.id, &["platform_federated_authentication"], None, 5000)
        .await
        .unwrap()
        .into_iter()
        .map(|record| record.id)
        .collect();
    ids.reverse();
    assert_eq!(ids.len(), many.len());
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
    assert!(ids[0] > id);
    // A scan walks back from an ID in steps of any size.
    let step: Vec<i64> = store
        .activity_scan(&org.id, &["platform_federated_authentication"], Some(ids[600]), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|record| record.id)
        .collect();
    assert_eq!(step, ids[500..600].iter().rev().copied().collect::<Vec<_>>());
    for idx in [0, 499, 500, 1202] {
        let stored = store.activity_get(&org.id, ids[idx]).await.unwrap();
        assert_eq!(stored.activity, many[idx], "{idx}");
    }

    // Borrowed events with JSON text for payloads (the request log's form) read back as the values
    // the text spells, mixed with an event that carries a value, in input order.
    let texts: Vec<Box<RawValue>> = (0..3)
        .map(|idx| {
            RawValue::from_string(format!(r#"{{"idx": {idx}, "text": "a \"quoted\" é", "none": null}}"#)).unwrap()
        })
        .collect();
    let valued = harness::activity(&org.id, "api_request", Some("wrkspc_y"), NOW);
    let mut rows: Vec<NewActivity<'_>> = texts
        .iter()
        .map(|text| NewActivity {
            organization_id: &org.id,
            activity_type: "api_request",
            actor_id: Some("apikey_1"),
            resource_id: None,
            request_id: Some("req_2"),
            created_at: NOW,
            payload: Payload::Text(text),
        })
        .collect();
    rows.insert(1, NewActivity::from(&valued));
    let mut tx = store.begin().await.unwrap();
    tx.activity_append_rows(&rows).await.unwrap();
    tx.commit().await.unwrap();
    let stored = store.activity_scan(&org.id, &["api_request"], None, 10).await.unwrap();
    let payloads: Vec<serde_json::Value> = stored
        .iter()
        .rev()
        .map(|record| record.activity.payload.clone())
        .collect();
    assert_eq!(
        payloads,
        [
            json!({"idx": 0, "text": "a \"quoted\" é", "none": null}),
            valued.payload.clone(),
            json!({"idx": 1, "text": "a \"quoted\" é", "none": null}),
            json!({"idx": 2, "text": "a \"quoted\" é", "none": null}),
        ]
    );
    let first = &stored.last().unwrap().activity;
    assert_eq!(
        (
            first.actor_id.as_deref(),
            first.request_id.as_deref(),
            first.resource_id.as_deref()
        ),
        (Some("apikey_1"), Some("req_2"), None)
    );
}

/// Seeds a feed: organization 1 gets events e0…e9 (types alternate, actors and resources vary, one
/// second apart); organization 2 gets one event that must never show up. Returns the IDs of e0…e9.
async fn seed_feed(store: &Store) -> (keyless_core::id::OrganizationId, Vec<i64>) {
    let org = harness::seed_org(store, 1).await;
    let org2 = harness::seed_org(store, 2).await;
    let mut tx = store.begin().await.unwrap();
    let mut ids = Vec::new();
    for idx in 0..10_i64 {
        let activity = Activity {
            organization_id: org.id.clone(),
            activity_type: if idx % 2 == 0 { "created" } else { "updated" }.to_owned(),
            actor_id: Some(if idx < 5 { "svac_a" } else { "svac_b" }.to_owned()),
            resource_id: (idx % 3 == 0).then(|| "fdrl_r".to_owned()),
            request_id: Some(format!("req_{idx}")),
            created_at: NOW + 100 + idx,
            payload: json!({"e": idx}),
        };
        ids.push(tx.activity_append(&activity).await.unwrap());
    }
    tx.activity_append(&harness::activity(&org2.id, "created", Some("fdrl_r"), NOW + 105))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (org.id, ids)
}

/// The `e` numbers of a listing, and `has_more`.
async fn listed(store: &Store, org: &keyless_core::id::OrganizationId, query: &ActivityQuery) -> (Vec<i64>, bool) {
    let page = store.activity_list(org, query).await.unwrap();
    let events = page
        .items
        .iter()
        .map(|record| record.activity.payload["e"].as_i64().unwrap_or(-1))
        .collect();
    (events, page.has_more)
}

async fn feed_filters(db: Db) {
    let store = &db.store;
    let (org, _) = seed_feed(store).await;
    let query = |edit: fn(&mut ActivityQuery)| {
        let mut query = ActivityQuery::default();
        edit(&mut query);
        query
    };
    // (filter, expected events newest first; -1 is the organization's own creation event)
    let cases: Vec<(ActivityQuery, Vec<i64>)> = vec![
        (query(|_| {}), vec![9, 8, 7, 6, 5, 4, 3, 2, 1, 0, -1]),
        (
            query(|q| q.activity_types = vec!["updated".into()]),
            vec![9, 7, 5, 3, 1],
        ),
        (
            query(|q| q.activity_types = vec!["updated".into(), "created".into()]),
            vec![9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
        ),
        (query(|q| q.activity_types = vec!["nothing".into()]), vec![]),
        (query(|q| q.actor_id = Some("svac_b".into())), vec![9, 8, 7, 6, 5]),
        (query(|q| q.resource_id = Some("fdrl_r".into())), vec![9, 6, 3, 0]),
        (query(|q| q.request_id = Some("req_4".into())), vec![4]),
        (query(|q| q.created_at_from = Some(NOW + 107)), vec![9, 8, 7]),
        (query(|q| q.created_at_until = Some(NOW + 102)), vec![1, 0, -1]),
        (
            query(|q| {
                q.created_at_from = Some(NOW + 102);
                q.created_at_until = Some(NOW + 108);
                q.activity_types = vec!["created".into()];
                q.actor_id = Some("svac_a".into());
            }),
            vec![4, 2],
        ),
    ];
    for (query, expected) in cases {
        assert_eq!(listed(store, &org, &query).await, (expected, false), "{query:?}");
    }
}

async fn feed_cursors(db: Db) {
    let store = &db.store;
    let (org, ids) = seed_feed(store).await;
    let page = |cursor: ActivityCursor, limit: u32| ActivityQuery {
        activity_types: vec!["created".into(), "updated".into()],
        cursor,
        limit: Limit::new(limit).unwrap(),
        ..ActivityQuery::default()
    };
    // (cursor, limit, expected events newest first, has_more)
    let cases = [
        (ActivityCursor::Newest, 3, vec![9, 8, 7], true),
        (ActivityCursor::After(ids[7]), 3, vec![6, 5, 4], true),
        (ActivityCursor::After(ids[4]), 3, vec![3, 2, 1], true),
        (ActivityCursor::After(ids[1]), 3, vec![0], false),
        (ActivityCursor::After(ids[0]), 3, vec![], false),
        (ActivityCursor::Before(ids[1]), 3, vec![4, 3, 2], true),
        (ActivityCursor::Before(ids[6]), 3, vec![9, 8, 7], false),
        (ActivityCursor::Before(ids[5]), 4, vec![9, 8, 7, 6], false),
        (ActivityCursor::Before(ids[9]), 3, vec![], false),
        (ActivityCursor::Newest, 10, vec![9, 8, 7, 6, 5, 4, 3, 2, 1, 0], false),
    ];
    for (cursor, limit, expected, has_more) in cases {
        assert_eq!(
            listed(store, &org, &page(cursor, limit)).await,
            (expected, has_more),
            "{cursor:?} limit={limit}"
        );
    }

    // Walking with after_id from the newest, then back with before_id, visits every event once.
    let mut forward = Vec::new();
    let mut cursor = ActivityCursor::Newest;
    loop {
        let result = store.activity_list(&org, &page(cursor, 4)).await.unwrap();
        forward.extend(result.items.iter().map(|record| record.id));
        match (result.has_more, result.items.last()) {
            (true, Some(last)) => cursor = ActivityCursor::After(last.id),
            _ => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(forward, newest_first);
    let mut backward = Vec::new();
    let mut cursor = ActivityCursor::Before(ids[0]);
    loop {
        let result = store.activity_list(&org, &page(cursor, 4)).await.unwrap();
        backward.splice(0..0, result.items.iter().map(|record| record.id));
        match (result.has_more, result.items.first()) {
            (true, Some(first)) => cursor = ActivityCursor::Before(first.id),
            _ => break,
        }
    }
    assert_eq!(backward, newest_first[..9]);
}

/// Retention deletes one organization's events of one type created before the cutoff, oldest first and
/// at most `limit` per call, and nothing else: not younger ones, not other types, not other organizations.
async fn purge_by_type_and_age(db: Db) {
    let store = &db.store;
    let org = harness::seed_org(store, 1).await;
    let org2 = harness::seed_org(store, 2).await;
    let at = |org: &keyless_core::id::OrganizationId, activity_type: &str, created_at: i64| {
        harness::activity(org, activity_type, None, created_at)
    };
    let mut events = Vec::new();
    for offset in 0..5 {
        events.push(at(&org.id, "api_request", NOW - 100 + offset));
        events.push(at(&org.id, "platform_service_account_created", NOW - 100 + offset));
        events.push(at(&org2.id, "api_request", NOW - 100 + offset));
    }
    for offset in 0..3 {
        events.push(at(&org.id, "api_request", NOW + offset));
    }
    let mut tx = store.begin().await.unwrap();
    tx.activity_append_many(&events).await.unwrap();
    tx.commit().await.unwrap();
    let events_of = |org: keyless_core::id::OrganizationId, activity_type: &'static str| async move {
        store.activity_scan(&org, &[activity_type], None, 100).await.unwrap()
    };

    assert_eq!(store.activity_purge(&org.id, "api_request", NOW, 2).await.unwrap(), 2);
    let left = events_of(org.id.clone(), "api_request").await;
    assert_eq!(left.len(), 6);
    // The two oldest went.
    assert!(left.iter().all(|record| record.activity.created_at >= NOW - 98));
    assert_eq!(store.activity_purge(&org.id, "api_request", NOW, 2).await.unwrap(), 2);
    // One old event left among the two oldest: one deleted, a short chunk, so the caller stops.
    assert_eq!(store.activity_purge(&org.id, "api_request", NOW, 2).await.unwrap(), 1);
    assert_eq!(store.activity_purge(&org.id, "api_request", NOW, 2).await.unwrap(), 0);
    let left = events_of(org.id.clone(), "api_request").await;
    assert_eq!(
        left.iter().map(|record| record.activity.created_at).collect::<Vec<_>>(),
        [NOW + 2, NOW + 1, NOW]
    );
    // Other types and other organizations are untouched.
    assert_eq!(
        events_of(org.id.clone(), "platform_service_account_created")
            .await
            .len(),
        5
    );
    assert_eq!(events_of(org2.id.clone(), "api_request").await.len(), 5);
    assert_eq!(
        store
            .activity_purge(&org2.id, "api_request", NOW - 98, 100)
            .await
            .unwrap(),
        2
    );
    assert_eq!(events_of(org2.id.clone(), "api_request").await.len(), 3);
    // A type with no events at all.
    let none = store.activity_purge(&org.id, "platform_workspace_created", NOW, 2);
    assert_eq!(none.await.unwrap(), 0);
}

/// A batched event as the tests append it: `seq` (in its payload) is the order it was appended in.
fn batched<'a>(
    org: &'a keyless_core::id::OrganizationId,
    seq: usize,
    payload: &'a serde_json::Value,
    request_ids: &'a [String],
) -> NewActivity<'a> {
    NewActivity {
        organization_id: org,
        activity_type: "api_request",
        actor_id: Some(if seq.is_multiple_of(2) {
            "apikey_even"
        } else {
            "svac_odd"
        }),
        resource_id: (!seq.is_multiple_of(3)).then_some("wrkspc_a"),
        request_id: request_ids.get(seq).map(String::as_str),
        created_at: NOW + i64::try_from(seq / 100).unwrap(),
        payload: Payload::Value(payload),
    }
}

/// Batched events (`activity_append_batched`) and `activities` rows make one feed: IDs in append order
/// across both, every filter, cursors both ways across row and batch boundaries, `activity_get`.
async fn batched_events_join_the_feed(db: Db) {
    let store = &db.store;
    let org = harness::seed_org(store, 1).await;
    let org2 = harness::seed_org(store, 2).await;
    // Time-first request IDs, as the server makes them: ~4 s per prefix bucket.
    let request_ids: Vec<String> = (0..2000_u64)
        .map(|seq| format!("req_{:012x}{:012x}", 1_796_000_000_000 + seq * 37, seq))
        .collect();
    let payloads: Vec<serde_json::Value> = (0..2000).map(|seq| json!({"seq": seq})).collect();
    let row = |seq: usize, activity_type: &str| {
        let mut event = harness::activity(&org.id, activity_type, Some("svac_admin_target"), NOW);
        event.payload = json!({"seq": seq});
        event
    };
    let ours = |range: std::ops::Range<usize>| -> Vec<NewActivity<'_>> {
        range.map(|n| batched(&org.id, n, &payloads[n], &request_ids)).collect()
    };
    let mut seq = 0;
    let mut tx = store.begin().await.unwrap();
    tx.activity_append(&row(seq, "platform_service_account_created"))
        .await
        .unwrap();
    seq += 1;
    tx.commit().await.unwrap();
    // 600 events: more than one stored row.
    let mut tx = store.begin().await.unwrap();
    tx.activity_append_batched(&ours(seq..seq + 600)).await.unwrap();
    seq += 600;
    tx.commit().await.unwrap();
    // Rows and batches of two organizations interleaved in one transaction.
    let mut tx = store.begin().await.unwrap();
    tx.activity_append(&row(seq, "platform_workspace_created"))
        .await
        .unwrap();
    seq += 1;
    let other: Vec<NewActivity<'_>> = (0..3)
        .map(|n| batched(&org2.id, 1900 + n, &payloads[1900 + n], &[]))
        .collect();
    tx.activity_append_batched(&other).await.unwrap();
    tx.activity_append_batched(&ours(seq..seq + 5)).await.unwrap();
    seq += 5;
    tx.activity_append(&row(seq, "platform_workspace_created"))
        .await
        .unwrap();
    seq += 1;
    tx.commit().await.unwrap();
    // Events written as rows before batches existed are still part of the feed.
    let mut tx = store.begin().await.unwrap();
    tx.activity_append_rows(&ours(seq..seq + 2)).await.unwrap();
    seq += 2;
    tx.commit().await.unwrap();

    // Everything, newest first: IDs strictly descending, this test's events in reverse append order
    // (after them, any the organization's seeding wrote).
    let all = store.activity_scan(&org.id, &[], None, 10_000).await.unwrap();
    let seqs: Vec<i64> = all
        .iter()
        .map_while(|record| record.activity.payload["seq"].as_i64())
        .collect();
    let expected: Vec<i64> = (0..i64::try_from(seq).unwrap()).rev().collect();
    assert_eq!(seqs, expected);
    assert!(all.windows(2).all(|pair| pair[0].id > pair[1].id));
    assert!(all.iter().all(|record| record.activity.organization_id == org.id));
    let requests = store
        .activity_scan(&org.id, &["api_request"], None, 10_000)
        .await
        .unwrap();
    assert_eq!(requests.len(), 607);
    let middle = &all[300];
    let below = store
        .activity_scan(&org.id, &["api_request"], Some(middle.id), 5)
        .await
        .unwrap();
    assert_eq!(below, all[301..306].to_vec());

    // Pages of 7 with `after_id`, then back with `before_id`, each matching the full listing.
    for query in [
        ActivityQuery::default(),
        ActivityQuery {
            actor_id: Some("svac_odd".to_owned()),
            ..ActivityQuery::default()
        },
        ActivityQuery {
            resource_id: Some("wrkspc_a".to_owned()),
            ..ActivityQuery::default()
        },
        ActivityQuery {
            activity_types: vec!["platform_workspace_created".to_owned()],
            ..ActivityQuery::default()
        },
        ActivityQuery {
            activity_types: vec!["api_request".to_owned(), "platform_service_account_created".to_owned()],
            created_at_from: Some(NOW + 2),
            created_at_until: Some(NOW + 5),
            ..ActivityQuery::default()
        },
        ActivityQuery {
            request_id: Some(request_ids[250].clone()),
            ..ActivityQuery::default()
        },
    ] {
        let wanted: Vec<i64> = all
            .iter()
            .filter(|record| {
                let event = &record.activity;
                (query.activity_types.is_empty() || query.activity_types.contains(&event.activity_type))
                    && query
                        .actor_id
                        .as_ref()
                        .is_none_or(|actor| event.actor_id.as_ref() == Some(actor))
                    && query
                        .resource_id
                        .as_ref()
                        .is_none_or(|resource| event.resource_id.as_ref() == Some(resource))
                    && query
                        .request_id
                        .as_ref()
                        .is_none_or(|id| event.request_id.as_ref() == Some(id))
                    && query.created_at_from.is_none_or(|from| event.created_at >= from)
                    && query.created_at_until.is_none_or(|until| event.created_at < until)
            })
            .map(|record| record.id)
            .collect();
        assert!(!wanted.is_empty(), "{query:?}");
        let org_id = &org.id;
        let page_of = |cursor| {
            let query = ActivityQuery {
                cursor,
                limit: Limit::new(7).unwrap(),
                ..query.clone()
            };
            async move { store.activity_list(org_id, &query).await.unwrap() }
        };
        let mut forward = Vec::new();
        let mut cursor = ActivityCursor::Newest;
        loop {
            let page = page_of(cursor).await;
            forward.extend(page.items.iter().map(|record| record.id));
            match page.items.last() {
                Some(last) if page.has_more => cursor = ActivityCursor::After(last.id),
                _ => break,
            }
        }
        assert_eq!(forward, wanted, "{query:?}");
        let mut backward = Vec::new();
        let mut cursor = ActivityCursor::Before(wanted[wanted.len() - 1]);
        loop {
            let page = page_of(cursor).await;
            backward.splice(0..0, page.items.iter().map(|record| record.id));
            match page.items.first() {
                Some(first) if page.has_more => cursor = ActivityCursor::Before(first.id),
                _ => break,
            }
        }
        assert_eq!(backward, wanted[..wanted.len() - 1], "{query:?}");
    }

    // One event by ID, batched or not; never another organization's.
    for record in [&all[0], &all[100], &all[400], &all[all.len() - 1]] {
        assert_eq!(&store.activity_get(&org.id, record.id).await.unwrap(), record);
        assert!(matches!(
            store.activity_get(&org2.id, record.id).await,
            Err(StoreError::NotFound)
        ));
    }
    let theirs = store.activity_scan(&org2.id, &["api_request"], None, 10).await.unwrap();
    assert_eq!(theirs.len(), 3);
    assert!(matches!(
        store.activity_get(&org.id, theirs[0].id).await,
        Err(StoreError::NotFound)
    ));
}

/// Retention of batched events: whole stored rows, oldest first, once their newest event is past the
/// cutoff, with the keys that found them; other organizations untouched.
async fn batched_purge(db: Db) {
    let store = &db.store;
    let org = harness::seed_org(store, 1).await;
    let org2 = harness::seed_org(store, 2).await;
    let payloads: Vec<serde_json::Value> = (0..1200).map(|seq| json!({"seq": seq})).collect();
    let mut old: Vec<NewActivity<'_>> = (0..1100).map(|n| batched(&org.id, n, &payloads[n], &[])).collect();
    for event in &mut old {
        event.created_at = NOW - 1000;
    }
    let young: Vec<NewActivity<'_>> = (1100..1110).map(|n| batched(&org.id, n, &payloads[n], &[])).collect();
    let theirs: Vec<NewActivity<'_>> = (0..4)
        .map(|n| NewActivity {
            created_at: NOW - 1000,
            ..batched(&org2.id, n, &payloads[n], &[])
        })
        .collect();
    let mut tx = store.begin().await.unwrap();
    tx.activity_append_batched(&old).await.unwrap();
    tx.activity_append_batched(&theirs).await.unwrap();
    tx.activity_append_batched(&young).await.unwrap();
    tx.commit().await.unwrap();

    // 1,100 old events are three stored rows (512 + 512 + 76).
    let first = store
        .activity_batch_purge(&org.id, "api_request", NOW, 2)
        .await
        .unwrap();
    assert_eq!((first.rows, first.events), (2, 1024));
    let second = store
        .activity_batch_purge(&org.id, "api_request", NOW, 2)
        .await
        .unwrap();
    assert_eq!((second.rows, second.events), (1, 76));
    let third = store
        .activity_batch_purge(&org.id, "api_request", NOW, 2)
        .await
        .unwrap();
    assert_eq!((third.rows, third.events), (0, 0));
    let left = store
        .activity_scan(&org.id, &["api_request"], None, 10_000)
        .await
        .unwrap();
    assert_eq!(left.len(), 10);
    let by_actor = ActivityQuery {
        actor_id: Some("apikey_even".to_owned()),
        ..ActivityQuery::default()
    };
    assert_eq!(store.activity_list(&org.id, &by_actor).await.unwrap().items.len(), 5);
    assert_eq!(
        store
            .activity_scan(&org2.id, &["api_request"], None, 100)
            .await
            .unwrap()
            .len(),
        4
    );
    // Another type, and a cutoff the rows are not past, delete nothing.
    assert_eq!(
        store
            .activity_batch_purge(&org2.id, "other", NOW, 2)
            .await
            .unwrap()
            .rows,
        0
    );
    assert_eq!(
        store
            .activity_batch_purge(&org2.id, "api_request", NOW - 1000, 2)
            .await
            .unwrap()
            .rows,
        0
    );
}

/// Two transactions appending batches at once: the later one's IDs are all above the earlier one's
/// (SQLite: one writer; PostgreSQL: an advisory lock held to the commit), even while it waited.
async fn batched_ranges_never_interleave(db: Db) {
    let store = db.store.clone();
    let org = harness::seed_org(&store, 1).await;
    let payloads: Vec<serde_json::Value> = (0..15).map(|seq| json!({"seq": seq})).collect();
    let appended = |range: std::ops::Range<usize>| -> Vec<NewActivity<'_>> {
        range.map(|n| batched(&org.id, n, &payloads[n], &[])).collect()
    };
    let mut tx = store.begin().await.unwrap();
    tx.activity_append_batched(&appended(0..5)).await.unwrap();
    let later = tokio::spawn({
        let (store, org) = (store.clone(), org.id.clone());
        async move {
            let payloads: Vec<serde_json::Value> = (10..15).map(|seq| json!({"seq": seq})).collect();
            let events: Vec<NewActivity<'_>> = payloads
                .iter()
                .enumerate()
                .map(|(n, payload)| batched(&org, 10 + n, payload, &[]))
                .collect();
            let mut tx = store.begin().await.unwrap();
            tx.activity_append_batched(&events).await.unwrap();
            tx.commit().await.unwrap();
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        !later.is_finished(),
        "the second transaction did not wait for the first"
    );
    tx.activity_append_batched(&appended(5..10)).await.unwrap();
    tx.commit().await.unwrap();
    later.await.unwrap();
    let stored = store.activity_scan(&org.id, &["api_request"], None, 100).await.unwrap();
    let seqs: Vec<i64> = stored
        .iter()
        .rev()
        .map(|record| record.activity.payload["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (0..15).collect::<Vec<i64>>());
}

conformance!(
    batched_ranges_never_interleave,
    append_one_and_many,
    feed_filters,
    feed_cursors,
    purge_by_type_and_age,
    batched_events_join_the_feed,
    batched_purge
);
