//! Federation issuers: create, list, get, update, archive, and verify (a dry run of a configuration).
//!
//! Parts: [`IssuerCreate`], [`IssuerUpdate`] (the request bodies), [`view`] (the wire object), then
//! [`create`], [`list`], [`get`], [`update`], [`archive`], [`verify`].
//!
//! Checks: `name` is a [`Name`]; `issuer_url` passes the server's URL policy ([`check_url`]) and carries
//! no query or fragment, and is stored exactly as given (it must equal `iss` byte for byte); `jwks` is a
//! [`JwksSource`] (absent means `{type: discovery}`); `max_jwt_lifetime_seconds` is 1 to 176400 (default
//! 3600); `check_jti` defaults to true. An update clears `jwks_polling_disabled_at` and resets the poll
//! status, so polling resumes at once (an empty update `{}` is how an admin resumes paused polling).
//! An `issuer_url` change that makes the issuer a different shared issuer (GitHub Actions, GitLab, …) is
//! refused while live rules use it: their tenant pins were checked against the old URL. Archiving is
//! refused (409) while a live rule uses the issuer.

use keyless_core::id::IssuerId;
use keyless_core::issuer::{DEFAULT_MAX_JWT_LIFETIME_SECONDS, SharedIssuer};
use keyless_core::name::Name;
use keyless_store::audit::Audit;
use keyless_store::issuer::{IssuerPollStatus, IssuerRecord};
use keyless_store::rule::RuleFilter;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::service::admin::{
    AdminError, Ctx, ListParams, audit_fields, changes, missing, new_id, page_view, record, time,
};
use crate::service::jwks;
use crate::service::jwks::source::{JwksSource, UrlPolicy, check_url};
use crate::state::AppState;

/// The object's wire `type`.
pub const TYPE: &str = "federation_issuer";
/// The largest `max_jwt_lifetime_seconds`.
pub const MAX_JWT_LIFETIME_SECONDS: i64 = 176_400;
/// Google's tokens carry either `https://accounts.google.com` or this scheme-less `iss`; as `iss` must
/// equal `issuer_url` byte for byte, it is the one `issuer_url` accepted that is not a URL.
pub const SCHEMELESS_GOOGLE_ISSUER: &str = "accounts.google.com";
/// The longest `issuer_url` accepted.
pub const MAX_ISSUER_URL_LEN: usize = 2048;

/// `POST /v1/organizations/federation_issuers`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerCreate {
    /// `name`.
    pub name: String,
    /// `issuer_url`.
    pub issuer_url: String,
    /// `jwks`; absent means `{type: discovery}`.
    #[serde(default)]
    pub jwks: Option<Value>,
    /// `check_jti`; absent means true.
    #[serde(default)]
    pub check_jti: Option<bool>,
    /// `max_jwt_lifetime_seconds`; absent means 3600.
    #[serde(default)]
    pub max_jwt_lifetime_seconds: Option<i64>,
}

/// `POST /v1/organizations/federation_issuers/{id}`: every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerUpdate {
    /// `name`.
    #[serde(default)]
    pub name: Option<String>,
    /// `issuer_url`.
    #[serde(default)]
    pub issuer_url: Option<String>,
    /// `jwks`, replaced whole.
    #[serde(default)]
    pub jwks: Option<Value>,
    /// `check_jti`.
    #[serde(default)]
    pub check_jti: Option<bool>,
    /// `max_jwt_lifetime_seconds`.
    #[serde(default)]
    pub max_jwt_lifetime_seconds: Option<i64>,
}

/// `POST /v1/organizations/federation_issuers/verify`: an issuer configuration to dry-run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerVerify {
    /// `issuer_url`.
    pub issuer_url: String,
    /// `jwks`; absent means `{type: discovery}`.
    #[serde(default)]
    pub jwks: Option<Value>,
}

/// The wire object.
pub fn view(issuer: &IssuerRecord) -> Value {
    let mut view = Map::new();
    view.insert("id".to_owned(), Value::from(issuer.id.as_str()));
    view.insert("type".to_owned(), Value::from(TYPE));
    view.insert("name".to_owned(), Value::from(issuer.name.as_str()));
    view.insert("issuer_url".to_owned(), Value::from(issuer.issuer_url.as_str()));
    view.insert("jwks".to_owned(), issuer.jwks.clone());
    view.insert("check_jti".to_owned(), Value::from(issuer.check_jti));
    view.insert(
        "max_jwt_lifetime_seconds".to_owned(),
        Value::from(issuer.max_jwt_lifetime_seconds),
    );
    view.insert(
        "jwks_polling_disabled_at".to_owned(),
        json!(issuer.jwks_polling_disabled_at.map(time)),
    );
    let status = &issuer.poll_status;
    view.insert(
        "poll_status".to_owned(),
        json!({
            "consecutive_failures": status.consecutive_failures,
            "last_fetched_at": status.last_fetched_at.map(time),
            "next_poll_at": status.next_poll_at.map(time),
            "last_error": status.last_error,
        }),
    );
    audit_fields(&mut view, &issuer.audit);
    Value::Object(view)
}

