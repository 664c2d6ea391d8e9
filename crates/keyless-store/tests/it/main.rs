//! The keyless-store conformance suite: one integration-test binary whose scenarios run on SQLite (a
//! fresh database file per test) always, and on PostgreSQL (a fresh database per test) when
//! `KEYLESS_TEST_POSTGRES_URL` is set — where an unreachable server fails the test rather than skipping it.
//!
//! Each scenario is an `async fn(Db)` written once; `conformance!` turns it into a `sqlite` and a
//! `postgres` test. Modules: `harness` (databases, fixtures), `migrations`, `objects` (create, get,
//! update, archive, names), `pagination`, `checkpoint` (SQLite checkpoints off the writer), `tokens` (access tokens, `jti`, signing keys), `activity`,
//! `transactions` (atomicity, isolation, concurrency), `usage` (the hourly counts' retention). No test
//! sleeps or reads the clock.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

/// Turns each named scenario into a `sqlite` and a `postgres` test.
macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    crate::harness::run(crate::harness::Backend::Sqlite, super::$scenario).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    crate::harness::run(crate::harness::Backend::Postgres, super::$scenario).await;
                }
            }
        )*
    };
}

mod activity;
mod checkpoint;
mod harness;
mod migrations;
mod objects;
mod pagination;
mod tokens;
mod transactions;
mod usage;
