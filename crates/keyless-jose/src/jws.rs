//! Compact JWS and JWT verification (RFC 7515, RFC 7519), strict by construction.
//!
//! Reading order of a token, each step refusing with a typed [`JwsError`]:
//! 1. size limit, then compact form (exactly three canonical base64url segments);
//! 2. the protected header: strict JSON object, `alg` an accepted asymmetric algorithm,
//!    no `crit`, no unencoded payload (`b64`), `kid` a string when present;
//! 3. key selection from the caller's [`Jwks`] only (`jwk`, `jku`, `x5u`, `x5c` headers are
//!    never read): by `kid`, and without `kid` only when exactly one key fits the algorithm;
//!    the key must fit the header `alg` by type, curve and its own `alg`;
//! 4. the signature over the signing input, with the exact length the algorithm requires;
//! 5. for a JWT, only after the signature holds: the payload as a strict JSON object.
//!
//! Claims (`iss`, `exp`, …) are not judged here: that is `keyless-core`'s job.

use serde_json::{Map, Value};

use crate::algorithm::Algorithm;
use crate::jwk::{Jwk, Jwks};
use crate::{b64, json};

/// Bounds applied to untrusted tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted compact token, in bytes (default 16 KiB).
    pub max_token_bytes: usize,
    /// Deepest accepted nesting of objects and arrays in the header and the payload (default 16).
    pub max_json_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_token_bytes: 16 * 1024,
            max_json_depth: 16,
        }
    }
}

/// Which part of a compact JWS a structural error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    /// The protected header.
    Header,
    /// The payload.
    Payload,
    /// The signature.
    Signature,
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Segment::Header => "header",
            Segment::Payload => "payload",
            Segment::Signature => "signature",
        })
    }
}

/// Why a token was refused. Each variant is one decision a person can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// The token is larger than the limit.
    #[error("token is {size} bytes; the limit is {limit}")]
    TooLarge {
        /// The token's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The token uses the JWS JSON serialization; only the compact form is accepted.
    #[error("token uses the JWS JSON serialization; only the compact form (header.payload.signature) is accepted")]
    JsonSerialization,
    /// The token does not have exactly three dot-separated segments.
    #[error("token has {0} dot-separated segments; a compact JWS has exactly 3")]
    Segments(usize),
    /// A segment is not canonical unpadded base64url.
    #[error("{0} is not unpadded base64url")]
    Base64(Segment),
    /// A segment is not strict JSON.
    #[error("{segment} is not valid JSON: {detail}")]
    InvalidJson {
        /// The segment.
        segment: Segment,
        /// The parser's explanation.
        detail: String,
    },
    /// A segment is JSON but not an object.
    #[error("{0} is not a JSON object")]
    NotAnObject(Segment),
    /// A member name occurs twice in one object.
    #[error("{segment} has member {name:?} more than once")]
    DuplicateMember {
        /// The segment.
        segment: Segment,
        /// The repeated name.
        name: String,
    },
    /// JSON nested deeper than the limit.
    #[error("{segment} nests objects and arrays deeper than {limit} levels")]
    TooDeep {
        /// The segment.
        segment: Segment,
        /// The limit.
        limit: usize,
    },
    /// A string contains U+0000.
    #[error("{0} contains a NUL character in a string")]
    NulInString(Segment),
    /// The header has no `alg`, or it is not a string.
    #[error("header has no \"alg\" string")]
    AlgMissing,
    /// `alg` is `none` (in any spelling): unsigned tokens are never accepted.
    #[error("alg {0:?} means an unsigned token; it is never accepted")]
    AlgNone(String),
    /// `alg` is a symmetric (HMAC) algorithm: refused by policy.
    #[error("alg {0:?} is symmetric; keyless accepts only asymmetric signatures (RS*, PS*, ES*, EdDSA)")]
    AlgSymmetric(String),
    /// `alg` names no accepted algorithm.
    #[error("alg {0:?} is not accepted (accepted: RS256/384/512, PS256/384/512, ES256/384/512, EdDSA)")]
    AlgUnsupported(String),
    /// The header has `crit`: keyless understands no JWS extension.
    #[error("header has \"crit\"; keyless understands no critical extension")]
    CritUnsupported,
    /// The header asks for an unencoded payload (`b64: false`, RFC 7797).
    #[error("header has \"b64\" (unencoded payload, RFC 7797); it is not accepted")]
    B64Unsupported,
    /// `kid` is present but not a string.
    #[error("header \"kid\" must be a string")]
    InvalidKid,
    /// No key in the JWKS has this `kid`, or (without `kid`) none fits the algorithm.
    #[error("{}", kid_not_found_message(.kid.as_deref(), *.alg))]
    KidNotFound {
        /// The header's `kid`, if any.
        kid: Option<String>,
        /// The header's algorithm.
        alg: Algorithm,
    },
    /// The key cannot be chosen unambiguously.
    #[error("{count} keys fit alg {alg}{}; name the key with a unique \"kid\"", kid_suffix(.kid.as_deref()))]
    KidAmbiguous {
        /// The header's `kid`, if any.
        kid: Option<String>,
        /// The header's algorithm.
        alg: Algorithm,
        /// How many keys fit.
        count: usize,
    },
    /// The selected key cannot verify the header's algorithm (key type, curve, or its own `alg`).
    #[error("key {kid:?} ({key}) cannot verify alg {alg}")]
    KeyAlgorithmMismatch {
        /// The key's `kid`.
        kid: String,
        /// The key's type, size or curve, and `alg` restriction.
        key: String,
        /// The header's algorithm.
        alg: Algorithm,
    },
    /// The signature has the wrong length for the algorithm and key.
    #[error("signature is {found} bytes; {alg} with this key needs {expected}")]
    BadSignatureLength {
        /// The algorithm.
        alg: Algorithm,
        /// The required length.
        expected: usize,
        /// The actual length.
        found: usize,
    },
    /// The signature does not verify.
    #[error("signature does not verify with key {key_thumbprint}")]
    BadSignature {
        /// The RFC 7638 thumbprint of the key that was tried.
        key_thumbprint: String,
    },
}

