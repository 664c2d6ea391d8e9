//! Federation issuers as the decision sees them, and the table of shared issuers.
//!
//! Parts: [`Issuer`] (what claim validation and the decision need of a stored issuer) and
//! [`SharedIssuer`], the one place that knows which public issuers mint tokens for many unrelated tenants
//! and how a rule pins one tenant of each.
//!
//! | shared issuer | `issuer_url` | subject pattern that pins the tenant | tenant claims |
//! |---|---|---|---|
//! | GitHub Actions | `https://token.actions.githubusercontent.com` | `repo:OWNER/…` (also `repo:OWNER@ID/…`) | `repository_owner`, `repository_owner_id`, `repository`, `repository_id` |
//! | GitLab.com | `https://gitlab.com` | `project_path:GROUP/…` | `namespace_id`, `namespace_path`, `project_id`, `project_path` |
//! | Buildkite | `https://agent.buildkite.com` | `organization:ORG:…` | `organization_slug` |
//! | Terraform Cloud | `https://app.terraform.io` | `organization:ORG:…` | `terraform_organization_id`, `terraform_organization_name` |
//! | Google | `https://accounts.google.com`, `accounts.google.com` | an exact subject (no trailing `*`) | `email`, `sub`, `azp` |
//!
//! The tenant part (`OWNER`, `GROUP`, `ORG`) must be non-empty, contain no `*`, and be followed by its
//! separator in the fixed part of the pattern, so `repo:acme*` does not pin (it matches `repo:acme-evil/…`).
//! A tenant claim pins when its value is non-empty. A CEL condition never counts as a pin: it cannot be
//! checked statically. Recognizing an `issuer_url` ignores ASCII case and a trailing `/`; a looser spelling
//! cannot loosen anything, since `iss` must still equal the configured `issuer_url` byte for byte.
//!
//! This module does not validate issuer configuration (URLs, JWKS sources): that is the server's job.

use std::collections::BTreeMap;
use std::fmt;

use crate::id::{IssuerId, OrganizationId};
use crate::rule::SubjectPattern;

/// The default `max_jwt_lifetime_seconds` of an issuer.
pub const DEFAULT_MAX_JWT_LIFETIME_SECONDS: i64 = 3600;

/// A stored federation issuer, reduced to what the decision needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    /// Its ID.
    pub id: IssuerId,
    /// The organization it belongs to.
    pub organization_id: OrganizationId,
    /// The URL that `iss` must equal byte for byte.
    pub issuer_url: String,
    /// Whether a token carrying `jti` is single-use.
    pub check_jti: bool,
    /// The largest `exp − iat` accepted.
    pub max_jwt_lifetime_seconds: i64,
    /// Whether it is archived.
    pub archived: bool,
}

impl Issuer {
    /// The shared issuer this is, if any.
    pub fn shared(&self) -> Option<SharedIssuer> {
        SharedIssuer::from_issuer_url(&self.issuer_url)
    }
}

/// A public issuer whose tokens many unrelated tenants can obtain: rules on it must pin one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SharedIssuer {
    /// GitHub Actions.
    GitHubActions,
    /// GitLab.com (self-managed instances are single-tenant).
    GitLabCom,
    /// Buildkite.
    Buildkite,
    /// HCP Terraform (Terraform Cloud).
    TerraformCloud,
    /// Google (metadata-server and OAuth identity tokens).
    Google,
}

/// How a subject pattern pins the tenant of a shared issuer.
enum SubjectTenant {
    /// `prefix`, a non-empty tenant without `*`, then `separator`, all in the fixed part.
    Segment { prefix: &'static str, separator: char },
    /// Only an exact subject pins.
    Exact,
}

struct Tenancy {
    name: &'static str,
    issuer_urls: &'static [&'static str],
    subject: SubjectTenant,
    subject_hint: &'static str,
    tenant_claims: &'static [&'static str],
}

