//! Workspace API keys: create (the key is shown once), list, get, update (name, active/inactive),
//! archive (revoke, permanent).
//!
//! Parts: [`ApiKeyCreate`], [`ApiKeyUpdate`] (the request bodies), [`view`] (the wire object), then
//! [`create`], [`list`], [`get`], [`update`], [`archive`].
//!
//! A key is minted here (`keyless_ak_…`, see `service::token`) and only its SHA-256 is stored, with a
//! `partial_key_hint` to recognise it by. It is bound to one live workspace (`default` names the default
//! one) and holds `oauth_scope` (default `workspace:developer`): scopes of the workspace only — never an
//! `org:` scope, which belongs to service accounts — and only scopes this server knows (the built-in
//! workspace scopes and those named by the operator's route table), so a typo is refused, not silently
//! useless. `status` is derived: `archived`, else `inactive` (disabled by an update), else `expired`
//! (past `expires_at`), else `active`. Every change bumps the configuration generation, so a credential
//! check after it sees it (see `service::authorize`).

use keyless_core::id::{ApiKeyId, WorkspaceId};
use keyless_core::name::Name;
use keyless_core::scope::{ScopeSet, WORKSPACE_DEVELOPER, WORKSPACE_INFERENCE};
use keyless_store::api_key::ApiKeyRecord;
use keyless_store::audit::Audit;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::service::admin::service_accounts::{live_workspace, parse_workspace};
use crate::service::admin::{
    AdminError, Ctx, ListParams, audit_fields, changes, missing, new_id, page_view, parse_time, record, time,
};
use crate::service::token;
use crate::state::AppState;

/// The object's wire `type`.
pub const TYPE: &str = "api_key";

/// `POST /v1/organizations/api_keys`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyCreate {
    /// `name`.
    pub name: String,
    /// `workspace_id` (default: the default workspace).
    #[serde(default)]
    pub workspace_id: Option<String>,
    /// `oauth_scope` (default `workspace:developer`).
    #[serde(default)]
    pub oauth_scope: Option<String>,
    /// `expires_at` (RFC 3339; default: never).
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// `POST /v1/organizations/api_keys/{id}`: every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyUpdate {
    /// `name`.
    #[serde(default)]
    pub name: Option<String>,
    /// `status`: `active` or `inactive`.
    #[serde(default)]
    pub status: Option<String>,
}

fn parse_name(text: &str) -> Result<Name, AdminError> {
    Name::parse(text).map_err(|error| AdminError::Invalid(format!("name: {error}")))
}

fn parse_id(text: &str) -> Result<ApiKeyId, AdminError> {
    ApiKeyId::parse(text).map_err(|error| AdminError::Invalid(format!("id: {error}")))
}

fn not_found(id: &ApiKeyId) -> String {
    format!("no such API key: {id}")
}

/// The scopes an API key may hold: workspace scopes this server knows.
fn parse_scope(state: &AppState, text: &str) -> Result<ScopeSet, AdminError> {
    let scopes = ScopeSet::parse(text).map_err(|error| AdminError::Invalid(format!("oauth_scope: {error}")))?;
    if scopes.is_empty() {
        return Err(AdminError::Invalid(
            "oauth_scope: must name at least one scope".to_owned(),
        ));
    }
    let declared = state.authorizer.routes().scopes();
    for scope in scopes.iter() {
        if scope.as_str().starts_with("org:") || scope.as_str().starts_with("oauth:") {
            return Err(AdminError::Invalid(format!(
                "oauth_scope: `{scope}` is an organization scope; an API key holds workspace scopes only \
                 (use a service account and a federation rule)"
            )));
        }
        let known =
            [WORKSPACE_DEVELOPER, WORKSPACE_INFERENCE].contains(&scope.as_str()) || declared.contains(scope.as_str());
        if !known {
            return Err(AdminError::Invalid(format!(
                "oauth_scope: `{scope}` is not a scope of this server (known: {WORKSPACE_DEVELOPER}, \
                 {WORKSPACE_INFERENCE} and those of its [authorize] route table: {declared})"
            )));
        }
    }
    Ok(scopes)
}

/// The key's status at `now`.
fn status(key: &ApiKeyRecord, now: i64) -> &'static str {
    if key.audit.is_archived() {
        "archived"
    } else if key.disabled {
        "inactive"
    } else if key.expires_at.is_some_and(|at| now >= at) {
        "expired"
    } else {
        "active"
    }
}

/// The wire object at `now`.
pub fn view(key: &ApiKeyRecord, now: i64) -> Value {
    let mut view = Map::new();
    view.insert("id".to_owned(), Value::from(key.id.as_str()));
    view.insert("type".to_owned(), Value::from(TYPE));
    view.insert("name".to_owned(), Value::from(key.name.as_str()));
    view.insert("workspace_id".to_owned(), Value::from(key.workspace_id.as_str()));
    view.insert("oauth_scope".to_owned(), Value::from(key.oauth_scope.to_string()));
    view.insert("status".to_owned(), Value::from(status(key, now)));
    view.insert(
        "partial_key_hint".to_owned(),
        Value::from(key.partial_key_hint.as_str()),
    );
    view.insert("expires_at".to_owned(), json!(key.expires_at.map(time)));
    view.insert("last_used_at".to_owned(), json!(key.last_used_at.map(time)));
    audit_fields(&mut view, &key.audit);
    Value::Object(view)
}

