//! keyless-store: one [`Store`] over SQLite (the embedded default) and PostgreSQL (shared by several
//! nodes), from one SQL code base.
//!
//! # Layout (reading order)
//! - [`store`]: [`Store`] (open, connect, read) and [`Tx`] (a write transaction); which writes go where.
//! - [`error`]: [`StoreError`] — `NotFound`, `Conflict { what }`, `Unavailable`.
//! - [`page`]: list pagination ([`Limit`], [`Cursor`], [`ListQuery`], [`Page`]); [`audit`]: the six
//!   actor/time columns and archiving.
//! - One module per stored noun, each with its record type and its `<noun>_<verb>` methods on [`Store`]
//!   and [`Tx`]: [`organization`], [`workspace`], [`service_account`] (and workspace memberships),
//!   [`issuer`], [`rule`], [`signing_key`], [`access_token`], [`api_key`], [`jti`], [`activity`]
//!   (and [`activity_batch`]: high-volume events stored many to a row, part of the same feed),
//!   [`usage`] (request counts).
//! - `backend` (private): the only module that knows sqlx — pools, transactions, migrations, binding,
//!   decoding and error classification; every difference between the two databases lives there.
//!
//! # Decisions
//! - **One SQL text for both backends.** Queries use `$1…$n` placeholders and portable SQL (row-value
//!   comparisons, `ON CONFLICT DO NOTHING`, `RETURNING`), run with sqlx's runtime `query` (no
//!   compile-time macros, so no database at build time; no `Any` driver). Migrations differ only in
//!   column types, so there are two sets, `migrations/sqlite/` and `migrations/postgres/`, kept in step
//!   and embedded with `include_str!` (not `sqlx::migrate!`, which needs sqlx's `macros` feature and
//!   its proc-macro crates: build time for nothing). `Store::connect` / `Store::open_sqlite` apply them; reopening is a no-op.
//! - **Values.** Times are Unix seconds (`i64`), as everywhere in keyless. IDs are the caller's
//!   (prefixed IDs and UUIDs as `TEXT`), so an ID is known before its row is written; objects are keyed
//!   by `(organization_id, id)` and every read names the organization. JSON is `JSONB` on PostgreSQL and
//!   `TEXT` on SQLite; booleans are `BOOLEAN` / `INTEGER` 0-1 (SQLite tables are `STRICT`). Stored
//!   values are parsed back into keyless-core types; one that no longer parses is `Unavailable`.
//! - **Names are unique per organization and type, archived objects included** (the seed API says
//!   "unique per organization and type" without an exception; keeping archived names reserved also keeps
//!   every name in the activity feed unambiguous). A duplicate is [`StoreError::Conflict`] `{ what: "name" }`.
//! - **No cross-organization reference can be stored**: every reference carries the organization and is a
//!   composite foreign key (`(organization_id, issuer_id)` → issuers, …).
//! - **Atomic changes.** Every admin change and every minted token is written in a [`Tx`] with its
//!   activity event, and exists for anyone only after [`Tx::commit`]. Group commits append many events in
//!   one statement ([`Tx::activity_append_many`], which returns no IDs: a message per statement, not per
//!   row); a replayed `jti` does not abort the transaction. The request log's events are stored
//!   batched ([`Tx::activity_append_batched`]): a few rows per batch, not one row per request.
//! - **Durability and isolation.** SQLite: one file, WAL, `synchronous=NORMAL` (a commit survives a
//!   process crash; an OS crash or power loss may lose the last commits, never corrupt), `busy_timeout`
//!   5 s, foreign keys on, one writer connection (writers queue in the pool) and eight readers; write
//!   transactions are `BEGIN IMMEDIATE`. The writer does not checkpoint after its commits (only as a
//!   backstop at [`WAL_BACKSTOP_FRAMES`]): the owner calls [`Store::checkpoint`] (or its halves,
//!   [`Store::checkpoint_beside`] and [`Store::checkpoint_writer`]) every fraction of a second, which
//!   copies the log beside the writer. PostgreSQL: read committed; reads inside a [`Tx`] lock their row
//!   (`FOR UPDATE`); uniqueness (names, `jti`) is enforced by unique indexes, never by read-then-write.
//!
//! # Must not
//! Let a sqlx type out (the public API uses keyless-core types, std types and this crate's records), read
//! the clock (times are parameters), interpret the JSON payloads it stores (a batched row's array of
//! events is its own format), or log.

mod backend;

pub mod access_token;
pub mod activity;
pub mod activity_batch;
pub mod api_key;
pub mod audit;
pub mod error;
pub mod issuer;
pub mod jti;
pub mod nodelay;
pub mod organization;
pub mod page;
pub mod rule;
pub mod service_account;
pub mod signing_key;
pub mod store;
pub mod usage;
pub mod workspace;

pub use error::StoreError;
pub use page::{Cursor, Limit, ListQuery, Page};
pub use store::{Backend, Store, Tx, WAL_BACKSTOP_FRAMES, WAL_TRIM_FRAMES, WalCheckpoint};
