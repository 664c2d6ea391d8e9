//! Rule lints: known mistakes in a valid federation rule, each with a stable code and a fix.
//!
//! Parts: [`Lint`] (code, field, message), [`lint`] (every warning for a rule on an issuer),
//! [`RuleError::code`] (the stable codes of the refusals, which are lints too severe to save).
//!
//! Errors refuse the write (see [`crate::rule`]): `no_identity_constraint`, `tenant_not_pinned`,
//! `constant_condition` (and `invalid_field`, `invalid_condition` for malformed input). Warnings are
//! returned with the saved rule:
//!
//! | code | when |
//! |---|---|
//! | `mutable_claim` | a `claims` entry pins a name (`repository`, `project_path`, …) where the provider also issues an immutable ID (`repository_id`, `project_id`, …) and the rule does not pin the ID: a renamed or re-created repository or group inherits the rule |
//! | `admits_pull_requests` | a GitHub Actions rule pins no branch, tag or environment (by subject, `ref`/`environment`/`event_name` claims, or a condition), so workflows on pull requests match too; a GitLab.com rule pins neither a ref nor `ref_protected` |
//! | `default_audience` | `match.audience` is the provider's default audience (`sts.amazonaws.com`, `api://AzureADTokenExchange`, `https://github.com/…`, the issuer URL itself): tokens minted for other relying parties carry it too |
//! | `lifetime_exceeds_issuer` | `token_lifetime_seconds` is above an hour and more than four times the issuer's `max_jwt_lifetime_seconds`: the access token outlives the proof it was exchanged for by far |
//!
//! `docs/rules.md` documents each code and its fix. Lints read the rule and its issuer only: no IO.

use crate::issuer::{Issuer, SharedIssuer};
use crate::rule::{Match, RuleError, SubjectPattern};

/// One warning about a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lint {
    /// The stable code.
    pub code: &'static str,
    /// The field it is about (`match.claims.repository`, `token_lifetime_seconds`, …).
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Name-based claims and the immutable ID claims of the same thing, per shared issuer.
const MUTABLE_CLAIMS: [(SharedIssuer, &str, &str); 8] = [
    (SharedIssuer::GitHubActions, "repository", "repository_id"),
    (SharedIssuer::GitHubActions, "repository_owner", "repository_owner_id"),
    (SharedIssuer::GitHubActions, "actor", "actor_id"),
    (SharedIssuer::GitLabCom, "project_path", "project_id"),
    (SharedIssuer::GitLabCom, "namespace_path", "namespace_id"),
    (SharedIssuer::GitLabCom, "user_login", "user_id"),
    (
        SharedIssuer::TerraformCloud,
        "terraform_organization_name",
        "terraform_organization_id",
    ),
    (
        SharedIssuer::TerraformCloud,
        "terraform_workspace_name",
        "terraform_workspace_id",
    ),
];

/// Audiences providers put into tokens by default (no audience requested).
const DEFAULT_AUDIENCES: [&str; 4] = [
    "sts.amazonaws.com",
    "api://AzureADTokenExchange",
    "https://kubernetes.default.svc",
    "https://kubernetes.default.svc.cluster.local",
];

/// How much longer than the issuer's tokens an access token may live before it is worth a warning.
const LIFETIME_FACTOR: i64 = 4;
/// Lifetimes up to this are never worth a warning.
const LIFETIME_FLOOR: i64 = 3600;

