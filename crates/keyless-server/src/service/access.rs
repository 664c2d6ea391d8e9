//! What a presented access token is, and ending it: introspection (RFC 7662) and revocation (RFC 7009).
//!
//! Parts: [`introspect`], [`revoke`].
//!
//! A token is looked up by its SHA-256 only; a string that is not shaped like a keyless token (prefix,
//! length, checksum) is never looked up. Introspection of an unknown, expired, revoked or foreign token is
//! `{"active": false}` and nothing more (RFC 7662 §2.2). Revocation answers the same whether or not the
//! token existed (RFC 7009 §2.2) and is idempotent; the first revocation is an activity event
//! (`platform_access_token_revoked`) in the same transaction.

use keyless_store::StoreError;
use keyless_store::access_token::AccessTokenRecord;
use keyless_store::activity::Activity;
use serde_json::{Value, json};

use crate::service::token;
use crate::state::AppState;

/// The activity type of a revocation.
pub const REVOKED: &str = "platform_access_token_revoked";

/// The active token `text` of this organization, if it is one.
pub async fn active_token(state: &AppState, text: &str, now: i64) -> Result<Option<AccessTokenRecord>, StoreError> {
    if !token::looks_valid(text) {
        return Ok(None);
    }
    match state.store.access_token_get(&token::key(text)).await {
        Ok(record) if record.is_active(now) && record.organization_id == state.organization_id => Ok(Some(record)),
        Ok(_) | Err(StoreError::NotFound) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The RFC 7662 response for `text`.
pub async fn introspect(state: &AppState, text: &str, now: i64) -> Result<Value, StoreError> {
    let Some(record) = active_token(state, text, now).await? else {
        return Ok(json!({ "active": false }));
    };
    let subject = record.service_account_id.as_ref().map(|id| id.as_str().to_owned());
    Ok(json!({
        "active": true,
        "scope": record.scope.to_string(),
        "token_type": "Bearer",
        "exp": record.expires_at,
        "iat": record.created_at,
        "iss": state.public_url.as_ref(),
        "sub": subject,
        "organization_id": record.organization_id.as_str(),
        "workspace_id": record.workspace_id.as_ref().map(|id| id.as_str()),
        "service_account_id": record.service_account_id.as_ref().map(|id| id.as_str()),
        "federation_rule_id": record.rule_id.as_ref().map(|id| id.as_str()),
    }))
}

/// Revokes `text` if it is a token of this organization; `request_id` goes into the event.
pub async fn revoke(state: &AppState, text: &str, request_id: &str, now: i64) -> Result<(), StoreError> {
    if !token::looks_valid(text) {
        return Ok(());
    }
    let key = token::key(text);
    let record = match state.store.access_token_get(&key).await {
        Ok(record) if record.organization_id == state.organization_id => record,
        Ok(_) | Err(StoreError::NotFound) => return Ok(()),
        Err(error) => return Err(error),
    };
    let mut tx = state.store.begin().await?;
    if tx.access_token_revoke(&key, now).await? {
        // Credential checks cache tokens per configuration generation: a revocation is a change.
        tx.config_generation_bump(&record.organization_id).await?;
        let actor = record.service_account_id.as_ref().map(|id| id.as_str().to_owned());
        tx.activity_append(&Activity {
            organization_id: record.organization_id.clone(),
            activity_type: REVOKED.to_owned(),
            actor_id: actor.clone(),
            resource_id: actor,
            request_id: Some(request_id.to_owned()),
            created_at: now,
            payload: json!({
                "access_token": {
                    "sha256": token::hex(&token::hash(text)),
                    "scope": record.scope.to_string(),
                    "expires_at": record.expires_at,
                    "workspace_id": record.workspace_id.as_ref().map(|id| id.as_str()),
                    "federation_rule_id": record.rule_id.as_ref().map(|id| id.as_str()),
                },
            }),
        })
        .await?;
    }
    tx.commit().await
}
