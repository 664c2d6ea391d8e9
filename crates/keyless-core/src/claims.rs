//! Claim validation: whether the claim set of a token whose signature already verified is acceptable
//! to an issuer and an audience at a given time.
//!
//! Parts: [`DEFAULT_LEEWAY_SECONDS`], [`ClaimExpectations`], [`ValidatedClaims`], [`validate`].
//!
//! Checks, in order, each failing with its own [`RejectionCode`]:
//! `iss` (a string equal byte for byte to the issuer's `issuer_url`), `sub` (a non-empty string),
//! `aud` (a string equal to the expected audience, or an array of strings one of which is; any other type,
//! or an array with a non-string element, is `invalid_claim`), `exp` and `iat` (required) and `nbf`
//! (optional) as numeric dates, `exp` in the future, `nbf` reached, `iat` not in the future (each with the
//! leeway), `exp ≥ iat`, `exp − iat` ≤ the issuer's maximum, and `jti` (optional, a non-empty string).
//!
//! Numeric dates are JSON numbers: integers, or finite non-integers truncated down to the second. Strings,
//! booleans, negative values and values beyond `i64` are `invalid_claim`.
//!
//! This module reads no clock (`now` is a parameter) and knows nothing of signatures or rules.

use serde_json::{Map, Value};

use crate::rejection::{Rejection, RejectionCode};

/// The leeway applied to `exp`, `nbf` and `iat`, in seconds.
pub const DEFAULT_LEEWAY_SECONDS: i64 = 30;

/// What a token's claims must satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimExpectations<'a> {
    /// The issuer's `issuer_url`, which `iss` must equal byte for byte.
    pub issuer_url: &'a str,
    /// The audience that must be `aud` or one of its elements.
    pub audience: &'a str,
    /// The issuer's `max_jwt_lifetime_seconds`.
    pub max_lifetime_seconds: i64,
    /// Clock-skew allowance for `exp`, `nbf` and `iat`.
    pub leeway_seconds: i64,
}

/// A claim set that passed [`validate`], with its registered claims read out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidatedClaims<'c> {
    /// `sub`.
    pub subject: &'c str,
    /// `iat`, in Unix seconds.
    pub issued_at: i64,
    /// `exp`, in Unix seconds.
    pub expires_at: i64,
    /// `nbf`, in Unix seconds, if present.
    pub not_before: Option<i64>,
    /// `jti`, if present.
    pub jti: Option<&'c str>,
    /// The whole claim set, for rule matching.
    pub all: &'c Map<String, Value>,
}

/// Validates `claims` against `expectations` at `now` (Unix seconds).
pub fn validate<'c>(
    claims: &'c Map<String, Value>,
    expectations: &ClaimExpectations<'_>,
    now: i64,
) -> Result<ValidatedClaims<'c>, Rejection> {
    let leeway = expectations.leeway_seconds;
    check_issuer(claims, expectations.issuer_url)?;
    let subject = check_subject(claims)?;
    check_audience(claims, expectations.audience)?;

    let expires_at = required_date(claims, "exp")?;
    let issued_at = required_date(claims, "iat")?;
    let not_before = optional_date(claims, "nbf")?;

    check_not_expired(expires_at, now, leeway)?;
    if let Some(not_before) = not_before {
        check_not_before(not_before, now, leeway)?;
    }
    check_issued_at(issued_at, now, leeway)?;
    check_lifetime(expires_at, issued_at, expectations.max_lifetime_seconds)?;
    let jti = check_jti(claims)?;

    Ok(ValidatedClaims {
        subject,
        issued_at,
        expires_at,
        not_before,
        jti,
        all: claims,
    })
}

// The checks below are shared with `crate::simulate`, which runs all of them instead of stopping at the
// first failure: one definition of each, so a simulation cannot drift from `validate`.

/// `iss`: a string equal byte for byte to `issuer_url`.
pub(crate) fn check_issuer<'c>(claims: &'c Map<String, Value>, issuer_url: &str) -> Result<&'c str, Rejection> {
    let issuer = required_string(claims, "iss")?;
    if issuer != issuer_url {
        return Err(Rejection::new(
            RejectionCode::IssuerMismatch,
            "iss",
            Some(Value::from(issuer_url)),
            Some(Value::from(issuer)),
        ));
    }
    Ok(issuer)
}

