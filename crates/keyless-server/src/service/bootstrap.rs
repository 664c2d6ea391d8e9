//! First start: the organization, its default workspace, its first signing key and a one-time
//! `org:admin` token — and, on every start, loading the signing keys.
//!
//! On an empty database [`ensure_organization`] creates all four in one transaction with an
//! `platform_organization_created` activity event, and writes `bootstrap.json` (mode 0600):
//! `{"organization_id", "admin_token", "expires_at"}`. The admin token lives 24 hours and is stored
//! only as a hash; there is no default password. Order: the file is written beside its final name
//! first, the transaction commits, then the file is renamed into place — so a failed commit leaves
//! no token on disk, and a crash between commit and rename leaves `bootstrap.json.tmp` to use.
//!
//! [`admin_rule`] is `keyless bootstrap admin-rule`: the first `org:admin` automation, set up on the
//! server's own storage without serving (see "Bootstrapping the first admin automation" in
//! `docs/api.md`). The request is checked first, without IO ([`AdminRuleRequest::check`] into
//! [`AdminRule`]); then the existing objects are looked up and every refusal is decided before anything
//! is written; then the federation issuer, the admin service account and the federation rule are
//! created through the Admin API's own service functions ([`crate::service::admin`]), so validation,
//! IDs and activity events are those of the Admin API, with the actor [`ADMIN_RULE_ACTOR`] (interactive:
//! an operator with access to the server's storage is the human the reference reserves `org:admin`
//! rules for). Reuse: an active issuer with the same `issuer_url`, an active admin service account
//! with the same name, and a rule with the same name that already says exactly what was asked (issuer,
//! subject, audience, scope, target) — so running the command twice is a no-op. Anything else under
//! a requested name is refused, never changed.
//!
//! Must not: print or log the admin token (only the file holds it), write `bootstrap.json` itself (only
//! [`ensure_organization`] does, on the first start), or change an existing object.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use keyless_core::id::{IssuerId, OrganizationId, RuleId, ServiceAccountId, WorkspaceId};
use keyless_core::issuer::{DEFAULT_MAX_JWT_LIFETIME_SECONDS, Issuer};
use keyless_core::name::Name;
use keyless_core::rule::{MatchDraft, RuleDraft, TargetDraft};
use keyless_core::scope::{ORG_ADMIN, ScopeSet};
use keyless_core::service_account::OrganizationRole;
use keyless_jose::{Algorithm, SigningKey};
use keyless_store::access_token::AccessTokenRecord;
use keyless_store::activity::Activity;
use keyless_store::audit::Audit;
use keyless_store::issuer::IssuerRecord;
use keyless_store::organization::OrganizationRecord;
use keyless_store::rule::{RuleFilter, RuleRecord};
use keyless_store::service_account::ServiceAccountRecord;
use keyless_store::signing_key::{EncryptedPrivateKey, SigningKeyRecord};
use keyless_store::workspace::WorkspaceRecord;
use keyless_store::{Limit, ListQuery, Page, Store, StoreError};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::clock;
use crate::service::admin::issuers::{self, IssuerCreate};
use crate::service::admin::service_accounts::{self, ServiceAccountCreate};
use crate::service::admin::{Actor, AdminError, Ctx, rules};
use crate::service::jwks::source::{JwksSource, UrlPolicy, check_url};
use crate::service::keys::{KeyEncryptionKey, KeyError};
use crate::service::token;
use crate::state::AppState;

/// The file the one-time admin token is written to, in the data directory.
pub const BOOTSTRAP_FILE: &str = "bootstrap.json";
/// How long the bootstrap admin token lives.
pub const BOOTSTRAP_TOKEN_SECONDS: i64 = 24 * 3600;
/// The actor recorded for what the first start creates.
const ACTOR: &str = "bootstrap";
/// The algorithm of keyless's own signing keys.
const SIGNING_ALGORITHM: Algorithm = Algorithm::Es256;

/// Why the server could not set itself up.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// A signing key could not be sealed or opened.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A signing key could not be generated or loaded.
    #[error("signing key: {0}")]
    Signing(String),
    /// `bootstrap.json` could not be written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The database holds more than one organization, which this server mode does not serve.
    #[error("the database holds {0} organizations; a keyless server serves exactly one")]
    SeveralOrganizations(usize),
    /// Random bytes were not available.
    #[error("the system random generator failed")]
    Random,
}

