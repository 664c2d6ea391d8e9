//! keyless's own signing keys: generate, load, sign, publish.
//!
//! Private key material lives only inside `aws-lc-rs` key pairs and the PKCS#8 document handed
//! to the caller for encrypted storage ([`Pkcs8`], whose `Debug` prints nothing). Every key's
//! `kid` is its RFC 7638 thumbprint, so a published JWKS needs no separate key registry.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::algorithm::{Algorithm, Curve, KeyFamily};
use crate::b64;
use crate::jwk::{Jwk, PublicParts};

/// Why a signing key could not be made, loaded or used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// Key generation failed in the crypto library.
    #[error("could not generate a {0} key")]
    Generate(Algorithm),
    /// The PKCS#8 document is not a key of the expected algorithm.
    #[error("PKCS#8 document is not a valid {0} private key")]
    InvalidPkcs8(Algorithm),
    /// Signing failed in the crypto library.
    #[error("signing with {0} failed")]
    Sign(Algorithm),
    /// The header could not be serialized.
    #[error("header or claims could not be serialized")]
    Serialize,
}

/// A PKCS#8 private key document, wiped from memory when dropped. Its `Debug` shows only its length.
pub struct Pkcs8(Zeroizing<Vec<u8>>);

impl Pkcs8 {
    /// The DER bytes. Handle with care: this is the private key.
    pub fn der(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Pkcs8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pkcs8({} bytes, redacted)", self.0.len())
    }
}

enum Pair {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private signing key of keyless, with its public JWK.
pub struct SigningKey {
    alg: Algorithm,
    pair: Pair,
    public: Jwk,
    pkcs8: Pkcs8,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid())
            .field("pkcs8", &self.pkcs8)
            .finish()
    }
}

fn ecdsa_signing(curve: Curve) -> &'static signature::EcdsaSigningAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
    }
}

fn rsa_encoding(alg: Algorithm) -> &'static dyn signature::RsaEncoding {
    match alg {
        Algorithm::Rs384 => &signature::RSA_PKCS1_SHA384,
        Algorithm::Rs512 => &signature::RSA_PKCS1_SHA512,
        Algorithm::Ps256 => &signature::RSA_PSS_SHA256,
        Algorithm::Ps384 => &signature::RSA_PSS_SHA384,
        Algorithm::Ps512 => &signature::RSA_PSS_SHA512,
        _ => &signature::RSA_PKCS1_SHA256,
    }
}

impl SigningKey {
    /// Generates a fresh key for `alg` (RSA keys are 2048 bits). keyless's default is ES256.
    pub fn generate(alg: Algorithm) -> Result<SigningKey, SignError> {
        let fail = |_| SignError::Generate(alg);
        let der = match alg.key_family() {
            KeyFamily::Rsa => RsaKeyPair::generate(KeySize::Rsa2048)
                .and_then(|pair| pair.as_der())
                .map(|der| Zeroizing::new(der.as_ref().to_vec()))
                .map_err(fail)?,
            KeyFamily::Ec(curve) => EcdsaKeyPair::generate(ecdsa_signing(curve))
                .and_then(|pair| pair.to_pkcs8v1())
                .map(|doc| Zeroizing::new(doc.as_ref().to_vec()))
                .map_err(fail)?,
            KeyFamily::Ed25519 => Ed25519KeyPair::generate()
                .and_then(|pair| pair.to_pkcs8v1())
                .map(|doc| Zeroizing::new(doc.as_ref().to_vec()))
                .map_err(fail)?,
        };
        SigningKey::from_pkcs8(alg, &der)
    }

    /// Loads a key from its PKCS#8 (v1 or v2) DER document.
    pub fn from_pkcs8(alg: Algorithm, der: &[u8]) -> Result<SigningKey, SignError> {
        let invalid = |_| SignError::InvalidPkcs8(alg);
        let pair = match alg.key_family() {
            KeyFamily::Rsa => Pair::Rsa(RsaKeyPair::from_pkcs8(der).map_err(invalid)?),
            KeyFamily::Ec(curve) => Pair::Ecdsa(EcdsaKeyPair::from_pkcs8(ecdsa_signing(curve), der).map_err(invalid)?),
            KeyFamily::Ed25519 => Pair::Ed25519(Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(invalid)?),
        };
        let parts = match &pair {
            Pair::Rsa(pair) => {
                let public = pair.public_key();
                PublicParts::Rsa {
                    n: public.modulus().big_endian_without_leading_zero(),
                    e: public.exponent().big_endian_without_leading_zero(),
                }
            }
            Pair::Ecdsa(pair) => match alg.key_family() {
                KeyFamily::Ec(curve) => PublicParts::EcPoint(curve, pair.public_key().as_ref()),
                _ => return Err(SignError::InvalidPkcs8(alg)),
            },
            Pair::Ed25519(pair) => PublicParts::Ed25519(pair.public_key().as_ref()),
        };
        let public = Jwk::from_signing_parts(alg, parts).map_err(|_| SignError::InvalidPkcs8(alg))?;
        Ok(SigningKey {
            alg,
            pair,
            public,
            pkcs8: Pkcs8(Zeroizing::new(der.to_vec())),
        })
    }

    /// The key ID: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        self.public.thumbprint()
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The private key as PKCS#8, for encrypted storage.
    pub fn pkcs8(&self) -> &Pkcs8 {
        &self.pkcs8
    }

    /// The public key as a JWK verifier (the same key [`SigningKey::public_jwk`] publishes).
    pub fn verifying_key(&self) -> &Jwk {
        &self.public
    }

    /// The public JWK: key material, `kid`, `alg` and `use: sig`.
    pub fn public_jwk(&self) -> Value {
        self.public.public_json()
    }

    /// Signs `claims` as a JWT with the header `{alg, kid, typ: "JWT"}`.
    pub fn sign_jwt(&self, claims: &Map<String, Value>) -> Result<String, SignError> {
        let mut header = Map::new();
        header.insert("alg".to_owned(), Value::String(self.alg.name().to_owned()));
        header.insert("kid".to_owned(), Value::String(self.kid().to_owned()));
        header.insert("typ".to_owned(), Value::String("JWT".to_owned()));
        let payload = serde_json::to_vec(claims).map_err(|_| SignError::Serialize)?;
        self.sign_compact(&header, &payload)
    }

    /// Signs `payload` under exactly the given protected header (the caller owns its `alg`).
    pub fn sign_compact(&self, header: &Map<String, Value>, payload: &[u8]) -> Result<String, SignError> {
        let header = serde_json::to_vec(header).map_err(|_| SignError::Serialize)?;
        let mut token = b64::encode(&header);
        token.push('.');
        token.push_str(&b64::encode(payload));
        let signature = self.sign_bytes(token.as_bytes())?;
        token.push('.');
        token.push_str(&b64::encode(&signature));
        Ok(token)
    }

    fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let fail = |_| SignError::Sign(self.alg);
        match &self.pair {
            Pair::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(rsa_encoding(self.alg), &SystemRandom::new(), message, &mut signature)
                    .map_err(fail)?;
                Ok(signature)
            }
            Pair::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(fail),
            Pair::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

/// The public JWKS document (`{"keys": [...]}`) of the given signing keys.
pub fn public_jwks(keys: &[&SigningKey]) -> Value {
    serde_json::json!({ "keys": keys.iter().map(|key| key.public_jwk()).collect::<Vec<_>>() })
}