fn parse_name(text: &str) -> Result<Name, AdminError> {
    Name::parse(text).map_err(|error| AdminError::Invalid(format!("name: {error}")))
}

/// Checks an `issuer_url` against the URL policy; returns it as given. The one exception to "a URL" is
/// [`SCHEMELESS_GOOGLE_ISSUER`], which Google's tokens may carry as their `iss`.
pub fn check_issuer_url(text: &str, policy: UrlPolicy) -> Result<String, AdminError> {
    let invalid = |message: &str| AdminError::Invalid(format!("issuer_url: {message}"));
    if text.len() > MAX_ISSUER_URL_LEN {
        return Err(invalid(&format!("must be at most {MAX_ISSUER_URL_LEN} bytes")));
    }
    if text == SCHEMELESS_GOOGLE_ISSUER {
        return Ok(text.to_owned());
    }
    let url = check_url(text, policy).map_err(|message| invalid(&message))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("url must not carry a query or a fragment"));
    }
    Ok(text.to_owned())
}

/// Refuses discovery for the scheme-less Google issuer: it names no place to discover from, and
/// Google's discovery document names `https://accounts.google.com`, which such tokens do not carry.
fn check_keys_reachable(issuer_url: &str, jwks: &Value) -> Result<(), AdminError> {
    if issuer_url == SCHEMELESS_GOOGLE_ISSUER && jwks.get("type").and_then(Value::as_str) == Some("discovery") {
        return Err(AdminError::Invalid(format!(
            "jwks: the issuer {SCHEMELESS_GOOGLE_ISSUER} has no discovery document; use \
             {{\"type\": \"explicit_url\", \"url\": \"https://www.googleapis.com/oauth2/v3/certs\"}}"
        )));
    }
    Ok(())
}

fn parse_jwks(value: &Value, policy: UrlPolicy) -> Result<Value, AdminError> {
    JwksSource::parse(value, policy)
        .map(|source| source.to_json())
        .map_err(|error| AdminError::Invalid(error.to_string()))
}

fn check_max_lifetime(seconds: i64) -> Result<i64, AdminError> {
    if (1..=MAX_JWT_LIFETIME_SECONDS).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(AdminError::Invalid(format!(
            "max_jwt_lifetime_seconds: must be between 1 and {MAX_JWT_LIFETIME_SECONDS}"
        )))
    }
}

/// Parses a path or body `issuer_id`.
pub fn parse_id(field: &str, text: &str) -> Result<IssuerId, AdminError> {
    IssuerId::parse(text).map_err(|error| AdminError::Invalid(format!("{field}: {error}")))
}

fn not_found(id: &IssuerId) -> String {
    format!("no such federation issuer: {id}")
}

/// Creates an issuer.
pub async fn create(ctx: &Ctx<'_>, body: IssuerCreate) -> Result<Value, AdminError> {
    let policy = ctx.state.url_policy;
    let name = parse_name(&body.name)?;
    let issuer_url = check_issuer_url(&body.issuer_url, policy)?;
    let jwks = parse_jwks(&body.jwks.unwrap_or_else(|| json!({"type": "discovery"})), policy)?;
    check_keys_reachable(&issuer_url, &jwks)?;
    let max_jwt_lifetime_seconds = check_max_lifetime(
        body.max_jwt_lifetime_seconds
            .unwrap_or(DEFAULT_MAX_JWT_LIFETIME_SECONDS),
    )?;
    let id = IssuerId::parse(&new_id(IssuerId::PREFIX)?).map_err(|error| AdminError::Internal(error.to_string()))?;
    let issuer = IssuerRecord {
        id,
        organization_id: ctx.state.organization_id.clone(),
        name,
        issuer_url,
        jwks,
        check_jti: body.check_jti.unwrap_or(true),
        max_jwt_lifetime_seconds,
        jwks_polling_disabled_at: None,
        poll_status: IssuerPollStatus::default(),
        audit: Audit::created(ctx.now, &ctx.actor.id),
    };
    let view = view(&issuer);
    let mut tx = ctx.state.store.begin().await?;
    tx.issuer_create(&issuer).await?;
    record(
        &mut tx,
        ctx,
        "platform_federation_issuer_created",
        issuer.id.as_str(),
        json!({ "event_data": view }),
    )
    .await?;
    tx.commit().await?;
    Ok(view)
}

