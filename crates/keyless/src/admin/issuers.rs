//! `keyless issuers create|list|get|update|archive|verify`.
//!
//! The `jwks` block comes from `--from-file` or from one of `--jwks-url` (explicit_url),
//! `--discovery-base` (discovery from another base), `--jwks-file` (inline keys from a JWKS or JWK
//! file), with `--ca-cert-file` for the two fetched kinds; only `--ca-cert-file` means discovery with
//! extra trust anchors.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use keyless_api::{
    CreateFederationIssuer, FederationIssuer, Jwks, UpdateFederationIssuer, VerifyFederationIssuer, VerifyReport,
};
use serde_json::{Value, json as json_value};

use crate::admin::{Body, ListArgs, collect, json, run};
use crate::error::CliError;
use crate::output::{self, Format, OutputArgs, Row, cell};
use crate::session::GlobalArgs;

/// `keyless issuers`.
#[derive(Debug, Args)]
pub(crate) struct IssuersArgs {
    #[command(flatten)]
    output: OutputArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a federation issuer (keys by OIDC discovery unless a --jwks-* flag says otherwise).
    Create(CreateArgs),
    /// List federation issuers, newest first (every page unless --limit).
    List(ListArgs),
    /// Show one federation issuer, with its key polling status.
    Get {
        /// The issuer (fdis_…).
        id: String,
    },
    /// Change a federation issuer; any change (or none, on a paused issuer) resumes key polling.
    Update(UpdateArgs),
    /// Archive a federation issuer (refused while a live rule uses it).
    Archive {
        /// The issuer (fdis_…).
        id: String,
    },
    /// Dry-run an issuer configuration: fetch its discovery document and keys and report what was
    /// found, creating nothing. Exit status 1 when the report is not ok.
    Verify(VerifyArgs),
}

/// Where the keys come from.
#[derive(Debug, Args)]
struct JwksArgs {
    /// Fetch the keys from this JWKS URL (jwks type explicit_url).
    #[arg(long, env = "KEYLESS_ISSUERS_JWKS_URL", value_name = "URL", conflicts_with_all = ["discovery_base", "jwks_file"])]
    jwks_url: Option<String>,
    /// Discover the JWKS URL under this base instead of the issuer URL (jwks type discovery).
    #[arg(
        long,
        env = "KEYLESS_ISSUERS_DISCOVERY_BASE",
        value_name = "URL",
        conflicts_with = "jwks_file"
    )]
    discovery_base: Option<String>,
    /// Use the public keys of this file (a JWKS `{"keys": […]}` or one JWK) inline (jwks type inline).
    #[arg(
        long,
        env = "KEYLESS_ISSUERS_JWKS_FILE",
        value_name = "FILE",
        conflicts_with = "ca_cert_file"
    )]
    jwks_file: Option<PathBuf>,
    /// Trust these PEM certificates too when fetching discovery and keys.
    #[arg(long, env = "KEYLESS_ISSUERS_CA_CERT_FILE", value_name = "FILE")]
    ca_cert_file: Option<PathBuf>,
}

impl JwksArgs {
    /// The `jwks` block the flags describe, if any.
    fn jwks(&self) -> Result<Option<Jwks>, CliError> {
        let ca_cert_pem = self
            .ca_cert_file
            .as_ref()
            .map(|path| {
                std::fs::read_to_string(path)
                    .map_err(|err| CliError::Local(format!("--ca-cert-file {}: {err}", path.display())))
            })
            .transpose()?;
        if let Some(path) = &self.jwks_file {
            return inline_keys(path).map(Some);
        }
        Ok(match (&self.jwks_url, &self.discovery_base) {
            (Some(url), _) => Some(Jwks::ExplicitUrl {
                url: url.clone(),
                ca_cert_pem,
            }),
            (None, Some(base)) => Some(Jwks::Discovery {
                discovery_base: Some(base.clone()),
                ca_cert_pem,
            }),
            (None, None) => ca_cert_pem.map(|ca_cert_pem| Jwks::Discovery {
                discovery_base: None,
                ca_cert_pem: Some(ca_cert_pem),
            }),
        })
    }
}

