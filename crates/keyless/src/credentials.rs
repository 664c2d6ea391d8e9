//! The credential side of the CLI: `keyless token`, `keyless exec`, `keyless auth status`.
//!
//! All of it is keyless-client's credential chain ([`keyless_client::chain`]); this module only turns
//! flags into a chain resolution and results into output and exit codes (0 ok, 1 a local error, 2 the server
//! refused).

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use keyless_client::chain::vars;
use keyless_client::{ClientError, Credential, Resolution};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::error::CliError;
use crate::session::{GlobalArgs, resolve};

/// Prints `error` as one line; its exit code.
pub(crate) fn fail(error: ClientError) -> ExitCode {
    CliError::from(error).report()
}

/// How to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Readable text.
    Text,
    /// JSON on one line.
    Json,
}

/// `keyless token` (print a token).
#[derive(Debug, Args)]
pub(crate) struct PrintArgs {
    /// `text` prints the bare token; `json` adds its expiry, scope and source.
    #[arg(long, short, env = "KEYLESS_OUTPUT", value_enum, default_value = "text")]
    output: Format,
}

/// A fresh access token from the chain, and what it came from.
struct Obtained {
    token: secrecy::SecretString,
    expires_at: Option<i64>,
    scope: Option<String>,
    source: String,
}

async fn obtain(resolution: &Resolution) -> Result<Obtained, ClientError> {
    let source = resolution.winner().map(|step| step.name.clone()).unwrap_or_default();
    match &resolution.credential {
        Credential::ApiKey(_) => Err(ClientError::Config(format!(
            "the credential chain chose an API key ({source}), which is not an access token; unset it to use federation"
        ))),
        Credential::Bearer(token) => Ok(Obtained {
            token: token.clone(),
            expires_at: None,
            scope: None,
            source,
        }),
        Credential::Refreshing(cache) => {
            let token = cache.token().await?;
            Ok(Obtained {
                token: token.token,
                expires_at: Some(token.expires_at),
                scope: token.scope,
                source: format!("{source}: {}", cache.describe()),
            })
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ClientError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| ClientError::Config(format!("starting the async runtime: {error}")))
}

/// `keyless token`.
pub(crate) fn token(global: &GlobalArgs, args: &PrintArgs) -> ExitCode {
    let result = resolve(global).and_then(|resolution| runtime()?.block_on(obtain(&resolution)));
    let obtained = match result {
        Ok(obtained) => obtained,
        Err(error) => return fail(error),
    };
    match args.output {
        Format::Text => println!("{}", obtained.token.expose_secret()),
        Format::Json => {
            let now = crate::clock::now_unix();
            println!(
                "{}",
                json!({
                    "access_token": obtained.token.expose_secret(),
                    "token_type": "Bearer",
                    "expires_at": obtained.expires_at.map(crate::clock::rfc3339),
                    "expires_in": obtained.expires_at.map(|at| (at - now).max(0)),
                    "scope": obtained.scope,
                    "source": obtained.source,
                })
            );
        }
    }
    ExitCode::SUCCESS
}

/// `keyless exec`.
#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// Also put the token in this environment variable (repeatable), for programs that read another
    /// name (e.g. ANTHROPIC_AUTH_TOKEN).
    #[arg(long = "env", value_name = "NAME", env = "KEYLESS_EXEC_ENV", value_delimiter = ',')]
    extra_vars: Vec<String>,
    /// The command and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    command: Vec<String>,
}

