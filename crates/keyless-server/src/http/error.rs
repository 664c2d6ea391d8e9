//! [`ApiError`]: the one error type of the Admin API (and of every non-OAuth JSON endpoint), mapped to
//! HTTP in exactly one place.
//!
//! Parts, in reading order: [`ErrorKind`] (the wire `error.type` and its status), [`ApiError`] (its
//! `IntoResponse`), [`render`] (puts the request ID into the body and logs internal errors once), [`ApiJson`] (a `Json` extractor whose rejections come out in this shape), [`error`] (a
//! fully rendered error response for handlers that hold the request ID themselves).
//!
//! The body is `{"type": "error", "error": {"type", "message"}, "request_id"}`:
//!
//! | `error.type` | status |
//! |---|---|
//! | `invalid_request_error` | 400 (405 for a wrong method, 413 for a body that is too large) |
//! | `authentication_error` | 401, with `WWW-Authenticate: Bearer` |
//! | `permission_error` | 403 |
//! | `not_found_error` | 404 |
//! | `conflict_error` | 409 |
//! | `api_error` | 500 |
//!
//! How the request ID gets in: [`ApiError`]'s `IntoResponse` writes the body with `"request_id": null`
//! and leaves a copy of itself in the response extensions; [`render`], called by the
//! `request_id::assign` middleware on every response, finds it, writes the body again with the request's ID, and logs an internal
//! error's cause with that ID. So handlers return `Result<_, ApiError>` and never thread the ID through.
//! The service layer's `AdminError` becomes an `ApiError` here ([`From`]), and only here.
//! Messages of 400s start with the field they are about (`name: …`, `jwks.url: url must use https
//! scheme`). Must not: put an internal cause (a database error) or a secret into a body.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::http::request_id::RequestId;
use crate::service::admin::AdminError;

/// The kind of an error: its wire `error.type` and its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// 400 `invalid_request_error`: the request is malformed or refused as written.
    InvalidRequest,
    /// 401 `authentication_error`: no valid credential.
    Authentication,
    /// 403 `permission_error`: the credential may not do this.
    Permission,
    /// 404 `not_found_error`.
    NotFound,
    /// 409 `conflict_error`: the change conflicts with the current state (a taken name, a live rule).
    Conflict,
    /// 500 `api_error`: the server failed.
    Internal,
}

impl ErrorKind {
    /// The wire `error.type`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request_error",
            Self::Authentication => "authentication_error",
            Self::Permission => "permission_error",
            Self::NotFound => "not_found_error",
            Self::Conflict => "conflict_error",
            Self::Internal => "api_error",
        }
    }

    /// The HTTP status.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::Authentication => StatusCode::UNAUTHORIZED,
            Self::Permission => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict => StatusCode::CONFLICT,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An Admin API error: a kind, a caller-safe message, and (for internal errors) a cause that is logged,
/// never shown.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    kind: ErrorKind,
    status: StatusCode,
    message: String,
    code: Option<&'static str>,
    cause: Option<Arc<str>>,
}

/// The message of every internal error.
const INTERNAL_MESSAGE: &str = "the server failed to handle the request; report the request_id";

