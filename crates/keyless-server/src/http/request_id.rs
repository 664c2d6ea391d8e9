//! Request IDs: every response carries a `Request-Id` header (`req_` + 96 random bits, in hex),
//! generated here — a caller-supplied ID is never trusted. Handlers read it from the request
//! extensions ([`RequestId`]) to put it in error bodies and activity events, so a caller's report
//! finds the full trace.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// The header name (HTTP header names are case-insensitive; clients read `request-id`).
pub const HEADER: &str = "request-id";

/// The ID of the request being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Middleware: assigns the ID before the handler runs and sets the response header after.
pub(super) async fn assign(mut request: Request, next: Next) -> Response {
    let id = new_id();
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

fn new_id() -> String {
    let mut bytes = [0u8; 12];
    // An all-zero ID on RNG failure still answers the request; IDs are for correlation, not secrecy.
    let _ = SystemRandom::new().fill(&mut bytes);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(4 + 24);
    id.push_str("req_");
    for byte in bytes {
        // A nibble indexes the 16-entry table; no `format!` (an allocation) per byte.
        for nibble in [byte >> 4, byte & 0xf] {
            id.push(char::from(HEX.get(usize::from(nibble)).copied().unwrap_or(b'0')));
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_req_and_24_lowercase_hex_digits_and_differ() {
        let (first, second) = (new_id(), new_id());
        for id in [&first, &second] {
            let hex = id.strip_prefix("req_").unwrap_or_default();
            assert_eq!(hex.len(), 24, "{id}");
            assert!(
                hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{id}"
            );
        }
        assert_ne!(first, second);
    }
}
