//! Federation rules and the workspaces they are enabled in.
//!
//! Parts: [`RuleUpdate`] (the update body; a create body is keyless-core's [`RuleDraft`]), [`view`],
//! then [`create`], [`list`], [`get`], [`update`], [`archive`], [`workspaces`], [`workspace_add`],
//! [`workspace_remove`]; [`validate_draft`] (a create run dry, through `dry_run`, which replay's drafts
//! go through too).
//!
//! A create or an update is validated whole by [`RuleDraft::validate`] against the rule's issuer (an
//! update merges the body into the stored rule first: `match` and `target` are replaced whole, any of
//! `workspace_id`, `workspace_ids`, `applies_to_all_workspaces` replaces the workspaces). The CEL
//! condition compiles on a blocking thread before the transaction begins; inside it, the issuer, the
//! target service account and the listed workspaces are locked and checked again (live, in the
//! organization; an issuer that changed meanwhile is a 409 to retry).
//!
//! Authorization beyond `org:admin`: a rule whose scope (before or after the change) holds anything
//! outside the `workspace:` namespace (e.g. `org:admin`) may be created or changed — including its
//! workspaces — only with an interactive credential ([`super::Actor::interactive`]); archiving is always
//! allowed. A scope must also be allowed for the target's role: `org:` scopes need
//! `organization_role = admin`. `issuer_id` is immutable.

use std::collections::BTreeSet;

use keyless_core::id::{RuleId, WorkspaceId};
use keyless_core::issuer::Issuer;
use keyless_core::rule::{MatchDraft, RuleDraft, RuleSpec, RuleWorkspaces, TargetDraft};
use keyless_core::scope::ScopeSet;
use keyless_store::Tx;
use keyless_store::audit::Audit;
use keyless_store::rule::{RuleFilter, RuleRecord};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::service::admin::service_accounts::{live_workspace, parse_workspace};
use crate::service::admin::{
    AdminError, Ctx, ListParams, audit_fields, changes, check_description, issuers, missing, new_id, nullable,
    page_view, record,
};
use crate::state::AppState;

/// The object's wire `type`.
pub const TYPE: &str = "federation_rule";
/// The scope namespace that OAuth (non-interactive) callers may grant.
const WORKSPACE_NAMESPACE: &str = "workspace:";

/// `POST /v1/organizations/federation_rules/{id}`: every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleUpdate {
    /// `name`.
    #[serde(default)]
    pub name: Option<String>,
    /// `description`; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    /// `issuer_id`: immutable, accepted only unchanged.
    #[serde(default)]
    pub issuer_id: Option<String>,
    /// `match`, replaced whole.
    #[serde(default, rename = "match")]
    pub r#match: Option<MatchDraft>,
    /// `target`, replaced whole.
    #[serde(default)]
    pub target: Option<TargetDraft>,
    /// `oauth_scope`.
    #[serde(default)]
    pub oauth_scope: Option<String>,
    /// `token_lifetime_seconds`.
    #[serde(default)]
    pub token_lifetime_seconds: Option<i64>,
    /// `workspace_id`.
    #[serde(default)]
    pub workspace_id: Option<String>,
    /// `workspace_ids`.
    #[serde(default)]
    pub workspace_ids: Option<Vec<String>>,
    /// `applies_to_all_workspaces`.
    #[serde(default)]
    pub applies_to_all_workspaces: Option<bool>,
    /// `mode`: `enforce` or `shadow`.
    #[serde(default)]
    pub mode: Option<String>,
}

/// `POST …/federation_rules/{id}/workspaces`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceAdd {
    /// `workspace_id`: `wrkspc_…` or `default`.
    pub workspace_id: String,
}

