//! How a command fails: [`CliError`], one line on stderr and the exit code — 1 for a local error
//! (a flag clap cannot check, an unreadable file, no credential, no answer from the server, an answer
//! that does not decode), 2 for the server's error answer (`error: <message> (HTTP 409,
//! conflict_error, request req_…)`, with a refused exchange's stable `error_code` after the kind), as clap's usage errors are 2 too — and [`one_line`].

use std::process::ExitCode;

use keyless_client::{ApiError, ClientError};

/// Why an admin command failed: locally (exit 1) or by the server's answer (exit 2).
#[derive(Debug)]
pub(crate) enum CliError {
    /// Anything that is not the server's error answer.
    Local(String),
    /// The server's error answer.
    Server(Box<ApiError>),
}

impl From<ClientError> for CliError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Api(api) => CliError::Server(api),
            other => CliError::Local(one_line(&other)),
        }
    }
}

impl CliError {
    /// Prints the error as one line on stderr; the exit code.
    pub(crate) fn report(&self) -> ExitCode {
        match self {
            CliError::Local(message) => {
                eprintln!("error: {message}");
                ExitCode::from(1)
            }
            CliError::Server(api) => {
                let message = api.message.clone().unwrap_or_else(|| api.to_string());
                let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
                let mut context = vec![format!("HTTP {}", api.status)];
                context.extend(api.kind.clone());
                context.extend(api.code.clone());
                context.extend(
                    api.request_id
                        .as_ref()
                        .map(|request_id| format!("request {request_id}")),
                );
                eprintln!("error: {message} ({})", context.join(", "));
                ExitCode::from(2)
            }
        }
    }
}

/// The error and its causes on one line, each cause once.
pub(crate) fn one_line(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !line.contains(&cause_text) {
            line.push_str(": ");
            line.push_str(&cause_text);
        }
        source = cause.source();
    }
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}
