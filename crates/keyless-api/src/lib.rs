//! keyless-api: the wire types (serde) of the Admin API, shared by server and client
//! (`docs/api.md` is the contract they follow).
//!
//! Parts, in reading order:
//! - this file: [`Page`] (a list answer) and [`Audit`] (the six audit fields every object carries);
//! - [`vocabulary`]: the string enums of the API ([`OrganizationRole`], [`WorkspaceRole`],
//!   [`ApiKeyStatus`], [`PrincipalType`]), which keep a value they do not know instead of failing;
//! - [`service_account`]: [`ServiceAccount`], its workspace memberships and request bodies;
//! - [`issuer`]: [`FederationIssuer`], its [`Jwks`] source, the verify dry run and request bodies;
//! - [`rule`]: [`FederationRule`], its `match` and `target` blocks, its workspaces and request bodies;
//! - [`workspace`]: [`Workspace`] and its request bodies;
//! - [`api_key`]: [`ApiKey`], the answer to its creation ([`CreatedApiKey`], the only one holding the
//!   key, as an [`ApiKeySecret`] that `Debug` never prints) and its request bodies;
//! - [`usage`]: the usage summary ([`UsageSummary`], [`UsageRow`]);
//! - [`activity`]: the activity feed ([`ActivityFeed`], [`Activity`]).
//!
//! Answer objects accept fields they do not know (a newer server may add some) and serialize back
//! exactly what the server sent for every field they do know: optional fields are written as `null`
//! just as the server writes them, and times stay RFC 3339 strings as received. Request bodies refuse
//! unknown fields (as the server does) and leave out every field that is `None`; a field that can be
//! cleared (`description`) is an `Option<Option<_>>`: `None` leaves it out, `Some(None)` sends `null`.
//!
//! Must not: do IO, know HTTP, or validate values beyond their JSON shape (the server decides).

pub mod activity;
pub mod api_key;
pub mod issuer;
mod nullable;
pub mod rule;
pub mod service_account;
pub mod usage;
pub mod vocabulary;
pub mod workspace;

use serde::{Deserialize, Serialize};

pub use activity::{Activity, ActivityFeed};
pub use api_key::{ApiKey, ApiKeySecret, CreateApiKey, CreatedApiKey, UpdateApiKey};
pub use issuer::{
    CreateFederationIssuer, FederationIssuer, Jwks, PollStatus, UpdateFederationIssuer, VerifiedKey,
    VerifyFederationIssuer, VerifyProblem, VerifyReport, VerifySkippedKey,
};
pub use rule::{
    AddRuleWorkspace, CreateFederationRule, FederationRule, Match, Replay, ReplayRules, ReplaySummary,
    ReplayedExchange, ReplayedOriginal, ReplayedRule, RuleSimulation, RuleValidation, RuleWarning, RuleWorkspace,
    RuleWorkspaces, SimulateRules, Simulation, SimulationCheck, Target, UpdateFederationRule,
};
pub use service_account::{
    CreateServiceAccount, ServiceAccount, SetWorkspaceMembership, UpdateServiceAccount, WorkspaceMembership,
    WorkspaceMembershipDeleted,
};
pub use usage::{UsageRow, UsageSummary};
pub use vocabulary::{ApiKeyStatus, OrganizationRole, PrincipalType, WorkspaceRole};
pub use workspace::{CreateWorkspace, UpdateWorkspace, Workspace};

/// One page of a list: `{data, next_page}`, newest first.
///
/// `next_page` is an opaque cursor to pass back unchanged as the `page` query parameter; `None`
/// (`null`) on the last page. Membership and rule-workspace lists are never paged (always `null`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The objects of this page.
    pub data: Vec<T>,
    /// The cursor of the next page, or `None` on the last one.
    pub next_page: Option<String>,
}

/// The audit fields every Admin API object carries (flattened into it on the wire).
///
/// Times are RFC 3339 strings in UTC with second precision (`2026-05-01T12:00:00Z`), kept as sent. An
/// actor is a service account ID, or `bootstrap` for the bootstrap admin token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audit {
    /// When the object was created.
    pub created_at: String,
    /// Who created it.
    pub created_by_actor_id: String,
    /// When it last changed.
    pub updated_at: String,
    /// Who changed it last.
    pub updated_by_actor_id: String,
    /// When it was archived; `None` while it is live.
    pub archived_at: Option<String>,
    /// Who archived it.
    pub archived_by_actor_id: Option<String>,
}

