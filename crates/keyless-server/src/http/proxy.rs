//! The built-in reverse proxy (`keyless serve --upstream URL`): the router's fallback when an upstream
//! is configured. Every request no keyless route matches is decided by [`Authorizer::check`] exactly as
//! `/v1/authorize` decides it, then refused with `refusal_response` or forwarded.
//!
//! Parts, in reading order: [`Upstream`] (the pooled HTTP/1.1 client and the base URL), `forward` (the
//! handler), the header plumbing (`upstream_request_headers`, `strip_hop_by_hop`), the error bodies.
//!
//! Forwarding: the upstream URL is the base URL's origin, its path (a prefix, without a trailing `/`),
//! then the path and query exactly as received. Bodies stream both ways, frame by frame (a
//! `text/event-stream` answer reaches the client event by event); nothing is buffered and nothing but
//! the connect is timed out. Sent upstream: the client's headers without its credential
//! (`authorization`, `x-api-key`), without every `keyless-*` header it sent, without hop-by-hop headers
//! and `expect` (keyless answers `100-continue` itself), and with `host` set to the upstream's; added:
//! the identity headers (`identity_headers`), `keyless-request-id`, `x-forwarded-for` (the client's
//! address appended), `x-forwarded-proto: http` and `x-forwarded-host` (the `host` the client sent).
//! The answer loses its hop-by-hop headers; the upstream's `request-id` becomes `upstream-request-id`
//! (the response's `request-id` is keyless's, the one in the request log).
//!
//! Never forwarded: keyless's own subtrees ([`OWN_PATHS`]); a path under one of them that no route
//! matches answers 404 as it would without an upstream (checked on the path as sent, and again on its
//! canonical form after the authorization check). Refused outright: upgrades (WebSocket), with 501 `upgrade_not_supported` after the authorization
//! check. An upstream that cannot be reached or fails before its response head answers 502
//! `upstream_unavailable`; the cause is logged with the request ID, never shown. Every request becomes
//! one `api_request` event (`source: proxy`) with the upstream's status and the time until its
//! response head.
//!
//! Must not: decide anything (that is [`Authorizer::check`]), read the body, or forward a credential.
//!
//! [`Authorizer::check`]: crate::service::authorize::Authorizer::check

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, Version, header};
use axum::response::{IntoResponse, Response};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls_platform_verifier::BuilderVerifierExt;
use url::{Position, Url};

use crate::clock;
use crate::http::authorize::{coded_error, identity_headers, presented, refusal_response};
use crate::http::error;
use crate::http::request_id::RequestId;
use crate::service::authorize::Principal;
use crate::service::request_log::{ApiRequest, Source};
use crate::state::AppState;

/// keyless's own paths, each with everything under it: never forwarded.
pub const OWN_PATHS: [&str; 8] = [
    "/v1/oauth",
    "/v1/organizations",
    "/v1/authorize",
    "/v1/openapi.json",
    "/.well-known",
    "/healthz",
    "/readyz",
    "/metrics",
];

/// How long an idle upstream connection is kept for reuse.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the non-standard
/// `proxy-connection`; each header named in `connection` goes too.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("proxy-connection"),
];

const REQUEST_ID_TO_UPSTREAM: HeaderName = HeaderName::from_static("keyless-request-id");
const UPSTREAM_REQUEST_ID: HeaderName = HeaderName::from_static("upstream-request-id");
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Why the upstream client cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("upstream.url: https needs the platform's certificate verifier, which failed: {0}")]
pub struct UpstreamError(#[source] rustls::Error);

/// The upstream: a pooled HTTP/1.1 client (http, or https verified by the platform's trust store) with
/// `TCP_NODELAY`, and where to send.
pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, Body>,
    /// `scheme://host[:port]`.
    origin: String,
    /// The base URL's path without its trailing `/` (empty for `/`).
    prefix: String,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("origin", &self.origin)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// A client for `url` (http or https, checked by the configuration) giving up on a connect after
    /// `connect_timeout`.
    pub fn new(url: &Url, connect_timeout: Duration) -> Result<Self, UpstreamError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(UpstreamError)?;
        let tls = match builder.clone().with_platform_verifier() {
            Ok(builder) => builder.with_no_client_auth(),
            Err(error) if url.scheme() == "https" => return Err(UpstreamError(error)),
            // A plain-http upstream never verifies a certificate: an empty trust store will do.
            Err(_) => builder
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        };
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(Self {
            client,
            origin: url[..Position::BeforePath].to_owned(),
            prefix: url.path().trim_end_matches('/').to_owned(),
        })
    }

    /// The upstream URI of `target` (a path and query as received).
    fn uri(&self, target: &str) -> Option<Uri> {
        let mut uri = String::with_capacity(self.origin.len() + self.prefix.len() + target.len());
        uri.push_str(&self.origin);
        uri.push_str(&self.prefix);
        uri.push_str(target);
        Uri::try_from(uri).ok()
    }
}

