//! `keyless profile list|get|set|activate`: the client configuration directory's profiles
//! (`keyless_client::config`). Nothing here talks to a server.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use keyless_client::config::{self, Authentication, ConfigDir, ProfileConfig, StoredCredentials};
use keyless_client::source::IdentitySource;
use keyless_client::{ClientError, Environment};
use serde_json::json;

use crate::credentials::{Format, fail};
use crate::session::GlobalArgs;

/// Profile commands.
#[derive(Debug, Subcommand)]
pub(crate) enum ProfileCommand {
    /// List the profiles, marking the active one.
    List(ListArgs),
    /// Show a profile's configuration (never a secret) and the state of its cached credentials.
    Get(GetArgs),
    /// Create or change a profile; only the given fields change.
    Set(Box<SetArgs>),
    /// Make a profile the active one (written to `active_config`).
    Activate(ActivateArgs),
    /// Make the one-time admin token a local server wrote on its first start (`<data dir>/bootstrap.json`)
    /// a profile (default `admin`, made active): the server, its organization and the token (stored
    /// 0600, valid 24 hours from the first start).
    ImportBootstrap(ImportArgs),
}

/// `profile import-bootstrap`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The server's data directory (default: `keyless serve`'s default, e.g. ~/.local/share/keyless).
    #[arg(long, env = "KEYLESS_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The profile to write.
    #[arg(long, env = "KEYLESS_PROFILE_NAME", default_value = "admin")]
    name: String,
    /// The server (default: --base-url, else $KEYLESS_BASE_URL, else http://127.0.0.1:8080).
    #[arg(long = "server-url", env = "KEYLESS_PROFILE_BASE_URL", value_name = "URL")]
    base_url: Option<String>,
    /// Leave the active profile as it is.
    #[arg(long, env = "KEYLESS_PROFILE_NO_ACTIVATE")]
    no_activate: bool,
}

/// `profile list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// `text` or `json`.
    #[arg(long, short, env = "KEYLESS_OUTPUT", value_enum, default_value = "text")]
    output: Format,
}

/// `profile get`.
#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// The profile (default: the active one).
    name: Option<String>,
    /// `text` or `json`.
    #[arg(long, short, env = "KEYLESS_OUTPUT", value_enum, default_value = "text")]
    output: Format,
}

/// `profile activate`.
#[derive(Debug, Args)]
pub(crate) struct ActivateArgs {
    /// The profile.
    name: String,
}

/// How a profile authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AuthType {
    /// Exchange the workload's identity token through a federation rule.
    OidcFederation,
    /// A bearer token kept in the credentials file (e.g. the bootstrap admin token).
    UserOauth,
}

/// `profile set`.
#[derive(Debug, Args)]
pub(crate) struct SetArgs {
    /// The profile to create or change.
    name: String,
    /// How it authenticates (required when creating).
    #[arg(long, value_enum, env = "KEYLESS_PROFILE_AUTH_TYPE")]
    auth_type: Option<AuthType>,
    /// The server (https, or http on loopback).
    #[arg(long = "server-url", env = "KEYLESS_PROFILE_BASE_URL", value_name = "URL")]
    base_url: Option<String>,
    /// The organization ID.
    #[arg(long, env = "KEYLESS_PROFILE_ORGANIZATION_ID")]
    organization_id: Option<String>,
    /// The workspace tokens are bound to (`wrkspc_…` or `default`).
    #[arg(long, env = "KEYLESS_PROFILE_WORKSPACE_ID")]
    workspace_id: Option<String>,
    /// Federation: the rule (`fdrl_…`).
    #[arg(long, env = "KEYLESS_PROFILE_FEDERATION_RULE_ID")]
    federation_rule_id: Option<String>,
    /// Federation: the service account (`svac_…`; default: the rule's target).
    #[arg(long, env = "KEYLESS_PROFILE_SERVICE_ACCOUNT_ID")]
    service_account_id: Option<String>,
    /// Federation: the scope to request (default: everything the rule grants).
    #[arg(long, env = "KEYLESS_PROFILE_SCOPE")]
    scope: Option<String>,
    /// Federation: read the identity token from this file at every exchange.
    #[arg(
        long,
        env = "KEYLESS_PROFILE_IDENTITY_TOKEN_FILE",
        conflicts_with = "identity_token_source"
    )]
    identity_token_file: Option<PathBuf>,
    /// Federation: the identity-token source as JSON, e.g. '{"source":"github_actions"}' or
    /// '{"source":"auto"}' (see docs/client.md for every source).
    #[arg(long, env = "KEYLESS_PROFILE_IDENTITY_TOKEN_SOURCE", value_name = "JSON")]
    identity_token_source: Option<String>,
    /// user_oauth: read the access token from stdin and store it in the profile's credentials file (0600).
    #[arg(long, env = "KEYLESS_PROFILE_ACCESS_TOKEN_STDIN")]
    access_token_stdin: bool,
    /// user_oauth: when the stored token expires (RFC 3339 or Unix seconds).
    #[arg(long, env = "KEYLESS_PROFILE_EXPIRES_AT", requires = "access_token_stdin")]
    expires_at: Option<String>,
    /// Also make it the active profile.
    #[arg(long, env = "KEYLESS_PROFILE_ACTIVATE")]
    activate: bool,
}

