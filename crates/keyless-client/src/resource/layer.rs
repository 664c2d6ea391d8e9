//! Tower layers: [`RequireToken`] (verify the bearer token, put the [`Principal`] in the request's
//! extensions) and [`RequireScope`] (check the principal's scopes, behind `RequireToken`).
//!
//! Both work with any tower-based HTTP stack whose response body can be made from a `String` (axum,
//! hyper with `http_body_util::Full`, tonic's HTTP layer…). A refused request never reaches the inner
//! service; it is answered with [`Denial::to_response`]. A [`Denial::Unavailable`] or
//! [`Denial::Misconfigured`] is logged once here with `tracing` (the caller sees only a generic line).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};

use super::{Denial, Principal, Verifier, bearer_token};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A layer that lets a request through only with a valid keyless access token (and, with
/// [`RequireToken::scope`], the scopes named), inserting the token's [`Principal`] into the request's
/// extensions for handlers (and [`RequireScope`]) to read.
#[derive(Debug, Clone)]
pub struct RequireToken {
    verifier: Verifier,
    scopes: Arc<[String]>,
}

impl RequireToken {
    /// Requires a valid token, checked by `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            scopes: Arc::from(Vec::new()),
        }
    }

    /// Also requires `scope` (each scope added is required: all of them, not any).
    pub fn scope(self, scope: impl Into<String>) -> Self {
        let mut scopes = self.scopes.to_vec();
        scopes.push(scope.into());
        Self {
            verifier: self.verifier,
            scopes: Arc::from(scopes),
        }
    }
}

impl<S> Layer<S> for RequireToken {
    type Service = RequireTokenService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireTokenService {
            inner,
            verifier: self.verifier.clone(),
            scopes: Arc::clone(&self.scopes),
        }
    }
}

/// The service [`RequireToken`] wraps around an inner service.
#[derive(Debug, Clone)]
pub struct RequireTokenService<S> {
    inner: S,
    verifier: Verifier,
    scopes: Arc<[String]>,
}

impl<S, B, ResBody> Service<Request<B>> for RequireTokenService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone that was polled ready is the one that serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let scopes = Arc::clone(&self.scopes);
        let token = bearer_token(request.headers()).map(str::to_owned);
        Box::pin(async move {
            let decision = match token {
                Ok(token) => verifier
                    .verify(&token)
                    .await
                    .and_then(|principal| principal.require_scopes(&scopes).map(|()| principal)),
                Err(denial) => Err(denial),
            };
            match decision {
                Ok(principal) => {
                    request.extensions_mut().insert(principal);
                    inner.call(request).await
                }
                Err(denial) => Ok(refuse(&denial)),
            }
        })
    }
}

/// A layer that lets a request through only if the [`Principal`] that [`RequireToken`] (further out)
/// put in its extensions holds every scope named. Without `RequireToken` in front, every request is
/// refused with 500 ([`Denial::Misconfigured`]): it fails closed.
#[derive(Debug, Clone)]
pub struct RequireScope {
    scopes: Arc<[String]>,
}

impl RequireScope {
    /// Requires `scope`.
    pub fn new(scope: impl Into<String>) -> Self {
        Self::all([scope])
    }

    /// Requires every one of `scopes`.
    pub fn all<I: IntoIterator<Item = T>, T: Into<String>>(scopes: I) -> Self {
        Self {
            scopes: scopes.into_iter().map(Into::into).collect(),
        }
    }
}

impl<S> Layer<S> for RequireScope {
    type Service = RequireScopeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopeService {
            inner,
            scopes: Arc::clone(&self.scopes),
        }
    }
}

/// The service [`RequireScope`] wraps around an inner service.
#[derive(Debug, Clone)]
pub struct RequireScopeService<S> {
    inner: S,
    scopes: Arc<[String]>,
}

impl<S, B, ResBody> Service<Request<B>> for RequireScopeService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let decision = match request.extensions().get::<Principal>() {
            Some(principal) => principal.require_scopes(&self.scopes),
            None => Err(Denial::Misconfigured(
                "RequireScope without RequireToken in front of it",
            )),
        };
        match decision {
            Ok(()) => {
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move { inner.call(request).await })
            }
            Err(denial) => {
                let response = refuse(&denial);
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

/// The answer to a refused request; a failure of ours (not the caller's) is logged once, here.
pub(super) fn refuse<B: From<String>>(denial: &Denial) -> Response<B> {
    match denial {
        Denial::Unavailable(_) => tracing::warn!(error = %denial, "request refused: token not checked"),
        Denial::Misconfigured(_) => tracing::error!(error = %denial, "request refused"),
        _ => tracing::debug!(error = %denial, "request refused"),
    }
    denial.to_response()
}
