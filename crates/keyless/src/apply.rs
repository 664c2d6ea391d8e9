//! `keyless apply` and `keyless export`: declarative configuration (`docs/config.md`), a thin layer
//! over `keyless_client::declarative` (the model, the plan and the apply all live there).
//!
//! Must not: compute a diff or call the server other than through `keyless_client::declarative`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use keyless_api::RuleWarning;
use keyless_client::declarative::{self, Action, Applied, Change, Document, Plan, RuleCheck, RuleCheckOutcome, State};
use serde_json::{Value, json};

use crate::admin;
use crate::error::CliError;
use crate::output::{cell, write_stdout};
use crate::session::GlobalArgs;

/// `keyless apply`.
#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// The configuration file (YAML or JSON, see `keyless export --schema`); `-` reads stdin.
    #[arg(long, short = 'f', env = "KEYLESS_APPLY_FILE", value_name = "FILE")]
    file: PathBuf,
    /// Only print the plan; change nothing.
    #[arg(long, env = "KEYLESS_APPLY_PLAN")]
    plan: bool,
    /// Archive live objects the file does not declare (never the default workspace; API keys are not
    /// managed by the file).
    #[arg(long, env = "KEYLESS_APPLY_PRUNE")]
    prune: bool,
    /// Output format: a readable plan, or the plan (and what was applied) as JSON.
    #[arg(long, short = 'o', env = "KEYLESS_OUTPUT", value_enum, default_value_t = PlanFormat::Text)]
    output: PlanFormat,
}

/// `--output` of `keyless apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PlanFormat {
    /// One line per change, the changed fields below it.
    #[value(alias = "table")]
    Text,
    /// `{changes: [...], applied}`.
    Json,
}

/// `keyless export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Output format of the configuration.
    #[arg(long, short = 'o', env = "KEYLESS_EXPORT_OUTPUT", value_enum, default_value_t = ExportFormat::Yaml)]
    output: ExportFormat,
    /// Print the file format's JSON Schema instead (no server needed).
    #[arg(long)]
    schema: bool,
}

/// `--output` of `keyless export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExportFormat {
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

fn read_file(path: &PathBuf) -> Result<String, CliError> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|err| CliError::Local(format!("-f -: reading stdin: {err}")))?;
        Ok(text)
    } else {
        std::fs::read_to_string(path).map_err(|err| CliError::Local(format!("{}: {err}", path.display())))
    }
}