fn dir() -> Result<ConfigDir, ClientError> {
    ConfigDir::locate(&Environment::from_process())
}

/// Runs a profile command.
pub(crate) fn run(global: &GlobalArgs, command: ProfileCommand) -> ExitCode {
    let result = match command {
        ProfileCommand::ImportBootstrap(args) => import_bootstrap(global, &args),
        ProfileCommand::List(args) => list(&args),
        ProfileCommand::Get(args) => get(&args),
        ProfileCommand::Set(args) => set(*args),
        ProfileCommand::Activate(args) => dir().and_then(|dir| {
            dir.activate(&args.name)?;
            eprintln!("profile {:?} is now active", args.name);
            Ok(())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(error),
    }
}

fn auth_type(config: &ProfileConfig) -> &'static str {
    match config.authentication {
        Authentication::OidcFederation { .. } => "oidc_federation",
        Authentication::UserOauth { .. } => "user_oauth",
    }
}

fn active(dir: &ConfigDir) -> Result<String, ClientError> {
    Ok(dir
        .active_pointer()?
        .unwrap_or_else(|| config::DEFAULT_PROFILE.to_owned()))
}

fn list(args: &ListArgs) -> Result<(), ClientError> {
    let dir = dir()?;
    let active = active(&dir)?;
    let mut rows = Vec::new();
    for name in dir.profiles()? {
        let config = dir.read_profile(&name)?;
        rows.push((name, config));
    }
    match args.output {
        Format::Json => {
            let data: Vec<_> = rows
                .iter()
                .map(|(name, config)| {
                    json!({
                        "name": name,
                        "active": *name == active,
                        "base_url": config.as_ref().and_then(|config| config.base_url.clone()),
                        "authentication": config.as_ref().map(auth_type),
                    })
                })
                .collect();
            println!("{}", json!({ "config_dir": dir.root(), "data": data }));
        }
        Format::Text => {
            if rows.is_empty() {
                eprintln!("no profiles in {}", dir.root().display());
            }
            for (name, config) in rows {
                let mark = if name == active { "*" } else { " " };
                let base_url = config
                    .as_ref()
                    .and_then(|config| config.base_url.clone())
                    .unwrap_or_default();
                let kind = config.as_ref().map_or("", auth_type);
                println!("{mark} {name:<20} {kind:<16} {base_url}");
            }
        }
    }
    Ok(())
}

fn get(args: &GetArgs) -> Result<(), ClientError> {
    let dir = dir()?;
    let name = match &args.name {
        Some(name) => name.clone(),
        None => active(&dir)?,
    };
    let config = dir
        .read_profile(&name)?
        .ok_or_else(|| ClientError::Config(format!("no profile {name:?} in {}", dir.root().display())))?;
    let credentials_path = match &config.authentication {
        Authentication::OidcFederation { credentials_path, .. } | Authentication::UserOauth { credentials_path } => {
            credentials_path.clone()
        }
    }
    .map_or_else(|| dir.credentials_path(&name), Ok)?;
    let cached = match config::read_credentials(&credentials_path) {
        Ok(Some(stored)) => json!({
            "path": credentials_path,
            "has_access_token": stored.access_token.is_some(),
            "expires_at": stored.expires_at.map(crate::clock::rfc3339),
        }),
        Ok(None) => json!({ "path": credentials_path, "has_access_token": false }),
        Err(error) => json!({ "path": credentials_path, "error": error.to_string() }),
    };
    let config_json = serde_json::to_value(&config).map_err(|error| ClientError::Decode(error.to_string()))?;
    let answer = json!({ "name": name, "config": config_json, "credentials": cached });
    match args.output {
        Format::Json => println!("{answer}"),
        Format::Text => println!(
            "{}",
            serde_json::to_string_pretty(&answer).map_err(|error| ClientError::Decode(error.to_string()))?
        ),
    }
    Ok(())
}

fn set(args: SetArgs) -> Result<(), ClientError> {
    let dir = dir()?;
    let existing = dir.read_profile(&args.name)?;
    let creating = existing.is_none();
    let mut config = match (existing, args.auth_type) {
        (Some(config), None) => config,
        (Some(config), Some(kind)) if auth_type(&config) == kind_name(kind) => config,
        (_, Some(kind)) => ProfileConfig {
            authentication: match kind {
                AuthType::OidcFederation => Authentication::OidcFederation {
                    federation_rule_id: None,
                    service_account_id: None,
                    scope: None,
                    identity_token: None,
                    credentials_path: None,
                },
                AuthType::UserOauth => Authentication::UserOauth { credentials_path: None },
            },
            version: Some("1.0".to_owned()),
            base_url: None,
            organization_id: None,
            workspace_id: None,
        },
        (None, None) => {
            return Err(ClientError::Config(format!(
                "profile {:?} does not exist: give --auth-type to create it",
                args.name
            )));
        }
    };
    if let Some(url) = &args.base_url {
        keyless_client::Api::anonymous(url)?;
        config.base_url = Some(url.trim_end_matches('/').to_owned());
    }
    set_if(&mut config.organization_id, args.organization_id);
    set_if(&mut config.workspace_id, args.workspace_id);
    let identity = match (args.identity_token_file, &args.identity_token_source) {
        (Some(path), _) => Some(IdentitySource::File { path }),
        (None, Some(json)) => Some(
            serde_json::from_str::<IdentitySource>(json)
                .map_err(|error| ClientError::Config(format!("--identity-token-source: {error}")))?,
        ),
        (None, None) => None,
    };
    match &mut config.authentication {
        Authentication::OidcFederation {
            federation_rule_id,
            service_account_id,
            scope,
            identity_token,
            ..
        } => {
            set_if(federation_rule_id, args.federation_rule_id);
            set_if(service_account_id, args.service_account_id);
            set_if(scope, args.scope);
            if identity.is_some() {
                *identity_token = identity;
            }
            if args.access_token_stdin {
                return Err(ClientError::Config(
                    "--access-token-stdin is for user_oauth profiles; federation profiles exchange their own tokens"
                        .to_owned(),
                ));
            }
        }
        Authentication::UserOauth { .. } => {
            let federation_only = [
                ("--federation-rule-id", args.federation_rule_id.is_some()),
                ("--service-account-id", args.service_account_id.is_some()),
                ("--scope", args.scope.is_some()),
                ("--identity-token-file/--identity-token-source", identity.is_some()),
            ];
            if let Some((flag, _)) = federation_only.iter().find(|(_, given)| *given) {
                return Err(ClientError::Config(format!("{flag} is for oidc_federation profiles")));
            }
        }
    }
    if args.access_token_stdin {
        let mut token = String::new();
        std::io::stdin()
            .read_to_string(&mut token)
            .map_err(|error| ClientError::Config(format!("reading the access token from stdin: {error}")))?;
        let token = token.trim();
        if token.is_empty() {
            return Err(ClientError::Config("no access token on stdin".to_owned()));
        }
        let expires_at = args.expires_at.as_deref().map(parse_time).transpose()?;
        let path = match &config.authentication {
            Authentication::UserOauth {
                credentials_path: Some(path),
            } => path.clone(),
            _ => dir.credentials_path(&args.name)?,
        };
        config::write_credentials(
            &path,
            &StoredCredentials {
                access_token: Some(token.to_owned().into()),
                expires_at,
                issued_at: None,
                scope: None,
            },
        )?;
        eprintln!("access token stored in {} (mode 0600)", path.display());
    }
    dir.write_profile(&args.name, &config)?;
    eprintln!(
        "profile {:?} {} in {}",
        args.name,
        if creating { "created" } else { "updated" },
        dir.config_path(&args.name)?.display()
    );
    if args.activate {
        dir.activate(&args.name)?;
        eprintln!("profile {:?} is now active", args.name);
    }
    Ok(())
}

fn kind_name(kind: AuthType) -> &'static str {
    match kind {
        AuthType::OidcFederation => "oidc_federation",
        AuthType::UserOauth => "user_oauth",
    }
}