/// The wire object.
pub fn view(rule: &RuleRecord) -> Value {
    let mut view = Map::new();
    view.insert("id".to_owned(), Value::from(rule.id.as_str()));
    view.insert("type".to_owned(), Value::from(TYPE));
    view.insert("name".to_owned(), Value::from(rule.name.as_str()));
    view.insert("description".to_owned(), json!(rule.description));
    view.insert("issuer_id".to_owned(), Value::from(rule.issuer_id.as_str()));
    let draft = &rule.r#match;
    view.insert(
        "match".to_owned(),
        json!({
            "subject_prefix": draft.subject_prefix,
            "audience": draft.audience,
            "claims": draft.claims,
            "condition": draft.condition,
        }),
    );
    view.insert(
        "target".to_owned(),
        json!({ "type": "service_account", "service_account_id": rule.service_account_id.as_str() }),
    );
    view.insert("oauth_scope".to_owned(), Value::from(rule.oauth_scope.to_string()));
    view.insert(
        "token_lifetime_seconds".to_owned(),
        Value::from(rule.token_lifetime.seconds()),
    );
    let (all, listed): (bool, Vec<&str>) = match &rule.workspaces {
        RuleWorkspaces::All => (true, Vec::new()),
        RuleWorkspaces::Listed(ids) => (false, ids.iter().map(WorkspaceId::as_str).collect()),
    };
    view.insert("workspace_ids".to_owned(), json!(listed));
    view.insert("applies_to_all_workspaces".to_owned(), Value::from(all));
    view.insert("mode".to_owned(), Value::from(rule.mode.as_str()));
    audit_fields(&mut view, &rule.audit);
    Value::Object(view)
}

/// Parses a path `id`.
pub fn parse_id(field: &str, text: &str) -> Result<RuleId, AdminError> {
    RuleId::parse(text).map_err(|error| AdminError::Invalid(format!("{field}: {error}")))
}

fn not_found(id: &RuleId) -> String {
    format!("no such federation rule: {id}")
}

fn archived(id: &RuleId) -> AdminError {
    AdminError::Invalid(format!("id: federation rule {id} is archived and cannot be updated"))
}

/// Whether a scope needs an interactive credential to grant (anything outside `workspace:`).
fn needs_human(scope: &ScopeSet) -> bool {
    scope
        .iter()
        .any(|scope| !scope.as_str().starts_with(WORKSPACE_NAMESPACE))
}

fn check_may_write(ctx: &Ctx<'_>, scope: &ScopeSet) -> Result<(), AdminError> {
    if needs_human(scope) && !ctx.actor.interactive {
        return Err(AdminError::Forbidden(format!(
            "oauth_scope: a rule granting `{scope}` can only be created or changed with an interactive \
             credential (the bootstrap admin token); service account tokens may only write rules whose \
             scopes are all workspace scopes"
        )));
    }
    Ok(())
}

/// Validates `draft` against `issuer` on a blocking thread (CEL compilation).
async fn validate(draft: RuleDraft, issuer: Issuer, state: &AppState) -> Result<RuleSpec, AdminError> {
    let default_workspace_id = state.default_workspace_id.clone();
    tokio::task::spawn_blocking(move || draft.validate(&issuer, &default_workspace_id))
        .await
        .map_err(|error| AdminError::Internal(format!("rule validation did not finish: {error}")))?
        .map_err(|error| AdminError::Refused {
            code: error.code(),
            message: error.to_string(),
        })
}

