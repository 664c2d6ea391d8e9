//! "Verify issuer": a dry run of an issuer's key fetch that reports what it found, for the Admin API and
//! the console's setup wizard.
//!
//! Parts: [`verify`], [`VerifyReport`] and its rows ([`ReportKey`], [`ReportSkippedKey`], [`Problem`]).
//!
//! It fetches exactly as the cache would (same URL policy, address guard, size cap, timeouts and
//! discovery checks) but touches neither the cache nor the store, so it can run before an issuer is
//! saved. Problems carry the [`FetchError::code`] vocabulary.

use keyless_jose::Jwks;
use serde::Serialize;

use super::fetch::{FetchError, FetchSettings, Fetcher};
use super::source::{JwksSource, UrlPolicy};

/// What a dry run found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Whether keys were found and at least one is usable (no problem).
    pub ok: bool,
    /// The discovery document's URL (discovery sources).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery_url: Option<String>,
    /// The JWKS URL (from the discovery document or the configuration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The usable keys.
    pub keys: Vec<ReportKey>,
    /// The keys that cannot be used, and why.
    pub skipped_keys: Vec<ReportSkippedKey>,
    /// What went wrong (empty when `ok`).
    pub problems: Vec<Problem>,
}

/// A usable key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportKey {
    /// Its `kid` (the thumbprint when the JWK has none).
    pub kid: Option<String>,
    /// Its key type (`RSA`, `EC`, `OKP`).
    pub kty: String,
    /// The algorithm it is restricted to, when it names one.
    pub alg: Option<String>,
    /// Its `use` (`sig`).
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    /// The RFC 7638 thumbprint.
    pub thumbprint: String,
}

/// A key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportSkippedKey {
    /// Its `kid`, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// A stable code (`rsa_too_small`, `unsupported_kty`, …).
    pub code: String,
    /// Why it was skipped.
    pub reason: String,
}

/// A problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// A stable code ([`FetchError::code`]).
    pub code: String,
    /// A human message.
    pub message: String,
}

impl From<&FetchError> for Problem {
    fn from(error: &FetchError) -> Self {
        Problem {
            code: error.code().to_owned(),
            message: error.to_string(),
        }
    }
}

/// Fetches (or, for inline keys, reads) the keys of an issuer at `issuer_url` configured with
/// `source`, under `policy` and `settings`, at `now`; never touches the cache or the store.
pub async fn verify(
    issuer_url: &str,
    source: &JwksSource,
    policy: UrlPolicy,
    settings: FetchSettings,
    now: i64,
) -> VerifyReport {
    let mut report = VerifyReport {
        ok: false,
        discovery_url: source.discovery_url(issuer_url),
        jwks_uri: None,
        keys: Vec::new(),
        skipped_keys: Vec::new(),
        problems: Vec::new(),
    };
    let jwks = match source.inline_jwks() {
        Some(jwks) => Ok(jwks),
        None => fetch(&mut report, issuer_url, source, policy, settings, now).await,
    };
    match jwks {
        Ok(jwks) => {
            describe(&mut report, &jwks);
            if jwks.keys().is_empty() {
                let error = FetchError::NoUsableKeys {
                    url: report.jwks_uri.clone().unwrap_or_else(|| "inline".to_owned()),
                    skipped: jwks.skipped().len(),
                };
                report.problems.push(Problem::from(&error));
            }
        }
        Err(error) => report.problems.push(Problem::from(&error)),
    }
    report.ok = report.problems.is_empty();
    report
}

async fn fetch(
    report: &mut VerifyReport,
    issuer_url: &str,
    source: &JwksSource,
    policy: UrlPolicy,
    settings: FetchSettings,
    now: i64,
) -> Result<Jwks, FetchError> {
    let fetcher = Fetcher::new(settings, policy);
    let client = fetcher.client(source.ca_cert_pem())?;
    let (_, jwks_uri) = fetcher.locate(&client, issuer_url, source).await?;
    report.jwks_uri = Some(jwks_uri.to_string());
    let (jwks, _) = fetcher.jwks(&client, &jwks_uri, now).await?;
    Ok(jwks)
}

fn describe(report: &mut VerifyReport, jwks: &Jwks) {
    report.keys = jwks
        .keys()
        .iter()
        .map(|jwk| {
            let public = jwk.public_json();
            let member = |name: &str| public.get(name).and_then(|value| value.as_str()).map(str::to_owned);
            ReportKey {
                kid: jwk.kid().map(str::to_owned),
                kty: member("kty").unwrap_or_default(),
                alg: jwk.alg().map(|alg| alg.name().to_owned()),
                key_use: member("use"),
                thumbprint: jwk.thumbprint().to_owned(),
            }
        })
        .collect();
    report.skipped_keys = jwks
        .skipped()
        .iter()
        .map(|skipped| ReportSkippedKey {
            kid: skipped.kid.clone(),
            code: skipped.error.code().to_owned(),
            reason: skipped.error.to_string(),
        })
        .collect();
}
