//! The Admin API's logic: validation, store writes and their activity events, one module per object.
//!
//! Parts, in reading order: [`Actor`] and [`Ctx`] (who acts, in which request, at what time),
//! [`AdminError`] (what the HTTP layer maps to its `ApiError`), [`ListParams`], the wire views
//! (`audit_fields`, [`time`]) and the activity helpers; then [`workspaces`], [`issuers`],
//! [`service_accounts`], [`rules`] and [`api_keys`].
//!
//! Every change runs in one store `Tx` with its activity event (`platform_<object>_<verb>`; the actor is
//! the caller, the request ID is the request's). An update's event lists what changed as
//! `changes: [{type: <field>, previous_value, current_value}]` and carries the object after the change
//! in `event_data`; an update that changes nothing writes nothing. Archiving is idempotent: a second
//! archive keeps the first `archived_at` and writes no event.
//!
//! Human-only actions: the reference API reserves creating or promoting an `admin` service account and
//! writing rules with a scope outside `workspace:` to an interactive (human) credential. keyless has no
//! human login yet, so only the bootstrap admin token (a token bound to no service account) counts as
//! one ([`Actor::interactive`]); tokens minted for service accounts get 403 for these.
//!
//! Must not: know HTTP types, read the clock (`now` is in [`Ctx`]), or hold a transaction across slow
//! work (CEL compilation runs before the transaction begins).

pub mod api_keys;
pub mod issuers;
pub mod replay;
pub mod rules;
pub mod service_accounts;
pub mod simulate;
pub mod usage;
pub mod workspaces;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use keyless_store::activity::Activity;
use keyless_store::audit::Audit;
use keyless_store::{ListQuery, Page, StoreError, Tx};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use crate::service::token;
use crate::state::AppState;

/// Who makes an Admin API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The ID recorded in `*_by_actor_id` and in activity events (`svac_…`, or `bootstrap`).
    pub id: String,
    /// Whether the credential counts as a human's (today: the bootstrap admin token), which the
    /// human-only actions need.
    pub interactive: bool,
}

/// One Admin API call: the state, the caller, the request and its time.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// The server's state.
    pub state: &'a AppState,
    /// The caller.
    pub actor: &'a Actor,
    /// The request's ID, recorded in activity events.
    pub request_id: &'a str,
    /// The request's time (Unix seconds).
    pub now: i64,
}

/// Why an Admin API call is refused. Every message is caller-safe; 400 messages start with the field.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The request is malformed or refused as written (400).
    #[error("{0}")]
    Invalid(String),
    /// Refused as written, with a stable code (400 with `error.code`; a rule lint's refusal).
    #[error("{message}")]
    Refused {
        /// The stable code, e.g. `tenant_not_pinned`.
        code: &'static str,
        /// The caller-safe message, starting with the field.
        message: String,
    },
    /// The caller may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// An object named by the request does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// The store failed (500; logged, never shown).
    #[error("store: {0}")]
    Store(#[source] StoreError),
    /// Something else failed inside the server (500; logged, never shown).
    #[error("internal: {0}")]
    Internal(String),
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { what: "name" } => Self::Conflict("name: already in use".to_owned()),
            other => Self::Store(other),
        }
    }
}

/// Maps a store error where `NotFound` means that `what` does not exist.
pub(crate) fn missing(what: impl Into<String>) -> impl FnOnce(StoreError) -> AdminError {
    let what = what.into();
    move |error| match error {
        StoreError::NotFound => AdminError::NotFound(what),
        other => AdminError::from(other),
    }
}

/// The longest `description` accepted.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;

/// Checks a `description`.
pub(crate) fn check_description(description: Option<&str>) -> Result<(), AdminError> {
    match description {
        Some(text) if text.chars().count() > MAX_DESCRIPTION_CHARS => Err(AdminError::Invalid(format!(
            "description: must be at most {MAX_DESCRIPTION_CHARS} characters"
        ))),
        _ => Ok(()),
    }
}

/// A list request: the page and, for rules, the issuer filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListParams {
    /// Page size, cursor and whether archived objects are listed.
    pub list: ListQuery,
    /// `issuer_id` (federation rules only).
    pub issuer_id: Option<String>,
    /// `workspace_id` (API keys only).
    pub workspace_id: Option<String>,
}

/// A new ID: `prefix` followed by 32 random hexadecimal digits (128 bits).
pub(crate) fn new_id(prefix: &str) -> Result<String, AdminError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AdminError::Internal("the system random generator failed".to_owned()))?;
    Ok(format!("{prefix}{}", token::hex(&bytes)))
}

/// The prefix of activity IDs on the wire.
pub const ACTIVITY_ID_PREFIX: &str = "actv_";

/// An activity event's ID as the wire shows it (`actv_42`).
pub fn activity_id(id: i64) -> String {
    format!("{ACTIVITY_ID_PREFIX}{id}")
}

/// A Unix time as an RFC 3339 UTC string (`2026-05-01T12:00:00Z`), as every time of the Admin API.
pub fn time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let seconds = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

