//! `keyless token inspect`: show a JWT and, with `--jwks`, verify it the way the token service does.
//!
//! The checks are the service's own: `keyless-jose` for form, header, key and signature, then
//! `keyless-core`'s claim validation. The first failing check is named by its stable code. Because
//! this is a local tool run by the token's holder, expected and seen values are shown too.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use keyless_core::claims::{self, ClaimExpectations, DEFAULT_LEEWAY_SECONDS};
use keyless_jose::{Jwk, Jwks, Limits};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::clock;

/// Arguments of `keyless token inspect`.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The token, or `-` to read it from standard input. Surrounding whitespace is stripped.
    #[arg(value_name = "TOKEN|-")]
    token: String,
    /// Verify against this key set: a file holding a JWKS or one JWK, or an https URL (http only on loopback).
    #[arg(long, env = "KEYLESS_JWKS", value_name = "FILE|URL")]
    jwks: Option<String>,
    /// The issuer URL that `iss` must equal byte for byte.
    #[arg(long, env = "KEYLESS_ISSUER", value_name = "URL")]
    issuer: Option<String>,
    /// An audience that `aud` must be or contain.
    #[arg(long, env = "KEYLESS_AUDIENCE", value_name = "AUD")]
    audience: Option<String>,
    /// The largest accepted `exp − iat`, in seconds (the issuer default is 3600).
    #[arg(long, env = "KEYLESS_MAX_LIFETIME", value_name = "SECONDS", default_value_t = 3600)]
    max_lifetime: i64,
    /// Clock-skew allowance for `exp`, `nbf` and `iat`, in seconds.
    #[arg(long, env = "KEYLESS_LEEWAY", value_name = "SECONDS", default_value_t = DEFAULT_LEEWAY_SECONDS)]
    leeway: i64,
    /// Output format.
    #[arg(long, env = "KEYLESS_OUTPUT", value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

/// The outcome of one check.
#[derive(Debug)]
enum Status {
    Passed(String),
    Failed {
        code: String,
        message: String,
        expected: Option<Value>,
        seen: Option<Value>,
    },
    Skipped(&'static str),
}

#[derive(Debug)]
struct Check {
    name: &'static str,
    status: Status,
}

#[derive(Debug, Default)]
struct Report {
    header: Option<Map<String, Value>>,
    claims: Option<Map<String, Value>>,
    checks: Vec<Check>,
}

impl Report {
    fn check(&mut self, name: &'static str, status: Status) {
        self.checks.push(Check { name, status });
    }

