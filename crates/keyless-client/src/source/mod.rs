//! Identity-token sources: where a workload's OIDC token (the JWT keyless verifies) comes from.
//!
//! Parts, in reading order:
//! - [`IdentitySource`]: the configured source, serialised as a profile's
//!   `authentication.identity_token` object (`{"source": "file", "path": "/var/run/…"}`), with
//!   [`IdentitySource::fetch`] and [`IdentitySource::describe`].
//! - [`SourceContext`]: what a fetch needs from outside (an HTTP client, the [`Environment`]
//!   snapshot, the default audience).
//! - [`IdentityToken`]: the fetched token, checked to be shaped like a JWT and kept secret.
//! - [`detect`] and [`Detection`]: which source the environment offers (used by
//!   [`IdentitySource::Auto`] and by `keyless auth status`).
//! - Private: `file` (token files), `executable` (commands), `http` (URL, GitHub Actions, Google
//!   Cloud metadata, Azure IMDS).
//!
//! Every fetch reads its source again (token files are rotated in place; metadata servers hand out
//! fresh tokens): caching belongs to the caller, which knows the token's expiry. Nothing here
//! verifies a token's signature or claims, and no token text ever reaches an error or `Debug` output.

mod detect;
mod executable;
mod file;
mod http;
mod token;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use detect::{Detection, detect};
pub use token::IdentityToken;

use crate::transport::transport;
use crate::{ClientError, Environment};

/// The variable an [`IdentitySource::Env`] source reads unless told otherwise.
pub const DEFAULT_TOKEN_VAR: &str = "KEYLESS_IDENTITY_TOKEN";
/// Where Kubernetes mounts a pod's default service-account token.
pub const KUBERNETES_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// How long an executable may run when `timeout_seconds` is not set.
pub const DEFAULT_EXECUTABLE_TIMEOUT_SECONDS: u64 = 30;
/// The longest `timeout_seconds` accepted.
pub const MAX_EXECUTABLE_TIMEOUT_SECONDS: u64 = 300;
/// The largest token file, command output or HTTP answer read (keyless itself accepts 16 KiB tokens).
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// Where the workload's identity token comes from.
///
/// The serde form is a profile's `authentication.identity_token` object, tagged by `source`:
///
/// ```json
/// {"source": "file", "path": "/var/run/secrets/tokens/keyless"}
/// {"source": "env", "var": "KEYLESS_IDENTITY_TOKEN"}
/// {"source": "executable", "command": ["gcloud", "auth", "print-identity-token"], "timeout_seconds": 10}
/// {"source": "url", "url": "https://vault.internal/token", "headers": {"X-Vault": "1"}, "json_field": "token"}
/// {"source": "github_actions", "audience": "https://keyless.example.com"}
/// {"source": "gcp_metadata"}
/// {"source": "azure", "client_id": "00000000-0000-0000-0000-000000000000"}
/// {"source": "kubernetes", "path": "/var/run/secrets/tokens/keyless"}
/// {"source": "auto"}
/// ```
///
/// Unknown fields are refused. Where a source asks its provider for a token, the audience is the
/// source's `audience` when set, else [`SourceContext::default_audience`] (keyless passes its base URL,
/// the audience a keyless rule expects by default). The profile configuration is not a secret file:
/// keep credentials out of `url` headers and `executable` arguments.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum IdentitySource {
    /// A file holding the token, read again at every fetch (Kubernetes and Azure rewrite token files
    /// in place). Surrounding whitespace is removed.
    File {
        /// The token file.
        path: PathBuf,
    },
    /// An environment variable holding the token, read from [`SourceContext::env`] at every fetch.
    Env {
        /// The variable; [`DEFAULT_TOKEN_VAR`] when omitted.
        #[serde(default = "default_token_var")]
        var: String,
    },
    /// A command that prints the token, run without a shell and with no standard input.
    ///
    /// Its standard output is either the token itself or google-auth's executable response
    /// (`{"version": 1, "success": true, "token_type": "urn:ietf:params:oauth:token-type:jwt", "id_token": "…"}`;
    /// with `"success": false` its `code` and `message` become the error). A non-zero exit is an error
    /// quoting the exit code and the first line of standard error. On timeout the command and its
    /// process group are killed. The command inherits the process's environment, plus
    /// `KEYLESS_IDENTITY_TOKEN_AUDIENCE` set to [`SourceContext::default_audience`] when there is one,
    /// so a helper can ask its provider for a token with the right audience.
    Executable {
        /// The program and its arguments.
        command: Vec<String>,
        /// How long the command may run: [`DEFAULT_EXECUTABLE_TIMEOUT_SECONDS`] when omitted, at
        /// most [`MAX_EXECUTABLE_TIMEOUT_SECONDS`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_seconds: Option<u64>,
    },
    /// An HTTP `GET` whose answer is the token (https, or http on loopback).
    Url {
        /// The URL.
        url: String,
        /// Headers sent with the request.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
        /// When set, the answer is a JSON object and the token is this top-level string field;
        /// otherwise the whole answer is the token.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        json_field: Option<String>,
    },
    /// GitHub Actions' OIDC token: `GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=…` with
    /// `$ACTIONS_ID_TOKEN_REQUEST_TOKEN` as bearer. The job needs `permissions: id-token: write`.
    /// Without any audience, GitHub's default (the repository owner's URL) applies.
    GithubActions {
        /// The `aud` to ask for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        audience: Option<String>,
    },
    /// The Google Cloud metadata server's identity token (`format=full`, so it carries the instance's
    /// project and zone), with header `Metadata-Flavor: Google`. The server is
    /// `metadata.google.internal`, or `GCE_METADATA_HOST` (`host[:port]`, google-auth's convention)
    /// when set; plain http is used, as metadata servers speak nothing else.
    GcpMetadata {
        /// The `aud` to ask for (required, here or as the default audience).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        audience: Option<String>,
    },
    /// Azure: with AKS workload identity (`AZURE_FEDERATED_TOKEN_FILE` set), that file; otherwise a
    /// managed-identity token from IMDS (`http://169.254.169.254/metadata/identity/oauth2/token`,
    /// header `Metadata: true`), whose `access_token` is the JWT. `KEYLESS_AZURE_IMDS_ENDPOINT`
    /// replaces the IMDS endpoint (for tests and proxies).
    Azure {
        /// The IMDS `resource` (the token's `aud`); required for IMDS, here or as the default audience.
        /// With workload identity the audience is fixed by the cluster's configuration.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        audience: Option<String>,
        /// Which user-assigned managed identity to use (IMDS `client_id`); the system-assigned one
        /// when omitted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
    /// A Kubernetes service-account token file, read again at every fetch.
    ///
    /// The recommended setup is a projected token whose audience is keyless's (a
    /// `serviceAccountToken` volume source with `audience` and `expirationSeconds`) at a custom path
    /// set here: the default-mounted token's audience is the cluster's API server and it lives long.
    Kubernetes {
        /// The token file; [`KUBERNETES_TOKEN_PATH`] when omitted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<PathBuf>,
    },
    /// Whatever [`detect`] finds at fetch time; the fetch fails with the detection's reason when
    /// nothing is found.
    Auto {
        /// The audience given to a detected source that asks its provider for a token.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        audience: Option<String>,
    },
}

