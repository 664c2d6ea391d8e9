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
//!
//! Between two batches the writer also runs the checkpointer's pass on the writer connection
//! ([`Recorder::checkpoint_writer`], see [`crate::service::checkpoint`]): the one moment a checkpoint
//! stops the group commits, kept as short as the pass itself.
//!
//! An entry's event reaches the writer as JSON text ([`Event`]): the request that made it serialized
//! it on a request worker, in parallel with the others, and freed its JSON tree there. The writer, the
//! serial stage, only binds the text (it used to serialize every event and free its tree itself).

use std::sync::Arc;
use std::time::Instant;

use keyless_core::id::{IssuerId, OrganizationId};
use keyless_store::access_token::AccessTokenRecord;
use keyless_store::activity::{Activity, NewActivity, Payload};
use keyless_store::{Store, StoreError, WalCheckpoint};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::clock;

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
    /// Turns the grant's event payload into the replay's, given the `jti` (called only for a replay).
    pub replay_payload: fn(&mut Value, &str),
}

/// An activity event with its payload already serialized (see the module docs).
#[derive(Debug, Clone)]
pub struct Event {
    organization_id: OrganizationId,
    activity_type: String,
    actor_id: Option<String>,
    resource_id: Option<String>,
    request_id: Option<String>,
    created_at: i64,
    payload: Box<RawValue>,
}

impl Event {
    /// Serializes `activity`'s payload.
    pub fn new(activity: Activity) -> Result<Event, RecordError> {
        let payload = serde_json::value::to_raw_value(&activity.payload).map_err(RecordError::event)?;
        Ok(Event {
            organization_id: activity.organization_id,
            activity_type: activity.activity_type,
            actor_id: activity.actor_id,
            resource_id: activity.resource_id,
            request_id: activity.request_id,
            created_at: activity.created_at,
            payload,
        })
    }

    /// The same event with its payload changed by `change` (parsed back, changed, serialized again:
    /// the rare path of a replayed `jti`).
    fn with_payload(&self, change: impl FnOnce(&mut Value)) -> Result<Event, RecordError> {
        let mut payload: Value = serde_json::from_str(self.payload.get()).map_err(RecordError::event)?;
        change(&mut payload);
        Ok(Event {
            payload: serde_json::value::to_raw_value(&payload).map_err(RecordError::event)?,
            ..self.clone()
        })
    }

    fn row(&self) -> NewActivity<'_> {
        NewActivity {
            organization_id: &self.organization_id,
            activity_type: &self.activity_type,
            actor_id: self.actor_id.as_deref(),
            resource_id: self.resource_id.as_deref(),
            request_id: self.request_id.as_deref(),
            created_at: self.created_at,
            payload: Payload::Text(&self.payload),
        }
    }
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
        event: Event,
    },
    /// An event alone (a refused exchange, a shadow rule's verdict).
    Event(Event),
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
    /// An event's payload could not be serialized (or, for a replay, parsed back).
    #[error("an activity event could not be serialized: {0}")]
    Event(Arc<serde_json::Error>),
}

impl RecordError {
    fn event(error: serde_json::Error) -> Self {
        Self::Event(Arc::new(error))
    }
}

impl From<StoreError> for RecordError {
    fn from(error: StoreError) -> Self {
        Self::Store(Arc::new(error))
    }
}

struct Job {
    entry: Entry,
    done: oneshot::Sender<Result<Recorded, RecordError>>,
    queued: Instant,
}

/// The handle to the writer task; cheap to clone. The task ends when every handle is dropped and the
/// queue is drained.
#[derive(Clone)]
pub struct Recorder {
    sender: mpsc::Sender<Job>,
    checkpoints: mpsc::Sender<CheckpointDone>,
}

/// Where the writer answers a request for [`Store::checkpoint_writer`].
type CheckpointDone = oneshot::Sender<Result<Option<WalCheckpoint>, StoreError>>;

