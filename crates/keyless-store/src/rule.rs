//! Federation rules: which tokens of an issuer may act as which service account, with what scope, for
//! how long, in which workspaces.
//!
//! Parts: [`RuleRecord`], [`RuleFilter`]; on [`Tx`]: `rule_create`, `_get` (locks), `_update`, `_archive`,
//! `rule_workspace_add`, `rule_workspace_remove`, `rule_count_live`; on [`Store`]: `rule_get`,
//! `rule_list`.
//!
//! The `match` block is stored as written ([`MatchDraft`], JSON): compiling its condition is the server's
//! business (once per rule version, not per read). Workspaces: `applies_to_all_workspaces` is a column;
//! listed workspaces are rows of `federation_rule_workspaces`. The issuer and the target service account
//! are composite foreign keys with the organization, so a rule can never name another organization's
//! objects.

use std::collections::{BTreeMap, BTreeSet};

use keyless_core::id::{IssuerId, OrganizationId, RuleId, ServiceAccountId, WorkspaceId};
use keyless_core::lifetime::TokenLifetime;
use keyless_core::name::Name;
use keyless_core::rule::{MatchDraft, RuleMode, RuleWorkspaces};
use keyless_core::scope::ScopeSet;

use crate::audit::{self, Audit};
use crate::backend::{Conn, Query, Row};
use crate::error::{BackendError, StoreError};
use crate::issuer::{self, IssuerRecord};
use crate::page::{ListQuery, Page};
use crate::service_account::{self, ServiceAccountRecord};
use crate::store::{Store, Tx};

/// A stored federation rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRecord {
    /// Its ID.
    pub id: RuleId,
    /// The organization it belongs to.
    pub organization_id: OrganizationId,
    /// Its name, unique in the organization (archived rules included).
    pub name: Name,
    /// Its description.
    pub description: Option<String>,
    /// The issuer whose tokens it accepts (immutable: `rule_update` does not write it).
    pub issuer_id: IssuerId,
    /// The `match` block, as written.
    pub r#match: MatchDraft,
    /// The target service account.
    pub service_account_id: ServiceAccountId,
    /// The most a token minted through it may hold.
    pub oauth_scope: ScopeSet,
    /// `token_lifetime_seconds`.
    pub token_lifetime: TokenLifetime,
    /// The workspaces it is enabled in.
    pub workspaces: RuleWorkspaces,
    /// Enforce or shadow.
    pub mode: RuleMode,
    /// Who created, updated and archived it, and when.
    pub audit: Audit,
}

/// Which rules a list or count covers; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleFilter {
    /// Only rules on this issuer.
    pub issuer_id: Option<IssuerId>,
    /// Only rules targeting this service account.
    pub service_account_id: Option<ServiceAccountId>,
}

macro_rules! columns {
    () => {
        "id, organization_id, name, description, issuer_id, match_block, service_account_id, oauth_scope, \
         token_lifetime_seconds, applies_to_all_workspaces, created_at, created_by_actor_id, updated_at, \
         updated_by_actor_id, archived_at, archived_by_actor_id, mode"
    };
}

/// Decodes a rule row; listed workspaces are filled in by [`attach_workspaces`].
fn decode(row: &dyn Row) -> Result<RuleRecord, StoreError> {
    let r#match = serde_json::from_value(row.json("match_block")?)
        .map_err(|e| StoreError::corrupt("federation_rules.match_block", e))?;
    Ok(RuleRecord {
        id: row.parsed("id", RuleId::parse)?,
        organization_id: row.parsed("organization_id", OrganizationId::parse)?,
        name: row.parsed("name", Name::parse)?,
        description: row.opt_text("description")?,
        issuer_id: row.parsed("issuer_id", IssuerId::parse)?,
        r#match,
        service_account_id: row.parsed("service_account_id", ServiceAccountId::parse)?,
        oauth_scope: row.parsed("oauth_scope", ScopeSet::parse)?,
        token_lifetime: TokenLifetime::new(row.int("token_lifetime_seconds")?)
            .map_err(|e| StoreError::corrupt("federation_rules.token_lifetime_seconds", e))?,
        workspaces: if row.bool("applies_to_all_workspaces")? {
            RuleWorkspaces::All
        } else {
            RuleWorkspaces::Listed(BTreeSet::new())
        },
        mode: row.parsed("mode", RuleMode::parse)?,
        audit: Audit::decode(row)?,
    })
}