/// `--jwks-file`: the keys of a JWKS document, or one JWK.
fn inline_keys(path: &PathBuf) -> Result<Jwks, CliError> {
    let failed = |message: String| CliError::Local(format!("--jwks-file {}: {message}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|err| failed(err.to_string()))?;
    let document: Value = serde_json::from_str(&text).map_err(|err| failed(format!("not JSON: {err}")))?;
    let keys = match document.get("keys") {
        Some(Value::Array(keys)) => keys.clone(),
        Some(_) => return Err(failed("`keys` must be an array".to_owned())),
        None if document.get("kty").is_some() => vec![document],
        None => return Err(failed("must hold a JWKS ({\"keys\": […]}) or one JWK".to_owned())),
    };
    Ok(Jwks::Inline { keys })
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// The name: 1–255 of a-z, 0-9 and `-`, unique in the organization.
    #[arg(long, env = "KEYLESS_ISSUERS_NAME", value_name = "NAME")]
    name: Option<String>,
    /// The issuer URL, exactly as the tokens carry it in `iss`.
    #[arg(long, env = "KEYLESS_ISSUERS_ISSUER_URL", value_name = "URL")]
    issuer_url: Option<String>,
    #[command(flatten)]
    jwks: JwksArgs,
    /// Whether a token's `jti` is single-use (the server's default: true).
    #[arg(long, env = "KEYLESS_ISSUERS_CHECK_JTI", value_name = "BOOL")]
    check_jti: Option<bool>,
    /// The largest `exp − iat` accepted, 1–176400 (the server's default: 3600).
    #[arg(long, env = "KEYLESS_ISSUERS_MAX_JWT_LIFETIME_SECONDS", value_name = "SECONDS")]
    max_jwt_lifetime_seconds: Option<i64>,
    /// The request body as JSON (`-` reads stdin); flags override its fields.
    #[arg(long, env = "KEYLESS_ISSUERS_FROM_FILE", value_name = "FILE")]
    from_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct UpdateArgs {
    /// The issuer (fdis_…).
    id: String,
    /// The new name.
    #[arg(long, env = "KEYLESS_ISSUERS_NAME", value_name = "NAME")]
    name: Option<String>,
    /// The new issuer URL.
    #[arg(long, env = "KEYLESS_ISSUERS_ISSUER_URL", value_name = "URL")]
    issuer_url: Option<String>,
    #[command(flatten)]
    jwks: JwksArgs,
    /// Whether a token's `jti` is single-use.
    #[arg(long, env = "KEYLESS_ISSUERS_CHECK_JTI", value_name = "BOOL")]
    check_jti: Option<bool>,
    /// The largest `exp − iat` accepted, 1–176400.
    #[arg(long, env = "KEYLESS_ISSUERS_MAX_JWT_LIFETIME_SECONDS", value_name = "SECONDS")]
    max_jwt_lifetime_seconds: Option<i64>,
    /// The request body as JSON (`-` reads stdin); flags override its fields.
    #[arg(long, env = "KEYLESS_ISSUERS_FROM_FILE", value_name = "FILE")]
    from_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// The issuer URL, exactly as the tokens carry it in `iss`.
    #[arg(long, env = "KEYLESS_ISSUERS_ISSUER_URL", value_name = "URL")]
    issuer_url: Option<String>,
    #[command(flatten)]
    jwks: JwksArgs,
    /// The request body as JSON (`{issuer_url, jwks?}`; `-` reads stdin); flags override its fields.
    #[arg(long, env = "KEYLESS_ISSUERS_FROM_FILE", value_name = "FILE")]
    from_file: Option<PathBuf>,
}

impl Row for FederationIssuer {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "NAME",
        "ISSUER URL",
        "JWKS",
        "CHECK JTI",
        "MAX LIFETIME",
        "POLL FAILURES",
        "ARCHIVED",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            self.issuer_url.clone(),
            self.jwks.kind().to_owned(),
            self.check_jti.to_string(),
            self.max_jwt_lifetime_seconds.to_string(),
            self.poll_status.consecutive_failures.to_string(),
            cell(self.audit.archived_at.as_deref()),
        ]
    }
}

/// The verify report as text: the verdict and URLs, then one line per key and problem.
fn verify_text(report: &VerifyReport) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    for key in &report.keys {
        rows.push(vec![
            "key".to_owned(),
            cell(key.kid.as_deref()),
            format!("{} {}", key.kty, key.alg.as_deref().unwrap_or("-")),
            format!("thumbprint {}", key.thumbprint),
        ]);
    }
    for key in &report.skipped_keys {
        rows.push(vec![
            "skipped key".to_owned(),
            cell(key.kid.as_deref()),
            key.code.clone(),
            key.reason.clone(),
        ]);
    }
    for problem in &report.problems {
        rows.push(vec![
            "problem".to_owned(),
            "-".to_owned(),
            problem.code.clone(),
            problem.message.clone(),
        ]);
    }
    let mut text = format!("ok: {}\n", report.ok);
    if let Some(url) = &report.discovery_url {
        text.push_str(&format!("discovery url: {url}\n"));
    }
    if let Some(url) = &report.jwks_uri {
        text.push_str(&format!("jwks uri: {url}\n"));
    }
    if !rows.is_empty() {
        text.push('\n');
        text.push_str(&output::table(&["WHAT", "KID", "DETAIL", "NOTE"], &rows));
    }
    text
}