/// Runs `keyless apply`.
pub(crate) fn apply(global: &GlobalArgs, args: ApplyArgs) -> ExitCode {
    let text = match read_file(&args.file) {
        Ok(text) => text,
        Err(err) => return err.report(),
    };
    let source = args.file.display().to_string();
    let document = match declarative::parse(&text) {
        Ok(document) => document,
        Err(problems) => return CliError::Local(format!("{source}: {problems}")).report(),
    };
    admin::run(global, false, |admin| async move {
        let state = State::read(&admin).await?;
        let plan = declarative::plan(&state, &document, args.prune)
            .map_err(|problems| CliError::Local(format!("{source}: {problems}")))?;
        let checks = declarative::check_rules(&admin, &state, &document, &plan).await?;
        let refused: Vec<String> = checks
            .iter()
            .filter_map(|check| match &check.outcome {
                RuleCheckOutcome::Refused { code, message } => Some(match code {
                    Some(code) => format!("rule {}: {message} ({code})", check.name),
                    None => format!("rule {}: {message}", check.name),
                }),
                _ => None,
            })
            .collect();
        if args.plan || plan.is_empty() {
            print_plan(args.output, &plan, &checks)?;
        }
        if !refused.is_empty() {
            return Err(CliError::Local(format!(
                "the server would refuse {}; nothing was applied",
                refused.join("; ")
            )));
        }
        if args.plan || plan.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        let text_output = args.output == PlanFormat::Text;
        let outcome = declarative::apply(&admin, &state, &document, &plan, |applied| {
            if text_output {
                // Progress: each change as it is done; a failed write to stdout is caught at the end.
                let _ = write_stdout(&applied_text(applied));
            }
        })
        .await;
        match outcome {
            Ok(applied) => {
                if text_output {
                    write_stdout(&format!("applied: {}\n", counts(&plan)))?;
                } else {
                    write_stdout(&pretty(&json!({"applied": true, "changes": applied}))?)?;
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(err) => {
                if !text_output {
                    write_stdout(&pretty(&json!({
                        "applied": false, "changes": err.applied, "failed": err.change,
                    }))?)?;
                }
                eprintln!(
                    "error: {} of {} changes were applied before `{}` failed; nothing was rolled back \
                     (fix the cause and apply again: it converges)",
                    err.applied.len(),
                    plan.changes.len(),
                    err.change
                );
                Err(match CliError::from(err.source) {
                    CliError::Server(mut api) => {
                        let message = api.message.clone().unwrap_or_else(|| api.to_string());
                        api.message = Some(format!("{}: {message}", err.change));
                        CliError::Server(api)
                    }
                    CliError::Local(message) => CliError::Local(format!("{}: {message}", err.change)),
                })
            }
        }
    })
}

/// `2 to create, 1 to update, 0 to archive`.
fn counts(plan: &Plan) -> String {
    format!(
        "{} to create, {} to update, {} to archive",
        plan.count(Action::Create),
        plan.count(Action::Update),
        plan.count(Action::Archive)
    )
}

fn pretty(value: &Value) -> Result<String, CliError> {
    serde_json::to_string_pretty(value)
        .map(|text| text + "\n")
        .map_err(|err| CliError::Local(format!("writing JSON: {err}")))
}

/// The plan: `no changes`, or one line per change (`+ create`, `~ update`, `- archive`) with an
/// update's fields below it and a rule's lint warnings (or why it would be refused), and the counts.
fn print_plan(format: PlanFormat, plan: &Plan, checks: &[RuleCheck]) -> Result<(), CliError> {
    if format == PlanFormat::Json {
        return write_stdout(&pretty(&json!({"changes": plan.changes, "rules": checks}))?);
    }
    if plan.is_empty() {
        return write_stdout("no changes\n");
    }
    let mut text = String::new();
    for change in &plan.changes {
        text.push_str(&change_text(change));
        let check = checks
            .iter()
            .find(|check| change.kind == declarative::Kind::Rule && check.name == change.name);
        match check.map(|check| &check.outcome) {
            Some(RuleCheckOutcome::Valid { warnings }) => text.push_str(&warnings_text(warnings)),
            Some(RuleCheckOutcome::Refused { code, message }) => {
                text.push_str(&format!("    refused: {} ({message})\n", cell(code.as_deref())));
            }
            Some(RuleCheckOutcome::Deferred { reason }) => text.push_str(&format!("    lints: {reason}\n")),
            None => {}
        }
    }
    text.push_str(&format!("plan: {}\n", counts(plan)));
    write_stdout(&text)
}

fn change_text(change: &Change) -> String {
    let sign = match change.action {
        Action::Create => '+',
        Action::Update => '~',
        Action::Archive => '-',
    };
    let mut text = format!("{sign} {change}\n");
    if change.action == Action::Update {
        for field in &change.fields {
            text.push_str(&format!("    {}: {} → {}\n", field.field, field.previous, field.new));
        }
    }
    text
}

fn warnings_text(warnings: &[RuleWarning]) -> String {
    warnings
        .iter()
        .map(|warning| {
            format!(
                "    warning: {} ({}): {}\n",
                warning.code, warning.field, warning.message
            )
        })
        .collect()
}

fn applied_text(applied: &Applied) -> String {
    change_text(&applied.change) + &warnings_text(&applied.warnings)
}

/// Runs `keyless export`.
pub(crate) fn export(global: &GlobalArgs, args: &ExportArgs) -> ExitCode {
    if args.schema {
        return match write_stdout(declarative::SCHEMA) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => err.report(),
        };
    }
    let format = args.output;
    admin::run(global, false, |admin| async move {
        let state = State::read(&admin).await?;
        write_stdout(&document_text(format, &state.export())?)?;
        Ok(ExitCode::SUCCESS)
    })
}

fn document_text(format: ExportFormat, document: &Document) -> Result<String, CliError> {
    match format {
        ExportFormat::Yaml => document
            .to_yaml()
            .map_err(|err| CliError::Local(format!("writing YAML: {err}"))),
        ExportFormat::Json => pretty(&serde_json::to_value(document).map_err(|err| CliError::Local(err.to_string()))?),
    }
}