fn decode_rule_workspace(row: &dyn Row) -> Result<(String, WorkspaceId), StoreError> {
    Ok((row.text("rule_id")?, row.parsed("workspace_id", WorkspaceId::parse)?))
}

/// Fills in the listed workspaces of `rules` (all of one organization) with one query.
async fn attach_workspaces(conn: &mut Conn<'_>, rules: &mut [RuleRecord]) -> Result<(), StoreError> {
    let Some(first) = rules.first() else {
        return Ok(());
    };
    let mut query = Query::new("SELECT rule_id, workspace_id FROM federation_rule_workspaces WHERE organization_id = ");
    query.push_arg(first.organization_id.as_str());
    query.push_sql(" AND rule_id IN (");
    for (idx, rule) in rules.iter().enumerate() {
        if idx > 0 {
            query.push_sql(", ");
        }
        query.push_arg(rule.id.as_str());
    }
    query.push_sql(") ORDER BY rule_id, workspace_id");
    let mut by_rule: BTreeMap<String, BTreeSet<WorkspaceId>> = BTreeMap::new();
    for (rule_id, workspace_id) in conn.fetch_all(&query, decode_rule_workspace).await? {
        by_rule.entry(rule_id).or_default().insert(workspace_id);
    }
    for rule in rules {
        if let RuleWorkspaces::Listed(listed) = &mut rule.workspaces {
            *listed = by_rule.remove(rule.id.as_str()).unwrap_or_default();
        }
    }
    Ok(())
}

async fn get(conn: &mut Conn<'_>, organization_id: &OrganizationId, id: &RuleId) -> Result<RuleRecord, StoreError> {
    let query = Query::new(concat!(
        "SELECT ",
        columns!(),
        " FROM federation_rules WHERE organization_id = $1 AND id = $2"
    ))
    .arg(organization_id.as_str())
    .arg(id.as_str())
    .locking();
    let rule = conn.fetch_optional(&query, decode).await?.ok_or(StoreError::NotFound)?;
    let mut rules = [rule];
    attach_workspaces(conn, &mut rules).await?;
    let [rule] = rules;
    Ok(rule)
}

fn match_json(rule: &RuleRecord) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(&rule.r#match).map_err(|e| StoreError::Unavailable(BackendError::new(e)))
}

/// Inserts the listed workspaces of `rule` (nothing for `applies_to_all_workspaces`).
async fn insert_workspaces(conn: &mut Conn<'_>, rule: &RuleRecord) -> Result<(), StoreError> {
    if let RuleWorkspaces::Listed(listed) = &rule.workspaces {
        for workspace_id in listed {
            let query = Query::new(
                "INSERT INTO federation_rule_workspaces (organization_id, rule_id, workspace_id) VALUES ($1, $2, $3)",
            )
            .arg(rule.organization_id.as_str())
            .arg(rule.id.as_str())
            .arg(workspace_id.as_str())
            .on_key_conflict("rule workspace");
            conn.execute(&query).await?;
        }
    }
    Ok(())
}

