//! [`Admin`]: the typed Admin API client (`/v1/organizations/…`, see `docs/api.md`), over one [`Api`].
//!
//! Parts, in reading order: [`Admin`] and its per-noun handles ([`ServiceAccounts`], [`Issuers`],
//! [`Rules`], [`Workspaces`], [`ApiKeys`], [`Activities`], [`Usage`]), each a thin borrow of the
//! [`Api`] whose methods are one request each and return `keyless-api` types; [`ListOptions`],
//! [`ActivityFilter`] and [`UsageFilter`], the query parameters; then the pagination helpers, [`Pager`] (walks `next_page`) and [`ActivityPager`] (walks
//! the feed's `after_id`).
//!
//! Errors stay in the three classes of [`ClientError`]: `Transport` (no HTTP answer), `Api` (the
//! server's error answer with status, kind, message and request ID) and `Decode` (an answer that is not
//! the expected shape).
//!
//! Must not: validate values the server validates, retry writes, or print anything.

use std::marker::PhantomData;

use keyless_api::{
    ActivityFeed, AddRuleWorkspace, ApiKey, CreateApiKey, CreateFederationIssuer, CreateFederationRule,
    CreateServiceAccount, CreateWorkspace, CreatedApiKey, FederationIssuer, FederationRule, Page, Replay, ReplayRules,
    RuleValidation, RuleWorkspace, RuleWorkspaces, ServiceAccount, SetWorkspaceMembership, SimulateRules, Simulation,
    UpdateApiKey, UpdateFederationIssuer, UpdateFederationRule, UpdateServiceAccount, UpdateWorkspace, UsageSummary,
    VerifyFederationIssuer, VerifyReport, Workspace, WorkspaceMembership, WorkspaceMembershipDeleted, WorkspaceRole,
};
use serde::de::DeserializeOwned;

use crate::{Api, ClientError};

/// The first path segments of every Admin API call.
const BASE: [&str; 2] = ["v1", "organizations"];
/// The largest page the server serves.
pub const MAX_PAGE_SIZE: u32 = 100;

/// The Admin API of one server, called with the [`Api`]'s credential (which needs `org:admin`).
///
/// ```no_run
/// # async fn example(api: keyless_client::Api) -> Result<(), keyless_client::ClientError> {
/// use keyless_client::admin::{Admin, ListOptions};
///
/// let admin = Admin::new(api);
/// let every_account = admin.service_accounts().pages(&ListOptions::default()).collect(None).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Admin {
    api: Api,
}

impl Admin {
    /// The Admin API reached through `api`.
    pub fn new(api: Api) -> Self {
        Admin { api }
    }

    /// The underlying [`Api`].
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// `service_accounts`: service accounts and their workspace memberships.
    pub fn service_accounts(&self) -> ServiceAccounts<'_> {
        ServiceAccounts { api: &self.api }
    }

    /// `federation_issuers`: identity providers, and the verify dry run.
    pub fn issuers(&self) -> Issuers<'_> {
        Issuers { api: &self.api }
    }

    /// `federation_rules`: rules and the workspaces they are enabled in.
    pub fn rules(&self) -> Rules<'_> {
        Rules { api: &self.api }
    }

    /// `workspaces`.
    pub fn workspaces(&self) -> Workspaces<'_> {
        Workspaces { api: &self.api }
    }

    /// `api_keys`: workspace API keys.
    pub fn api_keys(&self) -> ApiKeys<'_> {
        ApiKeys { api: &self.api }
    }

    /// `activities`: the activity feed.
    pub fn activities(&self) -> Activities<'_> {
        Activities { api: &self.api }
    }

    /// `usage`: request counts per principal and workspace.
    pub fn usage(&self) -> Usage<'_> {
        Usage { api: &self.api }
    }
}

/// The query parameters of a collection's `GET`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// The page size, 1–100 (the server's default is 20). With [`Pager::collect`] and a cap, pages
    /// are never larger than what is still wanted.
    pub limit: Option<u32>,
    /// Where to start: the `next_page` of an earlier page.
    pub page: Option<String>,
    /// List archived objects too.
    pub include_archived: bool,
}

impl ListOptions {
    fn query(&self) -> Vec<(String, String)> {
        let mut query = Vec::new();
        if let Some(limit) = self.limit {
            query.push(("limit".to_owned(), limit.to_string()));
        }
        if self.include_archived {
            query.push(("include_archived".to_owned(), "true".to_owned()));
        }
        query
    }
}

