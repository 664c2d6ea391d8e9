//! The only module that knows sqlx: connections, transactions, migrations, binding, decoding and error
//! classification for SQLite and PostgreSQL. Every backend difference lives here; the noun modules write
//! their SQL once, with `$1…$n` placeholders, and never name a backend.
//!
//! Parts, in reading order:
//! - [`Pools`]: how each backend is opened and migrated. SQLite gets one *write* connection (a pool of one,
//!   so writers queue in the pool instead of spinning on `SQLITE_BUSY`) and a small pool of readers;
//!   PostgreSQL gets one pool.
//! - [`Pooled`] and [`Transaction`]: a borrowed connection and an open transaction, each lending a [`Conn`].
//! - [`Query`] and [`Arg`]: SQL text plus arguments, built only from `'static` fragments and
//!   placeholders, so no value is ever spliced into SQL.
//! - [`Conn`]: runs a [`Query`] on either backend and decodes rows through [`Row`].
//! - `classify`: sqlx errors become [`StoreError`] here and nowhere else.
//!
//! Backend differences, all of them: column types in the two migration sets; SQLite write transactions
//! start with `BEGIN IMMEDIATE` (take the write lock up front, so a read-then-write transaction never
//! fails on a lock upgrade) while PostgreSQL reads inside a transaction add `FOR UPDATE` (lock the row
//! read before changing it); how each reports a unique violation (`classify`); multi-row appends run
//! as `INSERT OR FAIL` on SQLite (no statement journal; see `Query::sqlite_sql`); SQLite connection
//! settings and its single writer (below).
//!
//! SQLite settings: a file (`create_if_missing`), WAL journal, `synchronous=NORMAL`, `busy_timeout`
//! 5 s, foreign keys on, temporary storage (statement journals, sorts) in memory; the writer
//! checkpoints only at `WAL_BACKSTOP_FRAMES` (`Store::checkpoint` does it beside the writer) and
//! trims the log file to `WAL_TRIM_FRAMES` (half that) when it starts the log over; connections are
//! neither tested at checkout nor recycled (they live as long as the store). Durability: in WAL
//! mode with `NORMAL`, a committed transaction has been written to the WAL file before `COMMIT`
//! returns, so it survives a crash of the process; it is fsynced at the next checkpoint, so an
//! operating-system crash or power loss may lose the last transactions (never corrupts the
//! database). `FULL` would fsync every commit (milliseconds each on most disks) for power-loss
//! durability; group commits make that affordable if a deployment needs it.
//!
//! Must not: hand a sqlx type to the rest of the crate's public API, or interpolate a value into SQL.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;
use serde_json::value::RawValue;
use sqlx::error::ErrorKind;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgRow, Postgres};
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Row as _, SqlSafeStr};

use crate::error::{BackendError, StoreError};
use crate::store::{WAL_BACKSTOP_FRAMES, WAL_TRIM_FRAMES};

/// How long a SQLite connection waits for a lock held by another connection or process.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite reader connections (each runs on its own thread).
const SQLITE_READERS: u32 = 8;
/// PostgreSQL connections per node.
const POSTGRES_CONNECTIONS: u32 = 16;

/// The PostgreSQL advisory lock that orders the ID ranges of batched events (`Conn::reserve_activity_ids`):
/// "keyless" in ASCII.
const ACTIVITY_BATCH_LOCK: i64 = 0x006b_6579_6c65_7373;

/// The SQLite migrations, in order: `(version, description, sql)`.
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/sqlite/0001_initial.sql")),
    (
        2,
        "config generation",
        include_str!("../migrations/sqlite/0002_config_generation.sql"),
    ),
    (
        3,
        "api keys and usage",
        include_str!("../migrations/sqlite/0003_api_keys_and_usage.sql"),
    ),
    (4, "rule mode", include_str!("../migrations/sqlite/0004_rule_mode.sql")),
    (
        5,
        "jti in time order",
        include_str!("../migrations/sqlite/0005_jti_in_time_order.sql"),
    ),
    (
        6,
        "activity batches",
        include_str!("../migrations/sqlite/0006_activity_batches.sql"),
    ),
    (
        7,
        "jti without expiry index",
        include_str!("../migrations/sqlite/0007_jti_without_expiry_index.sql"),
    ),
];
/// The PostgreSQL migrations, in order: `(version, description, sql)`.
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/postgres/0001_initial.sql")),
    (
        2,
        "config generation",
        include_str!("../migrations/postgres/0002_config_generation.sql"),
    ),
    (
        3,
        "api keys and usage",
        include_str!("../migrations/postgres/0003_api_keys_and_usage.sql"),
    ),
    (
        4,
        "rule mode",
        include_str!("../migrations/postgres/0004_rule_mode.sql"),
    ),
    (
        5,
        "jti in time order",
        include_str!("../migrations/postgres/0005_jti_in_time_order.sql"),
    ),
    (
        6,
        "activity batches",
        include_str!("../migrations/postgres/0006_activity_batches.sql"),
    ),
    (
        7,
        "jti without expiry index",
        include_str!("../migrations/postgres/0007_jti_without_expiry_index.sql"),
    ),
];

