//! Opaque secrets keyless issues — access tokens and API keys: minted here, stored only as hashes.
//!
//! Forms:
//! - access tokens: `keyless_at_` + 8 base64url characters of the mint time (48-bit big-endian Unix
//!   milliseconds) + 43 base64url characters (32 random bytes, 256 bits) + 6 characters of checksum;
//! - API keys: `keyless_ak_` + the 43 random characters + the checksum.
//!
//! The checksum is the first 4.5 bytes of SHA-256 over everything before it. The fixed prefix and the
//! checksum let a secret scanner recognise a leaked token with almost no false positives, without
//! asking the server.
//!
//! The store keeps a token's [`key`] only: `SHA-256(token)`, after the mint time's 6 bytes for an
//! access token. Tokens minted together have neighbouring keys, so storing a group commit's tokens
//! extends the key index at its end instead of writing one random page of it per token (on SQLite, a
//! 4 KiB WAL frame each). The time is not a secret: introspection reports it as `iat` anyway.
//! Access tokens minted before the time was added (60 characters) are still accepted until they expire,
//! and keyed by their hash alone, as they were stored.

use std::fmt::Write;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;

/// The prefix of every access token.
pub const ACCESS_TOKEN_PREFIX: &str = "keyless_at_";
/// The prefix of every API key.
pub const API_KEY_PREFIX: &str = "keyless_ak_";
const TIME_CHARS: usize = 8;
const TIME_BYTES: usize = 6;
const RANDOM_CHARS: usize = 43;
const CHECKSUM_CHARS: usize = 6;

/// A freshly minted token: the secret for the caller, its key for the store.
#[derive(Debug)]
pub struct MintedToken {
    /// The token; shown once.
    pub secret: SecretString,
    /// [`key`] of the token: what the store keeps.
    pub key: Vec<u8>,
    /// `SHA-256(token)`: how the activity feed names the token.
    pub sha256: Vec<u8>,
}

/// Mints an access token at `now_millis` (Unix milliseconds).
pub fn mint(now_millis: u64) -> Result<MintedToken, aws_lc_rs::error::Unspecified> {
    let time = now_millis.to_be_bytes();
    mint_with(
        ACCESS_TOKEN_PREFIX,
        time.get(time.len() - TIME_BYTES..).unwrap_or_default(),
    )
}

/// Mints an API key.
pub fn mint_api_key() -> Result<MintedToken, aws_lc_rs::error::Unspecified> {
    mint_with(API_KEY_PREFIX, &[])
}

fn mint_with(prefix: &str, time: &[u8]) -> Result<MintedToken, aws_lc_rs::error::Unspecified> {
    let mut random = [0u8; 32];
    SystemRandom::new().fill(&mut random)?;
    let mut token = String::with_capacity(prefix.len() + TIME_CHARS + RANDOM_CHARS + CHECKSUM_CHARS);
    token.push_str(prefix);
    token.push_str(&URL_SAFE_NO_PAD.encode(time));
    token.push_str(&URL_SAFE_NO_PAD.encode(random));
    token.push_str(&checksum(&token));
    let sha256 = hash(&token);
    let mut key = Vec::with_capacity(time.len() + sha256.len());
    key.extend_from_slice(time);
    key.extend_from_slice(&sha256);
    Ok(MintedToken {
        secret: SecretString::from(token),
        key,
        sha256,
    })
}

/// `SHA-256(token)`.
pub fn hash(token: &str) -> Vec<u8> {
    digest(&SHA256, token.as_bytes()).as_ref().to_vec()
}

/// What the store keys a token by: `SHA-256(token)`, after the 6 bytes of mint time an access token
/// carries; for anything else (API keys, access tokens of the earlier form) the hash alone.
pub fn key(token: &str) -> Vec<u8> {
    let sha256 = hash(token);
    let time = token
        .strip_prefix(ACCESS_TOKEN_PREFIX)
        .filter(|body| body.len() == TIME_CHARS + RANDOM_CHARS + CHECKSUM_CHARS)
        .and_then(|body| body.get(..TIME_CHARS))
        .and_then(|chars| URL_SAFE_NO_PAD.decode(chars).ok());
    match time {
        Some(mut key) => {
            key.extend_from_slice(&sha256);
            key
        }
        None => sha256,
    }
}