/// Owned path segments and query pairs, lent to [`Api`] as slices.
fn call_args<'a>(segments: &'a [String], query: &'a [(String, String)]) -> (Vec<&'a str>, Vec<(&'a str, &'a str)>) {
    (
        segments.iter().map(String::as_str).collect(),
        query
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect(),
    )
}

fn path(rest: &[&str]) -> Vec<String> {
    BASE.iter().chain(rest).map(|segment| (*segment).to_owned()).collect()
}

async fn get<T: DeserializeOwned>(api: &Api, rest: &[&str]) -> Result<T, ClientError> {
    let segments = path(rest);
    let (segments, _) = call_args(&segments, &[]);
    api.get(&segments, &[]).await
}

async fn post<T: DeserializeOwned, B: serde::Serialize + ?Sized>(
    api: &Api,
    rest: &[&str],
    body: &B,
) -> Result<T, ClientError> {
    let segments = path(rest);
    let (segments, _) = call_args(&segments, &[]);
    api.post(&segments, body).await
}

async fn delete<T: DeserializeOwned>(api: &Api, rest: &[&str]) -> Result<T, ClientError> {
    let segments = path(rest);
    let (segments, _) = call_args(&segments, &[]);
    api.delete(&segments).await
}

/// An archive takes no body; `{}` is what the server accepts for "no body" too.
fn empty() -> serde_json::Map<String, serde_json::Value> {
    serde_json::Map::new()
}

/// `/v1/organizations/service_accounts`.
#[derive(Debug, Clone, Copy)]
pub struct ServiceAccounts<'a> {
    api: &'a Api,
}

impl ServiceAccounts<'_> {
    const PATH: &'static str = "service_accounts";

    /// `POST service_accounts`.
    pub async fn create(&self, body: &CreateServiceAccount) -> Result<ServiceAccount, ClientError> {
        post(self.api, &[Self::PATH], body).await
    }

    /// `GET service_accounts`: one page.
    pub async fn list(&self, options: &ListOptions) -> Result<Page<ServiceAccount>, ClientError> {
        self.pages(options)
            .next_page()
            .await
            .map(|page| page.unwrap_or_else(empty_page))
    }

    /// Every page of `GET service_accounts`, from `options.page` on.
    pub fn pages(&self, options: &ListOptions) -> Pager<ServiceAccount> {
        Pager::new(self.api, &[Self::PATH], options, Vec::new())
    }

    /// `GET service_accounts/{id}`.
    pub async fn get(&self, id: &str) -> Result<ServiceAccount, ClientError> {
        get(self.api, &[Self::PATH, id]).await
    }

    /// `POST service_accounts/{id}`: a partial update.
    pub async fn update(&self, id: &str, body: &UpdateServiceAccount) -> Result<ServiceAccount, ClientError> {
        post(self.api, &[Self::PATH, id], body).await
    }

    /// `POST service_accounts/{id}/archive` (idempotent).
    pub async fn archive(&self, id: &str) -> Result<ServiceAccount, ClientError> {
        post(self.api, &[Self::PATH, id, "archive"], &empty()).await
    }

    /// `GET service_accounts/{id}/workspaces`: every membership (never paged), the implicit one included.
    pub async fn workspaces(&self, id: &str) -> Result<Page<WorkspaceMembership>, ClientError> {
        get(self.api, &[Self::PATH, id, "workspaces"]).await
    }

    /// `GET service_accounts/{id}/workspaces/{workspace_id}`: one membership.
    pub async fn workspace(&self, id: &str, workspace_id: &str) -> Result<WorkspaceMembership, ClientError> {
        get(self.api, &[Self::PATH, id, "workspaces", workspace_id]).await
    }

    /// `POST service_accounts/{id}/workspaces`: adds the membership of `workspace_id` (`wrkspc_…` or
    /// `default`) with `role`, or changes its role.
    pub async fn set_workspace(
        &self,
        id: &str,
        workspace_id: &str,
        role: WorkspaceRole,
    ) -> Result<WorkspaceMembership, ClientError> {
        let body = SetWorkspaceMembership {
            workspace_id: Some(workspace_id.to_owned()),
            workspace_role: role,
        };
        post(self.api, &[Self::PATH, id, "workspaces"], &body).await
    }

    /// `DELETE service_accounts/{id}/workspaces/{workspace_id}`.
    pub async fn remove_workspace(
        &self,
        id: &str,
        workspace_id: &str,
    ) -> Result<WorkspaceMembershipDeleted, ClientError> {
        delete(self.api, &[Self::PATH, id, "workspaces", workspace_id]).await
    }
}

