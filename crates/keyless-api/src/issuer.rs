//! Federation issuers (`fdis_…`): `/v1/organizations/federation_issuers`, and the verify dry run.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Audit;

/// A federation issuer (`type: federation_issuer`): an identity provider whose tokens are accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FederationIssuer {
    /// `fdis_…`.
    pub id: String,
    /// Always `federation_issuer`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Unique per organization.
    pub name: String,
    /// The `iss` its tokens carry, byte for byte.
    pub issuer_url: String,
    /// Where its keys come from.
    pub jwks: Jwks,
    /// Whether a token's `jti` is single-use.
    pub check_jti: bool,
    /// The largest `exp − iat` accepted.
    pub max_jwt_lifetime_seconds: i64,
    /// When background polling was paused after repeated failures.
    pub jwks_polling_disabled_at: Option<String>,
    /// The background poller's view of the issuer's keys.
    pub poll_status: PollStatus,
    /// The audit fields.
    #[serde(flatten)]
    pub audit: Audit,
}

/// An issuer's `jwks` block, tagged by `type`.
///
/// Unset members serialize as `null`, as the server answers them (the server accepts `null` for them
/// in requests too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Jwks {
    /// `{type: discovery}`: `<discovery_base or issuer_url>/.well-known/openid-configuration` names the
    /// JWKS URL. The default.
    Discovery {
        /// Where to look for the discovery document instead of the issuer URL.
        #[serde(default)]
        discovery_base: Option<String>,
        /// Extra trust anchors (PEM) for the fetches.
        #[serde(default)]
        ca_cert_pem: Option<String>,
    },
    /// `{type: explicit_url, url}`: the JWKS is at `url`.
    ExplicitUrl {
        /// The JWKS URL.
        url: String,
        /// Extra trust anchors (PEM) for the fetch.
        #[serde(default)]
        ca_cert_pem: Option<String>,
    },
    /// `{type: inline, keys}`: the keys are part of the configuration (1–100 public JWKs).
    Inline {
        /// The JWKs, as JSON objects.
        keys: Vec<Value>,
    },
}

impl Jwks {
    /// The `type` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Jwks::Discovery { .. } => "discovery",
            Jwks::ExplicitUrl { .. } => "explicit_url",
            Jwks::Inline { .. } => "inline",
        }
    }
}

/// `poll_status`: the background poller's state for one issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollStatus {
    /// Failed polls in a row.
    pub consecutive_failures: u32,
    /// When keys were last fetched successfully.
    pub last_fetched_at: Option<String>,
    /// When the next poll is due.
    pub next_poll_at: Option<String>,
    /// The last failure's message.
    pub last_error: Option<String>,
}

/// `POST /v1/organizations/federation_issuers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateFederationIssuer {
    /// `^[a-z0-9-]+$`, 1–255 characters.
    pub name: String,
    /// The issuer URL tokens carry in `iss`.
    pub issuer_url: String,
    /// Where keys come from; the server's default is discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Jwks>,
    /// Single-use `jti`; the server's default is `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_jti: Option<bool>,
    /// 1–176400; the server's default is 3600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_jwt_lifetime_seconds: Option<i64>,
}

/// `POST /v1/organizations/federation_issuers/{id}`: a partial update. Any change resumes polling; an
/// empty update resumes a paused issuer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateFederationIssuer {
    /// The new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The new issuer URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_url: Option<String>,
    /// The new `jwks` block, replacing the old one whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Jwks>,
    /// The new `check_jti`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_jti: Option<bool>,
    /// The new `max_jwt_lifetime_seconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_jwt_lifetime_seconds: Option<i64>,
}

/// `POST /v1/organizations/federation_issuers/verify`: the configuration to dry-run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyFederationIssuer {
    /// The issuer URL.
    pub issuer_url: String,
    /// Where keys come from; discovery when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Jwks>,
}

/// What a verify dry run found. Nothing is created or cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Whether keys were found, at least one is usable, and nothing went wrong.
    pub ok: bool,
    /// The discovery document's URL (discovery sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_url: Option<String>,
    /// The JWKS URL (from discovery or the configuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The usable keys.
    pub keys: Vec<VerifiedKey>,
    /// The keys that cannot be used, and why.
    pub skipped_keys: Vec<VerifySkippedKey>,
    /// What went wrong (empty when `ok`).
    pub problems: Vec<VerifyProblem>,
}

/// A usable key of a verify report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedKey {
    /// Its `kid`.
    pub kid: Option<String>,
    /// `RSA`, `EC` or `OKP`.
    pub kty: String,
    /// The algorithm it is restricted to, when it names one.
    pub alg: Option<String>,
    /// Its `use` (`sig`), when given.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    /// The RFC 7638 thumbprint.
    pub thumbprint: String,
}

/// A key a verify run could not use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifySkippedKey {
    /// Its `kid`, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// A stable code (`rsa_too_small`, `unsupported_kty`, …).
    pub code: String,
    /// Why it was skipped.
    pub reason: String,
}

/// A problem a verify run found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyProblem {
    /// A stable code (see `docs/issuers.md`).
    pub code: String,
    /// A human message.
    pub message: String,
}
