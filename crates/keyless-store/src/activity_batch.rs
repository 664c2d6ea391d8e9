//! Batched events: high-volume events (the request log's) stored many to a row in `activity_batches`,
//! read back as part of the one activity feed.
//!
//! A row holds up to 512 events of one organization and type (`EVENTS_PER_ROW`), as a JSON array, with
//! its first and last event IDs and times; `activity_batch_keys` lists, per row, each actor, each
//! resource and each request-ID prefix (`request_bucket`) among its events, so a filtered read opens
//! only the rows that can match. Event IDs are drawn from the feed's own sequence
//! (`Conn::reserve_activity_ids`), so a listing merges batched events and `activities` rows by ID; the
//! ID ranges of two rows never interleave (that function's guarantee, on both databases), so rows read
//! in `id` order give their events in ID order, and the one row whose range holds an ID holds its event.
//! Writing a batch costs a few rows instead of one row and five index entries per event (the request
//! log's server CPU per check fell to about 0.9×, `docs/benchmarks.md`); retention deletes whole rows.
//!
//! Parts: [`Tx::activity_append_batched`] (write), [`Store::activity_batch_purge`] (retention), and for
//! `activity.rs`'s reads: `BatchFilter`, `read`, `get`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use keyless_core::id::OrganizationId;

use crate::activity::{Activity, ActivityRecord, NewActivity, Payload};
use crate::backend::{Conn, Query, Row};
use crate::error::{BackendError, StoreError};
use crate::store::{Store, Tx};

/// The most events one `activity_batches` row holds: a reader opens a row whole, so this bounds what a
/// page of the feed decodes (~250 KB of the request log's events).
const EVENTS_PER_ROW: usize = 512;
/// The most rows of batched events one `INSERT` writes.
const ROWS_PER_STATEMENT: usize = 64;
/// The most rows a read fetches at a time while it fills a page (it starts with one and doubles).
const MAX_ROWS_PER_READ: i64 = 8;
/// The length of the request-ID prefix a row is found by: `req_` and the first nine hex digits of the
/// time in milliseconds (a window of ~4 s), so a row's events share one or two prefixes.
const REQUEST_BUCKET_LEN: usize = 13;

/// The prefix of `request_id` that `activity_batch_keys` records (the whole ID when shorter).
fn request_bucket(request_id: &str) -> &str {
    request_id.get(..REQUEST_BUCKET_LEN).unwrap_or(request_id)
}

