//! The `keyless` binary: a thin clap layer over `keyless-client`, `keyless-core` and
//! `keyless-jose`.
//!
//! Commands are nouns then verbs (`keyless token inspect`). Doc comments are the help text and
//! every flag has an environment variable. Exit codes: 0 success, 1 a local error or an invalid
//! token, 2 a usage error (clap's own code), and later 2 for server errors too.
//!
//! Parts: `serve` (`keyless serve`), `inspect` (`keyless token inspect`), `clock` (the one place
//! that reads the time).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool talks to its terminal"
)]

mod clock;
mod inspect;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// keyless: workload identity federation for your API.
#[derive(Debug, Parser)]
#[command(name = "keyless", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the keyless server (embedded SQLite and loopback by default).
    Serve(serve::ServeArgs),
    /// Work with tokens.
    #[command(subcommand)]
    Token(TokenCommand),
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
        Command::Token(TokenCommand::Inspect(args)) => inspect::run(args),
    }
}
