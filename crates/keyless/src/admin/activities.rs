//! `keyless activities list [filters] [--follow]`: the activity feed.
//!
//! Without `--follow`: every matching event (or the first `--limit`), newest first, as a table, a JSON
//! array or a YAML sequence. With `--follow`: the latest `--limit` (default 20) matching events, oldest
//! first, then each newer one as it arrives (polling with `before_id` = the newest event seen, every
//! `--interval` seconds, at once again while the server says more are waiting), until interrupted.
//! Followed output is a stream: table rows under one header, one JSON object per line, or one YAML
//! document per event.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use keyless_api::Activity;
use keyless_client::admin::{ActivityFilter, Admin, MAX_PAGE_SIZE};

use crate::admin::run;
use crate::error::CliError;
use crate::output::{self, Format, OutputArgs, Row, Stream, cell};
use crate::session::GlobalArgs;

/// How many events `--follow` shows before following, without `--limit`.
const FOLLOW_BACKLOG: usize = 20;

/// `keyless activities`.
#[derive(Debug, Args)]
pub(crate) struct ActivitiesArgs {
    #[command(flatten)]
    output: OutputArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List activity events, newest first; --follow keeps printing new ones until interrupted.
    List(ListArgs),
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Only events of this type (repeatable, or comma-separated), e.g. platform_service_account_created.
    #[arg(
        long = "type",
        env = "KEYLESS_ACTIVITIES_TYPES",
        value_name = "TYPE",
        value_delimiter = ','
    )]
    types: Vec<String>,
    /// Only events by this actor (a service account ID, or `bootstrap`).
    #[arg(long, env = "KEYLESS_ACTIVITIES_ACTOR_ID", value_name = "ID")]
    actor_id: Option<String>,
    /// Only events about this object.
    #[arg(long, env = "KEYLESS_ACTIVITIES_RESOURCE_ID", value_name = "ID")]
    resource_id: Option<String>,
    /// Only events of this request (req_…): a refused exchange's whole trace.
    #[arg(long, env = "KEYLESS_ACTIVITIES_REQUEST_ID", value_name = "ID")]
    request_id: Option<String>,
    /// Only events at or after this time (RFC 3339 or Unix seconds).
    #[arg(long, env = "KEYLESS_ACTIVITIES_CREATED_AFTER", value_name = "TIME")]
    created_after: Option<String>,
    /// Only events before this time (RFC 3339 or Unix seconds).
    #[arg(long, env = "KEYLESS_ACTIVITIES_CREATED_BEFORE", value_name = "TIME")]
    created_before: Option<String>,
    /// List at most this many events (default: all; with --follow, the latest 20 before following).
    #[arg(long, env = "KEYLESS_LIMIT", value_name = "N")]
    limit: Option<usize>,
    /// Keep printing new events as they are recorded, until interrupted (Ctrl-C).
    #[arg(long, short = 'f', env = "KEYLESS_ACTIVITIES_FOLLOW")]
    follow: bool,
    /// Seconds between polls while following.
    #[arg(
        long,
        env = "KEYLESS_ACTIVITIES_INTERVAL",
        value_name = "SECONDS",
        default_value_t = 2.0
    )]
    interval: f64,
}

impl Row for Activity {
    const HEADERS: &'static [&'static str] = &["ID", "CREATED", "TYPE", "ACTOR", "RESOURCE", "REQUEST"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.created_at.clone(),
            self.kind.clone(),
            cell(self.actor_id.as_deref()),
            cell(self.resource_id.as_deref()),
            cell(self.request_id.as_deref()),
        ]
    }
}

/// Column widths of the followed table (rows are printed before the widest cell is known).
const FOLLOW_WIDTHS: [usize; 6] = [10, 20, 44, 32, 32, 30];

/// Runs `keyless activities …`.
pub(crate) fn main(global: &GlobalArgs, args: ActivitiesArgs) -> ExitCode {
    let format = args.output.output;
    let Command::List(list) = args.command;
    if !(list.interval.is_finite() && list.interval > 0.0) {
        eprintln!("error: --interval: must be a positive number of seconds");
        return ExitCode::from(1);
    }
    let filter = ActivityFilter {
        types: list.types.clone(),
        actor_id: list.actor_id.clone(),
        resource_id: list.resource_id.clone(),
        request_id: list.request_id.clone(),
        created_after: list.created_after.clone(),
        created_before: list.created_before.clone(),
        limit: Some(MAX_PAGE_SIZE),
        ..ActivityFilter::default()
    };
    run(global, !list.follow, |admin| async move {
        if list.follow {
            follow(&admin, &filter, &list, format).await
        } else {
            let events = admin.activities().pages(&filter).collect(list.limit).await?;
            output::many(format, &events)?;
            Ok(ExitCode::SUCCESS)
        }
    })
}

/// Prints the backlog, then polls for newer events forever.
async fn follow(admin: &Admin, filter: &ActivityFilter, list: &ListArgs, format: Format) -> Result<ExitCode, CliError> {
    let activities = admin.activities();
    let backlog = activities
        .pages(filter)
        .collect(Some(list.limit.unwrap_or(FOLLOW_BACKLOG)))
        .await?;
    let stream = Stream::start::<Activity>(format, &FOLLOW_WIDTHS)?;
    for event in backlog.iter().rev() {
        stream.item(event)?;
    }
    let mut newest = backlog.first().map(|event| event.id.clone());
    let interval = Duration::from_secs_f64(list.interval);
    loop {
        let feed = match &newest {
            Some(id) => activities.newer_than(filter, id).await?,
            None => activities.list(filter).await?,
        };
        for event in feed.data.iter().rev() {
            stream.item(event)?;
        }
        if let Some(first_id) = feed.first_id {
            newest = Some(first_id);
        }
        if !feed.has_more || newest.is_none() {
            tokio::time::sleep(interval).await;
        }
    }
}