/// The most rows one multi-row statement writes.
pub(crate) const MAX_ROWS_PER_STATEMENT: usize = 512;

/// Splits `rows` for multi-row statements into chunks whose sizes are powers of two (at most
/// [`MAX_ROWS_PER_STATEMENT`]), largest first: a batch of any size then uses one of ten statement
/// texts per table, which stay in the connection's prepared-statement cache instead of one new text
/// (and one new prepare) per batch size.
pub(crate) fn row_chunks<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let size = 1usize << rows.len().min(MAX_ROWS_PER_STATEMENT).ilog2();
        let (chunk, rest) = rows.split_at(size);
        rows = rest;
        Some(chunk)
    })
}

/// The connection pools of one backend.
#[derive(Clone)]
pub(crate) enum Pools {
    /// SQLite: one writer, several readers, one file.
    Sqlite {
        /// A pool of exactly one connection: every write and every transaction.
        write: SqlitePool,
        /// Reads outside transactions.
        read: SqlitePool,
    },
    /// PostgreSQL: one pool for everything.
    Postgres(PgPool),
}

impl Pools {
    /// Opens (creating if missing) the SQLite database file at `path` and applies the migrations.
    pub(crate) async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        Self::sqlite(SqliteConnectOptions::new().filename(path)).await
    }

    /// Connects to `url` (`sqlite:…`, `postgres://…` or `postgresql://…`) and applies the migrations.
    pub(crate) async fn connect(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            if url.contains(":memory:") || url.contains("mode=memory") {
                return Err(unavailable("in-memory SQLite is not supported: use a file"));
            }
            Self::sqlite(SqliteConnectOptions::from_str(url).map_err(|e| classify(e, Conflicts::NONE))?).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(|e| classify(e, Conflicts::NONE))?;
            let port = options.get_port();
            let pool = PgPoolOptions::new()
                .max_connections(POSTGRES_CONNECTIONS)
                // See `nodelay`: without it a multi-row INSERT can wait 40 ms for a delayed ACK.
                .after_connect(move |_, _| {
                    Box::pin(async move {
                        crate::nodelay::set_for_peer_port(port).map_err(sqlx::Error::Io)?;
                        Ok(())
                    })
                })
                .connect_with(options)
                .await
                .map_err(|e| classify(e, Conflicts::NONE))?;
            migrator(POSTGRES_MIGRATIONS)
                .run(&pool)
                .await
                .map_err(|e| StoreError::Unavailable(BackendError::new(e)))?;
            Ok(Self::Postgres(pool))
        } else {
            Err(unavailable(
                "unsupported database url: expected sqlite:, postgres:// or postgresql://",
            ))
        }
    }

    async fn sqlite(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true)
            // A multi-row insert inside a transaction keeps a statement journal (the pages it changed,
            // to undo the statement alone if a constraint fails). Past 64 KiB SQLite spills it to a
            // temporary file it creates, writes and deletes per statement: a third of the request
            // log's `pwrite`s under load. In memory it stays a copy; a statement's journal is bounded
            // by its rows (`MAX_ROWS_PER_STATEMENT`). This also keeps sorts and temporary tables in
            // memory: no query here builds large ones.
            .pragma("temp_store", "memory")
            // sqlx sends each result row from the connection's worker thread as its own message, and
            // the worker blocks whenever this many are unread: with the default (50), a 512-row
            // `RETURNING` was ten thread hand-offs. Room for a whole statement's rows makes it none.
            .row_buffer_size(MAX_ROWS_PER_STATEMENT);
        // The writer does not checkpoint after its commits (`Store::checkpoint` does, off the writer),
        // but still would at the backstop; when the log starts over, its file is trimmed to half that.
        let writer_options = options
            .clone()
            .pragma("wal_autocheckpoint", WAL_BACKSTOP_FRAMES.to_string())
            .pragma("journal_size_limit", (WAL_TRIM_FRAMES * 4096).to_string());
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_with(writer_options)
            .await
            .map_err(|e| classify(e, Conflicts::NONE))?;
        migrator(SQLITE_MIGRATIONS)
            .run(&write)
            .await
            .map_err(|e| StoreError::Unavailable(BackendError::new(e)))?;
        // A SQLite connection is a file handle that cannot go stale: no ping before each checkout
        // (with sqlx's default, every checkout costs a round trip to the connection's worker thread),
        // and none is closed for its age or for idling (sqlx's defaults: 30 and 10 minutes) only to be
        // opened again, with its thread and its prepared statements, at the next query — the writer's
        // every half hour, under any load.
        let read = SqlitePoolOptions::new()
            .max_connections(SQLITE_READERS)
            .test_before_acquire(false)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_with(options)
            .await
            .map_err(|e| classify(e, Conflicts::NONE))?;
        Ok(Self::Sqlite { write, read })
    }

    /// A connection for reads outside a transaction.
    pub(crate) async fn read(&self) -> Result<Pooled, StoreError> {
        match self {
            Self::Sqlite { read, .. } => read.acquire().await.map(Pooled::Sqlite),
            Self::Postgres(pool) => pool.acquire().await.map(Pooled::Postgres),
        }
        .map_err(|e| classify(e, Conflicts::NONE))
    }

    /// A connection for a single-statement write outside a transaction (autocommit).
    pub(crate) async fn write(&self) -> Result<Pooled, StoreError> {
        match self {
            Self::Sqlite { write, .. } => write.acquire().await.map(Pooled::Sqlite),
            Self::Postgres(pool) => pool.acquire().await.map(Pooled::Postgres),
        }
        .map_err(|e| classify(e, Conflicts::NONE))
    }

    /// Begins a write transaction.
    pub(crate) async fn begin(&self) -> Result<Transaction, StoreError> {
        match self {
            Self::Sqlite { write, .. } => write.begin_with("BEGIN IMMEDIATE").await.map(Transaction::Sqlite),
            Self::Postgres(pool) => pool.begin().await.map(Transaction::Postgres),
        }
        .map_err(|e| classify(e, Conflicts::NONE))
    }

    /// Begins a read-only transaction: its reads see one snapshot (SQLite: a deferred transaction on a
    /// reader connection; PostgreSQL: `REPEATABLE READ`). Dropping it ends it.
    pub(crate) async fn snapshot(&self) -> Result<Transaction, StoreError> {
        match self {
            Self::Sqlite { read, .. } => read.begin().await.map(Transaction::Sqlite),
            Self::Postgres(pool) => pool
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await
                .map(Transaction::Postgres),
        }
        .map_err(|e| classify(e, Conflicts::NONE))
    }

    /// Closes every connection; later calls fail.
    pub(crate) async fn close(&self) {
        match self {
            Self::Sqlite { write, read } => {
                read.close().await;
                write.close().await;
            }
            Self::Postgres(pool) => pool.close().await,
        }
    }

    /// A connection that listens on `channel` (PostgreSQL `LISTEN`); `None` on SQLite, where one process
    /// owns the database and has nobody to hear from.
    pub(crate) async fn listen(&self, channel: &str) -> Result<Option<Listener>, StoreError> {
        let Self::Postgres(pool) = self else {
            return Ok(None);
        };
        let mut listener = PgListener::connect_with(pool)
            .await
            .map_err(|e| classify(e, Conflicts::NONE))?;
        listener
            .listen(channel)
            .await
            .map_err(|e| classify(e, Conflicts::NONE))?;
        Ok(Some(Listener(listener)))
    }

    /// Whether this is SQLite (`true`) or PostgreSQL.
    pub(crate) fn is_sqlite(&self) -> bool {
        matches!(self, Self::Sqlite { .. })
    }
}