/// `/v1/organizations/federation_issuers`.
#[derive(Debug, Clone, Copy)]
pub struct Issuers<'a> {
    api: &'a Api,
}

impl Issuers<'_> {
    const PATH: &'static str = "federation_issuers";

    /// `POST federation_issuers`.
    pub async fn create(&self, body: &CreateFederationIssuer) -> Result<FederationIssuer, ClientError> {
        post(self.api, &[Self::PATH], body).await
    }

    /// `GET federation_issuers`: one page.
    pub async fn list(&self, options: &ListOptions) -> Result<Page<FederationIssuer>, ClientError> {
        self.pages(options)
            .next_page()
            .await
            .map(|page| page.unwrap_or_else(empty_page))
    }

    /// Every page of `GET federation_issuers`, from `options.page` on.
    pub fn pages(&self, options: &ListOptions) -> Pager<FederationIssuer> {
        Pager::new(self.api, &[Self::PATH], options, Vec::new())
    }

    /// `GET federation_issuers/{id}`.
    pub async fn get(&self, id: &str) -> Result<FederationIssuer, ClientError> {
        get(self.api, &[Self::PATH, id]).await
    }

    /// `POST federation_issuers/{id}`: a partial update (an empty one resumes a paused issuer's polling).
    pub async fn update(&self, id: &str, body: &UpdateFederationIssuer) -> Result<FederationIssuer, ClientError> {
        post(self.api, &[Self::PATH, id], body).await
    }

    /// `POST federation_issuers/{id}/archive` (idempotent).
    pub async fn archive(&self, id: &str) -> Result<FederationIssuer, ClientError> {
        post(self.api, &[Self::PATH, id, "archive"], &empty()).await
    }

    /// `POST federation_issuers/verify`: a dry run of a configuration's key fetch; creates nothing.
    pub async fn verify(&self, body: &VerifyFederationIssuer) -> Result<VerifyReport, ClientError> {
        post(self.api, &[Self::PATH, "verify"], body).await
    }
}

/// `/v1/organizations/federation_rules`.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    api: &'a Api,
}

impl Rules<'_> {
    const PATH: &'static str = "federation_rules";

    /// `POST federation_rules`.
    pub async fn create(&self, body: &CreateFederationRule) -> Result<FederationRule, ClientError> {
        post(self.api, &[Self::PATH], body).await
    }

    /// `GET federation_rules`: one page, of one issuer's rules when `issuer_id` is given.
    pub async fn list(
        &self,
        options: &ListOptions,
        issuer_id: Option<&str>,
    ) -> Result<Page<FederationRule>, ClientError> {
        self.pages(options, issuer_id)
            .next_page()
            .await
            .map(|page| page.unwrap_or_else(empty_page))
    }

    /// Every page of `GET federation_rules`, from `options.page` on.
    pub fn pages(&self, options: &ListOptions, issuer_id: Option<&str>) -> Pager<FederationRule> {
        let extra = issuer_id
            .map(|issuer_id| vec![("issuer_id".to_owned(), issuer_id.to_owned())])
            .unwrap_or_default();
        Pager::new(self.api, &[Self::PATH], options, extra)
    }

    /// `POST federation_rules/simulate`: what the exchange would do with a token or a claim set through
    /// one rule or an issuer's rules; mints nothing.
    pub async fn simulate(&self, body: &SimulateRules) -> Result<Simulation, ClientError> {
        post(self.api, &[Self::PATH, "simulate"], body).await
    }

    /// `POST federation_rules/validate`: what a create of `body` would answer (its refusal, or its lint
    /// warnings); creates nothing.
    pub async fn validate(&self, body: &CreateFederationRule) -> Result<RuleValidation, ClientError> {
        post(self.api, &[Self::PATH, "validate"], body).await
    }

    /// `POST federation_rules/replay`: an issuer's most recent refused exchanges run again through a
    /// draft or stored rule; changes nothing.
    pub async fn replay(&self, body: &ReplayRules) -> Result<Replay, ClientError> {
        post(self.api, &[Self::PATH, "replay"], body).await
    }

    /// `GET federation_rules/{id}`.
    pub async fn get(&self, id: &str) -> Result<FederationRule, ClientError> {
        get(self.api, &[Self::PATH, id]).await
    }

    /// `POST federation_rules/{id}`: a partial update, validated as a whole after merging.
    pub async fn update(&self, id: &str, body: &UpdateFederationRule) -> Result<FederationRule, ClientError> {
        post(self.api, &[Self::PATH, id], body).await
    }

    /// `POST federation_rules/{id}/archive` (idempotent; exchanges through it stop at once).
    pub async fn archive(&self, id: &str) -> Result<FederationRule, ClientError> {
        post(self.api, &[Self::PATH, id, "archive"], &empty()).await
    }

    /// `GET federation_rules/{id}/workspaces`.
    pub async fn workspaces(&self, id: &str) -> Result<RuleWorkspaces, ClientError> {
        get(self.api, &[Self::PATH, id, "workspaces"]).await
    }

    /// `GET federation_rules/{id}/workspaces/{workspace_id}`: `Api` error 404 when not enabled there.
    pub async fn workspace(&self, id: &str, workspace_id: &str) -> Result<RuleWorkspace, ClientError> {
        get(self.api, &[Self::PATH, id, "workspaces", workspace_id]).await
    }

    /// `POST federation_rules/{id}/workspaces`: enables the rule in one more workspace; the rule after.
    pub async fn add_workspace(&self, id: &str, workspace_id: &str) -> Result<FederationRule, ClientError> {
        let body = AddRuleWorkspace {
            workspace_id: workspace_id.to_owned(),
        };
        post(self.api, &[Self::PATH, id, "workspaces"], &body).await
    }

    /// `DELETE federation_rules/{id}/workspaces/{workspace_id}`: the rule after.
    pub async fn remove_workspace(&self, id: &str, workspace_id: &str) -> Result<FederationRule, ClientError> {
        delete(self.api, &[Self::PATH, id, "workspaces", workspace_id]).await
    }
}

