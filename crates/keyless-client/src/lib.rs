//! keyless-client: the Rust client library; everything the CLI does over the network goes
//! through it.
//!
//! Parts:
//! - [`jwks`]: fetching an issuer's JWKS over HTTPS (used by `keyless token inspect --jwks URL`).
//! - [`ClientError`]: the one error type, split by where things went wrong.
//!
//! The credential chain, the token cache and the Admin API client arrive with the client issue.

pub mod jwks;

/// What went wrong talking to a server.
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
    #[error("{url} answered HTTP {status}")]
    Api {
        /// The URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The (size-capped) response body.
        body: String,
    },
    /// The answer could not be decoded.
    #[error("{0}")]
    Decode(String),
    /// The request was refused locally before sending (bad URL, insecure scheme).
    #[error("{0}")]
    Config(String),
}