/// Dry-runs discovery and the JWKS fetch for a configuration, through the same URL policy, SSRF guard
/// and limits as the key cache, and reports the keys found and the problems; creates and caches nothing.
/// A configuration that fails the write-time checks is refused (400) like a create.
pub async fn verify(state: &AppState, body: IssuerVerify, now: i64) -> Result<Value, AdminError> {
    let issuer_url = check_issuer_url(&body.issuer_url, state.url_policy)?;
    let jwks = parse_jwks(
        &body.jwks.unwrap_or_else(|| json!({"type": "discovery"})),
        state.url_policy,
    )?;
    check_keys_reachable(&issuer_url, &jwks)?;
    let source = JwksSource::parse(&jwks, state.url_policy).map_err(|error| AdminError::Invalid(error.to_string()))?;
    let settings = state.issuer_keys.settings().fetch;
    let report = jwks::verify::verify(&issuer_url, &source, state.url_policy, settings, now).await;
    serde_json::to_value(report).map_err(|error| AdminError::Internal(error.to_string()))
}

/// A page of issuers.
pub async fn list(state: &AppState, params: &ListParams) -> Result<Value, AdminError> {
    let page = state.store.issuer_list(&state.organization_id, &params.list).await?;
    Ok(page_view(&page, view))
}

/// One issuer.
pub async fn get(state: &AppState, id: &str) -> Result<Value, AdminError> {
    let id = parse_id("id", id)?;
    let issuer = state
        .store
        .issuer_get(&state.organization_id, &id)
        .await
        .map_err(missing(not_found(&id)))?;
    Ok(view(&issuer))
}

/// Updates an issuer (partially).
pub async fn update(ctx: &Ctx<'_>, id: &str, body: IssuerUpdate) -> Result<Value, AdminError> {
    let policy = ctx.state.url_policy;
    let id = parse_id("id", id)?;
    let name = body.name.as_deref().map(parse_name).transpose()?;
    let issuer_url = body
        .issuer_url
        .as_deref()
        .map(|text| check_issuer_url(text, policy))
        .transpose()?;
    let jwks = body.jwks.as_ref().map(|value| parse_jwks(value, policy)).transpose()?;
    let max_jwt_lifetime_seconds = body.max_jwt_lifetime_seconds.map(check_max_lifetime).transpose()?;

    let organization_id = &ctx.state.organization_id;
    let mut tx = ctx.state.store.begin().await?;
    let before = tx
        .issuer_get(organization_id, &id)
        .await
        .map_err(missing(not_found(&id)))?;
    if before.audit.is_archived() {
        return Err(AdminError::Invalid(format!(
            "id: federation issuer {id} is archived and cannot be updated"
        )));
    }
    let mut after = before.clone();
    if let Some(name) = name {
        after.name = name;
    }
    if let Some(issuer_url) = issuer_url {
        after.issuer_url = issuer_url;
    }
    if let Some(jwks) = jwks {
        after.jwks = jwks;
    }
    if let Some(check_jti) = body.check_jti {
        after.check_jti = check_jti;
    }
    if let Some(seconds) = max_jwt_lifetime_seconds {
        after.max_jwt_lifetime_seconds = seconds;
    }
    check_keys_reachable(&after.issuer_url, &after.jwks)?;
    let new_shared = SharedIssuer::from_issuer_url(&after.issuer_url);
    if new_shared.is_some() && new_shared != SharedIssuer::from_issuer_url(&before.issuer_url) {
        let filter = RuleFilter {
            issuer_id: Some(id.clone()),
            service_account_id: None,
        };
        let n_rules = tx.rule_count_live(organization_id, &filter).await?;
        if n_rules > 0 {
            return Err(AdminError::Invalid(format!(
                "issuer_url: {n_rules} live federation rule(s) use this issuer and were checked against its \
                 current URL; archive them before making it a shared issuer"
            )));
        }
    }
    let before_view = view(&before);
    if before.jwks_polling_disabled_at.is_none() && changes(&before_view, &view(&after)).is_empty() {
        return Ok(before_view);
    }
    // Any real update resumes polling at once: the poll status starts over (the last success is kept).
    after.jwks_polling_disabled_at = None;
    after.poll_status = IssuerPollStatus {
        last_fetched_at: before.poll_status.last_fetched_at,
        ..IssuerPollStatus::default()
    };
    after.audit.touch(ctx.now, &ctx.actor.id);
    let after_view = view(&after);
    let changed: Vec<Value> = changes(&before_view, &after_view)
        .into_iter()
        .filter(|change| change.get("type").and_then(Value::as_str) != Some("poll_status"))
        .collect();
    tx.issuer_update(&after).await?;
    tx.issuer_poll_status_reset(organization_id, &id).await?;
    record(
        &mut tx,
        ctx,
        "platform_federation_issuer_updated",
        id.as_str(),
        json!({ "event_data": after_view, "changes": changed }),
    )
    .await?;
    tx.commit().await?;
    ctx.state.issuer_keys.forget(&id);
    Ok(after_view)
}