/// Creates a key; the answer is the object plus `key`, the secret, shown this once.
pub async fn create(ctx: &Ctx<'_>, body: ApiKeyCreate) -> Result<Value, AdminError> {
    let name = parse_name(&body.name)?;
    let workspace_id: WorkspaceId = match &body.workspace_id {
        Some(text) => parse_workspace(ctx.state, "workspace_id", text)?,
        None => ctx.state.default_workspace_id.clone(),
    };
    let oauth_scope = parse_scope(ctx.state, body.oauth_scope.as_deref().unwrap_or(WORKSPACE_DEVELOPER))?;
    let expires_at = match &body.expires_at {
        None => None,
        Some(text) => {
            let at = parse_time(text).ok_or_else(|| {
                AdminError::Invalid("expires_at: must be an RFC 3339 time such as 2026-12-31T00:00:00Z".to_owned())
            })?;
            if at <= ctx.now {
                return Err(AdminError::Invalid("expires_at: must be in the future".to_owned()));
            }
            Some(at)
        }
    };
    let id = ApiKeyId::parse(&new_id(ApiKeyId::PREFIX)?).map_err(|error| AdminError::Internal(error.to_string()))?;
    let minted =
        token::mint_api_key().map_err(|_| AdminError::Internal("the system random generator failed".to_owned()))?;
    let key = ApiKeyRecord {
        id,
        organization_id: ctx.state.organization_id.clone(),
        workspace_id,
        name,
        hash: minted.key,
        partial_key_hint: token::partial_hint(minted.secret.expose_secret()),
        oauth_scope,
        disabled: false,
        expires_at,
        last_used_at: None,
        audit: Audit::created(ctx.now, &ctx.actor.id),
    };
    let view = view(&key, ctx.now);
    let mut tx = ctx.state.store.begin().await?;
    live_workspace(&mut tx, ctx.state, "workspace_id", &key.workspace_id).await?;
    tx.api_key_create(&key).await?;
    record(
        &mut tx,
        ctx,
        "platform_api_key_created",
        key.id.as_str(),
        json!({ "event_data": view }),
    )
    .await?;
    tx.commit().await?;
    let mut created = view;
    if let Some(object) = created.as_object_mut() {
        object.insert("key".to_owned(), Value::from(minted.secret.expose_secret()));
    }
    Ok(created)
}

/// A page of keys (of one workspace when `workspace_id` is given).
pub async fn list(state: &AppState, params: &ListParams, now: i64) -> Result<Value, AdminError> {
    let workspace_id = params
        .workspace_id
        .as_deref()
        .map(|text| parse_workspace(state, "workspace_id", text))
        .transpose()?;
    let page = state
        .store
        .api_key_list(&state.organization_id, workspace_id.as_ref(), &params.list)
        .await?;
    Ok(page_view(&page, |key| view(key, now)))
}

/// One key.
pub async fn get(state: &AppState, id: &str, now: i64) -> Result<Value, AdminError> {
    let id = parse_id(id)?;
    let key = state
        .store
        .api_key_get(&state.organization_id, &id)
        .await
        .map_err(missing(not_found(&id)))?;
    Ok(view(&key, now))
}

/// Updates a key (partially): its `name`, and `status` `active` or `inactive`.
pub async fn update(ctx: &Ctx<'_>, id: &str, body: ApiKeyUpdate) -> Result<Value, AdminError> {
    let id = parse_id(id)?;
    let name = body.name.as_deref().map(parse_name).transpose()?;
    let disabled = match body.status.as_deref() {
        None => None,
        Some("active") => Some(false),
        Some("inactive") => Some(true),
        Some(_) => {
            return Err(AdminError::Invalid(
                "status: must be `active` or `inactive` (archive a key to revoke it for good)".to_owned(),
            ));
        }
    };
    let mut tx = ctx.state.store.begin().await?;
    let before = tx
        .api_key_get(&ctx.state.organization_id, &id)
        .await
        .map_err(missing(not_found(&id)))?;
    if before.audit.is_archived() {
        return Err(AdminError::Invalid(format!(
            "id: API key {id} is archived and cannot be updated"
        )));
    }
    let mut after = before.clone();
    if let Some(name) = name {
        after.name = name;
    }
    if let Some(disabled) = disabled {
        after.disabled = disabled;
    }
    let before_view = view(&before, ctx.now);
    let changed = changes(&before_view, &view(&after, ctx.now));
    if changed.is_empty() {
        return Ok(before_view);
    }
    after.audit.touch(ctx.now, &ctx.actor.id);
    let after_view = view(&after, ctx.now);
    tx.api_key_update(&after).await?;
    record(
        &mut tx,
        ctx,
        "platform_api_key_updated",
        id.as_str(),
        json!({ "changes": changed, "event_data": after_view }),
    )
    .await?;
    tx.commit().await?;
    Ok(after_view)
}

/// Archives (revokes) a key, for good; idempotent.
pub async fn archive(ctx: &Ctx<'_>, id: &str) -> Result<Value, AdminError> {
    let id = parse_id(id)?;
    let organization_id = &ctx.state.organization_id;
    let mut tx = ctx.state.store.begin().await?;
    let archived_now = tx
        .api_key_archive(organization_id, &id, ctx.now, &ctx.actor.id)
        .await
        .map_err(missing(not_found(&id)))?;
    let key = tx
        .api_key_get(organization_id, &id)
        .await
        .map_err(missing(not_found(&id)))?;
    let view = view(&key, ctx.now);
    if archived_now {
        record(
            &mut tx,
            ctx,
            "platform_api_key_archived",
            id.as_str(),
            json!({ "event_data": view }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(view)
}