/// The organization this server serves.
#[derive(Debug)]
pub struct Organization {
    /// Its ID.
    pub id: OrganizationId,
    /// Its default workspace.
    pub default_workspace_id: WorkspaceId,
    /// Its signing keys, newest first.
    pub signing_keys: Vec<SigningKey>,
    /// Where the one-time admin token was written, when this start created the organization.
    pub bootstrap_file: Option<PathBuf>,
}

/// Loads the organization, creating it on first start (see the module documentation).
pub async fn ensure_organization(
    store: &Store,
    kek: &KeyEncryptionKey,
    data_dir: &Path,
    now: i64,
) -> Result<Organization, BootstrapError> {
    let organizations = store.organization_list().await?;
    let (id, bootstrap_file) = match organizations.as_slice() {
        [] => {
            let (id, file) = create(store, kek, data_dir, now).await?;
            (id, Some(file))
        }
        [organization] => (organization.id.clone(), None),
        several => return Err(BootstrapError::SeveralOrganizations(several.len())),
    };
    let default_workspace_id = store.workspace_get_default(&id).await?.id;
    let mut signing_keys = Vec::new();
    for record in store.signing_key_list(false).await? {
        let alg = Algorithm::from_name(&record.alg)
            .ok_or_else(|| BootstrapError::Signing(format!("key {} has unknown alg {}", record.kid, record.alg)))?;
        let pkcs8 = kek.open(&record.kid, record.encrypted_private_key.as_bytes())?;
        let key = SigningKey::from_pkcs8(alg, &pkcs8).map_err(|err| BootstrapError::Signing(err.to_string()))?;
        if key.kid() != record.kid {
            return Err(BootstrapError::Signing(format!(
                "stored key {} has thumbprint {}",
                record.kid,
                key.kid()
            )));
        }
        signing_keys.push(key);
    }
    if signing_keys.is_empty() {
        return Err(BootstrapError::Signing("no active signing key is stored".to_owned()));
    }
    Ok(Organization {
        id,
        default_workspace_id,
        signing_keys,
        bootstrap_file,
    })
}

async fn create(
    store: &Store,
    kek: &KeyEncryptionKey,
    data_dir: &Path,
    now: i64,
) -> Result<(OrganizationId, PathBuf), BootstrapError> {
    let organization_id = OrganizationId::parse(&random_uuid()?).map_err(|_| BootstrapError::Random)?;
    let workspace_id = WorkspaceId::parse(&format!("{}{}", WorkspaceId::PREFIX, random_hex(12)?))
        .map_err(|_| BootstrapError::Random)?;
    let signing_key =
        SigningKey::generate(SIGNING_ALGORITHM).map_err(|err| BootstrapError::Signing(err.to_string()))?;
    let sealed = kek.seal(signing_key.kid(), signing_key.pkcs8().der())?;
    let admin_token = token::mint(clock::now_unix_millis()).map_err(|_| BootstrapError::Random)?;
    let expires_at = now + BOOTSTRAP_TOKEN_SECONDS;
    let scope = ScopeSet::parse(keyless_core::scope::ORG_ADMIN).map_err(|_| BootstrapError::Random)?;

    let final_path = data_dir.join(BOOTSTRAP_FILE);
    let temp_path = data_dir.join(format!("{BOOTSTRAP_FILE}.tmp"));
    let document = json!({
        "organization_id": organization_id.as_str(),
        "admin_token": admin_token.secret.expose_secret(),
        "expires_at": expires_at,
    });
    write_private(&temp_path, &format!("{document:#}\n"))?;

    let mut tx = store.begin().await?;
    tx.organization_create(&OrganizationRecord {
        id: organization_id.clone(),
        created_at: now,
    })
    .await?;
    tx.workspace_create(&WorkspaceRecord {
        id: workspace_id.clone(),
        organization_id: organization_id.clone(),
        name: Name::parse("default").map_err(|_| BootstrapError::Random)?,
        is_default: true,
        audit: Audit::created(now, ACTOR),
    })
    .await?;
    tx.signing_key_create(&SigningKeyRecord {
        kid: signing_key.kid().to_owned(),
        alg: SIGNING_ALGORITHM.name().to_owned(),
        encrypted_private_key: EncryptedPrivateKey::new(sealed),
        created_at: now,
        retired_at: None,
    })
    .await?;
    tx.access_token_create(&AccessTokenRecord {
        hash: admin_token.key.clone(),
        organization_id: organization_id.clone(),
        workspace_id: None,
        service_account_id: None,
        rule_id: None,
        scope,
        created_at: now,
        expires_at,
        revoked_at: None,
    })
    .await?;
    tx.activity_append(&Activity {
        organization_id: organization_id.clone(),
        activity_type: "platform_organization_created".to_owned(),
        actor_id: Some(ACTOR.to_owned()),
        resource_id: Some(organization_id.as_str().to_owned()),
        request_id: None,
        created_at: now,
        payload: json!({
            "default_workspace_id": workspace_id.as_str(),
            "signing_key": { "kid": signing_key.kid(), "alg": SIGNING_ALGORITHM.name() },
            "admin_token": { "sha256": token::hex(&admin_token.sha256), "scope": "org:admin", "expires_at": expires_at },
        }),
    })
    .await?;
    if let Err(err) = tx.commit().await {
        let _ = std::fs::remove_file(&temp_path);
        return Err(err.into());
    }
    std::fs::rename(&temp_path, &final_path).map_err(|source| BootstrapError::File {
        path: final_path.display().to_string(),
        source,
    })?;
    Ok((organization_id, final_path))
}