/// Runs `keyless issuers …`.
pub(crate) fn main(global: &GlobalArgs, args: IssuersArgs) -> ExitCode {
    let format = args.output.output;
    run(global, true, |admin| async move {
        let issuers = admin.issuers();
        match args.command {
            Command::Create(create) => {
                let mut body = Body::from_file(create.from_file.as_ref())?;
                body.set("name", json(create.name));
                body.set("issuer_url", json(create.issuer_url));
                body.set("jwks", jwks_value(&create.jwks)?);
                body.set("check_jti", json(create.check_jti));
                body.set("max_jwt_lifetime_seconds", json(create.max_jwt_lifetime_seconds));
                let request: CreateFederationIssuer = body.into_request()?;
                output::one(format, &issuers.create(&request).await?)?;
            }
            Command::List(list) => output::many(format, &collect(issuers.pages(&list.options()), &list).await?)?,
            Command::Get { id } => output::one(format, &issuers.get(&id).await?)?,
            Command::Update(update) => {
                let mut body = Body::from_file(update.from_file.as_ref())?;
                body.set("name", json(update.name));
                body.set("issuer_url", json(update.issuer_url));
                body.set("jwks", jwks_value(&update.jwks)?);
                body.set("check_jti", json(update.check_jti));
                body.set("max_jwt_lifetime_seconds", json(update.max_jwt_lifetime_seconds));
                let request: UpdateFederationIssuer = body.into_request()?;
                output::one(format, &issuers.update(&update.id, &request).await?)?;
            }
            Command::Archive { id } => output::one(format, &issuers.archive(&id).await?)?,
            Command::Verify(verify) => {
                let mut body = Body::from_file(verify.from_file.as_ref())?;
                body.set("issuer_url", json(verify.issuer_url));
                body.set("jwks", jwks_value(&verify.jwks)?);
                let request: VerifyFederationIssuer = body.into_request()?;
                let report = issuers.verify(&request).await?;
                match format {
                    Format::Table => output::write_stdout(&verify_text(&report))?,
                    _ => output::document(format, &report)?,
                }
                if !report.ok {
                    return Ok(ExitCode::from(1));
                }
            }
        }
        Ok::<_, CliError>(ExitCode::SUCCESS)
    })
}

fn jwks_value(args: &JwksArgs) -> Result<Option<Value>, CliError> {
    Ok(args.jwks()?.map(|jwks| json_value!(jwks)))
}
