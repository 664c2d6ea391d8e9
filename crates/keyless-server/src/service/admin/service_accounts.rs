//! Service accounts and their workspace memberships.
//!
//! Parts: [`ServiceAccountCreate`], [`ServiceAccountUpdate`], [`MembershipPut`] (the request bodies),
//! [`view`], [`membership_view`], then [`create`], [`list`], [`get`], [`update`], [`archive`],
//! [`memberships`], [`membership_get`], [`membership_put`], [`membership_remove`].
//!
//! `name` is immutable (an update naming another name is refused). `organization_role` is `developer`
//! (default) or `admin`; creating or promoting an admin needs an interactive credential
//! ([`super::Actor::interactive`]). Archiving is refused (409) while a live rule targets the account.
//!
//! Memberships: every account is an implicit `workspace_user` of the default workspace; that membership
//! is listed (`implicit: true`) but cannot be removed. An explicit membership of the default workspace
//! overrides its role; removing it restores the implicit one. `POST …/workspaces` adds a membership or
//! changes its role (`…_member_added` / `…_member_updated`); the same role again changes nothing.

use keyless_core::id::{ServiceAccountId, WorkspaceId, WorkspaceSelector};
use keyless_core::name::Name;
use keyless_core::service_account::OrganizationRole;
use keyless_store::audit::Audit;
use keyless_store::rule::RuleFilter;
use keyless_store::service_account::{ServiceAccountRecord, WorkspaceMembership, WorkspaceRole};
use keyless_store::{StoreError, Tx};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::service::admin::{
    AdminError, Ctx, ListParams, audit_fields, changes, check_description, missing, new_id, nullable, page_view,
    record, time,
};
use crate::state::AppState;

/// The object's wire `type`.
pub const TYPE: &str = "service_account";
/// A membership's wire `type`.
pub const MEMBERSHIP_TYPE: &str = "service_account_workspace_membership";

/// `POST /v1/organizations/service_accounts`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountCreate {
    /// `name`.
    pub name: String,
    /// `description`.
    #[serde(default)]
    pub description: Option<String>,
    /// `organization_role`: `developer` (default) or `admin`.
    #[serde(default)]
    pub organization_role: Option<String>,
}

/// `POST /v1/organizations/service_accounts/{id}`: every field optional; `description: null` clears it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountUpdate {
    /// `name`: immutable, accepted only unchanged.
    #[serde(default)]
    pub name: Option<String>,
    /// `description`.
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    /// `organization_role`.
    #[serde(default)]
    pub organization_role: Option<String>,
}

/// `POST …/service_accounts/{id}/workspaces` (`workspace_id` required) and
/// `POST …/workspaces/{workspace_id}` (`workspace_id` from the path).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipPut {
    /// `workspace_id`: `wrkspc_…` or `default`.
    #[serde(default)]
    pub workspace_id: Option<String>,
    /// `workspace_role`.
    pub workspace_role: String,
}

fn role_str(role: OrganizationRole) -> &'static str {
    match role {
        OrganizationRole::Developer => "developer",
        OrganizationRole::Admin => "admin",
    }
}

fn parse_role(text: &str) -> Result<OrganizationRole, AdminError> {
    match text {
        "developer" => Ok(OrganizationRole::Developer),
        "admin" => Ok(OrganizationRole::Admin),
        _ => Err(AdminError::Invalid(
            "organization_role: must be `developer` or `admin`".to_owned(),
        )),
    }
}

fn parse_workspace_role(text: &str) -> Result<WorkspaceRole, AdminError> {
    WorkspaceRole::parse(text).ok_or_else(|| {
        let roles: Vec<&str> = WorkspaceRole::ALL.iter().map(|role| role.as_str()).collect();
        AdminError::Invalid(format!("workspace_role: must be one of {}", roles.join(", ")))
    })
}

/// Parses a path or body `service_account_id`.
pub fn parse_id(field: &str, text: &str) -> Result<ServiceAccountId, AdminError> {
    ServiceAccountId::parse(text).map_err(|error| AdminError::Invalid(format!("{field}: {error}")))
}

/// Parses a `workspace_id` (`wrkspc_…` or `default`) into the workspace it names.
pub fn parse_workspace(state: &AppState, field: &str, text: &str) -> Result<WorkspaceId, AdminError> {
    WorkspaceSelector::parse(text)
        .map(|selector| selector.resolve(&state.default_workspace_id).clone())
        .map_err(|_| {
            AdminError::Invalid(format!(
                "{field}: must be `default` or `wrkspc_` followed by 1 to 64 ASCII letters or digits"
            ))
        })
}