impl Recorder {
    /// Starts the writer on `store`, on a thread of its own: the writer is the serial stage of every
    /// exchange, so it must not wait for a runtime worker busy with requests between its statements.
    /// Call it inside a Tokio runtime; the handle completes when the writer has drained and ended.
    pub fn start(store: Store) -> (Recorder, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let (checkpoints, checkpoint_requests) = mpsc::channel(1);
        let writer = tokio::task::spawn_blocking(move || {
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime.block_on(write_loop(store, receiver, checkpoint_requests)),
                // No writer: every `record` then fails with `Stopped` and exchanges answer 503.
                Err(error) => tracing::error!(%error, "the activity writer could not start its runtime"),
            }
        });
        (Recorder { sender, checkpoints }, writer)
    }

    /// Writes `entry` and returns once it is committed (or failed).
    pub async fn record(&self, entry: Entry) -> Result<Recorded, RecordError> {
        let (done, outcome) = oneshot::channel();
        self.sender
            .send(Job {
                entry,
                done,
                queued: clock::monotonic(),
            })
            .await
            .map_err(|_| RecordError::Stopped)?;
        outcome.await.map_err(|_| RecordError::Stopped)?
    }

    /// Runs [`Store::checkpoint_writer`] on the writer's thread, between two group commits, and
    /// returns its outcome. From any other task the pass would wait for the writer connection and give
    /// it back through a request worker: under load, milliseconds more in which no group commit runs.
    pub async fn checkpoint_writer(&self) -> Result<Option<WalCheckpoint>, RecordError> {
        let (done, outcome) = oneshot::channel();
        self.checkpoints.send(done).await.map_err(|_| RecordError::Stopped)?;
        Ok(outcome.await.map_err(|_| RecordError::Stopped)??)
    }
}

