//! Group commit: every exchange's outcome — the burned `jti`, the stored token hash, the activity event —
//! is durable before the caller hears of it, and concurrent exchanges share one transaction.
//!
//! Parts: [`Recorder`] (the handle handlers use), [`Entry`], [`Recorded`], and the writer task.
//!
//! One writer task, on a thread and runtime of its own, owns the writes. It takes every entry already
//! queued without waiting for more, writes the oldest power-of-two of them (up to [`MAX_BATCH`]; the rest
//! go right after) in one [`keyless_store::Tx`] — so each table gets one multi-row statement — and answers
//! each caller after the commit. Under no load a batch is one entry and costs one commit; under load
//! the entries that arrive during a commit ride the next one, so commits per second stay bounded while
//! exchanges per second grow. A `jti` already used (by an earlier batch or earlier in the same batch)
//! does not abort the batch: that entry's token is not stored and its replay event is written instead.
//! If a batch fails as a whole, its entries are retried one by one, so one bad entry fails alone.

use std::sync::Arc;

use keyless_core::id::IssuerId;
use keyless_store::access_token::AccessTokenRecord;
use keyless_store::activity::Activity;
use keyless_store::{Store, StoreError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The most entries one transaction carries.
pub const MAX_BATCH: usize = 512;
/// How many entries may wait for the writer before callers wait to enqueue.
const QUEUE: usize = 8192;

/// A `jti` to record as used until `keep_until`, and how to make the event written instead of the
/// grant's when it was already used.
#[derive(Debug, Clone)]
pub struct JtiUse {
    /// The issuer whose token carried it.
    pub issuer_id: IssuerId,
    /// The `jti`.
    pub jti: String,
    /// When it may be forgotten (the token's `exp` plus leeway).
    pub keep_until: i64,
    /// Makes the replay's event from the grant's event and the `jti` (called only for a replay).
    pub replay_event: fn(&Activity, &str) -> Activity,
}

/// What to write.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "most entries are grants; boxing them would add an allocation per exchange"
)]
pub enum Entry {
    /// A granted exchange: burn the `jti` (if any), store the token and the success event — or, when
    /// the `jti` was already used, only the replay's event.
    Grant {
        /// The `jti` to burn.
        jti: Option<JtiUse>,
        /// The token's stored form.
        token: AccessTokenRecord,
        /// The success event.
        event: Activity,
    },
    /// An event alone (a refused exchange, a revocation's trace).
    Event(Activity),
}

/// What became of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Written as asked.
    Committed,
    /// The `jti` was already used: the token was not stored, the replay event was.
    Replayed,
}

/// Why an entry was not written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RecordError {
    /// The database refused or failed the write.
    #[error("writing to the database failed: {0}")]
    Store(Arc<StoreError>),
    /// The writer task has stopped (the server is shutting down).
    #[error("the writer has stopped")]
    Stopped,
}

struct Job {
    entry: Entry,
    done: oneshot::Sender<Result<Recorded, RecordError>>,
}

/// The handle to the writer task; cheap to clone. The task ends when every handle is dropped and the
/// queue is drained.
#[derive(Clone)]
pub struct Recorder {
    sender: mpsc::Sender<Job>,
}

impl Recorder {
    /// Starts the writer on `store`, on a thread of its own: the writer is the serial stage of every
    /// exchange, so it must not wait for a runtime worker busy with requests between its statements.
    /// Call it inside a Tokio runtime; the handle completes when the writer has drained and ended.
    pub fn start(store: Store) -> (Recorder, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let writer = tokio::task::spawn_blocking(move || {
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime.block_on(write_loop(store, receiver)),
                // No writer: every `record` then fails with `Stopped` and exchanges answer 503.
                Err(error) => tracing::error!(%error, "the activity writer could not start its runtime"),
            }
        });
        (Recorder { sender }, writer)
    }

    /// Writes `entry` and returns once it is committed (or failed).
    pub async fn record(&self, entry: Entry) -> Result<Recorded, RecordError> {
        let (done, outcome) = oneshot::channel();
        self.sender
            .send(Job { entry, done })
            .await
            .map_err(|_| RecordError::Stopped)?;
        outcome.await.map_err(|_| RecordError::Stopped)?
    }
}

