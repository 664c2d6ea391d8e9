//! `/v1/organizations/federation_rules[/simulate | /validate | /replay | /{id}[/archive |
//! /workspaces[/{workspace_id}]]]`.
//!
//! `simulate`, `validate` and `replay` are static segments: axum routes them before the `{id}` capture
//! (a test holds this).

use axum::extract::{RawQuery, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use keyless_core::rule::RuleDraft;
use serde_json::Value;

use crate::http::admin::list_params;
use crate::http::auth::AdminCaller;
use crate::http::error::{ApiError, ApiJson, ApiPath};
use crate::service::admin::replay::{self, ReplayRequest};
use crate::service::admin::rules::{self, RuleUpdate, WorkspaceAdd};
use crate::service::admin::simulate::{self, SimulateRequest};
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/organizations/federation_rules", post(rule_create).get(rule_list))
        .route("/v1/organizations/federation_rules/simulate", post(rules_simulate))
        .route("/v1/organizations/federation_rules/validate", post(rule_validate))
        .route("/v1/organizations/federation_rules/replay", post(rules_replay))
        .route(
            "/v1/organizations/federation_rules/{id}",
            get(rule_get).post(rule_update),
        )
        .route("/v1/organizations/federation_rules/{id}/archive", post(rule_archive))
        .route(
            "/v1/organizations/federation_rules/{id}/workspaces",
            get(workspaces_get).post(workspaces_post),
        )
        .route(
            "/v1/organizations/federation_rules/{id}/workspaces/{workspace_id}",
            get(workspace_get).delete(workspace_delete),
        )
}

async fn rule_create(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiJson(body): ApiJson<RuleDraft>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(rules::create(&admin.ctx(&state), body).await?))
}

async fn rules_simulate(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiJson(body): ApiJson<SimulateRequest>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(simulate::simulate(&admin.ctx(&state), body).await?))
}

async fn rule_validate(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiJson(body): ApiJson<RuleDraft>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(rules::validate_draft(&admin.ctx(&state), body).await?))
}

async fn rules_replay(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiJson(body): ApiJson<ReplayRequest>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(replay::replay(&admin.ctx(&state), body).await?))
}

async fn rule_list(
    State(state): State<AppState>,
    _admin: AdminCaller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = list_params(raw.as_deref(), Some("issuer_id"))?;
    Ok(Json(rules::list(&state, &params).await?))
}

async fn rule_get(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(rules::get(&state, &id).await?))
}

async fn rule_update(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RuleUpdate>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(rules::update(&admin.ctx(&state), &id, body).await?))
}

async fn rule_archive(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(rules::archive(&admin.ctx(&state), &id).await?))
}

async fn workspaces_get(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(rules::workspaces(&state, &id).await?))
}

async fn workspaces_post(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<WorkspaceAdd>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(rules::workspace_add(&admin.ctx(&state), &id, body).await?))
}

async fn workspace_get(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiPath((id, workspace_id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(rules::workspace_get(&state, &id, &workspace_id).await?))
}

async fn workspace_delete(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiPath((id, workspace_id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        rules::workspace_remove(&admin.ctx(&state), &id, &workspace_id).await?,
    ))
}
