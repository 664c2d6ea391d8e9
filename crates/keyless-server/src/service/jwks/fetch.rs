//! Fetching an issuer's keys over HTTP: the discovery document, then the JWKS.
//!
//! Parts: [`FetchSettings`] (timeouts, size cap, redirects), [`Fetcher`] (one `reqwest` client per
//! distinct set of extra trust anchors, cached), [`Fetched`], [`FetchError`] (each with a stable
//! [`FetchError::code`]).
//!
//! Policy, unless `issuers.allow_insecure_urls`: every URL passes [`check_url`] (https, port 443, a DNS
//! name), and every address the client connects to is public ([`GuardedResolver`] checks them inside
//! the client's resolver, so the address checked is the address connected to). Proxies from the
//! environment are never used (a proxy would resolve names itself, around the guard). Redirects are
//! followed only to the same scheme, host and port, at most [`FetchSettings::max_redirects`] times.
//! Bodies are read as a stream and cut off past [`FetchSettings::max_body_bytes`]; connect and total
//! timeouts bound each request. The JWKS is parsed by `keyless-jose`'s strict JSON reader; of the
//! discovery document only `issuer` and `jwks_uri` are read, through a serde struct that refuses a
//! duplicate of either (`keyless-jose` does not expose its reader for arbitrary objects).
//!
//! Discovery: `<issuer or discovery_base>/.well-known/openid-configuration` must be a JSON object whose
//! `issuer` equals the configured issuer URL byte for byte (unless `discovery_base` is set: a
//! different document location is the point of it, so then only `jwks_uri` is read), and whose
//! `jwks_uri` passes the same URL policy.
//!
//! Must not: put response bodies, headers or secrets in errors (messages name the URL and what failed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keyless_jose::Jwks;
use reqwest::header::{self, HeaderMap};
use serde::Deserialize;
use url::Url;

use super::address::{GuardedResolver, ResolveError};
use super::source::{JwksSource, UrlPolicy, check_url};

/// Largest discovery document or JWKS read by default.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
/// Most distinct clients (sets of extra trust anchors) kept; past it the cache starts over.
const MAX_CLIENTS: usize = 64;

/// Bounds of one fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchSettings {
    /// Time to establish a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Time for a whole request, body included (the discovery document and the JWKS each get it).
    pub timeout: Duration,
    /// Largest body read.
    pub max_body_bytes: usize,
    /// Most same-origin redirects followed (0: none).
    pub max_redirects: usize,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_redirects: 3,
        }
    }
}

/// Why a fetch failed. Messages name the URL and the failure, never a body or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The issuer's `jwks` block is not valid under the current policy.
    #[error("{0}")]
    Config(String),
    /// A URL breaks the static policy (scheme, port, IP literal, …).
    #[error("{url}: {reason}")]
    UrlRefused {
        /// The URL.
        url: String,
        /// What the policy refused.
        reason: String,
    },
    /// The host resolves to a non-public address.
    #[error("{0}")]
    AddressRefused(String),
    /// The host name does not resolve.
    #[error("{0}")]
    Dns(String),
    /// The connection could not be made (refused, reset, TLS handshake failed, …).
    #[error("{url}: connection failed")]
    Connect {
        /// The URL.
        url: String,
    },
    /// A connect or total timeout elapsed.
    #[error("{url}: timed out")]
    Timeout {
        /// The URL.
        url: String,
    },
    /// A redirect to another origin, or too many redirects.
    #[error("{url}: redirect refused (only up to {max} same-origin redirects are followed)")]
    RedirectRefused {
        /// The URL first requested.
        url: String,
        /// The bound.
        max: usize,
    },
    /// The server answered with a status other than 2xx.
    #[error("{url}: HTTP status {status}")]
    HttpStatus {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The body is larger than the cap.
    #[error("{url}: body larger than {max} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The cap.
        max: usize,
    },
    /// The body is not the JSON expected (strict JSON object, a `keys` array, …).
    #[error("{url}: {reason}")]
    InvalidJson {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The discovery document names another issuer.
    #[error("{url}: the discovery document's issuer is not the configured issuer_url")]
    DiscoveryIssuerMismatch {
        /// The discovery URL.
        url: String,
    },
    /// The discovery document has no usable `jwks_uri`.
    #[error("{url}: {reason}")]
    DiscoveryInvalid {
        /// The discovery URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The JWKS has no key keyless can verify with.
    #[error("{url}: no usable key ({skipped} skipped)")]
    NoUsableKeys {
        /// The JWKS URL (`inline` for inline keys).
        url: String,
        /// How many keys were skipped.
        skipped: usize,
    },
    /// `ca_cert_pem` could not be used as trust anchors.
    #[error("jwks.ca_cert_pem: {0}")]
    CaCert(String),
    /// Any other transport failure.
    #[error("{url}: request failed")]
    Transport {
        /// The URL.
        url: String,
    },
}

impl FetchError {
    /// A stable short code for the poll status, the verify report and logs.
    pub fn code(&self) -> &'static str {
        match self {
            FetchError::Config(_) => "config_invalid",
            FetchError::UrlRefused { .. } => "url_refused",
            FetchError::AddressRefused(_) => "address_refused",
            FetchError::Dns(_) => "dns_failed",
            FetchError::Connect { .. } => "connect_failed",
            FetchError::Timeout { .. } => "timeout",
            FetchError::RedirectRefused { .. } => "redirect_refused",
            FetchError::HttpStatus { .. } => "http_status",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::InvalidJson { .. } => "invalid_json",
            FetchError::DiscoveryIssuerMismatch { .. } => "discovery_issuer_mismatch",
            FetchError::DiscoveryInvalid { .. } => "discovery_invalid",
            FetchError::NoUsableKeys { .. } => "no_usable_keys",
            FetchError::CaCert(_) => "ca_cert_invalid",
            FetchError::Transport { .. } => "transport_failed",
        }
    }
}