impl SharedIssuer {
    /// Every shared issuer.
    pub const ALL: [SharedIssuer; 5] = [
        Self::GitHubActions,
        Self::GitLabCom,
        Self::Buildkite,
        Self::TerraformCloud,
        Self::Google,
    ];

    fn tenancy(self) -> &'static Tenancy {
        match self {
            Self::GitHubActions => &Tenancy {
                name: "GitHub Actions",
                issuer_urls: &["https://token.actions.githubusercontent.com"],
                subject: SubjectTenant::Segment {
                    prefix: "repo:",
                    separator: '/',
                },
                subject_hint: "subject_prefix \"repo:OWNER/…\"",
                tenant_claims: &["repository_owner", "repository_owner_id", "repository", "repository_id"],
            },
            Self::GitLabCom => &Tenancy {
                name: "GitLab.com",
                issuer_urls: &["https://gitlab.com"],
                subject: SubjectTenant::Segment {
                    prefix: "project_path:",
                    separator: '/',
                },
                subject_hint: "subject_prefix \"project_path:GROUP/…\"",
                tenant_claims: &["namespace_id", "namespace_path", "project_id", "project_path"],
            },
            Self::Buildkite => &Tenancy {
                name: "Buildkite",
                issuer_urls: &["https://agent.buildkite.com"],
                subject: SubjectTenant::Segment {
                    prefix: "organization:",
                    separator: ':',
                },
                subject_hint: "subject_prefix \"organization:ORG:…\"",
                tenant_claims: &["organization_slug"],
            },
            Self::TerraformCloud => &Tenancy {
                name: "Terraform Cloud",
                issuer_urls: &["https://app.terraform.io"],
                subject: SubjectTenant::Segment {
                    prefix: "organization:",
                    separator: ':',
                },
                subject_hint: "subject_prefix \"organization:ORG:…\"",
                tenant_claims: &["terraform_organization_id", "terraform_organization_name"],
            },
            Self::Google => &Tenancy {
                name: "Google",
                issuer_urls: &["https://accounts.google.com", "accounts.google.com"],
                subject: SubjectTenant::Exact,
                subject_hint: "an exact subject_prefix (no trailing \"*\")",
                tenant_claims: &["email", "sub", "azp"],
            },
        }
    }

    /// The shared issuer `issuer_url` names, ignoring ASCII case and a trailing `/`.
    pub fn from_issuer_url(issuer_url: &str) -> Option<Self> {
        let url = issuer_url.strip_suffix('/').unwrap_or(issuer_url);
        Self::ALL
            .into_iter()
            .find(|shared| shared.issuer_urls().iter().any(|known| known.eq_ignore_ascii_case(url)))
    }

    /// Its human name, e.g. `GitHub Actions`.
    pub fn name(self) -> &'static str {
        self.tenancy().name
    }

    /// The issuer URLs it mints tokens under.
    pub fn issuer_urls(self) -> &'static [&'static str] {
        self.tenancy().issuer_urls
    }

    /// The claims whose value identifies a tenant.
    pub fn tenant_claims(self) -> &'static [&'static str] {
        self.tenancy().tenant_claims
    }

    /// Whether `pattern` only matches subjects of one tenant.
    pub fn subject_pins_tenant(self, pattern: &SubjectPattern) -> bool {
        match (&self.tenancy().subject, pattern) {
            (_, SubjectPattern::Any) => false,
            (SubjectTenant::Exact, SubjectPattern::Exact(subject)) => !subject.is_empty(),
            (SubjectTenant::Exact, SubjectPattern::Prefix(_)) => false,
            (SubjectTenant::Segment { prefix, separator }, pattern) => pattern
                .fixed_part()
                .strip_prefix(prefix)
                .and_then(|rest| rest.split_once(*separator))
                .is_some_and(|(tenant, _)| !tenant.is_empty() && !tenant.contains('*')),
        }
    }

    /// Whether `claims` (a rule's `match.claims`) pins a tenant: a tenant claim with a non-empty value.
    pub fn claims_pin_tenant(self, claims: &BTreeMap<String, String>) -> bool {
        self.tenant_claims()
            .iter()
            .any(|claim| claims.get(*claim).is_some_and(|value| !value.is_empty()))
    }

    /// How to pin the tenant, for error messages.
    pub fn pin_hint(self) -> String {
        let tenancy = self.tenancy();
        let claims = match tenancy.tenant_claims.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        format!("{} or a claims entry on {claims}", tenancy.subject_hint)
    }
}

