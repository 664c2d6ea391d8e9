//! The sources fetched over HTTP: `url`, GitHub Actions, the Google Cloud metadata server and Azure
//! IMDS. Each request has a timeout, each answer a size cap, and an error answer becomes
//! [`ClientError::Api`].

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use url::Url;

use super::{IdentityToken, MAX_TOKEN_BYTES, SourceContext};
use crate::ClientError;
use crate::transport::{api_error, checked_url, read_capped, transport};

/// How long one token request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The Google Cloud metadata server's name (google-auth's default).
const GCE_METADATA_HOST: &str = "metadata.google.internal";
/// Azure IMDS's token endpoint.
const AZURE_IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

/// What to take from the answer body.
enum Answer<'a> {
    /// The whole body is the token.
    Text,
    /// The body is a JSON object; the token is this top-level string field.
    JsonField(&'a str),
}

/// `GET url` with `headers`, returning the token in the answer.
async fn get_token(
    ctx: &SourceContext,
    url: Url,
    headers: &[(&str, &str)],
    answer: Answer<'_>,
) -> Result<IdentityToken, ClientError> {
    let what = format!("GET {}", without_query(&url));
    let mut request = ctx.http.get(url).timeout(REQUEST_TIMEOUT);
    for (name, value) in headers {
        let (name, value) = header(name, value).map_err(|err| ClientError::Config(format!("{what}: {err}")))?;
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(|err| transport(&what, err))?;
    let status = response.status();
    let request_id = response
        .headers()
        .get("x-request-id")
        .or_else(|| response.headers().get("x-ms-request-id"))
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = read_capped(response, &what, MAX_TOKEN_BYTES).await?;
    if !status.is_success() {
        return Err(api_error(what, status.as_u16(), request_id, &body));
    }
    let text = match answer {
        Answer::Text => {
            String::from_utf8(body).map_err(|_| ClientError::Decode(format!("{what}: the answer is not UTF-8 text")))?
        }
        Answer::JsonField(field) => {
            // Decoded untyped and read by hand, so that no decoding error can quote the token.
            let json: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|err| ClientError::Decode(format!("{what}: the answer is not JSON: {err}")))?;
            json.get(field)
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| ClientError::Decode(format!("{what}: the answer has no string field {field:?}")))?
                .to_owned()
        }
    };
    IdentityToken::new(text).map_err(|err| ClientError::Decode(format!("{what}: {err}")))
}

/// The `url` source: `GET url` with the configured headers.
pub(super) async fn url(
    ctx: &SourceContext,
    url: &str,
    headers: &BTreeMap<String, String>,
    json_field: Option<&str>,
) -> Result<IdentityToken, ClientError> {
    let url = checked_url(url)?;
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let answer = json_field.map_or(Answer::Text, Answer::JsonField);
    get_token(ctx, url, &headers, answer).await
}

/// GitHub Actions: `GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=…` with the request token as bearer;
/// the answer is `{"value": jwt}`. Without an audience, GitHub's default (the owner's URL) applies.
pub(super) async fn github_actions(ctx: &SourceContext, audience: Option<&str>) -> Result<IdentityToken, ClientError> {
    let request_url = ctx.env.get("ACTIONS_ID_TOKEN_REQUEST_URL");
    let request_token = ctx.env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN");
    let (Some(request_url), Some(request_token)) = (request_url, request_token) else {
        let missing: Vec<&str> = [
            ("ACTIONS_ID_TOKEN_REQUEST_URL", request_url),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", request_token),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.is_none().then_some(name))
        .collect();
        return Err(ClientError::Config(format!(
            "GitHub Actions OIDC: {} not set; the job needs `permissions: id-token: write`",
            missing.join(" and ")
        )));
    };
    let mut url = checked_url(request_url)?;
    if let Some(audience) = audience {
        url.query_pairs_mut().append_pair("audience", audience);
    }
    let bearer = format!("Bearer {request_token}");
    let headers = [("authorization", bearer.as_str()), ("accept", "application/json")];
    get_token(ctx, url, &headers, Answer::JsonField("value")).await
}

/// The Google Cloud metadata server's identity endpoint (`format=full`), at `GCE_METADATA_HOST` when set.
pub(super) async fn gcp_metadata(ctx: &SourceContext, audience: Option<&str>) -> Result<IdentityToken, ClientError> {
    let Some(audience) = audience else {
        return Err(ClientError::Config(
            "Google Cloud metadata server: an identity token needs an audience; set `audience`".to_owned(),
        ));
    };
    let host = ctx.env.get("GCE_METADATA_HOST").unwrap_or(GCE_METADATA_HOST);
    // The value is `host[:port]` and nothing else: no path, credentials, query or scheme.
    if host.contains(['/', '@', '?', '#', '\\']) || host.contains("://") {
        return Err(ClientError::Config(format!(
            "GCE_METADATA_HOST={host:?} is not a host[:port]"
        )));
    }
    // Plain http is what metadata servers speak; it is allowed for this host only.
    let mut url = Url::parse(&format!(
        "http://{host}/computeMetadata/v1/instance/service-accounts/default/identity"
    ))
    .map_err(|err| ClientError::Config(format!("GCE_METADATA_HOST={host:?} is not a host[:port]: {err}")))?;
    url.query_pairs_mut()
        .append_pair("audience", audience)
        .append_pair("format", "full");
    get_token(ctx, url, &[("metadata-flavor", "Google")], Answer::Text).await
}

/// Azure IMDS's managed-identity token endpoint (at `KEYLESS_AZURE_IMDS_ENDPOINT` when set); the
/// answer's `access_token` is an Entra-issued JWT for `audience`.
pub(super) async fn azure_imds(
    ctx: &SourceContext,
    audience: Option<&str>,
    client_id: Option<&str>,
) -> Result<IdentityToken, ClientError> {
    let Some(audience) = audience else {
        return Err(ClientError::Config(
            "Azure IMDS: a managed-identity token needs an audience (the resource); set `audience`".to_owned(),
        ));
    };
    let endpoint = ctx
        .env
        .get("KEYLESS_AZURE_IMDS_ENDPOINT")
        .unwrap_or(AZURE_IMDS_ENDPOINT);
    // Plain http is what IMDS speaks; the override is an operator's choice (tests, a proxy).
    let mut url = Url::parse(endpoint)
        .map_err(|err| ClientError::Config(format!("Azure IMDS endpoint {endpoint:?} is not a URL: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.query().is_some() {
        return Err(ClientError::Config(format!(
            "Azure IMDS endpoint {endpoint:?} must be an http(s) URL without a query"
        )));
    }
    url.query_pairs_mut()
        .append_pair("api-version", "2018-02-01")
        .append_pair("resource", audience);
    if let Some(client_id) = client_id {
        url.query_pairs_mut().append_pair("client_id", client_id);
    }
    get_token(ctx, url, &[("metadata", "true")], Answer::JsonField("access_token")).await
}

/// A request header, checked; values are marked sensitive (kept out of reqwest's `Debug`), since a
/// bearer may be among them. Errors name the header, never its value.
fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let header_name =
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("{name:?} is not a valid header name"))?;
    let mut header_value = HeaderValue::from_str(value)
        .map_err(|_| format!("the value of header {name:?} has characters a header cannot carry"))?;
    header_value.set_sensitive(true);
    Ok((header_name, header_value))
}

fn without_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}
