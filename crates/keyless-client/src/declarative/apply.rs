//! [`apply`]: a [`Plan`] carried out over [`Admin`], one change at a time, in the plan's order. Names
//! become IDs here (the server's, and those of objects this run creates). A failure stops the run: what
//! was applied stays applied (no rollback), and the next run converges.

use std::collections::BTreeMap;

use keyless_api::{
    CreateFederationIssuer, CreateFederationRule, CreateServiceAccount, CreateWorkspace, RuleWarning, Target,
    UpdateFederationIssuer, UpdateFederationRule, UpdateServiceAccount, WorkspaceRole,
};
use serde::Serialize;

use crate::ClientError;
use crate::admin::Admin;
use crate::declarative::model::{Document, RuleSpec, RuleWorkspacesSpec};
use crate::declarative::plan::{Action, Change, Kind, Plan};
use crate::declarative::state::State;

/// One change carried out, with the lint warnings the server answered (rules only).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Applied {
    /// The change.
    #[serde(flatten)]
    pub change: Change,
    /// The object's ID after the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_id: Option<String>,
    /// The server's lint warnings about a created or updated rule.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<RuleWarning>,
}

/// An apply that stopped at a change the server refused (or that got no answer).
#[derive(Debug, thiserror::Error)]
#[error("{change}: {source}")]
pub struct ApplyError {
    /// The changes applied before this one (they stay applied).
    pub applied: Vec<Applied>,
    /// The change that failed.
    pub change: Change,
    /// Why.
    #[source]
    pub source: ClientError,
}

/// Name → ID of the objects of each kind, live on the server or created by this run.
#[derive(Default)]
struct Ids(BTreeMap<(Kind, String), String>);

impl Ids {
    fn of(state: &State) -> Ids {
        let mut ids = Ids::default();
        for workspace in state.workspaces.iter().filter(|w| !w.audit.is_archived()) {
            ids.insert(Kind::Workspace, &workspace.name, &workspace.id);
        }
        for account in state.service_accounts.iter().filter(|s| !s.audit.is_archived()) {
            ids.insert(Kind::ServiceAccount, &account.name, &account.id);
        }
        for issuer in state.issuers.iter().filter(|i| !i.audit.is_archived()) {
            ids.insert(Kind::Issuer, &issuer.name, &issuer.id);
        }
        ids
    }

    fn insert(&mut self, kind: Kind, name: &str, id: &str) {
        self.0.insert((kind, name.to_owned()), id.to_owned());
    }

    /// The ID of a name; the name itself when unknown (the server then answers 404 with it — the plan
    /// has checked every reference, so this happens only if the server changed meanwhile).
    fn get(&self, kind: Kind, name: &str) -> String {
        self.0
            .get(&(kind, name.to_owned()))
            .cloned()
            .unwrap_or_else(|| name.to_owned())
    }
}

/// Carries out `plan` (made by [`plan`](crate::declarative::plan()) from `state` and `desired`),
/// calling `progress` after each change.
pub async fn apply(
    admin: &Admin,
    state: &State,
    desired: &Document,
    plan: &Plan,
    mut progress: impl FnMut(&Applied),
) -> Result<Vec<Applied>, ApplyError> {
    let mut ids = Ids::of(state);
    let mut applied = Vec::new();
    for change in &plan.changes {
        match apply_one(admin, desired, change, &mut ids).await {
            Ok((applied_id, warnings)) => {
                let done = Applied {
                    change: change.clone(),
                    applied_id,
                    warnings,
                };
                progress(&done);
                applied.push(done);
            }
            Err(source) => {
                return Err(ApplyError {
                    applied,
                    change: change.clone(),
                    source,
                });
            }
        }
    }
    Ok(applied)
}

type Outcome = (Option<String>, Vec<RuleWarning>);

/// An object the plan names but the file does not declare: only possible for a plan and a document
/// that do not belong together.
fn undeclared(change: &Change) -> ClientError {
    ClientError::Config(format!("{change}: not in the file"))
}

