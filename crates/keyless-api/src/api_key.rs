//! Workspace API keys (`apikey_…`): `/v1/organizations/api_keys`. The static credential federation
//! replaces, kept so an organization can migrate one workload at a time.
//!
//! The key itself (`keyless_ak_…`) is in exactly one answer, that of `POST api_keys`
//! ([`CreatedApiKey`]), held by an [`ApiKeySecret`] whose `Debug` prints none of it. Every other
//! answer carries only [`ApiKey::partial_key_hint`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{ApiKeyStatus, Audit};

/// A workspace API key (`type: api_key`): its metadata, never the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    /// `apikey_…` (the ID, not the key).
    pub id: String,
    /// Always `api_key`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Unique per organization.
    pub name: String,
    /// The workspace it acts in (`wrkspc_…`).
    pub workspace_id: String,
    /// The scopes it holds, space-separated.
    pub oauth_scope: String,
    /// `active`, `inactive` (disabled), `expired` or `archived` (revoked).
    pub status: ApiKeyStatus,
    /// The key's first and last characters (`keyless_ak_AbCd…x9Yz`), to recognise it by.
    pub partial_key_hint: String,
    /// When it stops working; `None` never.
    pub expires_at: Option<String>,
    /// When a request last authenticated with it; `None` before the first.
    pub last_used_at: Option<String>,
    /// The audit fields.
    #[serde(flatten)]
    pub audit: Audit,
}

/// The answer to `POST /v1/organizations/api_keys`: the new key's object and, this once, the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedApiKey {
    /// The key's object, as every later answer shows it.
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The key (`keyless_ak_…`). The server keeps only its hash: it cannot be shown again.
    pub key: ApiKeySecret,
}

/// An API key's secret text. `Debug` prints none of it; [`ApiKeySecret::expose_secret`] is the one
/// way to read it. It serializes as the plain string, as the server sent it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKeySecret(key.into())
    }

    /// The key itself.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

/// Prints no part of the key.
impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeySecret(…)")
    }
}

/// `POST /v1/organizations/api_keys`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// Unique per organization.
    pub name: String,
    /// `wrkspc_…` or `default`; the server's default is the default workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// Space-separated scopes; the server's default is `workspace:developer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_scope: Option<String>,
    /// When it stops working (RFC 3339); never when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// `POST /v1/organizations/api_keys/{id}`: a partial update; `None` fields keep their value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateApiKey {
    /// The new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `active`, or `inactive` to disable the key reversibly (archiving revokes it for good).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ApiKeyStatus>,
}
