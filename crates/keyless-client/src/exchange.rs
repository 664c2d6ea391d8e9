//! The federation exchange: the workload's identity token in, a keyless access token out.
//!
//! [`FederationExchange`] is the [`TokenSource`] behind a federated [`TokenCache`](crate::cache::TokenCache):
//! each fetch obtains a fresh identity token from its [`IdentitySource`] (files are re-read every time)
//! and `POST`s the reference API's JSON `jwt-bearer` exchange to `<base_url>/v1/oauth/token`. A 401 from
//! the token endpoint is retried once with a newly obtained identity token.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::api::Api;
use crate::cache::{AccessToken, Fetch, TokenSource};
use crate::clock::Clock;
use crate::source::{IdentitySource, SourceContext};
use crate::{ClientError, Environment};

/// The `grant_type` of the exchange (RFC 7523).
pub const GRANT_TYPE_JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// What the exchange asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Federation {
    /// `fdrl_…`: the rule to exchange through (the server never searches).
    pub federation_rule_id: String,
    /// The organization's ID.
    pub organization_id: String,
    /// `svac_…`; without it the rule's target is used.
    pub service_account_id: Option<String>,
    /// `wrkspc_…` or `default`; needed when the rule is enabled in several workspaces.
    pub workspace_id: Option<String>,
    /// The scope to request; without it, everything the rule grants.
    pub scope: Option<String>,
    /// Where the identity token comes from.
    pub identity: IdentitySource,
}

/// Exchanges identity tokens at one server.
pub struct FederationExchange {
    api: Api,
    federation: Federation,
    sources: SourceContext,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for FederationExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FederationExchange")
            .field("base_url", &self.api.base_url().as_str())
            .field("federation", &self.federation)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: i64,
    #[serde(default)]
    scope: Option<String>,
}

impl FederationExchange {
    /// An exchange at `base_url` (https, or http on loopback). Identity sources read `env`; their
    /// default audience is the base URL (the audience a keyless rule without `match.audience` expects
    /// when the server's `public_url` is that URL).
    pub fn new(
        base_url: &str,
        federation: Federation,
        env: Environment,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ClientError> {
        let api = Api::anonymous(base_url)?;
        let sources = SourceContext {
            http: api.http().clone(),
            env,
            default_audience: Some(base_url.trim_end_matches('/').to_owned()),
        };
        Ok(Self {
            api,
            federation,
            sources,
            clock,
        })
    }

    /// What is exchanged.
    pub fn federation(&self) -> &Federation {
        &self.federation
    }

    async fn exchange_once(&self) -> Result<AccessToken, ClientError> {
        let identity = self.federation.identity.fetch(&self.sources).await?;
        let federation = &self.federation;
        let mut body = Map::new();
        body.insert("grant_type".to_owned(), GRANT_TYPE_JWT_BEARER.into());
        body.insert("assertion".to_owned(), identity.expose_secret().into());
        body.insert(
            "federation_rule_id".to_owned(),
            federation.federation_rule_id.clone().into(),
        );
        body.insert("organization_id".to_owned(), federation.organization_id.clone().into());
        for (key, value) in [
            ("service_account_id", &federation.service_account_id),
            ("workspace_id", &federation.workspace_id),
            ("scope", &federation.scope),
        ] {
            if let Some(value) = value {
                body.insert(key.to_owned(), value.clone().into());
            }
        }
        let issued_at = self.clock.now_unix();
        let answer: TokenAnswer = self.api.post(&["v1", "oauth", "token"], &Value::Object(body)).await?;
        if answer.access_token.is_empty() || answer.expires_in <= 0 {
            return Err(ClientError::Decode(format!(
                "{}v1/oauth/token answered without an access token or a positive expires_in",
                self.api.base_url()
            )));
        }
        Ok(AccessToken {
            token: answer.access_token.into(),
            expires_at: issued_at.saturating_add(answer.expires_in),
            issued_at,
            scope: answer.scope,
        })
    }
}

impl TokenSource for FederationExchange {
    fn fetch(&self, _force: bool) -> Fetch<'_> {
        Box::pin(async move {
            match self.exchange_once().await {
                Err(error) if error.api().is_some_and(|api| api.status == 401) => {
                    tracing::debug!(%error, "the token endpoint answered 401; retrying once with a new identity token");
                    self.exchange_once().await
                }
                other => other,
            }
        })
    }

    fn describe(&self) -> String {
        format!(
            "federation rule {} at {} with the identity token from {}",
            self.federation.federation_rule_id,
            self.api.base_url(),
            self.federation.identity.describe()
        )
    }
}