/// Locks the workspace `id` in `tx`; it must exist and be live.
pub(crate) async fn live_workspace(
    tx: &mut Tx,
    state: &AppState,
    field: &str,
    id: &WorkspaceId,
) -> Result<(), AdminError> {
    let workspace = tx
        .workspace_get(&state.organization_id, id)
        .await
        .map_err(missing(format!("{field}: no such workspace: {id}")))?;
    if workspace.audit.is_archived() {
        return Err(AdminError::Invalid(format!("{field}: workspace {id} is archived")));
    }
    Ok(())
}

fn not_found(id: &ServiceAccountId) -> String {
    format!("no such service account: {id}")
}

fn archived(id: &ServiceAccountId) -> AdminError {
    AdminError::Invalid(format!("id: service account {id} is archived and cannot be updated"))
}

fn admin_needs_human() -> AdminError {
    AdminError::Forbidden(
        "organization_role: an admin service account can only be created or promoted with an interactive \
         credential (the bootstrap admin token), not with a service account's token"
            .to_owned(),
    )
}

/// The wire object.
pub fn view(service_account: &ServiceAccountRecord) -> Value {
    let mut view = Map::new();
    view.insert("id".to_owned(), Value::from(service_account.id.as_str()));
    view.insert("type".to_owned(), Value::from(TYPE));
    view.insert("name".to_owned(), Value::from(service_account.name.as_str()));
    view.insert("description".to_owned(), json!(service_account.description));
    view.insert(
        "organization_role".to_owned(),
        Value::from(role_str(service_account.organization_role)),
    );
    audit_fields(&mut view, &service_account.audit);
    Value::Object(view)
}

/// A membership's wire object.
pub fn membership_view(membership: &WorkspaceMembership, implicit: bool) -> Value {
    json!({
        "type": MEMBERSHIP_TYPE,
        "service_account_id": membership.service_account_id.as_str(),
        "workspace_id": membership.workspace_id.as_str(),
        "workspace_role": membership.workspace_role.as_str(),
        "implicit": implicit,
        "created_at": time(membership.created_at),
        "created_by_actor_id": membership.created_by_actor_id,
        "updated_at": time(membership.updated_at),
        "updated_by_actor_id": membership.updated_by_actor_id,
    })
}

/// The implicit `workspace_user` membership of the default workspace.
fn implicit_membership(state: &AppState, service_account: &ServiceAccountRecord) -> WorkspaceMembership {
    WorkspaceMembership {
        organization_id: state.organization_id.clone(),
        service_account_id: service_account.id.clone(),
        workspace_id: state.default_workspace_id.clone(),
        workspace_role: WorkspaceRole::User,
        created_at: service_account.audit.created_at,
        created_by_actor_id: service_account.audit.created_by_actor_id.clone(),
        updated_at: service_account.audit.created_at,
        updated_by_actor_id: service_account.audit.created_by_actor_id.clone(),
    }
}

/// Creates a service account.
pub async fn create(ctx: &Ctx<'_>, body: ServiceAccountCreate) -> Result<Value, AdminError> {
    let name = Name::parse(&body.name).map_err(|error| AdminError::Invalid(format!("name: {error}")))?;
    check_description(body.description.as_deref())?;
    let organization_role = body
        .organization_role
        .as_deref()
        .map(parse_role)
        .transpose()?
        .unwrap_or_default();
    if organization_role == OrganizationRole::Admin && !ctx.actor.interactive {
        return Err(admin_needs_human());
    }
    let id = ServiceAccountId::parse(&new_id(ServiceAccountId::PREFIX)?)
        .map_err(|error| AdminError::Internal(error.to_string()))?;
    let service_account = ServiceAccountRecord {
        id,
        organization_id: ctx.state.organization_id.clone(),
        name,
        description: body.description,
        organization_role,
        audit: Audit::created(ctx.now, &ctx.actor.id),
    };
    let view = view(&service_account);
    let mut tx = ctx.state.store.begin().await?;
    tx.service_account_create(&service_account).await?;
    record(
        &mut tx,
        ctx,
        "platform_service_account_created",
        service_account.id.as_str(),
        json!({ "event_data": view }),
    )
    .await?;
    tx.commit().await?;
    Ok(view)
}

/// A page of service accounts.
pub async fn list(state: &AppState, params: &ListParams) -> Result<Value, AdminError> {
    let page = state
        .store
        .service_account_list(&state.organization_id, &params.list)
        .await?;
    Ok(page_view(&page, view))
}

/// One service account.
pub async fn get(state: &AppState, id: &str) -> Result<Value, AdminError> {
    let id = parse_id("id", id)?;
    let service_account = state
        .store
        .service_account_get(&state.organization_id, &id)
        .await
        .map_err(missing(not_found(&id)))?;
    Ok(view(&service_account))
}

