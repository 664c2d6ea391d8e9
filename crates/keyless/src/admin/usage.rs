//! `keyless usage`: request counts per principal (API key or service account) and workspace over a
//! time range — by default the last 24 hours (`--since`), or from `--starting-at`.
//!
//! The table shows the range the server summed (its hourly buckets may widen the one asked for), then
//! one row per principal and workspace; `-` is a value the server does not know (a principal `-` is
//! requests whose credential was not recognised).

use std::process::ExitCode;

use clap::Args;
use keyless_api::{UsageRow, UsageSummary};
use keyless_client::admin::UsageFilter;

use crate::admin::run;
use crate::error::CliError;
use crate::output::{self, Format, OutputArgs, Row, cell};
use crate::session::GlobalArgs;

/// The range without `--since` or `--starting-at`: the last 24 hours.
const DEFAULT_SINCE_SECONDS: u64 = 24 * 3600;

/// `keyless usage`.
#[derive(Debug, Args)]
pub(crate) struct UsageArgs {
    #[command(flatten)]
    output: OutputArgs,
    /// The range ends now and is this long: a number and a unit, s, m, h, d or w (e.g. 90m, 24h,
    /// 7d). Default: 24h.
    #[arg(
        long,
        env = "KEYLESS_USAGE_SINCE",
        value_name = "DURATION",
        value_parser = parse_duration,
        conflicts_with = "starting_at"
    )]
    since: Option<u64>,
    /// The start of the range (RFC 3339, e.g. 2026-05-01T00:00:00Z), instead of --since.
    #[arg(long, env = "KEYLESS_USAGE_STARTING_AT", value_name = "TIME")]
    starting_at: Option<String>,
    /// The end of the range (RFC 3339; default: now, as the server counts it).
    #[arg(long, env = "KEYLESS_USAGE_ENDING_AT", value_name = "TIME")]
    ending_at: Option<String>,
    /// Only requests in this workspace (wrkspc_…, or `default`).
    #[arg(long, alias = "workspace-id", env = "KEYLESS_USAGE_WORKSPACE", value_name = "ID")]
    workspace: Option<String>,
    /// Only requests of this principal (apikey_… or svac_…).
    #[arg(long, alias = "principal-id", env = "KEYLESS_USAGE_PRINCIPAL", value_name = "ID")]
    principal: Option<String>,
}

/// `--since`: `<N><unit>` with unit `s`, `m`, `h`, `d` or `w`, in seconds (at least one).
fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| "a unit is missing: use s, m, h, d or w (e.g. 24h, 7d)".to_owned())?;
    let (number, unit) = text.split_at(unit_at);
    let number: u64 = number
        .parse()
        .map_err(|_| "expected a number and a unit (e.g. 24h, 7d)".to_owned())?;
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        other => return Err(format!("unknown unit {other:?}: use s, m, h, d or w")),
    };
    match number.checked_mul(seconds_per_unit) {
        Some(0) => Err("the range must not be empty".to_owned()),
        Some(seconds) => Ok(seconds),
        None => Err("too long".to_owned()),
    }
}

/// The RFC 3339 start of a range of `since` seconds ending at `now` (Unix seconds).
fn since_start(now: i64, since: u64) -> String {
    let since = i64::try_from(since).unwrap_or(i64::MAX);
    crate::clock::rfc3339(now.saturating_sub(since).max(0))
}

impl UsageArgs {
    /// The filter to send; `now` (Unix seconds) places `--since`.
    fn filter(&self, now: i64) -> UsageFilter {
        let starting_at = match &self.starting_at {
            Some(starting_at) => starting_at.clone(),
            None => since_start(now, self.since.unwrap_or(DEFAULT_SINCE_SECONDS)),
        };
        UsageFilter {
            starting_at: Some(starting_at),
            ending_at: self.ending_at.clone(),
            workspace_id: self.workspace.clone(),
            principal_id: self.principal.clone(),
        }
    }
}

impl Row for UsageRow {
    const HEADERS: &'static [&'static str] = &[
        "PRINCIPAL",
        "TYPE",
        "WORKSPACE",
        "REQUESTS",
        "ALLOWED",
        "REFUSED",
        "RATE LIMITED",
        "UPSTREAM ERRORS",
        "MEAN LATENCY MS",
        "LAST REQUEST",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            cell(self.principal_id.as_deref()),
            cell(self.principal_type.as_ref().map(|kind| kind.as_str())),
            cell(self.workspace_id.as_deref()),
            self.requests.to_string(),
            self.allowed.to_string(),
            self.refused.to_string(),
            self.rate_limited.to_string(),
            self.upstream_errors.to_string(),
            format!("{:.1}", self.mean_latency_ms),
            cell(self.last_request_at.as_deref()),
        ]
    }
}