/// The fallback: authorize, then refuse or forward, and record the request.
pub(super) async fn forward(State(state): State<AppState>, request: Request) -> Response {
    if is_own(request.uri().path()) {
        return error::not_found().await.into_response();
    }
    let started = clock::monotonic();
    let now = clock::now_unix();
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .cloned()
        .unwrap_or_else(|| RequestId(String::new()));
    let method = request.method().as_str().to_owned();
    let target = request
        .uri()
        .path_and_query()
        .map_or_else(|| request.uri().path(), PathAndQuery::as_str)
        .to_owned();
    let decision = state
        .authorizer
        .check(&state, &method, &target, presented(request.headers()), now, started)
        .await;
    let response = match (&decision.refusal, &decision.principal, &state.upstream) {
        (Some(refusal), _, _) => refusal_response(refusal, &request_id),
        _ if decision.path.as_deref().is_some_and(is_own) => error::not_found().await.into_response(),
        _ if is_upgrade(request.headers()) => coded_error(
            StatusCode::NOT_IMPLEMENTED,
            "upgrade_not_supported",
            "the built-in proxy does not forward protocol upgrades (WebSocket)",
            &request_id,
        ),
        (None, Some(principal), Some(upstream)) => send(upstream, request, &target, principal, &request_id).await,
        // Allowed without a principal, or no upstream: neither happens; refuse rather than forward.
        (None, _, _) => coded_error(
            StatusCode::BAD_GATEWAY,
            "upstream_unavailable",
            UNAVAILABLE,
            &request_id,
        ),
    };
    state.request_log.record(ApiRequest {
        organization_id: state.organization_id.clone(),
        at: now,
        request_id: request_id.0,
        source: Source::Proxy,
        principal: decision.principal,
        method,
        path: decision.path,
        route: decision.route,
        status: response.status().as_u16(),
        reason: decision.refusal.as_ref().map(|refusal| refusal.code),
        latency: started.elapsed(),
    });
    response
}

const UNAVAILABLE: &str = "the upstream could not be reached or failed before it answered; report the request_id";

/// Sends the allowed `request` upstream; its answer with a streaming body, or a 502.
async fn send(
    upstream: &Upstream,
    request: Request,
    target: &str,
    principal: &Principal,
    request_id: &RequestId,
) -> Response {
    let Some(uri) = upstream.uri(target) else {
        return coded_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "the request target cannot be forwarded",
            request_id,
        );
    };
    let client_ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    let (mut parts, body) = request.into_parts();
    upstream_request_headers(&mut parts.headers, principal, &request_id.0, client_ip);
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    parts.extensions = axum::http::Extensions::new();
    match upstream.client.request(Request::from_parts(parts, body)).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            if let Some(id) = parts.headers.remove(crate::http::request_id::HEADER) {
                parts.headers.insert(UPSTREAM_REQUEST_ID, id);
            }
            Response::from_parts(parts, Body::new(body))
        }
        Err(error) => {
            tracing::warn!(request_id = request_id.0, cause = %chain(&error), "the upstream failed before answering");
            coded_error(StatusCode::BAD_GATEWAY, "upstream_unavailable", UNAVAILABLE, request_id)
        }
    }
}

/// Whether `path` is keyless's own ([`OWN_PATHS`]).
fn is_own(path: &str) -> bool {
    OWN_PATHS.iter().any(|own| {
        path.strip_prefix(own)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// Whether `headers` ask for a protocol upgrade.
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
}

/// Rewrites a client's request headers for the upstream (see the module docs).
fn upstream_request_headers(
    headers: &mut HeaderMap,
    principal: &Principal,
    request_id: &str,
    client_ip: Option<IpAddr>,
) {
    let host = headers.remove(header::HOST);
    strip_hop_by_hop(headers);
    headers.remove(header::AUTHORIZATION);
    headers.remove(X_API_KEY);
    headers.remove(header::EXPECT);
    let spoofed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("keyless-"))
        .cloned()
        .collect();
    for name in spoofed {
        headers.remove(name);
    }
    headers.extend(identity_headers(principal).iter().cloned());
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID_TO_UPSTREAM, value);
    }
    if let Some(ip) = client_ip {
        let mut chain = String::new();
        for prior in headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
        {
            chain.push_str(prior);
            chain.push_str(", ");
        }
        chain.push_str(&ip.to_string());
        match HeaderValue::from_str(&chain) {
            Ok(value) => headers.insert(X_FORWARDED_FOR, value),
            Err(_) => headers.remove(X_FORWARDED_FOR),
        };
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    match host {
        Some(host) => headers.insert(X_FORWARDED_HOST, host),
        None => headers.remove(X_FORWARDED_HOST),
    };
}