/// An RFC 3339 time (`2026-05-01T12:00:00Z`, `…T12:00:00.5+02:00`) as Unix seconds (fractions
/// dropped); `None` for anything else.
pub fn parse_time(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| number_in(text, range);
    if bytes.len() < 20 || bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
        return None;
    }
    if !matches!(bytes.get(10), Some(b'T' | b't' | b' '))
        || bytes.get(13) != Some(&b':')
        || bytes.get(16) != Some(&b':')
    {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let mut rest = text.get(19..)?;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = fraction.get(digits..)?;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes().get(3) != Some(&b':') {
                return None;
            }
            let (hours, minutes) = (number_in(rest, 1..3)?, number_in(rest, 4..6)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let shifted_year = if month <= 2 { year - 1 } else { year };
    let era = shifted_year.div_euclid(400);
    let yoe = shifted_year - era * 400;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset)
}

fn number_in(text: &str, range: std::ops::Range<usize>) -> Option<i64> {
    let digits = text.get(range)?;
    digits
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| digits.parse().ok())
        .flatten()
}

fn optional_time(unix: Option<i64>) -> Value {
    unix.map_or(Value::Null, |at| Value::from(time(at)))
}

/// Adds the six audit fields of an object view.
pub(crate) fn audit_fields(view: &mut Map<String, Value>, audit: &Audit) {
    view.insert("created_at".to_owned(), Value::from(time(audit.created_at)));
    view.insert(
        "created_by_actor_id".to_owned(),
        Value::from(audit.created_by_actor_id.as_str()),
    );
    view.insert("updated_at".to_owned(), Value::from(time(audit.updated_at)));
    view.insert(
        "updated_by_actor_id".to_owned(),
        Value::from(audit.updated_by_actor_id.as_str()),
    );
    view.insert("archived_at".to_owned(), optional_time(audit.archived_at));
    view.insert("archived_by_actor_id".to_owned(), json!(audit.archived_by_actor_id));
}

/// The audit fields: never listed as changes of their own.
const AUDIT_FIELDS: [&str; 6] = [
    "created_at",
    "created_by_actor_id",
    "updated_at",
    "updated_by_actor_id",
    "archived_at",
    "archived_by_actor_id",
];

/// The fields that differ between two views of one object, as `{type, previous_value, current_value}`,
/// by field name (audit fields excluded).
pub(crate) fn changes(before: &Value, after: &Value) -> Vec<Value> {
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
        return Vec::new();
    };
    after
        .iter()
        .filter(|(field, _)| !AUDIT_FIELDS.contains(&field.as_str()))
        .filter_map(|(field, current)| {
            let previous = before.get(field).unwrap_or(&Value::Null);
            (previous != current)
                .then(|| json!({ "type": field, "previous_value": previous, "current_value": current }))
        })
        .collect()
}

/// Appends the activity event `activity_type` about `resource_id` to `tx`.
pub(crate) async fn record(
    tx: &mut Tx,
    ctx: &Ctx<'_>,
    activity_type: &str,
    resource_id: &str,
    payload: Value,
) -> Result<(), StoreError> {
    // Every change records its event here, so this is where the exchange's cache learns of it.
    tx.config_generation_bump(&ctx.state.organization_id).await?;
    tx.activity_append(&Activity {
        organization_id: ctx.state.organization_id.clone(),
        activity_type: activity_type.to_owned(),
        actor_id: Some(ctx.actor.id.clone()),
        resource_id: Some(resource_id.to_owned()),
        request_id: Some(ctx.request_id.to_owned()),
        created_at: ctx.now,
        payload,
    })
    .await
    .map(drop)
}

/// A list response: `{data, next_page}`.
pub(crate) fn page_view<T>(page: &Page<T>, view: impl Fn(&T) -> Value) -> Value {
    json!({
        "data": page.items.iter().map(view).collect::<Vec<_>>(),
        "next_page": page.next_cursor.as_ref().map(ToString::to_string),
    })
}

/// For partial updates: a field that may be absent (`None`), `null` (`Some(None)`) or a value.
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_time(unix: i64, expect: &str) {
        assert_eq!(time(unix), expect, "{unix}");
    }

    #[test]
    fn times_are_rfc3339_utc() {
        check_time(0, "1970-01-01T00:00:00Z");
        check_time(951_782_400, "2000-02-29T00:00:00Z");
        check_time(1_700_000_000, "2023-11-14T22:13:20Z");
        check_time(4_102_444_799, "2099-12-31T23:59:59Z");
        check_time(-1, "1969-12-31T23:59:59Z");
    }

    #[test]
    fn rfc3339_parses_back_and_refuses_the_malformed() {
        for unix in [0, 951_782_400, 1_700_000_000, 4_102_444_799, -1] {
            assert_eq!(parse_time(&time(unix)), Some(unix), "{unix}");
        }
        // RFC 3339 section 5.8's examples.
        assert_eq!(parse_time("1985-04-12T23:20:50.52Z"), Some(482_196_050));
        assert_eq!(parse_time("1996-12-19T16:39:57-08:00"), Some(851_042_397));
        assert_eq!(parse_time("1990-12-31T23:59:60Z"), Some(662_687_999));
        for bad in [
            "",
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01 00:00:00",
            "2026-01-01T00:00:00+0100",
            "2026-01-01T00:00:00.Z",
            "+026-01-01T00:00:00Z",
            "1700000000",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn changes_list_differing_fields_only() {
        let before = json!({"name": "a", "description": null, "updated_at": "x", "n": 1});
        let after = json!({"name": "a", "description": "d", "updated_at": "y", "n": 2});
        assert_eq!(
            changes(&before, &after),
            vec![
                json!({"type": "description", "previous_value": null, "current_value": "d"}),
                json!({"type": "n", "previous_value": 1, "current_value": 2}),
            ]
        );
    }
}
