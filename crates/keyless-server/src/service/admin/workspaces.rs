//! Workspaces: create, list, get, update (rename), archive.
//!
//! Parts: [`WorkspaceCreate`], [`WorkspaceUpdate`] (the request bodies), [`view`] (the wire object), then
//! [`create`], [`list`], [`get`], [`update`], [`archive`].
//!
//! Wherever a workspace ID is taken, `default` names the default workspace (as in memberships and rule
//! workspaces). `name` is a [`Name`] and may be changed. The default workspace exists from the first
//! start, is never created here and cannot be archived (400). Archiving any other workspace is refused
//! (409) while something live still uses it: a live rule that lists it among its workspaces, or a live
//! service account with an explicit membership of it. Rules that apply to all workspaces do not block
//! it. Rule and membership writers lock the workspaces they add ([`super::service_accounts`]'s
//! `live_workspace`) and the archive locks the workspace before it looks, so no reference can appear in
//! between; once archived, a workspace cannot be given to a new rule or membership (400).

use keyless_core::id::WorkspaceId;
use keyless_core::name::Name;
use keyless_store::audit::Audit;
use keyless_store::workspace::{WorkspaceRecord, WorkspaceReferences};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::service::admin::service_accounts::parse_workspace;
use crate::service::admin::{AdminError, Ctx, ListParams, audit_fields, changes, missing, new_id, page_view, record};
use crate::state::AppState;

/// The object's wire `type`.
pub const TYPE: &str = "workspace";

/// How many IDs of each kind an archive refusal names before it says how many more there are.
const NAMED_REFERENCES: usize = 5;

/// `POST /v1/organizations/workspaces`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceCreate {
    /// `name`.
    pub name: String,
}

/// `POST /v1/organizations/workspaces/{id}`: every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceUpdate {
    /// `name`.
    #[serde(default)]
    pub name: Option<String>,
}

fn parse_name(text: &str) -> Result<Name, AdminError> {
    Name::parse(text).map_err(|error| AdminError::Invalid(format!("name: {error}")))
}

fn not_found(id: &WorkspaceId) -> String {
    format!("no such workspace: {id}")
}

/// The wire object.
pub fn view(workspace: &WorkspaceRecord) -> Value {
    let mut view = Map::new();
    view.insert("id".to_owned(), Value::from(workspace.id.as_str()));
    view.insert("type".to_owned(), Value::from(TYPE));
    view.insert("name".to_owned(), Value::from(workspace.name.as_str()));
    view.insert("is_default".to_owned(), Value::from(workspace.is_default));
    audit_fields(&mut view, &workspace.audit);
    Value::Object(view)
}

/// Creates a workspace (never a default one: there is exactly one, made on the first start).
pub async fn create(ctx: &Ctx<'_>, body: WorkspaceCreate) -> Result<Value, AdminError> {
    let name = parse_name(&body.name)?;
    let id =
        WorkspaceId::parse(&new_id(WorkspaceId::PREFIX)?).map_err(|error| AdminError::Internal(error.to_string()))?;
    let workspace = WorkspaceRecord {
        id,
        organization_id: ctx.state.organization_id.clone(),
        name,
        is_default: false,
        audit: Audit::created(ctx.now, &ctx.actor.id),
    };
    let view = view(&workspace);
    let mut tx = ctx.state.store.begin().await?;
    tx.workspace_create(&workspace).await?;
    record(
        &mut tx,
        ctx,
        "platform_workspace_created",
        workspace.id.as_str(),
        json!({ "event_data": view }),
    )
    .await?;
    tx.commit().await?;
    Ok(view)
}

/// A page of workspaces.
pub async fn list(state: &AppState, params: &ListParams) -> Result<Value, AdminError> {
    let page = state.store.workspace_list(&state.organization_id, &params.list).await?;
    Ok(page_view(&page, view))
}

/// One workspace (`default` names the default workspace).
pub async fn get(state: &AppState, id: &str) -> Result<Value, AdminError> {
    let id = parse_workspace(state, "id", id)?;
    let workspace = state
        .store
        .workspace_get(&state.organization_id, &id)
        .await
        .map_err(missing(not_found(&id)))?;
    Ok(view(&workspace))
}

/// Updates a workspace (partially): today its `name`.
pub async fn update(ctx: &Ctx<'_>, id: &str, body: WorkspaceUpdate) -> Result<Value, AdminError> {
    let id = parse_workspace(ctx.state, "id", id)?;
    let name = body.name.as_deref().map(parse_name).transpose()?;
    let organization_id = &ctx.state.organization_id;
    let mut tx = ctx.state.store.begin().await?;
    let before = tx
        .workspace_get(organization_id, &id)
        .await
        .map_err(missing(not_found(&id)))?;
    if before.audit.is_archived() {
        return Err(AdminError::Invalid(format!(
            "id: workspace {id} is archived and cannot be updated"
        )));
    }
    let mut after = before.clone();
    if let Some(name) = name {
        after.name = name;
    }
    let before_view = view(&before);
    if changes(&before_view, &view(&after)).is_empty() {
        return Ok(before_view);
    }
    after.audit.touch(ctx.now, &ctx.actor.id);
    let after_view = view(&after);
    tx.workspace_update(&after).await?;
    record(
        &mut tx,
        ctx,
        "platform_workspace_updated",
        id.as_str(),
        json!({ "event_data": after_view, "changes": changes(&before_view, &after_view) }),
    )
    .await?;
    tx.commit().await?;
    Ok(after_view)
}

