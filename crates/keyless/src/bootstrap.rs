//! `keyless bootstrap admin-rule`: the first `org:admin` automation, set up offline on the server's own
//! storage through `keyless_server::bootstrap_admin_rule`.
//!
//! Parts: [`AdminRuleArgs`] (the flags; the storage flags are `keyless serve`'s, loaded by the same
//! configuration code so the same storage is opened), [`run`], then the two outputs (text: the three
//! IDs and the exchange request a workload sends next; `--output json`: the IDs and what was created).
//! Data goes to stdout; notes (what was reused, a first start) to stderr; an error is one line on
//! stderr and exit 1.
//!
//! Must not: serve, read the admin token, or print a secret.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use keyless_server::config::{Config, Overrides};
use keyless_server::service::bootstrap::{AdminRuleOutcome, AdminRuleRequest};
use secrecy::SecretString;
use serde_json::json;

use crate::error::one_line;

use crate::clock;

/// The `grant_type` of the exchange a workload sends (RFC 7523).
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Arguments of `keyless bootstrap admin-rule`.
#[derive(Debug, Args)]
pub(crate) struct AdminRuleArgs {
    /// The workload's identity provider: the issuer URL its tokens carry in `iss`, byte for byte.
    #[arg(long, env = "KEYLESS_BOOTSTRAP_ISSUER", value_name = "URL")]
    issuer: String,
    /// The exact subject (`sub`) of the workload's tokens, e.g. `repo:acme/infra:ref:refs/heads/main`.
    /// A lone `*` is always refused, and a trailing `*` (a prefix) unless --allow-prefix is given.
    #[arg(long, env = "KEYLESS_BOOTSTRAP_SUBJECT", value_name = "SUB")]
    subject: String,
    /// Accept a subject ending in `*`: every subject starting with the text before it gets org:admin.
    #[arg(long, env = "KEYLESS_BOOTSTRAP_ALLOW_PREFIX")]
    allow_prefix: bool,
    /// The audience the workload's tokens must carry in `aud` (default: the server's public URL).
    #[arg(long, env = "KEYLESS_BOOTSTRAP_AUDIENCE", value_name = "AUD")]
    audience: Option<String>,
    /// Fetch the issuer's keys from this JWKS URL (`explicit_url`) instead of OIDC discovery.
    #[arg(long, env = "KEYLESS_BOOTSTRAP_JWKS_URL", value_name = "URL")]
    jwks_url: Option<String>,
    /// The federation issuer's name when one is created (default: `bootstrap-<host>`).
    #[arg(long, env = "KEYLESS_BOOTSTRAP_ISSUER_NAME", value_name = "NAME")]
    issuer_name: Option<String>,
    /// The admin service account's name.
    #[arg(
        long,
        env = "KEYLESS_BOOTSTRAP_SERVICE_ACCOUNT_NAME",
        value_name = "NAME",
        default_value = "bootstrap-admin"
    )]
    service_account_name: String,
    /// The federation rule's name.
    #[arg(
        long,
        env = "KEYLESS_BOOTSTRAP_RULE_NAME",
        value_name = "NAME",
        default_value = "bootstrap-admin-rule"
    )]
    rule_name: String,
    /// The server's data directory, as for `keyless serve` (default: the per-user data directory).
    #[arg(long, env = "KEYLESS_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The server's configuration file, as for `keyless serve` (default: `<data-dir>/keyless.toml` when
    /// it exists).
    #[arg(long, env = "KEYLESS_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The server's PostgreSQL database, as for `keyless serve` (postgres://…).
    #[arg(long, env = "KEYLESS_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Output format.
    #[arg(long, env = "KEYLESS_OUTPUT", value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