/// Updates a service account (partially).
pub async fn update(ctx: &Ctx<'_>, id: &str, body: ServiceAccountUpdate) -> Result<Value, AdminError> {
    let id = parse_id("id", id)?;
    if let Some(Some(description)) = &body.description {
        check_description(Some(description))?;
    }
    let organization_role = body.organization_role.as_deref().map(parse_role).transpose()?;
    let organization_id = &ctx.state.organization_id;
    let mut tx = ctx.state.store.begin().await?;
    let before = tx
        .service_account_get(organization_id, &id)
        .await
        .map_err(missing(not_found(&id)))?;
    if before.audit.is_archived() {
        return Err(archived(&id));
    }
    if body.name.as_deref().is_some_and(|name| name != before.name.as_str()) {
        return Err(AdminError::Invalid("name: is immutable".to_owned()));
    }
    let mut after = before.clone();
    if let Some(description) = body.description {
        after.description = description;
    }
    if let Some(role) = organization_role {
        if role == OrganizationRole::Admin
            && before.organization_role != OrganizationRole::Admin
            && !ctx.actor.interactive
        {
            return Err(admin_needs_human());
        }
        after.organization_role = role;
    }
    let before_view = view(&before);
    if changes(&before_view, &view(&after)).is_empty() {
        return Ok(before_view);
    }
    after.audit.touch(ctx.now, &ctx.actor.id);
    let after_view = view(&after);
    tx.service_account_update(&after).await?;
    record(
        &mut tx,
        ctx,
        "platform_service_account_updated",
        id.as_str(),
        json!({ "event_data": after_view, "changes": changes(&before_view, &after_view) }),
    )
    .await?;
    tx.commit().await?;
    Ok(after_view)
}

/// Archives a service account (idempotent); refused while a live rule targets it.
pub async fn archive(ctx: &Ctx<'_>, id: &str) -> Result<Value, AdminError> {
    let id = parse_id("id", id)?;
    let organization_id = &ctx.state.organization_id;
    let mut tx = ctx.state.store.begin().await?;
    let mut service_account = tx
        .service_account_get(organization_id, &id)
        .await
        .map_err(missing(not_found(&id)))?;
    if service_account.audit.is_archived() {
        return Ok(view(&service_account));
    }
    let filter = RuleFilter {
        issuer_id: None,
        service_account_id: Some(id.clone()),
    };
    let n_rules = tx.rule_count_live(organization_id, &filter).await?;
    if n_rules > 0 {
        return Err(AdminError::Conflict(format!(
            "service account {id} is the target of {n_rules} live federation rule(s); archive them first"
        )));
    }
    tx.service_account_archive(organization_id, &id, ctx.now, &ctx.actor.id)
        .await?;
    service_account.audit.archived_at = Some(ctx.now);
    service_account.audit.archived_by_actor_id = Some(ctx.actor.id.clone());
    let view = view(&service_account);
    record(
        &mut tx,
        ctx,
        "platform_service_account_archived",
        id.as_str(),
        json!({ "event_data": view }),
    )
    .await?;
    tx.commit().await?;
    Ok(view)
}

/// The memberships of a service account, the implicit one of the default workspace first when no
/// explicit one overrides it.
async fn membership_list(state: &AppState, id: &ServiceAccountId) -> Result<Vec<Value>, AdminError> {
    let service_account = state
        .store
        .service_account_get(&state.organization_id, id)
        .await
        .map_err(missing(not_found(id)))?;
    let explicit = state
        .store
        .service_account_workspace_list(&state.organization_id, id)
        .await?;
    let mut data = Vec::with_capacity(explicit.len() + 1);
    if !explicit
        .iter()
        .any(|membership| membership.workspace_id == state.default_workspace_id)
    {
        data.push(membership_view(&implicit_membership(state, &service_account), true));
    }
    data.extend(explicit.iter().map(|membership| membership_view(membership, false)));
    Ok(data)
}

/// `GET …/service_accounts/{id}/workspaces`: `{data, next_page: null}` (never paged).
pub async fn memberships(state: &AppState, id: &str) -> Result<Value, AdminError> {
    let id = parse_id("id", id)?;
    let data = membership_list(state, &id).await?;
    Ok(json!({ "data": data, "next_page": null }))
}

/// `GET …/service_accounts/{id}/workspaces/{workspace_id}`.
pub async fn membership_get(state: &AppState, id: &str, workspace_id: &str) -> Result<Value, AdminError> {
    let id = parse_id("id", id)?;
    let workspace_id = parse_workspace(state, "workspace_id", workspace_id)?;
    membership_list(state, &id)
        .await?
        .into_iter()
        .find(|membership| membership.get("workspace_id").and_then(Value::as_str) == Some(workspace_id.as_str()))
        .ok_or_else(|| {
            AdminError::NotFound(format!(
                "service account {id} is not a member of workspace {workspace_id}"
            ))
        })
}

