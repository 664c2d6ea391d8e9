//! Signing keys: keyless's own keys (published in `/.well-known/jwks.json`), stored with the private key
//! encrypted by the caller under a key-encryption key this crate never sees.
//!
//! Parts: [`EncryptedPrivateKey`] (bytes whose `Debug` prints only a length), [`SigningKeyRecord`]; on
//! [`Tx`]: `signing_key_create`, `signing_key_retire`; on [`Store`]: `signing_key_list`.
//!
//! Keys belong to the deployment, not to an organization (one issuer, one JWKS). Must not: decrypt, or
//! print key bytes.

use std::fmt;

use crate::backend::{Query, Row};
use crate::error::StoreError;
use crate::store::{Store, Tx};

/// A private key, encrypted by the caller. `Debug` prints its length only.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptedPrivateKey(Vec<u8>);

impl EncryptedPrivateKey {
    /// Wraps encrypted key bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The encrypted bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for EncryptedPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptedPrivateKey({} bytes)", self.0.len())
    }
}

/// A stored signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Its key ID (the RFC 7638 thumbprint).
    pub kid: String,
    /// Its JOSE algorithm, e.g. `ES256`.
    pub alg: String,
    /// The private key (PKCS#8), encrypted.
    pub encrypted_private_key: EncryptedPrivateKey,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When it stopped signing, if it did (it stays published until the caller drops it from the JWKS).
    pub retired_at: Option<i64>,
}

fn decode(row: &dyn Row) -> Result<SigningKeyRecord, StoreError> {
    Ok(SigningKeyRecord {
        kid: row.text("kid")?,
        alg: row.text("alg")?,
        encrypted_private_key: EncryptedPrivateKey(row.bytes("encrypted_private_key")?),
        created_at: row.int("created_at")?,
        retired_at: row.opt_int("retired_at")?,
    })
}

impl Tx {
    /// Stores a new signing key; an existing `kid` is a [`StoreError::Conflict`] on `kid`.
    pub async fn signing_key_create(&mut self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        let query = Query::new(
            "INSERT INTO signing_keys (kid, alg, encrypted_private_key, created_at, retired_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .arg(key.kid.as_str())
        .arg(key.alg.as_str())
        .arg(key.encrypted_private_key.as_bytes())
        .arg(key.created_at)
        .arg(key.retired_at)
        .on_key_conflict("kid");
        self.conn().execute(&query).await.map(drop)
    }

    /// Retires a key at `at`; returns `false` when it already was (the first retirement is kept).
    pub async fn signing_key_retire(&mut self, kid: &str, at: i64) -> Result<bool, StoreError> {
        let query = Query::new("UPDATE signing_keys SET retired_at = $2 WHERE kid = $1 AND retired_at IS NULL")
            .arg(kid)
            .arg(at);
        let mut conn = self.conn();
        if conn.execute(&query).await? > 0 {
            return Ok(true);
        }
        let exists = Query::new("SELECT 1 AS one FROM signing_keys WHERE kid = $1").arg(kid);
        conn.fetch_optional(&exists, |_| Ok(()))
            .await?
            .map(|()| false)
            .ok_or(StoreError::NotFound)
    }
}

impl Store {
    /// The signing keys, newest first; retired ones only with `include_retired`.
    pub async fn signing_key_list(&self, include_retired: bool) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let query = Query::new(
            "SELECT kid, alg, encrypted_private_key, created_at, retired_at FROM signing_keys \
             WHERE $1 OR retired_at IS NULL ORDER BY created_at DESC, kid DESC",
        )
        .arg(include_retired);
        self.read().await?.conn().fetch_all(&query, decode).await
    }
}
