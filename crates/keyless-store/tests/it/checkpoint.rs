//! SQLite checkpoints off the writer (`Store::checkpoint`): the writer no longer copies its log into
//! the database file after its commits; a `PASSIVE` checkpoint does it beside the writer without waiting
//! for it; a log past the caller's restart size is copied whole — on the writer connection when the
//! passes beside it could not — so it starts over. PostgreSQL: nothing to do.

use keyless_store::activity::Activity;
use keyless_store::{Backend, Store, WAL_BACKSTOP_FRAMES};
use serde_json::json;

use crate::harness::{self, Db, NOW};

/// The restart size these tests ask for: 4,096 frames (16 MiB).
const RESTART: i64 = 4_096;

/// `count` events of about `bytes` each, written `per_tx` to a transaction.
async fn write_events(store: &Store, org: &harness::Org, count: usize, per_tx: usize, bytes: usize) {
    let filler = "x".repeat(bytes);
    let events: Vec<Activity> = (0..count)
        .map(|n| Activity {
            payload: json!({ "n": n, "filler": filler }),
            ..harness::activity(&org.id, "test_event", None, NOW)
        })
        .collect();
    for chunk in events.chunks(per_tx) {
        let mut tx = store.begin().await.unwrap();
        tx.activity_append_many(chunk).await.unwrap();
        tx.commit().await.unwrap();
    }
}

async fn events(store: &Store, org: &harness::Org) -> usize {
    store
        .activity_scan(&org.id, &["test_event"], None, 100_000)
        .await
        .unwrap()
        .len()
}

async fn checkpoints_run_off_the_writer(db: Db) {
    let store = &db.store;
    if store.backend() == Backend::Postgres {
        assert_eq!(store.checkpoint(RESTART).await.unwrap(), None);
        return;
    }
    let org = harness::seed_org(store, 1).await;

    // About 3,000 frames: the writer used to checkpoint (and start the log over) every 1,000.
    write_events(store, &org, 1_500, 50, 8_000).await;
    let first = store.checkpoint(RESTART).await.unwrap().unwrap();
    assert!(first.frames > 2_500, "the writer checkpointed by itself: {first:?}");
    assert_eq!(first.copied, first.frames, "nothing else was writing: {first:?}");
    assert!(!first.restart);

    // Fully copied, the log starts over with the writer's next transaction.
    write_events(store, &org, 1, 1, 100).await;
    let next = store.checkpoint(RESTART).await.unwrap().unwrap();
    assert!(next.frames < 50, "the log did not start over: {next:?}");
    assert_eq!(next.copied, next.frames);

    // A passive checkpoint does not wait for a writer in the middle of a transaction.
    let mut open = store.begin().await.unwrap();
    open.activity_append(&harness::activity(&org.id, "test_event", None, NOW))
        .await
        .unwrap();
    let beside = tokio::time::timeout(std::time::Duration::from_secs(2), store.checkpoint(RESTART))
        .await
        .expect("a passive checkpoint waited for the writer")
        .unwrap()
        .unwrap();
    assert!(!beside.restart);
    open.commit().await.unwrap();
    assert_eq!(events(store, &org).await, 1_502);
}

async fn a_long_log_starts_over(db: Db) {
    let store = &db.store;
    if store.backend() == Backend::Postgres {
        return;
    }
    let org = harness::seed_org(store, 1).await;
    let wal = format!("{}-wal", db.url.trim_start_matches("sqlite://"));

    // Below the restart size, a checkpoint leaves the log to the writer's transactions.
    write_events(store, &org, 500, 100, 8_000).await;
    let below = store.checkpoint(RESTART).await.unwrap().unwrap();
    assert!(below.frames < RESTART && !below.restart, "{below:?}");
    // Past it: about 5,000 frames, copied whole — beside the writer, since nothing is writing, so
    // the pass on the writer connection is not needed, and is not repeated while nothing is written.
    write_events(store, &org, 1_999, 100, 8_000).await;
    let restart = store.checkpoint(RESTART).await.unwrap().unwrap();
    assert!(restart.frames >= RESTART, "{restart:?}");
    assert_eq!(restart.copied, restart.frames);
    assert!(!restart.restart && !restart.writer_pass_due, "{restart:?}");
    let idle = store.checkpoint(RESTART).await.unwrap().unwrap();
    assert_eq!(idle, restart);
    let grown = std::fs::metadata(&wal).unwrap().len();
    assert!(
        grown >= u64::try_from(RESTART).unwrap() * 4096,
        "the log is {grown} bytes"
    );

    // The writer's next transaction starts the log over; its file is trimmed only past half the
    // backstop, so it keeps its size.
    write_events(store, &org, 1, 1, 100).await;
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), grown);
    assert!(grown < u64::try_from(WAL_BACKSTOP_FRAMES).unwrap() / 2 * 4096);
    let after = store.checkpoint(RESTART).await.unwrap().unwrap();
    assert!(after.frames < 50, "{after:?}");
    assert!(!after.restart);
    assert_eq!(events(store, &org).await, 2_500);

    // Everything reached the database file: it reads the same with the log gone.
    store.close().await;
    assert!(
        !std::path::Path::new(&wal).exists(),
        "closing checkpoints and removes the log"
    );
    let reopened = db.reopen().await;
    assert_eq!(events(&reopened, &org).await, 2_500);
    reopened.close().await;
}

async fn a_log_written_to_all_along_starts_over(db: Db) {
    let store = &db.store;
    if store.backend() == Backend::Postgres {
        return;
    }
    let org = harness::seed_org(store, 1).await;
    // Past the restart size, then written to while the checkpoint runs: the passes beside the writer
    // chase its commits, and the pass on the writer connection still copies the log whole.
    write_events(store, &org, 2_500, 100, 8_000).await;
    let writing = {
        let store = store.clone();
        let org = harness::Org {
            id: org.id.clone(),
            default_workspace: org.default_workspace.clone(),
        };
        tokio::spawn(async move { write_events(&store, &org, 2_000, 10, 8_000).await })
    };
    let done = store.checkpoint(RESTART).await.unwrap().unwrap();
    assert!(done.frames >= RESTART, "{done:?}");
    assert_eq!(done.copied, done.frames, "{done:?}");
    writing.await.unwrap();
    assert_eq!(events(store, &org).await, 4_500);
}

conformance!(
    checkpoints_run_off_the_writer,
    a_long_log_starts_over,
    a_log_written_to_all_along_starts_over
);