/// One event as stored in a row's array.
#[derive(Serialize)]
struct StoredEvent<'a> {
    id: i64,
    actor_id: Option<&'a str>,
    resource_id: Option<&'a str>,
    request_id: Option<&'a str>,
    created_at: i64,
    payload: StoredPayload<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum StoredPayload<'a> {
    Value(&'a Value),
    Text(&'a RawValue),
}

/// One event read back.
#[derive(Deserialize)]
struct ReadEvent {
    id: i64,
    actor_id: Option<String>,
    resource_id: Option<String>,
    request_id: Option<String>,
    created_at: i64,
    payload: Value,
}

impl Tx {
    /// Appends events as batches (stored rows of up to 512 events of one organization and type;
    /// consecutive events of the same pair share rows), in three statements whatever their number:
    /// the IDs, the rows, their keys. Their IDs ascend in input order and interleave with
    /// [`Tx::activity_append`]'s in commit order; they are listed, filtered and purged like any other
    /// event, except that retention removes a row once its newest event is past the cutoff.
    pub async fn activity_append_batched(&mut self, activities: &[NewActivity<'_>]) -> Result<(), StoreError> {
        let Ok(count @ 1..) = u32::try_from(activities.len()) else {
            return Ok(());
        };
        let ids = self.conn().reserve_activity_ids(count).await?;
        let mut rows: Vec<(&[NewActivity<'_>], &[i64])> = Vec::new();
        let (mut events, mut event_ids) = (activities, ids.as_slice());
        while let Some(first) = events.first() {
            let same = events
                .iter()
                .take(EVENTS_PER_ROW)
                .take_while(|event| {
                    event.organization_id == first.organization_id && event.activity_type == first.activity_type
                })
                .count();
            let (row, rest) = events.split_at(same);
            let (row_ids, rest_ids) = event_ids.split_at(same.min(event_ids.len()));
            rows.push((row, row_ids));
            (events, event_ids) = (rest, rest_ids);
        }
        let mut keys: Vec<(&OrganizationId, &'static str, &str, i64)> = Vec::new();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut insert = Query::new(
                "INSERT INTO activity_batches (id, last_id, organization_id, activity_type, count, first_at, \
                 last_at, events) VALUES ",
            )
            .append();
            for (idx, (events, ids)) in chunk.iter().enumerate() {
                let (Some(first), Some(&first_id), Some(&last_id)) = (events.first(), ids.first(), ids.last()) else {
                    return Err(StoreError::Unavailable(BackendError::new(
                        "a batch of events has no IDs",
                    )));
                };
                let stored: Vec<StoredEvent<'_>> = events
                    .iter()
                    .zip(ids.iter())
                    .map(|(event, &id)| StoredEvent {
                        id,
                        actor_id: event.actor_id,
                        resource_id: event.resource_id,
                        request_id: event.request_id,
                        created_at: event.created_at,
                        payload: match event.payload {
                            Payload::Value(value) => StoredPayload::Value(value),
                            Payload::Text(text) => StoredPayload::Text(text),
                        },
                    })
                    .collect();
                let text = serde_json::to_string(&stored).map_err(|e| StoreError::Unavailable(BackendError::new(e)))?;
                let times = events.iter().map(|event| event.created_at);
                insert.push_sql(if idx == 0 { "(" } else { ", (" });
                insert.push_arg(first_id);
                insert.push_sql(", ");
                insert.push_arg(last_id);
                insert.push_sql(", ");
                insert.push_arg(first.organization_id.as_str());
                insert.push_sql(", ");
                insert.push_arg(first.activity_type);
                insert.push_sql(", ");
                insert.push_arg(i64::try_from(events.len()).unwrap_or(i64::MAX));
                insert.push_sql(", ");
                insert.push_arg(times.clone().min().unwrap_or_default());
                insert.push_sql(", ");
                insert.push_arg(times.max().unwrap_or_default());
                insert.push_sql(", ");
                insert.push_arg(text);
                insert.push_sql(")");
                let mut row_keys: Vec<(&'static str, &str)> = events
                    .iter()
                    .flat_map(|event| {
                        [
                            event.actor_id.map(|key| ("actor", key)),
                            event.resource_id.map(|key| ("resource", key)),
                            event.request_id.map(|key| ("request", request_bucket(key))),
                        ]
                    })
                    .flatten()
                    .collect();
                row_keys.sort_unstable();
                row_keys.dedup();
                keys.extend(
                    row_keys
                        .into_iter()
                        .map(|(kind, key)| (first.organization_id, kind, key, first_id)),
                );
            }
            self.append(&insert).await?;
        }
        for chunk in keys.chunks(crate::backend::MAX_ROWS_PER_STATEMENT) {
            let mut query =
                Query::new("INSERT INTO activity_batch_keys (organization_id, kind, key, batch_id) VALUES ").append();
            for (idx, (organization_id, kind, key, batch_id)) in chunk.iter().enumerate() {
                query.push_sql(if idx == 0 { "(" } else { ", (" });
                query.push_arg(organization_id.as_str());
                query.push_sql(", ");
                query.push_arg(*kind);
                query.push_sql(", ");
                query.push_arg(*key);
                query.push_sql(", ");
                query.push_arg(*batch_id);
                query.push_sql(")");
            }
            self.append(&query).await?;
        }
        Ok(())
    }
}

/// What a read of batched events matches: the feed's filters (see `ActivityQuery`), and an ID bound.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchFilter<'q> {
    pub(crate) activity_types: &'q [&'q str],
    pub(crate) actor_id: Option<&'q str>,
    pub(crate) resource_id: Option<&'q str>,
    pub(crate) request_id: Option<&'q str>,
    pub(crate) created_at_from: Option<i64>,
    pub(crate) created_at_until: Option<i64>,
    /// Only events with IDs below this (newest first) or, when `ascending`, above it.
    pub(crate) beyond: Option<i64>,
    /// Oldest first.
    pub(crate) ascending: bool,
}

impl BatchFilter<'_> {
    fn matches(&self, event: &ReadEvent) -> bool {
        let equal = |wanted: Option<&str>, seen: &Option<String>| wanted.is_none_or(|w| seen.as_deref() == Some(w));
        equal(self.actor_id, &event.actor_id)
            && equal(self.resource_id, &event.resource_id)
            && equal(self.request_id, &event.request_id)
            && self.created_at_from.is_none_or(|from| event.created_at >= from)
            && self.created_at_until.is_none_or(|until| event.created_at < until)
            && self.beyond.is_none_or(|bound| {
                if self.ascending {
                    event.id > bound
                } else {
                    event.id < bound
                }
            })
    }
}

/// A stored row, opened.
struct BatchRow {
    id: i64,
    activity_type: String,
    events: Vec<ReadEvent>,
}

fn decode_row(row: &dyn Row) -> Result<BatchRow, StoreError> {
    let text = row.text("events")?;
    let events = serde_json::from_str(&text).map_err(|e| StoreError::Unavailable(BackendError::new(e)))?;
    Ok(BatchRow {
        id: row.int("id")?,
        activity_type: row.text("activity_type")?,
        events,
    })
}

fn record(organization_id: &OrganizationId, activity_type: &str, event: ReadEvent) -> ActivityRecord {
    ActivityRecord {
        id: event.id,
        activity: Activity {
            organization_id: organization_id.clone(),
            activity_type: activity_type.to_owned(),
            actor_id: event.actor_id,
            resource_id: event.resource_id,
            request_id: event.request_id,
            created_at: event.created_at,
            payload: event.payload,
        },
    }
}

/// Up to `count` batched events of the organization matching `filter`, in its order (newest first
/// unless `ascending`), opening one row, then two, four, up to [`MAX_ROWS_PER_READ`] at a time, until
/// `count` are found or no row is left.
pub(crate) async fn read(
    conn: &mut Conn<'_>,
    organization_id: &OrganizationId,
    filter: &BatchFilter<'_>,
    count: usize,
) -> Result<Vec<ActivityRecord>, StoreError> {
    let mut found = Vec::new();
    let mut after_row: Option<i64> = None;
    let mut rows_per_read = 1;
    while found.len() < count {
        let mut query = Query::new("SELECT id, activity_type, events FROM activity_batches WHERE organization_id = ");
        query.push_arg(organization_id.as_str());
        if !filter.activity_types.is_empty() {
            query.push_sql(" AND activity_type IN (");
            for (idx, activity_type) in filter.activity_types.iter().enumerate() {
                if idx > 0 {
                    query.push_sql(", ");
                }
                query.push_arg(*activity_type);
            }
            query.push_sql(")");
        }
        let keys = [
            ("actor", filter.actor_id),
            ("resource", filter.resource_id),
            ("request", filter.request_id.map(request_bucket)),
        ];
        for (kind, key) in keys {
            if let Some(key) = key {
                query.push_sql(" AND id IN (SELECT batch_id FROM activity_batch_keys WHERE organization_id = ");
                query.push_arg(organization_id.as_str());
                query.push_sql(" AND kind = ");
                query.push_arg(kind);
                query.push_sql(" AND key = ");
                query.push_arg(key);
                query.push_sql(")");
            }
        }
        if let Some(from) = filter.created_at_from {
            query.push_sql(" AND last_at >= ");
            query.push_arg(from);
        }
        if let Some(until) = filter.created_at_until {
            query.push_sql(" AND first_at < ");
            query.push_arg(until);
        }
        // A row holds IDs `id..=last_id`: it can hold an ID below the bound when its first one is,
        // above it when its last one is.
        match (filter.beyond, filter.ascending) {
            (Some(bound), false) => {
                query.push_sql(" AND id < ");
                query.push_arg(bound);
            }
            (Some(bound), true) => {
                query.push_sql(" AND last_id > ");
                query.push_arg(bound);
            }
            (None, _) => {}
        }
        if let Some(row) = after_row {
            query.push_sql(if filter.ascending { " AND id > " } else { " AND id < " });
            query.push_arg(row);
        }
        query.push_sql(if filter.ascending {
            " ORDER BY id ASC LIMIT "
        } else {
            " ORDER BY id DESC LIMIT "
        });
        query.push_arg(rows_per_read);
        let rows = conn.fetch_all(&query, decode_row).await?;
        let exhausted = rows.len() < usize::try_from(rows_per_read).unwrap_or(usize::MAX);
        rows_per_read = (rows_per_read * 2).min(MAX_ROWS_PER_READ);
        for row in rows {
            after_row = Some(row.id);
            let mut events = row.events;
            if !filter.ascending {
                events.reverse();
            }
            found.extend(
                events
                    .into_iter()
                    .filter(|event| filter.matches(event))
                    .map(|event| record(organization_id, &row.activity_type, event)),
            );
        }
        if exhausted {
            break;
        }
    }
    found.truncate(count);
    Ok(found)
}

/// The batched event `id` of the organization, if there is one.
pub(crate) async fn get(
    conn: &mut Conn<'_>,
    organization_id: &OrganizationId,
    id: i64,
) -> Result<Option<ActivityRecord>, StoreError> {
    let query = Query::new(
        "SELECT id, activity_type, events FROM activity_batches \
         WHERE organization_id = $1 AND id <= $2 AND last_id >= $2 ORDER BY id DESC LIMIT 1",
    )
    .arg(organization_id.as_str())
    .arg(id);
    let Some(row) = conn.fetch_optional(&query, decode_row).await? else {
        return Ok(None);
    };
    Ok(row
        .events
        .into_iter()
        .find(|event| event.id == id)
        .map(|event| record(organization_id, &row.activity_type, event)))
}

/// What [`Store::activity_batch_purge`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchesPurged {
    /// Rows of batched events.
    pub rows: u64,
    /// The events they held.
    pub events: u64,
}