/// A JWKS as fetched.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The keys (usable and skipped).
    pub jwks: Jwks,
    /// The discovery document's URL (discovery sources only).
    pub discovery_url: Option<String>,
    /// The JWKS URL.
    pub jwks_uri: String,
    /// How long the JWKS may be cached, from its `Cache-Control: max-age` (less `Age`) or `Expires`,
    /// unclamped; `Some(0)` for `no-store` / `no-cache`; `None` when the response says nothing.
    pub max_age: Option<i64>,
}

/// Fetches issuer documents under one URL policy; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Fetcher {
    settings: FetchSettings,
    policy: UrlPolicy,
    /// Clients by the SHA-256 of their extra trust anchors (`None`: the platform's roots only).
    clients: Mutex<HashMap<Option<[u8; 32]>, reqwest::Client>>,
}

impl Fetcher {
    /// A fetcher with no client built yet.
    pub fn new(settings: FetchSettings, policy: UrlPolicy) -> Self {
        Fetcher {
            settings,
            policy,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The URL policy it fetches under.
    pub fn policy(&self) -> UrlPolicy {
        self.policy
    }

    /// Fetches the keys of an issuer at `issuer_url` with a fetched source (discovery or explicit URL);
    /// `now` (Unix seconds) turns `Expires` into a max age. A JWKS without a usable key is an error
    /// ([`FetchError::NoUsableKeys`]).
    pub async fn fetch(&self, issuer_url: &str, source: &JwksSource, now: i64) -> Result<Fetched, FetchError> {
        let client = self.client(source.ca_cert_pem())?;
        let (discovery_url, jwks_uri) = self.locate(&client, issuer_url, source).await?;
        let (jwks, max_age) = self.jwks(&client, &jwks_uri, now).await?;
        if jwks.keys().is_empty() {
            return Err(FetchError::NoUsableKeys {
                url: jwks_uri.to_string(),
                skipped: jwks.skipped().len(),
            });
        }
        Ok(Fetched {
            jwks,
            discovery_url: discovery_url.map(String::from),
            jwks_uri: jwks_uri.into(),
            max_age,
        })
    }

    /// The client for a set of extra trust anchors, built once.
    pub(crate) fn client(&self, ca_cert_pem: Option<&str>) -> Result<reqwest::Client, FetchError> {
        let digest = ca_cert_pem.map(|pem| {
            let mut out = [0u8; 32];
            out.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, pem.as_bytes()).as_ref());
            out
        });
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.get(&digest) {
            return Ok(client.clone());
        }
        let client = self.build_client(ca_cert_pem)?;
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        clients.insert(digest, client.clone());
        Ok(client)
    }