async fn apply_one(admin: &Admin, desired: &Document, change: &Change, ids: &mut Ids) -> Result<Outcome, ClientError> {
    let id = change.id.clone().unwrap_or_default();
    let changed = |name: &str| change.fields.iter().any(|field| field.field == name);
    match (change.kind, change.action) {
        (kind, Action::Archive) => {
            match kind {
                Kind::Workspace => admin.workspaces().archive(&id).await.map(drop)?,
                Kind::ServiceAccount => admin.service_accounts().archive(&id).await.map(drop)?,
                Kind::Issuer => admin.issuers().archive(&id).await.map(drop)?,
                Kind::Rule => admin.rules().archive(&id).await.map(drop)?,
            }
            Ok((Some(id), Vec::new()))
        }
        (Kind::Workspace, _) => {
            let workspace = admin
                .workspaces()
                .create(&CreateWorkspace {
                    name: change.name.clone(),
                })
                .await?;
            ids.insert(Kind::Workspace, &workspace.name, &workspace.id);
            Ok((Some(workspace.id), Vec::new()))
        }
        (Kind::ServiceAccount, action) => {
            let spec = desired
                .service_accounts
                .iter()
                .find(|spec| spec.name == change.name)
                .ok_or_else(|| undeclared(change))?;
            let accounts = admin.service_accounts();
            let id = if action == Action::Create {
                let account = accounts
                    .create(&CreateServiceAccount {
                        name: spec.name.clone(),
                        description: spec.description.clone(),
                        organization_role: Some(spec.organization_role.clone()),
                    })
                    .await?;
                ids.insert(Kind::ServiceAccount, &account.name, &account.id);
                for membership in &spec.workspaces {
                    let workspace_id = ids.get(Kind::Workspace, &membership.workspace);
                    accounts
                        .set_workspace(&account.id, &workspace_id, membership.role.clone())
                        .await?;
                }
                account.id
            } else {
                if changed("description") || changed("organization_role") {
                    let body = UpdateServiceAccount {
                        name: None,
                        description: changed("description").then(|| spec.description.clone()),
                        organization_role: changed("organization_role").then(|| spec.organization_role.clone()),
                    };
                    accounts.update(&id, &body).await?;
                }
                for field in &change.fields {
                    let Some(workspace) = field.field.strip_prefix("workspaces.") else {
                        continue;
                    };
                    let workspace_id = ids.get(Kind::Workspace, workspace);
                    match field.new.as_str() {
                        Some(role) => {
                            accounts
                                .set_workspace(&id, &workspace_id, WorkspaceRole::from_wire(role))
                                .await?;
                        }
                        None => {
                            accounts.remove_workspace(&id, &workspace_id).await?;
                        }
                    }
                }
                id
            };
            Ok((Some(id), Vec::new()))
        }
        (Kind::Issuer, action) => {
            let spec = desired
                .issuers
                .iter()
                .find(|spec| spec.name == change.name)
                .ok_or_else(|| undeclared(change))?;
            let issuer = if action == Action::Create {
                let issuer = admin
                    .issuers()
                    .create(&CreateFederationIssuer {
                        name: spec.name.clone(),
                        issuer_url: spec.issuer_url.clone(),
                        jwks: Some(spec.jwks.clone().into()),
                        check_jti: Some(spec.check_jti),
                        max_jwt_lifetime_seconds: Some(spec.max_jwt_lifetime_seconds),
                    })
                    .await?;
                ids.insert(Kind::Issuer, &issuer.name, &issuer.id);
                issuer
            } else {
                let body = UpdateFederationIssuer {
                    name: None,
                    issuer_url: changed("issuer_url").then(|| spec.issuer_url.clone()),
                    jwks: changed("jwks").then(|| spec.jwks.clone().into()),
                    check_jti: changed("check_jti").then_some(spec.check_jti),
                    max_jwt_lifetime_seconds: changed("max_jwt_lifetime_seconds")
                        .then_some(spec.max_jwt_lifetime_seconds),
                };
                admin.issuers().update(&id, &body).await?
            };
            Ok((Some(issuer.id), Vec::new()))
        }
        (Kind::Rule, action) => {
            let spec = desired
                .rules
                .iter()
                .find(|spec| spec.name == change.name)
                .ok_or_else(|| undeclared(change))?;
            let (workspace_ids, all) = rule_workspaces(spec, ids);
            let rule = if action == Action::Create {
                admin.rules().create(&create_rule(spec, ids)).await?
            } else {
                let match_changed = change.fields.iter().any(|field| field.field.starts_with("match."));
                let workspaces_changed = changed("workspaces");
                let body = UpdateFederationRule {
                    description: changed("description").then(|| spec.description.clone()),
                    r#match: match_changed.then(|| spec.r#match.clone().into()),
                    target: changed("service_account")
                        .then(|| Target::service_account(ids.get(Kind::ServiceAccount, &spec.service_account))),
                    oauth_scope: changed("oauth_scope").then(|| spec.oauth_scope.clone()),
                    token_lifetime_seconds: changed("token_lifetime_seconds").then_some(spec.token_lifetime_seconds),
                    workspace_ids: workspace_ids.filter(|_| workspaces_changed),
                    applies_to_all_workspaces: all.filter(|_| workspaces_changed),
                    mode: changed("mode").then(|| spec.mode.clone()),
                    ..UpdateFederationRule::default()
                };
                admin.rules().update(&id, &body).await?
            };
            Ok((Some(rule.id), rule.warnings))
        }
    }
}

