//! Public keys: one JWK (RFC 7517) and a JWKS, parsed strictly and ready to verify.
//!
//! A [`Jwk`] is validated once, when it is parsed: key type, curve, size, exponent, point on
//! the curve, intended use, and agreement between its `alg` and its key. It then holds one
//! pre-parsed `aws-lc-rs` verification key per algorithm it may be used with, so verifying a
//! signature does no key parsing. A [`Jwks`] keeps every usable key and records why each
//! unusable one was skipped (one odd key in an issuer's set must not take the issuer down).
//!
//! Private members (`d`, `p`, …) are ignored: only the public part is ever read.

use std::fmt;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use serde_json::{Map, Value};

use crate::algorithm::{Algorithm, Curve, KeyFamily};
use crate::{b64, json};

/// Maximum nesting of a JWKS document (`{"keys":[{…"key_ops":[…]}]}` needs 3).
const JWKS_MAX_DEPTH: usize = 8;
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;

/// Why a JWK cannot be used to verify signatures.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    /// `kty` is missing, or names a key type keyless does not verify with (`oct` — symmetric
    /// keys are refused by policy — or anything unregistered).
    #[error("key type {0:?} is not accepted (use RSA, EC or OKP/Ed25519)")]
    UnsupportedKty(String),
    /// `use` is not `sig`, or `key_ops` does not include `verify`.
    #[error("key is not meant for verifying signatures ({0})")]
    NotForSigning(String),
    /// `alg` names no accepted asymmetric algorithm.
    #[error("key alg {0:?} is not an accepted algorithm")]
    UnknownAlg(String),
    /// `alg` does not fit the key's type or curve.
    #[error("key alg {alg} does not fit a {key} key")]
    AlgKeyMismatch {
        /// The key's `alg`.
        alg: Algorithm,
        /// The key's type and curve.
        key: String,
    },
    /// The RSA modulus is shorter than 2048 bits.
    #[error("RSA key has {0} bits; at least 2048 are required")]
    RsaTooSmall(usize),
    /// The RSA modulus is longer than 8192 bits.
    #[error("RSA key has {0} bits; at most 8192 are accepted")]
    RsaTooLarge(usize),
    /// The RSA public exponent is even, 1, or longer than 64 bits.
    #[error("RSA public exponent is unusable (it must be odd, greater than 1 and at most 64 bits)")]
    RsaBadExponent,
    /// The RSA modulus carries the ROCA fingerprint (CVE-2017-15361): its private key can be recovered.
    #[error("RSA modulus has the ROCA fingerprint (CVE-2017-15361); regenerate the key")]
    RsaRoca,
    /// `crv` names a curve keyless does not verify with.
    #[error("curve {0:?} is not accepted (use P-256, P-384, P-521 or Ed25519)")]
    UnsupportedCurve(String),
    /// A coordinate has the wrong length for its curve.
    #[error("{member} must be {expected} bytes for {curve}, found {found}")]
    BadCoordinate {
        /// `x` or `y`.
        member: &'static str,
        /// The curve.
        curve: &'static str,
        /// The required length.
        expected: usize,
        /// The decoded length.
        found: usize,
    },
    /// The point is not on the curve (or is the point at infinity).
    #[error("the public point is not on curve {0}")]
    PointInvalid(&'static str),
    /// A member is missing, of the wrong JSON type, or not valid base64url.
    #[error("member {member}: {problem}")]
    BadMember {
        /// The member name.
        member: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The JWK is not a JSON object (or not strict JSON).
    #[error("not a JSON object: {0}")]
    NotAnObject(String),
}

impl JwkError {
    /// A stable code for logs, activity events and tests.
    pub fn code(&self) -> &'static str {
        match self {
            JwkError::UnsupportedKty(_) => "unsupported_kty",
            JwkError::NotForSigning(_) => "not_for_signing",
            JwkError::UnknownAlg(_) => "unknown_alg",
            JwkError::AlgKeyMismatch { .. } => "alg_key_mismatch",
            JwkError::RsaTooSmall(_) => "rsa_too_small",
            JwkError::RsaTooLarge(_) => "rsa_too_large",
            JwkError::RsaBadExponent => "rsa_bad_exponent",
            JwkError::RsaRoca => "rsa_roca",
            JwkError::UnsupportedCurve(_) => "ec_unsupported_curve",
            JwkError::BadCoordinate { .. } => "ec_bad_coordinate",
            JwkError::PointInvalid(_) => "ec_point_invalid",
            JwkError::BadMember { .. } => "bad_member",
            JwkError::NotAnObject(_) => "not_a_json_object",
        }
    }
}

