//! The client configuration directory: profiles and their cached credentials.
//!
//! Layout (the reference SDKs'), under `KEYLESS_CONFIG_DIR`, else `$XDG_CONFIG_HOME/keyless`, else
//! `~/.config/keyless`:
//!
//! ```text
//! active_config              the name of the active profile (else `default`)
//! configs/<profile>.json     not secret: base_url, organization_id, workspace_id, authentication {…}
//! credentials/<profile>.json secret, mode 0600: {version, type: "oauth_token", access_token, expires_at, …}
//! ```
//!
//! Safety rules: profile names are file names (no separators, no leading dot, no whitespace at the
//! ends, no NUL); a config file writable by group or others is refused; a credentials file that is a
//! symlink, or readable or writable by group or others, is refused; credentials are written atomically
//! (a new 0600 file in the same directory, synced, then renamed over the old one) in a 0700 directory.
//! The credentials file is also the cross-process token cache (see [`crate::cache`]), serialized by an
//! exclusive lock on `<file>.lock`.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::cache::AccessToken;
use crate::source::IdentitySource;
use crate::{ClientError, Environment};

/// Where the configuration directory is, when set.
pub const ENV_CONFIG_DIR: &str = "KEYLESS_CONFIG_DIR";
/// The profile to use, when set.
pub const ENV_PROFILE: &str = "KEYLESS_PROFILE";
/// The profile used when nothing selects one.
pub const DEFAULT_PROFILE: &str = "default";
/// The `type` of a credentials file.
pub const CREDENTIALS_TYPE: &str = "oauth_token";
const FILE_VERSION: &str = "1.0";

/// The configuration directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigDir {
    root: PathBuf,
}

impl ConfigDir {
    /// `KEYLESS_CONFIG_DIR`, else `$XDG_CONFIG_HOME/keyless`, else `$HOME/.config/keyless`.
    pub fn locate(env: &Environment) -> Result<Self, ClientError> {
        if let Some(dir) = env.get(ENV_CONFIG_DIR) {
            return Ok(Self::at(dir));
        }
        if let Some(base) = env.get("XDG_CONFIG_HOME").filter(|dir| Path::new(dir).is_absolute()) {
            return Ok(Self::at(Path::new(base).join("keyless")));
        }
        match env.get("HOME") {
            Some(home) => Ok(Self::at(Path::new(home).join(".config").join("keyless"))),
            None => Err(ClientError::Config(format!(
                "cannot locate the configuration directory: neither {ENV_CONFIG_DIR} nor HOME is set"
            ))),
        }
    }

    /// The directory at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `configs/<profile>.json`.
    pub fn config_path(&self, profile: &str) -> Result<PathBuf, ClientError> {
        check_profile_name(profile, "profile name")?;
        Ok(self.root.join("configs").join(format!("{profile}.json")))
    }

    /// `credentials/<profile>.json`.
    pub fn credentials_path(&self, profile: &str) -> Result<PathBuf, ClientError> {
        check_profile_name(profile, "profile name")?;
        Ok(self.root.join("credentials").join(format!("{profile}.json")))
    }

    /// The profile `active_config` names, if the file exists and is not empty.
    pub fn active_pointer(&self) -> Result<Option<String>, ClientError> {
        let path = self.root.join("active_config");
        match fs::read_to_string(&path) {
            Ok(text) => {
                let name = text.trim();
                if name.is_empty() {
                    return Ok(None);
                }
                check_profile_name(name, &format!("{} names a profile that", path.display()))?;
                Ok(Some(name.to_owned()))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io_error(&path, "could not be read", &error)),
        }
    }

    /// Makes `profile` the active one (`active_config`); the profile must exist.
    pub fn activate(&self, profile: &str) -> Result<(), ClientError> {
        let config = self.config_path(profile)?;
        if !config.is_file() {
            return Err(ClientError::Config(format!(
                "no profile {profile:?} (no {})",
                config.display()
            )));
        }
        write_atomically(
            &self.root.join("active_config"),
            format!("{profile}\n").as_bytes(),
            0o644,
        )
    }

