//! Where an issuer's keys come from: the `jwks` block of a federation issuer, parsed and checked at
//! write time, and the static half of the URL policy (the fetcher adds the address checks that need DNS).
//!
//! Parts: [`JwksSource`] (`discovery` | `explicit_url` | `inline`), [`UrlPolicy`], [`check_url`],
//! [`FieldError`] (a field-prefixed message, `jwks.url: url must use https scheme`).
//!
//! Static URL policy (unless `issuers.allow_insecure_urls`): scheme `https`, no user info, no fragment,
//! port 443 (or none), a DNS name (no IP literal), not `localhost` or a name under `.localhost`.

use keyless_jose::Jwks;
use serde_json::{Map, Value, json};
use url::{Host, Url};

/// Largest `ca_cert_pem` accepted.
pub const MAX_CA_CERT_PEM_BYTES: usize = 64 * 1024;
/// Most inline keys accepted.
pub const MAX_INLINE_KEYS: usize = 100;

/// Whether URLs may break the static policy (`issuers.allow_insecure_urls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UrlPolicy {
    /// Allow `http`, IP literals, loopback and any port.
    pub allow_insecure: bool,
}

/// A refused field: `field` is the JSON path the caller sent (`issuer_url`, `jwks.url`, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The field's path.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A refusal of `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The `jwks` block of an issuer.
#[derive(Debug, Clone)]
pub enum JwksSource {
    /// `{type: discovery, discovery_base?, ca_cert_pem?}`: `<base>/.well-known/openid-configuration`
    /// names the `jwks_uri`; the base is the issuer URL unless `discovery_base` is set.
    Discovery {
        /// Where to look for the discovery document instead of the issuer URL.
        discovery_base: Option<Url>,
        /// Extra trust anchors (PEM) for the fetches.
        ca_cert_pem: Option<String>,
    },
    /// `{type: explicit_url, url, ca_cert_pem?}`: the JWKS is at `url`.
    ExplicitUrl {
        /// The JWKS URL.
        url: Url,
        /// Extra trust anchors (PEM) for the fetch.
        ca_cert_pem: Option<String>,
    },
    /// `{type: inline, keys: [JWK…]}`: the keys are in the configuration; nothing is fetched.
    Inline {
        /// The keys as given (public members only are kept).
        keys: Vec<Value>,
    },
}

impl JwksSource {
    /// Parses and checks a `jwks` block; errors name the field (`jwks.url`, `jwks.keys[2]`, …).
    pub fn parse(value: &Value, policy: UrlPolicy) -> Result<Self, FieldError> {
        let object = value
            .as_object()
            .ok_or_else(|| FieldError::new("jwks", "must be an object"))?;
        let kind = object
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| FieldError::new("jwks.type", "required: one of discovery, explicit_url, inline"))?;
        let allowed: &[&str] = match kind {
            "discovery" => &["type", "discovery_base", "ca_cert_pem"],
            "explicit_url" => &["type", "url", "ca_cert_pem"],
            "inline" => &["type", "keys"],
            other => {
                return Err(FieldError::new(
                    "jwks.type",
                    format!("unknown type {other:?}: one of discovery, explicit_url, inline"),
                ));
            }
        };
        if let Some(unknown) = object.keys().find(|key| !allowed.contains(&key.as_str())) {
            return Err(FieldError::new(
                format!("jwks.{unknown}"),
                format!("unknown field for type {kind}"),
            ));
        }
        match kind {
            "discovery" => Ok(JwksSource::Discovery {
                discovery_base: optional_str(object, "discovery_base")?
                    .map(|base| {
                        check_url(base, policy).map_err(|message| FieldError::new("jwks.discovery_base", message))
                    })
                    .transpose()?,
                ca_cert_pem: ca_cert_pem(object)?,
            }),
            "explicit_url" => {
                let url = optional_str(object, "url")?.ok_or_else(|| FieldError::new("jwks.url", "required"))?;
                Ok(JwksSource::ExplicitUrl {
                    url: check_url(url, policy).map_err(|message| FieldError::new("jwks.url", message))?,
                    ca_cert_pem: ca_cert_pem(object)?,
                })
            }
            _ => inline_keys(object),
        }
    }

    /// The block as stored and returned by the API.
    pub fn to_json(&self) -> Value {
        match self {
            JwksSource::Discovery {
                discovery_base,
                ca_cert_pem,
            } => json!({
                "type": "discovery",
                "discovery_base": discovery_base.as_ref().map(Url::as_str),
                "ca_cert_pem": ca_cert_pem,
            }),
            JwksSource::ExplicitUrl { url, ca_cert_pem } => json!({
                "type": "explicit_url",
                "url": url.as_str(),
                "ca_cert_pem": ca_cert_pem,
            }),
            JwksSource::Inline { keys } => json!({ "type": "inline", "keys": keys }),
        }
    }

    /// The extra trust anchors, if any.
    pub fn ca_cert_pem(&self) -> Option<&str> {
        match self {
            JwksSource::Discovery { ca_cert_pem, .. } | JwksSource::ExplicitUrl { ca_cert_pem, .. } => {
                ca_cert_pem.as_deref()
            }
            JwksSource::Inline { .. } => None,
        }
    }

    /// The discovery document's URL for an issuer at `issuer_url` (discovery sources only).
    pub fn discovery_url(&self, issuer_url: &str) -> Option<String> {
        match self {
            JwksSource::Discovery { discovery_base, .. } => {
                let base = discovery_base.as_ref().map_or(issuer_url, Url::as_str);
                Some(format!(
                    "{}/.well-known/openid-configuration",
                    base.trim_end_matches('/')
                ))
            }
            _ => None,
        }
    }
}

