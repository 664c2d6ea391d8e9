//! The credential chain: which credential a client uses, decided in the reference SDKs' order.
//!
//! 1. **Explicit arguments** ([`Explicit`]: an API key or a bearer token given in code or on the
//!    command line).
//! 2. **`KEYLESS_API_KEY`**, then **`KEYLESS_AUTH_TOKEN`** (a static bearer).
//! 3. **An explicitly selected profile**: [`Explicit::profile`] or `KEYLESS_PROFILE`. Its failures are
//!    errors: whoever names a profile expects it to be used.
//! 4. **Federation from the environment**: `KEYLESS_FEDERATION_RULE_ID` and `KEYLESS_ORGANIZATION_ID`,
//!    with `KEYLESS_IDENTITY_TOKEN_FILE` (re-read at every exchange), `KEYLESS_IDENTITY_TOKEN` or
//!    `KEYLESS_IDENTITY_TOKEN_SOURCE` (a source name such as `github_actions`, or a source's JSON), plus
//!    the optional `KEYLESS_SERVICE_ACCOUNT_ID`, `KEYLESS_WORKSPACE_ID`, `KEYLESS_SCOPE`. It sits above
//!    the active profile so that a machine wired for federation uses it even with a leftover profile.
//! 5. **The active profile**: the one `active_config` names, else `default`. Its failures are errors
//!    when `KEYLESS_CONFIG_DIR` is set or `active_config` exists; a missing `default` profile is not.
//!
//! A static key that wins while a federation setup or a profile is also configured is reported in
//! [`Resolution::warnings`]: a leftover `KEYLESS_API_KEY` silently shadowing federation is the classic
//! migration mistake. [`Resolution::steps`] says, for every step, why it won or was passed over (what
//! `keyless auth status` prints).
//!
//! The base URL: [`Explicit::base_url`], else `KEYLESS_BASE_URL`, else the profile's `base_url`, else
//! [`DEFAULT_BASE_URL`]; it must be https except on loopback.
//!
//! Federated tokens are cached on disk so that processes share them (and a single-use identity token is
//! exchanged once): a profile's in `credentials/<profile>.json`, an environment setup's in
//! `cache/federation-<hash>.json` under the configuration directory, the hash covering everything that
//! decides the token (server, organization, rule, service account, workspace, scope, identity source).

use std::sync::Arc;

use aws_lc_rs::digest;
use secrecy::SecretString;

use crate::api::Credential;
use crate::cache::{AccessToken, Fetch, TokenCache, TokenSource};
use crate::clock::Clock;
use crate::config::{self, Authentication, ConfigDir, ProfileConfig};
use crate::exchange::{Federation, FederationExchange};
use crate::source::IdentitySource;
use crate::{ClientError, Environment};

/// The server used when nothing names one: `keyless serve`'s default listen address.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080";

/// The environment variables the chain reads.
pub mod vars {
    /// A workspace API key.
    pub const API_KEY: &str = "KEYLESS_API_KEY";
    /// A static bearer token.
    pub const AUTH_TOKEN: &str = "KEYLESS_AUTH_TOKEN";
    /// The server.
    pub const BASE_URL: &str = "KEYLESS_BASE_URL";
    /// The federation rule to exchange through.
    pub const FEDERATION_RULE_ID: &str = "KEYLESS_FEDERATION_RULE_ID";
    /// The organization.
    pub const ORGANIZATION_ID: &str = "KEYLESS_ORGANIZATION_ID";
    /// The service account (optional).
    pub const SERVICE_ACCOUNT_ID: &str = "KEYLESS_SERVICE_ACCOUNT_ID";
    /// The workspace (optional).
    pub const WORKSPACE_ID: &str = "KEYLESS_WORKSPACE_ID";
    /// The scope to request (optional).
    pub const SCOPE: &str = "KEYLESS_SCOPE";
    /// A file holding the identity token, re-read at every exchange.
    pub const IDENTITY_TOKEN_FILE: &str = "KEYLESS_IDENTITY_TOKEN_FILE";
    /// The identity token itself.
    pub const IDENTITY_TOKEN: &str = "KEYLESS_IDENTITY_TOKEN";
    /// Where the identity token comes from: a source name (`github_actions`, `gcp_metadata`, `azure`,
    /// `kubernetes`, `auto`) or a source's JSON (`{"source": "url", …}`).
    pub const IDENTITY_TOKEN_SOURCE: &str = "KEYLESS_IDENTITY_TOKEN_SOURCE";
}

