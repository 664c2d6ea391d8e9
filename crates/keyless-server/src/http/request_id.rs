//! Request IDs: every response carries a `Request-Id` header, generated here — a caller-supplied ID is
//! never trusted. Handlers read it from the request extensions ([`RequestId`]) to put it in error
//! bodies and activity events, so a caller's report finds the full trace.
//!
//! An ID is `req_` + 24 hex digits: the time in milliseconds (48 bits), then 48 bits no one can
//! predict. Time first makes IDs ascend, so the activity feed's `request_id` index grows at its end:
//! with random IDs every recorded request dirtied a random page of that index, and each such page is a
//! 4 KiB write to the SQLite WAL at the next commit (most of what a record cost). The other 48 bits
//! (see `unpredictable`) keep IDs of the same millisecond apart and unguessable enough for
//! correlation, which is all they are for.

use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use crate::clock;

/// The header name (HTTP header names are case-insensitive; clients read `request-id`).
pub const HEADER: &str = "request-id";

/// The ID of the request being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Middleware: assigns the ID before the handler runs; after it, writes an `ApiError`'s body again
/// with the ID (`error::render`) and sets the response header. (The ID is hex, always a valid header.)
pub(super) async fn assign(mut request: Request, next: Next) -> Response {
    let id = new_id();
    let value = HeaderValue::from_str(&id).ok();
    request.extensions_mut().insert(RequestId(id));
    let mut response = next.run(request).await;
    if let Some(value) = value {
        crate::http::error::render(&mut response, value.to_str().unwrap_or_default());
        response.headers_mut().insert(HEADER, value);
    }
    response
}

/// 64 bits no caller can predict: SipHash, keyed once per process from the operating system's
/// randomness, of a counter. IDs need to be unique and not guessable, not secret, and this costs a
/// few nanoseconds, where a draw from the cryptographic generator (reseeding checks, a DRBG update)
/// was 2 % of a forward-auth check's CPU.
fn unpredictable() -> u64 {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    KEY.get_or_init(RandomState::new)
        .hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}

fn new_id() -> String {
    new_id_at(clock::now_unix_millis())
}

/// An ID for a request at `millis` (Unix milliseconds).
fn new_id_at(millis: u64) -> String {
    let random = unpredictable().to_be_bytes();
    let millis = millis.to_be_bytes();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(4 + 24);
    id.push_str("req_");
    for byte in millis.iter().skip(2).chain(random.iter().skip(2)) {
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

    #[test]
    fn ids_start_with_the_time_so_later_ids_sort_after_earlier_ones() {
        let before = clock::now_unix_millis();
        let id = new_id();
        let after = clock::now_unix_millis();
        let millis = u64::from_str_radix(id.get(4..16).unwrap_or_default(), 16).unwrap_or_default();
        assert!(
            (before..=after).contains(&millis),
            "{id}: {millis} not in {before}..={after}"
        );
        // A millisecond later sorts after, whatever the random halves.
        for _ in 0..100 {
            assert!(new_id_at(1_795_000_000_001) > new_id_at(1_795_000_000_000));
        }
        assert!(new_id_at(1_795_000_000_000).starts_with("req_01a1ee565e00"));
    }
}