async fn write_loop(store: Store, mut receiver: mpsc::Receiver<Job>, mut checkpoints: mpsc::Receiver<CheckpointDone>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Received but not yet written, in arrival order.
    let mut waiting: std::collections::VecDeque<Job> = std::collections::VecDeque::with_capacity(MAX_BATCH * 2);
    loop {
        // A checkpoint pass asked for runs before the next batch.
        while let Ok(done) = checkpoints.try_recv() {
            let _ = done.send(store.checkpoint_writer().await);
        }
        if waiting.is_empty() {
            tokio::select! {
                job = receiver.recv() => match job {
                    Some(job) => waiting.push_back(job),
                    None => break,
                },
                Some(done) = checkpoints.recv() => {
                    let _ = done.send(store.checkpoint_writer().await);
                    continue;
                }
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
        let began = clock::monotonic();
        metrics::histogram!("keyless_group_commit_entries").record(batch.len() as f64);
        let wait = metrics::histogram!("keyless_group_commit_wait_seconds");
        for job in &batch {
            wait.record(began.saturating_duration_since(job.queued).as_secs_f64());
        }
        let entries: Vec<&Entry> = batch.iter().map(|job| &job.entry).collect();
        let written = write(&store, &entries).await;
        metrics::histogram!("keyless_group_commit_seconds").record(began.elapsed().as_secs_f64());
        match written {
            Ok(outcomes) => {
                for (job, outcome) in batch.drain(..).zip(outcomes) {
                    let _ = job.done.send(Ok(outcome));
                }
            }
            Err(error) if batch.len() == 1 => {
                for job in batch.drain(..) {
                    let _ = job.done.send(Err(error.clone()));
                }
            }
            Err(error) => {
                tracing::warn!(%error, entries = batch.len(), "a group commit failed; retrying its entries one by one");
                for job in batch.drain(..) {
                    let outcome = write(&store, &[&job.entry])
                        .await
                        .and_then(|outcomes| outcomes.into_iter().next().ok_or(RecordError::Stopped));
                    let _ = job.done.send(outcome);
                }
            }
        }
    }
}

/// Writes a batch in one transaction and three statements per chunk: the `jti` uses, the tokens, the
/// events. A grant whose `jti` turns out used stores no token; its replay event is written instead.
async fn write(store: &Store, entries: &[&Entry]) -> Result<Vec<Recorded>, RecordError> {
    let mut tx = store.begin().await?;
    let uses: Vec<(&IssuerId, &str, i64)> = entries
        .iter()
        .filter_map(|entry| match entry {
            Entry::Grant { jti: Some(jti), .. } => Some((&jti.issuer_id, jti.jti.as_str(), jti.keep_until)),
            _ => None,
        })
        .collect();
    let mut first_uses = tx.jti_record_many(&uses).await?.into_iter();
    let replays: Vec<Option<Event>> = entries
        .iter()
        .map(|entry| match entry {
            Entry::Grant {
                jti: Some(jti), event, ..
            } if !first_uses.next().unwrap_or(false) => event
                .with_payload(|payload| (jti.replay_payload)(payload, &jti.jti))
                .map(Some),
            _ => Ok(None),
        })
        .collect::<Result<_, _>>()?;
    let mut tokens = Vec::with_capacity(entries.len());
    let mut events = Vec::with_capacity(entries.len());
    let mut outcomes = Vec::with_capacity(entries.len());
    for (entry, replay) in entries.iter().zip(&replays) {
        match (entry, replay) {
            (_, Some(replay)) => {
                events.push(replay.row());
                outcomes.push(Recorded::Replayed);
            }
            (Entry::Grant { token, event, .. }, None) => {
                tokens.push(token);
                events.push(event.row());
                outcomes.push(Recorded::Committed);
            }
            (Entry::Event(event), None) => {
                events.push(event.row());
                outcomes.push(Recorded::Committed);
            }
        }
    }
    tx.access_token_create_many(&tokens).await?;
    tx.activity_append_rows(&events).await?;
    tx.commit().await?;
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use keyless_store::organization::OrganizationRecord;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn event(organization_id: &OrganizationId, n: usize) -> Entry {
        Entry::Event(
            Event::new(Activity {
                organization_id: organization_id.clone(),
                activity_type: "test_event".to_owned(),
                actor_id: None,
                resource_id: None,
                request_id: None,
                created_at: NOW,
                payload: serde_json::json!({ "n": n, "filler": "x".repeat(4_000) }),
            })
            .unwrap(),
        )
    }

    /// The checkpointer's pass on the writer connection runs between two group commits, so it copies
    /// the whole log (and the log starts over) even while entries keep arriving; none is lost.
    #[tokio::test]
    async fn the_writer_pass_copies_the_whole_log_between_group_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(dir.path().join("keyless.db")).await.unwrap();
        let organization_id = OrganizationId::parse("0190a1b2-c3d4-7e5f-8a9b-000000000001").unwrap();
        let mut tx = store.begin().await.unwrap();
        tx.organization_create(&OrganizationRecord {
            id: organization_id.clone(),
            created_at: NOW,
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let (recorder, writer) = Recorder::start(store.clone());

        let writers: Vec<_> = (0..8)
            .map(|task| {
                let (recorder, organization_id) = (recorder.clone(), organization_id.clone());
                tokio::spawn(async move {
                    for n in 0..100 {
                        let outcome = recorder.record(event(&organization_id, task * 100 + n)).await;
                        assert_eq!(outcome.unwrap(), Recorded::Committed);
                    }
                })
            })
            .collect();
        let mut passes = Vec::new();
        while passes.len() < 20 || !writers.iter().all(JoinHandle::is_finished) {
            passes.push(recorder.checkpoint_writer().await.unwrap().unwrap());
            tokio::task::yield_now().await;
        }
        for task in writers {
            task.await.unwrap();
        }
        assert!(
            passes.iter().any(|pass| pass.frames > 0),
            "nothing was ever in the log: {passes:?}"
        );
        for pass in &passes {
            assert_eq!(pass.copied, pass.frames, "a pass left part of the log: {pass:?}");
            assert!(pass.restart, "{pass:?}");
        }
        let stored = store
            .activity_scan(&organization_id, &["test_event"], None, 10_000)
            .await
            .unwrap();
        assert_eq!(stored.len(), 800);

        drop(recorder);
        writer.await.unwrap();
        store.close().await;
    }
}
