//! [`IdentityToken`]: the workload's OIDC JWT, checked for shape and kept secret.

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroize;

use crate::ClientError;

/// The workload's OIDC identity token (a JWT) that keyless verifies in an exchange.
///
/// Surrounding whitespace (a file written with `echo` ends in a newline) is removed, and the text
/// must be shaped like a compact JWS: three non-empty base64url parts separated by dots. Nothing
/// else is checked here (the signature and claims are the server's business). The text never appears
/// in `Debug` output or in error messages.
#[derive(Clone)]
pub struct IdentityToken(SecretString);

impl IdentityToken {
    /// Checks and wraps `text`; the input buffer is zeroed whether or not it is accepted.
    pub fn new(mut text: String) -> Result<Self, ClientError> {
        let checked = check_shape(text.trim()).map(|()| Self(SecretString::from(text.trim())));
        text.zeroize();
        checked.map_err(ClientError::Config)
    }

    /// The token text, for sending in an exchange.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

/// Prints no part of the token.
impl std::fmt::Debug for IdentityToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityToken(…)")
    }
}

/// Why `text` is not a compact JWS, in words that never quote it.
fn check_shape(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("the identity token is empty".to_owned());
    }
    let n_parts = text.split('.').count();
    if n_parts != 3 {
        return Err(format!(
            "the identity token is not a JWT: expected three base64url parts separated by dots, found {n_parts}"
        ));
    }
    for (part_idx, part) in text.split('.').enumerate() {
        let position = ["header", "payload", "signature"]
            .get(part_idx)
            .copied()
            .unwrap_or("part");
        if part.is_empty() {
            return Err(format!("the identity token is not a JWT: its {position} is empty"));
        }
        if !part
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        {
            return Err(format!(
                "the identity token is not a JWT: its {position} has characters outside the base64url alphabet"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;

    const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOm8vcjpyZWY6cmVmcy9oZWFkcy9tYWluIn0.c2lnbmF0dXJlLXNlY3JldA";

    fn check(input: &str, expect: Result<&str, &str>) {
        let got = IdentityToken::new(input.to_owned());
        match (got, expect) {
            (Ok(token), Ok(text)) => assert_eq!(token.expose_secret(), text, "{input:?}"),
            (Err(err), Err(message)) => {
                let err = err.to_string();
                assert!(err.contains(message), "{input:?}: {err}");
                if !input.trim().is_empty() {
                    assert!(!err.contains(input.trim()), "the error quotes the token: {err}");
                }
            }
            (got, expect) => panic!("{input:?}: got {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn tokens_are_trimmed_and_must_be_shaped_like_a_jws() {
        check(JWT, Ok(JWT));
        check(&format!("{JWT}\n"), Ok(JWT));
        check(&format!("  {JWT}\r\n\n"), Ok(JWT));
        check("", Err("the identity token is empty"));
        check(" \n\t", Err("the identity token is empty"));
        check(
            "not-a-jwt",
            Err("expected three base64url parts separated by dots, found 1"),
        );
        check("a.b", Err("found 2"));
        check("a.b.c.d.e", Err("found 5"));
        check("eyJh..c2ln", Err("its payload is empty"));
        check(".eyJ.c2ln", Err("its header is empty"));
        check("eyJh.eyJ.", Err("its signature is empty"));
        check("eyJh.ey J.c2ln", Err("outside the base64url alphabet"));
        check("eyJh.eyJ=.c2ln", Err("outside the base64url alphabet"));
        check("eyJh.eyJ+/.c2ln", Err("outside the base64url alphabet"));
    }

    #[test]
    fn debug_prints_nothing_of_the_token() {
        let token = IdentityToken::new(JWT.to_owned()).unwrap();
        let debug = format!("{token:?}");
        assert_eq!(debug, "IdentityToken(…)");
    }
}