    /// The profiles that have a config file, sorted.
    pub fn profiles(&self) -> Result<Vec<String>, ClientError> {
        let dir = self.root.join("configs");
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(io_error(&dir, "could not be listed", &error)),
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter_map(|name| name.strip_suffix(".json").map(str::to_owned))
            .filter(|name| check_profile_name(name, "").is_ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Reads `configs/<profile>.json`; `None` when it does not exist.
    pub fn read_profile(&self, profile: &str) -> Result<Option<ProfileConfig>, ClientError> {
        let path = self.config_path(profile)?;
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error(&path, "could not be read", &error)),
        };
        let mode = file_mode(
            &file
                .metadata()
                .map_err(|error| io_error(&path, "could not be read", &error))?,
        );
        if mode & 0o022 != 0 {
            return Err(ClientError::Config(format!(
                "config file {} is writable by group or others (mode {mode:o}); run `chmod go-w {}`",
                path.display(),
                path.display()
            )));
        }
        let config: ProfileConfig = serde_json::from_reader(std::io::BufReader::new(file))
            .map_err(|error| ClientError::Config(format!("config file {}: {error}", path.display())))?;
        Ok(Some(config))
    }

    /// Writes `configs/<profile>.json` atomically (mode 0644).
    pub fn write_profile(&self, profile: &str, config: &ProfileConfig) -> Result<(), ClientError> {
        let path = self.config_path(profile)?;
        let mut bytes = serde_json::to_vec_pretty(config)
            .map_err(|error| ClientError::Config(format!("encoding {}: {error}", path.display())))?;
        bytes.push(b'\n');
        write_atomically(&path, &bytes, 0o644)
    }
}

/// Refuses a profile name that could leave the configuration directory or confuse a reader.
pub fn check_profile_name(name: &str, what: &str) -> Result<(), ClientError> {
    let problem = if name.is_empty() {
        Some("must not be empty")
    } else if name.trim() != name {
        Some("must not start or end with whitespace")
    } else if name.starts_with('.') {
        Some("must not start with a dot")
    } else if name.contains(['/', '\\', '\0']) {
        Some("must not contain path separators or NUL")
    } else if name.len() > 128 {
        Some("must be at most 128 bytes")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(ClientError::Config(
            format!("{what} {name:?} {problem}").trim().to_owned(),
        )),
        None => Ok(()),
    }
}

/// `configs/<profile>.json`: where the server is and how to authenticate. Not secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileConfig {
    /// The file format version (`"1.0"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The server, e.g. `https://keyless.example.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The organization (needed for federation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// The workspace tokens are bound to (federation: sent in the exchange).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// How to authenticate.
    pub authentication: Authentication,
}

/// The `authentication` block of a profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Authentication {
    /// Exchange the workload's identity token through a federation rule.
    OidcFederation {
        /// `fdrl_…` (else `KEYLESS_FEDERATION_RULE_ID`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        federation_rule_id: Option<String>,
        /// `svac_…`, optional: the rule's target is used without it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service_account_id: Option<String>,
        /// The scope to request (else everything the rule grants).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<String>,
        /// Where the identity token comes from (else `KEYLESS_IDENTITY_TOKEN_FILE`/`…_TOKEN`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity_token: Option<IdentitySource>,
        /// Where to cache the exchanged token (else `credentials/<profile>.json`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credentials_path: Option<PathBuf>,
    },
    /// A bearer token kept in the credentials file by someone else (a login, a sidecar, an admin
    /// pasting the bootstrap token), re-read at every use. keyless has no refresh grant: when it
    /// expires, it is replaced outside the client.
    UserOauth {
        /// Where the token is (else `credentials/<profile>.json`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credentials_path: Option<PathBuf>,
    },
}

/// `credentials/<profile>.json`. `Debug` never shows the token.
#[derive(Debug, Clone, Default)]
pub struct StoredCredentials {
    /// The access token.
    pub access_token: Option<SecretString>,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    /// Unix seconds (keyless's addition: it scales the refresh windows).
    pub issued_at: Option<i64>,
    /// The granted scope.
    pub scope: Option<String>,
}

impl StoredCredentials {
    /// What the cache keeps of `token`.
    pub fn from_token(token: &AccessToken) -> Self {
        Self {
            access_token: Some(token.token.clone()),
            expires_at: Some(token.expires_at),
            issued_at: Some(token.issued_at),
            scope: token.scope.clone(),
        }
    }

    /// The token, when it has one with an expiry. Without `issued_at` an hour's lifetime is assumed.
    pub fn access_token(&self) -> Option<AccessToken> {
        let expires_at = self.expires_at?;
        Some(AccessToken {
            token: self.access_token.clone()?,
            expires_at,
            issued_at: self.issued_at.unwrap_or(expires_at - 3600),
            scope: self.scope.clone(),
        })
    }
}