/// `/v1/organizations/workspaces`.
#[derive(Debug, Clone, Copy)]
pub struct Workspaces<'a> {
    api: &'a Api,
}

impl Workspaces<'_> {
    const PATH: &'static str = "workspaces";

    /// `POST workspaces`.
    pub async fn create(&self, body: &CreateWorkspace) -> Result<Workspace, ClientError> {
        post(self.api, &[Self::PATH], body).await
    }

    /// `GET workspaces`: one page.
    pub async fn list(&self, options: &ListOptions) -> Result<Page<Workspace>, ClientError> {
        self.pages(options)
            .next_page()
            .await
            .map(|page| page.unwrap_or_else(empty_page))
    }

    /// Every page of `GET workspaces`, from `options.page` on.
    pub fn pages(&self, options: &ListOptions) -> Pager<Workspace> {
        Pager::new(self.api, &[Self::PATH], options, Vec::new())
    }

    /// `GET workspaces/{id}` (`default` names the default workspace).
    pub async fn get(&self, id: &str) -> Result<Workspace, ClientError> {
        get(self.api, &[Self::PATH, id]).await
    }

    /// `POST workspaces/{id}`: a partial update.
    pub async fn update(&self, id: &str, body: &UpdateWorkspace) -> Result<Workspace, ClientError> {
        post(self.api, &[Self::PATH, id], body).await
    }

    /// `POST workspaces/{id}/archive`.
    pub async fn archive(&self, id: &str) -> Result<Workspace, ClientError> {
        post(self.api, &[Self::PATH, id, "archive"], &empty()).await
    }
}

/// `/v1/organizations/api_keys`.
#[derive(Debug, Clone, Copy)]
pub struct ApiKeys<'a> {
    api: &'a Api,
}

