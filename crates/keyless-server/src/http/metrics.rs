//! `GET /metrics`: Prometheus text exposition of the process's metrics, and the middleware that
//! measures every request.
//!
//! Metrics (labels are bounded: route templates, never IDs or token contents):
//! - `keyless_http_requests_total{method, route, status}` and
//!   `keyless_http_request_duration_seconds{method, route}` (histogram);
//! - `keyless_exchanges_total{outcome, code}`: token exchanges by outcome and rejection code;
//! - `keyless_group_commit_entries` (histogram): entries per group commit of the recorder.
//!
//! The endpoint is unauthenticated, like `/healthz`: it holds counts, not secrets. One recorder serves
//! the process (the `metrics` facade is global), so several servers in one test process share it.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::clock;
use crate::state::AppState;

const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const BATCH_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// The process's recorder, installed on first use; `None` when another recorder was installed first.
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("keyless_http_request_duration_seconds".to_owned()),
                    &DURATION_BUCKETS,
                )
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Full("keyless_group_commit_entries".to_owned()),
                        &BATCH_BUCKETS,
                    )
                })
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

pub(super) fn routes() -> Router<AppState> {
    // Installing here makes every counter recorded after the router exists visible.
    let _ = handle();
    Router::new().route("/metrics", get(metrics_get))
}

async fn metrics_get() -> Response {
    match handle() {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            handle.render(),
        )
            .into_response(),
        None => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not available: another recorder is installed",
        )
            .into_response(),
    }
}

/// Middleware: counts and times each request under its route template.
pub(super) async fn measure(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = clock::monotonic();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("keyless_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("keyless_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
