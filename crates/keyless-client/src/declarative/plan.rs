//! The diff, pure: [`plan`] takes the server's [`State`] and the desired [`Document`] and gives the
//! [`Plan`] — creates and updates in dependency order (workspaces → service accounts and their
//! memberships → issuers → rules and their workspaces), then, with `prune`, archives in reverse — or
//! every [`Problem`] that stops it (dangling references, archived names, an issuer change of a rule).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use keyless_api::{Audit, FederationIssuer, FederationRule, ServiceAccount, Workspace};
use serde::Serialize;
use serde_json::Value;

use crate::declarative::model::{Document, JwksSpec, MatchSpec, Problem, Problems, RuleWorkspacesSpec, scope_set};
use crate::declarative::state::State;

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Create the object.
    Create,
    /// Change some of its fields.
    Update,
    /// Archive it (only with `prune`).
    Archive,
}

impl Action {
    /// `create`, `update` or `archive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Archive => "archive",
        }
    }
}

/// The kind of object a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A workspace.
    Workspace,
    /// A service account (with its memberships).
    ServiceAccount,
    /// A federation issuer.
    Issuer,
    /// A federation rule (with its workspaces).
    Rule,
}

impl Kind {
    /// `workspace`, `service_account`, `issuer` or `rule`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Workspace => "workspace",
            Kind::ServiceAccount => "service_account",
            Kind::Issuer => "issuer",
            Kind::Rule => "rule",
        }
    }
}

/// One field's change: its value on the server (`null` when absent or for a create) and in the file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    /// The field, as the file names it (`description`, `match.subject_prefix`, `workspaces.ci`).
    pub field: String,
    /// The server's value.
    pub previous: Value,
    /// The file's value.
    pub new: Value,
}

/// One change of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// What it does.
    pub action: Action,
    /// To which kind of object.
    pub kind: Kind,
    /// The object's name.
    pub name: String,
    /// The object's ID, when it exists on the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The fields it sets (every declared field for a create, the changed ones for an update).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}

impl fmt::Display for Change {
    /// `update rule gha-deploy`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.action.as_str(), self.kind.as_str(), self.name)
    }
}

/// The changes that bring the server to the file, in the order they are applied.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    /// The changes; empty when the server already matches the file.
    pub changes: Vec<Change>,
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// How many changes of `action` it holds.
    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|change| change.action == action).count()
    }
}

/// Names → objects of one kind on the server (names are unique per kind, archived objects included).
fn by_name<T>(objects: &[T], name: impl Fn(&T) -> &str) -> BTreeMap<&str, &T> {
    objects.iter().map(|object| (name(object), object)).collect()
}

/// What a reference (by name) can point to.
struct Names<'a> {
    what: &'a str,
    declared: BTreeSet<&'a str>,
    /// Name → archived, for the server's objects.
    server: BTreeMap<&'a str, bool>,
    /// A name `prune` never archives (the default workspace).
    kept: Option<&'a str>,
}

impl Names<'_> {
    fn check(&self, path: String, name: &str, prune: bool, problems: &mut Vec<Problem>) {
        if self.declared.contains(name) {
            return;
        }
        let what = self.what;
        match self.server.get(name) {
            None => problems.push(Problem::new(
                path,
                format!("no {what} named `{name}` in the file or on the server"),
            )),
            Some(true) => problems.push(Problem::new(path, format!("the {what} `{name}` is archived"))),
            Some(false) if prune && self.kept != Some(name) => problems.push(Problem::new(
                path,
                format!("the {what} `{name}` is not in the file, so --prune would archive it: declare it"),
            )),
            Some(false) => {}
        }
    }
}

/// Refuses a declared name that belongs to an archived object.
fn check_not_archived<T>(
    list: &str,
    what: &str,
    names: impl Iterator<Item = String>,
    server: &BTreeMap<&str, &T>,
    audit: impl Fn(&T) -> (&str, &Audit),
    problems: &mut Vec<Problem>,
) {
    for (idx, name) in names.enumerate() {
        if let Some(object) = server.get(name.as_str()) {
            let (id, audit) = audit(object);
            if audit.is_archived() {
                problems.push(Problem::new(
                    format!("{list}[{idx}].name"),
                    format!(
                        "`{name}` is the name of an archived {what} ({id}); archived names stay reserved: choose another"
                    ),
                ));
            }
        }
    }
}