/// Archives a workspace (idempotent). The default workspace cannot be archived (400); another one not
/// while live rules list it or live service accounts are explicit members (409).
pub async fn archive(ctx: &Ctx<'_>, id: &str) -> Result<Value, AdminError> {
    let id = parse_workspace(ctx.state, "id", id)?;
    let organization_id = &ctx.state.organization_id;
    let mut tx = ctx.state.store.begin().await?;
    let mut workspace = tx
        .workspace_get(organization_id, &id)
        .await
        .map_err(missing(not_found(&id)))?;
    if workspace.is_default {
        return Err(AdminError::Invalid(format!(
            "id: workspace {id} is the default workspace, which cannot be archived"
        )));
    }
    if workspace.audit.is_archived() {
        return Ok(view(&workspace));
    }
    let references = tx.workspace_references(organization_id, &id).await?;
    if !references.is_empty() {
        return Err(AdminError::Conflict(in_use(&id, &references)));
    }
    tx.workspace_archive(organization_id, &id, ctx.now, &ctx.actor.id)
        .await?;
    workspace.audit.archived_at = Some(ctx.now);
    workspace.audit.archived_by_actor_id = Some(ctx.actor.id.clone());
    let view = view(&workspace);
    record(
        &mut tx,
        ctx,
        "platform_workspace_archived",
        id.as_str(),
        json!({ "event_data": view }),
    )
    .await?;
    tx.commit().await?;
    Ok(view)
}

/// The 409 message of an archive refused by `references` (not empty): what uses the workspace, by ID,
/// and what to do about it.
fn in_use(id: &WorkspaceId, references: &WorkspaceReferences) -> String {
    let mut uses = Vec::new();
    let mut remedies = Vec::new();
    if !references.rule_ids.is_empty() {
        uses.push(format!(
            "{} live federation rule(s) enabled in it ({})",
            references.rule_ids.len(),
            named(references.rule_ids.iter().map(|rule_id| rule_id.as_str()))
        ));
        remedies.push("disable the rules in this workspace or archive them");
    }
    if !references.service_account_ids.is_empty() {
        uses.push(format!(
            "{} live service account(s) with a membership of it ({})",
            references.service_account_ids.len(),
            named(references.service_account_ids.iter().map(|account| account.as_str()))
        ));
        remedies.push("remove the memberships");
    }
    if !references.api_key_ids.is_empty() {
        uses.push(format!(
            "{} live API key(s) ({})",
            references.api_key_ids.len(),
            named(references.api_key_ids.iter().map(|key| key.as_str()))
        ));
        remedies.push("archive the API keys");
    }
    format!(
        "workspace {id} is used by {}; {} first",
        uses.join(" and "),
        remedies.join(", and ")
    )
}

/// Up to [`NAMED_REFERENCES`] IDs, comma-separated, then how many more.
fn named<'a>(ids: impl ExactSizeIterator<Item = &'a str>) -> String {
    let n_ids = ids.len();
    let mut text = ids.take(NAMED_REFERENCES).collect::<Vec<_>>().join(", ");
    if n_ids > NAMED_REFERENCES {
        text.push_str(&format!(" and {} more", n_ids - NAMED_REFERENCES));
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use keyless_core::id::{ApiKeyId, RuleId, ServiceAccountId};

    use super::*;

    fn check(n_rules: usize, n_accounts: usize, n_keys: usize, expect: &str) {
        let references = WorkspaceReferences {
            rule_ids: (0..n_rules)
                .map(|idx| RuleId::parse(&format!("fdrl_{idx}")).unwrap())
                .collect(),
            service_account_ids: (0..n_accounts)
                .map(|idx| ServiceAccountId::parse(&format!("svac_{idx}")).unwrap())
                .collect(),
            api_key_ids: (0..n_keys)
                .map(|idx| ApiKeyId::parse(&format!("apikey_{idx}")).unwrap())
                .collect(),
        };
        let id = WorkspaceId::parse("wrkspc_w").unwrap();
        assert_eq!(in_use(&id, &references), expect);
    }

    #[test]
    fn archive_refusals_say_what_uses_the_workspace() {
        check(
            1,
            0,
            0,
            "workspace wrkspc_w is used by 1 live federation rule(s) enabled in it (fdrl_0); disable the rules \
             in this workspace or archive them first",
        );
        check(
            0,
            2,
            0,
            "workspace wrkspc_w is used by 2 live service account(s) with a membership of it (svac_0, svac_1); \
             remove the memberships first",
        );
        check(
            7,
            1,
            0,
            "workspace wrkspc_w is used by 7 live federation rule(s) enabled in it (fdrl_0, fdrl_1, fdrl_2, \
             fdrl_3, fdrl_4 and 2 more) and 1 live service account(s) with a membership of it (svac_0); \
             disable the rules in this workspace or archive them, and remove the memberships first",
        );
        check(
            0,
            0,
            1,
            "workspace wrkspc_w is used by 1 live API key(s) (apikey_0); archive the API keys first",
        );
    }
}