async fn write_loop(store: Store, mut receiver: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Received but not yet written, in arrival order.
    let mut waiting: std::collections::VecDeque<Job> = std::collections::VecDeque::with_capacity(MAX_BATCH * 2);
    loop {
        if waiting.is_empty() {
            match receiver.recv().await {
                Some(job) => waiting.push_back(job),
                None => break,
            }
        }
        while waiting.len() < MAX_BATCH * 2 {
            match receiver.try_recv() {
                Ok(job) => waiting.push_back(job),
                Err(_) => break,
            }
        }
        // A power-of-two batch is one multi-row statement per table (the store chunks rows by powers of
        // two, so each statement's text is reused): 37 waiting entries are written as 32 now and 5 right
        // after, two round trips per table, rather than 32 + 4 + 1 in one transaction, three.
        let take = if waiting.len() >= MAX_BATCH {
            MAX_BATCH
        } else {
            1 << waiting.len().ilog2()
        };
        batch.extend(waiting.drain(..take));
        metrics::histogram!("keyless_group_commit_entries").record(batch.len() as f64);
        let entries: Vec<&Entry> = batch.iter().map(|job| &job.entry).collect();
        match write(&store, &entries).await {
            Ok(outcomes) => {
                for (job, outcome) in batch.drain(..).zip(outcomes) {
                    let _ = job.done.send(Ok(outcome));
                }
            }
            Err(error) if batch.len() == 1 => {
                let error = RecordError::Store(Arc::new(error));
                for job in batch.drain(..) {
                    let _ = job.done.send(Err(error.clone()));
                }
            }
            Err(error) => {
                tracing::warn!(%error, entries = batch.len(), "a group commit failed; retrying its entries one by one");
                for job in batch.drain(..) {
                    let outcome = match write(&store, &[&job.entry]).await {
                        Ok(outcomes) => outcomes.into_iter().next().ok_or(RecordError::Stopped),
                        Err(error) => Err(RecordError::Store(Arc::new(error))),
                    };
                    let _ = job.done.send(outcome);
                }
            }
        }
    }
}

/// Writes a batch in one transaction and three statements per chunk: the `jti` uses, the tokens, the
/// events. A grant whose `jti` turns out used stores no token; its replay event is written instead.
async fn write(store: &Store, entries: &[&Entry]) -> Result<Vec<Recorded>, StoreError> {
    let mut tx = store.begin().await?;
    let uses: Vec<(&IssuerId, &str, i64)> = entries
        .iter()
        .filter_map(|entry| match entry {
            Entry::Grant { jti: Some(jti), .. } => Some((&jti.issuer_id, jti.jti.as_str(), jti.keep_until)),
            _ => None,
        })
        .collect();
    let mut first_uses = tx.jti_record_many(&uses).await?.into_iter();
    let replays: Vec<Option<Activity>> = entries
        .iter()
        .map(|entry| match entry {
            Entry::Grant {
                jti: Some(jti), event, ..
            } if !first_uses.next().unwrap_or(false) => Some((jti.replay_event)(event, &jti.jti)),
            _ => None,
        })
        .collect();
    let mut tokens = Vec::with_capacity(entries.len());
    let mut events = Vec::with_capacity(entries.len());
    let mut outcomes = Vec::with_capacity(entries.len());
    for (entry, replay) in entries.iter().zip(&replays) {
        match (entry, replay) {
            (_, Some(replay)) => {
                events.push(replay);
                outcomes.push(Recorded::Replayed);
            }
            (Entry::Grant { token, event, .. }, None) => {
                tokens.push(token);
                events.push(event);
                outcomes.push(Recorded::Committed);
            }
            (Entry::Event(event), None) => {
                events.push(event);
                outcomes.push(Recorded::Committed);
            }
        }
    }
    tx.access_token_create_many(&tokens).await?;
    tx.activity_append_many(&events).await?;
    tx.commit().await?;
    Ok(outcomes)
}