impl ApiError {
    /// An error of `kind` with `message` (shown to the caller).
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: kind.status(),
            message: message.into(),
            code: None,
            cause: None,
        }
    }

    /// The same with a stable `error.code` (e.g. a rule lint's).
    pub(crate) fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// 400 `invalid_request_error`; start `message` with the field (`name: …`).
    pub(crate) fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }

    /// 401 `authentication_error`.
    pub(crate) fn authentication(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Authentication, message)
    }

    /// 403 `permission_error`.
    pub(crate) fn permission(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Permission, message)
    }

    /// 404 `not_found_error`.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// 409 `conflict_error`.
    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    /// 500 `api_error` with a generic message; `cause` is logged with the request ID, never shown.
    pub(crate) fn internal(cause: impl std::fmt::Display) -> Self {
        Self {
            cause: Some(Arc::from(cause.to_string())),
            ..Self::new(ErrorKind::Internal, INTERNAL_MESSAGE)
        }
    }

    /// Its caller-safe message.
    #[allow(dead_code, reason = "read by unit tests")]
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// The message shown to the caller.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    fn body(&self, request_id: Option<&str>) -> Value {
        let mut error = json!({ "type": self.kind.as_str(), "message": self.message });
        if let (Some(code), Some(object)) = (self.code, error.as_object_mut()) {
            object.insert("code".to_owned(), Value::from(code));
        }
        json!({ "type": "error", "error": error, "request_id": request_id })
    }

    /// The full response, its body carrying `request_id`.
    fn response(&self, request_id: Option<&str>) -> Response {
        let mut response = (self.status, Json(self.body(request_id))).into_response();
        if self.kind == ErrorKind::Authentication {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }

    /// The response for a request whose ID is known (no need for [`render`]); an internal cause is logged.
    #[allow(dead_code, reason = "the lead's activity feed and introspection handlers use it")]
    pub(crate) fn into_response_with(self, request_id: &RequestId) -> Response {
        self.log(&request_id.0);
        self.response(Some(&request_id.0))
    }

    fn log(&self, request_id: &str) {
        if let Some(cause) = &self.cause {
            tracing::error!(request_id, cause = cause.as_ref(), "request failed");
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

/// Marks a response whose body [`render`] must write again with the request ID.
#[derive(Debug, Clone)]
struct Unrendered(ApiError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.response(None);
        response.extensions_mut().insert(Unrendered(self));
        response
    }
}

/// Writes an [`ApiError`]'s body again with the request's ID and logs an internal error's cause once
/// (called by `request_id::assign` on every response; a response without an [`ApiError`] is left as it is).
pub(crate) fn render(response: &mut Response, request_id: &str) {
    let Some(Unrendered(error)) = response.extensions_mut().remove::<Unrendered>() else {
        return;
    };
    error.log(request_id);
    let bytes = serde_json::to_vec(&error.body(Some(request_id))).unwrap_or_default();
    response.headers_mut().remove(header::CONTENT_LENGTH);
    *response.body_mut() = Body::from(bytes);
}

/// A fully rendered error response, for handlers that hold the request ID (the activity feed).
#[allow(dead_code, reason = "the lead's activity feed and introspection handlers use it")]
pub(crate) fn error(status: StatusCode, kind: &str, message: &str, request_id: &RequestId) -> Response {
    let kind = [
        ErrorKind::InvalidRequest,
        ErrorKind::Authentication,
        ErrorKind::Permission,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::Internal,
    ]
    .into_iter()
    .find(|candidate| candidate.as_str() == kind)
    .unwrap_or(ErrorKind::Internal);
    ApiError::new(kind, message)
        .with_status(status)
        .into_response_with(request_id)
}

/// `Json<T>` whose rejections are [`ApiError`]s: bad JSON, a wrong content type, an unknown or mistyped
/// field (the message names it: `match.claims: invalid type: …`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

/// The prefix axum puts before serde's message (with its field path).
const DATA_ERROR_PREFIX: &str = "Failed to deserialize the JSON body into the target type: ";

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(error) => {
            let text = error.body_text();
            let detail = text.strip_prefix(DATA_ERROR_PREFIX).unwrap_or(&text);
            // A top-level problem (a missing field) has the path `.`; the position adds nothing.
            let detail = detail.strip_prefix(".: ").unwrap_or(detail);
            let detail = detail
                .rfind(" at line ")
                .and_then(|idx| detail.get(..idx))
                .unwrap_or(detail);
            ApiError::invalid_request(detail.to_owned())
        }
        JsonRejection::JsonSyntaxError(_) => ApiError::invalid_request("body: not valid JSON"),
        JsonRejection::MissingJsonContentType(_) => ApiError::invalid_request("content-type: must be application/json"),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::invalid_request("body: too large").with_status(StatusCode::PAYLOAD_TOO_LARGE)
        }
        _ => ApiError::invalid_request("body: could not be read"),
    }
}

/// `Path<T>` whose rejections are [`ApiError`]s.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::invalid_request(format!("path: {}", rejection.body_text()))),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::Invalid(message) => Self::invalid_request(message),
            AdminError::Refused { code, message } => Self::invalid_request(message).with_code(code),
            AdminError::Forbidden(message) => Self::permission(message),
            AdminError::NotFound(message) => Self::not_found(message),
            AdminError::Conflict(message) => Self::conflict(message),
            error @ (AdminError::Store(_) | AdminError::Internal(_)) => Self::internal(chain(&error)),
        }
    }
}

/// An error and its sources, `: `-separated (for the log only).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The 405 of a known route called with another method.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::invalid_request("method: not allowed on this route").with_status(StatusCode::METHOD_NOT_ALLOWED)
}

/// The 404 of an unknown route.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}