/// `sub`: a non-empty string.
pub(crate) fn check_subject(claims: &Map<String, Value>) -> Result<&str, Rejection> {
    let subject = required_string(claims, "sub")?;
    if subject.is_empty() {
        return Err(invalid("sub", "a non-empty string", claims.get("sub")));
    }
    Ok(subject)
}

/// The validity window a date check reports as its expectation.
pub(crate) fn window(now: i64, leeway: i64) -> Value {
    serde_json::json!({ "now": now, "leeway_seconds": leeway })
}

/// `exp` is not in the past (beyond the leeway).
pub(crate) fn check_not_expired(expires_at: i64, now: i64, leeway: i64) -> Result<(), Rejection> {
    if now >= expires_at.saturating_add(leeway) {
        return Err(Rejection::new(
            RejectionCode::TokenExpired,
            "exp",
            Some(window(now, leeway)),
            Some(expires_at.into()),
        ));
    }
    Ok(())
}

/// `nbf` is reached (with the leeway).
pub(crate) fn check_not_before(not_before: i64, now: i64, leeway: i64) -> Result<(), Rejection> {
    if not_before > now.saturating_add(leeway) {
        return Err(Rejection::new(
            RejectionCode::TokenNotYetValid,
            "nbf",
            Some(window(now, leeway)),
            Some(not_before.into()),
        ));
    }
    Ok(())
}

/// `iat` is not in the future (beyond the leeway).
pub(crate) fn check_issued_at(issued_at: i64, now: i64, leeway: i64) -> Result<(), Rejection> {
    if issued_at > now.saturating_add(leeway) {
        return Err(Rejection::new(
            RejectionCode::TokenIssuedInFuture,
            "iat",
            Some(window(now, leeway)),
            Some(issued_at.into()),
        ));
    }
    Ok(())
}

/// `exp ≥ iat` and `exp − iat` at most `max_lifetime_seconds`; the lifetime when both hold.
pub(crate) fn check_lifetime(expires_at: i64, issued_at: i64, max_lifetime_seconds: i64) -> Result<i64, Rejection> {
    if expires_at < issued_at {
        return Err(Rejection::new(
            RejectionCode::InvalidClaim,
            "exp",
            Some(Value::from("exp ≥ iat")),
            Some(serde_json::json!({ "iat": issued_at, "exp": expires_at })),
        ));
    }
    let lifetime = expires_at.saturating_sub(issued_at);
    if lifetime > max_lifetime_seconds {
        return Err(Rejection::new(
            RejectionCode::TokenLifetimeExceedsMaximum,
            "exp - iat",
            Some(max_lifetime_seconds.into()),
            Some(lifetime.into()),
        ));
    }
    Ok(lifetime)
}

/// `jti`: absent, or a non-empty string.
pub(crate) fn check_jti(claims: &Map<String, Value>) -> Result<Option<&str>, Rejection> {
    match claims.get("jti") {
        None => Ok(None),
        Some(Value::String(jti)) if !jti.is_empty() => Ok(Some(jti.as_str())),
        Some(other) => Err(invalid("jti", "a non-empty string", Some(other))),
    }
}

/// An optional numeric date.
pub(crate) fn optional_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, Rejection> {
    claims.get(name).map(|value| numeric_date(value, name)).transpose()
}

pub(crate) fn check_audience(claims: &Map<String, Value>, expected: &str) -> Result<(), Rejection> {
    let seen = claims.get("aud");
    let found = match seen {
        None => return Err(missing("aud")),
        Some(Value::String(audience)) => audience == expected,
        Some(Value::Array(audiences)) if audiences.iter().all(Value::is_string) => {
            audiences.iter().any(|audience| audience.as_str() == Some(expected))
        }
        Some(other) => return Err(invalid("aud", "a string or an array of strings", Some(other))),
    };
    if found {
        Ok(())
    } else {
        Err(Rejection::new(
            RejectionCode::AudienceMismatch,
            "aud",
            Some(Value::from(expected)),
            seen.cloned(),
        ))
    }
}

