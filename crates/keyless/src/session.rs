//! How the CLI reaches a keyless server: the global flags ([`GlobalArgs`]), [`resolve`] (the
//! credential chain of `keyless_client::chain` for this process) and [`api`], the one function every
//! network command gets its `keyless_client::Api` from.
//!
//! Must not: print anything but the chain's warnings, or put a credential into an error message.

use std::sync::Arc;

use clap::Args;
use keyless_client::clock::SystemClock;
use keyless_client::{Api, ClientError, Environment, Explicit, Resolution};

/// Flags every command that talks to a server accepts (anywhere on the command line). Their
/// environment variables are read by the credential chain itself rather than by clap, so that `keyless
/// auth status` can say whether a value came from a flag or from the environment.
#[derive(Debug, Clone, Args)]
pub(crate) struct GlobalArgs {
    /// The keyless server to call (https, or http on loopback). Default: $KEYLESS_BASE_URL, else the
    /// profile's, else http://127.0.0.1:8080.
    #[arg(long, value_name = "URL", global = true)]
    pub(crate) base_url: Option<String>,
    /// The profile to take the server and credential from (a file under the configuration
    /// directory's configs/; see `keyless profile list`). Default: $KEYLESS_PROFILE.
    #[arg(long, value_name = "NAME", global = true)]
    pub(crate) profile: Option<String>,
}

/// Runs the credential chain for this process and prints its warnings on stderr.
pub(crate) fn resolve(global: &GlobalArgs) -> Result<Resolution, ClientError> {
    let explicit = Explicit {
        base_url: global.base_url.clone(),
        profile: global.profile.clone(),
        ..Explicit::default()
    };
    let resolution = keyless_client::resolve(&explicit, &Environment::from_process(), Arc::new(SystemClock))?;
    for warning in &resolution.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(resolution)
}

/// The server and credential the chain picks.
pub(crate) fn api(global: &GlobalArgs) -> Result<Api, ClientError> {
    let resolution = resolve(global)?;
    Api::new(&resolution.base_url, resolution.credential)
}
