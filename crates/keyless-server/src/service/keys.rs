//! Signing keys at rest: the key-encryption key (KEK) and the sealed form of a private key.
//!
//! keyless's private signing keys are stored only sealed with AES-256-GCM under the KEK, with the
//! key's `kid` as associated data, so a sealed key moved onto another key's row does not open.
//! Sealed layout: `0x01 ‖ nonce (12 random bytes) ‖ ciphertext ‖ tag (16)`.
//!
//! The KEK is 32 bytes, written in base64 (standard or URL-safe alphabet, padding optional). It
//! comes from the configuration, a file, or — for the embedded SQLite default only — a file this
//! module generates in the data directory with mode 0600 on first start. Key files readable by
//! group or others, and symlinked key files, are refused.
//!
//! Must not: log, print or `Debug` a key (the types here redact themselves).

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::config::KekSource;

const SEALED_VERSION: u8 = 1;
const KEK_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// Why a key could not be loaded, sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The KEK is not 32 bytes of base64.
    #[error("the key-encryption key must be 32 bytes in base64 ({0})")]
    BadKek(&'static str),
    /// A key file is unsafe or unreadable.
    #[error("{path}: {problem}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// A sealed key is malformed, was sealed under another KEK, or belongs to another `kid`.
    #[error("the sealed signing key {kid:?} does not open with this key-encryption key")]
    Unseal {
        /// The key's `kid`.
        kid: String,
    },
    /// The crypto library failed.
    #[error("sealing a signing key failed")]
    Seal,
}

/// The key-encryption key. `Debug` prints nothing of it.
pub struct KeyEncryptionKey {
    key: LessSafeKey,
}

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey(redacted)")
    }
}

impl KeyEncryptionKey {
    /// Loads (or, for [`KekSource::Generated`], creates on first use) the KEK.
    pub fn load(source: &KekSource) -> Result<KeyEncryptionKey, KeyError> {
        match source {
            KekSource::Inline(text) => KeyEncryptionKey::from_base64(text.expose_secret()),
            KekSource::File(path) => KeyEncryptionKey::from_base64(&read_private_file(path)?),
            KekSource::Generated(path) => {
                if !path.exists() {
                    generate_file(path)?;
                }
                KeyEncryptionKey::from_base64(&read_private_file(path)?)
            }
        }
    }

    /// A KEK from 32 bytes of base64 (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<KeyEncryptionKey, KeyError> {
        let text = text.trim();
        let lenient = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
        let bytes = Zeroizing::new(
            GeneralPurpose::new(&base64::alphabet::STANDARD, lenient)
                .decode(text)
                .or_else(|_| GeneralPurpose::new(&base64::alphabet::URL_SAFE, lenient).decode(text))
                .map_err(|_| KeyError::BadKek("not base64"))?,
        );
        if bytes.len() != KEK_LEN {
            return Err(KeyError::BadKek("wrong length"));
        }
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| KeyError::BadKek("rejected"))?;
        Ok(KeyEncryptionKey {
            key: LessSafeKey::new(key),
        })
    }

    /// Seals a private key (PKCS#8) that will be stored under `kid`.
    pub fn seal(&self, kid: &str, private_key: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| KeyError::Seal)?;
        let mut in_out = private_key.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| KeyError::Seal)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(SEALED_VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// Opens a sealed private key stored under `kid`.
    pub fn open(&self, kid: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let unseal = || KeyError::Unseal { kid: kid.to_owned() };
        let (version, rest) = sealed.split_first().ok_or_else(unseal)?;
        if *version != SEALED_VERSION || rest.len() < NONCE_LEN + TAG_LEN {
            return Err(unseal());
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| unseal())?;
        let mut in_out = Zeroizing::new(ciphertext.to_vec());
        let len = self
            .key
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut in_out)
            .map_err(|_| unseal())?
            .len();
        in_out.truncate(len);
        Ok(in_out)
    }
}

