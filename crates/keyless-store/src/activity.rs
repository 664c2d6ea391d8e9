//! The activity feed: append-only audit events.
//!
//! Parts: [`Activity`] (an event to append), [`NewActivity`] (one borrowed, its payload a value or JSON
//! text), [`ActivityRecord`] (a stored one, with its ID), [`ActivityCursor`], [`ActivityQuery`],
//! [`ActivityPage`]; on [`Tx`]: `activity_append`, `activity_append_many` and `activity_append_rows`
//! (a group commit's events in a few multi-row statements); on [`Store`]:
//! `activity_get`, `activity_list`, `activity_scan`, and `activity_purge` (retention).
//!
//! IDs are assigned by the database, increasing in insertion order (SQLite `AUTOINCREMENT`, never reused;
//! PostgreSQL an identity column), and order the feed. The feed lists newest first. Cursors follow the
//! seed API's `after_id` / `before_id`: `after_id` continues the listing past an ID (older events),
//! `before_id` gives the events just before it in the listing (newer events), still newest first. On
//! PostgreSQL, IDs are drawn when rows are inserted, not when they commit: a reader polling with a
//! cursor may see ID 12 committed before ID 11; readers that need every event should re-read a short
//! window behind their cursor.
//!
//! Events come from two tables, `activities` and `activity_batches` (see [`crate::activity_batch`]); the
//! reads take both in one read-only transaction, so an event committed between them is in both or
//! neither.
//!
//! Must not: update an event, or delete one except by retention: `activity_purge` removes an
//! organization's oldest events of one type once they are past the operator's retention for that type,
//! and nothing else.

use std::borrow::Borrow;

use keyless_core::id::OrganizationId;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::activity_batch::{self, BatchFilter};
use crate::backend::{Arg, Query, Row, row_chunks};
use crate::error::{BackendError, StoreError};
use crate::page::Limit;
use crate::store::{Store, Tx};

/// An activity event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    /// The organization it happened in.
    pub organization_id: OrganizationId,
    /// Its type, e.g. `platform_federated_authentication`.
    pub activity_type: String,
    /// Who acted (a `svac_…` ID, `bootstrap`, …), if known.
    pub actor_id: Option<String>,
    /// The object it is about (`fdrl_…`, `svac_…`, …), if any.
    pub resource_id: Option<String>,
    /// The request that caused it.
    pub request_id: Option<String>,
    /// When it happened (Unix seconds).
    pub created_at: i64,
    /// Everything else: event data, status, previous and current values.
    pub payload: Value,
}

/// A stored activity event.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRecord {
    /// Its ID: increasing in insertion order.
    pub id: i64,
    /// The event.
    pub activity: Activity,
}

/// Where a listing starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ActivityCursor {
    /// The newest events.
    #[default]
    Newest,
    /// `after_id`: the events listed after this ID, i.e. older ones.
    After(i64),
    /// `before_id`: the events listed just before this ID, i.e. the oldest of the newer ones.
    Before(i64),
}

/// Which events to list; empty or `None` filters do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityQuery {
    /// Only these types.
    pub activity_types: Vec<String>,
    /// Only this actor.
    pub actor_id: Option<String>,
    /// Only events about this object.
    pub resource_id: Option<String>,
    /// Only events of this request.
    pub request_id: Option<String>,
    /// Only events created at or after this time (Unix seconds).
    pub created_at_from: Option<i64>,
    /// Only events created before this time (Unix seconds).
    pub created_at_until: Option<i64>,
    /// Where to start.
    pub cursor: ActivityCursor,
    /// The page size.
    pub limit: Limit,
}

/// One page of the feed.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityPage {
    /// The events, newest first.
    pub items: Vec<ActivityRecord>,
    /// Whether more events follow in the direction of the listing (older for `Newest` and `After`,
    /// newer for `Before`).
    pub has_more: bool,
}

macro_rules! columns {
    () => {
        "id, organization_id, activity_type, actor_id, resource_id, request_id, created_at, payload"
    };
}