fn migrator(migrations: &[(i64, &'static str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// A connection borrowed from a pool, returned to it on drop.
pub(crate) enum Pooled {
    /// SQLite.
    Sqlite(PoolConnection<Sqlite>),
    /// PostgreSQL.
    Postgres(PoolConnection<Postgres>),
}

impl Pooled {
    /// The connection, to run queries on.
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Sqlite(conn) => Conn::Sqlite(conn),
            Self::Postgres(conn) => Conn::Postgres(conn, false),
        }
    }
}

/// A PostgreSQL connection listening on a channel.
pub(crate) struct Listener(PgListener);

impl Listener {
    /// Waits for the next notification. A lost connection is an error: notifications sent while it was
    /// down are lost, so the caller must treat everything it heard of as changed and listen anew.
    pub(crate) async fn recv(&mut self) -> Result<(), StoreError> {
        match self.0.try_recv().await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(unavailable("the notification connection was lost")),
            Err(e) => Err(classify(e, Conflicts::NONE)),
        }
    }
}

/// An open write transaction; dropped without [`Transaction::commit`], it rolls back.
pub(crate) enum Transaction {
    /// SQLite (`BEGIN IMMEDIATE`: holds the write lock).
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    /// PostgreSQL (read committed; reads lock their rows).
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Transaction {
    /// The transaction's connection; [`Query::locking`] reads through it lock what they read.
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Sqlite(tx) => Conn::Sqlite(tx),
            Self::Postgres(tx) => Conn::Postgres(tx, true),
        }
    }

    /// Sends `payload` on `channel` when the transaction commits (PostgreSQL `NOTIFY`); nothing on SQLite.
    pub(crate) async fn notify(&mut self, channel: &str, payload: &str) -> Result<(), StoreError> {
        let Self::Postgres(tx) = self else {
            return Ok(());
        };
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(&mut **tx)
            .await
            .map(drop)
            .map_err(|e| classify(e, Conflicts::NONE))
    }

    /// Commits: when this returns `Ok`, the changes are durable (see the module documentation).
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(tx) => tx.commit().await,
            Self::Postgres(tx) => tx.commit().await,
        }
        .map_err(|e| classify(e, Conflicts::NONE))
    }

    /// Rolls back every change of the transaction.
    pub(crate) async fn rollback(self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(tx) => tx.rollback().await,
            Self::Postgres(tx) => tx.rollback().await,
        }
        .map_err(|e| classify(e, Conflicts::NONE))
    }
}