/// Credentials given explicitly (code or command-line flags): they beat the environment.
#[derive(Debug, Clone, Default)]
pub struct Explicit {
    /// The server.
    pub base_url: Option<String>,
    /// An API key.
    pub api_key: Option<SecretString>,
    /// A bearer token.
    pub auth_token: Option<SecretString>,
    /// A profile to use (as `KEYLESS_PROFILE`).
    pub profile: Option<String>,
}

/// One step of the chain and what happened at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The step (`explicit arguments`, `KEYLESS_API_KEY`, …).
    pub name: String,
    /// Whether it provided the credential.
    pub won: bool,
    /// Why it won, or why it was passed over.
    pub detail: String,
}

/// The chain's decision.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// The credential to use.
    pub credential: Credential,
    /// The server to use.
    pub base_url: String,
    /// Where the base URL came from.
    pub base_url_source: String,
    /// The profile used, if one was.
    pub profile: Option<String>,
    /// Every step up to the winner, in order.
    pub steps: Vec<Step>,
    /// Things the user should know (a shadowed federation setup, an incomplete one).
    pub warnings: Vec<String>,
}

impl Resolution {
    /// The winning step.
    pub fn winner(&self) -> Option<&Step> {
        self.steps.iter().find(|step| step.won)
    }
}

/// Resolves the credential from `explicit` and `env`. `clock` drives token refreshes.
pub fn resolve(explicit: &Explicit, env: &Environment, clock: Arc<dyn Clock>) -> Result<Resolution, ClientError> {
    let mut chain = Chain {
        env,
        clock,
        steps: Vec::new(),
        warnings: Vec::new(),
    };
    chain.run(explicit)
}

struct Chain<'a> {
    env: &'a Environment,
    clock: Arc<dyn Clock>,
    steps: Vec<Step>,
    warnings: Vec<String>,
}

/// What a step found.
enum Found {
    Static(Credential),
    Profile(String, ProfileConfig, ConfigDir),
    Federation(Federation, Option<ConfigDir>),
}