fn decode(row: &dyn Row) -> Result<ActivityRecord, StoreError> {
    Ok(ActivityRecord {
        id: row.int("id")?,
        activity: Activity {
            organization_id: row.parsed("organization_id", OrganizationId::parse)?,
            activity_type: row.text("activity_type")?,
            actor_id: row.opt_text("actor_id")?,
            resource_id: row.opt_text("resource_id")?,
            request_id: row.opt_text("request_id")?,
            created_at: row.int("created_at")?,
            payload: row.json("payload")?,
        },
    })
}

/// An event to append, borrowed: what [`Tx::activity_append_rows`] takes. Its payload is a JSON value
/// or JSON text already serialized (the request log writes each request's event straight to text,
/// without building a [`Value`] first).
#[derive(Debug, Clone, Copy)]
pub struct NewActivity<'a> {
    /// The organization it happened in.
    pub organization_id: &'a OrganizationId,
    /// Its type.
    pub activity_type: &'a str,
    /// Who acted, if known.
    pub actor_id: Option<&'a str>,
    /// The object it is about, if any.
    pub resource_id: Option<&'a str>,
    /// The request that caused it.
    pub request_id: Option<&'a str>,
    /// When it happened (Unix seconds).
    pub created_at: i64,
    /// Everything else.
    pub payload: Payload<'a>,
}

/// The payload of a [`NewActivity`].
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// A JSON value.
    Value(&'a Value),
    /// JSON text (a JSON object, like every payload).
    Text(&'a RawValue),
}

impl<'a> From<&'a Activity> for NewActivity<'a> {
    fn from(activity: &'a Activity) -> Self {
        Self {
            organization_id: &activity.organization_id,
            activity_type: &activity.activity_type,
            actor_id: activity.actor_id.as_deref(),
            resource_id: activity.resource_id.as_deref(),
            request_id: activity.request_id.as_deref(),
            created_at: activity.created_at,
            payload: Payload::Value(&activity.payload),
        }
    }
}

fn push_values<'a>(query: &mut Query<'a>, activity: &NewActivity<'a>) {
    query.push_sql("(");
    query.push_arg(activity.organization_id.as_str());
    query.push_sql(", ");
    query.push_arg(activity.activity_type);
    query.push_sql(", ");
    query.push_arg(activity.actor_id);
    query.push_sql(", ");
    query.push_arg(activity.resource_id);
    query.push_sql(", ");
    query.push_arg(activity.request_id);
    query.push_sql(", ");
    query.push_arg(activity.created_at);
    query.push_sql(", ");
    query.push_arg(match activity.payload {
        Payload::Value(value) => Arg::from(value),
        Payload::Text(text) => Arg::from(text),
    });
    query.push_sql(")");
}

impl Tx {
    /// Appends one event; returns its ID. It is visible, and durable, once the transaction commits.
    pub async fn activity_append(&mut self, activity: &Activity) -> Result<i64, StoreError> {
        let mut query = insert_query(&[NewActivity::from(activity)]);
        query.push_sql(" RETURNING id");
        self.conn()
            .fetch_returning(&query, |row| row.int("id"))
            .await?
            .first()
            .copied()
            .ok_or_else(|| StoreError::Unavailable(BackendError::new("the insert returned no id")))
    }

    /// Appends events in order (their IDs ascend in input order), in as few statements as possible,
    /// returning nothing: a group commit's events cost one message to the database per statement, not
    /// one per row.
    pub async fn activity_append_many<T: Borrow<Activity>>(&mut self, activities: &[T]) -> Result<(), StoreError> {
        let rows: Vec<NewActivity<'_>> = activities.iter().map(|activity| activity.borrow().into()).collect();
        self.activity_append_rows(&rows).await
    }

