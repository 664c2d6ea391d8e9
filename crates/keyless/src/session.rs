//! How the CLI reaches a keyless server: the global flags ([`GlobalArgs`]) and [`api`], the one
//! function that turns them into a `keyless_client::Api`.
//!
//! For now the credential is `KEYLESS_AUTH_TOKEN`, sent as a bearer token; the credential chain
//! (profiles, exchanged workload tokens, the token cache) replaces the body of [`api`] and nothing else.
//!
//! Must not: print, or put a credential into an error message.

use clap::Args;
use keyless_client::{Api, ClientError, Credential, Environment};
use secrecy::SecretString;

/// The variable holding the bearer token the Admin API commands send.
pub(crate) const AUTH_TOKEN_VAR: &str = "KEYLESS_AUTH_TOKEN";

/// Flags every command that talks to a server accepts (anywhere on the command line).
#[derive(Debug, Clone, Args)]
pub(crate) struct GlobalArgs {
    /// The keyless server to call (https, or http on loopback).
    #[arg(
        long,
        env = "KEYLESS_BASE_URL",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub(crate) base_url: String,
    /// The profile to take the server and credential from (not supported yet: profiles arrive with
    /// the credential chain).
    #[arg(long, env = "KEYLESS_PROFILE", value_name = "NAME", global = true)]
    pub(crate) profile: Option<String>,
}

/// The server of `global`, with the credential of the environment (`KEYLESS_AUTH_TOKEN`).
pub(crate) fn api(global: &GlobalArgs) -> Result<Api, ClientError> {
    if let Some(profile) = &global.profile {
        return Err(ClientError::Config(format!(
            "--profile {profile}: profiles are not supported yet; set KEYLESS_BASE_URL and {AUTH_TOKEN_VAR}"
        )));
    }
    let environment = Environment::from_process();
    let token = environment
        .get(AUTH_TOKEN_VAR)
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            ClientError::Config(format!(
                "no credential: set {AUTH_TOKEN_VAR} to an access token with org:admin (on a new server, the \
                 admin_token of <data dir>/bootstrap.json)"
            ))
        })?;
    Api::new(
        &global.base_url,
        Credential::Bearer(SecretString::from(token.to_owned())),
    )
}