/// Adds a membership or changes its role; `path_workspace_id` is the path's, if the route has one.
pub async fn membership_put(
    ctx: &Ctx<'_>,
    id: &str,
    path_workspace_id: Option<&str>,
    body: MembershipPut,
) -> Result<Value, AdminError> {
    let id = parse_id("id", id)?;
    let workspace_text = match (path_workspace_id, body.workspace_id.as_deref()) {
        (Some(path), None) => path,
        (Some(path), Some(given)) if given == path => path,
        (Some(_), Some(_)) => {
            return Err(AdminError::Invalid(
                "workspace_id: differs from the workspace in the path".to_owned(),
            ));
        }
        (None, Some(given)) => given,
        (None, None) => return Err(AdminError::Invalid("workspace_id: required".to_owned())),
    };
    let workspace_id = parse_workspace(ctx.state, "workspace_id", workspace_text)?;
    let workspace_role = parse_workspace_role(&body.workspace_role)?;
    let organization_id = &ctx.state.organization_id;

    let mut tx = ctx.state.store.begin().await?;
    let service_account = tx
        .service_account_get(organization_id, &id)
        .await
        .map_err(missing(not_found(&id)))?;
    if service_account.audit.is_archived() {
        return Err(archived(&id));
    }
    live_workspace(&mut tx, ctx.state, "workspace_id", &workspace_id).await?;
    let existing = match tx
        .service_account_workspace_get(organization_id, &id, &workspace_id)
        .await
    {
        Ok(membership) => Some(membership),
        Err(StoreError::NotFound) => None,
        Err(error) => return Err(error.into()),
    };
    let (membership, activity_type, payload) = match existing {
        Some(membership) if membership.workspace_role == workspace_role => {
            return Ok(membership_view(&membership, false));
        }
        Some(before) => {
            let mut after = before.clone();
            after.workspace_role = workspace_role;
            after.updated_at = ctx.now;
            ctx.actor.id.clone_into(&mut after.updated_by_actor_id);
            tx.service_account_workspace_update(&after).await?;
            let (before_view, after_view) = (membership_view(&before, false), membership_view(&after, false));
            let payload = json!({ "event_data": after_view, "changes": changes(&before_view, &after_view) });
            (after, "platform_service_account_workspace_member_updated", payload)
        }
        None => {
            let membership = WorkspaceMembership {
                organization_id: organization_id.clone(),
                service_account_id: id.clone(),
                workspace_id,
                workspace_role,
                created_at: ctx.now,
                created_by_actor_id: ctx.actor.id.clone(),
                updated_at: ctx.now,
                updated_by_actor_id: ctx.actor.id.clone(),
            };
            tx.service_account_workspace_add(&membership).await?;
            let payload = json!({ "event_data": membership_view(&membership, false) });
            (membership, "platform_service_account_workspace_member_added", payload)
        }
    };
    record(&mut tx, ctx, activity_type, id.as_str(), payload).await?;
    tx.commit().await?;
    Ok(membership_view(&membership, false))
}

/// Removes an explicit membership; the implicit one of the default workspace cannot be removed.
pub async fn membership_remove(ctx: &Ctx<'_>, id: &str, workspace_id: &str) -> Result<Value, AdminError> {
    let id = parse_id("id", id)?;
    let workspace_id = parse_workspace(ctx.state, "workspace_id", workspace_id)?;
    let organization_id = &ctx.state.organization_id;
    let mut tx = ctx.state.store.begin().await?;
    let service_account = tx
        .service_account_get(organization_id, &id)
        .await
        .map_err(missing(not_found(&id)))?;
    if service_account.audit.is_archived() {
        return Err(archived(&id));
    }
    let membership = match tx
        .service_account_workspace_get(organization_id, &id, &workspace_id)
        .await
    {
        Ok(membership) => membership,
        Err(StoreError::NotFound) if workspace_id == ctx.state.default_workspace_id => {
            return Err(AdminError::Invalid(
                "workspace_id: the implicit membership of the default workspace cannot be removed".to_owned(),
            ));
        }
        Err(error) => {
            return Err(missing(format!(
                "service account {id} is not a member of workspace {workspace_id}"
            ))(error));
        }
    };
    tx.service_account_workspace_remove(organization_id, &id, &workspace_id)
        .await?;
    let removed = membership_view(&membership, false);
    record(
        &mut tx,
        ctx,
        "platform_service_account_workspace_member_removed",
        id.as_str(),
        json!({ "event_data": removed }),
    )
    .await?;
    tx.commit().await?;
    Ok(json!({
        "type": "service_account_workspace_membership_deleted",
        "service_account_id": id.as_str(),
        "workspace_id": workspace_id.as_str(),
    }))
}
