//! The axum side: [`Principal`] as an extractor, and [`Denial`] as a response.
//!
//! The extractor reads the principal that [`RequireToken`](super::RequireToken) put in the request's
//! extensions; it does not verify by itself. On a route without the layer it refuses with 500
//! ([`Denial::Misconfigured`]): it fails closed.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::{Denial, Principal};

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Denial;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Denial> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(Denial::Misconfigured(
                "a Principal extractor on a route without the RequireToken layer",
            ))
    }
}

/// The RFC 6750 answer of [`Denial::to_response`], so a handler can return `Result<_, Denial>`
/// (e.g. with `principal.require_scope("files:write")?`).
impl IntoResponse for Denial {
    fn into_response(self) -> Response {
        super::layer::refuse(&self)
    }
}
