//! `/v1/organizations/api_keys[/{id}[/archive]]` and `/v1/organizations/usage`.

use axum::extract::{RawQuery, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use crate::http::admin::list_params;
use crate::http::auth::AdminCaller;
use crate::http::error::{ApiError, ApiJson, ApiPath};
use crate::service::admin::api_keys::{self, ApiKeyCreate, ApiKeyUpdate};
use crate::service::admin::usage::{self, UsageQuery};
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/organizations/api_keys", post(api_key_create).get(api_key_list))
        .route("/v1/organizations/api_keys/{id}", get(api_key_get).post(api_key_update))
        .route("/v1/organizations/api_keys/{id}/archive", post(api_key_archive))
        .route("/v1/organizations/usage", get(usage_get))
}

async fn api_key_create(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiJson(body): ApiJson<ApiKeyCreate>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(api_keys::create(&admin.ctx(&state), body).await?))
}

async fn api_key_list(
    State(state): State<AppState>,
    admin: AdminCaller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = list_params(raw.as_deref(), Some("workspace_id"))?;
    Ok(Json(api_keys::list(&state, &params, admin.now).await?))
}

async fn api_key_get(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(api_keys::get(&state, &id, admin.now).await?))
}

async fn api_key_update(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ApiKeyUpdate>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(api_keys::update(&admin.ctx(&state), &id, body).await?))
}

async fn api_key_archive(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(api_keys::archive(&admin.ctx(&state), &id).await?))
}

async fn usage_get(
    State(state): State<AppState>,
    admin: AdminCaller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let mut query = UsageQuery::default();
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if seen.iter().any(|field| *field == name) {
            return Err(ApiError::invalid_request(format!("{name}: given more than once")));
        }
        seen.push(name.to_string());
        let slot = match name.as_ref() {
            "starting_at" => &mut query.starting_at,
            "ending_at" => &mut query.ending_at,
            "workspace_id" => &mut query.workspace_id,
            "principal_id" => &mut query.principal_id,
            other => return Err(ApiError::invalid_request(format!("{other}: unknown query parameter"))),
        };
        *slot = Some(value.into_owned());
    }
    Ok(Json(usage::summary(&state, &query, admin.now).await?))
}