/// Archives an issuer (idempotent); refused while a live rule uses it.
pub async fn archive(ctx: &Ctx<'_>, id: &str) -> Result<Value, AdminError> {
    let id = parse_id("id", id)?;
    let organization_id = &ctx.state.organization_id;
    let mut tx = ctx.state.store.begin().await?;
    let mut issuer = tx
        .issuer_get(organization_id, &id)
        .await
        .map_err(missing(not_found(&id)))?;
    if issuer.audit.is_archived() {
        return Ok(view(&issuer));
    }
    let filter = RuleFilter {
        issuer_id: Some(id.clone()),
        service_account_id: None,
    };
    let n_rules = tx.rule_count_live(organization_id, &filter).await?;
    if n_rules > 0 {
        return Err(AdminError::Conflict(format!(
            "federation issuer {id} is used by {n_rules} live federation rule(s); archive them first"
        )));
    }
    tx.issuer_archive(organization_id, &id, ctx.now, &ctx.actor.id).await?;
    issuer.audit.archived_at = Some(ctx.now);
    issuer.audit.archived_by_actor_id = Some(ctx.actor.id.clone());
    let view = view(&issuer);
    record(
        &mut tx,
        ctx,
        "platform_federation_issuer_archived",
        id.as_str(),
        json!({ "event_data": view }),
    )
    .await?;
    tx.commit().await?;
    ctx.state.issuer_keys.forget(&id);
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(issuer_url: &str, allow_insecure: bool, expect: Result<&str, &str>) {
        let res = check_issuer_url(issuer_url, UrlPolicy { allow_insecure }).map_err(|error| error.to_string());
        assert_eq!(
            res.as_deref(),
            expect.map_err(|message| message.to_owned()).as_deref(),
            "{issuer_url}"
        );
    }

    #[test]
    fn issuer_urls_follow_the_url_policy_and_are_kept_as_given() {
        let github = "https://token.actions.githubusercontent.com";
        check(github, false, Ok(github));
        check(
            "https://accounts.google.com/",
            false,
            Ok("https://accounts.google.com/"),
        );
        check(
            "http://issuer.example.com",
            false,
            Err("issuer_url: url must use https scheme"),
        );
        check("http://127.0.0.1:8080", true, Ok("http://127.0.0.1:8080"));
        check(
            "https://127.0.0.1",
            false,
            Err("issuer_url: url must use a host name, not an IP address"),
        );
        check(
            "https://issuer.example.com:8443",
            false,
            Err("issuer_url: url must use port 443"),
        );
        check(
            "https://localhost",
            false,
            Err("issuer_url: url must name a public host"),
        );
        check(
            "https://issuer.example.com/?tenant=1",
            false,
            Err("issuer_url: url must not carry a query or a fragment"),
        );
        check(
            "not a url",
            false,
            Err("issuer_url: not a valid URL (relative URL without a base)"),
        );
        check("accounts.google.com", false, Ok("accounts.google.com"));
        check(
            "accounts.google.com.evil.example",
            false,
            Err("issuer_url: not a valid URL (relative URL without a base)"),
        );
    }

    #[test]
    fn the_schemeless_google_issuer_needs_keys_it_can_reach() {
        let discovery = json!({"type": "discovery"});
        let explicit = json!({"type": "explicit_url", "url": "https://www.googleapis.com/oauth2/v3/certs"});
        assert!(check_keys_reachable("accounts.google.com", &discovery).is_err());
        assert!(check_keys_reachable("accounts.google.com", &explicit).is_ok());
        assert!(check_keys_reachable("https://accounts.google.com", &discovery).is_ok());
    }

    #[test]
    fn jwks_blocks_name_their_field() {
        let strict = UrlPolicy { allow_insecure: false };
        let refused = |value: Value| parse_jwks(&value, strict).map_err(|error| error.to_string());
        assert_eq!(
            refused(json!({"type": "explicit_url", "url": "http://issuer.example.com/jwks"})),
            Err("jwks.url: url must use https scheme".to_owned())
        );
        assert_eq!(
            refused(json!({"type": "discovery", "discovery_base": "https://10.0.0.1"})),
            Err("jwks.discovery_base: url must use a host name, not an IP address".to_owned())
        );
        assert_eq!(
            refused(json!({"type": "discovery"})),
            Ok(json!({"type": "discovery", "discovery_base": null, "ca_cert_pem": null}))
        );
    }

    #[test]
    fn max_jwt_lifetimes() {
        for (seconds, valid) in [(0, false), (1, true), (3600, true), (176_400, true), (176_401, false)] {
            assert_eq!(check_max_lifetime(seconds).is_ok(), valid, "{seconds}");
        }
    }
}