/// The create body of a declared rule, its references resolved through `ids`.
fn create_rule(spec: &RuleSpec, ids: &Ids) -> CreateFederationRule {
    let (workspace_ids, all) = rule_workspaces(spec, ids);
    CreateFederationRule {
        name: spec.name.clone(),
        description: spec.description.clone(),
        issuer_id: ids.get(Kind::Issuer, &spec.issuer),
        r#match: spec.r#match.clone().into(),
        target: Target::service_account(ids.get(Kind::ServiceAccount, &spec.service_account)),
        oauth_scope: Some(spec.oauth_scope.clone()),
        token_lifetime_seconds: Some(spec.token_lifetime_seconds),
        workspace_id: None,
        workspace_ids,
        applies_to_all_workspaces: all,
        mode: Some(spec.mode.clone()),
    }
}

/// What the server says, before anything is applied, of a rule the plan creates or updates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleCheck {
    /// The rule's name.
    pub name: String,
    /// The verdict.
    #[serde(flatten)]
    pub outcome: RuleCheckOutcome,
}

/// The server's verdict on a rule as the file declares it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RuleCheckOutcome {
    /// It would be saved, with these lint warnings.
    Valid {
        /// The lint warnings.
        warnings: Vec<RuleWarning>,
    },
    /// It would be refused: the apply would stop there.
    Refused {
        /// The refusal's stable code (`no_identity_constraint`, …), when it has one.
        code: Option<String>,
        /// The server's message.
        message: String,
    },
    /// It cannot be checked yet: something it names is created by this plan.
    Deferred {
        /// What is missing.
        reason: String,
    },
}

/// Asks the server (`federation_rules/validate`, which creates nothing) about each rule `plan` creates
/// or updates, as `desired` declares it whole: its refusal or its lint warnings. A rule naming an
/// object the plan itself creates is `Deferred`: the server checks it when the plan is applied.
pub async fn check_rules(
    admin: &Admin,
    state: &State,
    desired: &Document,
    plan: &Plan,
) -> Result<Vec<RuleCheck>, ClientError> {
    let ids = Ids::of(state);
    let mut checks = Vec::new();
    for change in plan
        .changes
        .iter()
        .filter(|change| change.kind == Kind::Rule && change.action != Action::Archive)
    {
        let spec = desired
            .rules
            .iter()
            .find(|spec| spec.name == change.name)
            .ok_or_else(|| undeclared(change))?;
        let workspaces = match &spec.workspaces {
            RuleWorkspacesSpec::Named(names) => names.iter().map(|name| (Kind::Workspace, name)).collect(),
            RuleWorkspacesSpec::Default | RuleWorkspacesSpec::All => Vec::new(),
        };
        let missing = [
            (Kind::Issuer, &spec.issuer),
            (Kind::ServiceAccount, &spec.service_account),
        ]
        .into_iter()
        .chain(workspaces)
        .find(|(kind, name)| !ids.0.contains_key(&(*kind, (*name).clone())));
        let outcome = if let Some((kind, name)) = missing {
            RuleCheckOutcome::Deferred {
                reason: format!("{} {name} is created by this plan: checked when applied", kind.as_str()),
            }
        } else {
            match admin.rules().validate(&create_rule(spec, &ids)).await {
                Ok(validation) => RuleCheckOutcome::Valid {
                    warnings: validation.warnings,
                },
                Err(ClientError::Api(error)) if (400..500).contains(&error.status) => RuleCheckOutcome::Refused {
                    code: error.code.clone(),
                    message: error.message.clone().unwrap_or_else(|| error.to_string()),
                },
                Err(error) => return Err(error),
            }
        };
        checks.push(RuleCheck {
            name: change.name.clone(),
            outcome,
        });
    }
    Ok(checks)
}

/// A rule's workspaces as request fields: `(workspace_ids, applies_to_all_workspaces)`.
fn rule_workspaces(spec: &RuleSpec, ids: &Ids) -> (Option<Vec<String>>, Option<bool>) {
    match &spec.workspaces {
        RuleWorkspacesSpec::Default => (Some(vec!["default".to_owned()]), None),
        RuleWorkspacesSpec::All => (None, Some(true)),
        RuleWorkspacesSpec::Named(names) => (
            Some(names.iter().map(|name| ids.get(Kind::Workspace, name)).collect()),
            None,
        ),
    }
}