impl ApiKeys<'_> {
    const PATH: &'static str = "api_keys";

    /// `POST api_keys`: the new key's object and the key itself, which no later answer shows.
    ///
    /// A decode error never quotes the key: the answer is read as JSON first, and the key's text is
    /// cut out of any message about it.
    pub async fn create(&self, body: &CreateApiKey) -> Result<CreatedApiKey, ClientError> {
        let answer: serde_json::Value = post(self.api, &[Self::PATH], body).await?;
        decode_hiding_key(&format!("POST {}", path(&[Self::PATH]).join("/")), answer)
    }

    /// `GET api_keys`: one page, of one workspace's keys when `workspace_id` is given.
    pub async fn list(&self, options: &ListOptions, workspace_id: Option<&str>) -> Result<Page<ApiKey>, ClientError> {
        self.pages(options, workspace_id)
            .next_page()
            .await
            .map(|page| page.unwrap_or_else(empty_page))
    }

    /// Every page of `GET api_keys`, from `options.page` on.
    pub fn pages(&self, options: &ListOptions, workspace_id: Option<&str>) -> Pager<ApiKey> {
        let extra = workspace_id
            .map(|workspace_id| vec![("workspace_id".to_owned(), workspace_id.to_owned())])
            .unwrap_or_default();
        Pager::new(self.api, &[Self::PATH], options, extra)
    }

    /// `GET api_keys/{id}`.
    pub async fn get(&self, id: &str) -> Result<ApiKey, ClientError> {
        get(self.api, &[Self::PATH, id]).await
    }

    /// `POST api_keys/{id}`: a partial update (`status: inactive` disables the key, reversibly).
    pub async fn update(&self, id: &str, body: &UpdateApiKey) -> Result<ApiKey, ClientError> {
        post(self.api, &[Self::PATH, id], body).await
    }

    /// `POST api_keys/{id}/archive`: revokes the key for good (idempotent).
    pub async fn archive(&self, id: &str) -> Result<ApiKey, ClientError> {
        post(self.api, &[Self::PATH, id, "archive"], &empty()).await
    }
}

/// `answer` as `T`; a decode error has the text of `answer.key` cut out (serde quotes a string it
/// did not expect).
fn decode_hiding_key<T: DeserializeOwned>(what: &str, answer: serde_json::Value) -> Result<T, ClientError> {
    let key = answer
        .get("key")
        .and_then(serde_json::Value::as_str)
        .filter(|key| !key.is_empty())
        .map(str::to_owned);
    serde_json::from_value(answer).map_err(|err| {
        let mut message = format!("{what}: the answer is not what was expected: {err}");
        if let Some(key) = key {
            message = message.replace(&key, "…");
        }
        ClientError::Decode(message)
    })
}

/// Which activity events to list: the feed's query parameters. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityFilter {
    /// Only these activity types.
    pub types: Vec<String>,
    /// Only this actor.
    pub actor_id: Option<String>,
    /// Only events about this object.
    pub resource_id: Option<String>,
    /// Only events of this request (`req_…`).
    pub request_id: Option<String>,
    /// Only events created at or after this time (RFC 3339 or Unix seconds).
    pub created_after: Option<String>,
    /// Only events created before this time (RFC 3339 or Unix seconds).
    pub created_before: Option<String>,
    /// Older events than this ID (`actv_…`): continues a listing.
    pub after_id: Option<String>,
    /// Newer events than this ID: the oldest of them, listed newest first. At most one of the two.
    pub before_id: Option<String>,
    /// The page size, 1–100 (the server's default is 20).
    pub limit: Option<u32>,
}

impl ActivityFilter {
    fn query(&self) -> Vec<(String, String)> {
        let mut query = Vec::new();
        let mut push = |name: &str, value: Option<&String>| {
            if let Some(value) = value {
                query.push((name.to_owned(), value.clone()));
            }
        };
        if !self.types.is_empty() {
            push("type", Some(&self.types.join(",")));
        }
        push("actor_id", self.actor_id.as_ref());
        push("resource_id", self.resource_id.as_ref());
        push("request_id", self.request_id.as_ref());
        push("created_after", self.created_after.as_ref());
        push("created_before", self.created_before.as_ref());
        push("after_id", self.after_id.as_ref());
        push("before_id", self.before_id.as_ref());
        push("limit", self.limit.map(|limit| limit.to_string()).as_ref());
        query
    }
}

/// `/v1/organizations/activities`.
#[derive(Debug, Clone, Copy)]
pub struct Activities<'a> {
    api: &'a Api,
}

impl Activities<'_> {
    /// `GET activities`: one page, newest first.
    pub async fn list(&self, filter: &ActivityFilter) -> Result<ActivityFeed, ClientError> {
        let segments = path(&["activities"]);
        let query = filter.query();
        let (segments, query) = call_args(&segments, &query);
        self.api.get(&segments, &query).await
    }

    /// Every page of the feed, newest first, from `filter.after_id` on (walking `after_id`).
    /// `filter.before_id` is ignored: pages run towards older events.
    pub fn pages(&self, filter: &ActivityFilter) -> ActivityPager {
        ActivityPager {
            api: self.api.clone(),
            filter: ActivityFilter {
                before_id: None,
                ..filter.clone()
            },
            done: false,
        }
    }

    /// The oldest events newer than `id` (up to `filter.limit`), newest first: one poll of a follower.
    /// `has_more` says whether still newer events wait; `first_id` is the cursor of the next poll.
    pub async fn newer_than(&self, filter: &ActivityFilter, id: &str) -> Result<ActivityFeed, ClientError> {
        self.list(&ActivityFilter {
            after_id: None,
            before_id: Some(id.to_owned()),
            ..filter.clone()
        })
        .await
    }
}

