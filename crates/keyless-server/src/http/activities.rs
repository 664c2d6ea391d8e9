//! `GET /v1/organizations/activities`: the activity feed, newest first, for `org:admin` callers.
//!
//! Query parameters (all optional; unknown ones are refused so a typo never silently widens a search):
//! - `type` — one or more activity types (repeat the parameter or separate with commas);
//! - `actor_id`, `resource_id`, `request_id` — exact matches (a failed exchange's whole trace is found
//!   by its `request_id`);
//! - `created_after`, `created_before` — RFC 3339 times or Unix seconds (`created_after` inclusive);
//! - `after_id` (older events, continuing a listing) or `before_id` (newer ones), not both;
//! - `limit` — 1–100, default 20.
//!
//! Response: `{data: [event…], has_more, first_id, last_id}`. An event is
//! `{id, type, created_at, organization_id, actor_id, resource_id, request_id, …payload}` where the payload
//! (`event_data`, `status`, `changes`, …) is the event's own.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use keyless_store::activity::{ActivityCursor, ActivityQuery, ActivityRecord};
use keyless_store::page::Limit;
use serde_json::{Map, Value, json};

use crate::clock;
use crate::http::auth;
use crate::http::request_id::RequestId;
use crate::service::admin::{self, ACTIVITY_ID_PREFIX as ID_PREFIX};
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/v1/organizations/activities", get(list))
}

async fn list(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(response) = auth::require_admin(&state, &headers, &request_id, clock::now_unix()).await {
        return response;
    }
    let query = match parse(raw.as_deref().unwrap_or_default()) {
        Ok(query) => query,
        Err(message) => return auth::error(StatusCode::BAD_REQUEST, "invalid_request_error", &message, &request_id),
    };
    match state.store.activity_list(&state.organization_id, &query).await {
        Ok(page) => {
            let data: Vec<Value> = page.items.iter().map(event_json).collect();
            let first_id = page.items.first().map(|record| admin::activity_id(record.id));
            let last_id = page.items.last().map(|record| admin::activity_id(record.id));
            Json(json!({ "data": data, "has_more": page.has_more, "first_id": first_id, "last_id": last_id }))
                .into_response()
        }
        Err(error) => {
            tracing::error!(request_id = request_id.0, %error, "listing activities failed");
            auth::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "api_error",
                "the activity feed could not be read",
                &request_id,
            )
        }
    }
}

fn parse_id(field: &str, text: &str) -> Result<i64, String> {
    text.strip_prefix(ID_PREFIX)
        .and_then(|digits| digits.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| format!("{field}: must be an activity ID ({ID_PREFIX}…)"))
}

fn parse_time(field: &str, text: &str) -> Result<i64, String> {
    text.parse::<i64>()
        .ok()
        .or_else(|| admin::parse_time(text))
        .ok_or_else(|| format!("{field}: must be an RFC 3339 time or Unix seconds"))
}

fn parse(raw: &str) -> Result<ActivityQuery, String> {
    let mut query = ActivityQuery::default();
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        if name != "type" {
            if seen.iter().any(|field| *field == name) {
                return Err(format!("{name}: given more than once"));
            }
            seen.push(name.to_string());
        }
        match name.as_ref() {
            "type" => query.activity_types.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|kind| !kind.is_empty())
                    .map(str::to_owned),
            ),
            "actor_id" => query.actor_id = Some(value.into_owned()),
            "resource_id" => query.resource_id = Some(value.into_owned()),
            "request_id" => query.request_id = Some(value.into_owned()),
            "created_after" => query.created_at_from = Some(parse_time("created_after", &value)?),
            "created_before" => query.created_at_until = Some(parse_time("created_before", &value)?),
            "after_id" => query.cursor = ActivityCursor::After(parse_id("after_id", &value)?),
            "before_id" => query.cursor = ActivityCursor::Before(parse_id("before_id", &value)?),
            "limit" => {
                query.limit = value
                    .parse::<u32>()
                    .ok()
                    .and_then(|limit| Limit::new(limit).ok())
                    .ok_or_else(|| format!("limit: must be 1 to {}", Limit::MAX))?;
            }
            other => return Err(format!("{other}: unknown query parameter")),
        }
    }
    if seen.iter().any(|field| field == "after_id") && seen.iter().any(|field| field == "before_id") {
        return Err("after_id, before_id: give at most one".to_owned());
    }
    Ok(query)
}

fn event_json(record: &ActivityRecord) -> Value {
    let activity = &record.activity;
    let mut event = Map::new();
    event.insert("id".to_owned(), Value::from(admin::activity_id(record.id)));
    event.insert("type".to_owned(), Value::from(activity.activity_type.as_str()));
    event.insert("created_at".to_owned(), Value::from(admin::time(activity.created_at)));
    event.insert(
        "organization_id".to_owned(),
        Value::from(activity.organization_id.as_str()),
    );
    event.insert("actor_id".to_owned(), json!(activity.actor_id));
    event.insert("resource_id".to_owned(), json!(activity.resource_id));
    event.insert("request_id".to_owned(), json!(activity.request_id));
    if let Value::Object(payload) = &activity.payload {
        for (key, value) in payload {
            event.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    Value::Object(event)
}