/// One query argument.
#[derive(Debug, Clone)]
pub(crate) enum Arg<'a> {
    /// `TEXT`.
    Text(Cow<'a, str>),
    /// `TEXT` or `NULL`.
    OptText(Option<Cow<'a, str>>),
    /// `BIGINT` / `INTEGER`.
    Int(i64),
    /// `BIGINT` / `INTEGER` or `NULL`.
    OptInt(Option<i64>),
    /// `BOOLEAN` / `INTEGER` 0 or 1.
    Bool(bool),
    /// `BYTEA` / `BLOB`.
    Bytes(Cow<'a, [u8]>),
    /// `JSONB` / `TEXT`.
    Json(Cow<'a, Value>),
    /// `JSONB` / `TEXT`, from JSON text.
    JsonText(&'a RawValue),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(text: &'a str) -> Self {
        Self::Text(Cow::Borrowed(text))
    }
}

impl From<String> for Arg<'_> {
    fn from(text: String) -> Self {
        Self::Text(Cow::Owned(text))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(text: Option<&'a str>) -> Self {
        Self::OptText(text.map(Cow::Borrowed))
    }
}

impl From<i64> for Arg<'_> {
    fn from(int: i64) -> Self {
        Self::Int(int)
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(int: Option<i64>) -> Self {
        Self::OptInt(int)
    }
}

impl From<bool> for Arg<'_> {
    fn from(flag: bool) -> Self {
        Self::Bool(flag)
    }
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(bytes: &'a [u8]) -> Self {
        Self::Bytes(Cow::Borrowed(bytes))
    }
}

impl<'a> From<&'a Value> for Arg<'a> {
    fn from(json: &'a Value) -> Self {
        Self::Json(Cow::Borrowed(json))
    }
}

impl<'a> From<&'a RawValue> for Arg<'a> {
    fn from(json: &'a RawValue) -> Self {
        Self::JsonText(json)
    }
}

impl From<Value> for Arg<'_> {
    fn from(json: Value) -> Self {
        Self::Json(Cow::Owned(json))
    }
}

/// SQL text with `$1…$n` placeholders, its arguments, and how to report a unique violation.
#[derive(Debug, Clone)]
pub(crate) struct Query<'a> {
    sql: Cow<'static, str>,
    args: Vec<Arg<'a>>,
    /// Where in `sql` the placeholders [`Query::push_arg`] wrote are (see [`Query::sqlite_sql`]).
    pushed: Vec<std::ops::Range<usize>>,
    conflicts: Conflicts,
    locking: bool,
    append: bool,
}

/// What a unique violation of a query is about, beyond the `name` constraints (see `classify`).
#[derive(Debug, Clone, Copy)]
struct Conflicts {
    unique: &'static str,
    primary_key: &'static str,
}

impl Conflicts {
    /// For statements that are not meant to violate anything.
    const NONE: Conflicts = Conflicts {
        unique: "id",
        primary_key: "id",
    };
}

impl<'a> Query<'a> {
    /// A query with fixed SQL text.
    pub(crate) fn new(sql: &'static str) -> Self {
        Self {
            sql: Cow::Borrowed(sql),
            args: Vec::new(),
            pushed: Vec::new(),
            conflicts: Conflicts::NONE,
            locking: false,
            append: false,
        }
    }

    /// Marks an `INSERT` that [`crate::store::Tx::append`] runs: on SQLite it becomes `INSERT OR FAIL`.
    pub(crate) fn append(mut self) -> Self {
        debug_assert!(self.sql.starts_with("INSERT INTO "), "only an INSERT is an append");
        self.append = true;
        self
    }

    /// Marks a read of one object that, inside a write transaction, locks the row it reads.
    pub(crate) fn locking(mut self) -> Self {
        self.locking = true;
        self
    }