    /// [`Tx::activity_append_many`] of borrowed events.
    pub async fn activity_append_rows(&mut self, activities: &[NewActivity<'_>]) -> Result<(), StoreError> {
        for chunk in row_chunks(activities) {
            self.append(&insert_query(chunk).append()).await?;
        }
        Ok(())
    }
}

/// `INSERT INTO activities … VALUES` with one row per event: rows of one multi-row INSERT get
/// increasing IDs in VALUES order on both backends.
fn insert_query<'a>(activities: &[NewActivity<'a>]) -> Query<'a> {
    let mut query = Query::new(
        "INSERT INTO activities (organization_id, activity_type, actor_id, resource_id, request_id, created_at, \
         payload) VALUES ",
    );
    for (idx, activity) in activities.iter().enumerate() {
        if idx > 0 {
            query.push_sql(", ");
        }
        push_values(&mut query, activity);
    }
    query
}

/// `SELECT … FROM activities` of the organization, of `activity_types` when any are given.
fn select<'a, T: AsRef<str>>(organization_id: &'a OrganizationId, activity_types: &'a [T]) -> Query<'a> {
    let mut query = Query::new(concat!(
        "SELECT ",
        columns!(),
        " FROM activities WHERE organization_id = "
    ));
    query.push_arg(organization_id.as_str());
    if !activity_types.is_empty() {
        query.push_sql(" AND activity_type IN (");
        for (idx, activity_type) in activity_types.iter().enumerate() {
            if idx > 0 {
                query.push_sql(", ");
            }
            query.push_arg(activity_type.as_ref());
        }
        query.push_sql(")");
    }
    query
}

