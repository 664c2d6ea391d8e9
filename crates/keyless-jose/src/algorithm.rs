//! The signature algorithms keyless accepts, and nothing else.
//!
//! `none`, the symmetric `HS*` family and every unregistered name are not representable here:
//! a header naming them is refused while it is parsed (see [`crate::JwsError`]).

use std::fmt;

/// An asymmetric JWS algorithm (RFC 7518 §3, RFC 8037 §3.1 for EdDSA with Ed25519).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256, MGF1 with SHA-256, salt length 32.
    Ps256,
    /// RSASSA-PSS with SHA-384, MGF1 with SHA-384, salt length 48.
    Ps384,
    /// RSASSA-PSS with SHA-512, MGF1 with SHA-512, salt length 64.
    Ps512,
    /// ECDSA on P-256 with SHA-256, signature as `r || s` (64 bytes).
    Es256,
    /// ECDSA on P-384 with SHA-384, signature as `r || s` (96 bytes).
    Es384,
    /// ECDSA on P-521 with SHA-512, signature as `r || s` (132 bytes).
    Es512,
    /// EdDSA; keyless accepts only the Ed25519 curve.
    EdDsa,
}

/// The family of key an algorithm needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFamily {
    /// An RSA key (`kty: RSA`).
    Rsa,
    /// An elliptic-curve key (`kty: EC`) on the given curve.
    Ec(Curve),
    /// An Ed25519 key (`kty: OKP`, `crv: Ed25519`).
    Ed25519,
}

/// The NIST curves of `kty: EC` keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    /// P-256 (secp256r1).
    P256,
    /// P-384 (secp384r1).
    P384,
    /// P-521 (secp521r1).
    P521,
}

impl Curve {
    /// The JWK `crv` name.
    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }

    /// The curve of a JWK `crv` name.
    pub fn from_name(name: &str) -> Option<Curve> {
        match name {
            "P-256" => Some(Curve::P256),
            "P-384" => Some(Curve::P384),
            "P-521" => Some(Curve::P521),
            _ => None,
        }
    }

    /// The length in bytes of one coordinate (and of `r` and `s` in a signature).
    pub fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }
}

impl Algorithm {
    /// Every accepted algorithm.
    pub const ALL: [Algorithm; 10] = [
        Algorithm::Rs256,
        Algorithm::Rs384,
        Algorithm::Rs512,
        Algorithm::Ps256,
        Algorithm::Ps384,
        Algorithm::Ps512,
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::Es512,
        Algorithm::EdDsa,
    ];

    /// The registered JOSE name (`"RS256"`, …, `"EdDSA"`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Rs384 => "RS384",
            Algorithm::Rs512 => "RS512",
            Algorithm::Ps256 => "PS256",
            Algorithm::Ps384 => "PS384",
            Algorithm::Ps512 => "PS512",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::Es512 => "ES512",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// The algorithm with exactly this registered name (case-sensitive, as RFC 7515 §4.1.1 requires).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// The key family (and curve) this algorithm needs.
    pub fn key_family(self) -> KeyFamily {
        match self {
            Algorithm::Rs256
            | Algorithm::Rs384
            | Algorithm::Rs512
            | Algorithm::Ps256
            | Algorithm::Ps384
            | Algorithm::Ps512 => KeyFamily::Rsa,
            Algorithm::Es256 => KeyFamily::Ec(Curve::P256),
            Algorithm::Es384 => KeyFamily::Ec(Curve::P384),
            Algorithm::Es512 => KeyFamily::Ec(Curve::P521),
            Algorithm::EdDsa => KeyFamily::Ed25519,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