/// `keyless exec -- COMMAND ARGS…`: runs the command with a fresh token in `KEYLESS_AUTH_TOKEN` (and
/// the `--env` names) and the server in `KEYLESS_BASE_URL`; exits with the command's status.
pub(crate) fn exec(global: &GlobalArgs, args: &ExecArgs) -> ExitCode {
    let result = resolve(global).and_then(|resolution| {
        let obtained = runtime()?.block_on(obtain(&resolution))?;
        Ok((resolution, obtained))
    });
    let (resolution, obtained) = match result {
        Ok(found) => found,
        Err(error) => return fail(error),
    };
    for name in &args.extra_vars {
        if name.is_empty() || name.contains(['=', '\0']) {
            eprintln!("error: --env {name:?} is not an environment variable name");
            return ExitCode::from(1);
        }
    }
    let Some((program, rest)) = args.command.split_first() else {
        eprintln!("error: no command given");
        return ExitCode::from(1);
    };
    let mut command = std::process::Command::new(program);
    command
        .args(rest)
        .env("KEYLESS_AUTH_TOKEN", obtained.token.expose_secret())
        .env("KEYLESS_BASE_URL", &resolution.base_url)
        // The child gets the token, not the means to mint more (and its own keyless clients then see
        // one credential, with no shadowed federation setup to warn about).
        .env_remove("KEYLESS_API_KEY")
        .env_remove("KEYLESS_PROFILE");
    for var in [
        vars::FEDERATION_RULE_ID,
        vars::IDENTITY_TOKEN,
        vars::IDENTITY_TOKEN_FILE,
        vars::IDENTITY_TOKEN_SOURCE,
    ] {
        command.env_remove(var);
    }
    for name in &args.extra_vars {
        command.env(name, obtained.token.expose_secret());
    }
    match command.status() {
        Ok(status) => exit_code_of(status),
        Err(error) => {
            eprintln!("error: could not run {program:?}: {error}");
            ExitCode::from(1)
        }
    }
}

#[cfg(unix)]
fn exit_code_of(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        (None, Some(signal)) => ExitCode::from(u8::try_from(128 + signal).unwrap_or(1)),
        (None, None) => ExitCode::from(1),
    }
}

#[cfg(not(unix))]
fn exit_code_of(status: std::process::ExitStatus) -> ExitCode {
    ExitCode::from(status.code().and_then(|code| u8::try_from(code).ok()).unwrap_or(1))
}

/// `keyless auth status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Also obtain a token (an exchange, for federation) to prove the credential works.
    #[arg(long, env = "KEYLESS_AUTH_STATUS_CHECK")]
    check: bool,
    /// `text` or `json`.
    #[arg(long, short, env = "KEYLESS_OUTPUT", value_enum, default_value = "text")]
    output: Format,
}

/// `keyless auth status`: which credential source wins and why; with `--check`, whether it works.
pub(crate) fn status(global: &GlobalArgs, args: &StatusArgs) -> ExitCode {
    let resolution = match resolve(global) {
        Ok(resolution) => resolution,
        Err(error) => return fail(error),
    };
    let credential = match &resolution.credential {
        Credential::ApiKey(_) => "API key (x-api-key)".to_owned(),
        Credential::Bearer(_) => "static bearer token".to_owned(),
        Credential::Refreshing(cache) => match cache.disk_cache() {
            Some(path) => format!("{} (tokens cached in {})", cache.describe(), path.display()),
            None => cache.describe(),
        },
    };
    let check = args
        .check
        .then(|| runtime().and_then(|runtime| runtime.block_on(obtain(&resolution))));
    match args.output {
        Format::Text => {
            println!(
                "server:     {} (from {})",
                resolution.base_url, resolution.base_url_source
            );
            println!("credential: {credential}");
            println!("chain:");
            for step in &resolution.steps {
                let mark = if step.won { "→" } else { " " };
                println!("  {mark} {:<24} {}", step.name, step.detail);
            }
            for warning in &resolution.warnings {
                println!("warning:    {warning}");
            }
            if let Some(Ok(obtained)) = &check {
                println!(
                    "check:      ok, a token valid until {}{}",
                    obtained
                        .expires_at
                        .map_or_else(|| "(unknown)".to_owned(), crate::clock::rfc3339),
                    obtained
                        .scope
                        .as_ref()
                        .map(|scope| format!(", scope {scope}"))
                        .unwrap_or_default()
                );
            }
        }
        Format::Json => {
            let steps: Vec<_> = resolution
                .steps
                .iter()
                .map(|step| json!({"name": step.name, "won": step.won, "detail": step.detail}))
                .collect();
            let check_json = match &check {
                Some(Ok(obtained)) => {
                    json!({"ok": true, "expires_at": obtained.expires_at.map(crate::clock::rfc3339), "scope": obtained.scope})
                }
                Some(Err(error)) => json!({"ok": false, "error": error.to_string(), "request_id": error.request_id()}),
                None => serde_json::Value::Null,
            };
            println!(
                "{}",
                json!({
                    "base_url": resolution.base_url,
                    "base_url_source": resolution.base_url_source,
                    "profile": resolution.profile,
                    "credential": credential,
                    "steps": steps,
                    "warnings": resolution.warnings,
                    "check": check_json,
                })
            );
        }
    }
    match check {
        Some(Err(error)) => fail(error),
        _ => ExitCode::SUCCESS,
    }
}