    fn build_client(&self, ca_cert_pem: Option<&str>) -> Result<reqwest::Client, FetchError> {
        let max_redirects = self.settings.max_redirects;
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            let same_origin = attempt
                .previous()
                .first()
                .is_some_and(|first| first.origin() == attempt.url().origin());
            if same_origin && attempt.previous().len() <= max_redirects {
                attempt.follow()
            } else {
                attempt.error("redirect refused")
            }
        });
        let mut builder = reqwest::Client::builder()
            .redirect(redirect)
            .no_proxy()
            .connect_timeout(self.settings.connect_timeout)
            .timeout(self.settings.timeout)
            .user_agent(concat!("keyless/", env!("CARGO_PKG_VERSION")));
        if !self.policy.allow_insecure {
            builder = builder.https_only(true).dns_resolver(Arc::new(GuardedResolver));
        }
        if let Some(pem) = ca_cert_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|_| FetchError::CaCert("not valid PEM certificates".to_owned()))?;
            if certs.is_empty() {
                return Err(FetchError::CaCert("holds no certificate".to_owned()));
            }
            builder = builder.tls_certs_merge(certs);
        }
        builder
            .build()
            .map_err(|_| FetchError::CaCert("the certificates cannot be used as trust anchors".to_owned()))
    }

    /// The discovery URL (discovery sources) and the JWKS URL.
    pub(crate) async fn locate(
        &self,
        client: &reqwest::Client,
        issuer_url: &str,
        source: &JwksSource,
    ) -> Result<(Option<Url>, Url), FetchError> {
        match source {
            JwksSource::ExplicitUrl { url, .. } => Ok((None, self.checked(url.as_str())?)),
            JwksSource::Discovery { discovery_base, .. } => {
                let text = source.discovery_url(issuer_url).unwrap_or_default();
                let discovery_url = self.checked(&text)?;
                let jwks_uri = self
                    .discover(client, &discovery_url, issuer_url, discovery_base.is_none())
                    .await?;
                Ok((Some(discovery_url), jwks_uri))
            }
            JwksSource::Inline { .. } => Err(FetchError::Config("inline keys are not fetched".to_owned())),
        }
    }

    /// Reads the discovery document and returns its checked `jwks_uri`.
    pub(crate) async fn discover(
        &self,
        client: &reqwest::Client,
        discovery_url: &Url,
        issuer_url: &str,
        check_issuer: bool,
    ) -> Result<Url, FetchError> {
        let (_, body) = self.get(client, discovery_url, "application/json").await?;
        let document: DiscoveryDocument = serde_json::from_slice(&body).map_err(|err| FetchError::InvalidJson {
            url: discovery_url.to_string(),
            reason: format!("not a discovery document: {err}"),
        })?;
        if check_issuer && document.issuer.as_deref() != Some(issuer_url) {
            return Err(FetchError::DiscoveryIssuerMismatch {
                url: discovery_url.to_string(),
            });
        }
        let jwks_uri = document.jwks_uri.ok_or_else(|| FetchError::DiscoveryInvalid {
            url: discovery_url.to_string(),
            reason: "the discovery document has no jwks_uri".to_owned(),
        })?;
        self.checked(&jwks_uri)
    }

    /// Reads and parses the JWKS at `url`; returns it with the max age its response allows.
    pub(crate) async fn jwks(
        &self,
        client: &reqwest::Client,
        url: &Url,
        now: i64,
    ) -> Result<(Jwks, Option<i64>), FetchError> {
        let (headers, body) = self
            .get(client, url, "application/jwk-set+json, application/json")
            .await?;
        let jwks = Jwks::from_json(&body).map_err(|err| FetchError::InvalidJson {
            url: url.to_string(),
            reason: err.to_string(),
        })?;
        Ok((jwks, max_age(&headers, now)))
    }

    fn checked(&self, url: &str) -> Result<Url, FetchError> {
        check_url(url, self.policy).map_err(|reason| FetchError::UrlRefused {
            url: url.to_owned(),
            reason,
        })
    }

    /// GET with the size cap enforced while streaming; non-2xx is an error (its body is not read).
    async fn get(&self, client: &reqwest::Client, url: &Url, accept: &str) -> Result<(HeaderMap, Vec<u8>), FetchError> {
        let max = self.settings.max_body_bytes;
        let mut response = client
            .get(url.clone())
            .header(header::ACCEPT, accept)
            .send()
            .await
            .map_err(|err| self.classify(&err, url))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::HttpStatus {
                url: url.to_string(),
                status: status.as_u16(),
            });
        }
        let too_large = || FetchError::TooLarge {
            url: url.to_string(),
            max,
        };
        if response
            .content_length()
            .is_some_and(|length| usize::try_from(length).map_or(true, |length| length > max))
        {
            return Err(too_large());
        }
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|err| self.classify(&err, url))? {
            if body.len().saturating_add(chunk.len()) > max {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((headers, body))
    }

    fn classify(&self, err: &reqwest::Error, url: &Url) -> FetchError {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(current) = cause {
            if let Some(resolve) = current.downcast_ref::<ResolveError>() {
                return match resolve {
                    ResolveError::Refused { .. } => FetchError::AddressRefused(resolve.to_string()),
                    ResolveError::Lookup { .. } => FetchError::Dns(resolve.to_string()),
                };
            }
            cause = current.source();
        }
        let url = url.to_string();
        if err.is_timeout() {
            FetchError::Timeout { url }
        } else if err.is_redirect() {
            FetchError::RedirectRefused {
                url,
                max: self.settings.max_redirects,
            }
        } else if err.is_connect() {
            FetchError::Connect { url }
        } else {
            FetchError::Transport { url }
        }
    }
}

