//! `/v1/organizations/federation_issuers[/{id}[/archive]]`.

use axum::extract::{RawQuery, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use crate::clock;
use crate::http::admin::list_params;
use crate::http::auth::AdminCaller;
use crate::http::error::{ApiError, ApiJson, ApiPath};
use crate::service::admin::issuers::{self, IssuerCreate, IssuerUpdate, IssuerVerify};
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/organizations/federation_issuers",
            post(issuer_create).get(issuer_list),
        )
        .route("/v1/organizations/federation_issuers/verify", post(issuer_verify))
        .route(
            "/v1/organizations/federation_issuers/{id}",
            get(issuer_get).post(issuer_update),
        )
        .route(
            "/v1/organizations/federation_issuers/{id}/archive",
            post(issuer_archive),
        )
}

async fn issuer_create(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiJson(body): ApiJson<IssuerCreate>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(issuers::create(&admin.ctx(&state), body).await?))
}

async fn issuer_list(
    State(state): State<AppState>,
    _admin: AdminCaller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = list_params(raw.as_deref(), None)?;
    Ok(Json(issuers::list(&state, &params).await?))
}

async fn issuer_get(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(issuers::get(&state, &id).await?))
}

async fn issuer_update(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<IssuerUpdate>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(issuers::update(&admin.ctx(&state), &id, body).await?))
}

async fn issuer_archive(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(issuers::archive(&admin.ctx(&state), &id).await?))
}

async fn issuer_verify(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiJson(body): ApiJson<IssuerVerify>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(issuers::verify(&state, body, clock::now_unix()).await?))
}