    fn first_failure(&self) -> Option<&str> {
        self.checks.iter().find_map(|check| match &check.status {
            Status::Failed { code, .. } => Some(code.as_str()),
            _ => None,
        })
    }
}

/// Runs the command; exit 0 valid, 1 invalid, 2 when the inputs other than the token are unusable.
pub(crate) fn run(args: InspectArgs) -> ExitCode {
    let token = match read_token(&args.token) {
        Ok(token) => token,
        Err(err) => return usage_error(&err),
    };
    let jwks = match args.jwks.as_deref().map(load_jwks).transpose() {
        Ok(jwks) => jwks,
        Err(err) => return usage_error(&err),
    };
    let now = clock::now_unix();
    let report = inspect(&token, jwks.as_ref(), &args, now);
    match args.output {
        Output::Text => print_text(&report, now),
        Output::Json => print_json(&report),
    }
    if report.first_failure().is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

fn read_token(arg: &str) -> Result<String, String> {
    let raw = if arg == "-" {
        let mut input = String::new();
        if std::io::stdin().is_terminal() {
            return Err("reading the token from standard input, but it is a terminal; pipe the token in".to_owned());
        }
        std::io::stdin()
            .take(1024 * 1024)
            .read_to_string(&mut input)
            .map_err(|err| format!("reading the token from standard input: {err}"))?;
        input
    } else {
        arg.to_owned()
    };
    Ok(raw.trim().to_owned())
}

fn load_jwks(source: &str) -> Result<Jwks, String> {
    if source.starts_with("https://") || source.starts_with("http://") {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| format!("starting the HTTP runtime: {err}"))?;
        return runtime
            .block_on(keyless_client::jwks::fetch(source))
            .map_err(|err| format!("{err:#}"));
    }
    let bytes = std::fs::read(source).map_err(|err| format!("reading {source}: {err}"))?;
    // A file may hold a JWKS or a single JWK.
    match Jwks::from_json(&bytes) {
        Ok(jwks) => Ok(jwks),
        Err(keyless_jose::JwksError::MissingKeys) => Jwk::from_json(&bytes)
            .map(|jwk| Jwks::from_keys(vec![jwk]))
            .map_err(|err| format!("{source}: not a usable JWK: {err}")),
        Err(err) => Err(format!("{source}: {err}")),
    }
}

fn inspect(token: &str, jwks: Option<&Jwks>, args: &InspectArgs, now: i64) -> Report {
    let limits = Limits::default();
    let mut report = Report::default();
    let unverified = match keyless_jose::decode_unverified(token, &limits) {
        Ok(unverified) => unverified,
        Err(err) => {
            report.check("form", failed(err.code(), err.to_string()));
            return report;
        }
    };
    report.header = Some(unverified.header.clone());
    match unverified.claims(&limits) {
        Ok(claims) => {
            report.check("form", Status::Passed("compact JWS, JSON header and claims".to_owned()));
            report.claims = Some(claims);
        }
        Err(err) => report.check("form", failed(err.code(), err.to_string())),
    }

    match jwks {
        None => report.check("signature", Status::Skipped("pass --jwks to verify the signature")),
        Some(jwks) => {
            for skipped in jwks.skipped() {
                eprintln!(
                    "warning: JWKS key #{} (kid {:?}) skipped: {} ({})",
                    skipped.index,
                    skipped.kid.as_deref().unwrap_or("-"),
                    skipped.error,
                    skipped.error.code()
                );
            }
            match keyless_jose::verify_jwt(token, jwks, &limits) {
                Ok(verified) => report.check(
                    "signature",
                    Status::Passed(format!("{} by key {}", verified.header.alg, verified.key_thumbprint)),
                ),
                Err(err) => report.check("signature", failed(err.code(), err.to_string())),
            }
        }
    }

    if let Some(claims) = &report.claims {
        let status = check_claims(claims, args, now);
        report.check("claims", status);
    }
    if args.issuer.is_none() {
        report.check("issuer", Status::Skipped("pass --issuer to compare iss"));
    }
    if args.audience.is_none() {
        report.check("audience", Status::Skipped("pass --audience to compare aud"));
    }
    report
}

/// Runs keyless-core's claim validation. Without `--issuer`/`--audience` the token's own values
/// stand in, so only those comparisons are skipped, never the time and lifetime checks.
fn check_claims(claims: &Map<String, Value>, args: &InspectArgs, now: i64) -> Status {
    let own_audience = match claims.get("aud") {
        Some(Value::String(aud)) => aud.as_str(),
        Some(Value::Array(auds)) => auds.first().and_then(Value::as_str).unwrap_or_default(),
        _ => "",
    };
    let expectations = ClaimExpectations {
        issuer_url: args
            .issuer
            .as_deref()
            .unwrap_or_else(|| claims.get("iss").and_then(Value::as_str).unwrap_or_default()),
        audience: args.audience.as_deref().unwrap_or(own_audience),
        max_lifetime_seconds: args.max_lifetime,
        leeway_seconds: args.leeway,
    };
    match claims::validate(claims, &expectations, now) {
        Ok(valid) => Status::Passed(format!(
            "iss, sub, aud, exp, nbf, iat and lifetime ({}s) accepted",
            valid.expires_at - valid.issued_at
        )),
        Err(rejection) => {
            let detail = rejection.detail();
            Status::Failed {
                code: rejection.code().as_str().to_owned(),
                message: format!("{} (check: {})", rejection.message(), detail.check),
                expected: detail.expected.clone(),
                seen: detail.seen.clone(),
            }
        }
    }
}

fn failed(code: &str, message: String) -> Status {
    Status::Failed {
        code: code.to_owned(),
        message,
        expected: None,
        seen: None,
    }
}

fn print_text(report: &Report, now: i64) {
    for (title, map) in [("header", &report.header), ("claims", &report.claims)] {
        let Some(map) = map else { continue };
        println!("{title}");
        let width = map.keys().map(String::len).max().unwrap_or(0);
        for (name, value) in map {
            let shown = value.to_string();
            match date_note(name, value, now) {
                Some(note) => println!("  {name:<width$}  {shown}  ({note})"),
                None => println!("  {name:<width$}  {shown}"),
            }
        }
    }
    println!("checks");
    for check in &report.checks {
        match &check.status {
            Status::Passed(what) => println!("  ok       {:<9}  {what}", check.name),
            Status::Skipped(why) => println!("  skipped  {:<9}  {why}", check.name),
            Status::Failed {
                code,
                message,
                expected,
                seen,
            } => {
                println!("  FAILED   {:<9}  {code}: {message}", check.name);
                if let Some(expected) = expected {
                    println!("                      expected {expected}");
                }
                if let Some(seen) = seen {
                    println!("                      seen     {seen}");
                }
            }
        }
    }
    match report.first_failure() {
        Some(code) => println!("result: invalid ({code})"),
        None => println!("result: valid"),
    }
}

fn print_json(report: &Report) {
    let checks: Vec<Value> = report
        .checks
        .iter()
        .map(|check| match &check.status {
            Status::Passed(what) => json!({"check": check.name, "status": "passed", "detail": what}),
            Status::Skipped(why) => json!({"check": check.name, "status": "skipped", "detail": why}),
            Status::Failed {
                code,
                message,
                expected,
                seen,
            } => json!({
                "check": check.name, "status": "failed", "code": code, "detail": message,
                "expected": expected, "seen": seen,
            }),
        })
        .collect();
    let document = json!({
        "valid": report.first_failure().is_none(),
        "error_code": report.first_failure(),
        "header": report.header,
        "claims": report.claims,
        "checks": checks,
    });
    println!("{document:#}");
}

/// For numeric date claims, the UTC time and how far it is from now.
fn date_note(name: &str, value: &Value, now: i64) -> Option<String> {
    if !matches!(name, "exp" | "nbf" | "iat" | "auth_time") {
        return None;
    }
    let secs = value.as_i64()?;
    let when = OffsetDateTime::from_unix_timestamp(secs).ok()?.format(&Rfc3339).ok()?;
    let delta = secs - now;
    let span = human_span(delta.unsigned_abs());
    Some(if delta >= 0 {
        format!("{when}, in {span}")
    } else {
        format!("{when}, {span} ago")
    })
}

fn human_span(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        3600..86_400 => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_naturally() {
        for (secs, want) in [
            (0, "0s"),
            (59, "59s"),
            (61, "1m 1s"),
            (3661, "1h 1m"),
            (90_000, "1d 1h"),
        ] {
            assert_eq!(human_span(secs), want);
        }
    }
}