/// The public key material of a JWK, normalised.
#[derive(Clone, PartialEq, Eq)]
enum KeyMaterial {
    /// Big-endian `n` and `e` without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// Affine coordinates, each exactly the curve's coordinate length.
    Ec { curve: Curve, x: Vec<u8>, y: Vec<u8> },
    /// The 32-byte public key.
    Ed25519 { x: Vec<u8> },
}

impl KeyMaterial {
    fn describe(&self) -> String {
        match self {
            KeyMaterial::Rsa { n, .. } => format!("RSA-{}", bit_len(n)),
            KeyMaterial::Ec { curve, .. } => format!("EC {}", curve.name()),
            KeyMaterial::Ed25519 { .. } => "OKP Ed25519".to_owned(),
        }
    }

    fn fits(&self, alg: Algorithm) -> bool {
        match (self, alg.key_family()) {
            (KeyMaterial::Rsa { .. }, KeyFamily::Rsa) => true,
            (KeyMaterial::Ec { curve, .. }, KeyFamily::Ec(want)) => *curve == want,
            (KeyMaterial::Ed25519 { .. }, KeyFamily::Ed25519) => true,
            _ => false,
        }
    }

    /// The RFC 7638 members, in lexicographic order, as canonical JSON.
    fn thumbprint_input(&self) -> String {
        match self {
            KeyMaterial::Rsa { n, e } => {
                format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64::encode(e), b64::encode(n))
            }
            KeyMaterial::Ec { curve, x, y } => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                curve.name(),
                b64::encode(x),
                b64::encode(y)
            ),
            KeyMaterial::Ed25519 { x } => {
                format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64::encode(x))
            }
        }
    }

    fn public_json(&self) -> Map<String, Value> {
        let mut map = Map::new();
        let mut put = |k: &str, v: String| {
            map.insert(k.to_owned(), Value::String(v));
        };
        match self {
            KeyMaterial::Rsa { n, e } => {
                put("kty", "RSA".into());
                put("n", b64::encode(n));
                put("e", b64::encode(e));
            }
            KeyMaterial::Ec { curve, x, y } => {
                put("kty", "EC".into());
                put("crv", curve.name().into());
                put("x", b64::encode(x));
                put("y", b64::encode(y));
            }
            KeyMaterial::Ed25519 { x } => {
                put("kty", "OKP".into());
                put("crv", "Ed25519".into());
                put("x", b64::encode(x));
            }
        }
        map
    }

    fn parse_for(&self, alg: Algorithm) -> Result<ParsedPublicKey, JwkError> {
        let parsed = match self {
            KeyMaterial::Rsa { n, e } => RsaPublicKeyComponents { n, e }
                .to_parsed_public_key(rsa_params(alg))
                .ok(),
            KeyMaterial::Ec { curve, x, y } => {
                let mut point = Vec::with_capacity(1 + x.len() + y.len());
                point.push(0x04);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                ParsedPublicKey::new(ecdsa_params(*curve), point).ok()
            }
            KeyMaterial::Ed25519 { x } => ParsedPublicKey::new(&signature::ED25519, x).ok(),
        };
        parsed.ok_or_else(|| match self {
            KeyMaterial::Ec { curve, .. } => JwkError::PointInvalid(curve.name()),
            KeyMaterial::Ed25519 { .. } => JwkError::PointInvalid("Ed25519"),
            KeyMaterial::Rsa { .. } => JwkError::BadMember {
                member: "n",
                problem: "does not form an RSA public key",
            },
        })
    }
}

fn rsa_params(alg: Algorithm) -> &'static signature::RsaParameters {
    match alg {
        Algorithm::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
        _ => &signature::RSA_PKCS1_2048_8192_SHA256,
    }
}

fn ecdsa_params(curve: Curve) -> &'static signature::EcdsaVerificationAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED,
    }
}

