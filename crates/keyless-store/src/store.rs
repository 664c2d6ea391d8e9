//! [`Store`] and [`Tx`]: the handle the server keeps, and a write transaction.
//!
//! Parts: [`Backend`], [`Store`] (open, connect, read, begin), [`Tx`] (write, then commit or roll back).
//! The methods for each kind of object are defined beside its record type (`workspace`, `rule`, …), on
//! these two types, named `<noun>_<verb>`.
//!
//! The split: a [`Store`] reads, and a [`Tx`] writes. Every admin change and every minted token is
//! written in a [`Tx`] together with its activity event ([`Tx::activity_append`]), and is visible to
//! anyone — and durable — only once [`Tx::commit`] returns, so "no token before its activity event is
//! committed" holds by construction. Reads inside a [`Tx`] (`Tx::*_get`) lock the object they read until
//! the transaction ends (PostgreSQL `FOR UPDATE`; a SQLite transaction holds the database's write lock
//! from its start), so a read-check-write sequence is not raced by another node. The only writes a
//! [`Store`] makes on its own are single statements that are no one's change: purges of expired
//! records and an issuer's poll status.
//!
//! Must not: keep a transaction open across slow work (network calls): on SQLite it holds the only write
//! connection.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::backend::{Conn, Decode, Pooled, Pools, Query, Transaction};
use crate::error::{BackendError, StoreError};

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite: the embedded default, one file.
    Sqlite,
    /// PostgreSQL: shared by several nodes.
    Postgres,
}

/// The log's size, in 4-KiB frames, at which the SQLite writer checkpoints by itself, in case nobody
/// calls [`Store::checkpoint`] (256 MiB).
pub const WAL_BACKSTOP_FRAMES: i64 = 65_536;
/// The log file's size limit, counted in 4-KiB pages (128 MiB; a frame is a page and a 24-byte
/// header, so the file holds slightly fewer frames): when the log starts over from a longer file, the
/// writer trims the file to this (SQLite's `journal_size_limit`).
pub const WAL_TRIM_FRAMES: i64 = WAL_BACKSTOP_FRAMES / 2;

/// What a [`Store::checkpoint`] found and did, in frames of the write-ahead log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalCheckpoint {
    /// Frames in the log (once all are copied, the writer's next transaction starts the log over).
    pub frames: i64,
    /// Of those, how many are now copied into the database file.
    pub copied: i64,
    /// Whether this call copied the whole log on the writer connection, so that the writer's next
    /// transaction starts it over.
    pub restart: bool,
    /// Set by [`Store::checkpoint_beside`]: the log holds the caller's `restart_frames` or more and
    /// was still being written to at its last pass, so the pass on the writer connection
    /// ([`Store::checkpoint_writer`]) is due. A log that no one wrote to between two passes, copied
    /// whole, starts over at the writer's next transaction without it.
    pub writer_pass_due: bool,
}

/// At most this many more passes beside the writer before the pass on the writer connection that lets
/// the log start over (see [`Store::checkpoint`]).
const CATCH_UP_PASSES: usize = 4;
/// A pass beside the writer that found at most this many frames added since the previous one (1 MiB)
/// has caught up: the writer's own pass will copy about as many.
const CATCH_UP_FRAMES: i64 = 256;

/// One `PASSIVE` SQLite checkpoint on `pooled`.
async fn wal_checkpoint(pooled: &mut Pooled) -> Result<Option<WalCheckpoint>, StoreError> {
    let found = pooled
        .conn()
        .fetch_optional(&Query::new("PRAGMA wal_checkpoint(PASSIVE)"), |row| {
            Ok((row.int("log")?, row.int("checkpointed")?))
        })
        .await?;
    Ok(found.map(|(frames, copied)| WalCheckpoint {
        frames,
        copied,
        restart: false,
        writer_pass_due: false,
    }))
}

/// The PostgreSQL channel every configuration change is announced on (payload: the organization ID).
const CONFIG_CHANNEL: &str = "keyless_config";

/// The store: a cheap-to-clone handle on a connection pool of SQLite or PostgreSQL.
#[derive(Clone)]
pub struct Store {
    pools: Pools,
    changes: Arc<ConfigChanges>,
}

/// What this process knows of configuration changes: a counter bumped after every commit that changed
/// the configuration (here, or announced by another node), and whether it can vouch for it.
#[derive(Debug)]
struct ConfigChanges {
    epoch: AtomicU64,
    trusted: AtomicBool,
}

impl ConfigChanges {
    fn new(trusted: bool) -> Arc<Self> {
        Arc::new(Self {
            epoch: AtomicU64::new(0),
            trusted: AtomicBool::new(trusted),
        })
    }

    fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }
}

impl Store {
    /// Opens the SQLite database file at `path`, creating it if missing, and applies the migrations.
    pub async fn open_sqlite(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Ok(Self::new(Pools::open_sqlite(path.as_ref()).await?))
    }