/// Which usage to sum: the query parameters of `GET usage`. Empty fields do not filter; the server
/// decides the range when a bound is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageFilter {
    /// The start of the range (RFC 3339).
    pub starting_at: Option<String>,
    /// The end of the range (RFC 3339).
    pub ending_at: Option<String>,
    /// Only this workspace (`wrkspc_…` or `default`).
    pub workspace_id: Option<String>,
    /// Only this principal (`apikey_…` or `svac_…`).
    pub principal_id: Option<String>,
}

impl UsageFilter {
    fn query(&self) -> Vec<(String, String)> {
        [
            ("starting_at", &self.starting_at),
            ("ending_at", &self.ending_at),
            ("workspace_id", &self.workspace_id),
            ("principal_id", &self.principal_id),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_ref().map(|value| (name.to_owned(), value.clone())))
        .collect()
    }
}

/// `/v1/organizations/usage`.
#[derive(Debug, Clone, Copy)]
pub struct Usage<'a> {
    api: &'a Api,
}

impl Usage<'_> {
    /// `GET usage`: the counts per principal and workspace over the filter's range (never paged).
    pub async fn summary(&self, filter: &UsageFilter) -> Result<UsageSummary, ClientError> {
        let segments = path(&["usage"]);
        let query = filter.query();
        let (segments, query) = call_args(&segments, &query);
        self.api.get(&segments, &query).await
    }
}

/// Walks a collection page by page, following `next_page`.
#[derive(Debug)]
pub struct Pager<T> {
    api: Api,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    limit: Option<u32>,
    cursor: Option<String>,
    done: bool,
    item: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Pager<T> {
    fn new(api: &Api, rest: &[&str], options: &ListOptions, extra: Vec<(String, String)>) -> Self {
        let mut query = options.query();
        query.retain(|(name, _)| name != "limit");
        query.extend(extra);
        Pager {
            api: api.clone(),
            segments: path(rest),
            query,
            limit: options.limit,
            cursor: options.page.clone(),
            done: false,
            item: PhantomData,
        }
    }

    /// The next page, or `None` after the last one.
    pub async fn next_page(&mut self) -> Result<Option<Page<T>>, ClientError> {
        self.next_page_of(None).await
    }

    /// The next page with at most `at_most` objects (when smaller than the options' limit).
    async fn next_page_of(&mut self, at_most: Option<u32>) -> Result<Option<Page<T>>, ClientError> {
        if self.done {
            return Ok(None);
        }
        let mut query = self.query.clone();
        let limit = match (self.limit, at_most) {
            (Some(limit), Some(at_most)) => Some(limit.min(at_most)),
            (limit, at_most) => limit.or(at_most),
        };
        if let Some(limit) = limit {
            query.push(("limit".to_owned(), limit.to_string()));
        }
        if let Some(cursor) = &self.cursor {
            query.push(("page".to_owned(), cursor.clone()));
        }
        let (segments, query) = call_args(&self.segments, &query);
        let page: Page<T> = self.api.get(&segments, &query).await?;
        match &page.next_page {
            Some(next) if self.cursor.as_ref() == Some(next) => {
                return Err(ClientError::Decode(format!(
                    "GET {}: the server answered the same next_page twice ({next})",
                    self.segments.join("/")
                )));
            }
            Some(next) => self.cursor = Some(next.clone()),
            None => self.done = true,
        }
        Ok(Some(page))
    }

    /// Every object of the remaining pages, or the first `cap` of them. With a cap, no page asks for
    /// more than is still wanted.
    pub async fn collect(mut self, cap: Option<usize>) -> Result<Vec<T>, ClientError> {
        let mut items = Vec::new();
        loop {
            let remaining = cap.map(|cap| cap.saturating_sub(items.len()));
            if remaining == Some(0) {
                break;
            }
            let at_most =
                remaining.map(|remaining| u32::try_from(remaining).unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE));
            let Some(page) = self.next_page_of(at_most).await? else {
                break;
            };
            items.extend(page.data);
        }
        if let Some(cap) = cap {
            items.truncate(cap);
        }
        Ok(items)
    }
}