/// Every warning for a rule with `r#match` and `token_lifetime_seconds` on `issuer`, in a stable order.
pub fn lint(r#match: &Match, token_lifetime_seconds: i64, issuer: &Issuer) -> Vec<Lint> {
    let shared = issuer.shared();
    let mut lints = Vec::new();
    for (provider, name, id) in MUTABLE_CLAIMS {
        if shared == Some(provider) && r#match.claims.contains_key(name) && !r#match.claims.contains_key(id) {
            lints.push(Lint {
                code: "mutable_claim",
                field: format!("match.claims.{name}"),
                message: format!(
                    "`{name}` is a name, which can be renamed or taken over after a deletion; also pin the \
                     immutable `{id}` (or pin it instead)"
                ),
            });
        }
    }
    if let Some(lint) = admits_pull_requests(r#match, shared) {
        lints.push(lint);
    }
    if let Some(audience) = r#match.audience.as_deref() {
        let default = DEFAULT_AUDIENCES.contains(&audience)
            || audience.starts_with("https://github.com/")
            || audience == issuer.issuer_url;
        if default {
            lints.push(Lint {
                code: "default_audience",
                field: "match.audience".to_owned(),
                message: format!(
                    "`{audience}` is the audience the identity provider uses by default, so tokens minted for \
                     other relying parties carry it too; request a keyless-specific audience in the workload \
                     (e.g. this server's URL) and set it here"
                ),
            });
        }
    }
    let ceiling = LIFETIME_FACTOR.saturating_mul(issuer.max_jwt_lifetime_seconds);
    if token_lifetime_seconds > LIFETIME_FLOOR && token_lifetime_seconds > ceiling {
        lints.push(Lint {
            code: "lifetime_exceeds_issuer",
            field: "token_lifetime_seconds".to_owned(),
            message: format!(
                "access tokens would live {token_lifetime_seconds} s, more than {LIFETIME_FACTOR} times the \
                 {} s the issuer's tokens may live: lower token_lifetime_seconds (workloads exchange again)",
                issuer.max_jwt_lifetime_seconds
            ),
        });
    }
    lints
}

/// `admits_pull_requests`, for the two CI providers whose subjects name the ref.
fn admits_pull_requests(r#match: &Match, shared: Option<SharedIssuer>) -> Option<Lint> {
    if r#match.condition.is_some() {
        // A condition may well exclude them; it cannot be read statically.
        return None;
    }
    let fixed = r#match.subject_prefix.as_ref().map_or("", subject_fixed);
    let claims = |names: &[&str]| names.iter().any(|name| r#match.claims.contains_key(*name));
    match shared? {
        SharedIssuer::GitHubActions => {
            let pinned = [":ref:", ":environment:", ":pull_request"]
                .iter()
                .any(|part| fixed.contains(part))
                || claims(&["ref", "environment", "event_name", "job_workflow_ref", "workflow_ref"]);
            (!pinned).then(|| Lint {
                code: "admits_pull_requests",
                field: "match.subject_prefix".to_owned(),
                message: "the rule pins no branch, tag or environment, so subjects such as \
                          `repo:OWNER/REPO:pull_request` (workflows on pull requests, forks' included when \
                          pull_request_target runs) match too; pin `…:ref:refs/heads/main` or \
                          `…:environment:prod` in subject_prefix, or a `ref` claim"
                    .to_owned(),
            })
        }
        SharedIssuer::GitLabCom => {
            let pinned = fixed.contains(":ref:") || claims(&["ref", "ref_protected", "environment"]);
            (!pinned).then(|| Lint {
                code: "admits_pull_requests",
                field: "match.subject_prefix".to_owned(),
                message: "the rule pins no ref, so pipelines of any branch (merge requests' included) match; \
                          pin `…:ref_type:branch:ref:main` in subject_prefix, or `ref_protected: \"true\"`"
                    .to_owned(),
            })
        }
        _ => None,
    }
}

fn subject_fixed(pattern: &SubjectPattern) -> &str {
    pattern.fixed_part()
}

impl RuleError {
    /// The stable code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidField { .. } => "invalid_field",
            Self::ConditionRefused(crate::condition::ConditionError::Constant) => "constant_condition",
            Self::ConditionRefused(_) => "invalid_condition",
            Self::NoIdentityConstraint => "no_identity_constraint",
            Self::TenantNotPinned { .. } => "tenant_not_pinned",
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use std::collections::BTreeMap;

    use super::*;
    use crate::id::{IssuerId, OrganizationId};

    fn issuer(url: &str, max_jwt_lifetime_seconds: i64) -> Issuer {
        Issuer {
            id: IssuerId::parse("fdis_1").unwrap(),
            organization_id: OrganizationId::parse("00000000-0000-0000-0000-000000000001").unwrap(),
            issuer_url: url.to_owned(),
            check_jti: false,
            max_jwt_lifetime_seconds,
            archived: false,
        }
    }

    fn rule(subject: Option<&str>, claims: &[(&str, &str)], audience: Option<&str>) -> Match {
        Match {
            subject_prefix: subject.map(|text| SubjectPattern::parse(text).unwrap()),
            audience: audience.map(str::to_owned),
            claims: claims
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            condition: None,
        }
    }

