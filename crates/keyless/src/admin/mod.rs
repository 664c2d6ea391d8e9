//! The Admin API nouns: `keyless issuers|service-accounts|rules|workspaces|api-keys|activities …` and
//! `keyless usage`, a thin clap layer over `keyless_client::admin`.
//!
//! Parts: [`run`] (the runtime, the credential, the spinner, and the exit codes every
//! admin command shares), [`ListArgs`] and [`collect`] (`list` walks every page unless `--limit`
//! caps it), the request-body builder [`Body`] (`--from-file` JSON, then the flags over it), then one
//! module per noun.
//!
//! Exit codes: 0 success; 1 a local error (a flag clap cannot check, an unreadable file, no
//! credential, no answer from the server, an answer that does not decode); 2 the server's error answer
//! (`error: <message> (request req_…)`) — and clap's usage errors, which are 2 too.
//!
//! Must not: make HTTP calls of its own (every call is `keyless_client::admin`), or print a credential
//! (the one exception: `api-keys create` prints the key it just created, on stdout, once).

pub(crate) mod activities;
pub(crate) mod api_keys;
pub(crate) mod issuers;
pub(crate) mod rules;
pub(crate) mod service_accounts;
pub(crate) mod usage;
pub(crate) mod workspaces;

use std::future::Future;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use keyless_client::admin::{Admin, ListOptions, Pager};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::CliError;
use crate::session::{self, GlobalArgs};

/// Runs one admin command: builds the client from the global flags, runs `work` on a runtime (with a
/// spinner on stderr when it is a terminal and `spinner` is set), and maps the outcome to an exit code.
pub(crate) fn run<F, Fut>(global: &GlobalArgs, spinner: bool, work: F) -> ExitCode
where
    F: FnOnce(Admin) -> Fut,
    Fut: Future<Output = Result<ExitCode, CliError>>,
{
    let api = match session::api(global) {
        Ok(api) => api,
        Err(err) => return CliError::from(err).report(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => return CliError::Local(format!("starting the runtime: {err}")).report(),
    };
    let progress = (spinner && std::io::stderr().is_terminal()).then(|| {
        let progress = indicatif::ProgressBar::new_spinner().with_message(format!("calling {}", api.base_url()));
        progress.enable_steady_tick(Duration::from_millis(100));
        progress
    });
    let outcome = runtime.block_on(work(Admin::new(api)));
    if let Some(progress) = progress {
        progress.finish_and_clear();
    }
    match outcome {
        Ok(code) => code,
        Err(err) => err.report(),
    }
}

/// The flags of every `list`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ListArgs {
    /// List at most this many objects (default: every page).
    #[arg(long, env = "KEYLESS_LIMIT", value_name = "N")]
    pub(crate) limit: Option<usize>,
    /// List archived objects too.
    #[arg(long, env = "KEYLESS_INCLUDE_ARCHIVED")]
    pub(crate) include_archived: bool,
    /// Objects per request, 1–100.
    #[arg(long, env = "KEYLESS_PAGE_SIZE", value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) page_size: u32,
}

impl ListArgs {
    /// The client's list options.
    pub(crate) fn options(&self) -> ListOptions {
        ListOptions {
            limit: Some(self.page_size),
            page: None,
            include_archived: self.include_archived,
        }
    }
}

/// Every object of `pager`, or the first `--limit` of them.
pub(crate) async fn collect<T: DeserializeOwned>(pager: Pager<T>, list: &ListArgs) -> Result<Vec<T>, CliError> {
    Ok(pager.collect(list.limit).await?)
}

/// A request body: the JSON object of `--from-file` (or `{}`), with the flags set over it.
pub(crate) struct Body {
    source: String,
    fields: Map<String, Value>,
}

impl Body {
    /// Reads `--from-file FILE` (`-` = stdin); an empty body without it.
    pub(crate) fn from_file(path: Option<&PathBuf>) -> Result<Self, CliError> {
        let Some(path) = path else {
            return Ok(Body {
                source: "the flags".to_owned(),
                fields: Map::new(),
            });
        };
        let (source, text) = if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|err| CliError::Local(format!("--from-file -: reading stdin: {err}")))?;
            ("--from-file -".to_owned(), text)
        } else {
            let text = std::fs::read_to_string(path)
                .map_err(|err| CliError::Local(format!("--from-file {}: {err}", path.display())))?;
            (format!("--from-file {}", path.display()), text)
        };
        match serde_json::from_str(&text) {
            Ok(Value::Object(fields)) => Ok(Body { source, fields }),
            Ok(_) => Err(CliError::Local(format!("{source}: must hold a JSON object"))),
            Err(err) => Err(CliError::Local(format!("{source}: not JSON: {err}"))),
        }
    }

    /// Sets `field` to `value` when a flag gave one.
    pub(crate) fn set(&mut self, field: &str, value: Option<Value>) {
        if let Some(value) = value {
            self.fields.insert(field.to_owned(), value);
        }
    }

    /// Sets `field` to `value` unless the file or a flag set it.
    pub(crate) fn default(&mut self, field: &str, value: &str) {
        self.fields
            .entry(field.to_owned())
            .or_insert_with(|| Value::from(value));
    }

    /// Sets `field` to `null` when `clear`.
    pub(crate) fn clear(&mut self, field: &str, clear: bool) {
        if clear {
            self.fields.insert(field.to_owned(), Value::Null);
        }
    }

    /// The object at `field` (from the file), to set flags inside it; an empty one when absent.
    pub(crate) fn object(&self, field: &str) -> Result<Map<String, Value>, CliError> {
        match self.fields.get(field) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(object)) => Ok(object.clone()),
            Some(_) => Err(CliError::Local(format!("{}: {field}: must be an object", self.source))),
        }
    }

    /// The body as the request type, refusing unknown or mistyped fields locally.
    pub(crate) fn into_request<T: DeserializeOwned>(self) -> Result<T, CliError> {
        serde_json::from_value(Value::Object(self.fields))
            .map_err(|err| CliError::Local(format!("{}: {err}", self.source)))
    }
}

/// `serde_json::Value` of an optional flag.
pub(crate) fn json<T: Into<Value>>(value: Option<T>) -> Option<Value> {
    value.map(Into::into)
}