fn kid_suffix(kid: Option<&str>) -> String {
    kid.map(|kid| format!(" with kid {kid:?}")).unwrap_or_default()
}

fn kid_not_found_message(kid: Option<&str>, alg: Algorithm) -> String {
    match kid {
        Some(kid) => format!("no key with kid {kid:?} in the issuer's JWKS"),
        None => format!("token has no kid and no key in the issuer's JWKS fits alg {alg}"),
    }
}

impl JwsError {
    /// A stable code for error bodies, activity events and tests.
    pub fn code(&self) -> &'static str {
        match self {
            JwsError::TooLarge { .. } => "token_too_large",
            JwsError::JsonSerialization => "json_serialization",
            JwsError::Segments(_) => "malformed_segments",
            JwsError::Base64(_) => "invalid_base64",
            JwsError::InvalidJson { .. } => "invalid_json",
            JwsError::NotAnObject(_) => "not_a_json_object",
            JwsError::DuplicateMember { .. } => "duplicate_member",
            JwsError::TooDeep { .. } => "json_too_deep",
            JwsError::NulInString(_) => "nul_in_string",
            JwsError::AlgMissing => "alg_missing",
            JwsError::AlgNone(_) => "alg_none",
            JwsError::AlgSymmetric(_) => "alg_symmetric",
            JwsError::AlgUnsupported(_) => "alg_unsupported",
            JwsError::CritUnsupported => "crit_unsupported",
            JwsError::B64Unsupported => "b64_unsupported",
            JwsError::InvalidKid => "invalid_kid",
            JwsError::KidNotFound { .. } => "kid_not_found",
            JwsError::KidAmbiguous { .. } => "kid_ambiguous",
            JwsError::KeyAlgorithmMismatch { .. } => "key_algorithm_mismatch",
            JwsError::BadSignatureLength { .. } => "bad_signature_length",
            JwsError::BadSignature { .. } => "bad_signature",
        }
    }
}

/// The accepted protected header of a verified token.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// The signature algorithm.
    pub alg: Algorithm,
    /// The key ID, when present.
    pub kid: Option<String>,
    /// The media type (`typ`), when present as a string.
    pub typ: Option<String>,
    /// Every header member, as sent.
    pub raw: Map<String, Value>,
}