/// Writes `text` to a new file readable only by its owner (an existing file is replaced).
fn write_private(path: &Path, text: &str) -> Result<(), BootstrapError> {
    let fail = |source| BootstrapError::File {
        path: path.display().to_string(),
        source,
    };
    if path.exists() {
        std::fs::remove_file(path).map_err(fail)?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(fail)
}

fn random_bytes<const N: usize>() -> Result<[u8; N], BootstrapError> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| BootstrapError::Random)?;
    Ok(bytes)
}

fn random_hex(len_bytes: usize) -> Result<String, BootstrapError> {
    let bytes: [u8; 32] = random_bytes()?;
    Ok(token::hex(bytes.get(..len_bytes.min(32)).unwrap_or_default()))
}

/// A random (version 4) UUID in its textual form.
fn random_uuid() -> Result<String, BootstrapError> {
    let mut bytes: [u8; 16] = random_bytes()?;
    if let Some(version) = bytes.get_mut(6) {
        *version = (*version & 0x0f) | 0x40;
    }
    if let Some(variant) = bytes.get_mut(8) {
        *variant = (*variant & 0x3f) | 0x80;
    }
    let mut text = String::with_capacity(36);
    for (idx, byte) in bytes.iter().enumerate() {
        if matches!(idx, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        text.push_str(&format!("{byte:02x}"));
    }
    Ok(text)
}

/// The actor recorded for what `keyless bootstrap admin-rule` creates.
pub const ADMIN_RULE_ACTOR: &str = "keyless-bootstrap-cli";
/// The prefix of a derived issuer name (`bootstrap-<host>`).
const ISSUER_NAME_PREFIX: &str = "bootstrap-";

/// What `keyless bootstrap admin-rule` asks for, as given on the command line (first stage).
#[derive(Debug, Clone)]
pub struct AdminRuleRequest {
    /// `--issuer`: the `issuer_url` (`iss`) of the workload's identity provider.
    pub issuer_url: String,
    /// `--issuer-name`; `None` derives `bootstrap-<host>` from the URL.
    pub issuer_name: Option<String>,
    /// `--jwks-url`: an `explicit_url` JWKS instead of OIDC discovery.
    pub jwks_url: Option<String>,
    /// `--service-account-name`.
    pub service_account_name: String,
    /// `--subject`: the rule's `match.subject_prefix`.
    pub subject: String,
    /// `--allow-prefix`: accept a subject with a trailing `*` (a prefix match).
    pub allow_prefix: bool,
    /// `--audience`: the rule's `match.audience`.
    pub audience: Option<String>,
    /// `--rule-name`.
    pub rule_name: String,
}

/// A checked [`AdminRuleRequest`] (second stage): every field passed the checks the Admin API makes,
/// and the rule it describes passed `keyless-core`'s write-time validation.
#[derive(Debug, Clone)]
pub struct AdminRule {
    issuer_url: String,
    issuer_name: Name,
    jwks: Option<Value>,
    service_account_name: Name,
    subject: String,
    audience: Option<String>,
    rule_name: Name,
}

/// One object of the outcome: its ID and name, and whether this run created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned<Id> {
    /// Its ID.
    pub id: Id,
    /// Its name.
    pub name: String,
    /// Whether this run created it (else an existing object was reused).
    pub created: bool,
}