/// Checks a URL against the static policy; the error is the message after the field name.
pub fn check_url(text: &str, policy: UrlPolicy) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|err| format!("not a valid URL ({err})"))?;
    if policy.allow_insecure {
        if !matches!(url.scheme(), "https" | "http") {
            return Err("url must use https or http scheme".to_owned());
        }
        return Ok(url);
    }
    if url.scheme() != "https" {
        return Err("url must use https scheme".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("url must not carry user info".to_owned());
    }
    if url.fragment().is_some() {
        return Err("url must not carry a fragment".to_owned());
    }
    if url.port().is_some_and(|port| port != 443) {
        return Err("url must use port 443".to_owned());
    }
    match url.host() {
        Some(Host::Domain(domain)) => {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            if domain == "localhost" || domain.ends_with(".localhost") {
                return Err("url must name a public host".to_owned());
            }
        }
        Some(Host::Ipv4(_) | Host::Ipv6(_)) => return Err("url must use a host name, not an IP address".to_owned()),
        None => return Err("url must have a host".to_owned()),
    }
    Ok(url)
}

fn optional_str<'a>(object: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, FieldError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(FieldError::new(format!("jwks.{key}"), "must be a string")),
    }
}

fn ca_cert_pem(object: &Map<String, Value>) -> Result<Option<String>, FieldError> {
    let Some(pem) = optional_str(object, "ca_cert_pem")? else {
        return Ok(None);
    };
    if pem.len() > MAX_CA_CERT_PEM_BYTES {
        return Err(FieldError::new(
            "jwks.ca_cert_pem",
            format!("larger than {MAX_CA_CERT_PEM_BYTES} bytes"),
        ));
    }
    // Only `CERTIFICATE` blocks count; other PEM blocks (keys, …) are ignored, a broken one is refused.
    let certificates = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
        .map_err(|_| FieldError::new("jwks.ca_cert_pem", "must hold PEM certificates"))?;
    if certificates.is_empty() {
        return Err(FieldError::new("jwks.ca_cert_pem", "must hold PEM certificates"));
    }
    Ok(Some(pem.to_owned()))
}

fn inline_keys(object: &Map<String, Value>) -> Result<JwksSource, FieldError> {
    let keys = object
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| FieldError::new("jwks.keys", "required: an array of JWKs"))?;
    if keys.is_empty() || keys.len() > MAX_INLINE_KEYS {
        return Err(FieldError::new(
            "jwks.keys",
            format!("must hold 1 to {MAX_INLINE_KEYS} keys"),
        ));
    }
    let mut public = Vec::with_capacity(keys.len());
    for (index, key) in keys.iter().enumerate() {
        let jwk = keyless_jose::Jwk::from_value(key)
            .map_err(|err| FieldError::new(format!("jwks.keys[{index}]"), err.to_string()))?;
        public.push(jwk.public_json());
    }
    Ok(JwksSource::Inline { keys: public })
}

impl JwksSource {
    /// The inline keys as a [`Jwks`] (inline sources only).
    pub fn inline_jwks(&self) -> Option<Jwks> {
        match self {
            JwksSource::Inline { keys } => Some(Jwks::from_values(keys)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_pem(pem: &str, ok: bool) {
        let block = json!({"type": "discovery", "ca_cert_pem": pem});
        let parsed = JwksSource::parse(&block, UrlPolicy::default());
        assert_eq!(parsed.is_ok(), ok, "{pem:?}: {parsed:?}");
    }

    #[test]
    fn ca_cert_pem_must_hold_pem_certificates() {
        check_pem("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n", true);
        check_pem(
            "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n\
             -----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
            true,
        );
        check_pem(
            "-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n",
            false,
        );
        check_pem("-----BEGIN CERTIFICATE-----\nMAA=\n", false);
        check_pem("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n", false);
        check_pem("not pem at all", false);
    }
}