    /// Adds the argument of the next placeholder already in the text.
    pub(crate) fn arg(mut self, arg: impl Into<Arg<'a>>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Names what a violation of a unique index other than the primary key and the `name` constraints is
    /// about (see `classify`).
    pub(crate) fn on_conflict(mut self, what: &'static str) -> Self {
        self.conflicts.unique = what;
        self
    }

    /// Names what a primary-key violation of this query is about (for tables keyed by a natural key).
    pub(crate) fn on_key_conflict(mut self, what: &'static str) -> Self {
        self.conflicts.primary_key = what;
        self
    }

    /// Appends fixed SQL text.
    pub(crate) fn push_sql(&mut self, fragment: &'static str) {
        self.sql.to_mut().push_str(fragment);
    }

    /// Appends a placeholder (`$n`) for `arg`.
    pub(crate) fn push_arg(&mut self, arg: impl Into<Arg<'a>>) {
        self.args.push(arg.into());
        let start = self.sql.len();
        // Into the text directly: a `format!` per argument was an allocation per column and row.
        let written = write!(self.sql.to_mut(), "${}", self.args.len());
        debug_assert!(written.is_ok(), "writing to a String cannot fail");
        self.pushed.push(start..self.sql.len());
    }

    /// The text for SQLite. When every argument was pushed by [`Query::push_arg`] (the multi-row
    /// statements), the placeholders are `$1…$n`, once each and in order, and become anonymous `?`s,
    /// which bind the arguments in the same order. The reason: SQLite treats `$n` as a *name*, and
    /// sqlx-sqlite finds each named parameter's argument with `sqlite3_bind_parameter_name`, a linear
    /// scan of the statement's names — quadratic in the parameters, of which a 512-row insert has
    /// thousands (it was two thirds of the SQLite writer thread's time under `/v1/authorize` load).
    /// Other queries keep their text.
    ///
    /// An [`Query::append`] starts `INSERT OR FAIL`: a statement that fails is not undone on its own
    /// (its transaction is: see [`crate::store::Tx::append`]), so SQLite keeps no statement journal for
    /// it — a copy of every page the statement changes, made as it goes, to undo that statement alone.
    fn sqlite_sql(&self) -> Cow<'static, str> {
        let plain = self.pushed.is_empty() || self.pushed.len() != self.args.len();
        if plain && !self.append {
            return self.sql.clone();
        }
        let mut sql = String::with_capacity(self.sql.len() + 8);
        let mut from = 0;
        if self.append {
            sql.push_str("INSERT OR FAIL INTO ");
            from = "INSERT INTO ".len();
        }
        if plain {
            sql.push_str(self.sql.get(from..).unwrap_or_default());
            return Cow::Owned(sql);
        }
        for placeholder in &self.pushed {
            sql.push_str(self.sql.get(from..placeholder.start).unwrap_or_default());
            sql.push('?');
            from = placeholder.end;
        }
        sql.push_str(self.sql.get(from..).unwrap_or_default());
        Cow::Owned(sql)
    }
}

/// Binds a [`Query`]'s arguments on either backend (the code is the same, the types are not).
macro_rules! bound {
    ($query:expr, $sql:expr) => {{
        let mut bound = sqlx::query(AssertSqlSafe($sql));
        for arg in &$query.args {
            bound = match arg {
                Arg::Text(text) => bound.bind(text.as_ref()),
                Arg::OptText(text) => bound.bind(text.as_deref()),
                Arg::Int(int) => bound.bind(*int),
                Arg::OptInt(int) => bound.bind(*int),
                Arg::Bool(flag) => bound.bind(*flag),
                Arg::Bytes(bytes) => bound.bind(bytes.as_ref()),
                Arg::Json(json) => bound.bind(Json(json.as_ref())),
                Arg::JsonText(json) => bound.bind(Json(*json)),
            };
        }
        bound
    }};
}

/// Decodes one row into a value of the crate's own types.
pub(crate) type Decode<T> = fn(&dyn Row) -> Result<T, StoreError>;