fn set_if(field: &mut Option<String>, value: Option<String>) {
    if let Some(value) = value {
        *field = (!value.is_empty()).then_some(value);
    }
}

fn parse_time(text: &str) -> Result<i64, ClientError> {
    if let Ok(unix) = text.parse::<i64>() {
        return Ok(unix);
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(time::OffsetDateTime::unix_timestamp)
        .map_err(|_| ClientError::Config(format!("--expires-at {text:?}: not an RFC 3339 time or Unix seconds")))
}

fn import_bootstrap(global: &GlobalArgs, args: &ImportArgs) -> Result<(), ClientError> {
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => keyless_server::config::default_data_dir().map_err(|error| ClientError::Config(error.to_string()))?,
    };
    let path = data_dir.join("bootstrap.json");
    let text = std::fs::read_to_string(&path).map_err(|error| {
        ClientError::Config(format!(
            "{}: {error} (it is written on the server's first start; pass --data-dir if the server uses another)",
            path.display()
        ))
    })?;
    let document: serde_json::Value = serde_json::from_str(&text)
        .map_err(|_| ClientError::Config(format!("{} is not the JSON keyless writes", path.display())))?;
    let field = |name: &str| {
        document
            .get(name)
            .ok_or_else(|| ClientError::Config(format!("{} has no {name}", path.display())))
    };
    let organization_id = field("organization_id")?.as_str().unwrap_or_default().to_owned();
    let token = field("admin_token")?.as_str().unwrap_or_default().to_owned();
    let expires_at = field("expires_at")?.as_i64().unwrap_or_default();
    if organization_id.is_empty() || token.is_empty() {
        return Err(ClientError::Config(format!(
            "{} is not the JSON keyless writes",
            path.display()
        )));
    }
    if expires_at <= crate::clock::now_unix() {
        return Err(ClientError::Config(format!(
            "the bootstrap token in {} expired at {}: give automation org:admin with `keyless bootstrap admin-rule`",
            path.display(),
            crate::clock::rfc3339(expires_at)
        )));
    }
    let base_url = args
        .base_url
        .clone()
        .or_else(|| global.base_url.clone())
        .or_else(|| {
            Environment::from_process()
                .get(keyless_client::chain::vars::BASE_URL)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| keyless_client::chain::DEFAULT_BASE_URL.to_owned());
    keyless_client::Api::anonymous(&base_url)?;
    let dir = dir()?;
    let config = ProfileConfig {
        version: Some("1.0".to_owned()),
        base_url: Some(base_url.trim_end_matches('/').to_owned()),
        organization_id: Some(organization_id),
        workspace_id: None,
        authentication: Authentication::UserOauth { credentials_path: None },
    };
    let credentials = dir.credentials_path(&args.name)?;
    config::write_credentials(
        &credentials,
        &StoredCredentials {
            access_token: Some(token.into()),
            expires_at: Some(expires_at),
            issued_at: None,
            scope: Some(keyless_core::scope::ORG_ADMIN.to_owned()),
        },
    )?;
    dir.write_profile(&args.name, &config)?;
    eprintln!(
        "profile {:?}: {} with the bootstrap org:admin token (valid until {}; stored in {})",
        args.name,
        config.base_url.as_deref().unwrap_or_default(),
        crate::clock::rfc3339(expires_at),
        credentials.display()
    );
    if !args.no_activate {
        dir.activate(&args.name)?;
        eprintln!("profile {:?} is now active", args.name);
    }
    Ok(())
}
