//! The HTTP rules every outbound call shares: the URL policy (https, except plain http on loopback
//! hosts for local development), body reads with a size cap, and the mapping of failures onto
//! [`ClientError`].

use std::net::IpAddr;

use url::{Host, Url};

use crate::{ApiError, ClientError};

/// Parses `url` and refuses plain `http` outside loopback (`localhost`, `127.0.0.0/8`, `::1`).
pub(crate) fn checked_url(url: &str) -> Result<Url, ClientError> {
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

/// Whether `url`'s host is a loopback name or address.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// A transport failure while `context`.
pub(crate) fn transport(context: &str, err: reqwest::Error) -> ClientError {
    ClientError::Transport {
        context: context.to_owned(),
        source: Box::new(err),
    }
}

/// Reads the whole body, refusing more than `cap` bytes.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    what: &str,
    cap: usize,
) -> Result<Vec<u8>, ClientError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| transport(&format!("reading {what}"), err))?
    {
        if body.len() + chunk.len() > cap {
            return Err(ClientError::Decode(format!(
                "{what}: the answer is larger than {cap} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The [`ApiError`] for an error answer: `status`, the `Request-Id` header and the body as read.
pub(crate) fn api_error(what: String, status: u16, request_id: Option<String>, body: &[u8]) -> ClientError {
    let decoded: Option<serde_json::Value> = serde_json::from_slice(body).ok().filter(serde_json::Value::is_object);
    let Some(json) = decoded else {
        let text = String::from_utf8_lossy(body.get(..512).unwrap_or(body)).into_owned();
        return ClientError::Api(Box::new(ApiError {
            url: what,
            status,
            kind: None,
            code: None,
            message: (!text.trim().is_empty()).then(|| text.trim().to_owned()),
            request_id,
            body: serde_json::Value::String(text),
        }));
    };
    let text = |value: Option<&serde_json::Value>| value.and_then(serde_json::Value::as_str).map(str::to_owned);
    let nested = json.get("error").filter(|error| error.is_object());
    let (kind, code, message) = match nested {
        Some(error) => (
            text(error.get("type")),
            text(error.get("code")),
            text(error.get("message")),
        ),
        None => (
            text(json.get("error")),
            text(json.get("error_code")),
            text(json.get("error_description")),
        ),
    };
    ClientError::Api(Box::new(ApiError {
        url: what,
        status,
        kind,
        code,
        message,
        request_id: request_id.or_else(|| text(json.get("request_id"))),
        body: json,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

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
        check("http://localhost.evil.example/", false);
        check("ftp://issuer.example/jwks", false);
        check("file:///etc/passwd", false);
        check("not a url", false);
    }

    fn decoded(body: &str) -> ApiError {
        match api_error("POST /x".to_owned(), 400, None, body.as_bytes()) {
            ClientError::Api(error) => *error,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn both_error_shapes_decode() {
        let admin = decoded(
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"name: already in use"},"request_id":"req_1"}"#,
        );
        assert_eq!(admin.kind.as_deref(), Some("invalid_request_error"));
        assert_eq!(admin.message.as_deref(), Some("name: already in use"));
        assert_eq!(admin.request_id.as_deref(), Some("req_1"));
        assert_eq!(admin.code, None);
        let refused = decoded(
            r#"{"type":"error","error":{"type":"invalid_request_error","code":"tenant_not_pinned","message":"match: pin the tenant"},"request_id":"req_3"}"#,
        );
        assert_eq!(refused.code.as_deref(), Some("tenant_not_pinned"));
        let oauth = decoded(
            r#"{"error":"invalid_grant","error_description":"the token's audience is not accepted","error_code":"audience_mismatch","request_id":"req_2"}"#,
        );
        assert_eq!(oauth.kind.as_deref(), Some("invalid_grant"));
        assert_eq!(oauth.code.as_deref(), Some("audience_mismatch"));
        assert_eq!(
            oauth.to_string(),
            "POST /x answered HTTP 400 invalid_grant (audience_mismatch): the token's audience is not accepted [request req_2]"
        );
        let html = decoded("<html>bad gateway</html>");
        assert_eq!(html.kind, None);
        assert_eq!(html.message.as_deref(), Some("<html>bad gateway</html>"));
    }
}