fn required_string<'c>(claims: &'c Map<String, Value>, name: &str) -> Result<&'c str, Rejection> {
    match claims.get(name) {
        None => Err(missing(name)),
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(invalid(name, "a string", Some(other))),
    }
}

pub(crate) fn required_date(claims: &Map<String, Value>, name: &str) -> Result<i64, Rejection> {
    claims
        .get(name)
        .map_or_else(|| Err(missing(name)), |value| numeric_date(value, name))
}

/// A JSON number of seconds since the epoch: a non-negative integer, or a finite non-negative
/// non-integer truncated down, within `i64`.
fn numeric_date(value: &Value, name: &str) -> Result<i64, Rejection> {
    let seconds = match value {
        Value::Number(number) => number.as_i64().or_else(|| {
            // Not an i64: a float (possibly integral but written with a fraction or exponent), or an
            // integer beyond i64. `2^63` is the first float that does not fit.
            number
                .as_f64()
                .filter(|f| f.is_finite() && *f < 9_223_372_036_854_775_808.0)
                .map(|f| f.floor() as i64)
        }),
        _ => None,
    };
    seconds
        .filter(|seconds| *seconds >= 0)
        .ok_or_else(|| invalid(name, "a non-negative JSON number of seconds", Some(value)))
}

fn missing(name: &str) -> Rejection {
    Rejection::new(RejectionCode::MissingClaim, name, None, None)
}

