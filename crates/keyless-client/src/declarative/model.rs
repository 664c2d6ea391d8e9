//! The file format (`version: 1`): [`Document`] and its object specs, keyed by name; [`parse`], which
//! refuses unknown fields with their path, and the checks that need no server ([`Document::check`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use keyless_api::{Jwks, Match, OrganizationRole, WorkspaceRole};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

/// The only format version this client reads and writes.
pub const VERSION: u32 = 1;

/// The JSON Schema of the file (`schema/keyless-config.v1.json`).
pub const SCHEMA: &str = include_str!("../../../../schema/keyless-config.v1.json");

/// An organization's configuration, keyed by name. Every list may be left out (empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// The format version: `1`.
    pub version: u32,
    /// Workspaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workspaces: Vec<WorkspaceSpec>,
    /// Service accounts and their workspace memberships.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_accounts: Vec<ServiceAccountSpec>,
    /// Federation issuers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issuers: Vec<IssuerSpec>,
    /// Federation rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleSpec>,
}

/// A workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceSpec {
    /// Its name.
    pub name: String,
}

/// A service account. `workspaces` is its whole set of explicit memberships: one on the server that
/// the file does not list is removed (the implicit `workspace_user` membership of the default
/// workspace is never listed and never removed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountSpec {
    /// Its name (immutable on the server, so a rename is an archive and a create).
    pub name: String,
    /// A description; none when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `developer` (the default) or `admin`.
    #[serde(default = "developer")]
    pub organization_role: OrganizationRole,
    /// Its explicit workspace memberships.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workspaces: Vec<MembershipSpec>,
}

fn developer() -> OrganizationRole {
    OrganizationRole::Developer
}

/// One workspace membership of a service account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipSpec {
    /// The workspace, by name.
    pub workspace: String,
    /// The role held there.
    pub role: WorkspaceRole,
}

/// A federation issuer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSpec {
    /// Its name.
    pub name: String,
    /// The `iss` its tokens carry, byte for byte.
    pub issuer_url: String,
    /// Where its keys come from; discovery when left out.
    #[serde(default)]
    pub jwks: JwksSpec,
    /// Single-use `jti`; `true` when left out.
    #[serde(default = "yes")]
    pub check_jti: bool,
    /// The largest `exp − iat` accepted; 3600 when left out.
    #[serde(default = "an_hour")]
    pub max_jwt_lifetime_seconds: i64,
}

fn yes() -> bool {
    true
}

fn an_hour() -> i64 {
    3600
}

/// An issuer's `jwks` block (the Admin API's, with unknown members refused).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum JwksSpec {
    /// Keys from the discovery document of `discovery_base` (or of the issuer URL).
    Discovery {
        /// Where to look for the discovery document instead of the issuer URL.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        discovery_base: Option<String>,
        /// Extra trust anchors (PEM).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ca_cert_pem: Option<String>,
    },
    /// Keys from a JWKS URL.
    ExplicitUrl {
        /// The JWKS URL.
        url: String,
        /// Extra trust anchors (PEM).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ca_cert_pem: Option<String>,
    },
    /// Keys written into the configuration.
    Inline {
        /// Public JWKs.
        keys: Vec<Value>,
    },
}

impl Default for JwksSpec {
    fn default() -> Self {
        JwksSpec::Discovery {
            discovery_base: None,
            ca_cert_pem: None,
        }
    }
}

impl From<JwksSpec> for Jwks {
    fn from(spec: JwksSpec) -> Jwks {
        match spec {
            JwksSpec::Discovery {
                discovery_base,
                ca_cert_pem,
            } => Jwks::Discovery {
                discovery_base,
                ca_cert_pem,
            },
            JwksSpec::ExplicitUrl { url, ca_cert_pem } => Jwks::ExplicitUrl { url, ca_cert_pem },
            JwksSpec::Inline { keys } => Jwks::Inline { keys },
        }
    }
}

