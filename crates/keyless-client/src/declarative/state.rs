//! [`State`]: what the server holds, read through the typed [`Admin`] client (archived objects
//! included, since their names stay reserved), and [`State::export`], its live part as a [`Document`].

use std::collections::BTreeMap;

use keyless_api::{FederationIssuer, FederationRule, ServiceAccount, Workspace, WorkspaceMembership};

use crate::ClientError;
use crate::admin::{Admin, ListOptions, MAX_PAGE_SIZE};
use crate::declarative::model::{
    Document, IssuerSpec, MembershipSpec, RuleSpec, RuleWorkspacesSpec, ServiceAccountSpec, VERSION, WorkspaceSpec,
};

/// The server's configuration objects, archived ones included.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    /// Every workspace.
    pub workspaces: Vec<Workspace>,
    /// Every service account.
    pub service_accounts: Vec<ServiceAccount>,
    /// The memberships of each live service account, by its ID (the implicit one included).
    pub memberships: BTreeMap<String, Vec<WorkspaceMembership>>,
    /// Every issuer.
    pub issuers: Vec<FederationIssuer>,
    /// Every rule.
    pub rules: Vec<FederationRule>,
}

impl State {
    /// Reads every object of the organization (one list walk per kind, one membership list per live
    /// service account).
    pub async fn read(admin: &Admin) -> Result<State, ClientError> {
        let options = ListOptions {
            limit: Some(MAX_PAGE_SIZE),
            page: None,
            include_archived: true,
        };
        let workspaces = admin.workspaces().pages(&options).collect(None).await?;
        let service_accounts = admin.service_accounts().pages(&options).collect(None).await?;
        let mut memberships = BTreeMap::new();
        for account in service_accounts.iter().filter(|account| !account.audit.is_archived()) {
            let page = admin.service_accounts().workspaces(&account.id).await?;
            memberships.insert(account.id.clone(), page.data);
        }
        let issuers = admin.issuers().pages(&options).collect(None).await?;
        let rules = admin.rules().pages(&options, None).collect(None).await?;
        Ok(State {
            workspaces,
            service_accounts,
            memberships,
            issuers,
            rules,
        })
    }

    /// The name of the default workspace (`default` if the server somehow has none).
    pub(crate) fn default_workspace_name(&self) -> &str {
        self.workspaces
            .iter()
            .find(|workspace| workspace.is_default)
            .map_or("default", |workspace| workspace.name.as_str())
    }

    /// A workspace's name by ID (the ID itself when unknown).
    pub(crate) fn workspace_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.workspaces
            .iter()
            .find(|workspace| workspace.id == id)
            .map_or(id, |workspace| workspace.name.as_str())
    }

    /// A service account's name by ID (the ID itself when unknown).
    pub(crate) fn service_account_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.service_accounts
            .iter()
            .find(|account| account.id == id)
            .map_or(id, |account| account.name.as_str())
    }

    /// An issuer's name by ID (the ID itself when unknown).
    pub(crate) fn issuer_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.issuers
            .iter()
            .find(|issuer| issuer.id == id)
            .map_or(id, |issuer| issuer.name.as_str())
    }

    /// A live service account's explicit memberships: workspace name → role.
    pub(crate) fn explicit_memberships(&self, account_id: &str) -> BTreeMap<String, String> {
        self.memberships
            .get(account_id)
            .into_iter()
            .flatten()
            .filter(|membership| !membership.implicit)
            .map(|membership| {
                (
                    self.workspace_name(&membership.workspace_id).to_owned(),
                    membership.workspace_role.to_string(),
                )
            })
            .collect()
    }

    /// A rule's workspaces as the file writes them: `all`, or the names, sorted.
    pub(crate) fn rule_workspaces(&self, rule: &FederationRule) -> RuleWorkspacesSpec {
        if rule.applies_to_all_workspaces {
            RuleWorkspacesSpec::All
        } else {
            let mut names: Vec<String> = rule
                .workspace_ids
                .iter()
                .map(|id| self.workspace_name(id).to_owned())
                .collect();
            names.sort();
            RuleWorkspacesSpec::Named(names)
        }
    }

    /// The live objects as a document, each list sorted by name; memberships and rule workspaces
    /// are written out in full, so the document does not depend on which workspace is the default.
    pub fn export(&self) -> Document {
        let mut workspaces: Vec<WorkspaceSpec> = self
            .workspaces
            .iter()
            .filter(|workspace| !workspace.audit.is_archived())
            .map(|workspace| WorkspaceSpec {
                name: workspace.name.clone(),
            })
            .collect();
        workspaces.sort_by(|a, b| a.name.cmp(&b.name));
        let mut service_accounts: Vec<ServiceAccountSpec> = self
            .service_accounts
            .iter()
            .filter(|account| !account.audit.is_archived())
            .map(|account| ServiceAccountSpec {
                name: account.name.clone(),
                description: account.description.clone(),
                organization_role: account.organization_role.clone(),
                workspaces: self
                    .explicit_memberships(&account.id)
                    .into_iter()
                    .map(|(workspace, role)| MembershipSpec {
                        workspace,
                        role: keyless_api::WorkspaceRole::from_wire(&role),
                    })
                    .collect(),
            })
            .collect();
        service_accounts.sort_by(|a, b| a.name.cmp(&b.name));
        let mut issuers: Vec<IssuerSpec> = self
            .issuers
            .iter()
            .filter(|issuer| !issuer.audit.is_archived())
            .map(|issuer| IssuerSpec {
                name: issuer.name.clone(),
                issuer_url: issuer.issuer_url.clone(),
                jwks: issuer.jwks.clone().into(),
                check_jti: issuer.check_jti,
                max_jwt_lifetime_seconds: issuer.max_jwt_lifetime_seconds,
            })
            .collect();
        issuers.sort_by(|a, b| a.name.cmp(&b.name));
        let mut rules: Vec<RuleSpec> = self
            .rules
            .iter()
            .filter(|rule| !rule.audit.is_archived())
            .map(|rule| RuleSpec {
                name: rule.name.clone(),
                description: rule.description.clone(),
                issuer: self.issuer_name(&rule.issuer_id).to_owned(),
                r#match: rule.r#match.clone().into(),
                service_account: self.service_account_name(&rule.target.service_account_id).to_owned(),
                oauth_scope: rule.oauth_scope.clone(),
                token_lifetime_seconds: rule.token_lifetime_seconds,
                workspaces: self.rule_workspaces(rule),
                mode: rule.mode.clone().unwrap_or_else(|| "enforce".to_owned()),
            })
            .collect();
        rules.sort_by(|a, b| a.name.cmp(&b.name));
        Document {
            version: VERSION,
            workspaces,
            service_accounts,
            issuers,
            rules,
        }
    }
}