    fn codes(r#match: &Match, lifetime: i64, issuer: &Issuer) -> Vec<(&'static str, String)> {
        lint(r#match, lifetime, issuer)
            .into_iter()
            .map(|lint| (lint.code, lint.field))
            .collect()
    }

    const GITHUB: &str = "https://token.actions.githubusercontent.com";

    #[test]
    fn github_actions_rules() {
        let github = issuer(GITHUB, 3600);
        // The reference's example: a branch pinned in the subject, the owner by ID. Clean.
        let good = rule(
            Some("repo:acme/app:ref:refs/heads/main"),
            &[("repository_owner_id", "1234")],
            Some("https://keyless.example"),
        );
        assert_eq!(codes(&good, 900, &github), vec![]);
        // Owner by name, any ref.
        let loose = rule(Some("repo:acme/*"), &[("repository_owner", "acme")], None);
        assert_eq!(
            codes(&loose, 900, &github),
            vec![
                ("mutable_claim", "match.claims.repository_owner".to_owned()),
                ("admits_pull_requests", "match.subject_prefix".to_owned()),
            ]
        );
        // Name and ID both pinned: no mutable_claim; an environment pins the ref.
        let both = rule(
            Some("repo:acme/app:environment:prod"),
            &[("repository", "acme/app"), ("repository_id", "99")],
            None,
        );
        assert_eq!(codes(&both, 900, &github), vec![]);
        // A `ref` claim pins too.
        let by_claim = rule(Some("repo:acme/app:*"), &[("ref", "refs/heads/main")], None);
        assert_eq!(codes(&by_claim, 900, &github), vec![]);
        // GitHub's default audience is the owner's URL.
        let default_aud = rule(
            Some("repo:acme/app:ref:refs/heads/main"),
            &[],
            Some("https://github.com/acme"),
        );
        assert_eq!(
            codes(&default_aud, 900, &github),
            vec![("default_audience", "match.audience".to_owned())]
        );
    }

    #[test]
    fn gitlab_kubernetes_and_aws_rules() {
        let gitlab = issuer("https://gitlab.com", 3600);
        let loose = rule(Some("project_path:acme/app:*"), &[("project_path", "acme/app")], None);
        assert_eq!(
            codes(&loose, 900, &gitlab),
            vec![
                ("mutable_claim", "match.claims.project_path".to_owned()),
                ("admits_pull_requests", "match.subject_prefix".to_owned()),
            ]
        );
        let protected = rule(
            Some("project_path:acme/app:*"),
            &[("project_id", "42"), ("ref_protected", "true")],
            Some("https://gitlab.com"),
        );
        assert_eq!(
            codes(&protected, 900, &gitlab),
            vec![("default_audience", "match.audience".to_owned())],
            "GitLab's default aud is the instance URL, the issuer itself"
        );
        // A private Kubernetes issuer: not shared, so only the audience and the lifetime are looked at.
        let cluster = issuer("https://oidc.eks.eu-west-1.amazonaws.com/id/ABC", 3600);
        let irsa = rule(
            Some("system:serviceaccount:payments:api"),
            &[],
            Some("sts.amazonaws.com"),
        );
        assert_eq!(
            codes(&irsa, 3600, &cluster),
            vec![("default_audience", "match.audience".to_owned())]
        );
    }

    #[test]
    fn lifetimes_far_above_the_issuers() {
        let short_lived = issuer("https://idp.example", 300);
        let r#match = rule(Some("svc:payments"), &[], None);
        assert_eq!(
            codes(&r#match, 3600, &short_lived),
            vec![],
            "an hour is never worth a warning"
        );
        assert_eq!(
            codes(&r#match, 7200, &short_lived),
            vec![("lifetime_exceeds_issuer", "token_lifetime_seconds".to_owned())]
        );
        let long_lived = issuer("https://idp.example", 86_400);
        assert_eq!(codes(&r#match, 86_400, &long_lived), vec![]);
    }

    #[test]
    fn refusal_codes() {
        assert_eq!(RuleError::NoIdentityConstraint.code(), "no_identity_constraint");
        assert_eq!(
            RuleError::TenantNotPinned {
                issuer: SharedIssuer::GitHubActions
            }
            .code(),
            "tenant_not_pinned"
        );
        assert_eq!(
            RuleError::ConditionRefused(crate::condition::ConditionError::Constant).code(),
            "constant_condition"
        );
    }
}