impl Audit {
    /// Whether the object is archived.
    pub fn is_archived(&self) -> bool {
        self.archived_at.is_some()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    use super::*;

    /// Decodes `wire` as `T` and asserts it serializes back to exactly `wire`.
    fn round_trip<T: Serialize + DeserializeOwned>(wire: Value) -> T {
        let decoded: T = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(serde_json::to_value(&decoded).unwrap(), wire);
        decoded
    }

    fn audit() -> Value {
        json!({
            "created_at": "2026-05-01T12:00:00Z", "created_by_actor_id": "bootstrap",
            "updated_at": "2026-05-01T12:00:00Z", "updated_by_actor_id": "bootstrap",
            "archived_at": null, "archived_by_actor_id": null,
        })
    }

    fn with_audit(mut object: Value) -> Value {
        if let (Some(object), Value::Object(audit)) = (object.as_object_mut(), audit()) {
            object.extend(audit);
        }
        object
    }

    #[test]
    fn objects_round_trip_exactly() {
        let workspace: Workspace = round_trip(with_audit(
            json!({"id": "wrkspc_1", "type": "workspace", "name": "default", "is_default": true}),
        ));
        assert!(workspace.is_default && !workspace.audit.is_archived());
        round_trip::<Page<ServiceAccount>>(json!({"data": [with_audit(json!({
            "id": "svac_1", "type": "service_account", "name": "ci", "description": null,
            "organization_role": "developer"}))], "next_page": "1700000000.svac_1"}));
        round_trip::<Activity>(json!({
            "id": "actv_7", "type": "platform_federated_authentication", "created_at": "2026-05-01T12:00:00Z",
            "organization_id": "org", "actor_id": null, "resource_id": "fdrl_1", "request_id": "req_1",
            "status": "refused", "event_data": {"code": "audience_mismatch"}, "trace": [1, 2]}));
        for jwks in [
            json!({"type": "discovery", "discovery_base": null, "ca_cert_pem": null}),
            json!({"type": "explicit_url", "url": "https://x.example/jwks", "ca_cert_pem": "PEM"}),
            json!({"type": "inline", "keys": [{"kty": "OKP", "crv": "Ed25519", "x": "abc"}]}),
        ] {
            round_trip::<Jwks>(jwks);
        }
        round_trip::<VerifyReport>(json!({"ok": false, "keys": [{"kid": null, "kty": "EC", "alg": null,
            "thumbprint": "t"}], "skipped_keys": [{"code": "rsa_too_small", "reason": "r"}],
            "problems": [{"code": "no_usable_key", "message": "m"}]}));
    }

    fn api_key_wire() -> Value {
        with_audit(json!({
            "id": "apikey_0123456789abcdef0123456789abcdef", "type": "api_key", "name": "ci-legacy",
            "workspace_id": "wrkspc_1", "oauth_scope": "workspace:developer files:read", "status": "active",
            "partial_key_hint": "keyless_ak_AbCd…x9Yz", "expires_at": "2026-12-01T00:00:00Z",
            "last_used_at": null}))
    }

    #[test]
    fn api_keys_and_usage_round_trip_exactly() {
        let api_key: ApiKey = round_trip(api_key_wire());
        assert_eq!(api_key.status, ApiKeyStatus::Active);
        assert_eq!(api_key.last_used_at, None);
        round_trip::<Page<ApiKey>>(json!({"data": [api_key_wire()], "next_page": null}));
        // A status this version does not know is kept as sent.
        let mut revoked = api_key_wire();
        revoked["status"] = json!("suspended");
        revoked["archived_at"] = json!("2026-05-02T00:00:00Z");
        revoked["archived_by_actor_id"] = json!("svac_1");
        let revoked: ApiKey = round_trip(revoked);
        assert_eq!(revoked.status, ApiKeyStatus::Other("suspended".to_owned()));
        assert!(revoked.audit.is_archived());

        let mut created = api_key_wire();
        created["key"] = json!("keyless_ak_secret");
        let created: CreatedApiKey = round_trip(created);
        assert_eq!(created.key.expose_secret(), "keyless_ak_secret");
        assert_eq!(created.api_key, api_key);
        // The key is required: an answer without it is not a creation's.
        assert!(serde_json::from_value::<CreatedApiKey>(api_key_wire()).is_err());

        // A newer server's extra member is accepted (and, like every object's, not kept).
        let mut newer = api_key_wire();
        newer["rotated_from"] = json!("apikey_0");
        assert_eq!(serde_json::from_value::<ApiKey>(newer).unwrap(), api_key);

        let usage: UsageSummary = round_trip(json!({
            "starting_at": "2026-05-01T00:00:00Z", "ending_at": "2026-05-02T00:00:00Z", "data": [
                {"principal_type": "api_key", "principal_id": "apikey_1", "workspace_id": "wrkspc_1",
                 "requests": 12, "allowed": 10, "refused": 2, "rate_limited": 1, "upstream_errors": 0,
                 "mean_latency_ms": 3.25, "last_request_at": "2026-05-01T13:00:00Z"},
                {"principal_type": null, "principal_id": null, "workspace_id": null, "requests": 1,
                 "allowed": 0, "refused": 1, "rate_limited": 0, "upstream_errors": 0, "mean_latency_ms": 0.5,
                 "last_request_at": null}]}));
        assert_eq!(
            usage.data.first().and_then(|row| row.principal_type.clone()),
            Some(PrincipalType::ApiKey)
        );
    }

    #[test]
    fn the_key_never_reaches_a_debug_print() {
        let mut created = api_key_wire();
        created["key"] = json!("keyless_ak_s3cr3t");
        let created: CreatedApiKey = serde_json::from_value(created).unwrap();
        for printed in [
            format!("{created:?}"),
            format!("{created:#?}"),
            format!("{:?}", created.key),
        ] {
            assert!(!printed.contains("s3cr3t"), "{printed}");
            assert!(printed.contains("ApiKeySecret(…)"), "{printed}");
        }
        assert!(
            format!("{created:?}").contains("keyless_ak_AbCd…x9Yz"),
            "the hint is not secret"
        );
    }

    #[test]
    fn request_bodies_leave_out_what_is_unset_and_send_null_to_clear() {
        let check = |body: &dyn erased::Body, expect: Value| assert_eq!(body.json(), expect);
        check(&UpdateServiceAccount::default(), json!({}));
        check(
            &UpdateServiceAccount {
                description: Some(None),
                ..Default::default()
            },
            json!({"description": null}),
        );
        check(
            &UpdateFederationRule {
                description: Some(Some("d".to_owned())),
                token_lifetime_seconds: Some(600),
                ..Default::default()
            },
            json!({"description": "d", "token_lifetime_seconds": 600}),
        );
        check(
            &CreateServiceAccount {
                name: "ci".to_owned(),
                organization_role: Some(OrganizationRole::Admin),
                ..Default::default()
            },
            json!({"name": "ci", "organization_role": "admin"}),
        );
        check(&UpdateApiKey::default(), json!({}));
        check(
            &UpdateApiKey {
                status: Some(ApiKeyStatus::Inactive),
                ..Default::default()
            },
            json!({"status": "inactive"}),
        );
        check(
            &CreateApiKey {
                name: "ci-legacy".to_owned(),
                ..Default::default()
            },
            json!({"name": "ci-legacy"}),
        );
        check(
            &CreateApiKey {
                name: "ci".to_owned(),
                workspace_id: Some("default".to_owned()),
                oauth_scope: Some("workspace:developer files:read".to_owned()),
                expires_at: Some("2026-12-01T00:00:00Z".to_owned()),
            },
            json!({"name": "ci", "workspace_id": "default", "oauth_scope": "workspace:developer files:read",
                   "expires_at": "2026-12-01T00:00:00Z"}),
        );
        assert!(serde_json::from_value::<CreateApiKey>(json!({"name": "x", "scope": "s"})).is_err());
        assert!(serde_json::from_value::<UpdateApiKey>(json!({"key": "keyless_ak_x"})).is_err());
        // Reading keeps the difference between absent and null.
        let cleared: UpdateServiceAccount = serde_json::from_value(json!({"description": null})).unwrap();
        assert_eq!(cleared.description, Some(None));
        let absent: UpdateServiceAccount = serde_json::from_value(json!({})).unwrap();
        assert_eq!(absent.description, None);
        // Request bodies refuse a typo, as the server does.
        assert!(serde_json::from_value::<CreateWorkspace>(json!({"nmae": "x"})).is_err());
    }

    mod erased {
        pub(super) trait Body {
            fn json(&self) -> serde_json::Value;
        }

        impl<T: serde::Serialize> Body for T {
            fn json(&self) -> serde_json::Value {
                serde_json::to_value(self).unwrap()
            }
        }
    }
}