impl Tx {
    /// Creates a rule with its workspaces; a taken name is a [`StoreError::Conflict`] on `name`; an issuer,
    /// service account or workspace that is not in the rule's organization is [`StoreError::NotFound`].
    pub async fn rule_create(&mut self, rule: &RuleRecord) -> Result<(), StoreError> {
        let match_block = match_json(rule)?;
        let query = Query::new(concat!(
            "INSERT INTO federation_rules (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        ))
        .arg(rule.id.as_str())
        .arg(rule.organization_id.as_str())
        .arg(rule.name.as_str())
        .arg(rule.description.as_deref())
        .arg(rule.issuer_id.as_str())
        .arg(match_block)
        .arg(rule.service_account_id.as_str())
        .arg(rule.oauth_scope.to_string())
        .arg(rule.token_lifetime.seconds())
        .arg(matches!(rule.workspaces, RuleWorkspaces::All))
        .arg(rule.audit.created_at)
        .arg(rule.audit.created_by_actor_id.as_str())
        .arg(rule.audit.updated_at)
        .arg(rule.audit.updated_by_actor_id.as_str())
        .arg(rule.audit.archived_at)
        .arg(rule.audit.archived_by_actor_id.as_deref())
        .arg(rule.mode.as_str());
        let mut conn = self.conn();
        conn.execute(&query).await?;
        insert_workspaces(&mut conn, rule).await
    }

    /// The rule `id`, locked until the transaction ends.
    pub async fn rule_get(&mut self, organization_id: &OrganizationId, id: &RuleId) -> Result<RuleRecord, StoreError> {
        get(&mut self.conn(), organization_id, id).await
    }

    /// Writes a rule's `name`, `description`, `match`, target, `oauth_scope`, `token_lifetime_seconds`, `mode`,
    /// workspaces (replaced whole) and `updated_*` columns; the issuer is immutable.
    pub async fn rule_update(&mut self, rule: &RuleRecord) -> Result<(), StoreError> {
        let match_block = match_json(rule)?;
        let query = Query::new(
            "UPDATE federation_rules SET name = $3, description = $4, match_block = $5, service_account_id = $6, \
             oauth_scope = $7, token_lifetime_seconds = $8, applies_to_all_workspaces = $9, updated_at = $10, \
             updated_by_actor_id = $11, mode = $12 WHERE organization_id = $1 AND id = $2",
        )
        .arg(rule.organization_id.as_str())
        .arg(rule.id.as_str())
        .arg(rule.name.as_str())
        .arg(rule.description.as_deref())
        .arg(match_block)
        .arg(rule.service_account_id.as_str())
        .arg(rule.oauth_scope.to_string())
        .arg(rule.token_lifetime.seconds())
        .arg(matches!(rule.workspaces, RuleWorkspaces::All))
        .arg(rule.audit.updated_at)
        .arg(rule.audit.updated_by_actor_id.as_str())
        .arg(rule.mode.as_str());
        let mut conn = self.conn();
        if conn.execute(&query).await? == 0 {
            return Err(StoreError::NotFound);
        }
        let clear = Query::new("DELETE FROM federation_rule_workspaces WHERE organization_id = $1 AND rule_id = $2")
            .arg(rule.organization_id.as_str())
            .arg(rule.id.as_str());
        conn.execute(&clear).await?;
        insert_workspaces(&mut conn, rule).await
    }

    /// Archives a rule; returns `false` when it already was (the first archive is kept).
    pub async fn rule_archive(
        &mut self,
        organization_id: &OrganizationId,
        id: &RuleId,
        at: i64,
        actor_id: &str,
    ) -> Result<bool, StoreError> {
        audit::archive(
            &mut self.conn(),
            "UPDATE federation_rules SET archived_at = $3, archived_by_actor_id = $4 \
             WHERE organization_id = $1 AND id = $2 AND archived_at IS NULL",
            "SELECT 1 AS one FROM federation_rules WHERE organization_id = $1 AND id = $2",
            (organization_id.as_str(), id.as_str()),
            at,
            actor_id,
        )
        .await
    }

    /// Enables a rule in one more workspace (a row of its listed workspaces); already enabled is a
    /// [`StoreError::Conflict`] on `rule workspace`.
    pub async fn rule_workspace_add(
        &mut self,
        organization_id: &OrganizationId,
        rule_id: &RuleId,
        workspace_id: &WorkspaceId,
    ) -> Result<(), StoreError> {
        let query = Query::new(
            "INSERT INTO federation_rule_workspaces (organization_id, rule_id, workspace_id) VALUES ($1, $2, $3)",
        )
        .arg(organization_id.as_str())
        .arg(rule_id.as_str())
        .arg(workspace_id.as_str())
        .on_key_conflict("rule workspace");
        self.conn().execute(&query).await.map(drop)
    }

    /// Removes one listed workspace of a rule ([`StoreError::NotFound`] if it is not listed).
    pub async fn rule_workspace_remove(
        &mut self,
        organization_id: &OrganizationId,
        rule_id: &RuleId,
        workspace_id: &WorkspaceId,
    ) -> Result<(), StoreError> {
        let query = Query::new(
            "DELETE FROM federation_rule_workspaces WHERE organization_id = $1 AND rule_id = $2 AND workspace_id = $3",
        )
        .arg(organization_id.as_str())
        .arg(rule_id.as_str())
        .arg(workspace_id.as_str());
        match self.conn().execute(&query).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    /// How many live (not archived) rules match `filter`: what blocks archiving an issuer or a service
    /// account. Lock the issuer or service account first ([`Tx::issuer_get`], [`Tx::service_account_get`]),
    /// and have rule writers lock them too, so no rule appears between the count and the archive.
    pub async fn rule_count_live(
        &mut self,
        organization_id: &OrganizationId,
        filter: &RuleFilter,
    ) -> Result<u64, StoreError> {
        let query = Query::new(
            "SELECT COUNT(*) AS n FROM federation_rules WHERE organization_id = $1 AND archived_at IS NULL \
             AND ($2 IS NULL OR issuer_id = $2) AND ($3 IS NULL OR service_account_id = $3)",
        )
        .arg(organization_id.as_str())
        .arg(filter.issuer_id.as_ref().map(IssuerId::as_str))
        .arg(filter.service_account_id.as_ref().map(ServiceAccountId::as_str));
        let count = self.conn().fetch_optional(&query, |row| row.int("n")).await?;
        Ok(count.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
    }
}

impl Store {
    /// The rule `id`.
    pub async fn rule_get(&self, organization_id: &OrganizationId, id: &RuleId) -> Result<RuleRecord, StoreError> {
        get(&mut self.read().await?.conn(), organization_id, id).await
    }

    /// A rule with its issuer and its service account, read on one connection: the token exchange's
    /// reads in one pool checkout. [`StoreError::NotFound`] when the rule does not exist (its issuer
    /// and service account always do: the foreign keys say so).
    pub async fn rule_get_with_parties(
        &self,
        organization_id: &OrganizationId,
        id: &RuleId,
    ) -> Result<(RuleRecord, IssuerRecord, ServiceAccountRecord), StoreError> {
        let mut pooled = self.read().await?;
        let mut conn = pooled.conn();
        let rule = get(&mut conn, organization_id, id).await?;
        let issuer = issuer::get(&mut conn, organization_id, &rule.issuer_id).await?;
        let service_account = service_account::get(&mut conn, organization_id, &rule.service_account_id).await?;
        Ok((rule, issuer, service_account))
    }

    /// A page of the organization's rules matching `filter`, newest first.
    pub async fn rule_list(
        &self,
        organization_id: &OrganizationId,
        filter: &RuleFilter,
        list: &ListQuery,
    ) -> Result<Page<RuleRecord>, StoreError> {
        let (created_at, id) = list.keyset();
        let query = Query::new(concat!(
            "SELECT ",
            columns!(),
            " FROM federation_rules WHERE organization_id = $1 AND ($2 OR archived_at IS NULL) \
             AND (created_at, id) < ($3, $4) AND ($5 IS NULL OR issuer_id = $5) \
             AND ($6 IS NULL OR service_account_id = $6) ORDER BY created_at DESC, id DESC LIMIT $7"
        ))
        .arg(organization_id.as_str())
        .arg(list.include_archived)
        .arg(created_at)
        .arg(id)
        .arg(filter.issuer_id.as_ref().map(IssuerId::as_str))
        .arg(filter.service_account_id.as_ref().map(ServiceAccountId::as_str))
        .arg(list.limit.fetch());
        let mut pooled = self.read().await?;
        let mut conn = pooled.conn();
        let rows = conn.fetch_all(&query, decode).await?;
        let mut page = Page::from_rows(rows, list.limit, |rule| (rule.audit.created_at, rule.id.as_str()));
        attach_workspaces(&mut conn, &mut page.items).await?;
        Ok(page)
    }
}
