//! [`Api`]: one keyless server, reached with one [`Credential`].
//!
//! Every call goes through [`Api::send`]: the path is built from segments (each percent-encoded, so an
//! ID can never climb out of its collection), the credential is attached, the answer is read with a
//! size cap and decoded, and an error answer becomes [`ClientError::Api`] with the server's request ID.
//! With an exchanged (refreshable) credential, a 401 drops the cached token and the call is retried
//! once with a fresh one.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::ClientError;
use crate::cache::TokenCache;
use crate::transport::{api_error, checked_url, read_capped, transport};

/// Largest answer body read from the API.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(60);
/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("keyless-client/", env!("CARGO_PKG_VERSION"));

/// How requests authenticate.
#[derive(Clone)]
pub enum Credential {
    /// A workspace API key, sent as `x-api-key`.
    ApiKey(SecretString),
    /// A bearer token used as is (`KEYLESS_AUTH_TOKEN`, a bootstrap admin token).
    Bearer(SecretString),
    /// Bearer tokens from a cache that refreshes them (a federation exchange, a credentials file):
    /// a 401 drops the cached token and the request is retried once with a fresh one.
    Refreshing(Arc<TokenCache>),
}

/// Names the kind of credential only: never its value.
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ApiKey(_) => "Credential::ApiKey(…)",
            Self::Bearer(_) => "Credential::Bearer(…)",
            Self::Refreshing(_) => "Credential::Refreshing(…)",
        })
    }
}

/// A keyless server and the credential to call it with. Cheap to clone (the HTTP connection pool is shared).
#[derive(Debug, Clone)]
pub struct Api {
    base_url: Url,
    http: reqwest::Client,
    credential: Option<Credential>,
}

impl Api {
    /// An API at `base_url` (https, or http on loopback), authenticating with `credential`.
    pub fn new(base_url: &str, credential: Credential) -> Result<Self, ClientError> {
        Self::build(base_url, Some(credential))
    }

    /// An API at `base_url` called without credentials (the token endpoint, the metadata).
    pub fn anonymous(base_url: &str) -> Result<Self, ClientError> {
        Self::build(base_url, None)
    }

    fn build(base_url: &str, credential: Option<Credential>) -> Result<Self, ClientError> {
        let mut base_url = checked_url(base_url)?;
        if base_url.query().is_some() || base_url.fragment().is_some() {
            return Err(ClientError::Config(format!(
                "{base_url}: a base URL has no query or fragment"
            )));
        }
        if !base_url.path().ends_with('/') {
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            .build()
            .map_err(|err| transport("building the HTTP client", err))?;
        Ok(Self {
            base_url,
            http,
            credential,
        })
    }

    /// The base URL, always ending in `/`.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// The credential requests carry (none for an anonymous API).
    pub fn credential(&self) -> Option<&Credential> {
        self.credential.as_ref()
    }

    /// The HTTP client (connection pool) calls share.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The URL of `segments` under the base URL, each segment percent-encoded, plus `query`. A `.` or
    /// `..` segment is sent as the text `%2E` / `%2E%2E` (which no ID matches), so an ID can never climb
    /// out of its collection.
    pub fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            for segment in segments {
                match *segment {
                    "." => path.push("%2E"),
                    ".." => path.push("%2E%2E"),
                    other => path.push(other),
                };
            }
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// `GET` `segments` with `query`, decoding the JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<T, ClientError> {
        self.send(Method::GET, segments, query, None::<&()>).await
    }

    /// `POST` `body` as JSON to `segments`, decoding the JSON answer.
    pub async fn post<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> Result<T, ClientError> {
        self.send(Method::POST, segments, &[], Some(body)).await
    }