/// A hash in lowercase hex: how token hashes appear in the activity feed.
pub fn hex(hash: &[u8]) -> String {
    let mut text = String::with_capacity(hash.len() * 2);
    for byte in hash {
        // Writing to a `String` cannot fail.
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// Whether `token` has the shape and a valid checksum of a keyless access token (no lookup).
pub fn looks_valid(token: &str) -> bool {
    looks_valid_with(ACCESS_TOKEN_PREFIX, token)
}

/// Whether `key` has the shape and a valid checksum of a keyless API key (no lookup).
pub fn looks_like_api_key(key: &str) -> bool {
    looks_valid_with(API_KEY_PREFIX, key)
}

/// How an API key is shown after its creation: the prefix, the first four characters after it, `…`,
/// and the last four (`keyless_ak_AbCd…x9Yz`): enough to recognise it, far too little to use it.
pub fn partial_hint(key: &str) -> String {
    let body = key.strip_prefix(API_KEY_PREFIX).unwrap_or(key);
    let head = body.get(..4).unwrap_or_default();
    let tail = body.get(body.len().saturating_sub(4)..).unwrap_or_default();
    format!("{API_KEY_PREFIX}{head}…{tail}")
}

fn looks_valid_with(prefix: &str, token: &str) -> bool {
    let Some(body) = token.strip_prefix(prefix) else {
        return false;
    };
    let lengths: &[usize] = if prefix == ACCESS_TOKEN_PREFIX {
        // With the mint time, or without (minted by an earlier version).
        &[
            TIME_CHARS + RANDOM_CHARS + CHECKSUM_CHARS,
            RANDOM_CHARS + CHECKSUM_CHARS,
        ]
    } else {
        &[RANDOM_CHARS + CHECKSUM_CHARS]
    };
    if !lengths.contains(&body.len())
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return false;
    }
    let (head, sum) = token.split_at(token.len() - CHECKSUM_CHARS);
    checksum(head) == sum
}

fn checksum(head: &str) -> String {
    let sum = digest(&SHA256, head.as_bytes());
    let mut text = URL_SAFE_NO_PAD.encode(sum.as_ref().get(..5).unwrap_or_default());
    text.truncate(CHECKSUM_CHARS);
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use secrecy::ExposeSecret;

    use super::*;

    const T: u64 = 1_800_000_000_123;

    #[test]
    fn minted_tokens_are_recognisable_unique_and_hashed() {
        let a = mint(T).unwrap();
        let b = mint(T).unwrap();
        let text = a.secret.expose_secret();
        assert!(
            text.starts_with(ACCESS_TOKEN_PREFIX) && text.len() == 11 + 8 + 43 + 6,
            "{text}"
        );
        assert!(looks_valid(text));
        assert_ne!(text, b.secret.expose_secret());
        assert_eq!(a.sha256, hash(text));
        assert_eq!(a.sha256.len(), 32);
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(a.key, key(text), "the store finds a token by the key the minter stored");
        assert!(!format!("{a:?}").contains(text), "Debug must not show the token");
    }

    #[test]
    fn keys_of_access_tokens_sort_by_mint_time() {
        let times = [T - 1_000, T - 1, T, T + 1, T + 86_400_000];
        let keys: Vec<Vec<u8>> = times.iter().map(|&t| mint(t).unwrap().key).collect();
        for (key, time) in keys.iter().zip(times) {
            assert_eq!(
                key[..6],
                time.to_be_bytes()[2..],
                "the key starts with the 48-bit mint time"
            );
            assert_eq!(key.len(), 6 + 32);
        }
        assert!(keys.windows(2).all(|pair| pair[0] < pair[1]), "{keys:?}");
    }

    #[test]
    fn access_tokens_of_the_earlier_form_stay_valid_and_keep_their_keys() {
        // 43 random characters and the checksum, no time: how access tokens were minted before.
        let mut earlier = format!("{ACCESS_TOKEN_PREFIX}{}", "Q".repeat(43));
        earlier.push_str(&checksum(&earlier));
        assert!(looks_valid(&earlier));
        assert_eq!(key(&earlier), hash(&earlier), "stored by their hash alone");
        let api_key = mint_api_key().unwrap();
        assert_eq!(api_key.key, api_key.sha256, "API keys are keyed by their hash");
        assert_eq!(key(api_key.secret.expose_secret()), api_key.key);
    }

    #[test]
    fn a_typo_fails_the_checksum() {
        let minted = mint(T).unwrap();
        let text = minted.secret.expose_secret();
        let mut chars: Vec<char> = text.chars().collect();
        let idx = ACCESS_TOKEN_PREFIX.len() + 8 + 5;
        chars[idx] = if chars[idx] == 'A' { 'B' } else { 'A' };
        let typo: String = chars.into_iter().collect();
        assert!(!looks_valid(&typo));
        assert!(!looks_valid("keyless_at_short"));
        assert!(!looks_valid(&text.replace(ACCESS_TOKEN_PREFIX, "other_at_")));
    }

    #[test]
    fn api_keys_are_their_own_kind() {
        let key = mint_api_key().unwrap();
        let text = key.secret.expose_secret();
        assert!(text.starts_with(API_KEY_PREFIX) && text.len() == 11 + 43 + 6, "{text}");
        assert!(looks_like_api_key(text));
        assert!(!looks_valid(text), "an API key is not an access token");
        assert!(!looks_like_api_key(mint(T).unwrap().secret.expose_secret()));
        let hint = partial_hint(text);
        assert_eq!(hint.chars().count(), 11 + 4 + 1 + 4, "{hint}");
        assert!(
            hint.starts_with(&text[..15]) && hint.ends_with(&text[text.len() - 4..]),
            "{hint}"
        );
    }
}