/// The source's own audience, else the caller's default.
fn audience<'a>(own: &'a Option<String>, ctx: &'a SourceContext) -> Option<&'a str> {
    own.as_deref().or(ctx.default_audience.as_deref())
}

fn default_token_var() -> String {
    DEFAULT_TOKEN_VAR.to_owned()
}

/// What fetching a token needs from outside: kept small and cheap to clone.
#[derive(Clone, Debug)]
pub struct SourceContext {
    /// The HTTP client for network sources (per-request timeouts are applied on top).
    pub http: reqwest::Client,
    /// The environment variables sources and [`detect`] read.
    pub env: Environment,
    /// The audience used when a source sets none; keyless passes its base URL.
    pub default_audience: Option<String>,
}

impl SourceContext {
    /// A context with an HTTP client that follows no redirects and connects within 5 seconds.
    pub fn new(env: Environment, default_audience: Option<String>) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .user_agent(crate::api::USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|err| transport("building the HTTP client", err))?;
        Ok(Self {
            http,
            env,
            default_audience,
        })
    }
}

impl IdentitySource {
    /// Checks what can be checked without fetching: a non-empty path, command or URL, a timeout
    /// within bounds. [`IdentitySource::fetch`] calls it first.
    pub fn validate(&self) -> Result<(), ClientError> {
        let refuse = |message: &str| {
            Err(ClientError::Config(format!(
                "identity token source {}: {message}",
                self.describe()
            )))
        };
        match self {
            Self::File { path } if path.as_os_str().is_empty() => refuse("the path is empty"),
            Self::Env { var } if var.is_empty() => refuse("the variable name is empty"),
            Self::Executable { command, .. } if command.first().is_none_or(String::is_empty) => {
                refuse("the command is empty")
            }
            Self::Executable {
                timeout_seconds: Some(seconds),
                ..
            } if *seconds == 0 || *seconds > MAX_EXECUTABLE_TIMEOUT_SECONDS => refuse(&format!(
                "timeout_seconds must be between 1 and {MAX_EXECUTABLE_TIMEOUT_SECONDS}"
            )),
            Self::Url { url, .. } if url.is_empty() => refuse("the URL is empty"),
            Self::Kubernetes { path: Some(path) } if path.as_os_str().is_empty() => refuse("the path is empty"),
            _ => Ok(()),
        }
    }