impl From<Jwks> for JwksSpec {
    fn from(jwks: Jwks) -> JwksSpec {
        match jwks {
            Jwks::Discovery {
                discovery_base,
                ca_cert_pem,
            } => JwksSpec::Discovery {
                discovery_base,
                ca_cert_pem,
            },
            Jwks::ExplicitUrl { url, ca_cert_pem } => JwksSpec::ExplicitUrl { url, ca_cert_pem },
            Jwks::Inline { keys } => JwksSpec::Inline { keys },
        }
    }
}

/// A federation rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Its name.
    pub name: String,
    /// A description; none when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The issuer whose tokens it matches, by name (immutable: changing it needs a new rule).
    pub issuer: String,
    /// What a token must carry.
    #[serde(rename = "match")]
    pub r#match: MatchSpec,
    /// The service account a matching token becomes, by name.
    pub service_account: String,
    /// The scopes it grants at most, space-separated; `workspace:developer` when left out.
    #[serde(default = "workspace_developer")]
    pub oauth_scope: String,
    /// The longest lifetime of a token minted through it; 3600 when left out.
    #[serde(default = "an_hour")]
    pub token_lifetime_seconds: i64,
    /// `all`, or a list of workspace names; the default workspace when left out.
    #[serde(default, skip_serializing_if = "RuleWorkspacesSpec::is_default")]
    pub workspaces: RuleWorkspacesSpec,
    /// `enforce` (mints tokens) or `shadow` (records what it would decide); `enforce` when left out.
    #[serde(default = "enforce", skip_serializing_if = "is_enforce")]
    pub mode: String,
}

fn enforce() -> String {
    "enforce".to_owned()
}

fn is_enforce(mode: &str) -> bool {
    mode == "enforce"
}

fn workspace_developer() -> String {
    "workspace:developer".to_owned()
}

/// A rule's `match` block (the Admin API's, with unknown members refused).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    /// `sub` equals it, or starts with it when it ends in `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_prefix: Option<String>,
    /// `aud` is it, or contains it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Top-level claims that must equal these strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<BTreeMap<String, String>>,
    /// A CEL expression over `claims` that must be true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

impl MatchSpec {
    /// The same block with an empty `claims` map read as no claims (the server may store either).
    pub(crate) fn normalized(&self) -> MatchSpec {
        MatchSpec {
            claims: self.claims.clone().filter(|claims| !claims.is_empty()),
            ..self.clone()
        }
    }
}

impl From<MatchSpec> for Match {
    fn from(spec: MatchSpec) -> Match {
        Match {
            subject_prefix: spec.subject_prefix,
            audience: spec.audience,
            claims: spec.claims,
            condition: spec.condition,
        }
    }
}

impl From<Match> for MatchSpec {
    fn from(block: Match) -> MatchSpec {
        MatchSpec {
            subject_prefix: block.subject_prefix,
            audience: block.audience,
            claims: block.claims,
            condition: block.condition,
        }
    }
}

/// Where a rule is enabled: the default workspace (field left out), `all`, or named workspaces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RuleWorkspacesSpec {
    /// Left out: the default workspace, whatever its name.
    #[default]
    Default,
    /// `all`: every workspace, present and future.
    All,
    /// These workspaces, by name.
    Named(Vec<String>),
}

impl RuleWorkspacesSpec {
    fn is_default(&self) -> bool {
        *self == RuleWorkspacesSpec::Default
    }
}

impl Serialize for RuleWorkspacesSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RuleWorkspacesSpec::Default => serializer.serialize_none(),
            RuleWorkspacesSpec::All => serializer.serialize_str("all"),
            RuleWorkspacesSpec::Named(names) => names.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for RuleWorkspacesSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AllOrNames;

        impl<'de> Visitor<'de> for AllOrNames {
            type Value = RuleWorkspacesSpec;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`all` or a list of workspace names")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                if text == "all" {
                    Ok(RuleWorkspacesSpec::All)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(text), &self))
                }
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(RuleWorkspacesSpec::Named(names))
            }
        }

        deserializer.deserialize_any(AllOrNames)
    }
}

/// One thing wrong with a file, at a path (`rules[2].match.subject_prefx`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: a path into the document; empty for the whole document.
    pub path: String,
    /// What.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() || self.path == "." {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Everything wrong with a file (never empty), shown on one line separated by `; `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(Problem::to_string).collect();
        f.write_str(&lines.join("; "))
    }
}

