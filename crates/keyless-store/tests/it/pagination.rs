//! Object lists: newest first (`created_at`, then ID), keyset cursors that survive a round trip through
//! text, `include_archived`, and pages that do not shift when objects are created meanwhile.

use keyless_store::rule::RuleFilter;
use keyless_store::{Cursor, Limit, ListQuery, Store};

use crate::harness::{self, ADMIN, Db, NOW, Org};
use crate::objects::{self, KINDS, Kind};

/// One page of `kind`: the IDs (without prefix) and the cursor of the next page.
async fn list(store: &Store, org: &Org, kind: Kind, query: &ListQuery) -> (Vec<String>, Option<Cursor>) {
    fn strip(id: &str) -> String {
        id.split_once('_').map(|(_, rest)| rest.to_owned()).unwrap()
    }
    match kind {
        Kind::Workspace => {
            let page = store.workspace_list(&org.id, query).await.unwrap();
            (
                page.items.iter().map(|o| strip(o.id.as_str())).collect(),
                page.next_cursor,
            )
        }
        Kind::ServiceAccount => {
            let page = store.service_account_list(&org.id, query).await.unwrap();
            (
                page.items.iter().map(|o| strip(o.id.as_str())).collect(),
                page.next_cursor,
            )
        }
        Kind::Issuer => {
            let page = store.issuer_list(&org.id, query).await.unwrap();
            (
                page.items.iter().map(|o| strip(o.id.as_str())).collect(),
                page.next_cursor,
            )
        }
        Kind::Rule => {
            let page = store.rule_list(&org.id, &RuleFilter::default(), query).await.unwrap();
            (
                page.items.iter().map(|o| strip(o.id.as_str())).collect(),
                page.next_cursor,
            )
        }
    }
}

/// Walks every page of `kind` with page size `limit`; checks page sizes and returns all IDs in order.
async fn walk(store: &Store, org: &Org, kind: Kind, limit: u32, include_archived: bool) -> Vec<String> {
    let mut query = ListQuery {
        limit: Limit::new(limit).unwrap(),
        cursor: None,
        include_archived,
    };
    let mut all = Vec::new();
    loop {
        let (ids, next) = list(store, org, kind, &query).await;
        assert!(ids.len() <= limit as usize);
        all.extend(ids.iter().cloned());
        match next {
            Some(cursor) => {
                assert_eq!(ids.len(), limit as usize, "only a full page has a next page");
                // The server hands the cursor out as text and parses what comes back.
                query.cursor = Some(Cursor::parse(&cursor.to_string()).unwrap());
            }
            None => return all,
        }
    }
}

async fn lists_page_newest_first(db: Db) {
    let store = &db.store;
    let org = harness::seed_org(store, 1).await;
    harness::seed_issuer_and_account(store, &org).await;
    // (id, created_at offset, archived): ties on created_at are ordered by ID, descending.
    let fixtures = [
        ("a", 10, false),
        ("b", 10, false),
        ("c", 11, true),
        ("d", 12, false),
        ("e", 12, false),
        ("f", 13, true),
        ("g", 14, false),
    ];
    for kind in KINDS {
        for (id, offset, archived) in fixtures {
            objects::create(store, &org, kind, id, &format!("name-{id}"), NOW + offset)
                .await
                .unwrap();
            if archived {
                objects::archive(store, &org, kind, id, NOW + 20, ADMIN).await.unwrap();
            }
        }
        let mut expected: Vec<(i64, String, bool)> = fixtures
            .iter()
            .map(|(id, offset, archived)| (NOW + offset, (*id).to_owned(), *archived))
            .collect();
        // What the seeding created at NOW: the default workspace, the rules' issuer and account.
        let seeded = match kind {
            Kind::Workspace => Some("default1"),
            Kind::ServiceAccount => Some("deploy"),
            Kind::Issuer => Some("gh"),
            Kind::Rule => None,
        };
        expected.extend(seeded.map(|id| (NOW, id.to_owned(), false)));
        expected.sort_by(|x, y| (y.0, &y.1).cmp(&(x.0, &x.1)));
        for include_archived in [false, true] {
            let want: Vec<String> = expected
                .iter()
                .filter(|(_, _, archived)| include_archived || !archived)
                .map(|(_, id, _)| id.clone())
                .collect();
            for limit in [1, 2, 3, 5, 7, 100] {
                let got = walk(store, &org, kind, limit, include_archived).await;
                assert_eq!(got, want, "{kind:?} limit={limit} include_archived={include_archived}");
            }
        }
    }
}

async fn pages_do_not_shift_when_objects_are_created(db: Db) {
    let store = &db.store;
    let org = harness::seed_org(store, 1).await;
    for (idx, id) in ["a", "b", "c", "d"].into_iter().enumerate() {
        let at = NOW + i64::try_from(idx).unwrap();
        objects::create(store, &org, Kind::ServiceAccount, id, id, at)
            .await
            .unwrap();
    }
    let first = ListQuery {
        limit: Limit::new(2).unwrap(),
        ..ListQuery::default()
    };
    let (ids, cursor) = list(store, &org, Kind::ServiceAccount, &first).await;
    assert_eq!(ids, ["d", "c"]);
    // A newer account appears between the two pages: the second page is unaffected.
    objects::create(store, &org, Kind::ServiceAccount, "new", "new", NOW + 100)
        .await
        .unwrap();
    let second = ListQuery {
        cursor,
        ..first.clone()
    };
    let (ids, cursor) = list(store, &org, Kind::ServiceAccount, &second).await;
    assert_eq!(ids, ["b", "a"]);
    assert_eq!(cursor, None);
}

conformance!(lists_page_newest_first, pages_do_not_shift_when_objects_are_created);