impl Chain<'_> {
    fn step(&mut self, name: &str, won: bool, detail: impl Into<String>) {
        self.steps.push(Step {
            name: name.to_owned(),
            won,
            detail: detail.into(),
        });
    }

    fn run(&mut self, explicit: &Explicit) -> Result<Resolution, ClientError> {
        let env = self.env;
        let found = self.find(explicit)?;
        if let Found::Static(_) = found {
            self.warn_if_shadowing();
        }
        let (profile_name, profile_base_url) = match &found {
            Found::Profile(name, config, _) => (Some(name.clone()), config.base_url.clone()),
            _ => (None, None),
        };
        let (base_url, base_url_source) = if let Some(url) = &explicit.base_url {
            (url.clone(), "--base-url".to_owned())
        } else if let Some(url) = env.get(vars::BASE_URL) {
            (url.to_owned(), vars::BASE_URL.to_owned())
        } else if let Some(url) = profile_base_url {
            (url, format!("profile {}", profile_name.as_deref().unwrap_or_default()))
        } else {
            (DEFAULT_BASE_URL.to_owned(), "the default".to_owned())
        };
        let base_url = base_url.trim_end_matches('/').to_owned();
        crate::transport::checked_url(&base_url)
            .map_err(|error| ClientError::Config(format!("base URL from {base_url_source}: {error}")))?;
        let credential = match found {
            Found::Static(credential) => credential,
            Found::Federation(federation, dir) => {
                let disk = dir.map(|dir| {
                    dir.root()
                        .join("cache")
                        .join(format!("federation-{}.json", cache_key(&base_url, &federation)))
                });
                self.federated(&base_url, federation, disk)?
            }
            Found::Profile(name, config, dir) => self.profile_credential(&base_url, &name, config, &dir)?,
        };
        Ok(Resolution {
            credential,
            base_url,
            base_url_source,
            profile: profile_name,
            steps: std::mem::take(&mut self.steps),
            warnings: std::mem::take(&mut self.warnings),
        })
    }

    fn find(&mut self, explicit: &Explicit) -> Result<Found, ClientError> {
        let env = self.env;
        if let Some(key) = &explicit.api_key {
            self.step("explicit arguments", true, "an API key was given explicitly");
            return Ok(Found::Static(Credential::ApiKey(key.clone())));
        }
        if let Some(token) = &explicit.auth_token {
            self.step("explicit arguments", true, "a bearer token was given explicitly");
            return Ok(Found::Static(Credential::Bearer(token.clone())));
        }
        self.step("explicit arguments", false, "none given");
        if let Some(key) = env.get(vars::API_KEY) {
            self.step(vars::API_KEY, true, "set: the API key is sent as x-api-key");
            return Ok(Found::Static(Credential::ApiKey(SecretString::from(key))));
        }
        self.step(vars::API_KEY, false, "not set");
        if let Some(token) = env.get(vars::AUTH_TOKEN) {
            self.step(vars::AUTH_TOKEN, true, "set: used as a static bearer token");
            return Ok(Found::Static(Credential::Bearer(SecretString::from(token))));
        }
        self.step(vars::AUTH_TOKEN, false, "not set");

        let explicit_profile = explicit
            .profile
            .as_deref()
            .map(|name| (name, "--profile"))
            .or_else(|| env.get(config::ENV_PROFILE).map(|name| (name, config::ENV_PROFILE)));
        if let Some((name, from)) = explicit_profile {
            let dir = ConfigDir::locate(env)?;
            let config = dir.read_profile(name)?.ok_or_else(|| {
                ClientError::Config(format!(
                    "{from} selects profile {name:?}, but {} does not exist",
                    dir.config_path(name)
                        .map(|path| path.display().to_string())
                        .unwrap_or_default()
                ))
            })?;
            self.step("explicit profile", true, format!("{from} selects profile {name:?}"));
            return Ok(Found::Profile(name.to_owned(), config, dir));
        }
        self.step(
            "explicit profile",
            false,
            format!("neither --profile nor {} is set", config::ENV_PROFILE),
        );

        match federation_from_env(env) {
            Ok(Some(federation)) => {
                self.step(
                    "federation environment",
                    true,
                    format!(
                        "{} and {} are set; identity token from {}",
                        vars::FEDERATION_RULE_ID,
                        vars::ORGANIZATION_ID,
                        federation.identity.describe()
                    ),
                );
                return Ok(Found::Federation(federation, ConfigDir::locate(env).ok()));
            }
            Ok(None) => self.step(
                "federation environment",
                false,
                format!("{} not set", vars::FEDERATION_RULE_ID),
            ),
            Err(missing) => {
                self.warnings.push(format!(
                    "an incomplete federation setup in the environment was ignored: {missing}"
                ));
                self.step("federation environment", false, missing);
            }
        }

        let dir = match ConfigDir::locate(env) {
            Ok(dir) => dir,
            Err(error) => {
                self.step("active profile", false, error.to_string());
                return Err(self.nothing_found());
            }
        };
        let pointer = dir.active_pointer()?;
        let user_configured = env.is_set(config::ENV_CONFIG_DIR) || pointer.is_some();
        let name = pointer.clone().unwrap_or_else(|| config::DEFAULT_PROFILE.to_owned());
        let why = match &pointer {
            Some(_) => format!("{} names profile {name:?}", dir.root().join("active_config").display()),
            None => format!("the default profile {name:?}"),
        };
        match dir.read_profile(&name) {
            Ok(Some(config)) => {
                self.step("active profile", true, why);
                Ok(Found::Profile(name, config, dir))
            }
            Ok(None) if user_configured => Err(ClientError::Config(format!(
                "{why}, but {} does not exist",
                dir.config_path(&name)
                    .map(|path| path.display().to_string())
                    .unwrap_or_default()
            ))),
            Ok(None) => {
                self.step(
                    "active profile",
                    false,
                    format!(
                        "{why}: no {}",
                        dir.root().join("configs").join(format!("{name}.json")).display()
                    ),
                );
                Err(self.nothing_found())
            }
            Err(error) => Err(error),
        }
    }

    fn nothing_found(&self) -> ClientError {
        let checked: Vec<String> = self
            .steps
            .iter()
            .map(|step| format!("{}: {}", step.name, step.detail))
            .collect();
        ClientError::Config(format!(
            "no credentials found ({}); set {} (federation) or {}, or create a profile with `keyless profile set`",
            checked.join("; "),
            vars::FEDERATION_RULE_ID,
            vars::AUTH_TOKEN
        ))
    }

    fn warn_if_shadowing(&mut self) {
        let env = self.env;
        let winner = self
            .steps
            .iter()
            .find(|step| step.won)
            .map(|step| step.name.clone())
            .unwrap_or_default();
        if env.is_set(vars::FEDERATION_RULE_ID) {
            self.warnings.push(format!(
                "{winner} takes precedence over the federation setup in {} …; unset it to use federation",
                vars::FEDERATION_RULE_ID
            ));
        }
        if env.is_set(config::ENV_PROFILE) {
            self.warnings.push(format!(
                "{winner} takes precedence over the profile {} selects; unset it to use the profile",
                config::ENV_PROFILE
            ));
        }
    }

    fn federated(
        &self,
        base_url: &str,
        federation: Federation,
        disk: Option<std::path::PathBuf>,
    ) -> Result<Credential, ClientError> {
        let exchange = FederationExchange::new(base_url, federation, self.env.clone(), Arc::clone(&self.clock))?;
        let mut cache = TokenCache::new(Arc::new(exchange), Arc::clone(&self.clock));
        if let Some(path) = disk {
            cache = cache.with_disk_cache(path);
        }
        Ok(Credential::Refreshing(Arc::new(cache)))
    }

    fn profile_credential(
        &self,
        base_url: &str,
        name: &str,
        config: ProfileConfig,
        dir: &ConfigDir,
    ) -> Result<Credential, ClientError> {
        let env = self.env;
        let at = dir.config_path(name)?.display().to_string();
        match config.authentication {
            Authentication::OidcFederation {
                federation_rule_id,
                service_account_id,
                scope,
                identity_token,
                credentials_path,
            } => {
                // The file is authoritative; the environment only fills what it leaves out.
                let fill = |value: Option<String>, var: &str| value.or_else(|| env.get(var).map(str::to_owned));
                let federation_rule_id = fill(federation_rule_id, vars::FEDERATION_RULE_ID).ok_or_else(|| {
                    ClientError::Config(format!("{at}: authentication.federation_rule_id is missing"))
                })?;
                let organization_id = fill(config.organization_id, vars::ORGANIZATION_ID)
                    .ok_or_else(|| ClientError::Config(format!("{at}: organization_id is missing")))?;
                let identity = match identity_token {
                    Some(source) => source,
                    None => identity_from_env(env)?.ok_or_else(|| {
                        ClientError::Config(format!(
                            "{at}: authentication.identity_token is missing and none of {}, {} and {} is set",
                            vars::IDENTITY_TOKEN_FILE,
                            vars::IDENTITY_TOKEN,
                            vars::IDENTITY_TOKEN_SOURCE
                        ))
                    })?,
                };
                let federation = Federation {
                    federation_rule_id,
                    organization_id,
                    service_account_id: fill(service_account_id, vars::SERVICE_ACCOUNT_ID),
                    workspace_id: fill(config.workspace_id, vars::WORKSPACE_ID),
                    scope: fill(scope, vars::SCOPE),
                    identity,
                };
                let disk = match credentials_path {
                    Some(path) => path,
                    None => dir.credentials_path(name)?,
                };
                self.federated(base_url, federation, Some(disk))
            }
            Authentication::UserOauth { credentials_path } => {
                let path = match credentials_path {
                    Some(path) => path,
                    None => dir.credentials_path(name)?,
                };
                let source = StoredToken {
                    path,
                    clock: Arc::clone(&self.clock),
                };
                Ok(Credential::Refreshing(Arc::new(TokenCache::new(
                    Arc::new(source),
                    Arc::clone(&self.clock),
                ))))
            }
        }
    }
}

