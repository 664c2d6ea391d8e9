//! First start: the organization, its default workspace, its first signing key and a one-time
//! `org:admin` token — and, on every start, loading the signing keys.
//!
//! On an empty database [`ensure_organization`] creates all four in one transaction with an
//! `platform_organization_created` activity event, and writes `bootstrap.json` (mode 0600):
//! `{"organization_id", "admin_token", "expires_at"}`. The admin token lives 24 hours and is stored
//! only as a hash; there is no default password. Order: the file is written beside its final name
//! first, the transaction commits, then the file is renamed into place — so a failed commit leaves
//! no token on disk, and a crash between commit and rename leaves `bootstrap.json.tmp` to use.
//!
//! Must not: print or log the admin token (only the file holds it).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use keyless_core::id::{OrganizationId, WorkspaceId};
use keyless_core::name::Name;
use keyless_core::scope::ScopeSet;
use keyless_jose::{Algorithm, SigningKey};
use keyless_store::access_token::AccessTokenRecord;
use keyless_store::activity::Activity;
use keyless_store::audit::Audit;
use keyless_store::organization::OrganizationRecord;
use keyless_store::signing_key::{EncryptedPrivateKey, SigningKeyRecord};
use keyless_store::workspace::WorkspaceRecord;
use keyless_store::{Store, StoreError};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::service::keys::{KeyEncryptionKey, KeyError};
use crate::service::token;

/// The file the one-time admin token is written to, in the data directory.
pub const BOOTSTRAP_FILE: &str = "bootstrap.json";
/// How long the bootstrap admin token lives.
pub const BOOTSTRAP_TOKEN_SECONDS: i64 = 24 * 3600;
/// The actor recorded for what the first start creates.
const ACTOR: &str = "bootstrap";
/// The algorithm of keyless's own signing keys.
const SIGNING_ALGORITHM: Algorithm = Algorithm::Es256;

/// Why the server could not set itself up.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// A signing key could not be sealed or opened.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A signing key could not be generated or loaded.
    #[error("signing key: {0}")]
    Signing(String),
    /// `bootstrap.json` could not be written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The database holds more than one organization, which this server mode does not serve.
    #[error("the database holds {0} organizations; a keyless server serves exactly one")]
    SeveralOrganizations(usize),
    /// Random bytes were not available.
    #[error("the system random generator failed")]
    Random,
}

/// The organization this server serves.
#[derive(Debug)]
pub struct Organization {
    /// Its ID.
    pub id: OrganizationId,
    /// Its default workspace.
    pub default_workspace_id: WorkspaceId,
    /// Its signing keys, newest first.
    pub signing_keys: Vec<SigningKey>,
    /// Where the one-time admin token was written, when this start created the organization.
    pub bootstrap_file: Option<PathBuf>,
}

/// Loads the organization, creating it on first start (see the module documentation).
pub async fn ensure_organization(
    store: &Store,
    kek: &KeyEncryptionKey,
    data_dir: &Path,
    now: i64,
) -> Result<Organization, BootstrapError> {
    let organizations = store.organization_list().await?;
    let (id, bootstrap_file) = match organizations.as_slice() {
        [] => {
            let (id, file) = create(store, kek, data_dir, now).await?;
            (id, Some(file))
        }
        [organization] => (organization.id.clone(), None),
        several => return Err(BootstrapError::SeveralOrganizations(several.len())),
    };
    let default_workspace_id = store.workspace_get_default(&id).await?.id;
    let mut signing_keys = Vec::new();
    for record in store.signing_key_list(false).await? {
        let alg = Algorithm::from_name(&record.alg)
            .ok_or_else(|| BootstrapError::Signing(format!("key {} has unknown alg {}", record.kid, record.alg)))?;
        let pkcs8 = kek.open(&record.kid, record.encrypted_private_key.as_bytes())?;
        let key = SigningKey::from_pkcs8(alg, &pkcs8).map_err(|err| BootstrapError::Signing(err.to_string()))?;
        if key.kid() != record.kid {
            return Err(BootstrapError::Signing(format!(
                "stored key {} has thumbprint {}",
                record.kid,
                key.kid()
            )));
        }
        signing_keys.push(key);
    }
    if signing_keys.is_empty() {
        return Err(BootstrapError::Signing("no active signing key is stored".to_owned()));
    }
    Ok(Organization {
        id,
        default_workspace_id,
        signing_keys,
        bootstrap_file,
    })
}

