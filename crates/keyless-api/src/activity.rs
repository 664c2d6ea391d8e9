//! The activity feed: `GET /v1/organizations/activities`, newest first.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One page of the feed: `{data, has_more, first_id, last_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityFeed {
    /// The events, newest first.
    pub data: Vec<Activity>,
    /// Whether more events follow in the listing's direction (older ones, or with `before_id` newer
    /// ones).
    pub has_more: bool,
    /// The ID of the first (newest) event of the page.
    pub first_id: Option<String>,
    /// The ID of the last (oldest) event of the page.
    pub last_id: Option<String>,
}

/// One activity event: the common fields typed, the event's own payload (`event_data`, `changes`,
/// `status`, …) kept whole in [`Activity::payload`], so no field is lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    /// `actv_…`.
    pub id: String,
    /// The activity type (`platform_service_account_created`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened (RFC 3339).
    pub created_at: String,
    /// The organization.
    pub organization_id: String,
    /// Who did it.
    pub actor_id: Option<String>,
    /// The object it is about.
    pub resource_id: Option<String>,
    /// The request that caused it.
    pub request_id: Option<String>,
    /// Every other member, as sent.
    #[serde(flatten)]
    pub payload: Map<String, Value>,
}

impl Activity {
    /// `event_data`: the object as created, changed or archived, when the event has one.
    pub fn event_data(&self) -> Option<&Value> {
        self.payload.get("event_data")
    }

    /// `changes`: `[{type, previous_value, current_value}]` of an update event.
    pub fn changes(&self) -> Option<&Vec<Value>> {
        self.payload.get("changes").and_then(Value::as_array)
    }
}
