//! Opaque secrets keyless issues — access tokens and API keys: minted here, stored only as hashes.
//!
//! Form: `keyless_at_` (access tokens) or `keyless_ak_` (API keys) + 43 base64url characters (32 random bytes, 256 bits) + 6 base64url
//! characters of checksum (the first 4.5 bytes of SHA-256 over the prefix and the random part).
//! The fixed prefix and the checksum let a secret scanner recognise a leaked token with almost no
//! false positives, without asking the server. The store keeps `SHA-256(token)` only.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;

/// The prefix of every access token.
pub const ACCESS_TOKEN_PREFIX: &str = "keyless_at_";
/// The prefix of every API key.
pub const API_KEY_PREFIX: &str = "keyless_ak_";
const RANDOM_CHARS: usize = 43;
const CHECKSUM_CHARS: usize = 6;

/// A freshly minted token: the secret for the caller, the hash for the store.
#[derive(Debug)]
pub struct MintedToken {
    /// The token; shown once.
    pub secret: SecretString,
    /// `SHA-256(token)`.
    pub hash: Vec<u8>,
}

/// Mints an access token.
pub fn mint() -> Result<MintedToken, aws_lc_rs::error::Unspecified> {
    mint_with(ACCESS_TOKEN_PREFIX)
}

/// Mints an API key.
pub fn mint_api_key() -> Result<MintedToken, aws_lc_rs::error::Unspecified> {
    mint_with(API_KEY_PREFIX)
}

fn mint_with(prefix: &str) -> Result<MintedToken, aws_lc_rs::error::Unspecified> {
    let mut random = [0u8; 32];
    SystemRandom::new().fill(&mut random)?;
    let mut token = String::with_capacity(prefix.len() + RANDOM_CHARS + CHECKSUM_CHARS);
    token.push_str(prefix);
    token.push_str(&URL_SAFE_NO_PAD.encode(random));
    token.push_str(&checksum(&token));
    let hash = hash(&token);
    Ok(MintedToken {
        secret: SecretString::from(token),
        hash,
    })
}

/// The stored form of a token.
pub fn hash(token: &str) -> Vec<u8> {
    digest(&SHA256, token.as_bytes()).as_ref().to_vec()
}

/// A hash in lowercase hex: how token hashes appear in the activity feed.
pub fn hex(hash: &[u8]) -> String {
    hash.iter().map(|byte| format!("{byte:02x}")).collect()
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
    if body.len() != RANDOM_CHARS + CHECKSUM_CHARS
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

    #[test]
    fn minted_tokens_are_recognisable_unique_and_hashed() {
        let a = mint().unwrap();
        let b = mint().unwrap();
        let text = a.secret.expose_secret();
        assert!(
            text.starts_with(ACCESS_TOKEN_PREFIX) && text.len() == 11 + 43 + 6,
            "{text}"
        );
        assert!(looks_valid(text));
        assert_ne!(text, b.secret.expose_secret());
        assert_eq!(a.hash, hash(text));
        assert!(!format!("{a:?}").contains(text), "Debug must not show the token");
    }

    #[test]
    fn a_typo_fails_the_checksum() {
        let minted = mint().unwrap();
        let text = minted.secret.expose_secret();
        let mut chars: Vec<char> = text.chars().collect();
        let idx = ACCESS_TOKEN_PREFIX.len() + 5;
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
        assert!(!looks_like_api_key(mint().unwrap().secret.expose_secret()));
        let hint = partial_hint(text);
        assert_eq!(hint.chars().count(), 11 + 4 + 1 + 4, "{hint}");
        assert!(
            hint.starts_with(&text[..15]) && hint.ends_with(&text[text.len() - 4..]),
            "{hint}"
        );
    }
}
