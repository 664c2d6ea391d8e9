//! `GET /metrics`: Prometheus text exposition of the process's metrics, and the middleware that
//! measures every request.
//!
//! Metrics (labels are bounded: route templates, never IDs or token contents; a method outside the
//! standard nine is `other`):
//! - `keyless_http_requests_total{method, route, status}` and
//!   `keyless_http_request_duration_seconds{method, route}` (histogram);
//! - `keyless_exchanges_total{outcome, code}`: token exchanges by outcome and rejection code;
//! - `keyless_group_commit_entries` (histogram): entries per group commit of the recorder;
//! - `keyless_group_commit_wait_seconds` (histogram): how long each entry waited for its group commit
//!   to begin, and `keyless_group_commit_seconds` (histogram): how long each group commit took (together,
//!   what durability adds to an exchange).
//!
//! The endpoint is unauthenticated, like `/healthz`: it holds counts, not secrets. One recorder serves
//! the process (the `metrics` facade is global), so several servers in one test process share it.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics::{Counter, Histogram};
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
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &DURATION_BUCKETS)
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
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = method_label(request.method());
    let started = clock::monotonic();
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let series = series(method, route, response.status().as_u16());
    series.requests.increment(1);
    series.duration.record(started.elapsed().as_secs_f64());
    response
}

/// A request's method as a label: a standard method's name, else `other` — a client may send any
/// token as a method, and each would otherwise start a series of its own.
fn method_label(method: &Method) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    STANDARD
        .into_iter()
        .find(|name| *name == method.as_str())
        .unwrap_or("other")
}

/// The handles of one series: registered once, then only incremented (building the labels and
/// looking them up in the registry on every request was most of what measuring cost).
#[derive(Clone)]
struct Series {
    requests: Counter,
    duration: Histogram,
}

/// The handles of `method route status`, registered on first use. The map is bounded like the labels:
/// route templates × standard methods × statuses.
fn series(method: &'static str, route: &str, status: u16) -> Series {
    type Routes = HashMap<Box<str>, HashMap<(&'static str, u16), Series>>;
    static SERIES: OnceLock<RwLock<Routes>> = OnceLock::new();
    let map = SERIES.get_or_init(RwLock::default);
    let found = map
        .read()
        .ok()
        .and_then(|routes| routes.get(route)?.get(&(method, status)).cloned());
    if let Some(series) = found {
        return series;
    }
    let series = Series {
        requests: metrics::counter!(
            "keyless_http_requests_total",
            "method" => method, "route" => route.to_owned(), "status" => status.to_string()
        ),
        duration: metrics::histogram!(
            "keyless_http_request_duration_seconds",
            "method" => method, "route" => route.to_owned()
        ),
    };
    if let Ok(mut routes) = map.write() {
        routes
            .entry(route.into())
            .or_default()
            .insert((method, status), series.clone());
    }
    series
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_method_outside_the_standard_nine_is_other() {
        for (method, label) in [
            ("GET", "GET"),
            ("PATCH", "PATCH"),
            ("PROPFIND", "other"),
            ("get", "other"),
        ] {
            let method = Method::from_bytes(method.as_bytes()).ok();
            assert_eq!(method.as_ref().map(method_label), Some(label));
        }
    }
}