/// Walks the activity feed towards older events, following `after_id = last_id` while `has_more`.
#[derive(Debug)]
pub struct ActivityPager {
    api: Api,
    filter: ActivityFilter,
    done: bool,
}

impl ActivityPager {
    /// The next page, or `None` after the last one.
    pub async fn next_page(&mut self) -> Result<Option<ActivityFeed>, ClientError> {
        self.next_page_of(None).await
    }

    async fn next_page_of(&mut self, at_most: Option<u32>) -> Result<Option<ActivityFeed>, ClientError> {
        if self.done {
            return Ok(None);
        }
        let mut filter = self.filter.clone();
        if let Some(at_most) = at_most {
            filter.limit = Some(filter.limit.map_or(at_most, |limit| limit.min(at_most)));
        }
        let feed = Activities { api: &self.api }.list(&filter).await?;
        match (&feed.last_id, feed.has_more) {
            (Some(last_id), true) if self.filter.after_id.as_ref() != Some(last_id) => {
                self.filter.after_id = Some(last_id.clone());
            }
            (Some(last_id), true) => {
                return Err(ClientError::Decode(format!(
                    "GET activities: the server answered the same last_id twice ({last_id})"
                )));
            }
            _ => self.done = true,
        }
        Ok(Some(feed))
    }

    /// Every event of the remaining pages (newest first), or the first `cap` of them.
    pub async fn collect(mut self, cap: Option<usize>) -> Result<Vec<keyless_api::Activity>, ClientError> {
        let mut events = Vec::new();
        loop {
            let remaining = cap.map(|cap| cap.saturating_sub(events.len()));
            if remaining == Some(0) {
                break;
            }
            let at_most =
                remaining.map(|remaining| u32::try_from(remaining).unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE));
            let Some(feed) = self.next_page_of(at_most).await? else {
                break;
            };
            events.extend(feed.data);
        }
        if let Some(cap) = cap {
            events.truncate(cap);
        }
        Ok(events)
    }
}

/// The page of a pager that is already done (never the case for a fresh one).
fn empty_page<T>() -> Page<T> {
    Page {
        data: Vec::new(),
        next_page: None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn activity_filters_become_the_documented_query_parameters() {
        let filter = ActivityFilter {
            types: vec!["a_created".to_owned(), "b_updated".to_owned()],
            actor_id: Some("bootstrap".to_owned()),
            created_after: Some("2026-05-01T00:00:00Z".to_owned()),
            before_id: Some("actv_9".to_owned()),
            limit: Some(5),
            ..Default::default()
        };
        let query = filter.query();
        let query: Vec<(&str, &str)> = query
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        assert_eq!(
            query,
            [
                ("type", "a_created,b_updated"),
                ("actor_id", "bootstrap"),
                ("created_after", "2026-05-01T00:00:00Z"),
                ("before_id", "actv_9"),
                ("limit", "5"),
            ]
        );
        assert_eq!(
            ListOptions {
                limit: Some(3),
                page: Some("p".to_owned()),
                include_archived: true
            }
            .query(),
            [
                ("limit".to_owned(), "3".to_owned()),
                ("include_archived".to_owned(), "true".to_owned())
            ]
        );
        assert_eq!(
            UsageFilter {
                starting_at: Some("2026-05-01T00:00:00Z".to_owned()),
                principal_id: Some("apikey_1".to_owned()),
                ..Default::default()
            }
            .query(),
            [
                ("starting_at".to_owned(), "2026-05-01T00:00:00Z".to_owned()),
                ("principal_id".to_owned(), "apikey_1".to_owned())
            ]
        );
        assert_eq!(UsageFilter::default().query(), []);
    }

    #[test]
    fn a_decode_error_never_quotes_the_key() {
        // A shape that makes serde quote the string it found where it wanted a number.
        let answer = serde_json::json!({"key": "keyless_ak_s3cr3t"});
        let err = decode_hiding_key::<std::collections::BTreeMap<String, u64>>("POST x", answer).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("invalid type: string"), "{message}");
        assert!(!message.contains("s3cr3t"), "{message}");
        assert!(!format!("{err:?}").contains("s3cr3t"));
    }
}
