//! `/v1/organizations/workspaces[/{id}[/archive]]`.

use axum::extract::{RawQuery, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use crate::http::admin::list_params;
use crate::http::auth::AdminCaller;
use crate::http::error::{ApiError, ApiJson, ApiPath};
use crate::service::admin::workspaces::{self, WorkspaceCreate, WorkspaceUpdate};
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/organizations/workspaces",
            post(workspace_create).get(workspace_list),
        )
        .route(
            "/v1/organizations/workspaces/{id}",
            get(workspace_get).post(workspace_update),
        )
        .route("/v1/organizations/workspaces/{id}/archive", post(workspace_archive))
}

async fn workspace_create(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiJson(body): ApiJson<WorkspaceCreate>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(workspaces::create(&admin.ctx(&state), body).await?))
}

async fn workspace_list(
    State(state): State<AppState>,
    _admin: AdminCaller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = list_params(raw.as_deref(), None)?;
    Ok(Json(workspaces::list(&state, &params).await?))
}

async fn workspace_get(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(workspaces::get(&state, &id).await?))
}

async fn workspace_update(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<WorkspaceUpdate>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(workspaces::update(&admin.ctx(&state), &id, body).await?))
}

async fn workspace_archive(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(workspaces::archive(&admin.ctx(&state), &id).await?))
}
