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

use crate::backend::{Conn, Pooled, Pools, Transaction};
use crate::error::StoreError;

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite: the embedded default, one file.
    Sqlite,
    /// PostgreSQL: shared by several nodes.
    Postgres,
}

/// The store: a cheap-to-clone handle on a connection pool of SQLite or PostgreSQL.
#[derive(Clone)]
pub struct Store {
    pools: Pools,
}

impl Store {
    /// Opens the SQLite database file at `path`, creating it if missing, and applies the migrations.
    pub async fn open_sqlite(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Ok(Self {
            pools: Pools::open_sqlite(path.as_ref()).await?,
        })
    }

    /// Connects to `url` — `sqlite:PATH` (a file, created if missing) or `postgres://…` — and applies the
    /// migrations. Applying them is idempotent, and safe when several nodes start at once (PostgreSQL
    /// serializes them with an advisory lock).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Ok(Self {
            pools: Pools::connect(url).await?,
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        if self.pools.is_sqlite() {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
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
}

impl Tx {
    /// Commits. When this returns `Ok`, every change of the transaction is visible and durable (SQLite:
    /// survives a process crash; see the crate documentation).
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await
    }

    /// Rolls back every change of the transaction (dropping it does the same).
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await
    }

    /// The transaction's connection.
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        self.tx.conn()
    }
}

impl fmt::Debug for Tx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tx").finish_non_exhaustive()
    }
}
