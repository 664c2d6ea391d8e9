//! Fetching a JWKS document over HTTP(S).
//!
//! The URL must be `https`, except on loopback hosts (`localhost`, `127.0.0.0/8`, `::1`) where
//! `http` is allowed for local development. The body is read with a size cap, redirects are not
//! followed, and connect and total timeouts bound the wait.

use std::time::Duration;

use keyless_jose::Jwks;

use crate::ClientError;
use crate::transport::{api_error, checked_url, read_capped, transport};

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
    let response = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/jwk-set+json, application/json")
        .send()
        .await
        .map_err(|err| transport(&format!("fetching {url}"), err))?;
    let status = response.status();
    let body = read_capped(response, url.as_str(), MAX_JWKS_BYTES).await?;
    if !status.is_success() {
        return Err(api_error(format!("GET {url}"), status.as_u16(), None, &body));
    }
    Jwks::from_json(&body).map_err(|err| ClientError::Decode(format!("{url}: {err}")))
}