impl Store {
    /// Retention for batched events: deletes those of the organization's `limit` oldest rows of
    /// `activity_type` whose newest event was created before `before`, with their keys. Like
    /// [`Store::activity_purge`], it reads the oldest row first, so a call with nothing to delete takes
    /// no write lock, and fewer rows than `limit` deleted means the rest are younger. A row goes whole,
    /// once its newest event is past the cutoff (its events span the seconds of one write).
    pub async fn activity_batch_purge(
        &self,
        organization_id: &OrganizationId,
        activity_type: &str,
        before: i64,
        limit: u32,
    ) -> Result<BatchesPurged, StoreError> {
        let oldest = Query::new(
            "SELECT last_at FROM activity_batches WHERE organization_id = $1 AND activity_type = $2 \
             ORDER BY id LIMIT 1",
        )
        .arg(organization_id.as_str())
        .arg(activity_type);
        match self
            .read()
            .await?
            .conn()
            .fetch_optional(&oldest, |row| row.int("last_at"))
            .await?
        {
            Some(last_at) if last_at < before => {}
            _ => return Ok(BatchesPurged::default()),
        }
        let mut tx = self.begin().await?;
        let delete = Query::new(
            "DELETE FROM activity_batches WHERE id IN (SELECT id FROM activity_batches \
             WHERE organization_id = $1 AND activity_type = $2 ORDER BY id LIMIT $3) AND last_at < $4 \
             RETURNING id, count",
        )
        .arg(organization_id.as_str())
        .arg(activity_type)
        .arg(i64::from(limit))
        .arg(before);
        let deleted = tx
            .conn()
            .fetch_returning(&delete, |row| Ok((row.int("id")?, row.int("count")?)))
            .await?;
        for chunk in deleted.chunks(crate::backend::MAX_ROWS_PER_STATEMENT) {
            let mut keys = Query::new("DELETE FROM activity_batch_keys WHERE organization_id = ");
            keys.push_arg(organization_id.as_str());
            keys.push_sql(" AND batch_id IN (");
            for (idx, (id, _)) in chunk.iter().enumerate() {
                if idx > 0 {
                    keys.push_sql(", ");
                }
                keys.push_arg(*id);
            }
            keys.push_sql(")");
            tx.conn().execute(&keys).await?;
        }
        tx.commit().await?;
        Ok(BatchesPurged {
            rows: deleted.len() as u64,
            events: deleted
                .iter()
                .map(|(_, count)| u64::try_from(*count).unwrap_or(0))
                .sum(),
        })
    }
}