/// The first `count` of two lists that are each in ID order (descending, or ascending), in that order.
fn merge(
    rows: Vec<ActivityRecord>,
    batched: Vec<ActivityRecord>,
    ascending: bool,
    count: usize,
) -> Vec<ActivityRecord> {
    if batched.is_empty() {
        return rows;
    }
    let mut merged = Vec::with_capacity(rows.len() + batched.len());
    let (mut rows, mut batched) = (rows.into_iter().peekable(), batched.into_iter().peekable());
    while merged.len() < count {
        let take_row = match (rows.peek(), batched.peek()) {
            (Some(row), Some(event)) => (row.id < event.id) == ascending,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        merged.extend(if take_row { rows.next() } else { batched.next() });
    }
    merged
}

impl Store {
    /// Up to `count` events of the organization of `activity_types`, newest first, older than the event
    /// `before` (from the newest when `None`): a server-side search's walk back through the feed, in
    /// steps larger than a listing's page.
    pub async fn activity_scan(
        &self,
        organization_id: &OrganizationId,
        activity_types: &[&str],
        before: Option<i64>,
        count: u32,
    ) -> Result<Vec<ActivityRecord>, StoreError> {
        let mut query = select(organization_id, activity_types);
        if let Some(id) = before {
            query.push_sql(" AND id < ");
            query.push_arg(id);
        }
        query.push_sql(" ORDER BY id DESC LIMIT ");
        query.push_arg(i64::from(count));
        let mut snapshot = self.snapshot().await?;
        let mut conn = snapshot.conn();
        let rows = conn.fetch_all(&query, decode).await?;
        let filter = BatchFilter {
            activity_types,
            actor_id: None,
            resource_id: None,
            request_id: None,
            created_at_from: None,
            created_at_until: None,
            beyond: before,
            ascending: false,
        };
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        let batched = activity_batch::read(&mut conn, organization_id, &filter, count).await?;
        Ok(merge(rows, batched, false, count))
    }

    /// Retention: deletes those of the organization's `limit` oldest events of `activity_type` that were
    /// created before `before`; returns how many. The oldest `limit` of the type come from its index in
    /// ID order, so a call reads at most `limit` rows however long the feed is; fewer than `limit`
    /// deleted means the type's events from there on are younger than `before` (IDs follow creation
    /// time to within a group commit's seconds, far below any retention period). The type's oldest
    /// event is read first, so a call with nothing to delete never takes the write lock. The delete is
    /// one autocommitted statement, not an admin change.
    pub async fn activity_purge(
        &self,
        organization_id: &OrganizationId,
        activity_type: &str,
        before: i64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let oldest = Query::new(
            "SELECT created_at FROM activities WHERE organization_id = $1 AND activity_type = $2 ORDER BY id LIMIT 1",
        )
        .arg(organization_id.as_str())
        .arg(activity_type);
        let created_at = |row: &dyn Row| row.int("created_at");
        match self.read().await?.conn().fetch_optional(&oldest, created_at).await? {
            Some(created_at) if created_at < before => {}
            _ => return Ok(0),
        }
        let query = Query::new(
            "DELETE FROM activities WHERE id IN (SELECT id FROM activities \
             WHERE organization_id = $1 AND activity_type = $2 ORDER BY id LIMIT $3) AND created_at < $4",
        )
        .arg(organization_id.as_str())
        .arg(activity_type)
        .arg(i64::from(limit))
        .arg(before);
        self.write().await?.conn().execute(&query).await
    }

    /// The event `id` of the organization.
    pub async fn activity_get(&self, organization_id: &OrganizationId, id: i64) -> Result<ActivityRecord, StoreError> {
        let query = Query::new(concat!(
            "SELECT ",
            columns!(),
            " FROM activities WHERE organization_id = $1 AND id = $2"
        ))
        .arg(organization_id.as_str())
        .arg(id);
        let mut snapshot = self.snapshot().await?;
        let mut conn = snapshot.conn();
        if let Some(record) = conn.fetch_optional(&query, decode).await? {
            return Ok(record);
        }
        activity_batch::get(&mut conn, organization_id, id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// A page of the organization's feed matching `filter`, newest first.
    pub async fn activity_list(
        &self,
        organization_id: &OrganizationId,
        filter: &ActivityQuery,
    ) -> Result<ActivityPage, StoreError> {
        let mut query = select(organization_id, &filter.activity_types);
        if let Some(actor_id) = &filter.actor_id {
            query.push_sql(" AND actor_id = ");
            query.push_arg(actor_id.as_str());
        }
        if let Some(resource_id) = &filter.resource_id {
            query.push_sql(" AND resource_id = ");
            query.push_arg(resource_id.as_str());
        }
        if let Some(request_id) = &filter.request_id {
            query.push_sql(" AND request_id = ");
            query.push_arg(request_id.as_str());
        }
        if let Some(from) = filter.created_at_from {
            query.push_sql(" AND created_at >= ");
            query.push_arg(from);
        }
        if let Some(until) = filter.created_at_until {
            query.push_sql(" AND created_at < ");
            query.push_arg(until);
        }
        let ascending = match filter.cursor {
            ActivityCursor::Newest => false,
            ActivityCursor::After(id) => {
                query.push_sql(" AND id < ");
                query.push_arg(id);
                false
            }
            ActivityCursor::Before(id) => {
                query.push_sql(" AND id > ");
                query.push_arg(id);
                true
            }
        };
        query.push_sql(if ascending {
            " ORDER BY id ASC LIMIT "
        } else {
            " ORDER BY id DESC LIMIT "
        });
        query.push_arg(filter.limit.fetch());
        // Two tables, one snapshot: an event committed between the two reads is in both or neither.
        let mut snapshot = self.snapshot().await?;
        let mut conn = snapshot.conn();
        let rows = conn.fetch_all(&query, decode).await?;
        let activity_types: Vec<&str> = filter.activity_types.iter().map(String::as_str).collect();
        let batch_filter = BatchFilter {
            activity_types: &activity_types,
            actor_id: filter.actor_id.as_deref(),
            resource_id: filter.resource_id.as_deref(),
            request_id: filter.request_id.as_deref(),
            created_at_from: filter.created_at_from,
            created_at_until: filter.created_at_until,
            beyond: match filter.cursor {
                ActivityCursor::Newest => None,
                ActivityCursor::After(id) | ActivityCursor::Before(id) => Some(id),
            },
            ascending,
        };
        let fetch = usize::try_from(filter.limit.fetch()).unwrap_or(usize::MAX);
        let batched = activity_batch::read(&mut conn, organization_id, &batch_filter, fetch).await?;
        let mut items = merge(rows, batched, ascending, fetch);
        let page_len = usize::try_from(filter.limit.get()).unwrap_or(usize::MAX);
        let has_more = items.len() > page_len;
        items.truncate(page_len);
        if ascending {
            items.reverse();
        }
        Ok(ActivityPage { items, has_more })
    }
}