/// One public verification key from a JWK.
#[derive(Clone)]
pub struct Jwk {
    kid: Option<String>,
    alg: Option<Algorithm>,
    material: KeyMaterial,
    thumbprint: String,
    /// One parsed key per algorithm this key may verify (only its own `alg` when it has one).
    verifiers: Vec<(Algorithm, ParsedPublicKey)>,
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("key", &self.material.describe())
            .field("thumbprint", &self.thumbprint)
            .finish()
    }
}

impl Jwk {
    /// Parses one JWK from strict JSON bytes.
    pub fn from_json(json: &[u8]) -> Result<Jwk, JwkError> {
        let value = json::parse(json, JWKS_MAX_DEPTH).map_err(|fault| JwkError::NotAnObject(fault.to_string()))?;
        Jwk::from_value(&value)
    }

    /// Parses one JWK from a JSON value.
    pub fn from_value(value: &Value) -> Result<Jwk, JwkError> {
        let Value::Object(obj) = value else {
            return Err(JwkError::NotAnObject("found a JSON value of another type".to_owned()));
        };
        let kty = opt_str(obj, "kty")?.ok_or(JwkError::BadMember {
            member: "kty",
            problem: "is required",
        })?;
        if !matches!(kty, "RSA" | "EC" | "OKP") {
            return Err(JwkError::UnsupportedKty(kty.to_owned()));
        }
        check_use(obj)?;
        let alg = match opt_str(obj, "alg")? {
            None => None,
            Some(name) => Some(Algorithm::from_name(name).ok_or_else(|| JwkError::UnknownAlg(name.to_owned()))?),
        };
        let material = match kty {
            "RSA" => rsa_material(obj)?,
            "EC" => ec_material(obj)?,
            _ => okp_material(obj)?,
        };
        if let Some(alg) = alg
            && !material.fits(alg)
        {
            return Err(JwkError::AlgKeyMismatch {
                alg,
                key: material.describe(),
            });
        }
        let kid = opt_str(obj, "kid")?.map(str::to_owned);
        Jwk::new(kid, alg, material)
    }

    fn new(kid: Option<String>, alg: Option<Algorithm>, material: KeyMaterial) -> Result<Jwk, JwkError> {
        let mut verifiers = Vec::new();
        for candidate in Algorithm::ALL {
            if material.fits(candidate) && alg.is_none_or(|alg| alg == candidate) {
                verifiers.push((candidate, material.parse_for(candidate)?));
            }
        }
        let thumbprint = b64::encode(digest::digest(&digest::SHA256, material.thumbprint_input().as_bytes()).as_ref());
        Ok(Jwk {
            kid,
            alg,
            material,
            thumbprint,
            verifiers,
        })
    }

    /// Builds a public JWK for a key pair keyless holds, `kid` = its thumbprint.
    pub(crate) fn from_signing_parts(alg: Algorithm, public: PublicParts<'_>) -> Result<Jwk, JwkError> {
        let material = match public {
            PublicParts::Rsa { n, e } => KeyMaterial::Rsa {
                n: strip_leading_zeros(n).to_vec(),
                e: strip_leading_zeros(e).to_vec(),
            },
            PublicParts::EcPoint(curve, point) => {
                let len = curve.coordinate_len();
                let coords = point
                    .get(1..)
                    .filter(|c| c.len() == 2 * len)
                    .ok_or(JwkError::PointInvalid(curve.name()))?;
                let (x, y) = coords.split_at(len);
                KeyMaterial::Ec {
                    curve,
                    x: x.to_vec(),
                    y: y.to_vec(),
                }
            }
            PublicParts::Ed25519(x) => KeyMaterial::Ed25519 { x: x.to_vec() },
        };
        let mut jwk = Jwk::new(None, Some(alg), material)?;
        jwk.kid = Some(jwk.thumbprint.clone());
        Ok(jwk)
    }

    /// The key ID, when the JWK has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithm the JWK is restricted to, when it names one.
    pub fn alg(&self) -> Option<Algorithm> {
        self.alg
    }