    /// Fetches a fresh token from this source.
    ///
    /// Local failures (a missing file, a failing command, missing environment variables, nothing
    /// detected) are [`ClientError::Config`]; an HTTP source's failures are
    /// [`ClientError::Transport`], [`ClientError::Api`] (an error status, with the body decoded) or
    /// [`ClientError::Decode`] (an answer without a token).
    pub async fn fetch(&self, ctx: &SourceContext) -> Result<IdentityToken, ClientError> {
        self.validate()?;
        match self {
            Self::File { path } => file::read_token_file(path, &self.describe()).await,
            Self::Env { var } => match ctx.env.get(var) {
                Some(value) => IdentityToken::new(value.to_owned())
                    .map_err(|err| ClientError::Config(format!("environment variable {var}: {err}"))),
                None => Err(ClientError::Config(format!("environment variable {var} is not set"))),
            },
            Self::Executable {
                command,
                timeout_seconds,
            } => {
                let timeout = Duration::from_secs(timeout_seconds.unwrap_or(DEFAULT_EXECUTABLE_TIMEOUT_SECONDS));
                // Named by the program alone: a `sh -c` script would drown the message.
                let what = format!("executable {}", command.first().map_or("", String::as_str));
                executable::run(command, timeout, ctx.default_audience.as_deref(), &what).await
            }
            Self::Url {
                url,
                headers,
                json_field,
            } => http::url(ctx, url, headers, json_field.as_deref()).await,
            Self::GithubActions { audience: own } => http::github_actions(ctx, audience(own, ctx)).await,
            Self::GcpMetadata { audience: own } => http::gcp_metadata(ctx, audience(own, ctx)).await,
            Self::Azure {
                audience: own,
                client_id,
            } => match ctx.env.get("AZURE_FEDERATED_TOKEN_FILE") {
                Some(path) => {
                    let what = format!("Azure workload identity token file {path} (AZURE_FEDERATED_TOKEN_FILE)");
                    file::read_token_file(Path::new(path), &what).await
                }
                None => http::azure_imds(ctx, audience(own, ctx), client_id.as_deref()).await,
            },
            Self::Kubernetes { path } => {
                let path = path.as_deref().unwrap_or(Path::new(KUBERNETES_TOKEN_PATH));
                let what = format!("Kubernetes service-account token file {}", path.display());
                file::read_token_file(path, &what).await
            }
            Self::Auto { audience: own } => {
                let detection = detect(&ctx.env);
                let Some(detected) = detection.source else {
                    return Err(ClientError::Config(detection.reason));
                };
                // Boxed: `Auto` is never what `detect` returns, but the future type is recursive.
                Box::pin(detected.with_audience(own.clone()).fetch(ctx)).await
            }
        }
    }

    /// A one-line description for status output and errors; never a secret (URL queries, header
    /// values and variable values are left out).
    pub fn describe(&self) -> String {
        let with_audience = |name: &str, audience: &Option<String>| match audience {
            Some(audience) => format!("{name} (audience {audience})"),
            None => format!("{name} (default audience)"),
        };
        match self {
            Self::File { path } => format!("file {}", path.display()),
            Self::Env { var } => format!("environment variable {var}"),
            Self::Executable { command, .. } => format!("executable `{}`", command.join(" ")),
            Self::Url { url, .. } => match url::Url::parse(url) {
                Ok(mut parsed) => {
                    parsed.set_query(None);
                    let _ = parsed.set_password(None);
                    format!("URL {parsed}")
                }
                Err(_) => "URL (not parseable)".to_owned(),
            },
            Self::GithubActions { audience } => with_audience("GitHub Actions OIDC", audience),
            Self::GcpMetadata { audience } => with_audience("Google Cloud metadata server", audience),
            Self::Azure { audience, client_id } => {
                let mut description = with_audience("Azure managed identity", audience);
                if let Some(client_id) = client_id {
                    description.push_str(&format!(", client ID {client_id}"));
                }
                description
            }
            Self::Kubernetes { path } => format!(
                "Kubernetes service-account token {}",
                path.as_deref().unwrap_or(Path::new(KUBERNETES_TOKEN_PATH)).display()
            ),
            Self::Auto { audience } => with_audience("auto-detected", audience),
        }
    }

    /// This source with `audience` filled in where it asks a provider for a token and sets none.
    fn with_audience(self, audience: Option<String>) -> Self {
        match self {
            Self::GithubActions { audience: None } => Self::GithubActions { audience },
            Self::GcpMetadata { audience: None } => Self::GcpMetadata { audience },
            Self::Azure {
                audience: None,
                client_id,
            } => Self::Azure { audience, client_id },
            other => other,
        }
    }
}

/// What [`IdentitySource::describe`] says: never a header value, a URL's query or password.
impl std::fmt::Debug for IdentitySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdentitySource({})", self.describe())
    }
}