/// Sets up the admin automation; exit 1 on any error (one line on stderr).
pub(crate) fn run(args: AdminRuleArgs) -> ExitCode {
    let overrides = Overrides {
        config_file: args.config,
        listen: None,
        data_dir: args.data_dir,
        database_url: args.database_url.map(SecretString::from),
        upstream: None,
    };
    let config = match Config::load(overrides) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: configuration: {}", one_line(&err));
            return ExitCode::from(1);
        }
    };
    if config.allow_insecure_urls {
        eprintln!(
            "warning: issuers.allow_insecure_urls is on: http and non-public issuer URLs are accepted (tests \
             and local development only)"
        );
    }
    let public_url = config.public_url.clone();
    let request = AdminRuleRequest {
        issuer_url: args.issuer.clone(),
        issuer_name: args.issuer_name,
        jwks_url: args.jwks_url,
        service_account_name: args.service_account_name,
        subject: args.subject,
        allow_prefix: args.allow_prefix,
        audience: args.audience,
        rule_name: args.rule_name,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the runtime: {}", one_line(&err));
            return ExitCode::from(1);
        }
    };
    let outcome = match runtime.block_on(keyless_server::bootstrap_admin_rule(config, request, clock::now_unix())) {
        Ok(outcome) => outcome,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            return ExitCode::from(1);
        }
    };
    if let Some(path) = &outcome.bootstrap_file {
        eprintln!(
            "first start: organization created; a one-time org:admin token (valid 24 hours) is in {}",
            path.display()
        );
    }
    for note in &outcome.notes {
        eprintln!("note: {note}");
    }
    match args.output {
        Output::Text => print!("{}", text(&outcome, &args.issuer, &public_url)),
        Output::Json => println!("{:#}", json_output(&outcome)),
    }
    ExitCode::SUCCESS
}

fn verb(created: bool) -> &'static str {
    if created { "created" } else { "reused" }
}

/// The human output: the three IDs, then the exchange request the workload sends.
fn text(outcome: &AdminRuleOutcome, issuer_url: &str, public_url: &str) -> String {
    let audience = match &outcome.audience {
        Some(audience) => audience.clone(),
        None => format!("{public_url} (the server's public_url)"),
    };
    let quoted = |text: &str| serde_json::Value::from(text).to_string();
    // Written out rather than serialized, so that the fields read in the reference's order.
    let body = format!(
        "{{\"grant_type\": {}, \"assertion\": \"<the workload's OIDC token>\", \"federation_rule_id\": {}, \
         \"organization_id\": {}, \"service_account_id\": {}}}",
        quoted(JWT_BEARER),
        quoted(outcome.federation_rule.id.as_str()),
        quoted(outcome.organization_id.as_str()),
        quoted(outcome.service_account.id.as_str()),
    );
    format!(
        "organization       {organization_id}\n\
         federation issuer  {issuer_id}  {issuer_verb}  {issuer_name}\n\
         service account    {service_account_id}  {service_account_verb}  {service_account_name} (organization_role admin)\n\
         federation rule    {rule_id}  {rule_verb}  {rule_name} (scope org:admin)\n\
         \n\
         Next step: the workload exchanges its OIDC token for an org:admin access token.\n\
         The token must carry iss {issuer_url}, sub {subject} and aud {audience}.\n\
         \n\
         \x20 POST {public_url}/v1/oauth/token\n\
         \x20 Content-Type: application/json\n\
         \n\
         \x20 {body}\n",
        organization_id = outcome.organization_id.as_str(),
        issuer_id = outcome.issuer.id.as_str(),
        issuer_verb = verb(outcome.issuer.created),
        issuer_name = outcome.issuer.name,
        service_account_id = outcome.service_account.id.as_str(),
        service_account_verb = verb(outcome.service_account.created),
        service_account_name = outcome.service_account.name,
        rule_id = outcome.federation_rule.id.as_str(),
        rule_verb = verb(outcome.federation_rule.created),
        rule_name = outcome.federation_rule.name,
        subject = outcome.subject,
    )
}

/// `--output json`.
fn json_output(outcome: &AdminRuleOutcome) -> serde_json::Value {
    json!({
        "organization_id": outcome.organization_id.as_str(),
        "issuer_id": outcome.issuer.id.as_str(),
        "service_account_id": outcome.service_account.id.as_str(),
        "federation_rule_id": outcome.federation_rule.id.as_str(),
        "created": {
            "issuer": outcome.issuer.created,
            "service_account": outcome.service_account.created,
            "federation_rule": outcome.federation_rule.created,
        },
    })
}