fn file_error(path: &Path, problem: impl Into<String>) -> KeyError {
    KeyError::File {
        path: path.display().to_string(),
        problem: problem.into(),
    }
}

/// Reads a secret file after checking it is a regular file that only its owner can read.
fn read_private_file(path: &Path) -> Result<Zeroizing<String>, KeyError> {
    let meta = std::fs::symlink_metadata(path).map_err(|err| file_error(path, err.to_string()))?;
    if meta.file_type().is_symlink() {
        return Err(file_error(
            path,
            "is a symbolic link; point the setting at the file itself",
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(file_error(
            path,
            "is readable by group or others; run `chmod 600` on it",
        ));
    }
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|err| file_error(path, err.to_string()))
}

/// Creates a new random KEK file with mode 0600; never overwrites an existing file.
fn generate_file(path: &Path) -> Result<(), KeyError> {
    let mut bytes = Zeroizing::new([0u8; KEK_LEN]);
    SystemRandom::new().fill(bytes.as_mut()).map_err(|_| KeyError::Seal)?;
    let text = Zeroizing::new(URL_SAFE.encode(bytes.as_ref()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|err| file_error(dir, err.to_string()))?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|err| file_error(path, err.to_string()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|err| file_error(path, err.to_string()))?;

    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
    use secrecy::SecretString;

    use super::*;

    const KEK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn seal_then_open_round_trips_and_binds_the_kid() {
        let kek = KeyEncryptionKey::from_base64(KEK).unwrap();
        let sealed = kek.seal("kid-1", b"private key bytes").unwrap();
        assert_eq!(kek.open("kid-1", &sealed).unwrap().as_slice(), b"private key bytes");
        assert!(
            matches!(kek.open("kid-2", &sealed), Err(KeyError::Unseal { .. })),
            "another kid"
        );
        let other = KeyEncryptionKey::from_base64("AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8").unwrap();
        assert!(
            matches!(other.open("kid-1", &sealed), Err(KeyError::Unseal { .. })),
            "another KEK"
        );
        for tampered in [&sealed[..sealed.len() - 1], &sealed[..5], &[]] {
            assert!(kek.open("kid-1", tampered).is_err());
        }
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(kek.open("kid-1", &flipped).is_err());
        assert_ne!(
            kek.seal("kid-1", b"x").unwrap(),
            kek.seal("kid-1", b"x").unwrap(),
            "fresh nonces"
        );
    }

    #[test]
    fn kek_text_must_be_32_bytes_of_base64() {
        assert!(KeyEncryptionKey::from_base64(&format!("  {KEK}\n")).is_ok());
        assert!(KeyEncryptionKey::from_base64(KEK.trim_end_matches('=')).is_ok());
        for bad in ["", "not base64!", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg=="] {
            assert!(
                matches!(KeyEncryptionKey::from_base64(bad), Err(KeyError::BadKek(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            format!("{:?}", KeyEncryptionKey::from_base64(KEK).unwrap()),
            "KeyEncryptionKey(redacted)"
        );
    }

    #[test]
    fn generated_kek_is_private_stable_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("key-encryption-key");
        let source = KekSource::Generated(path.clone());
        let first = KeyEncryptionKey::load(&source).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let sealed = first.seal("k", b"secret").unwrap();
        let again = KeyEncryptionKey::load(&source).unwrap();
        assert_eq!(
            again.open("k", &sealed).unwrap().as_slice(),
            b"secret",
            "same key on restart"
        );
    }

    #[test]
    fn unsafe_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        std::fs::write(&path, KEK).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = KeyEncryptionKey::load(&KekSource::File(path.clone()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(KeyEncryptionKey::load(&KekSource::File(path.clone())).is_ok());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let err = KeyEncryptionKey::load(&KekSource::File(link)).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(KeyEncryptionKey::load(&KekSource::Inline(SecretString::from(KEK))).is_ok());
    }
}