fn invalid(name: &str, expected: &str, seen: Option<&Value>) -> Rejection {
    Rejection::new(
        RejectionCode::InvalidClaim,
        name,
        Some(Value::from(expected)),
        seen.cloned(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_760_000_000;
    const ISSUER: &str = "https://issuer.example";

    fn base() -> Value {
        json!({
            "iss": ISSUER, "sub": "workload", "aud": "https://keyless.example",
            "iat": NOW - 10, "exp": NOW + 290, "nbf": NOW - 10, "jti": "j-1",
        })
    }

    /// Validates `base()` with `changes` applied (`null` removes a claim); `expect` is `Ok(())` or the
    /// code, check and seen value.
    fn check(changes: Value, expect: Result<(), (&str, &str, Option<Value>)>) {
        let mut claims = base().as_object().unwrap().clone();
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.remove(name);
            } else {
                claims.insert(name.clone(), value.clone());
            }
        }
        let expectations = ClaimExpectations {
            issuer_url: ISSUER,
            audience: "https://keyless.example",
            max_lifetime_seconds: 3600,
            leeway_seconds: DEFAULT_LEEWAY_SECONDS,
        };
        let res = validate(&claims, &expectations, NOW).map(|_| ());
        let res = res.map_err(|r| (r.code().as_str(), r.detail().check.clone(), r.detail().seen.clone()));
        let expect = expect.map_err(|(code, check, seen)| (code, check.to_owned(), seen));
        assert_eq!(res, expect, "{changes}");
    }

    #[test]
    fn accepts_a_good_token() {
        check(json!({}), Ok(()));
        check(json!({ "nbf": null, "jti": null }), Ok(()));
        check(json!({ "aud": ["other", "https://keyless.example"] }), Ok(()));
        check(
            json!({ "exp": (NOW + 290) as f64 + 0.5, "iat": (NOW - 10) as f64 }),
            Ok(()),
        );
    }

    #[test]
    fn issuer_is_byte_exact() {
        check(
            json!({ "iss": "https://issuer.example/" }),
            Err(("issuer_mismatch", "iss", Some(json!("https://issuer.example/")))),
        );
        check(
            json!({ "iss": "https://ISSUER.example" }),
            Err(("issuer_mismatch", "iss", Some(json!("https://ISSUER.example")))),
        );
        check(json!({ "iss": null }), Err(("missing_claim", "iss", None)));
        check(json!({ "iss": 1 }), Err(("invalid_claim", "iss", Some(json!(1)))));
    }

    #[test]
    fn subject_is_a_non_empty_string() {
        check(json!({ "sub": null }), Err(("missing_claim", "sub", None)));
        check(json!({ "sub": "" }), Err(("invalid_claim", "sub", Some(json!("")))));
        check(json!({ "sub": 42 }), Err(("invalid_claim", "sub", Some(json!(42)))));
    }

    #[test]
    fn audience() {
        check(
            json!({ "aud": "other" }),
            Err(("audience_mismatch", "aud", Some(json!("other")))),
        );
        check(json!({ "aud": [] }), Err(("audience_mismatch", "aud", Some(json!([])))));
        check(
            json!({ "aud": ["a", 1] }),
            Err(("invalid_claim", "aud", Some(json!(["a", 1])))),
        );
        check(
            json!({ "aud": { "a": 1 } }),
            Err(("invalid_claim", "aud", Some(json!({ "a": 1 })))),
        );
        check(json!({ "aud": null }), Err(("missing_claim", "aud", None)));
    }

    #[test]
    fn dates_with_leeway() {
        check(json!({ "exp": NOW - 29, "iat": NOW - 100 }), Ok(()));
        check(
            json!({ "exp": NOW - 30, "iat": NOW - 100 }),
            Err(("token_expired", "exp", Some(json!(NOW - 30)))),
        );
        check(json!({ "nbf": NOW + 30 }), Ok(()));
        check(
            json!({ "nbf": NOW + 31 }),
            Err(("token_not_yet_valid", "nbf", Some(json!(NOW + 31)))),
        );
        check(json!({ "iat": NOW + 30 }), Ok(()));
        check(
            json!({ "iat": NOW + 31 }),
            Err(("token_issued_in_future", "iat", Some(json!(NOW + 31)))),
        );
        check(
            json!({ "iat": NOW + 20, "exp": NOW + 10 }),
            Err((
                "invalid_claim",
                "exp",
                Some(json!({ "iat": NOW + 20, "exp": NOW + 10 })),
            )),
        );
        check(json!({ "iat": NOW - 10, "exp": NOW - 10 + 3600 }), Ok(()));
        check(
            json!({ "iat": NOW - 10, "exp": NOW - 10 + 3601 }),
            Err(("token_lifetime_exceeds_maximum", "exp - iat", Some(json!(3601)))),
        );
    }

    #[test]
    fn numeric_dates_are_non_negative_json_numbers() {
        check(json!({ "exp": null }), Err(("missing_claim", "exp", None)));
        check(json!({ "iat": null }), Err(("missing_claim", "iat", None)));
        check(
            json!({ "exp": (NOW + 10).to_string() }),
            Err(("invalid_claim", "exp", Some(json!((NOW + 10).to_string())))),
        );
        check(json!({ "exp": true }), Err(("invalid_claim", "exp", Some(json!(true)))));
        check(json!({ "iat": -1 }), Err(("invalid_claim", "iat", Some(json!(-1)))));
        check(json!({ "iat": -0.5 }), Err(("invalid_claim", "iat", Some(json!(-0.5)))));
        check(
            json!({ "exp": 1e300 }),
            Err(("invalid_claim", "exp", Some(json!(1e300)))),
        );
        check(
            json!({ "exp": u64::MAX }),
            Err(("invalid_claim", "exp", Some(json!(u64::MAX)))),
        );
        check(json!({ "nbf": "0" }), Err(("invalid_claim", "nbf", Some(json!("0")))));
    }

    #[test]
    fn jti_is_an_optional_non_empty_string() {
        check(json!({ "jti": "" }), Err(("invalid_claim", "jti", Some(json!("")))));
        check(json!({ "jti": 7 }), Err(("invalid_claim", "jti", Some(json!(7)))));
    }

    #[test]
    fn extreme_dates_do_not_overflow() {
        let claims = json!({ "iss": ISSUER, "sub": "s", "aud": "a", "iat": 0, "exp": i64::MAX });
        let expectations = ClaimExpectations {
            issuer_url: ISSUER,
            audience: "a",
            max_lifetime_seconds: i64::MAX,
            leeway_seconds: i64::MAX,
        };
        assert!(validate(claims.as_object().unwrap(), &expectations, 0).is_ok());
    }
}