/// Reads a file (YAML, or JSON, which is YAML too) strictly: an unknown field, a wrong type or a
/// missing required field is refused with its path; then [`Document::check`].
pub fn parse(text: &str) -> Result<Document, Problems> {
    let deserializer = serde_norway::Deserializer::from_str(text);
    let document: Document = serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        Problems(vec![Problem::new(path, yaml_message(&inner))])
    })?;
    document.check()?;
    Ok(document)
}

/// A YAML reader's message without its own path prefix and position (the caller has a better path),
/// without serde's list of expected fields, and with the line and column at the end.
fn yaml_message(err: &serde_norway::Error) -> String {
    let mut message = err.to_string();
    if let Some((head, rest)) = message.split_once(": ")
        && !head.contains(char::is_whitespace)
    {
        message = rest.to_owned();
    }
    if let Some((head, _)) = message.rsplit_once(" at line ") {
        message = head.to_owned();
    }
    if message.starts_with("unknown field")
        && let Some((head, _)) = message.split_once(", expected")
    {
        message = head.to_owned();
    }
    match err.location() {
        Some(location) => format!("{message} (line {}, column {})", location.line(), location.column()),
        None => message,
    }
}

impl Document {
    /// The checks that need no server: the version, and no name declared twice (per kind, and per
    /// service account's memberships and rule's workspaces).
    pub fn check(&self) -> Result<(), Problems> {
        let mut problems = Vec::new();
        if self.version != VERSION {
            problems.push(Problem::new(
                "version",
                format!(
                    "unsupported version {} (this client reads version {VERSION})",
                    self.version
                ),
            ));
        }
        unique(
            "workspaces",
            self.workspaces.iter().map(|w| w.name.as_str()),
            "name",
            &mut problems,
        );
        unique(
            "service_accounts",
            self.service_accounts.iter().map(|s| s.name.as_str()),
            "name",
            &mut problems,
        );
        unique(
            "issuers",
            self.issuers.iter().map(|i| i.name.as_str()),
            "name",
            &mut problems,
        );
        unique(
            "rules",
            self.rules.iter().map(|r| r.name.as_str()),
            "name",
            &mut problems,
        );
        for (idx, account) in self.service_accounts.iter().enumerate() {
            unique(
                &format!("service_accounts[{idx}].workspaces"),
                account.workspaces.iter().map(|m| m.workspace.as_str()),
                "workspace",
                &mut problems,
            );
        }
        for (idx, rule) in self.rules.iter().enumerate() {
            if let RuleWorkspacesSpec::Named(names) = &rule.workspaces {
                if names.is_empty() {
                    problems.push(Problem::new(
                        format!("rules[{idx}].workspaces"),
                        "must name at least one workspace (or be `all`)",
                    ));
                }
                unique(
                    &format!("rules[{idx}].workspaces"),
                    names.iter().map(String::as_str),
                    "",
                    &mut problems,
                );
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Problems(problems))
        }
    }

    /// The document as YAML.
    pub fn to_yaml(&self) -> Result<String, serde_norway::Error> {
        serde_norway::to_string(self)
    }
}

/// Adds a problem for every name seen before in `names` (a list at `list`, the name in `field`).
fn unique<'a>(list: &str, names: impl Iterator<Item = &'a str>, field: &str, problems: &mut Vec<Problem>) {
    let mut first: BTreeMap<&str, usize> = BTreeMap::new();
    for (idx, name) in names.enumerate() {
        if let Some(earlier) = first.get(name) {
            let path = if field.is_empty() {
                format!("{list}[{idx}]")
            } else {
                format!("{list}[{idx}].{field}")
            };
            problems.push(Problem::new(
                path,
                format!("duplicate name `{name}` (also {list}[{earlier}])"),
            ));
        } else {
            first.insert(name, idx);
        }
    }
}

/// The scopes of a space-separated scope string, as a set (the server may reorder them).
pub(crate) fn scope_set(scope: &str) -> BTreeSet<&str> {
    scope.split_whitespace().collect()
}