/// Reads a credentials file; `None` when it does not exist. Refuses symlinks and files readable or
/// writable by group or others; never puts file content in an error.
pub fn read_credentials(path: &Path) -> Result<Option<StoredCredentials>, ClientError> {
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error(path, "could not be accessed", &error)),
    };
    if metadata.file_type().is_symlink() {
        return Err(ClientError::Config(format!(
            "credentials file {} is a symlink; refusing to follow it (move the real file into place)",
            path.display()
        )));
    }
    let mode = file_mode(&metadata);
    if mode & 0o077 != 0 {
        return Err(ClientError::Config(format!(
            "credentials file {} is accessible by group or others (mode {mode:o}); run `chmod 600 {}`",
            path.display(),
            path.display()
        )));
    }
    let bytes = fs::read(path).map_err(|error| io_error(path, "could not be read", &error))?;
    let serde_json::Value::Object(mut object) = serde_json::from_slice(&bytes)
        .map_err(|_| ClientError::Config(format!("credentials file {} is not valid JSON", path.display())))?
    else {
        return Err(ClientError::Config(format!(
            "credentials file {} must hold a JSON object",
            path.display()
        )));
    };
    let kind = object.get("type").and_then(serde_json::Value::as_str);
    if kind.is_some_and(|kind| kind != CREDENTIALS_TYPE) {
        return Err(ClientError::Config(format!(
            "credentials file {} has type {:?}; expected {CREDENTIALS_TYPE:?}",
            path.display(),
            kind.unwrap_or_default()
        )));
    }
    let mut text = |key: &str| match object.remove(key) {
        Some(serde_json::Value::String(value)) if !value.is_empty() => Some(value),
        _ => None,
    };
    let access_token = text("access_token").map(SecretString::from);
    let scope = text("scope");
    let number = |key: &str| {
        object
            .get(key)
            .and_then(serde_json::Value::as_f64)
            .map(|value| value as i64)
    };
    Ok(Some(StoredCredentials {
        access_token,
        expires_at: number("expires_at"),
        issued_at: number("issued_at"),
        scope,
    }))
}

/// Writes a credentials file atomically, mode 0600, in a 0700 directory.
pub fn write_credentials(path: &Path, credentials: &StoredCredentials) -> Result<(), ClientError> {
    let mut object = serde_json::Map::new();
    object.insert("version".to_owned(), FILE_VERSION.into());
    object.insert("type".to_owned(), CREDENTIALS_TYPE.into());
    if let Some(token) = &credentials.access_token {
        object.insert("access_token".to_owned(), token.expose_secret().into());
    }
    for (key, value) in [
        ("expires_at", credentials.expires_at),
        ("issued_at", credentials.issued_at),
    ] {
        if let Some(value) = value {
            object.insert(key.to_owned(), value.into());
        }
    }
    if let Some(scope) = &credentials.scope {
        object.insert("scope".to_owned(), scope.clone().into());
    }
    let mut bytes = serde_json::to_vec_pretty(&object)
        .map_err(|error| ClientError::Config(format!("encoding {}: {error}", path.display())))?;
    bytes.push(b'\n');
    write_atomically(path, &bytes, 0o600)
}

/// An exclusive lock on `<path>.lock`, held until dropped. Waits for another holder on a blocking thread.
pub async fn lock_exclusive(path: &Path) -> Result<File, ClientError> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    create_private_dir(&lock_path)?;
    let file = open_with_mode(
        &lock_path,
        0o600,
        OpenOptions::new().create(true).truncate(false).write(true),
    )
    .map_err(|error| io_error(&lock_path, "could not be opened", &error))?;
    tokio::task::spawn_blocking(move || {
        file.lock()
            .map(|()| file)
            .map_err(|error| io_error(&lock_path, "could not be locked", &error))
    })
    .await
    .map_err(|error| ClientError::Config(format!("waiting for the token cache lock: {error}")))?
}

fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ClientError> {
    create_private_dir(path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("file");
    let mut attempt = 0u32;
    let (temp, mut file) = loop {
        let mut random = [0u8; 8];
        aws_lc_rs::rand::fill(&mut random)
            .map_err(|_| ClientError::Config("the random generator failed".to_owned()))?;
        let nonce = u64::from_le_bytes(random);
        let temp = dir.join(format!(".{name}.{}.{nonce:016x}.{attempt}.tmp", std::process::id()));
        match open_with_mode(&temp, mode, OpenOptions::new().create_new(true).write(true)) {
            Ok(file) => break (temp, file),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
            Err(error) => return Err(io_error(&temp, "could not be created", &error)),
        }
    };
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&temp, path));
    if let Err(error) = written {
        let _ = fs::remove_file(&temp);
        return Err(io_error(path, "could not be written", &error));
    }
    // Best effort: make the rename itself durable.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Creates `path`'s parent directory (and its parents) if missing; new directories get mode 0700.