    /// `POST` `form` as `application/x-www-form-urlencoded` to `segments` (the OAuth endpoints),
    /// decoding the JSON answer.
    pub async fn post_form<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        form: &[(&str, &str)],
    ) -> Result<T, ClientError> {
        self.request(Method::POST, segments, &[], Body::Form(form)).await
    }

    /// `DELETE` `segments`, decoding the JSON answer.
    pub async fn delete<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, ClientError> {
        self.send(Method::DELETE, segments, &[], None::<&()>).await
    }

    /// Sends one request and decodes its JSON answer; an error status is [`ClientError::Api`].
    pub async fn send<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let body = match body {
            Some(body) => Body::Json(
                serde_json::to_vec(body).map_err(|err| ClientError::Decode(format!("encoding the request: {err}")))?,
            ),
            None => Body::None,
        };
        self.request(method, segments, query, body).await
    }

    async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<T, ClientError> {
        let url = self.url(segments, query);
        let what = format!("{method} {}", without_query(&url));
        let first = self.attempt(&method, &url, &what, &body).await;
        match (&self.credential, &first) {
            (Some(Credential::Refreshing(cache)), Err(ClientError::Api(error))) if error.status == 401 => {
                tracing::debug!(request_id = ?error.request_id, "401 with a cached token: dropping it and retrying once");
                cache.invalidate();
                self.attempt(&method, &url, &what, &body).await
            }
            _ => first,
        }
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        method: &Method,
        url: &Url,
        what: &str,
        body: &Body<'_>,
    ) -> Result<T, ClientError> {
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        request = match &self.credential {
            None => request,
            Some(Credential::ApiKey(key)) => request.header("x-api-key", key.expose_secret()),
            Some(Credential::Bearer(token)) => request.bearer_auth(token.expose_secret()),
            Some(Credential::Refreshing(cache)) => request.bearer_auth(cache.token().await?.token.expose_secret()),
        };
        request = match body {
            Body::None => request,
            Body::Json(bytes) => request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes.clone()),
            Body::Form(form) => request
                .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(
                    url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(*form)
                        .finish(),
                ),
        };
        let response = request.send().await.map_err(|err| transport(what, err))?;
        let status = response.status();
        let request_id = response
            .headers()
            .get("request-id")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let bytes = read_capped(response, what, MAX_BODY_BYTES).await?;
        if !status.is_success() {
            return Err(api_error(what.to_owned(), status.as_u16(), request_id, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|err| {
            let id = request_id.map(|id| format!(" [request {id}]")).unwrap_or_default();
            ClientError::Decode(format!("{what}: the answer is not what was expected: {err}{id}"))
        })
    }
}

/// A request body.
enum Body<'a> {
    None,
    Json(Vec<u8>),
    Form(&'a [(&'a str, &'a str)]),
}

fn without_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn api(base: &str) -> Api {
        Api::new(base, Credential::Bearer(SecretString::from("t"))).unwrap()
    }

    #[test]
    fn segments_are_encoded_under_the_base_path() {
        let url = api("http://127.0.0.1:8080").url(&["v1", "organizations", "service_accounts", "../../x?y"], &[]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/v1/organizations/service_accounts/..%2F..%2Fx%3Fy"
        );
        let url = api("http://127.0.0.1:8080").url(&["v1", "organizations", "federation_rules", ".."], &[]);
        // The server receives the text `%2E%2E` as the ID and refuses it as malformed; never the parent.
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/v1/organizations/federation_rules/%252E%252E"
        );
        let url = api("https://keyless.example/base").url(&["v1", "oauth", "token"], &[("limit", "2")]);
        assert_eq!(url.as_str(), "https://keyless.example/base/v1/oauth/token?limit=2");
    }

    #[test]
    fn base_urls_follow_the_policy_and_debug_hides_the_credential() {
        assert!(Api::new("http://keyless.example", Credential::Bearer(SecretString::from("t"))).is_err());
        assert!(
            Api::new(
                "https://keyless.example/?a=b",
                Credential::Bearer(SecretString::from("t"))
            )
            .is_err()
        );
        let debug = format!(
            "{:?}",
            Api::new("https://k.example", Credential::ApiKey(SecretString::from("sk-1"))).unwrap()
        );
        assert!(!debug.contains("sk-1"), "{debug}");
    }
}