/// The table form: the range, then a row per principal and workspace.
fn usage_text(summary: &UsageSummary) -> String {
    if summary.data.is_empty() {
        return format!("from {} to {}: no requests\n", summary.starting_at, summary.ending_at);
    }
    let rows: Vec<Vec<String>> = summary.data.iter().map(Row::cells).collect();
    format!(
        "from {} to {}\n\n{}",
        summary.starting_at,
        summary.ending_at,
        output::table(UsageRow::HEADERS, &rows)
    )
}

/// Runs `keyless usage`.
pub(crate) fn main(global: &GlobalArgs, args: UsageArgs) -> ExitCode {
    let format = args.output.output;
    let filter = args.filter(crate::clock::now_unix());
    run(global, true, |admin| async move {
        let summary = admin.usage().summary(&filter).await?;
        match format {
            Format::Table => output::write_stdout(&usage_text(&summary))?,
            _ => output::document(format, &summary)?,
        }
        Ok::<_, CliError>(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

    use clap::Parser;
    use serde_json::json;

    use super::*;

    /// 2026-05-01T12:00:00Z.
    const TEST_NOW: i64 = 1_777_636_800;

    fn parse(args: &[&str]) -> Result<UsageArgs, clap::Error> {
        let cli = crate::Cli::try_parse_from([&["keyless", "usage"], args].concat())?;
        match cli.command {
            crate::Command::Usage(usage) => Ok(usage),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn durations_take_a_number_and_a_unit() {
        for (text, expect) in [
            ("24h", Ok(86_400)),
            ("7d", Ok(604_800)),
            ("90m", Ok(5400)),
            ("30s", Ok(30)),
            ("2w", Ok(1_209_600)),
        ] {
            assert_eq!(parse_duration(text), expect, "{text}");
        }
        for refused in ["24", "h", "1.5h", "-1h", "3y", "0h", "", "99999999999999999999d"] {
            assert!(parse_duration(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn the_range_is_the_last_24_hours_unless_told_otherwise() {
        let check = |args: &[&str], expect: UsageFilter| {
            assert_eq!(parse(args).unwrap().filter(TEST_NOW), expect, "{args:?}");
        };
        check(
            &[],
            UsageFilter {
                starting_at: Some("2026-04-30T12:00:00Z".to_owned()),
                ..UsageFilter::default()
            },
        );
        check(
            &["--since", "7d", "--workspace", "default", "--principal", "apikey_1"],
            UsageFilter {
                starting_at: Some("2026-04-24T12:00:00Z".to_owned()),
                workspace_id: Some("default".to_owned()),
                principal_id: Some("apikey_1".to_owned()),
                ..UsageFilter::default()
            },
        );
        check(
            &[
                "--starting-at",
                "2026-04-01T00:00:00Z",
                "--ending-at",
                "2026-04-02T00:00:00Z",
            ],
            UsageFilter {
                starting_at: Some("2026-04-01T00:00:00Z".to_owned()),
                ending_at: Some("2026-04-02T00:00:00Z".to_owned()),
                ..UsageFilter::default()
            },
        );
        let both = parse(&["--since", "1h", "--starting-at", "2026-04-01T00:00:00Z"]).unwrap_err();
        assert_eq!(both.kind(), clap::error::ErrorKind::ArgumentConflict);
        let bad = parse(&["--since", "soon"]).unwrap_err();
        assert_eq!(bad.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn the_table_shows_the_range_and_a_row_per_principal() {
        let summary: UsageSummary = serde_json::from_value(json!({
            "starting_at": "2026-04-30T12:00:00Z", "ending_at": "2026-05-01T12:00:00Z", "data": [
                {"principal_type": "api_key", "principal_id": "apikey_1", "workspace_id": "wrkspc_1",
                 "requests": 12, "allowed": 10, "refused": 2, "rate_limited": 1, "upstream_errors": 0,
                 "mean_latency_ms": 3.26, "last_request_at": "2026-05-01T11:00:00Z"},
                {"principal_type": null, "principal_id": null, "workspace_id": null, "requests": 1,
                 "allowed": 0, "refused": 1, "rate_limited": 0, "upstream_errors": 0, "mean_latency_ms": 0.5,
                 "last_request_at": null}]}))
        .unwrap();
        let text = usage_text(&summary);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "from 2026-04-30T12:00:00Z to 2026-05-01T12:00:00Z");
        assert_eq!(lines[1], "");
        assert!(
            lines[2].starts_with("PRINCIPAL  TYPE     WORKSPACE  REQUESTS"),
            "{text}"
        );
        assert!(lines[3].starts_with("apikey_1   api_key  wrkspc_1   12  "), "{text}");
        assert!(lines[3].contains("  3.3  "), "{text}");
        assert!(lines[4].starts_with("-          -        -          1   "), "{text}");
        assert_eq!(lines.len(), 5, "{text}");
        let empty = UsageSummary {
            data: Vec::new(),
            ..summary
        };
        assert_eq!(
            usage_text(&empty),
            "from 2026-04-30T12:00:00Z to 2026-05-01T12:00:00Z: no requests\n"
        );
    }
}