/// What `keyless bootstrap admin-rule` set up.
#[derive(Debug, Clone)]
pub struct AdminRuleOutcome {
    /// The organization.
    pub organization_id: OrganizationId,
    /// The federation issuer.
    pub issuer: Provisioned<IssuerId>,
    /// The admin service account.
    pub service_account: Provisioned<ServiceAccountId>,
    /// The `org:admin` federation rule.
    pub federation_rule: Provisioned<RuleId>,
    /// The rule's `match.subject_prefix`.
    pub subject: String,
    /// The rule's `match.audience`.
    pub audience: Option<String>,
    /// Where the first start wrote the one-time admin token, when this run created the organization.
    pub bootstrap_file: Option<PathBuf>,
    /// What the operator should know (what was reused, and how it differs from what was asked).
    pub notes: Vec<String>,
}

/// Why `keyless bootstrap admin-rule` did not complete. Every message is one line.
#[derive(Debug, thiserror::Error)]
pub enum AdminRuleError {
    /// The storage could not be opened or the organization set up.
    #[error(transparent)]
    Setup(#[from] crate::ServeError),
    /// The request is refused as written, or conflicts with what exists; nothing was changed by the
    /// refused step.
    #[error("{0}")]
    Refused(String),
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// Something else failed.
    #[error("internal: {0}")]
    Internal(String),
}

fn refused(message: impl Into<String>) -> AdminRuleError {
    AdminRuleError::Refused(message.into())
}

/// `message` (`<field>: <reason>`) with `field` replaced by the command-line `flag`.
fn for_flag(flag: &str, field: &str, message: &str) -> AdminRuleError {
    let reason = message
        .strip_prefix(field)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(message);
    refused(format!("{flag}: {reason}"))
}

impl AdminRuleRequest {
    /// Checks the request without IO, as the Admin API would check the three objects, and refuses a
    /// subject that is not exact (a lone `*` always; a trailing `*` unless `allow_prefix`).
    pub fn check(self, policy: UrlPolicy) -> Result<AdminRule, AdminRuleError> {
        let issuer_url = issuers::check_issuer_url(&self.issuer_url, policy)
            .map_err(|error| for_flag("--issuer", "issuer_url", &error.to_string()))?;
        let url = check_url(&issuer_url, policy).map_err(|message| refused(format!("--issuer: {message}")))?;
        let issuer_name = match &self.issuer_name {
            Some(text) => Name::parse(text).map_err(|error| refused(format!("--issuer-name: {error}")))?,
            None => default_issuer_name(url.host_str().unwrap_or_default())?,
        };
        let jwks = match &self.jwks_url {
            None => None,
            Some(jwks_url) => {
                let value = json!({ "type": "explicit_url", "url": jwks_url });
                JwksSource::parse(&value, policy)
                    .map_err(|error| for_flag("--jwks-url", "jwks.url", &error.to_string()))?;
                Some(value)
            }
        };
        let service_account_name = Name::parse(&self.service_account_name)
            .map_err(|error| refused(format!("--service-account-name: {error}")))?;
        check_subject(&self.subject, self.allow_prefix)?;
        let rule_name = Name::parse(&self.rule_name).map_err(|error| refused(format!("--rule-name: {error}")))?;
        let admin_rule = AdminRule {
            issuer_url,
            issuer_name,
            jwks,
            service_account_name,
            subject: self.subject,
            audience: self.audience,
            rule_name,
        };
        admin_rule.dry_run()?;
        Ok(admin_rule)
    }
}

/// An admin rule's subject must name one workload.
fn check_subject(subject: &str, allow_prefix: bool) -> Result<(), AdminRuleError> {
    if subject.is_empty() {
        return Err(refused("--subject: must not be empty"));
    }
    if subject == "*" {
        return Err(refused(
            "--subject: `*` matches every subject of the issuer; an org:admin rule needs the exact subject \
             of one workload",
        ));
    }
    if subject.ends_with('*') && !allow_prefix {
        return Err(refused(format!(
            "--subject: `{subject}` is a prefix pattern (trailing `*`) that would grant org:admin to every \
             matching subject; give the exact subject, or pass --allow-prefix if a prefix is really meant"
        )));
    }
    Ok(())
}

/// `bootstrap-<host>`, with every run of characters a name cannot hold turned into one `-`.
fn default_issuer_name(host: &str) -> Result<Name, AdminRuleError> {
    let mut name = ISSUER_NAME_PREFIX.to_owned();
    for c in host.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let name: String = name.trim_end_matches('-').chars().take(255).collect();
    Name::parse(name.trim_end_matches('-')).map_err(|error| {
        refused(format!(
            "--issuer-name: cannot derive a name from the host ({error}); pass one"
        ))
    })
}

impl AdminRule {
    /// The rule's `match` block.
    fn match_draft(&self) -> MatchDraft {
        MatchDraft {
            subject_prefix: Some(self.subject.clone()),
            audience: self.audience.clone(),
            claims: None,
            condition: None,
        }
    }