/// A token's header and payload decoded without any signature check — for display and for
/// recording what a refused token claimed. Never base a decision on it.
#[derive(Clone, Debug, PartialEq)]
pub struct Unverified {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The payload bytes.
    pub payload: Vec<u8>,
}

impl Unverified {
    /// The payload as a strict JSON object (the claims of a JWT).
    pub fn claims(&self, limits: &Limits) -> Result<Map<String, Value>, JwsError> {
        parse_object(Segment::Payload, &self.payload, limits)
    }
}

/// A JWS whose signature verified with a key of the caller's JWKS.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedJws {
    /// The accepted header.
    pub header: Header,
    /// The payload bytes.
    pub payload: Vec<u8>,
    /// The RFC 7638 thumbprint of the key that verified it.
    pub key_thumbprint: String,
}

/// A JWT whose signature verified and whose payload is a JSON object. Its claims are not yet judged.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedJwt {
    /// The accepted header.
    pub header: Header,
    /// The claims.
    pub claims: Map<String, Value>,
    /// The RFC 7638 thumbprint of the key that verified it.
    pub key_thumbprint: String,
}

/// A compact token split and decoded, before any policy on the header.
struct Compact<'a> {
    signing_input: &'a str,
    header: Map<String, Value>,
    payload_b64: &'a str,
    signature: Vec<u8>,
}

fn split<'t>(token: &'t str, limits: &Limits) -> Result<Compact<'t>, JwsError> {
    if token.len() > limits.max_token_bytes {
        return Err(JwsError::TooLarge {
            size: token.len(),
            limit: limits.max_token_bytes,
        });
    }
    if token.trim_start().starts_with('{') {
        return Err(JwsError::JsonSerialization);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Segments(token.split('.').count()));
    };
    let header_bytes = b64::decode(header_b64).map_err(|_| JwsError::Base64(Segment::Header))?;
    let signature = b64::decode(signature_b64).map_err(|_| JwsError::Base64(Segment::Signature))?;
    let header = parse_object(Segment::Header, &header_bytes, limits)?;
    let signing_input_len = header_b64.len() + 1 + payload_b64.len();
    Ok(Compact {
        signing_input: token.get(..signing_input_len).unwrap_or_default(),
        header,
        payload_b64,
        signature,
    })
}

fn parse_object(segment: Segment, bytes: &[u8], limits: &Limits) -> Result<Map<String, Value>, JwsError> {
    json::parse_object(bytes, limits.max_json_depth).map_err(|fault| match fault {
        json::ObjectFault::NotAnObject => JwsError::NotAnObject(segment),
        json::ObjectFault::Json(json::JsonFault::Syntax(detail)) => JwsError::InvalidJson { segment, detail },
        json::ObjectFault::Json(json::JsonFault::DuplicateMember(name)) => JwsError::DuplicateMember { segment, name },
        json::ObjectFault::Json(json::JsonFault::TooDeep(limit)) => JwsError::TooDeep { segment, limit },
        json::ObjectFault::Json(json::JsonFault::NulInString) => JwsError::NulInString(segment),
    })
}

/// Decodes a compact token's header and payload without checking its signature or any
/// algorithm policy: for `keyless token inspect` and for recording what a refused token claimed.
pub fn decode_unverified(token: &str, limits: &Limits) -> Result<Unverified, JwsError> {
    let compact = split(token, limits)?;
    let payload = b64::decode(compact.payload_b64).map_err(|_| JwsError::Base64(Segment::Payload))?;
    Ok(Unverified {
        header: compact.header,
        payload,
    })
}