/// A connection of either backend.
pub(crate) enum Conn<'c> {
    /// SQLite (inside a transaction or not: a SQLite transaction already holds the write lock).
    Sqlite(&'c mut SqliteConnection),
    /// PostgreSQL; the flag says whether it is inside a write transaction, where [`Query::locking`] reads
    /// lock their row.
    Postgres(&'c mut PgConnection, bool),
}

impl Conn<'_> {
    /// The SQL to run for a read: inside a PostgreSQL transaction, a [`Query::locking`] read locks its
    /// row (`FOR UPDATE`); a SQLite transaction already holds the database's write lock.
    fn read_sql(&self, query: &Query<'_>) -> Cow<'static, str> {
        match self {
            Self::Postgres(_, true) if query.locking => Cow::Owned(format!("{} FOR UPDATE", query.sql)),
            Self::Postgres(..) => query.sql.clone(),
            Self::Sqlite(_) => query.sqlite_sql(),
        }
    }

    /// The SQL to run for a write.
    fn write_sql(&self, query: &Query<'_>) -> Cow<'static, str> {
        match self {
            Self::Postgres(..) => query.sql.clone(),
            Self::Sqlite(_) => query.sqlite_sql(),
        }
    }

    /// Draws `count` IDs from the activity feed's sequence, ascending, for events stored outside the
    /// `activities` table (`activity_batches`); called inside a transaction. The IDs drawn by any two
    /// transactions that call this never interleave: a later one's are all greater. SQLite: the
    /// `activities` row of `sqlite_sequence`, advanced by `count` under the database's one write lock
    /// (`AUTOINCREMENT` continues after them); PostgreSQL: a transaction-scoped advisory lock, held
    /// to the commit, then `nextval` of the identity sequence per ID (other transactions' plain inserts
    /// may still take IDs in between).
    pub(crate) async fn reserve_activity_ids(&mut self, count: u32) -> Result<Vec<i64>, StoreError> {
        let count = i64::from(count);
        match self {
            Self::Sqlite(_) => {
                let query =
                    Query::new("UPDATE sqlite_sequence SET seq = seq + $1 WHERE name = 'activities' RETURNING seq")
                        .arg(count);
                let last = self.fetch_returning(&query, |row| row.int("seq")).await?;
                let last = last
                    .first()
                    .copied()
                    .ok_or_else(|| unavailable("the activity ID sequence is missing"))?;
                Ok((last - count + 1..=last).collect())
            }
            Self::Postgres(..) => {
                let lock = Query::new("SELECT pg_advisory_xact_lock($1)").arg(ACTIVITY_BATCH_LOCK);
                self.execute(&lock).await?;
                let query = Query::new(
                    "SELECT nextval(pg_get_serial_sequence('activities', 'id')) AS id FROM generate_series(1, $1)",
                )
                .arg(count);
                let mut ids = self.fetch_returning(&query, |row| row.int("id")).await?;
                ids.sort_unstable();
                Ok(ids)
            }
        }
    }

    /// Runs a read and decodes at most one row.
    pub(crate) async fn fetch_optional<T>(
        &mut self,
        query: &Query<'_>,
        decode: Decode<T>,
    ) -> Result<Option<T>, StoreError> {
        let sql = self.read_sql(query);
        let res = match self {
            Self::Sqlite(conn) => bound!(query, sql)
                .fetch_optional(&mut **conn)
                .await
                .map(|row| row.map(|row| decode(&row))),
            Self::Postgres(conn, _) => bound!(query, sql)
                .fetch_optional(&mut **conn)
                .await
                .map(|row| row.map(|row| decode(&row))),
        };
        res.map_err(|e| classify(e, query.conflicts))?.transpose()
    }

    /// Runs a read and decodes every row.
    pub(crate) async fn fetch_all<T>(&mut self, query: &Query<'_>, decode: Decode<T>) -> Result<Vec<T>, StoreError> {
        let sql = self.read_sql(query);
        let res = match self {
            Self::Sqlite(conn) => bound!(query, sql)
                .fetch_all(&mut **conn)
                .await
                .map(|rows| rows.iter().map(|row| decode(row)).collect()),
            Self::Postgres(conn, _) => bound!(query, sql)
                .fetch_all(&mut **conn)
                .await
                .map(|rows| rows.iter().map(|row| decode(row)).collect()),
        };
        res.map_err(|e| classify(e, query.conflicts))?
    }

    /// Runs a write that returns rows (`… RETURNING`) and decodes every row; it never locks.
    pub(crate) async fn fetch_returning<T>(
        &mut self,
        query: &Query<'_>,
        decode: Decode<T>,
    ) -> Result<Vec<T>, StoreError> {
        let sql = self.write_sql(query);
        let res = match self {
            Self::Sqlite(conn) => bound!(query, sql)
                .fetch_all(&mut **conn)
                .await
                .map(|rows| rows.iter().map(|row| decode(row)).collect()),
            Self::Postgres(conn, _) => bound!(query, sql)
                .fetch_all(&mut **conn)
                .await
                .map(|rows| rows.iter().map(|row| decode(row)).collect()),
        };
        res.map_err(|e| classify(e, query.conflicts))?
    }

    /// Runs a write and returns how many rows it changed.
    pub(crate) async fn execute(&mut self, query: &Query<'_>) -> Result<u64, StoreError> {
        let sql = self.write_sql(query);
        match self {
            Self::Sqlite(conn) => bound!(query, sql)
                .execute(&mut **conn)
                .await
                .map(|done| done.rows_affected()),
            Self::Postgres(conn, _) => bound!(query, sql)
                .execute(&mut **conn)
                .await
                .map(|done| done.rows_affected()),
        }
        .map_err(|e| classify(e, query.conflicts))
    }
}

/// Typed access to the columns of one result row, the same on both backends.
pub(crate) trait Row {
    /// A `TEXT NOT NULL` column.
    fn text(&self, column: &'static str) -> Result<String, StoreError>;
    /// A nullable `TEXT` column.
    fn opt_text(&self, column: &'static str) -> Result<Option<String>, StoreError>;
    /// A `BIGINT NOT NULL` column.
    fn int(&self, column: &'static str) -> Result<i64, StoreError>;
    /// A nullable `BIGINT` column.
    fn opt_int(&self, column: &'static str) -> Result<Option<i64>, StoreError>;
    /// A `BOOLEAN NOT NULL` column.
    fn bool(&self, column: &'static str) -> Result<bool, StoreError>;
    /// A `BYTEA NOT NULL` column.
    fn bytes(&self, column: &'static str) -> Result<Vec<u8>, StoreError>;
    /// A `JSONB NOT NULL` column.
    fn json(&self, column: &'static str) -> Result<Value, StoreError>;
}

impl dyn Row + '_ {
    /// A `TEXT NOT NULL` column parsed with `parse` (e.g. an ID); a failure is a corrupt row.
    pub(crate) fn parsed<T, E: std::fmt::Display>(
        &self,
        column: &'static str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, StoreError> {
        parse(&self.text(column)?).map_err(|e| StoreError::corrupt(column, e))
    }

    /// A nullable `TEXT` column parsed with `parse`; a failure is a corrupt row.
    pub(crate) fn opt_parsed<T, E: std::fmt::Display>(
        &self,
        column: &'static str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, StoreError> {
        self.opt_text(column)?
            .map(|text| parse(&text).map_err(|e| StoreError::corrupt(column, e)))
            .transpose()
    }
}

macro_rules! impl_row {
    ($row:ty) => {
        impl Row for $row {
            fn text(&self, column: &'static str) -> Result<String, StoreError> {
                self.try_get(column).map_err(|e| classify(e, Conflicts::NONE))
            }
            fn opt_text(&self, column: &'static str) -> Result<Option<String>, StoreError> {
                self.try_get(column).map_err(|e| classify(e, Conflicts::NONE))
            }
            fn int(&self, column: &'static str) -> Result<i64, StoreError> {
                self.try_get(column).map_err(|e| classify(e, Conflicts::NONE))
            }
            fn opt_int(&self, column: &'static str) -> Result<Option<i64>, StoreError> {
                self.try_get(column).map_err(|e| classify(e, Conflicts::NONE))
            }
            fn bool(&self, column: &'static str) -> Result<bool, StoreError> {
                self.try_get(column).map_err(|e| classify(e, Conflicts::NONE))
            }
            fn bytes(&self, column: &'static str) -> Result<Vec<u8>, StoreError> {
                self.try_get(column).map_err(|e| classify(e, Conflicts::NONE))
            }
            fn json(&self, column: &'static str) -> Result<Value, StoreError> {
                self.try_get::<Json<Value>, _>(column)
                    .map(|json| json.0)
                    .map_err(|e| classify(e, Conflicts::NONE))
            }
        }
    };
}

impl_row!(SqliteRow);
impl_row!(PgRow);

/// The one place a sqlx error becomes a [`StoreError`]:
/// - a unique violation is a conflict: on the primary key (PostgreSQL names the constraint `<table>_pkey`,
///   SQLite reports `SQLITE_CONSTRAINT_PRIMARYKEY`, 1555) it is about `conflicts.primary_key`; on a
///   constraint over a `name` column (the migrations' convention: PostgreSQL reports the constraint's name,
///   `<table>_name_unique`, SQLite the columns, `<table>.name`) it is about `name`; on any other unique
///   index, about `conflicts.unique`;
/// - a foreign-key violation means a referenced object does not exist (in that organization);
/// - anything else is unavailability.
fn classify(error: sqlx::Error, conflicts: Conflicts) -> StoreError {
    if let sqlx::Error::Database(database_error) = &error {
        match database_error.kind() {
            ErrorKind::UniqueViolation => {
                let violated = database_error.constraint().unwrap_or_else(|| database_error.message());
                let what = if violated.ends_with("_pkey") || database_error.code().as_deref() == Some("1555") {
                    conflicts.primary_key
                } else if violated.contains("name") {
                    "name"
                } else {
                    conflicts.unique
                };
                return StoreError::Conflict { what };
            }
            ErrorKind::ForeignKeyViolation => return StoreError::NotFound,
            _ => {}
        }
    }
    StoreError::Unavailable(BackendError::new(error))
}

fn unavailable(message: &'static str) -> StoreError {
    StoreError::Unavailable(BackendError::new(message))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn check(rows: usize, expect: &[usize]) {
        let items: Vec<usize> = (0..rows).collect();
        let chunks: Vec<&[usize]> = row_chunks(&items).collect();
        let sizes: Vec<usize> = chunks.iter().map(|chunk| chunk.len()).collect();
        assert_eq!(sizes, expect, "{rows}");
        assert_eq!(chunks.concat(), items, "{rows}: order kept, nothing lost");
    }

    /// Migration 6 makes sure the `activities` sequence row exists, so batched events draw IDs after
    /// every event already stored, and `AUTOINCREMENT` continues after theirs.
    #[tokio::test]
    async fn batched_ids_follow_the_events_stored_before() {
        for existing in [0_i64, 3] {
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect("sqlite::memory:")
                .await
                .unwrap();
            migrator(&SQLITE_MIGRATIONS[..5]).run(&pool).await.unwrap();
            sqlx::query("INSERT INTO organizations (id, created_at) VALUES ('org_a', 0)")
                .execute(&pool)
                .await
                .unwrap();
            for _ in 0..existing {
                sqlx::query(
                    "INSERT INTO activities (organization_id, activity_type, created_at, payload) \
                     VALUES ('org_a', 't', 0, '{}')",
                )
                .execute(&pool)
                .await
                .unwrap();
            }
            migrator(SQLITE_MIGRATIONS).run(&pool).await.unwrap();
            let mut conn = pool.acquire().await.unwrap();
            let ids = Conn::Sqlite(&mut conn).reserve_activity_ids(2).await.unwrap();
            assert_eq!(ids, [existing + 1, existing + 2]);
            let next: i64 = sqlx::query_scalar(
                "INSERT INTO activities (organization_id, activity_type, created_at, payload) \
                 VALUES ('org_a', 't', 0, '{}') RETURNING id",
            )
            .fetch_one(&mut *conn)
            .await
            .unwrap();
            assert_eq!(next, existing + 3);
        }
    }

    /// Migration 5 rebuilds `jti_records` with a new key: the records kept before it stay, and a
    /// replay of one is still refused.
    #[tokio::test]
    async fn jti_records_survive_their_rekeying() {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        migrator(&SQLITE_MIGRATIONS[..4]).run(&pool).await.unwrap();
        sqlx::query(
            "INSERT INTO jti_records (issuer_id, jti, keep_until) VALUES ('fdis_a', 'x', 100), ('fdis_a', 'y', 200)",
        )
        .execute(&pool)
        .await
        .unwrap();
        migrator(SQLITE_MIGRATIONS).run(&pool).await.unwrap();
        let kept: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT issuer_id, jti, keep_until FROM jti_records ORDER BY jti")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(
            kept,
            [
                ("fdis_a".to_owned(), "x".to_owned(), 100),
                ("fdis_a".to_owned(), "y".to_owned(), 200)
            ]
        );
        let replay = sqlx::query("INSERT INTO jti_records (issuer_id, jti, keep_until) VALUES ('fdis_a', 'x', 100)")
            .execute(&pool)
            .await;
        assert!(
            replay.is_err(),
            "a replay of a record kept before the migration conflicts"
        );
        let indexes: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jti_records'")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert!(
            indexes.is_empty(),
            "the key is the only index (migration 7): {indexes:?}"
        );
    }

    #[test]
    fn row_chunks_are_powers_of_two_largest_first() {
        check(0, &[]);
        check(1, &[1]);
        check(37, &[32, 4, 1]);
        check(512, &[512]);
        check(1200, &[512, 512, 128, 32, 16]);
    }

    #[test]
    fn pushed_placeholders_are_anonymous_on_sqlite() {
        let mut rows = Query::new("INSERT INTO t (a, b) VALUES ");
        for row in 0..6_i64 {
            if row > 0 {
                rows.push_sql(", ");
            }
            rows.push_sql("(");
            rows.push_arg(row);
            rows.push_sql(", ");
            rows.push_arg(row);
            rows.push_sql(")");
        }
        assert_eq!(
            rows.sql,
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4), ($5, $6), ($7, $8), ($9, $10), ($11, $12)"
        );
        assert_eq!(
            rows.sqlite_sql(),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?), (?, ?), (?, ?), (?, ?)"
        );
        // Placeholders written in the text keep their names: the text may repeat or reorder them.
        let fixed = Query::new("SELECT a FROM t WHERE b = $2 AND a = $1")
            .arg(1_i64)
            .arg(2_i64);
        assert_eq!(fixed.sqlite_sql(), fixed.sql);
        let mut mixed = Query::new("DELETE FROM t WHERE a = $1 AND b IN (").arg(1_i64);
        mixed.push_arg(2_i64);
        mixed.push_sql(")");
        assert_eq!(mixed.sqlite_sql(), "DELETE FROM t WHERE a = $1 AND b IN ($2)");
    }

    #[test]
    fn appends_insert_or_fail_on_sqlite() {
        let mut rows = Query::new("INSERT INTO t (a) VALUES ").append();
        rows.push_sql("(");
        rows.push_arg(1_i64);
        rows.push_sql("), (");
        rows.push_arg(2_i64);
        rows.push_sql(") ON CONFLICT (a) DO NOTHING");
        assert_eq!(
            rows.sql,
            "INSERT INTO t (a) VALUES ($1), ($2) ON CONFLICT (a) DO NOTHING"
        );
        assert_eq!(
            rows.sqlite_sql(),
            "INSERT OR FAIL INTO t (a) VALUES (?), (?) ON CONFLICT (a) DO NOTHING"
        );
        let fixed = Query::new("INSERT INTO t (a) VALUES ($1)").append().arg(1_i64);
        assert_eq!(fixed.sqlite_sql(), "INSERT OR FAIL INTO t (a) VALUES ($1)");
    }
}