    /// The create body of the rule on `issuer_id` for `service_account_id`.
    fn draft(&self, issuer_id: &str, service_account_id: &str) -> RuleDraft {
        RuleDraft {
            name: self.rule_name.as_str().to_owned(),
            description: Some(format!(
                "org:admin for the workload {} (created by keyless bootstrap admin-rule)",
                self.subject
            )),
            issuer_id: issuer_id.to_owned(),
            r#match: self.match_draft(),
            target: TargetDraft {
                kind: "service_account".to_owned(),
                service_account_id: service_account_id.to_owned(),
            },
            oauth_scope: Some(ORG_ADMIN.to_owned()),
            token_lifetime_seconds: None,
            workspace_id: None,
            workspace_ids: None,
            applies_to_all_workspaces: None,
            mode: None,
        }
    }

    /// Validates the rule with `keyless-core`, as the create will, against placeholder IDs (the
    /// checks that matter here depend only on the issuer URL and the `match` block), so a refused rule
    /// is refused before its issuer and service account exist. It has no condition: no CEL compiles.
    fn dry_run(&self) -> Result<(), AdminRuleError> {
        let placeholder = "0".repeat(32);
        let issuer_id = format!("{}{placeholder}", IssuerId::PREFIX);
        let service_account_id = format!("{}{placeholder}", ServiceAccountId::PREFIX);
        let organization_id = OrganizationId::parse("00000000-0000-4000-8000-000000000000");
        let workspace_id = WorkspaceId::parse(&format!("{}{placeholder}", WorkspaceId::PREFIX));
        let (Ok(id), Ok(organization_id), Ok(workspace_id)) =
            (IssuerId::parse(&issuer_id), organization_id, workspace_id)
        else {
            return Err(AdminRuleError::Internal("placeholder IDs do not parse".to_owned()));
        };
        let issuer = Issuer {
            id,
            organization_id,
            issuer_url: self.issuer_url.clone(),
            check_jti: true,
            max_jwt_lifetime_seconds: DEFAULT_MAX_JWT_LIFETIME_SECONDS,
            archived: false,
        };
        self.draft(&issuer_id, &service_account_id)
            .validate(&issuer, &workspace_id)
            .map(drop)
            .map_err(|error| {
                let message = error.to_string();
                let flag = if message.starts_with("match.audience") {
                    ("--audience", "match.audience")
                } else if message.starts_with("name") {
                    ("--rule-name", "name")
                } else if message.starts_with("match.subject_prefix") {
                    ("--subject", "match.subject_prefix")
                } else {
                    ("--subject", "match")
                };
                for_flag(flag.0, flag.1, &message)
            })
    }
}

/// Every object of a list, archived ones included, page by page.
async fn every<T>(mut page: impl AsyncFnMut(ListQuery) -> Result<Page<T>, StoreError>) -> Result<Vec<T>, StoreError> {
    let mut query = ListQuery {
        limit: Limit::new(Limit::MAX).unwrap_or_default(),
        cursor: None,
        include_archived: true,
    };
    let mut all = Vec::new();
    loop {
        let Page { items, next_cursor } = page(query.clone()).await?;
        all.extend(items);
        match next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => return Ok(all),
        }
    }
}