/// The federation setup in the environment: `Ok(None)` when no rule is named, `Err(what is missing)`
/// when one is but the setup is incomplete.
fn federation_from_env(env: &Environment) -> Result<Option<Federation>, String> {
    let Some(rule) = env.get(vars::FEDERATION_RULE_ID) else {
        return Ok(None);
    };
    let Some(organization) = env.get(vars::ORGANIZATION_ID) else {
        return Err(format!(
            "{} is set but {} is not",
            vars::FEDERATION_RULE_ID,
            vars::ORGANIZATION_ID
        ));
    };
    let Some(identity) = identity_from_env(env).map_err(|error| error.to_string())? else {
        return Err(format!(
            "{} is set but none of {}, {} and {} is",
            vars::FEDERATION_RULE_ID,
            vars::IDENTITY_TOKEN_FILE,
            vars::IDENTITY_TOKEN,
            vars::IDENTITY_TOKEN_SOURCE
        ));
    };
    let optional = |var: &str| env.get(var).map(str::to_owned);
    Ok(Some(Federation {
        federation_rule_id: rule.to_owned(),
        organization_id: organization.to_owned(),
        service_account_id: optional(vars::SERVICE_ACCOUNT_ID),
        workspace_id: optional(vars::WORKSPACE_ID),
        scope: optional(vars::SCOPE),
        identity,
    }))
}