/// The members of a discovery document keyless reads. Serde's derive refuses a duplicate `issuer` or
/// `jwks_uri` (so no two parsers can disagree on which one counts), a non-object, and wrong types;
/// other members are ignored.
#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: Option<String>,
    jwks_uri: Option<String>,
}

/// The max age a response allows: `Cache-Control` `no-store`/`no-cache` → 0, else `max-age` less
/// `Age`, else `Expires` less `now`; `None` when none applies (an unparsable value counts as absent).
pub fn max_age(headers: &HeaderMap, now: i64) -> Option<i64> {
    let directives: Vec<String> = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|directive| directive.trim().to_ascii_lowercase())
        .collect();
    if directives
        .iter()
        .any(|directive| directive == "no-store" || directive == "no-cache")
    {
        return Some(0);
    }
    let max_age = directives.iter().find_map(|directive| {
        directive
            .strip_prefix("max-age=")
            .and_then(|seconds| seconds.trim_matches('"').parse::<i64>().ok())
    });
    if let Some(max_age) = max_age {
        let age = headers
            .get(header::AGE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<i64>().ok())
            .unwrap_or(0);
        return Some(max_age.saturating_sub(age).max(0));
    }
    let expires = headers.get(header::EXPIRES)?.to_str().ok()?;
    let at = httpdate::parse_http_date(expires).ok()?;
    let at = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX));
    Some(at.saturating_sub(now).max(0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use reqwest::header::HeaderValue;

    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn check(headers: &[(&str, &str)], expect: Option<i64>) {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        assert_eq!(max_age(&map, NOW), expect, "{headers:?}");
    }

    #[test]
    fn caching_headers() {
        check(&[], None);
        check(&[("cache-control", "public, max-age=3600")], Some(3600));
        check(
            &[("cache-control", "max-age=3600, must-revalidate"), ("age", "600")],
            Some(3000),
        );
        check(&[("cache-control", "max-age=60"), ("age", "600")], Some(0));
        check(&[("cache-control", "no-store")], Some(0));
        check(&[("cache-control", "private"), ("cache-control", "No-Cache")], Some(0));
        check(&[("cache-control", "max-age=abc")], None);
        // Wed, 15 Nov 2023 00:13:20 GMT is NOW + 7200
        check(&[("expires", "Wed, 15 Nov 2023 00:13:20 GMT")], Some(7200));
        check(&[("expires", "0")], None);
        check(
            &[
                ("expires", "Wed, 15 Nov 2023 00:13:20 GMT"),
                ("cache-control", "max-age=5"),
            ],
            Some(5),
        );
        check(&[("expires", "Mon, 01 Jan 2001 00:00:00 GMT")], Some(0));
    }
}
