//! Unpadded base64url (RFC 7515 §2): the one encoding of every JOSE segment and JWK member.
//!
//! Decoding is canonical: padding, the standard alphabet, whitespace and non-zero trailing bits
//! are all refused, so one byte string has exactly one accepted encoding.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Decodes canonical unpadded base64url.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD.decode(text)
}

/// Encodes as unpadded base64url.
pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_is_canonical() {
        assert_eq!(decode("YQ").ok(), Some(b"a".to_vec()));
        for bad in ["YQ==", "YR", "Y Q", "YQ\n", "+/", "a"] {
            assert!(decode(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
