//! Fetching a JWKS document over HTTP(S).
//!
//! The URL must be `https`, except on loopback hosts (`localhost`, `127.0.0.0/8`, `::1`) where
//! `http` is allowed for local development. The body is read with a size cap, redirects are not
//! followed, and connect and total timeouts bound the wait.

use std::net::IpAddr;
use std::time::Duration;

use keyless_jose::Jwks;
use url::{Host, Url};

use crate::ClientError;

/// Largest JWKS body accepted.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(15);

/// Fetches and parses the JWKS at `url`. Unusable keys are skipped (see [`Jwks::skipped`]).
pub async fn fetch(url: &str) -> Result<Jwks, ClientError> {
    let url = checked_url(url)?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .build()
        .map_err(|err| transport("building the HTTP client", err))?;
    let mut response = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/jwk-set+json, application/json")
        .send()
        .await
        .map_err(|err| transport(&format!("fetching {url}"), err))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| transport(&format!("reading {url}"), err))?
    {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(ClientError::Decode(format!(
                "{url}: JWKS is larger than {MAX_JWKS_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        return Err(ClientError::Api {
            url: url.to_string(),
            status: status.as_u16(),
            body: String::from_utf8_lossy(body.get(..512).unwrap_or(&body)).into_owned(),
        });
    }
    Jwks::from_json(&body).map_err(|err| ClientError::Decode(format!("{url}: {err}")))
}

fn transport(context: &str, err: reqwest::Error) -> ClientError {
    ClientError::Transport {
        context: context.to_owned(),
        source: Box::new(err),
    }
}

/// Parses `url` and refuses plain `http` outside loopback.
fn checked_url(url: &str) -> Result<Url, ClientError> {
    let parsed = Url::parse(url).map_err(|err| ClientError::Config(format!("{url:?} is not a URL: {err}")))?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if is_loopback(&parsed) => Ok(parsed),
        "http" => Err(ClientError::Config(format!(
            "{url}: http is allowed only on loopback hosts; use https"
        ))),
        other => Err(ClientError::Config(format!(
            "{url}: scheme {other:?} is not supported; use https"
        ))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, ok: bool) {
        assert_eq!(checked_url(url).is_ok(), ok, "{url}");
    }

    #[test]
    fn https_everywhere_http_only_on_loopback() {
        check("https://issuer.example/jwks", true);
        check("http://127.0.0.1:8080/jwks", true);
        check("http://127.9.9.9/jwks", true);
        check("http://localhost/jwks", true);
        check("http://[::1]:9000/jwks", true);
        check("http://issuer.example/jwks", false);
        check("http://10.0.0.1/jwks", false);
        check("ftp://issuer.example/jwks", false);
        check("file:///etc/passwd", false);
        check("not a url", false);
    }
}
