//! The `keyless` binary: a thin clap layer over `keyless-client`, `keyless-core` and
//! `keyless-jose`.
//!
//! Commands are nouns then verbs (`keyless token inspect`). Doc comments are the help text and
//! every flag has an environment variable. Exit codes: 0 success, 1 a local error or an invalid
//! token, 2 a usage error (clap's own code) or the server's error answer.
//!
//! Parts: `serve` (`keyless serve`), `bootstrap` (`keyless bootstrap admin-rule`), `inspect`
//! (`keyless token inspect`), `credentials` (`keyless token`, `exec`, `auth status`), `profile`
//! (`keyless profile …`), `admin` (the Admin API nouns: `issuers`, `service-accounts`, `rules`,
//! `workspaces`, `api-keys`, `activities`, `usage`), `apply` (`keyless apply` and `export`: declarative
//! configuration), `session` (the global flags, the credential chain and the client they
//! build), `error` (one-line errors and exit codes), `output` (`--output table|json|yaml`),
//! `completions`, `clock` (the one place that reads the time).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool talks to its terminal"
)]

mod admin;
mod apply;
mod bootstrap;
mod clock;
mod completions;
mod credentials;
mod error;
mod inspect;
mod output;
mod profile;
mod serve;
mod session;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc rather than glibc's allocator: the exchange path allocates many small short-lived objects
/// (JSON claim maps, activity payloads), and glibc's `malloc`/`free`/`malloc_consolidate` were ~18 % of
/// the server's CPU under load (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// keyless: workload identity federation for your API.
#[derive(Debug, Parser)]
#[command(name = "keyless", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: session::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the keyless server (embedded SQLite and loopback by default).
    Serve(serve::ServeArgs),
    /// Set up what a new server needs, offline, on its own storage (the server may be running or not).
    #[command(subcommand)]
    Bootstrap(BootstrapCommand),
    /// Print a fresh access token from the credential chain (see `keyless auth status`), or inspect a JWT.
    ///
    /// Without a subcommand: the token on stdout (`--output json` adds expires_at, expires_in, scope and
    /// the source). Federation tokens are cached (also on disk, shared by processes) and refreshed
    /// before they expire, so calling it often is cheap.
    ///
    /// Exit status: 0 ok, 1 a local error (no credentials, an unreadable identity token), 2 the server
    /// refused the exchange (the error names the failed check and the request ID).
    Token(TokenArgs),
    /// Run a command with a fresh access token in its environment (KEYLESS_AUTH_TOKEN, plus any
    /// --env names) and the server in KEYLESS_BASE_URL.
    ///
    /// The command gets the token, not the means to mint more: KEYLESS_API_KEY, KEYLESS_PROFILE,
    /// KEYLESS_FEDERATION_RULE_ID and KEYLESS_IDENTITY_TOKEN[_FILE|_SOURCE] are removed from its
    /// environment. It exits with the command's status
    /// (128 + N when killed by signal N); 1 or 2 as `keyless token` when no token could be had.
    Exec(credentials::ExecArgs),
    /// Which credential the chain picks and why.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Client profiles: named server + credential settings in the configuration directory
    /// (KEYLESS_CONFIG_DIR, else ~/.config/keyless).
    #[command(subcommand)]
    Profile(profile::ProfileCommand),
    /// Manage federation issuers: the identity providers whose tokens are accepted.
    Issuers(admin::issuers::IssuersArgs),
    /// Manage service accounts and their workspace memberships.
    ServiceAccounts(admin::service_accounts::ServiceAccountsArgs),
    /// Manage federation rules: which tokens of an issuer become which service account.
    Rules(admin::rules::RulesArgs),
    /// Manage workspaces.
    Workspaces(admin::workspaces::WorkspacesArgs),
    /// Manage workspace API keys: static keys, for workloads not yet on federation.
    ApiKeys(admin::api_keys::ApiKeysArgs),
    /// Read the activity feed: every admin change and token exchange.
    Activities(admin::activities::ActivitiesArgs),
    /// Request counts per API key or service account and workspace, over the last 24 hours or a range.
    Usage(admin::usage::UsageArgs),
    /// Make the server match a configuration file (workspaces, service accounts, issuers, rules, by
    /// name): print the plan, then apply it.
    ///
    /// The plan lists each create, update (with the changed fields, previous → new) and, with --prune,
    /// archive. Changes are applied in dependency order and stop at the first failure (what was applied
    /// stays: apply again to converge). Applying the same file twice changes nothing the second time.
    /// API keys are not part of the file. See docs/config.md.
    ///
    /// Exit status: 0 ok (or no changes), 1 an invalid file or a local error, 2 the server refused a change.
    Apply(apply::ApplyArgs),
    /// Print the server's configuration (live workspaces, service accounts, issuers, rules) in the
    /// format `keyless apply` reads, or with --schema that format's JSON Schema.
    Export(apply::ExportArgs),
    /// Print a shell completion script.
    Completions(completions::CompletionsArgs),
}