/// The rule's lint warnings as the wire shows them: `[{code, field, message}]`.
fn warnings(spec: &RuleSpec, issuer: &Issuer) -> Value {
    let lints = keyless_core::lint::lint(&spec.r#match, spec.token_lifetime.seconds(), issuer);
    Value::Array(
        lints
            .into_iter()
            .map(|lint| json!({ "code": lint.code, "field": lint.field, "message": lint.message }))
            .collect(),
    )
}

/// `view` with the lint warnings of the write: what a create or update answers.
fn with_warnings(mut view: Value, warnings: Value) -> Value {
    if let Some(object) = view.as_object_mut() {
        object.insert("warnings".to_owned(), warnings);
    }
    view
}

/// Reads the live issuer `text` names, for validation before the transaction.
async fn issuer_for(state: &AppState, text: &str) -> Result<Issuer, AdminError> {
    let id = issuers::parse_id("issuer_id", text)?;
    let issuer = state
        .store
        .issuer_get(&state.organization_id, &id)
        .await
        .map_err(missing(format!("issuer_id: no such federation issuer: {id}")))?;
    if issuer.audit.is_archived() {
        return Err(AdminError::Invalid(format!(
            "issuer_id: federation issuer {id} is archived"
        )));
    }
    Ok(issuer.to_issuer())
}

/// Inside `tx`: locks the issuer (unchanged since validation), the target (live, role allows the
/// scope) and the listed workspaces (live).
async fn lock_references(tx: &mut Tx, ctx: &Ctx<'_>, issuer: &Issuer, spec: &RuleSpec) -> Result<(), AdminError> {
    let organization_id = &ctx.state.organization_id;
    let locked = tx
        .issuer_get(organization_id, &spec.issuer_id)
        .await
        .map_err(missing(format!(
            "issuer_id: no such federation issuer: {}",
            spec.issuer_id
        )))?
        .to_issuer();
    if locked != *issuer {
        return Err(AdminError::Conflict(
            "issuer_id: the federation issuer changed while the rule was validated; retry".to_owned(),
        ));
    }
    let target = tx
        .service_account_get(organization_id, &spec.target)
        .await
        .map_err(missing(format!(
            "target.service_account_id: no such service account: {}",
            spec.target
        )))?;
    if target.audit.is_archived() {
        return Err(AdminError::Invalid(format!(
            "target.service_account_id: service account {} is archived",
            spec.target
        )));
    }
    if let Some(scope) = spec
        .oauth_scope
        .iter()
        .find(|scope| !scope.allowed_for(target.organization_role))
    {
        return Err(AdminError::Invalid(format!(
            "oauth_scope: `{scope}` needs a target service account with organization_role admin"
        )));
    }
    if let RuleWorkspaces::Listed(listed) = &spec.workspaces {
        for workspace_id in listed {
            live_workspace(tx, ctx.state, "workspace_ids", workspace_id).await?;
        }
    }
    Ok(())
}

/// The record `spec` describes, with `id`, `r#match` as written and `audit`.
fn record_of(ctx: &Ctx<'_>, id: RuleId, spec: RuleSpec, r#match: MatchDraft, audit: Audit) -> RuleRecord {
    RuleRecord {
        id,
        organization_id: ctx.state.organization_id.clone(),
        name: spec.name,
        description: spec.description,
        issuer_id: spec.issuer_id,
        r#match,
        service_account_id: spec.target,
        oauth_scope: spec.oauth_scope,
        token_lifetime: spec.token_lifetime,
        workspaces: spec.workspaces,
        mode: spec.mode,
        audit,
    }
}

/// A create body checked as a create checks it: everything but the references, which are locked in the
/// transaction.
pub(crate) struct CheckedDraft {
    /// The rule it describes.
    pub(crate) spec: RuleSpec,
    /// Its `match` block as written.
    pub(crate) r#match: MatchDraft,
    /// Its (live) issuer.
    pub(crate) issuer: Issuer,
    /// Its lint warnings, as the wire shows them.
    pub(crate) warnings: Value,
}

async fn check_draft(ctx: &Ctx<'_>, draft: RuleDraft) -> Result<CheckedDraft, AdminError> {
    check_description(draft.description.as_deref())?;
    let issuer = issuer_for(ctx.state, &draft.issuer_id).await?;
    let r#match = draft.r#match.clone();
    let spec = validate(draft, issuer.clone(), ctx.state).await?;
    check_may_write(ctx, &spec.oauth_scope)?;
    let warnings = warnings(&spec, &issuer);
    Ok(CheckedDraft {
        spec,
        r#match,
        issuer,
        warnings,
    })
}

/// Checks `draft` exactly as [`create`] would (refusals and all, references included) and creates
/// nothing: what `validate` and replay's draft rules go through.
pub(crate) async fn dry_run(ctx: &Ctx<'_>, draft: RuleDraft) -> Result<CheckedDraft, AdminError> {
    let checked = check_draft(ctx, draft).await?;
    let mut tx = ctx.state.store.begin().await?;
    lock_references(&mut tx, ctx, &checked.issuer, &checked.spec).await?;
    tx.rollback().await?;
    Ok(checked)
}

/// `POST …/federation_rules/validate`: what a create of `draft` would answer — its refusal, or its lint
/// warnings — with nothing created and nothing recorded.
pub async fn validate_draft(ctx: &Ctx<'_>, draft: RuleDraft) -> Result<Value, AdminError> {
    let checked = dry_run(ctx, draft).await?;
    Ok(json!({ "valid": true, "warnings": checked.warnings }))
}

/// Creates a rule.
pub async fn create(ctx: &Ctx<'_>, draft: RuleDraft) -> Result<Value, AdminError> {
    let CheckedDraft {
        spec,
        r#match,
        issuer,
        warnings,
    } = check_draft(ctx, draft).await?;
    let id = RuleId::parse(&new_id(RuleId::PREFIX)?).map_err(|error| AdminError::Internal(error.to_string()))?;

    let mut tx = ctx.state.store.begin().await?;
    lock_references(&mut tx, ctx, &issuer, &spec).await?;
    let rule = record_of(ctx, id, spec, r#match, Audit::created(ctx.now, &ctx.actor.id));
    let view = view(&rule);
    tx.rule_create(&rule).await?;
    record(
        &mut tx,
        ctx,
        "platform_federation_rule_created",
        rule.id.as_str(),
        json!({ "event_data": view, "warnings": warnings }),
    )
    .await?;
    tx.commit().await?;
    Ok(with_warnings(view, warnings))
}

/// A page of rules, optionally of one issuer.
pub async fn list(state: &AppState, params: &ListParams) -> Result<Value, AdminError> {
    let filter = RuleFilter {
        issuer_id: params
            .issuer_id
            .as_deref()
            .map(|text| issuers::parse_id("issuer_id", text))
            .transpose()?,
        service_account_id: None,
    };
    let page = state
        .store
        .rule_list(&state.organization_id, &filter, &params.list)
        .await?;
    Ok(page_view(&page, view))
}

/// One rule.
pub async fn get(state: &AppState, id: &str) -> Result<Value, AdminError> {
    let id = parse_id("id", id)?;
    let rule = state
        .store
        .rule_get(&state.organization_id, &id)
        .await
        .map_err(missing(not_found(&id)))?;
    Ok(view(&rule))
}

/// The draft of `rule` with `body` applied.
fn merged(rule: &RuleRecord, body: RuleUpdate) -> Result<RuleDraft, AdminError> {
    if body
        .issuer_id
        .as_deref()
        .is_some_and(|issuer_id| issuer_id != rule.issuer_id.as_str())
    {
        return Err(AdminError::Invalid("issuer_id: is immutable".to_owned()));
    }
    if let Some(Some(description)) = &body.description {
        check_description(Some(description))?;
    }
    let replaces_workspaces =
        body.workspace_id.is_some() || body.workspace_ids.is_some() || body.applies_to_all_workspaces.is_some();
    let (workspace_id, workspace_ids, applies_to_all_workspaces) = if replaces_workspaces {
        (body.workspace_id, body.workspace_ids, body.applies_to_all_workspaces)
    } else {
        match &rule.workspaces {
            RuleWorkspaces::All => (None, None, Some(true)),
            RuleWorkspaces::Listed(listed) => (
                None,
                Some(listed.iter().map(|id| id.as_str().to_owned()).collect()),
                None,
            ),
        }
    };
    Ok(RuleDraft {
        name: body.name.unwrap_or_else(|| rule.name.as_str().to_owned()),
        description: body.description.unwrap_or_else(|| rule.description.clone()),
        issuer_id: rule.issuer_id.as_str().to_owned(),
        r#match: body.r#match.unwrap_or_else(|| rule.r#match.clone()),
        target: body.target.unwrap_or_else(|| TargetDraft {
            kind: "service_account".to_owned(),
            service_account_id: rule.service_account_id.as_str().to_owned(),
        }),
        oauth_scope: Some(body.oauth_scope.unwrap_or_else(|| rule.oauth_scope.to_string())),
        token_lifetime_seconds: Some(
            body.token_lifetime_seconds
                .unwrap_or_else(|| rule.token_lifetime.seconds()),
        ),
        workspace_id,
        workspace_ids,
        applies_to_all_workspaces,
        mode: Some(body.mode.unwrap_or_else(|| rule.mode.as_str().to_owned())),
    })
}

/// Updates a rule (partially).
pub async fn update(ctx: &Ctx<'_>, id: &str, body: RuleUpdate) -> Result<Value, AdminError> {
    let id = parse_id("id", id)?;
    let organization_id = &ctx.state.organization_id;
    let read = ctx
        .state
        .store
        .rule_get(organization_id, &id)
        .await
        .map_err(missing(not_found(&id)))?;
    if read.audit.is_archived() {
        return Err(archived(&id));
    }
    let draft = merged(&read, body)?;
    let r#match = draft.r#match.clone();
    let issuer = issuer_for(ctx.state, read.issuer_id.as_str()).await?;
    let spec = validate(draft, issuer.clone(), ctx.state).await?;
    check_may_write(ctx, &read.oauth_scope)?;
    check_may_write(ctx, &spec.oauth_scope)?;
    let warnings = warnings(&spec, &issuer);

    let mut tx = ctx.state.store.begin().await?;
    let before = tx
        .rule_get(organization_id, &id)
        .await
        .map_err(missing(not_found(&id)))?;
    if before != read {
        return Err(AdminError::Conflict(
            "id: the federation rule changed while the update was validated; retry".to_owned(),
        ));
    }
    lock_references(&mut tx, ctx, &issuer, &spec).await?;
    let mut after = record_of(ctx, id.clone(), spec, r#match, before.audit.clone());
    let before_view = view(&before);
    if changes(&before_view, &view(&after)).is_empty() {
        return Ok(with_warnings(before_view, warnings));
    }
    after.audit.touch(ctx.now, &ctx.actor.id);
    let after_view = view(&after);
    tx.rule_update(&after).await?;
    record(
        &mut tx,
        ctx,
        "platform_federation_rule_updated",
        id.as_str(),
        json!({ "event_data": after_view, "changes": changes(&before_view, &after_view), "warnings": warnings }),
    )
    .await?;
    tx.commit().await?;
    Ok(with_warnings(after_view, warnings))
}

/// Archives a rule (idempotent; exchanges through it stop at once).
pub async fn archive(ctx: &Ctx<'_>, id: &str) -> Result<Value, AdminError> {
    let id = parse_id("id", id)?;
    let organization_id = &ctx.state.organization_id;
    let mut tx = ctx.state.store.begin().await?;
    let mut rule = tx
        .rule_get(organization_id, &id)
        .await
        .map_err(missing(not_found(&id)))?;
    if rule.audit.is_archived() {
        return Ok(view(&rule));
    }
    tx.rule_archive(organization_id, &id, ctx.now, &ctx.actor.id).await?;
    rule.audit.archived_at = Some(ctx.now);
    rule.audit.archived_by_actor_id = Some(ctx.actor.id.clone());
    let view = view(&rule);
    record(
        &mut tx,
        ctx,
        "platform_federation_rule_archived",
        id.as_str(),
        json!({ "event_data": view }),
    )
    .await?;
    tx.commit().await?;
    Ok(view)
}

fn workspace_view(rule_id: &RuleId, workspace_id: &WorkspaceId) -> Value {
    json!({
        "type": "federation_rule_workspace",
        "federation_rule_id": rule_id.as_str(),
        "workspace_id": workspace_id.as_str(),
    })
}

/// `GET …/federation_rules/{id}/workspaces`: `{data, applies_to_all_workspaces, next_page: null}`.
pub async fn workspaces(state: &AppState, id: &str) -> Result<Value, AdminError> {
    let id = parse_id("id", id)?;
    let rule = state
        .store
        .rule_get(&state.organization_id, &id)
        .await
        .map_err(missing(not_found(&id)))?;
    let (all, data) = match &rule.workspaces {
        RuleWorkspaces::All => (true, Vec::new()),
        RuleWorkspaces::Listed(listed) => (
            false,
            listed
                .iter()
                .map(|workspace_id| workspace_view(&id, workspace_id))
                .collect(),
        ),
    };
    Ok(json!({ "data": data, "applies_to_all_workspaces": all, "next_page": null }))
}

/// `GET …/federation_rules/{id}/workspaces/{workspace_id}`: 404 unless the rule is enabled there.
pub async fn workspace_get(state: &AppState, id: &str, workspace_id: &str) -> Result<Value, AdminError> {
    let id = parse_id("id", id)?;
    let workspace_id = parse_workspace(state, "workspace_id", workspace_id)?;
    let rule = state
        .store
        .rule_get(&state.organization_id, &id)
        .await
        .map_err(missing(not_found(&id)))?;
    if rule.workspaces.enables(&workspace_id) {
        Ok(workspace_view(&id, &workspace_id))
    } else {
        Err(AdminError::NotFound(format!(
            "federation rule {id} is not enabled in workspace {workspace_id}"
        )))
    }
}

/// Locks the live rule `id` for a workspace change, which the caller must be allowed to make.
async fn rule_for_workspace_change(
    tx: &mut Tx,
    ctx: &Ctx<'_>,
    id: &RuleId,
) -> Result<BTreeSet<WorkspaceId>, AdminError> {
    let rule = tx
        .rule_get(&ctx.state.organization_id, id)
        .await
        .map_err(missing(not_found(id)))?;
    if rule.audit.is_archived() {
        return Err(archived(id));
    }
    check_may_write(ctx, &rule.oauth_scope)?;
    match rule.workspaces {
        RuleWorkspaces::All => Err(AdminError::Invalid(format!(
            "workspace_id: federation rule {id} applies to all workspaces; update applies_to_all_workspaces instead"
        ))),
        RuleWorkspaces::Listed(listed) => Ok(listed),
    }
}

/// Enables a rule in one more workspace (enabling it again changes nothing); returns the rule.
pub async fn workspace_add(ctx: &Ctx<'_>, id: &str, body: WorkspaceAdd) -> Result<Value, AdminError> {
    let id = parse_id("id", id)?;
    let workspace_id = parse_workspace(ctx.state, "workspace_id", &body.workspace_id)?;
    let organization_id = &ctx.state.organization_id;
    let mut tx = ctx.state.store.begin().await?;
    let listed = rule_for_workspace_change(&mut tx, ctx, &id).await?;
    if !listed.contains(&workspace_id) {
        live_workspace(&mut tx, ctx.state, "workspace_id", &workspace_id).await?;
        tx.rule_workspace_add(organization_id, &id, &workspace_id).await?;
        record(
            &mut tx,
            ctx,
            "platform_federation_rule_workspace_added",
            id.as_str(),
            json!({ "event_data": workspace_view(&id, &workspace_id) }),
        )
        .await?;
    }
    let rule = tx.rule_get(organization_id, &id).await?;
    tx.commit().await?;
    Ok(view(&rule))
}

/// Disables a rule in one workspace; its last workspace cannot be removed (archive the rule instead).
pub async fn workspace_remove(ctx: &Ctx<'_>, id: &str, workspace_id: &str) -> Result<Value, AdminError> {
    let id = parse_id("id", id)?;
    let workspace_id = parse_workspace(ctx.state, "workspace_id", workspace_id)?;
    let organization_id = &ctx.state.organization_id;
    let mut tx = ctx.state.store.begin().await?;
    let listed = rule_for_workspace_change(&mut tx, ctx, &id).await?;
    if !listed.contains(&workspace_id) {
        return Err(AdminError::NotFound(format!(
            "federation rule {id} is not enabled in workspace {workspace_id}"
        )));
    }
    if listed.len() == 1 {
        return Err(AdminError::Invalid(format!(
            "workspace_id: {workspace_id} is the rule's only workspace; archive the rule instead"
        )));
    }
    tx.rule_workspace_remove(organization_id, &id, &workspace_id).await?;
    record(
        &mut tx,
        ctx,
        "platform_federation_rule_workspace_removed",
        id.as_str(),
        json!({ "event_data": workspace_view(&id, &workspace_id) }),
    )
    .await?;
    let rule = tx.rule_get(organization_id, &id).await?;
    tx.commit().await?;
    Ok(view(&rule))
}
