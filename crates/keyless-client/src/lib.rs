//! keyless-client: the Rust client library; everything the CLI does over the network goes
//! through it.
//!
//! Parts:
//! - [`api`]: [`Api`], one keyless server reached with one [`Credential`]: the HTTP plumbing every call
//!   shares (base URL policy, timeouts, size caps, error decoding, the retry after a 401).
//! - [`environment`]: [`Environment`], the snapshot of environment variables decisions are made from.
//! - [`chain`]: [`resolve`], the credential chain (explicit → key/bearer env → explicit profile →
//!   federation env → active profile), explaining every step.
//! - [`cache`]: [`cache::TokenCache`], exchanged tokens kept and refreshed (advisory/mandatory windows,
//!   single flight, a disk cache shared across processes).
//! - [`exchange`]: the federation exchange (`POST /v1/oauth/token`, JSON `jwt-bearer`).
//! - [`clock`]: the one place the crate reads the time, and a manual clock for tests.
//! - [`config`]: the configuration directory (profiles, 0600 credentials files, `active_config`).
//! - [`declarative`]: declarative configuration — the file format keyed by name, the plan (a pure diff
//!   against the server's state), apply and export.
//! - [`jwks`]: fetching an issuer's JWKS over HTTPS (used by `keyless token inspect --jwks URL`).
//! - `resource` (feature `resource-server`): verifying keyless access tokens in a resource server — a
//!   cached, coalescing introspection client, a tower layer and an extractor.
//! - [`source`]: identity-token sources ([`source::IdentitySource`]: file, env, executable, URL,
//!   GitHub Actions, Google Cloud metadata, Azure, Kubernetes, auto) and [`source::detect`].
//! - `transport` (private): the URL policy (https except on loopback) and capped body reads.
//! - [`ClientError`]: the one error type, split by where things went wrong; [`ApiError`] is a server's
//!   error answer, decoded.

pub mod admin;
pub mod api;
pub mod cache;
pub mod chain;
pub mod clock;
pub mod config;
pub mod declarative;
pub mod environment;
pub mod exchange;
pub mod jwks;
#[cfg(feature = "resource-server")]
pub mod resource;
pub mod source;
mod transport;

pub use api::{Api, Credential};
pub use chain::{Explicit, Resolution, resolve};
pub use environment::Environment;

/// What went wrong talking to a server, or preparing to.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request never got an HTTP answer (DNS, connect, TLS, timeout, body too large).
    #[error("{context}: {source}")]
    Transport {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server answered with an error status.
    #[error(transparent)]
    Api(Box<ApiError>),
    /// The answer could not be decoded.
    #[error("{0}")]
    Decode(String),
    /// Refused locally before sending: a bad URL or an insecure scheme, a missing or unsafe
    /// configuration or credential file, an identity token that could not be obtained.
    #[error("{0}")]
    Config(String),
}

impl ClientError {
    /// The server's error answer, when that is what this is.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(error) => Some(error),
            _ => None,
        }
    }

    /// The `Request-Id` of the server's answer, when there was one.
    pub fn request_id(&self) -> Option<&str> {
        self.api().and_then(|error| error.request_id.as_deref())
    }
}

/// A server's error answer: the status, the decoded body and the request ID to quote.
///
/// Both error shapes keyless answers are decoded: the Admin API's
/// `{"type": "error", "error": {"type", "code", "message"}, "request_id"}` and the OAuth endpoints' RFC 6749
/// `{"error", "error_description", "error_code", "request_id"}`. Any other body is kept in `body` as
/// text (size-capped).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The method and URL that was called (without query string).
    pub url: String,
    /// The HTTP status code.
    pub status: u16,
    /// The error kind: `error.type` (`invalid_request_error`, …) or the OAuth `error` (`invalid_grant`, …).
    pub kind: Option<String>,
    /// The stable code, when given: a refused exchange's `error_code` (`audience_mismatch`), an Admin
    /// API refusal's `error.code` (`tenant_not_pinned`).
    pub code: Option<String>,
    /// The human-readable message (`error.message` or `error_description`).
    pub message: Option<String>,
    /// The `Request-Id` response header (or the body's `request_id`).
    pub request_id: Option<String>,
    /// The body as received: decoded JSON, or a JSON string holding the first bytes of a non-JSON body.
    pub body: serde_json::Value,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} answered HTTP {}", self.url, self.status)?;
        if let Some(kind) = &self.kind {
            write!(f, " {kind}")?;
        }
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        if let Some(request_id) = &self.request_id {
            write!(f, " [request {request_id}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}