/// `keyless token`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct TokenArgs {
    #[command(subcommand)]
    command: Option<TokenCommand>,
    #[command(flatten)]
    print: credentials::PrintArgs,
}

#[derive(Debug, Subcommand)]
enum AuthCommand {
    /// Show which credential source wins and why (every step of the chain), the server, and warnings
    /// such as a static key shadowing a federation setup. `--check` also obtains a token.
    Status(credentials::StatusArgs),
}

#[derive(Debug, Subcommand)]
enum BootstrapCommand {
    /// Give one automation workload org:admin: a federation issuer, an admin service account and an
    /// org:admin federation rule matching exactly one subject.
    ///
    /// Works on the storage `keyless serve` uses (--data-dir, --config, --database-url and their
    /// environment variables mean the same), whether the server is running or not; on an empty data
    /// directory it first sets the organization up as a first start does (bootstrap.json included).
    /// Every object is created as through the Admin API, with the actor `keyless-bootstrap-cli`.
    ///
    /// Reuse: an active issuer with the same issuer URL, an active admin service account with the same
    /// name, and a rule with the same name that already grants org:admin to the same subject (same
    /// issuer, audience and service account) — so running it twice is a no-op. Anything else under a
    /// requested name (a developer service account, an archived object, a rule that differs) is refused
    /// and nothing is changed.
    ///
    /// Exit status: 0 when the three objects exist, 1 on any error (one line on stderr), 2 on a usage
    /// error.
    AdminRule(bootstrap::AdminRuleArgs),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Print a JWT's header and claims readably and, with --jwks, verify it and name the exact failing check.
    ///
    /// Exit status: 0 when every check that ran passed (without --jwks the signature is not
    /// checked), 1 when one failed, 2 on a usage error or an unusable --jwks.
    Inspect(inspect::InspectArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Bootstrap(BootstrapCommand::AdminRule(args)) => bootstrap::run(args),
        Command::Token(TokenArgs {
            command: Some(TokenCommand::Inspect(args)),
            ..
        }) => inspect::run(args),
        Command::Token(TokenArgs { command: None, print }) => credentials::token(&cli.global, &print),
        Command::Exec(args) => credentials::exec(&cli.global, &args),
        Command::Auth(AuthCommand::Status(args)) => credentials::status(&cli.global, &args),
        Command::Profile(command) => profile::run(&cli.global, command),
        Command::Issuers(args) => admin::issuers::main(&cli.global, args),
        Command::ServiceAccounts(args) => admin::service_accounts::main(&cli.global, args),
        Command::Rules(args) => admin::rules::main(&cli.global, args),
        Command::Workspaces(args) => admin::workspaces::main(&cli.global, args),
        Command::ApiKeys(args) => admin::api_keys::main(&cli.global, args),
        Command::Activities(args) => admin::activities::main(&cli.global, args),
        Command::Usage(args) => admin::usage::main(&cli.global, args),
        Command::Apply(args) => apply::apply(&cli.global, args),
        Command::Export(args) => apply::export(&cli.global, &args),
        Command::Completions(args) => completions::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Clap's own consistency checks (unique argument and group names, valid defaults) on every command.
    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