/// The identity-token source the environment names: `KEYLESS_IDENTITY_TOKEN_FILE`, else
/// `KEYLESS_IDENTITY_TOKEN`, else `KEYLESS_IDENTITY_TOKEN_SOURCE`.
fn identity_from_env(env: &Environment) -> Result<Option<IdentitySource>, ClientError> {
    if let Some(path) = env.get(vars::IDENTITY_TOKEN_FILE) {
        return Ok(Some(IdentitySource::File { path: path.into() }));
    }
    if env.is_set(vars::IDENTITY_TOKEN) {
        return Ok(Some(IdentitySource::Env {
            var: vars::IDENTITY_TOKEN.to_owned(),
        }));
    }
    let Some(text) = env.get(vars::IDENTITY_TOKEN_SOURCE) else {
        return Ok(None);
    };
    let json = if text.trim_start().starts_with('{') {
        text.to_owned()
    } else {
        serde_json::json!({ "source": text.trim() }).to_string()
    };
    serde_json::from_str(&json)
        .map(Some)
        .map_err(|error| ClientError::Config(format!("{}: {error}", vars::IDENTITY_TOKEN_SOURCE)))
}

/// The disk-cache file name for a federation setup: a hash of everything that decides the token.
fn cache_key(base_url: &str, federation: &Federation) -> String {
    let parts = [
        base_url,
        &federation.organization_id,
        &federation.federation_rule_id,
        federation.service_account_id.as_deref().unwrap_or_default(),
        federation.workspace_id.as_deref().unwrap_or_default(),
        federation.scope.as_deref().unwrap_or_default(),
        &federation.identity.describe(),
    ];
    let hash = digest::digest(&digest::SHA256, parts.join("\n").as_bytes());
    hash.as_ref()
        .iter()
        .take(12)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A bearer token someone else keeps in a credentials file (`user_oauth` profiles), re-read whenever
/// the cache needs it (near its expiry, after a 401).
struct StoredToken {
    path: std::path::PathBuf,
    clock: Arc<dyn Clock>,
}

impl TokenSource for StoredToken {
    fn fetch(&self, _force: bool) -> Fetch<'_> {
        Box::pin(async move {
            let stored = config::read_credentials(&self.path)?.ok_or_else(|| {
                ClientError::Config(format!("credentials file {} does not exist", self.path.display()))
            })?;
            let now = self.clock.now_unix();
            let token = stored.access_token.ok_or_else(|| {
                ClientError::Config(format!(
                    "credentials file {} holds no access_token",
                    self.path.display()
                ))
            })?;
            let expires_at = stored.expires_at.unwrap_or(now + 3600);
            if expires_at <= now {
                return Err(ClientError::Config(format!(
                    "the access token in {} has expired; replace it (keyless has no refresh grant)",
                    self.path.display()
                )));
            }
            Ok(AccessToken {
                token,
                expires_at,
                issued_at: stored.issued_at.unwrap_or(now.min(expires_at - 1)),
                scope: stored.scope,
            })
        })
    }

    fn describe(&self) -> String {
        format!("the access token in {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;
    use crate::clock::SystemClock;

    fn env(dir: &std::path::Path, vars: &[(&str, &str)]) -> Environment {
        let mut env = Environment::from_vars(vars.iter().copied()).with("HOME", dir.to_str().unwrap());
        env = env.with("XDG_CONFIG_HOME", "");
        env
    }

    fn resolve_in(
        dir: &std::path::Path,
        explicit: &Explicit,
        vars: &[(&str, &str)],
    ) -> Result<Resolution, ClientError> {
        resolve(explicit, &env(dir, vars), Arc::new(SystemClock))
    }

    const FEDERATION: [(&str, &str); 3] = [
        (vars::FEDERATION_RULE_ID, "fdrl_01"),
        (vars::ORGANIZATION_ID, "8c3f0ad5-61f6-4bd5-9d3f-2c6f5e0f3a10"),
        (vars::IDENTITY_TOKEN_FILE, "/var/run/secrets/keyless/token"),
    ];

    fn write_profile(dir: &std::path::Path, name: &str, json: &str) {
        let configs = dir.join(".config/keyless/configs");
        std::fs::create_dir_all(&configs).unwrap();
        std::fs::write(configs.join(format!("{name}.json")), json).unwrap();
    }

    #[test]
    fn the_order_of_the_chain() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path();
        write_profile(
            dir,
            "default",
            r#"{"base_url": "https://default.example", "authentication": {"type": "user_oauth"}}"#,
        );
        write_profile(
            dir,
            "ci",
            r#"{"base_url": "https://ci.example", "organization_id": "org", "authentication": {"type": "oidc_federation", "federation_rule_id": "fdrl_ci", "identity_token": {"source": "file", "path": "/t"}}}"#,
        );
        let explicit_key = Explicit {
            api_key: Some(SecretString::from("sk-explicit")),
            ..Explicit::default()
        };
        let winner = |explicit: &Explicit, vars: &[(&str, &str)]| {
            let resolution = resolve_in(dir, explicit, vars).unwrap();
            (resolution.winner().unwrap().name.clone(), resolution.base_url.clone())
        };
        let everything = [
            (vars::API_KEY, "sk-env"),
            (vars::AUTH_TOKEN, "bearer"),
            (config::ENV_PROFILE, "ci"),
            FEDERATION[0],
            FEDERATION[1],
            FEDERATION[2],
        ];
        assert_eq!(winner(&explicit_key, &everything).0, "explicit arguments");
        assert_eq!(winner(&Explicit::default(), &everything).0, vars::API_KEY);
        assert_eq!(winner(&Explicit::default(), &everything[1..]).0, vars::AUTH_TOKEN);
        assert_eq!(
            winner(&Explicit::default(), &everything[2..]),
            ("explicit profile".to_owned(), "https://ci.example".to_owned())
        );
        assert_eq!(
            winner(&Explicit::default(), &everything[3..]).0,
            "federation environment"
        );
        assert_eq!(
            winner(&Explicit::default(), &[]),
            ("active profile".to_owned(), "https://default.example".to_owned())
        );
        // The base URL: explicit, then KEYLESS_BASE_URL, then the profile's.
        let with_url = Explicit {
            base_url: Some("http://127.0.0.1:9/".to_owned()),
            ..Explicit::default()
        };
        assert_eq!(winner(&with_url, &[]).1, "http://127.0.0.1:9");
        assert_eq!(
            winner(&Explicit::default(), &[(vars::BASE_URL, "https://env.example")]).1,
            "https://env.example"
        );
    }

    #[test]
    fn a_static_key_shadowing_federation_is_a_warning() {
        let home = tempfile::tempdir().unwrap();
        let mut vars = FEDERATION.to_vec();
        vars.push((vars::API_KEY, "sk-leftover"));
        let resolution = resolve_in(home.path(), &Explicit::default(), &vars).unwrap();
        assert!(matches!(resolution.credential, Credential::ApiKey(_)));
        assert_eq!(resolution.warnings.len(), 1, "{:?}", resolution.warnings);
        assert!(resolution.warnings[0].contains("KEYLESS_API_KEY takes precedence over the federation setup"));
        assert!(!format!("{resolution:?}").contains("sk-leftover"), "no secret in Debug");
    }

    #[test]
    fn an_incomplete_federation_setup_is_explained() {
        let home = tempfile::tempdir().unwrap();
        let error = resolve_in(home.path(), &Explicit::default(), &FEDERATION[..1])
            .unwrap_err()
            .to_string();
        assert!(error.contains("no credentials found"), "{error}");
        assert!(
            error.contains("KEYLESS_FEDERATION_RULE_ID is set but KEYLESS_ORGANIZATION_ID is not"),
            "{error}"
        );
    }

    #[test]
    fn selected_profiles_must_exist_and_be_valid() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path();
        let error = resolve_in(dir, &Explicit::default(), &[(config::ENV_PROFILE, "missing")]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("KEYLESS_PROFILE selects profile \"missing\""),
            "{error}"
        );
        let error = resolve_in(dir, &Explicit::default(), &[(config::ENV_PROFILE, "../../etc/passwd")]).unwrap_err();
        assert!(error.to_string().contains("must not start with a dot"), "{error}");
        let error = resolve_in(dir, &Explicit::default(), &[(config::ENV_PROFILE, "a/../../b")]).unwrap_err();
        assert!(error.to_string().contains("path separators"), "{error}");
        // The active_config pointer makes a missing profile an error rather than "nothing found".
        std::fs::create_dir_all(dir.join(".config/keyless")).unwrap();
        std::fs::write(dir.join(".config/keyless/active_config"), "prod\n").unwrap();
        let error = resolve_in(dir, &Explicit::default(), &[]).unwrap_err();
        assert!(error.to_string().contains("names profile \"prod\", but"), "{error}");
        write_profile(dir, "prod", r#"{"authentication": {"type": "oidc_federation"}}"#);
        let error = resolve_in(dir, &Explicit::default(), &[]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("authentication.federation_rule_id is missing"),
            "{error}"
        );
        // The environment fills what the profile leaves out.
        let resolution = resolve_in(dir, &Explicit::default(), &FEDERATION).unwrap();
        assert_eq!(
            resolution.winner().unwrap().name,
            "federation environment",
            "federation env beats the active profile"
        );
    }

    #[test]
    fn the_base_url_must_be_https_off_loopback() {
        let home = tempfile::tempdir().unwrap();
        let error = resolve_in(
            home.path(),
            &Explicit::default(),
            &[(vars::AUTH_TOKEN, "t"), (vars::BASE_URL, "http://keyless.example")],
        )
        .unwrap_err();
        assert!(error.to_string().contains("base URL from KEYLESS_BASE_URL"), "{error}");
    }

    #[test]
    fn the_identity_token_source_may_be_named_in_the_environment() {
        let base = [FEDERATION[0], FEDERATION[1]];
        let source = |vars: &[(&str, &str)]| federation_from_env(&Environment::from_vars(vars.iter().copied()));
        let named = source(&[base[0], base[1], (vars::IDENTITY_TOKEN_SOURCE, "github_actions")])
            .unwrap()
            .unwrap();
        assert_eq!(named.identity, IdentitySource::GithubActions { audience: None });
        let json = source(&[
            base[0],
            base[1],
            (vars::IDENTITY_TOKEN_SOURCE, r#"{"source": "kubernetes", "path": "/t"}"#),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            json.identity,
            IdentitySource::Kubernetes {
                path: Some("/t".into())
            }
        );
        // The file beats the named source.
        let file = source(&[
            FEDERATION[0],
            FEDERATION[1],
            FEDERATION[2],
            (vars::IDENTITY_TOKEN_SOURCE, "auto"),
        ])
        .unwrap()
        .unwrap();
        assert!(matches!(file.identity, IdentitySource::File { .. }));
        let error = source(&[base[0], base[1], (vars::IDENTITY_TOKEN_SOURCE, "carrier_pigeon")]).unwrap_err();
        assert!(
            error.contains("KEYLESS_IDENTITY_TOKEN_SOURCE: unknown variant `carrier_pigeon`"),
            "{error}"
        );
    }

    #[test]
    fn disk_cache_names_differ_by_what_decides_the_token() {
        let federation = federation_from_env(&Environment::from_vars(FEDERATION))
            .unwrap()
            .unwrap();
        let other_scope = Federation {
            scope: Some("workspace:inference".to_owned()),
            ..federation.clone()
        };
        let a = cache_key("https://k.example", &federation);
        assert_eq!(a.len(), 24);
        assert_eq!(a, cache_key("https://k.example", &federation));
        assert_ne!(a, cache_key("https://other.example", &federation));
        assert_ne!(a, cache_key("https://k.example", &other_scope));
    }
}