    /// Connects to `url` — `sqlite:PATH` (a file, created if missing) or `postgres://…` — and applies the
    /// migrations. Applying them is idempotent, and safe when several nodes start at once (PostgreSQL
    /// serializes them with an advisory lock).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Ok(Self::new(Pools::connect(url).await?))
    }

    fn new(pools: Pools) -> Self {
        // SQLite: this process is the only writer, so its own commits are all there is to know.
        let changes = ConfigChanges::new(pools.is_sqlite());
        Self { pools, changes }
    }

    /// A number that changes after every committed configuration change (every [`Tx`] that called
    /// [`Tx::config_generation_bump`]) — this process's, and on PostgreSQL other nodes' too, as
    /// announced while [`Store::follow_config_changes`] runs. `None` when it cannot be trusted (PostgreSQL
    /// while nobody follows): read the database instead. A cache entry made at epoch `e` is current while
    /// this returns `Some(e)`; take the epoch *before* reading what you cache.
    pub fn config_epoch(&self) -> Option<u64> {
        self.changes
            .trusted
            .load(Ordering::SeqCst)
            .then(|| self.changes.epoch.load(Ordering::SeqCst))
    }

    /// Hears other nodes' configuration changes (PostgreSQL `LISTEN`) until the connection fails, which
    /// is returned (call it again, after a pause); on SQLite returns `Ok` at once. While it runs,
    /// [`Store::config_epoch`] is trusted; when it stops, the epoch moves on, so nothing cached before
    /// is trusted again.
    pub async fn follow_config_changes(&self) -> Result<(), StoreError> {
        let Some(mut listener) = self.pools.listen(CONFIG_CHANNEL).await? else {
            return Ok(());
        };
        // Listening from here on; anything cached before may have missed a change.
        self.changes.bump();
        self.changes.trusted.store(true, Ordering::SeqCst);
        let error = loop {
            if let Err(error) = listener.recv().await {
                break error;
            }
            self.changes.bump();
        };
        self.changes.trusted.store(false, Ordering::SeqCst);
        self.changes.bump();
        Err(error)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        if self.pools.is_sqlite() {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }

    /// Copies what the SQLite write-ahead log holds into the database file, off the writer: the owner
    /// of a long-running [`Store`] calls it every fraction of a second (`keyless serve` does, every
    /// 100 ms, in its two halves: [`Store::checkpoint_beside`], then [`Store::checkpoint_writer`] on
    /// the thread that owns the group commits). The writer no longer checkpoints after its commits
    /// (that stalled every writer behind the checkpoint's two `fsync`s, milliseconds each, once per
    /// thousand frames), except as a backstop when the log reaches [`WAL_BACKSTOP_FRAMES`] because
    /// nobody called this.
    ///
    /// A `PASSIVE` checkpoint on a reader connection copies the log beside the writer, never blocking
    /// it. Only a log copied completely starts over (at the writer's next transaction), which under
    /// sustained writes a checkpoint beside the writer rarely achieves; so once the log holds
    /// `restart_frames` frames (4 KiB each) and the passes beside the writer left some of them, the
    /// checkpoint is repeated **on the writer connection**, between two of its transactions: it
    /// copies the frames written since the last pass and syncs, and the writer's next transaction
    /// starts the log over.
    ///
    /// `None` on PostgreSQL, which checkpoints on its own.
    pub async fn checkpoint(&self, restart_frames: i64) -> Result<Option<WalCheckpoint>, StoreError> {
        match self.checkpoint_beside(restart_frames).await? {
            Some(found) if found.writer_pass_due => self.checkpoint_writer().await,
            found => Ok(found),
        }
    }

    /// The first half of [`Store::checkpoint`]: a `PASSIVE` checkpoint beside the writer and, when it
    /// finds `restart_frames` frames or more, more passes (up to four), each copying what was written
    /// during the previous one, until one finds at most 256 new frames (1 MiB) — so that the pass on
    /// the writer connection that follows is short. Measured under the exchange benchmark's open loop
    /// (~10,000 exchanges a second, ~200 MB of log): the writer's pass went from 7–17 ms to 2–13 ms,
    /// mostly its two `fsync`s. The caller then runs [`Store::checkpoint_writer`] if
    /// [`WalCheckpoint::writer_pass_due`]: not for a log copied whole that nobody wrote to between
    /// two passes, which an idle server would otherwise repeat every tick. (A single pass cannot
    /// tell: it reports the log as it found it, copied whole, while the writer appends behind it.)
    pub async fn checkpoint_beside(&self, restart_frames: i64) -> Result<Option<WalCheckpoint>, StoreError> {
        if !self.pools.is_sqlite() {
            return Ok(None);
        }
        let Some(mut found) = wal_checkpoint(&mut self.read().await?).await? else {
            return Ok(None);
        };
        if found.frames < restart_frames {
            return Ok(Some(found));
        }
        let mut appended = 0;
        for _ in 0..CATCH_UP_PASSES {
            let Some(next) = wal_checkpoint(&mut self.read().await?).await? else {
                break;
            };
            // Negative when the log started over in between (the backstop): nothing left to catch up.
            appended = next.frames - found.frames;
            found = next;
            if appended <= CATCH_UP_FRAMES {
                break;
            }
        }
        let quiet = appended == 0 && found.copied == found.frames;
        found.writer_pass_due = found.frames >= restart_frames && !quiet;
        Ok(Some(found))
    }

    /// The second half of [`Store::checkpoint`]: a `PASSIVE` checkpoint on the writer connection,
    /// between two write transactions, so nothing is appended meanwhile and the log is copied whole
    /// (`restart`: the writer's next transaction starts it over). Every writer waits for it, so call
    /// it from the task that owns the writes, where no handover of the connection adds to that wait.
    /// `None` on PostgreSQL.
    pub async fn checkpoint_writer(&self) -> Result<Option<WalCheckpoint>, StoreError> {
        if !self.pools.is_sqlite() {
            return Ok(None);
        }
        let mut writer = self.pools.write().await?;
        Ok(wal_checkpoint(&mut writer).await?.map(|done| WalCheckpoint {
            restart: done.copied == done.frames,
            ..done
        }))
    }

    /// Checks that the database answers (for readiness probes).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut pooled = self.read().await?;
        pooled
            .conn()
            .fetch_optional(&crate::backend::Query::new("SELECT 1 AS one"), |_| Ok(()))
            .await
            .map(drop)
    }

    /// Begins a write transaction. Dropping the [`Tx`] without committing rolls it back.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(Tx {
            tx: self.pools.begin().await?,
            changes: Arc::clone(&self.changes),
            config_changed: false,
            failed: false,
        })
    }

    /// Closes every connection and waits for them to be returned; later calls fail.
    pub async fn close(&self) {
        self.pools.close().await;
    }

    /// A connection for reads.
    pub(crate) async fn read(&self) -> Result<Pooled, StoreError> {
        self.pools.read().await
    }

    /// A read-only transaction, for reads that must see one snapshot (a listing that reads two tables).
    pub(crate) async fn snapshot(&self) -> Result<Transaction, StoreError> {
        self.pools.snapshot().await
    }

    /// A connection for one autocommitted write statement.
    pub(crate) async fn write(&self) -> Result<Pooled, StoreError> {
        self.pools.write().await
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend()).finish()
    }
}

