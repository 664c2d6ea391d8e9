//! Properties that must hold for any input.

use keyless_core::claims::{self, ClaimExpectations};
use keyless_core::condition::Condition;
use keyless_core::lifetime::TokenLifetime;
use keyless_core::rule::SubjectPattern;
use keyless_core::scope::{ScopeSet, effective_scope};
use keyless_core::service_account::OrganizationRole;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::fixtures::*;

fn scope_set() -> impl Strategy<Value = ScopeSet> {
    let token = prop_oneof![
        Just("workspace:developer".to_owned()),
        Just("workspace:inference".to_owned()),
        Just("org:admin".to_owned()),
        Just("org:billing".to_owned()),
        "[!#-\\[\\]-~]{1,12}",
    ];
    prop::collection::vec(token, 0..6).prop_map(|tokens| ScopeSet::parse(&tokens.join(" ")).unwrap())
}

fn role() -> impl Strategy<Value = OrganizationRole> {
    prop_oneof![Just(OrganizationRole::Developer), Just(OrganizationRole::Admin)]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        Just(Value::from("refs/heads/main")),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-z.:/]{0,8}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn claim_map() -> impl Strategy<Value = Map<String, Value>> {
    let names = prop_oneof![
        Just("sub".to_owned()),
        Just("ref".to_owned()),
        Just("aud".to_owned()),
        Just("scp".to_owned()),
        Just("kubernetes.io".to_owned()),
        Just("n".to_owned()),
        "[a-z_]{1,8}",
    ];
    prop::collection::btree_map(names, json_value(), 0..10).prop_map(|map| map.into_iter().collect())
}

proptest! {
    #[test]
    fn a_pinned_owner_never_matches_another_tenant(owner in "[A-Za-z0-9-]{0,24}", rest in ".{0,40}", separator in "[/:@*]?") {
        let pattern = SubjectPattern::parse("repo:acme/*").unwrap();
        let subject = format!("repo:{owner}{separator}{rest}");
        prop_assert_eq!(pattern.matches(&subject), subject.starts_with("repo:acme/"));
        if owner != "acme" {
            let other_tenant = format!("repo:{owner}/{rest}");
            prop_assert!(!pattern.matches(&other_tenant));
        }
    }

    #[test]
    fn a_pinned_owner_never_matches_arbitrary_subjects(subject in ".{0,64}") {
        let pattern = SubjectPattern::parse("repo:acme/*").unwrap();
        prop_assert_eq!(pattern.matches(&subject), subject.starts_with("repo:acme/"));
    }

    #[test]
    fn another_tenant_is_rejected_end_to_end(owner in "[a-z0-9-]{1,20}", repo in "[a-z0-9-]{1,20}") {
        prop_assume!(owner != "acme");
        let issuer = issuer(GITHUB);
        let rule = rule(&issuer, json!({ "match": { "subject_prefix": "repo:acme/*" } })).unwrap();
        let token = with(github_actions(&format!("repo:{owner}/{repo}:ref:refs/heads/main")), json!({ "repository_owner": owner }));
        let rejection = Scenario::new(issuer, rule, token).decide().unwrap_err();
        prop_assert_eq!(rejection.code().as_str(), "subject_mismatch");
    }

    #[test]
    fn scope_intersection_is_a_subset_of_each_input(a in scope_set(), b in scope_set()) {
        let both = a.intersection(&b);
        prop_assert!(both.iter().all(|scope| a.contains(scope.as_str()) && b.contains(scope.as_str())));
        prop_assert!(both.len() <= a.len().min(b.len()));
    }

    #[test]
    fn effective_scope_is_within_request_rule_and_role(requested in proptest::option::of(scope_set()), granted in scope_set(), role in role()) {
        if let Ok(effective) = effective_scope(requested.as_ref(), &granted, role) {
            prop_assert!(!effective.is_empty());
            for scope in effective.iter() {
                prop_assert!(granted.contains(scope.as_str()));
                prop_assert!(scope.allowed_for(role));
                if let Some(requested) = requested.as_ref().filter(|r| !r.is_empty()) {
                    prop_assert!(requested.contains(scope.as_str()));
                }
            }
        }
    }

    #[test]
    fn lifetime_stays_within_the_floor_and_the_rule(seconds in 60..=86_400_i64, exp in any::<i64>(), now in any::<i64>()) {
        let lifetime = TokenLifetime::new(seconds).unwrap();
        let granted = lifetime.granted(exp, now);
        prop_assert!((60..=seconds).contains(&granted), "{}", granted);
    }

    #[test]
    fn claim_validation_never_panics(claims in claim_map(), now in any::<i64>(), leeway in 0..120_i64) {
        let expectations = ClaimExpectations { issuer_url: GITHUB, audience: AUDIENCE, max_lifetime_seconds: 3600, leeway_seconds: leeway };
        let _ = claims::validate(&claims, &expectations, now);
    }

    #[test]
    fn condition_evaluation_never_panics(claims in claim_map()) {
        for condition in conditions() {
            let _ = condition.evaluate(&claims);
        }
    }
}

fn conditions() -> &'static [Condition] {
    static CONDITIONS: std::sync::LazyLock<Vec<Condition>> = std::sync::LazyLock::new(|| {
        [
            r#"claims.sub.startsWith("repo:acme-corp/") && claims.ref in ["refs/heads/main", "refs/heads/release"]"#,
            r#"claims["kubernetes.io"].namespace == "ci""#,
            "claims.n + 1 > 0 && claims.n / 2 < 10 && claims.n % 3 == 0",
            "claims.exists(k, k.startsWith('s')) && size(claims) > 2",
            "claims.scp.all(s, s.matches('^[a-z]+$'))",
            "claims.aud.map(a, a + '/').size() > 0",
            "int(claims.n) > 1 || double(claims.n) < 2.0 || string(claims.n) == '3'",
            "claims.sub[0] == 'x' || claims.sub.size() > 3 || claims.aud[1] == 'y'",
            "has(claims.sub) ? claims.sub : claims.ref",
            "claims.filter(k, claims[k] == null).size() == 0",
        ]
        .iter()
        .map(|source| Condition::compile(source).unwrap())
        .collect()
    });
    &CONDITIONS
}