fn create_private_dir(path: &Path) -> Result<(), ClientError> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|error| io_error(dir, "could not be created", &error))
}

fn open_with_mode(path: &Path, mode: u32, options: &mut OpenOptions) -> std::io::Result<File> {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)
}

#[cfg(unix)]
fn file_mode(metadata: &fs::Metadata) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o777
}

#[cfg(not(unix))]
fn file_mode(_metadata: &fs::Metadata) -> u32 {
    0o600
}

fn io_error(path: &Path, what: &str, error: &std::io::Error) -> ClientError {
    ClientError::Config(format!("{} {what}: {error}", path.display()))
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn stored(token: &str) -> StoredCredentials {
        StoredCredentials {
            access_token: Some(SecretString::from(token)),
            expires_at: Some(2_000_000_000),
            issued_at: Some(1_999_996_400),
            scope: Some("workspace:developer".to_owned()),
        }
    }

    #[test]
    fn credentials_round_trip_with_mode_0600_in_a_0700_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials").join("ci.json");
        write_credentials(&path, &stored("kl_at_secret")).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let read = read_credentials(&path).unwrap().unwrap();
        assert_eq!(read.access_token.as_ref().unwrap().expose_secret(), "kl_at_secret");
        assert_eq!(
            (read.expires_at, read.issued_at),
            (Some(2_000_000_000), Some(1_999_996_400))
        );
        let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(json["type"], "oauth_token");
        assert_eq!(json["version"], "1.0");
        // Rewriting replaces the file; no temporary file is left behind.
        write_credentials(&path, &stored("kl_at_second")).unwrap();
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("ci.json")]);
        assert!(!format!("{read:?}").contains("kl_at_secret"), "Debug hides the token");
    }

    #[test]
    fn unsafe_credentials_files_are_refused_without_showing_their_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ci.json");
        write_credentials(&path, &stored("kl_at_secret")).unwrap();
        chmod(&path, 0o644);
        let error = read_credentials(&path).unwrap_err().to_string();
        assert!(
            error.contains("accessible by group or others (mode 644)") && error.contains("chmod 600"),
            "{error}"
        );
        chmod(&path, 0o620);
        assert!(read_credentials(&path).is_err());
        chmod(&path, 0o600);
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let error = read_credentials(&link).unwrap_err().to_string();
        assert!(error.contains("is a symlink"), "{error}");
        fs::write(&path, "kl_at_secret not json").unwrap();
        let error = read_credentials(&path).unwrap_err().to_string();
        assert!(
            error.contains("not valid JSON") && !error.contains("kl_at_secret"),
            "{error}"
        );
        fs::write(&path, r#"{"type": "api_key", "access_token": "kl_at_secret"}"#).unwrap();
        let error = read_credentials(&path).unwrap_err().to_string();
        assert!(
            error.contains("has type \"api_key\"") && !error.contains("kl_at_secret"),
            "{error}"
        );
        assert!(read_credentials(&dir.path().join("missing.json")).unwrap().is_none());
    }

    #[test]
    fn profiles_are_written_listed_activated_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let config_dir = ConfigDir::at(dir.path());
        assert!(config_dir.profiles().unwrap().is_empty());
        assert_eq!(config_dir.active_pointer().unwrap(), None);
        let profile: ProfileConfig = serde_json::from_str(
            r#"{"base_url": "https://k.example", "organization_id": "org", "authentication":
                {"type": "oidc_federation", "federation_rule_id": "fdrl_1", "identity_token": {"source": "file", "path": "/t"}}}"#,
        )
        .unwrap();
        config_dir.write_profile("ci", &profile).unwrap();
        config_dir.write_profile("admin", &profile).unwrap();
        assert_eq!(config_dir.profiles().unwrap(), ["admin", "ci"]);
        assert_eq!(config_dir.read_profile("ci").unwrap().unwrap(), profile);
        assert!(config_dir.activate("nope").is_err());
        config_dir.activate("ci").unwrap();
        assert_eq!(config_dir.active_pointer().unwrap().as_deref(), Some("ci"));
        let path = config_dir.config_path("ci").unwrap();
        chmod(&path, 0o666);
        let error = config_dir.read_profile("ci").unwrap_err().to_string();
        assert!(error.contains("writable by group or others"), "{error}");
        for bad in ["", ".hidden", "a/b", " ci", "a\\b"] {
            assert!(config_dir.config_path(bad).is_err(), "{bad:?}");
        }
        let unknown = serde_json::from_str::<ProfileConfig>(r#"{"authentication": {"type": "api_key"}}"#);
        assert!(unknown.is_err());
    }
}