/// Removes the hop-by-hop headers and every header the `connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// An error and its sources, for the log.
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use keyless_core::id::OrganizationId;
    use keyless_core::scope::ScopeSet;

    use super::*;
    use crate::service::authorize::PrincipalKind;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn principal() -> Principal {
        Principal {
            kind: PrincipalKind::ServiceAccount,
            id: "svac_1".to_owned(),
            organization_id: OrganizationId::parse("00000000-0000-0000-0000-000000000001").unwrap(),
            workspace_id: None,
            service_account_id: None,
            api_key_id: None,
            rule_id: None,
            scope: ScopeSet::parse("workspace:inference").unwrap(),
            expires_at: None,
            revoked: false,
            disabled: false,
            headers: std::sync::OnceLock::new(),
        }
    }

    fn names(map: &HeaderMap) -> Vec<String> {
        let mut names: Vec<String> = map.keys().map(|name| name.as_str().to_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn the_upstream_gets_no_credential_no_spoofed_identity_and_no_hop_by_hop_header() {
        let mut map = headers(&[
            ("host", "keyless.example"),
            ("authorization", "Bearer secret"),
            ("x-api-key", "secret"),
            ("keyless-principal-id", "spoofed"),
            ("keyless-anything", "spoofed"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("proxy-authorization", "Basic x"),
            ("expect", "100-continue"),
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-host", "spoofed.example"),
            ("content-type", "application/json"),
            ("anthropic-version", "2023-06-01"),
        ]);
        upstream_request_headers(&mut map, &principal(), "req_1", Some("127.0.0.1".parse().unwrap()));
        assert_eq!(
            names(&map),
            [
                "anthropic-version",
                "content-type",
                "keyless-organization-id",
                "keyless-principal-id",
                "keyless-principal-type",
                "keyless-request-id",
                "keyless-scopes",
                "x-forwarded-for",
                "x-forwarded-host",
                "x-forwarded-proto",
            ]
        );
        assert_eq!(map["keyless-principal-id"], "svac_1");
        assert_eq!(map["keyless-request-id"], "req_1");
        assert_eq!(map["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
        assert_eq!(map["x-forwarded-host"], "keyless.example");
        assert_eq!(map["x-forwarded-proto"], "http");
    }

    #[test]
    fn the_upstream_url_keeps_the_base_path_and_the_target_as_sent() {
        let check = |base: &str, target: &str, expect: &str| {
            let upstream = Upstream::new(&Url::parse(base).unwrap(), Duration::from_secs(1)).unwrap();
            assert_eq!(upstream.uri(target).unwrap().to_string(), expect, "{base} + {target}");
        };
        check(
            "http://127.0.0.1:9000",
            "/v1/messages?beta=true",
            "http://127.0.0.1:9000/v1/messages?beta=true",
        );
        check(
            "http://127.0.0.1:9000/",
            "/v1/messages",
            "http://127.0.0.1:9000/v1/messages",
        );
        check(
            "http://up.example/api/",
            "/v1/a%2Fb?x=%20",
            "http://up.example/api/v1/a%2Fb?x=%20",
        );
        check("https://[::1]:8443/api", "/v1/files", "https://[::1]:8443/api/v1/files");
    }

    #[test]
    fn keyless_paths_are_its_own() {
        for path in [
            "/v1/oauth/x",
            "/v1/organizations",
            "/v1/organizations/api_keys",
            "/.well-known/x",
            "/healthz",
        ] {
            assert!(is_own(path), "{path}");
        }
        for path in ["/v1/messages", "/v1/organizationsx", "/healthzz", "/", "/v1"] {
            assert!(!is_own(path), "{path}");
        }
    }

    #[test]
    fn hop_by_hop_headers_leave_the_answer() {
        let mut map = headers(&[
            ("connection", "close"),
            ("transfer-encoding", "chunked"),
            ("content-type", "text/event-stream"),
        ]);
        strip_hop_by_hop(&mut map);
        assert_eq!(names(&map), ["content-type"]);
    }
}