/// A write transaction: every change made through it commits together, or not at all.
pub struct Tx {
    tx: Transaction,
    changes: Arc<ConfigChanges>,
    config_changed: bool,
    /// An [`Tx::append`] failed: the transaction can only roll back.
    failed: bool,
}

impl Tx {
    /// Commits. When this returns `Ok`, every change of the transaction is visible and durable (SQLite:
    /// survives a process crash; see the crate documentation).
    /// A transaction in which an append failed is rolled back instead, and the commit fails.
    pub async fn commit(self) -> Result<(), StoreError> {
        if self.failed {
            self.tx.rollback().await?;
            return Err(StoreError::Unavailable(BackendError::new(
                "a statement of the transaction failed; it was rolled back",
            )));
        }
        self.tx.commit().await?;
        if self.config_changed {
            self.changes.bump();
        }
        Ok(())
    }

    /// Marks the transaction as a configuration change of `organization_id`: announced to other nodes
    /// when it commits, and counted in [`Store::config_epoch`] once committed.
    pub(crate) async fn config_changed(&mut self, organization_id: &str) -> Result<(), StoreError> {
        if !self.config_changed {
            self.tx.notify(CONFIG_CHANNEL, organization_id).await?;
            self.config_changed = true;
        }
        Ok(())
    }

    /// Rolls back every change of the transaction (dropping it does the same).
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await
    }

    /// The transaction's connection.
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        self.tx.conn()
    }

    /// Runs a multi-row [`Query::append`]. A failed append is not undone on its own on SQLite (see
    /// `Query::sqlite_sql`): the transaction is then marked failed and can only roll back, as a
    /// PostgreSQL transaction can after any failed statement.
    pub(crate) async fn append(&mut self, query: &Query<'_>) -> Result<u64, StoreError> {
        let result = self.tx.conn().execute(query).await;
        self.failed |= result.is_err();
        result
    }

    /// [`Tx::append`] with a `RETURNING` clause: the rows it returns.
    pub(crate) async fn append_returning<T>(
        &mut self,
        query: &Query<'_>,
        decode: Decode<T>,
    ) -> Result<Vec<T>, StoreError> {
        let result = self.tx.conn().fetch_returning(query, decode).await;
        self.failed |= result.is_err();
        result
    }
}

impl fmt::Debug for Tx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tx").finish_non_exhaustive()
    }
}