fn accept_header(raw: Map<String, Value>) -> Result<Header, JwsError> {
    let alg_name = raw.get("alg").and_then(Value::as_str).ok_or(JwsError::AlgMissing)?;
    let alg = match Algorithm::from_name(alg_name) {
        Some(alg) => alg,
        None if alg_name.eq_ignore_ascii_case("none") => return Err(JwsError::AlgNone(alg_name.to_owned())),
        None if alg_name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("hs")) => {
            return Err(JwsError::AlgSymmetric(alg_name.to_owned()));
        }
        None => return Err(JwsError::AlgUnsupported(alg_name.to_owned())),
    };
    if raw.contains_key("crit") {
        return Err(JwsError::CritUnsupported);
    }
    if raw.get("b64").is_some_and(|b64| b64 != &Value::Bool(true)) {
        return Err(JwsError::B64Unsupported);
    }
    let kid = match raw.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(JwsError::InvalidKid),
    };
    let typ = raw.get("typ").and_then(Value::as_str).map(str::to_owned);
    Ok(Header { alg, kid, typ, raw })
}

/// Chooses the one key of `jwks` that may verify a token with this header.
fn select_key<'k>(jwks: &'k Jwks, header: &Header) -> Result<&'k Jwk, JwsError> {
    let alg = header.alg;
    let kid = header.kid.as_deref();
    let mut named = jwks
        .keys()
        .iter()
        .filter(|jwk| kid.is_none() || jwk.kid() == kid)
        .peekable();
    let first_named = named.peek().copied();
    let mut fitting = named.filter(|jwk| jwk.fits(alg));
    match (fitting.next(), fitting.next(), first_named) {
        (Some(jwk), None, _) => Ok(jwk),
        (Some(_), Some(_), _) => Err(JwsError::KidAmbiguous {
            kid: kid.map(str::to_owned),
            alg,
            count: 2 + fitting.count(),
        }),
        // A key carries this kid but cannot verify this algorithm.
        (None, _, Some(jwk)) if kid.is_some() => Err(JwsError::KeyAlgorithmMismatch {
            kid: jwk.kid().unwrap_or_default().to_owned(),
            key: match jwk.alg() {
                Some(key_alg) => format!("{}, alg {key_alg}", jwk.describe()),
                None => jwk.describe(),
            },
            alg,
        }),
        (None, _, _) => Err(JwsError::KidNotFound {
            kid: kid.map(str::to_owned),
            alg,
        }),
    }
}

/// Verifies `signature` over `message` with `jwk` under `alg` — the primitive step of
/// [`verify_jws`], public so that primitive test vectors run through the same code.
pub fn verify_signature(jwk: &Jwk, alg: Algorithm, message: &[u8], signature: &[u8]) -> Result<(), JwsError> {
    let Some(key) = jwk.verifier(alg) else {
        return Err(JwsError::KeyAlgorithmMismatch {
            kid: jwk.kid().unwrap_or_default().to_owned(),
            key: jwk.describe(),
            alg,
        });
    };
    let expected = jwk.signature_len(alg);
    if signature.len() != expected {
        return Err(JwsError::BadSignatureLength {
            alg,
            expected,
            found: signature.len(),
        });
    }
    key.verify_sig(message, signature).map_err(|_| JwsError::BadSignature {
        key_thumbprint: jwk.thumbprint().to_owned(),
    })
}

/// Verifies a compact JWS with a key of `jwks`. The payload may be any bytes.
pub fn verify_jws(token: &str, jwks: &Jwks, limits: &Limits) -> Result<VerifiedJws, JwsError> {
    let compact = split(token, limits)?;
    let header = accept_header(compact.header)?;
    let jwk = select_key(jwks, &header)?;
    verify_signature(jwk, header.alg, compact.signing_input.as_bytes(), &compact.signature)?;
    let payload = b64::decode(compact.payload_b64).map_err(|_| JwsError::Base64(Segment::Payload))?;
    Ok(VerifiedJws {
        header,
        payload,
        key_thumbprint: jwk.thumbprint().to_owned(),
    })
}

/// Verifies a compact JWT with a key of `jwks`; its payload must be a strict JSON object.
pub fn verify_jwt(token: &str, jwks: &Jwks, limits: &Limits) -> Result<VerifiedJwt, JwsError> {
    let jws = verify_jws(token, jwks, limits)?;
    let claims = parse_object(Segment::Payload, &jws.payload, limits)?;
    Ok(VerifiedJwt {
        header: jws.header,
        claims,
        key_thumbprint: jws.key_thumbprint,
    })
}