/// The issuer to reuse: an active one with the URL, preferably the one with the requested name, else
/// the oldest. `None` means one is created, which is refused when its name is taken.
fn choose_issuer(
    issuers: &[IssuerRecord],
    admin_rule: &AdminRule,
    notes: &mut Vec<String>,
) -> Result<Option<IssuerRecord>, AdminRuleError> {
    let mut same_url: Vec<&IssuerRecord> = issuers
        .iter()
        .filter(|issuer| !issuer.audit.is_archived() && issuer.issuer_url == admin_rule.issuer_url)
        .collect();
    // Lists are newest first: the oldest is last.
    same_url.reverse();
    let chosen = same_url
        .iter()
        .find(|issuer| issuer.name == admin_rule.issuer_name)
        .or_else(|| same_url.first());
    if let Some(issuer) = chosen {
        notes.push(format!(
            "reusing the active federation issuer {} ({}) for {}",
            issuer.id, issuer.name, issuer.issuer_url
        ));
        if same_url.len() > 1 {
            notes.push(format!(
                "{} active federation issuers have this issuer_url; {} was chosen",
                same_url.len(),
                issuer.id
            ));
        }
        if let Some(asked) = &admin_rule.jwks
            && (issuer.jwks.get("type") != asked.get("type") || issuer.jwks.get("url") != asked.get("url"))
        {
            notes.push(format!(
                "--jwks-url was not applied: issuer {} keeps its jwks {}; change it through the Admin API if \
                 needed",
                issuer.id, issuer.jwks
            ));
        }
        return Ok(Some((*issuer).clone()));
    }
    if let Some(taken) = issuers.iter().find(|issuer| issuer.name == admin_rule.issuer_name) {
        let state = if taken.audit.is_archived() {
            "archived"
        } else {
            "active"
        };
        return Err(refused(format!(
            "--issuer-name: the name {} is already used by the {state} federation issuer {} ({}); pass another \
             --issuer-name",
            admin_rule.issuer_name, taken.id, taken.issuer_url
        )));
    }
    Ok(None)
}

/// The service account to reuse: the active admin one with the name. `None` means one is created.
fn choose_service_account(
    service_accounts: &[ServiceAccountRecord],
    admin_rule: &AdminRule,
    notes: &mut Vec<String>,
) -> Result<Option<ServiceAccountRecord>, AdminRuleError> {
    let Some(existing) = service_accounts
        .iter()
        .find(|service_account| service_account.name == admin_rule.service_account_name)
    else {
        return Ok(None);
    };
    if existing.audit.is_archived() {
        return Err(refused(format!(
            "--service-account-name: the name {} belongs to the archived service account {}; pass another \
             --service-account-name",
            existing.name, existing.id
        )));
    }
    if existing.organization_role != OrganizationRole::Admin {
        return Err(refused(format!(
            "--service-account-name: the service account {} ({}) has organization_role developer, not admin; \
             promote it through the Admin API or pass another --service-account-name",
            existing.name, existing.id
        )));
    }
    notes.push(format!(
        "reusing the active admin service account {} ({})",
        existing.id, existing.name
    ));
    Ok(Some(existing.clone()))
}

/// The rule to reuse: the active one with the name that already says exactly what was asked.
/// `None` means one is created; a rule with the name that says anything else is refused.
fn choose_rule(
    rules: &[RuleRecord],
    admin_rule: &AdminRule,
    issuer: Option<&IssuerRecord>,
    service_account: Option<&ServiceAccountRecord>,
    notes: &mut Vec<String>,
) -> Result<Option<RuleRecord>, AdminRuleError> {
    let Some(existing) = rules.iter().find(|rule| rule.name == admin_rule.rule_name) else {
        return Ok(None);
    };
    if existing.audit.is_archived() {
        return Err(refused(format!(
            "--rule-name: the name {} belongs to the archived federation rule {}; pass another --rule-name",
            existing.name, existing.id
        )));
    }
    let r#match = &existing.r#match;
    let mut differs = Vec::new();
    if issuer.map(|issuer| &issuer.id) != Some(&existing.issuer_id) {
        differs.push("issuer_id");
    }
    if r#match.subject_prefix.as_deref() != Some(admin_rule.subject.as_str()) {
        differs.push("match.subject_prefix");
    }
    if r#match.audience != admin_rule.audience {
        differs.push("match.audience");
    }
    if r#match.claims.as_ref().is_some_and(|claims| !claims.is_empty()) || r#match.condition.is_some() {
        differs.push("match");
    }
    if existing.oauth_scope.to_string() != ORG_ADMIN {
        differs.push("oauth_scope");
    }
    if service_account.map(|service_account| &service_account.id) != Some(&existing.service_account_id) {
        differs.push("target");
    }
    if !differs.is_empty() {
        return Err(refused(format!(
            "--rule-name: the federation rule {} ({}) already exists with a different {}; nothing was changed: \
             pass another --rule-name, or change or archive {} through the Admin API",
            existing.name,
            existing.id,
            differs.join(", "),
            existing.id
        )));
    }
    notes.push(format!(
        "reusing the federation rule {} ({}): it already grants org:admin to this subject",
        existing.id, existing.name
    ));
    Ok(Some(existing.clone()))
}

