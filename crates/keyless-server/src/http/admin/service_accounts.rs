//! `/v1/organizations/service_accounts[/{id}[/archive | /workspaces[/{workspace_id}]]]`.

use axum::extract::{RawQuery, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use crate::http::admin::list_params;
use crate::http::auth::AdminCaller;
use crate::http::error::{ApiError, ApiJson, ApiPath};
use crate::service::admin::service_accounts::{self, MembershipPut, ServiceAccountCreate, ServiceAccountUpdate};
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/organizations/service_accounts",
            post(service_account_create).get(service_account_list),
        )
        .route(
            "/v1/organizations/service_accounts/{id}",
            get(service_account_get).post(service_account_update),
        )
        .route(
            "/v1/organizations/service_accounts/{id}/archive",
            post(service_account_archive),
        )
        .route(
            "/v1/organizations/service_accounts/{id}/workspaces",
            get(workspaces_get).post(workspaces_post),
        )
        .route(
            "/v1/organizations/service_accounts/{id}/workspaces/{workspace_id}",
            get(workspace_get).post(workspace_post).delete(workspace_delete),
        )
}

async fn service_account_create(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiJson(body): ApiJson<ServiceAccountCreate>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(service_accounts::create(&admin.ctx(&state), body).await?))
}

async fn service_account_list(
    State(state): State<AppState>,
    _admin: AdminCaller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = list_params(raw.as_deref(), None)?;
    Ok(Json(service_accounts::list(&state, &params).await?))
}

async fn service_account_get(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(service_accounts::get(&state, &id).await?))
}

async fn service_account_update(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ServiceAccountUpdate>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(service_accounts::update(&admin.ctx(&state), &id, body).await?))
}

async fn service_account_archive(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(service_accounts::archive(&admin.ctx(&state), &id).await?))
}

async fn workspaces_get(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(service_accounts::memberships(&state, &id).await?))
}

async fn workspaces_post(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<MembershipPut>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        service_accounts::membership_put(&admin.ctx(&state), &id, None, body).await?,
    ))
}

async fn workspace_get(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiPath((id, workspace_id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        service_accounts::membership_get(&state, &id, &workspace_id).await?,
    ))
}

async fn workspace_post(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiPath((id, workspace_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<MembershipPut>,
) -> Result<Json<Value>, ApiError> {
    let ctx = admin.ctx(&state);
    Ok(Json(
        service_accounts::membership_put(&ctx, &id, Some(&workspace_id), body).await?,
    ))
}

async fn workspace_delete(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiPath((id, workspace_id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        service_accounts::membership_remove(&admin.ctx(&state), &id, &workspace_id).await?,
    ))
}