async fn create(
    store: &Store,
    kek: &KeyEncryptionKey,
    data_dir: &Path,
    now: i64,
) -> Result<(OrganizationId, PathBuf), BootstrapError> {
    let organization_id = OrganizationId::parse(&random_uuid()?).map_err(|_| BootstrapError::Random)?;
    let workspace_id = WorkspaceId::parse(&format!("{}{}", WorkspaceId::PREFIX, random_hex(12)?))
        .map_err(|_| BootstrapError::Random)?;
    let signing_key =
        SigningKey::generate(SIGNING_ALGORITHM).map_err(|err| BootstrapError::Signing(err.to_string()))?;
    let sealed = kek.seal(signing_key.kid(), signing_key.pkcs8().der())?;
    let admin_token = token::mint().map_err(|_| BootstrapError::Random)?;
    let expires_at = now + BOOTSTRAP_TOKEN_SECONDS;
    let scope = ScopeSet::parse(keyless_core::scope::ORG_ADMIN).map_err(|_| BootstrapError::Random)?;

    let final_path = data_dir.join(BOOTSTRAP_FILE);
    let temp_path = data_dir.join(format!("{BOOTSTRAP_FILE}.tmp"));
    let document = json!({
        "organization_id": organization_id.as_str(),
        "admin_token": admin_token.secret.expose_secret(),
        "expires_at": expires_at,
    });
    write_private(&temp_path, &format!("{document:#}\n"))?;

    let mut tx = store.begin().await?;
    tx.organization_create(&OrganizationRecord {
        id: organization_id.clone(),
        created_at: now,
    })
    .await?;
    tx.workspace_create(&WorkspaceRecord {
        id: workspace_id.clone(),
        organization_id: organization_id.clone(),
        name: Name::parse("default").map_err(|_| BootstrapError::Random)?,
        is_default: true,
        audit: Audit::created(now, ACTOR),
    })
    .await?;
    tx.signing_key_create(&SigningKeyRecord {
        kid: signing_key.kid().to_owned(),
        alg: SIGNING_ALGORITHM.name().to_owned(),
        encrypted_private_key: EncryptedPrivateKey::new(sealed),
        created_at: now,
        retired_at: None,
    })
    .await?;
    tx.access_token_create(&AccessTokenRecord {
        hash: admin_token.hash.clone(),
        organization_id: organization_id.clone(),
        workspace_id: None,
        service_account_id: None,
        rule_id: None,
        scope,
        created_at: now,
        expires_at,
        revoked_at: None,
    })
    .await?;
    tx.activity_append(&Activity {
        organization_id: organization_id.clone(),
        activity_type: "platform_organization_created".to_owned(),
        actor_id: Some(ACTOR.to_owned()),
        resource_id: Some(organization_id.as_str().to_owned()),
        request_id: None,
        created_at: now,
        payload: json!({
            "default_workspace_id": workspace_id.as_str(),
            "signing_key": { "kid": signing_key.kid(), "alg": SIGNING_ALGORITHM.name() },
            "admin_token": { "sha256": token::hex(&admin_token.hash), "scope": "org:admin", "expires_at": expires_at },
        }),
    })
    .await?;
    if let Err(err) = tx.commit().await {
        let _ = std::fs::remove_file(&temp_path);
        return Err(err.into());
    }
    std::fs::rename(&temp_path, &final_path).map_err(|source| BootstrapError::File {
        path: final_path.display().to_string(),
        source,
    })?;
    Ok((organization_id, final_path))
}

/// Writes `text` to a new file readable only by its owner (an existing file is replaced).
fn write_private(path: &Path, text: &str) -> Result<(), BootstrapError> {
    let fail = |source| BootstrapError::File {
        path: path.display().to_string(),
        source,
    };
    if path.exists() {
        std::fs::remove_file(path).map_err(fail)?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(fail)
}

fn random_bytes<const N: usize>() -> Result<[u8; N], BootstrapError> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| BootstrapError::Random)?;
    Ok(bytes)
}

fn random_hex(len_bytes: usize) -> Result<String, BootstrapError> {
    let bytes: [u8; 32] = random_bytes()?;
    Ok(token::hex(bytes.get(..len_bytes.min(32)).unwrap_or_default()))
}

/// A random (version 4) UUID in its textual form.
fn random_uuid() -> Result<String, BootstrapError> {
    let mut bytes: [u8; 16] = random_bytes()?;
    if let Some(version) = bytes.get_mut(6) {
        *version = (*version & 0x0f) | 0x40;
    }
    if let Some(variant) = bytes.get_mut(8) {
        *variant = (*variant & 0x3f) | 0x80;
    }
    let mut text = String::with_capacity(36);
    for (idx, byte) in bytes.iter().enumerate() {
        if matches!(idx, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        text.push_str(&format!("{byte:02x}"));
    }
    Ok(text)
}