/// The typed `id` of an object view a service function returned.
fn id_of<Id, E>(view: &Value, parse: impl Fn(&str) -> Result<Id, E>) -> Result<Id, AdminRuleError> {
    view.get("id")
        .and_then(Value::as_str)
        .and_then(|text| parse(text).ok())
        .ok_or_else(|| AdminRuleError::Internal("a created object has no valid id".to_owned()))
}

/// Maps an Admin API refusal while creating `what`.
fn creating(what: &'static str) -> impl FnOnce(AdminError) -> AdminRuleError {
    move |error| match error {
        AdminError::Store(error) => AdminRuleError::Store(error),
        AdminError::Internal(message) => AdminRuleError::Internal(message),
        other => refused(format!("creating the {what}: {other}")),
    }
}

/// Sets up the first `org:admin` automation on `state`'s organization (see the module documentation).
/// `bootstrap_file` of the outcome is left `None`: only the caller knows whether it created the
/// organization.
pub async fn admin_rule(
    state: &AppState,
    admin_rule: &AdminRule,
    now: i64,
) -> Result<AdminRuleOutcome, AdminRuleError> {
    let organization_id = &state.organization_id;
    let mut notes = Vec::new();

    // Look everything up and decide every refusal before the first write.
    let issuers = every(async |query| state.store.issuer_list(organization_id, &query).await).await?;
    let issuer = choose_issuer(&issuers, admin_rule, &mut notes)?;
    let service_accounts = every(async |query| state.store.service_account_list(organization_id, &query).await).await?;
    let service_account = choose_service_account(&service_accounts, admin_rule, &mut notes)?;
    let rules = every(async |query| {
        state
            .store
            .rule_list(organization_id, &RuleFilter::default(), &query)
            .await
    })
    .await?;
    let rule = choose_rule(
        &rules,
        admin_rule,
        issuer.as_ref(),
        service_account.as_ref(),
        &mut notes,
    )?;

    let actor = Actor {
        id: ADMIN_RULE_ACTOR.to_owned(),
        interactive: true,
    };
    let request_id = format!(
        "req_{}",
        random_hex(12).map_err(|error| AdminRuleError::Internal(error.to_string()))?
    );
    let ctx = Ctx {
        state,
        actor: &actor,
        request_id: &request_id,
        now,
    };
    let issuer = match issuer {
        Some(issuer) => Provisioned {
            id: issuer.id,
            name: issuer.name.as_str().to_owned(),
            created: false,
        },
        None => {
            let body = IssuerCreate {
                name: admin_rule.issuer_name.as_str().to_owned(),
                issuer_url: admin_rule.issuer_url.clone(),
                jwks: admin_rule.jwks.clone(),
                check_jti: None,
                max_jwt_lifetime_seconds: None,
            };
            let view = issuers::create(&ctx, body)
                .await
                .map_err(creating("federation issuer"))?;
            Provisioned {
                id: id_of(&view, IssuerId::parse)?,
                name: admin_rule.issuer_name.as_str().to_owned(),
                created: true,
            }
        }
    };
    let service_account = match service_account {
        Some(service_account) => Provisioned {
            id: service_account.id,
            name: service_account.name.as_str().to_owned(),
            created: false,
        },
        None => {
            let body = ServiceAccountCreate {
                name: admin_rule.service_account_name.as_str().to_owned(),
                description: Some("org:admin automation (created by keyless bootstrap admin-rule)".to_owned()),
                organization_role: Some("admin".to_owned()),
            };
            let view = service_accounts::create(&ctx, body)
                .await
                .map_err(creating("service account"))?;
            Provisioned {
                id: id_of(&view, ServiceAccountId::parse)?,
                name: admin_rule.service_account_name.as_str().to_owned(),
                created: true,
            }
        }
    };
    let federation_rule = match rule {
        Some(rule) => Provisioned {
            id: rule.id,
            name: rule.name.as_str().to_owned(),
            created: false,
        },
        None => {
            let draft = admin_rule.draft(issuer.id.as_str(), service_account.id.as_str());
            let view = rules::create(&ctx, draft).await.map_err(creating("federation rule"))?;
            Provisioned {
                id: id_of(&view, RuleId::parse)?,
                name: admin_rule.rule_name.as_str().to_owned(),
                created: true,
            }
        }
    };
    Ok(AdminRuleOutcome {
        organization_id: organization_id.clone(),
        issuer,
        service_account,
        federation_rule,
        subject: admin_rule.subject.clone(),
        audience: admin_rule.audience.clone(),
        bootstrap_file: None,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(subject: &str, allow_prefix: bool) -> AdminRuleRequest {
        AdminRuleRequest {
            issuer_url: "https://token.actions.githubusercontent.com".to_owned(),
            issuer_name: None,
            jwks_url: None,
            service_account_name: "bootstrap-admin".to_owned(),
            subject: subject.to_owned(),
            allow_prefix,
            audience: None,
            rule_name: "bootstrap-admin-rule".to_owned(),
        }
    }

    fn check(request: AdminRuleRequest, expect: Result<&str, &str>) {
        let res = request
            .check(UrlPolicy { allow_insecure: false })
            .map(|admin_rule| admin_rule.issuer_name.as_str().to_owned())
            .map_err(|error| error.to_string());
        assert_eq!(res.as_deref(), expect.map_err(ToOwned::to_owned).as_deref());
    }

    #[test]
    fn admin_rule_subjects_name_one_workload() {
        let exact = "repo:acme/infra:ref:refs/heads/main";
        check(
            request(exact, false),
            Ok("bootstrap-token-actions-githubusercontent-com"),
        );
        check(
            request("*", true),
            Err(
                "--subject: `*` matches every subject of the issuer; an org:admin rule needs the exact subject of one workload",
            ),
        );
        check(
            request("repo:acme/*", false),
            Err(
                "--subject: `repo:acme/*` is a prefix pattern (trailing `*`) that would grant org:admin to every matching subject; give the exact subject, or pass --allow-prefix if a prefix is really meant",
            ),
        );
        check(
            request("repo:acme/*", true),
            Ok("bootstrap-token-actions-githubusercontent-com"),
        );
        check(request("", false), Err("--subject: must not be empty"));
        // The shared-issuer tenant pin of keyless-core applies before anything is written.
        let pin = request("refs/heads/main", false)
            .check(UrlPolicy { allow_insecure: false })
            .map(drop)
            .map_err(|error| error.to_string());
        assert!(
            pin.as_ref()
                .is_err_and(|message| message.starts_with("--subject: ") && message.contains("shared issuer")),
            "{pin:?}"
        );
    }

    #[test]
    fn admin_rule_urls_and_names_name_their_flag() {
        let with = |edit: fn(&mut AdminRuleRequest)| {
            let mut request = request("repo:acme/infra:ref:refs/heads/main", false);
            edit(&mut request);
            request
        };
        check(
            with(|request| request.issuer_url = "ftp://x".to_owned()),
            Err("--issuer: url must use https scheme"),
        );
        check(
            with(|request| request.jwks_url = Some("http://keys.example.com/jwks".to_owned())),
            Err("--jwks-url: url must use https scheme"),
        );
        check(
            with(|request| request.issuer_name = Some("Not A Name".to_owned())),
            Err("--issuer-name: must be 1 to 255 characters of a-z, 0-9 and -"),
        );
        check(
            with(|request| request.issuer_url = "https://Auth.Example.COM./tenant-1".to_owned()),
            Ok("bootstrap-auth-example-com"),
        );
        check(
            with(|request| request.audience = Some(String::new())),
            Err("--audience: must not be empty"),
        );
    }
}