impl fmt::Display for SharedIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn recognizes_shared_issuer_urls() {
        let check = |url: &str, expect: Option<SharedIssuer>| {
            assert_eq!(SharedIssuer::from_issuer_url(url), expect, "{url}");
        };
        check(
            "https://token.actions.githubusercontent.com",
            Some(SharedIssuer::GitHubActions),
        );
        check(
            "https://token.actions.githubusercontent.com/",
            Some(SharedIssuer::GitHubActions),
        );
        check(
            "HTTPS://Token.Actions.GitHubUserContent.com",
            Some(SharedIssuer::GitHubActions),
        );
        check("https://gitlab.com", Some(SharedIssuer::GitLabCom));
        check("https://agent.buildkite.com", Some(SharedIssuer::Buildkite));
        check("https://app.terraform.io", Some(SharedIssuer::TerraformCloud));
        check("https://accounts.google.com", Some(SharedIssuer::Google));
        check("accounts.google.com", Some(SharedIssuer::Google));
        check("https://token.actions.githubusercontent.com/acme-enterprise", None);
        check("https://gitlab.acme.internal", None);
        check("https://kubernetes.default.svc.cluster.local", None);
    }

    fn check_subject(shared: SharedIssuer, pattern: &str, pins: bool) {
        let pattern = SubjectPattern::parse(pattern).unwrap();
        assert_eq!(shared.subject_pins_tenant(&pattern), pins, "{shared} {pattern}");
    }

    #[test]
    fn subject_pins() {
        use SharedIssuer::*;
        check_subject(GitHubActions, "repo:acme/*", true);
        check_subject(GitHubActions, "repo:acme/api:ref:refs/heads/main", true);
        check_subject(GitHubActions, "repo:acme@123/*", true);
        check_subject(GitHubActions, "repo:acme@123/api@456:environment:prod", true);
        check_subject(GitHubActions, "repo:acme*", false);
        check_subject(GitHubActions, "repo:ac*me/*", false);
        check_subject(GitHubActions, "repo:/*", false);
        check_subject(GitHubActions, "repo:*", false);
        check_subject(GitHubActions, "*", false);
        check_subject(GitHubActions, "acme/*", false);
        check_subject(GitLabCom, "project_path:group/*", true);
        check_subject(GitLabCom, "project_path:group*", false);
        check_subject(Buildkite, "organization:acme:*", true);
        check_subject(Buildkite, "organization:acme*", false);
        check_subject(
            TerraformCloud,
            "organization:acme:project:p:workspace:w:run_phase:apply",
            true,
        );
        check_subject(Google, "117243880214591830123", true);
        check_subject(Google, "1172438802*", false);
    }

    #[test]
    fn claim_pins() {
        let claims = |entries: &[(&str, &str)]| -> BTreeMap<String, String> {
            entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let github = SharedIssuer::GitHubActions;
        assert!(github.claims_pin_tenant(&claims(&[("repository_owner", "acme")])));
        assert!(github.claims_pin_tenant(&claims(&[("repository_id", "123")])));
        assert!(!github.claims_pin_tenant(&claims(&[("repository_owner", "")])));
        assert!(!github.claims_pin_tenant(&claims(&[("ref", "refs/heads/main")])));
        assert!(SharedIssuer::Google.claims_pin_tenant(&claims(&[("email", "a@b.iam.gserviceaccount.com")])));
    }
}