    /// The RFC 7638 JWK thumbprint (SHA-256, base64url).
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// Whether this key may verify signatures made with `alg` (type, curve and its own `alg`).
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.verifiers.iter().any(|(candidate, _)| *candidate == alg)
    }

    /// The public members (`kty`, key material, `kid`, `alg`, `use: sig`) as JSON.
    pub fn public_json(&self) -> Value {
        let mut map = self.material.public_json();
        if let Some(kid) = &self.kid {
            map.insert("kid".to_owned(), Value::String(kid.clone()));
        }
        if let Some(alg) = self.alg {
            map.insert("alg".to_owned(), Value::String(alg.name().to_owned()));
        }
        map.insert("use".to_owned(), Value::String("sig".to_owned()));
        Value::Object(map)
    }

    /// A short description such as `RSA-2048` or `EC P-256`.
    pub fn describe(&self) -> String {
        self.material.describe()
    }

    pub(crate) fn verifier(&self, alg: Algorithm) -> Option<&ParsedPublicKey> {
        self.verifiers
            .iter()
            .find(|(candidate, _)| *candidate == alg)
            .map(|(_, key)| key)
    }

    pub(crate) fn signature_len(&self, alg: Algorithm) -> usize {
        match (&self.material, alg.key_family()) {
            (KeyMaterial::Rsa { n, .. }, _) => n.len(),
            (_, KeyFamily::Ec(curve)) => 2 * curve.coordinate_len(),
            _ => 64,
        }
    }
}

/// The public half of a key pair keyless generated, as `aws-lc-rs` exposes it.
pub(crate) enum PublicParts<'a> {
    Rsa { n: &'a [u8], e: &'a [u8] },
    EcPoint(Curve, &'a [u8]),
    Ed25519(&'a [u8]),
}

fn opt_str<'a>(obj: &'a Map<String, Value>, member: &'static str) -> Result<Option<&'a str>, JwkError> {
    match obj.get(member) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JwkError::BadMember {
            member,
            problem: "must be a string",
        }),
    }
}

fn required_b64(obj: &Map<String, Value>, member: &'static str) -> Result<Vec<u8>, JwkError> {
    let text = opt_str(obj, member)?.ok_or(JwkError::BadMember {
        member,
        problem: "is required",
    })?;
    b64::decode(text).map_err(|_| JwkError::BadMember {
        member,
        problem: "is not unpadded base64url",
    })
}

fn check_use(obj: &Map<String, Value>) -> Result<(), JwkError> {
    if let Some(usage) = opt_str(obj, "use")?
        && usage != "sig"
    {
        return Err(JwkError::NotForSigning(format!("use is {usage:?}")));
    }
    match obj.get("key_ops") {
        None => Ok(()),
        Some(Value::Array(ops)) if ops.iter().all(Value::is_string) => {
            if ops.iter().any(|op| op == "verify") {
                Ok(())
            } else {
                Err(JwkError::NotForSigning("key_ops lacks \"verify\"".to_owned()))
            }
        }
        Some(_) => Err(JwkError::BadMember {
            member: "key_ops",
            problem: "must be an array of strings",
        }),
    }
}

fn rsa_material(obj: &Map<String, Value>) -> Result<KeyMaterial, JwkError> {
    // RFC 7518 §6.3.1 asks for minimal encodings; some libraries emit a leading zero octet.
    // Stripping it changes no value, so it is accepted rather than refused.
    let n = strip_leading_zeros(&required_b64(obj, "n")?).to_vec();
    let e = strip_leading_zeros(&required_b64(obj, "e")?).to_vec();
    let bits = bit_len(&n);
    if bits < RSA_MIN_BITS {
        return Err(JwkError::RsaTooSmall(bits));
    }
    if bits > RSA_MAX_BITS {
        return Err(JwkError::RsaTooLarge(bits));
    }
    let e_odd = e.last().is_some_and(|last| last & 1 == 1);
    if e.len() > 8 || !e_odd || e == [1] {
        return Err(JwkError::RsaBadExponent);
    }
    if crate::roca::has_fingerprint(&n) {
        return Err(JwkError::RsaRoca);
    }
    Ok(KeyMaterial::Rsa { n, e })
}

fn ec_material(obj: &Map<String, Value>) -> Result<KeyMaterial, JwkError> {
    let crv = opt_str(obj, "crv")?.ok_or(JwkError::BadMember {
        member: "crv",
        problem: "is required",
    })?;
    let curve = Curve::from_name(crv).ok_or_else(|| JwkError::UnsupportedCurve(crv.to_owned()))?;
    let x = coordinate(obj, "x", curve.name(), curve.coordinate_len())?;
    let y = coordinate(obj, "y", curve.name(), curve.coordinate_len())?;
    Ok(KeyMaterial::Ec { curve, x, y })
}

