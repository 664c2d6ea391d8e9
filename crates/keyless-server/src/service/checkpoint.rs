//! SQLite's write-ahead log copied into the database file in the background, so the single writer —
//! the serial stage of every exchange's group commit — never waits for a checkpoint's `fsync`s.
//!
//! Parts: [`spawn`] (the task `run` starts and stops) and [`INTERVAL`]. Every interval the task runs
//! [`Store::checkpoint_beside`] (a `PASSIVE` checkpoint beside the writer) and, once the log holds
//! [`RESTART_FRAMES`] frames, asks the group-commit writer ([`Recorder::checkpoint_writer`]) for a
//! short one on the writer connection between two of its commits, so the log starts over; a quiet
//! database makes that a no-op. Nothing runs on PostgreSQL.
//!
//! That pass is the one moment the writer stops for a checkpoint, so it runs on the writer's own
//! thread: from this task, on the request workers' runtime, it first waited for a busy worker to pick
//! up the connection and then to give it back — under the exchange benchmark's open loop, 0–18 ms
//! more per pass in which no group commit ran (measured 2026-12-07).
//!
//! Measured: `keyless_sqlite_wal_frames` (the log's frames after the last checkpoint) and
//! `keyless_sqlite_wal_restarts_total` (the passes on the writer connection); a failed checkpoint is
//! logged and retried at the next tick.

use std::time::Duration;

use keyless_store::{Backend, Store, WAL_TRIM_FRAMES, WalCheckpoint};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::service::recorder::{RecordError, Recorder};

/// Time between checkpoints: under load, a tenth of a second of commits (a few thousand pages) each.
pub const INTERVAL: Duration = Duration::from_millis(100);
/// The log's length, in 4-KiB frames, at which it is made to start over (64 MiB): each time costs the
/// writer a pause of two `fsync`s and the copy of the last frames (2–13 ms on the benchmark VM, after
/// the passes beside it have caught up), two or three times a second at the heaviest load measured.
/// Measured with the passes on the writer's thread (2026-12-07): 32 MiB and 128 MiB, within the noise
/// of this value (fewer restarts, each no cheaper); 192 MiB, past the log file's size limit
/// ([`WAL_TRIM_FRAMES`]), clearly worse — the writer then trims the file at every restart and the log
/// grows it back — hence the assertion below, with room for the frames appended before the pass lands.
pub const RESTART_FRAMES: i64 = 16_384;
const _: () = assert!(
    RESTART_FRAMES <= WAL_TRIM_FRAMES / 2,
    "a log restarted past the file's size limit is trimmed at every restart"
);

/// Starts the checkpointer (SQLite only: on PostgreSQL the task ends at once). It stops when
/// `shutdown` turns `true` (or its sender is dropped); closing the store checkpoints what is left.
pub fn spawn(store: Store, recorder: Recorder, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        if store.backend() != Backend::Sqlite {
            return;
        }
        let mut interval = tokio::time::interval(INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { break } else { continue },
                _ = interval.tick() => {}
            }
            match checkpoint(&store, &recorder).await {
                Ok(Some(done)) => {
                    metrics::gauge!("keyless_sqlite_wal_frames").set(done.frames as f64);
                    if done.restart {
                        metrics::counter!("keyless_sqlite_wal_restarts_total").increment(1);
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "checkpointing the SQLite write-ahead log failed; the next tick retries")
                }
            }
        }
    })
}

/// [`Store::checkpoint`], its pass on the writer connection run by the writer.
async fn checkpoint(store: &Store, recorder: &Recorder) -> Result<Option<WalCheckpoint>, RecordError> {
    match store.checkpoint_beside(RESTART_FRAMES).await? {
        Some(found) if found.writer_pass_due => recorder.checkpoint_writer().await,
        found => Ok(found),
    }
}
