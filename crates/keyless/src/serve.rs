//! `keyless serve`: load the configuration and run `keyless-server` until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use keyless_server::config::{Config, Overrides};
use secrecy::SecretString;

/// Arguments of `keyless serve`. Flags override `keyless.toml` and the `KEYLESS_*` environment.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on (default: 127.0.0.1:8080).
    #[arg(long, env = "KEYLESS_LISTEN", value_name = "ADDR")]
    listen: Option<String>,
    /// The data directory: the SQLite database, the generated key-encryption key and bootstrap.json
    /// (default: the per-user data directory, e.g. ~/.local/share/keyless).
    #[arg(long, env = "KEYLESS_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A configuration file (default: `<data-dir>/keyless.toml` when it exists).
    #[arg(long, env = "KEYLESS_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Use PostgreSQL instead of the embedded SQLite database (postgres://…).
    #[arg(long, env = "KEYLESS_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Run the built-in reverse proxy: forward every request that is not keyless's own to this URL,
    /// once `/v1/authorize`'s check admits it (http:// or https://; its path prefixes the request's).
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
}

/// Runs the server; exit 1 when it cannot start or stops with an error.
pub(crate) fn run(args: ServeArgs) -> ExitCode {
    let overrides = Overrides {
        config_file: args.config,
        listen: args.listen,
        data_dir: args.data_dir,
        database_url: args.database_url.map(SecretString::from),
        upstream: args.upstream,
    };
    let config = match Config::load(overrides) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: configuration: {err}");
            return ExitCode::from(1);
        }
    };
    keyless_server::telemetry::init(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(keyless_server::serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(1)
        }
    }
}