fn okp_material(obj: &Map<String, Value>) -> Result<KeyMaterial, JwkError> {
    let crv = opt_str(obj, "crv")?.ok_or(JwkError::BadMember {
        member: "crv",
        problem: "is required",
    })?;
    if crv != "Ed25519" {
        return Err(JwkError::UnsupportedCurve(crv.to_owned()));
    }
    let x = coordinate(obj, "x", "Ed25519", 32)?;
    Ok(KeyMaterial::Ed25519 { x })
}

fn coordinate(
    obj: &Map<String, Value>,
    member: &'static str,
    curve: &'static str,
    len: usize,
) -> Result<Vec<u8>, JwkError> {
    let bytes = required_b64(obj, member)?;
    if bytes.len() != len {
        return Err(JwkError::BadCoordinate {
            member,
            curve,
            expected: len,
            found: bytes.len(),
        });
    }
    Ok(bytes)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

fn bit_len(be: &[u8]) -> usize {
    let be = strip_leading_zeros(be);
    match be.first() {
        None => 0,
        Some(first) => be.len() * 8 - first.leading_zeros() as usize,
    }
}

/// A JWK of a JWKS that could not be used, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedKey {
    /// Its position in the `keys` array.
    pub index: usize,
    /// Its `kid`, when it has a string one.
    pub kid: Option<String>,
    /// Why it was skipped.
    pub error: JwkError,
}

/// Why a JWKS document cannot be read at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The document is not strict JSON, or not an object.
    #[error("JWKS is not a JSON object: {0}")]
    NotAnObject(String),
    /// The document has no `keys` array.
    #[error("JWKS has no \"keys\" array")]
    MissingKeys,
}

impl JwksError {
    /// A stable code for logs, activity events and tests.
    pub fn code(&self) -> &'static str {
        match self {
            JwksError::NotAnObject(_) => "jwks_not_an_object",
            JwksError::MissingKeys => "jwks_missing_keys",
        }
    }
}

/// A set of verification keys: an issuer's JWKS.
#[derive(Clone, Debug, Default)]
pub struct Jwks {
    keys: Vec<Jwk>,
    skipped: Vec<SkippedKey>,
}

impl Jwks {
    /// Parses a JWKS document (`{"keys": [...]}`). Unusable keys are skipped and listed in
    /// [`Jwks::skipped`]; the rest are used.
    pub fn from_json(json: &[u8]) -> Result<Jwks, JwksError> {
        let doc = json::parse_object(json, JWKS_MAX_DEPTH).map_err(|fault| match fault {
            json::ObjectFault::Json(fault) => JwksError::NotAnObject(fault.to_string()),
            json::ObjectFault::NotAnObject => JwksError::NotAnObject("found a JSON value of another type".to_owned()),
        })?;
        let Some(Value::Array(entries)) = doc.get("keys") else {
            return Err(JwksError::MissingKeys);
        };
        Ok(Jwks::from_values(entries))
    }

    /// Builds a JWKS from JWK values, skipping the unusable ones.
    pub fn from_values(entries: &[Value]) -> Jwks {
        let mut jwks = Jwks::default();
        for (index, entry) in entries.iter().enumerate() {
            match Jwk::from_value(entry) {
                Ok(jwk) => jwks.keys.push(jwk),
                Err(error) => jwks.skipped.push(SkippedKey {
                    index,
                    kid: entry.get("kid").and_then(Value::as_str).map(str::to_owned),
                    error,
                }),
            }
        }
        jwks
    }

    /// A JWKS of the given keys.
    pub fn from_keys(keys: Vec<Jwk>) -> Jwks {
        Jwks {
            keys,
            skipped: Vec::new(),
        }
    }

    /// The usable keys.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// The keys that were skipped, and why.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// The public JWKS document of the usable keys.
    pub fn public_json(&self) -> Value {
        serde_json::json!({ "keys": self.keys.iter().map(Jwk::public_json).collect::<Vec<_>>() })
    }
}
