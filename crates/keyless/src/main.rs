//! The `keyless` binary: a thin clap layer over `keyless-client`, `keyless-core` and
//! `keyless-jose`.
//!
//! Commands are nouns then verbs (`keyless token inspect`). Doc comments are the help text and
//! every flag has an environment variable. Exit codes: 0 success, 1 a local error or an invalid
//! token, 2 a usage error (clap's own code) or the server's error answer.
//!
//! Parts: `serve` (`keyless serve`), `bootstrap` (`keyless bootstrap admin-rule`), `inspect`
//! (`keyless token inspect`), `admin` (the Admin API nouns: `issuers`, `service-accounts`, `rules`,
//! `workspaces`, `activities`), `session` (the global flags and the client they build), `output`
//! (`--output table|json|yaml`), `completions`, `clock` (the one place that reads the time).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool talks to its terminal"
)]

mod admin;
mod bootstrap;
mod clock;
mod completions;
mod inspect;
mod output;
mod serve;
mod session;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Work with tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage federation issuers: the identity providers whose tokens are accepted.
    Issuers(admin::issuers::IssuersArgs),
    /// Manage service accounts and their workspace memberships.
    ServiceAccounts(admin::service_accounts::ServiceAccountsArgs),
    /// Manage federation rules: which tokens of an issuer become which service account.
    Rules(admin::rules::RulesArgs),
    /// Manage workspaces.
    Workspaces(admin::workspaces::WorkspacesArgs),
    /// Read the activity feed: every admin change and token exchange.
    Activities(admin::activities::ActivitiesArgs),
    /// Print a shell completion script.
    Completions(completions::CompletionsArgs),
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
        Command::Token(TokenCommand::Inspect(args)) => inspect::run(args),
        Command::Issuers(args) => admin::issuers::main(&cli.global, args),
        Command::ServiceAccounts(args) => admin::service_accounts::main(&cli.global, args),
        Command::Rules(args) => admin::rules::main(&cli.global, args),
        Command::Workspaces(args) => admin::workspaces::main(&cli.global, args),
        Command::Activities(args) => admin::activities::main(&cli.global, args),
        Command::Completions(args) => completions::run(&args),
    }
}