fn json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A field change when `previous` and `new` differ.
fn field<T: Serialize + PartialEq>(fields: &mut Vec<FieldChange>, name: &str, previous: &T, new: &T) {
    if previous != new {
        fields.push(FieldChange {
            field: name.to_owned(),
            previous: json(previous),
            new: json(new),
        });
    }
}

/// A create's fields: each top-level field of the spec but `name`.
fn create_fields<T: Serialize>(spec: &T) -> Vec<FieldChange> {
    match json(spec) {
        Value::Object(map) => map
            .into_iter()
            .filter(|(name, _)| name != "name")
            .map(|(name, value)| FieldChange {
                field: name,
                previous: Value::Null,
                new: value,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn change(action: Action, kind: Kind, name: &str, id: Option<&str>, fields: Vec<FieldChange>) -> Change {
    Change {
        action,
        kind,
        name: name.to_owned(),
        id: id.map(str::to_owned),
        fields,
    }
}

/// A rule's workspaces in the file, resolved: `Default` becomes the default workspace's name; names sorted.
fn resolved_workspaces(spec: &RuleWorkspacesSpec, default_name: &str) -> RuleWorkspacesSpec {
    match spec {
        RuleWorkspacesSpec::Default => RuleWorkspacesSpec::Named(vec![default_name.to_owned()]),
        RuleWorkspacesSpec::All => RuleWorkspacesSpec::All,
        RuleWorkspacesSpec::Named(names) => {
            let mut names = names.clone();
            names.sort();
            names.dedup();
            RuleWorkspacesSpec::Named(names)
        }
    }
}

fn live<T>(objects: &[T], audit: impl Fn(&T) -> &Audit) -> impl Iterator<Item = &T> {
    objects.iter().filter(move |object| !audit(object).is_archived())
}

/// The plan that brings `state` to `desired`; with `prune`, live objects the file does not declare are
/// archived (never the default workspace). A reference must name an object of the file or a live one
/// of the server (with `prune`, one of the file, or the default workspace).
pub fn plan(state: &State, desired: &Document, prune: bool) -> Result<Plan, Problems> {
    let mut problems = Vec::new();
    desired.check()?;

    let workspaces = by_name(&state.workspaces, |w: &Workspace| w.name.as_str());
    let accounts = by_name(&state.service_accounts, |s: &ServiceAccount| s.name.as_str());
    let issuers = by_name(&state.issuers, |i: &FederationIssuer| i.name.as_str());
    let rules = by_name(&state.rules, |r: &FederationRule| r.name.as_str());

    check_not_archived(
        "workspaces",
        "workspace",
        desired.workspaces.iter().map(|w| w.name.clone()),
        &workspaces,
        |w| (w.id.as_str(), &w.audit),
        &mut problems,
    );
    check_not_archived(
        "service_accounts",
        "service account",
        desired.service_accounts.iter().map(|s| s.name.clone()),
        &accounts,
        |s| (s.id.as_str(), &s.audit),
        &mut problems,
    );
    check_not_archived(
        "issuers",
        "issuer",
        desired.issuers.iter().map(|i| i.name.clone()),
        &issuers,
        |i| (i.id.as_str(), &i.audit),
        &mut problems,
    );
    check_not_archived(
        "rules",
        "rule",
        desired.rules.iter().map(|r| r.name.clone()),
        &rules,
        |r| (r.id.as_str(), &r.audit),
        &mut problems,
    );

    let default_name = state.default_workspace_name();
    let workspace_names = Names {
        what: "workspace",
        declared: desired.workspaces.iter().map(|w| w.name.as_str()).collect(),
        server: workspaces
            .iter()
            .map(|(name, w)| (*name, w.audit.is_archived()))
            .collect(),
        kept: Some(default_name),
    };
    let account_names = Names {
        what: "service account",
        declared: desired.service_accounts.iter().map(|s| s.name.as_str()).collect(),
        server: accounts
            .iter()
            .map(|(name, s)| (*name, s.audit.is_archived()))
            .collect(),
        kept: None,
    };
    let issuer_names = Names {
        what: "issuer",
        declared: desired.issuers.iter().map(|i| i.name.as_str()).collect(),
        server: issuers.iter().map(|(name, i)| (*name, i.audit.is_archived())).collect(),
        kept: None,
    };
    for (idx, account) in desired.service_accounts.iter().enumerate() {
        for (m_idx, membership) in account.workspaces.iter().enumerate() {
            workspace_names.check(
                format!("service_accounts[{idx}].workspaces[{m_idx}].workspace"),
                &membership.workspace,
                prune,
                &mut problems,
            );
        }
    }
    for (idx, rule) in desired.rules.iter().enumerate() {
        issuer_names.check(format!("rules[{idx}].issuer"), &rule.issuer, prune, &mut problems);
        account_names.check(
            format!("rules[{idx}].service_account"),
            &rule.service_account,
            prune,
            &mut problems,
        );
        if let RuleWorkspacesSpec::Named(names) = &rule.workspaces {
            for (w_idx, name) in names.iter().enumerate() {
                workspace_names.check(format!("rules[{idx}].workspaces[{w_idx}]"), name, prune, &mut problems);
            }
        }
    }

    let mut changes = Vec::new();
    for spec in &desired.workspaces {
        if !workspaces.contains_key(spec.name.as_str()) {
            changes.push(change(Action::Create, Kind::Workspace, &spec.name, None, Vec::new()));
        }
    }
    for spec in &desired.service_accounts {
        match accounts.get(spec.name.as_str()) {
            None => changes.push(change(
                Action::Create,
                Kind::ServiceAccount,
                &spec.name,
                None,
                create_fields(spec),
            )),
            Some(account) if account.audit.is_archived() => {}
            Some(account) => {
                let mut fields = Vec::new();
                field(&mut fields, "description", &account.description, &spec.description);
                field(
                    &mut fields,
                    "organization_role",
                    &account.organization_role,
                    &spec.organization_role,
                );
                let current = state.explicit_memberships(&account.id);
                let wanted: BTreeMap<String, String> = spec
                    .workspaces
                    .iter()
                    .map(|m| (m.workspace.clone(), m.role.to_string()))
                    .collect();
                let every: BTreeSet<&String> = current.keys().chain(wanted.keys()).collect();
                for workspace in every {
                    field(
                        &mut fields,
                        &format!("workspaces.{workspace}"),
                        &current.get(workspace),
                        &wanted.get(workspace),
                    );
                }
                if !fields.is_empty() {
                    changes.push(change(
                        Action::Update,
                        Kind::ServiceAccount,
                        &spec.name,
                        Some(&account.id),
                        fields,
                    ));
                }
            }
        }
    }
    for spec in &desired.issuers {
        match issuers.get(spec.name.as_str()) {
            None => changes.push(change(
                Action::Create,
                Kind::Issuer,
                &spec.name,
                None,
                create_fields(spec),
            )),
            Some(issuer) if issuer.audit.is_archived() => {}
            Some(issuer) => {
                let mut fields = Vec::new();
                field(&mut fields, "issuer_url", &issuer.issuer_url, &spec.issuer_url);
                field(&mut fields, "jwks", &JwksSpec::from(issuer.jwks.clone()), &spec.jwks);
                field(&mut fields, "check_jti", &issuer.check_jti, &spec.check_jti);
                field(
                    &mut fields,
                    "max_jwt_lifetime_seconds",
                    &issuer.max_jwt_lifetime_seconds,
                    &spec.max_jwt_lifetime_seconds,
                );
                if !fields.is_empty() {
                    changes.push(change(
                        Action::Update,
                        Kind::Issuer,
                        &spec.name,
                        Some(&issuer.id),
                        fields,
                    ));
                }
            }
        }
    }
    for (idx, spec) in desired.rules.iter().enumerate() {
        let wanted_workspaces = resolved_workspaces(&spec.workspaces, default_name);
        match rules.get(spec.name.as_str()) {
            None => {
                let mut fields = create_fields(spec);
                if spec.workspaces == RuleWorkspacesSpec::Default {
                    fields.push(FieldChange {
                        field: "workspaces".to_owned(),
                        previous: Value::Null,
                        new: json(&wanted_workspaces),
                    });
                }
                changes.push(change(Action::Create, Kind::Rule, &spec.name, None, fields));
            }
            Some(rule) if rule.audit.is_archived() => {}
            Some(rule) => {
                let issuer = state.issuer_name(&rule.issuer_id);
                if issuer != spec.issuer {
                    problems.push(Problem::new(
                        format!("rules[{idx}].issuer"),
                        format!(
                            "a rule's issuer is immutable (`{}` is `{issuer}` on the server): give the rule a new name",
                            spec.name
                        ),
                    ));
                    continue;
                }
                let mut fields = Vec::new();
                field(&mut fields, "description", &rule.description, &spec.description);
                let current = MatchSpec::from(rule.r#match.clone()).normalized();
                let wanted = spec.r#match.normalized();
                field(
                    &mut fields,
                    "match.subject_prefix",
                    &current.subject_prefix,
                    &wanted.subject_prefix,
                );
                field(&mut fields, "match.audience", &current.audience, &wanted.audience);
                field(&mut fields, "match.claims", &current.claims, &wanted.claims);
                field(&mut fields, "match.condition", &current.condition, &wanted.condition);
                field(
                    &mut fields,
                    "service_account",
                    &state.service_account_name(&rule.target.service_account_id),
                    &spec.service_account.as_str(),
                );
                if scope_set(&rule.oauth_scope) != scope_set(&spec.oauth_scope) {
                    field(&mut fields, "oauth_scope", &rule.oauth_scope, &spec.oauth_scope);
                }
                field(
                    &mut fields,
                    "token_lifetime_seconds",
                    &rule.token_lifetime_seconds,
                    &spec.token_lifetime_seconds,
                );
                field(
                    &mut fields,
                    "workspaces",
                    &state.rule_workspaces(rule),
                    &wanted_workspaces,
                );
                field(
                    &mut fields,
                    "mode",
                    &rule.mode.as_deref().unwrap_or("enforce"),
                    &spec.mode.as_str(),
                );
                if !fields.is_empty() {
                    changes.push(change(Action::Update, Kind::Rule, &spec.name, Some(&rule.id), fields));
                }
            }
        }
    }

    if prune {
        let declared_rules: BTreeSet<&str> = desired.rules.iter().map(|r| r.name.as_str()).collect();
        for rule in live(&state.rules, |r| &r.audit) {
            if !declared_rules.contains(rule.name.as_str()) {
                changes.push(change(
                    Action::Archive,
                    Kind::Rule,
                    &rule.name,
                    Some(&rule.id),
                    Vec::new(),
                ));
            }
        }
        for issuer in live(&state.issuers, |i| &i.audit) {
            if !issuer_names.declared.contains(issuer.name.as_str()) {
                changes.push(change(
                    Action::Archive,
                    Kind::Issuer,
                    &issuer.name,
                    Some(&issuer.id),
                    Vec::new(),
                ));
            }
        }
        for account in live(&state.service_accounts, |s| &s.audit) {
            if !account_names.declared.contains(account.name.as_str()) {
                changes.push(change(
                    Action::Archive,
                    Kind::ServiceAccount,
                    &account.name,
                    Some(&account.id),
                    Vec::new(),
                ));
            }
        }
        for workspace in live(&state.workspaces, |w| &w.audit) {
            if !workspace.is_default && !workspace_names.declared.contains(workspace.name.as_str()) {
                changes.push(change(
                    Action::Archive,
                    Kind::Workspace,
                    &workspace.name,
                    Some(&workspace.id),
                    Vec::new(),
                ));
            }
        }
    }

    if problems.is_empty() {
        Ok(Plan { changes })
    } else {
        Err(Problems(problems))
    }
}
