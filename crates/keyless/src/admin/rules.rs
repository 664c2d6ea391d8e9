//! `keyless rules create|list|get|update|archive|simulate|replay|env` and
//! `keyless rules workspaces list|add|remove`.
//!
//! The `match` flags (`--subject-prefix`, `--audience`, `--claim`, `--condition`) are set inside the
//! `match` object of `--from-file`, if it has one; on `update` any of them replaces the rule's `match`
//! whole, as the API does.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use keyless_api::{
    CreateFederationRule, FederationRule, Replay, ReplayRules, RuleSimulation, RuleWarning, RuleWorkspace,
    SimulateRules, Simulation, Target, UpdateFederationRule,
};
use serde_json::{Map, Value};

use crate::admin::{Body, ListArgs, collect, json, run};
use crate::error::CliError;
use crate::output::{self, OutputArgs, Row, cell};
use crate::session::GlobalArgs;

/// `keyless rules`.
#[derive(Debug, Args)]
pub(crate) struct RulesArgs {
    #[command(flatten)]
    output: OutputArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a federation rule: tokens of an issuer that match become a service account.
    Create(Box<CreateArgs>),
    /// List federation rules, newest first (every page unless --limit).
    List(ListRulesArgs),
    /// Show one federation rule.
    Get {
        /// The rule (fdrl_…).
        id: String,
    },
    /// Change a federation rule (match and target are replaced whole; the result is validated whole).
    Update(Box<UpdateArgs>),
    /// Archive a federation rule: exchanges through it stop at once.
    Archive {
        /// The rule (fdrl_…).
        id: String,
    },
    /// The workspaces a rule is enabled in.
    #[command(subcommand)]
    Workspaces(WorkspacesCommand),
    /// What the exchange would do with a token (or a claim set) through a rule, or through every live
    /// rule of an issuer: every check with what it expected and saw, and the verdict. Mints nothing;
    /// exits 0 whatever the verdict.
    Simulate(Box<SimulateArgs>),
    /// Run the rule's issuer's most recent refused exchanges (as the activity feed kept them) again
    /// through a draft rule (the flags of `create`; saved nowhere) or a stored one (--rule), and show
    /// which would now pass. Changes nothing; exits 0 whatever the verdicts.
    Replay(Box<ReplayArgs>),
    /// What a workload needs to exchange through a rule: KEYLESS_* lines on stdout (for
    /// `export $(keyless rules env fdrl_…)` or a CI configuration), notes on stderr (the audience its
    /// identity token must carry, the workspace to pick).
    Env {
        /// The rule (fdrl_…).
        id: String,
    },
}

#[derive(Debug, Args)]
struct ListRulesArgs {
    #[command(flatten)]
    list: ListArgs,
    /// Only the rules of this issuer (fdis_…).
    #[arg(long, env = "KEYLESS_RULES_ISSUER_ID", value_name = "ID")]
    issuer_id: Option<String>,
}

/// The fields of a rule, shared by `create` and `update`.
#[derive(Debug, Args)]
struct RuleArgs {
    /// The name: 1–255 of a-z, 0-9 and `-`, unique in the organization.
    #[arg(long, env = "KEYLESS_RULES_NAME", value_name = "NAME")]
    name: Option<String>,
    /// A description (at most 1024 characters).
    #[arg(long, env = "KEYLESS_RULES_DESCRIPTION", value_name = "TEXT")]
    description: Option<String>,
    /// The issuer whose tokens it matches (fdis_…; immutable after create).
    #[arg(long, env = "KEYLESS_RULES_ISSUER_ID", value_name = "ID")]
    issuer_id: Option<String>,
    /// match.subject_prefix: `sub` equals it, or starts with it when it ends in `*`.
    #[arg(long, env = "KEYLESS_RULES_SUBJECT_PREFIX", value_name = "SUB")]
    subject_prefix: Option<String>,
    /// match.audience: `aud` is it, or contains it.
    #[arg(long, env = "KEYLESS_RULES_AUDIENCE", value_name = "AUD")]
    audience: Option<String>,
    /// match.claims: a top-level claim that must equal a string (repeatable).
    #[arg(
        long = "claim",
        env = "KEYLESS_RULES_CLAIMS",
        value_name = "NAME=VALUE",
        value_delimiter = ','
    )]
    claims: Vec<String>,
    /// match.condition: a CEL expression over `claims` that must be true.
    #[arg(long, env = "KEYLESS_RULES_CONDITION", value_name = "CEL")]
    condition: Option<String>,
    /// The service account a matching token becomes (svac_…).
    #[arg(long, env = "KEYLESS_RULES_SERVICE_ACCOUNT_ID", value_name = "ID")]
    service_account_id: Option<String>,
    /// The scopes granted at most, space-separated (the server's default: workspace:developer).
    #[arg(long, env = "KEYLESS_RULES_OAUTH_SCOPE", value_name = "SCOPES")]
    oauth_scope: Option<String>,
    /// The longest lifetime of a minted token, 60–86400 (the server's default: 3600).
    #[arg(long, env = "KEYLESS_RULES_TOKEN_LIFETIME_SECONDS", value_name = "SECONDS")]
    token_lifetime_seconds: Option<i64>,
    /// Enable it in this workspace (wrkspc_… or `default`; repeatable). Default: the default workspace.
    #[arg(
        long = "workspace-id",
        env = "KEYLESS_RULES_WORKSPACE_IDS",
        value_name = "ID",
        value_delimiter = ',',
        conflicts_with = "all_workspaces"
    )]
    workspace_ids: Vec<String>,
    /// Enable it in every workspace.
    #[arg(long, env = "KEYLESS_RULES_ALL_WORKSPACES")]
    all_workspaces: bool,
    /// `enforce` (mint tokens; the server's default) or `shadow` (record would-allow/would-deny events
    /// for exchanges through it, mint nothing).
    #[arg(long, env = "KEYLESS_RULES_MODE", value_name = "MODE", value_parser = ["enforce", "shadow"])]
    mode: Option<String>,
    /// The request body as JSON (`-` reads stdin); flags override its fields.
    #[arg(long, env = "KEYLESS_RULES_FROM_FILE", value_name = "FILE")]
    from_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct CreateArgs {
    #[command(flatten)]
    rule: RuleArgs,
    /// Check the rule as a create would (refusals, lint warnings, references) and create nothing.
    #[arg(long, env = "KEYLESS_RULES_DRY_RUN")]
    dry_run: bool,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// Replay through this stored rule (fdrl_…), as it is now, instead of a draft.
    #[arg(long, env = "KEYLESS_REPLAY_RULE", value_name = "ID")]
    rule: Option<String>,
    /// How many of the newest refused exchanges to replay (1–500; the server's default: 50).
    #[arg(long, env = "KEYLESS_REPLAY_LIMIT", value_name = "N")]
    limit: Option<u32>,
    /// The draft: the flags of `create` (--name defaults to `draft`).
    #[command(flatten)]
    draft: RuleArgs,
}

impl ReplayArgs {
    fn request(self) -> Result<ReplayRules, CliError> {
        let rule = match self.rule {
            Some(_) if self.draft.is_set() => {
                return Err(CliError::Local(
                    "--rule: replays a stored rule; give either --rule or the draft's flags, not both".to_owned(),
                ));
            }
            Some(_) => None,
            None => {
                let mut body = self.draft.body()?;
                body.default("name", "draft");
                Some(body.into_request()?)
            }
        };
        Ok(ReplayRules {
            rule,
            rule_id: self.rule,
            limit: self.limit,
        })
    }
}

/// The table form of a replay: the totals, then one row per refused exchange.
fn replay_text(replay: &Replay) -> String {
    let summary = &replay.summary;
    let mut out = format!(
        "{} refused exchange(s) of {} replayed through {}: {} would pass, {} would pass if their signature \
         verified, {} would still be refused, {} not replayable\n",
        replay.replayed,
        replay.rule.issuer_id,
        replay.rule.id.as_deref().unwrap_or("the draft"),
        summary.would_pass,
        summary.would_pass_if_verified,
        summary.would_reject,
        summary.not_replayable,
    );
    if !replay.history_exhausted {
        out.push_str(&format!(
            "(looked through the newest {} exchange events; older refusals were not replayed)\n",
            replay.scanned_events
        ));
    }
    if replay.data.is_empty() {
        return out;
    }
    let rows: Vec<Vec<String>> = replay
        .data
        .iter()
        .map(|entry| {
            let now = match (&entry.code, &entry.reason) {
                (Some(code), _) => code.clone(),
                (None, Some(reason)) => reason.clone(),
                (None, None) => cell(entry.scope.as_deref()),
            };
            vec![
                entry.created_at.clone(),
                value_cell(entry.subject.as_ref()),
                entry.original.code.clone(),
                entry.verdict.clone(),
                now,
                cell(entry.request_id.as_deref()),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&output::table(
        &["REFUSED AT", "SUBJECT", "WAS", "NOW", "CODE / SCOPE", "REQUEST"],
        &rows,
    ));
    out
}

#[derive(Debug, Args)]
struct UpdateArgs {
    /// The rule (fdrl_…).
    id: String,
    #[command(flatten)]
    rule: RuleArgs,
    /// Remove the description.
    #[arg(long, env = "KEYLESS_RULES_CLEAR_DESCRIPTION", conflicts_with = "description")]
    clear_description: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("rules").required(true).args(["rule", "issuer"])))]
#[command(group(clap::ArgGroup::new("input").required(true).args(["token_file", "token", "claims_file"])))]
struct SimulateArgs {
    /// Simulate this rule (fdrl_…).
    #[arg(long, env = "KEYLESS_SIMULATE_RULE", value_name = "ID")]
    rule: Option<String>,
    /// Simulate every live rule of this issuer (fdis_…).
    #[arg(long, env = "KEYLESS_SIMULATE_ISSUER", value_name = "ID")]
    issuer: Option<String>,
    /// Read the token (a compact JWT) from this file.
    #[arg(long, env = "KEYLESS_SIMULATE_TOKEN_FILE", value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// `-`: read the token from stdin (a token itself is refused here: it would end up in the shell's
    /// history; use --token-file).
    #[arg(long, value_name = "-")]
    token: Option<String>,
    /// Read a claim set (a JSON object) from this file instead of a token (`-` reads stdin).
    #[arg(long, env = "KEYLESS_SIMULATE_CLAIMS_FILE", value_name = "FILE")]
    claims_file: Option<PathBuf>,
    /// Decode the token without verifying its signature against the issuer's keys.
    #[arg(long, env = "KEYLESS_SIMULATE_NO_VERIFY")]
    no_verify: bool,
    /// The workspace the exchange would ask for (wrkspc_… or `default`).
    #[arg(long, env = "KEYLESS_SIMULATE_WORKSPACE", value_name = "ID")]
    workspace: Option<String>,
    /// The scope the exchange would ask for, space-separated.
    #[arg(long, env = "KEYLESS_SIMULATE_SCOPE", value_name = "SCOPES")]
    scope: Option<String>,
    /// The service account the exchange would name (svac_…).
    #[arg(long, env = "KEYLESS_SIMULATE_SERVICE_ACCOUNT", value_name = "ID")]
    service_account: Option<String>,
}

impl SimulateArgs {
    fn request(self) -> Result<SimulateRules, CliError> {
        let read = |flag: &str, path: &PathBuf| -> Result<String, CliError> {
            if path.as_os_str() == "-" {
                read_stdin(flag)
            } else {
                std::fs::read_to_string(path)
                    .map_err(|err| CliError::Local(format!("{flag} {}: {err}", path.display())))
            }
        };
        let token = match (&self.token_file, self.token.as_deref()) {
            (Some(path), _) => Some(read("--token-file", path)?),
            (None, Some("-")) => Some(read_stdin("--token -")?),
            (None, Some(_)) => {
                return Err(CliError::Local(
                    "--token: only `-` (stdin) is accepted: a token on the command line ends up in the shell's \
                     history; use --token-file"
                        .to_owned(),
                ));
            }
            (None, None) => None,
        };
        let claims = match &self.claims_file {
            None => None,
            Some(path) => match serde_json::from_str(&read("--claims-file", path)?) {
                Ok(Value::Object(claims)) => Some(claims),
                Ok(_) => return Err(CliError::Local("--claims-file: must hold a JSON object".to_owned())),
                Err(err) => return Err(CliError::Local(format!("--claims-file: not JSON: {err}"))),
            },
        };
        Ok(SimulateRules {
            token: token.map(|token| token.trim().to_owned()),
            verify: self.no_verify.then_some(false),
            claims,
            rule_id: self.rule,
            issuer_id: self.issuer,
            workspace_id: self.workspace,
            scope: self.scope,
            service_account_id: self.service_account,
        })
    }
}

fn read_stdin(flag: &str) -> Result<String, CliError> {
    use std::io::Read;
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|err| CliError::Local(format!("{flag}: reading stdin: {err}")))?;
    Ok(text)
}

/// A check's value in a table cell: strings as they are, anything else as compact JSON, absent as `-`.
fn value_cell(value: Option<&Value>) -> String {
    match value {
        None => "-".to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// The table form of a simulation: per rule, its verdict, then one row per check.
fn simulation_text(simulation: &Simulation) -> String {
    let verified = if simulation.verified {
        "verified"
    } else {
        "not verified"
    };
    let mut out = format!("signature: {verified}\n");
    if simulation.results.is_empty() {
        out.push_str("no live rule to simulate\n");
    }
    for result in &simulation.results {
        out.push('\n');
        out.push_str(&format!(
            "{} ({}): {}\n",
            result.rule_name,
            result.rule_id,
            verdict_text(result)
        ));
        let rows: Vec<Vec<String>> = result
            .checks
            .iter()
            .map(|check| {
                vec![
                    if check.passed { "✓" } else { "✗" }.to_owned(),
                    check.check.clone(),
                    value_cell(check.expected.as_ref()),
                    value_cell(check.seen.as_ref()),
                    cell(check.code.as_deref()),
                ]
            })
            .collect();
        out.push_str(&output::table(&["", "CHECK", "EXPECTED", "SEEN", "CODE"], &rows));
    }
    out
}

fn verdict_text(result: &RuleSimulation) -> String {
    if result.would_grant() {
        format!(
            "would grant {} for {} s",
            cell(result.scope.as_deref()),
            result
                .token_lifetime_seconds
                .map_or_else(|| "-".to_owned(), |seconds| seconds.to_string())
        )
    } else {
        format!("would reject: {}", cell(result.code.as_deref()))
    }
}

#[derive(Debug, Subcommand)]
enum WorkspacesCommand {
    /// List the workspaces a rule is enabled in.
    List {
        /// The rule (fdrl_…).
        id: String,
    },
    /// Enable a rule in one more workspace.
    Add {
        /// The rule (fdrl_…).
        id: String,
        /// The workspace (wrkspc_…, or `default`).
        workspace_id: String,
    },
    /// Disable a rule in one workspace (not its last one: archive the rule instead).
    Remove {
        /// The rule (fdrl_…).
        id: String,
        /// The workspace (wrkspc_…, or `default`).
        workspace_id: String,
    },
}

impl RuleArgs {
    /// Whether any field was given.
    fn is_set(&self) -> bool {
        [
            &self.name,
            &self.description,
            &self.issuer_id,
            &self.subject_prefix,
            &self.audience,
            &self.condition,
            &self.service_account_id,
            &self.oauth_scope,
            &self.mode,
        ]
        .iter()
        .any(|field| field.is_some())
            || !self.claims.is_empty()
            || self.token_lifetime_seconds.is_some()
            || !self.workspace_ids.is_empty()
            || self.all_workspaces
            || self.from_file.is_some()
    }

    /// The body: the file's fields, then the flags over them.
    fn body(&self) -> Result<Body, CliError> {
        let mut body = Body::from_file(self.from_file.as_ref())?;
        body.set("name", json(self.name.clone()));
        body.set("description", json(self.description.clone()));
        body.set("issuer_id", json(self.issuer_id.clone()));
        let mut matcher = body.object("match")?;
        let mut match_set = false;
        for (field, value) in [
            ("subject_prefix", &self.subject_prefix),
            ("audience", &self.audience),
            ("condition", &self.condition),
        ] {
            if let Some(value) = value {
                matcher.insert(field.to_owned(), Value::from(value.as_str()));
                match_set = true;
            }
        }
        if !self.claims.is_empty() {
            let mut claims = match matcher.get("claims") {
                Some(Value::Object(claims)) => claims.clone(),
                _ => Map::new(),
            };
            for claim in &self.claims {
                let (name, value) = claim
                    .split_once('=')
                    .ok_or_else(|| CliError::Local(format!("--claim {claim}: must be NAME=VALUE")))?;
                claims.insert(name.to_owned(), Value::from(value));
            }
            matcher.insert("claims".to_owned(), Value::Object(claims));
            match_set = true;
        }
        if match_set {
            body.set("match", Some(Value::Object(matcher)));
        }
        if let Some(service_account_id) = &self.service_account_id {
            let target = Target::service_account(service_account_id.as_str());
            body.set(
                "target",
                Some(serde_json::to_value(target).map_err(|err| CliError::Local(err.to_string()))?),
            );
        }
        body.set("oauth_scope", json(self.oauth_scope.clone()));
        body.set("token_lifetime_seconds", json(self.token_lifetime_seconds));
        match self.workspace_ids.as_slice() {
            [] => {}
            [one] => body.set("workspace_id", json(Some(one.as_str()))),
            many => body.set("workspace_ids", Some(Value::from(many.to_vec()))),
        }
        if self.all_workspaces {
            body.set("applies_to_all_workspaces", Some(Value::Bool(true)));
        }
        body.set("mode", json(self.mode.clone()));
        Ok(body)
    }
}

impl Row for FederationRule {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "NAME",
        "ISSUER",
        "SUBJECT",
        "SERVICE ACCOUNT",
        "SCOPE",
        "LIFETIME",
        "WORKSPACES",
        "ARCHIVED",
    ];

    fn cells(&self) -> Vec<String> {
        let workspaces = if self.applies_to_all_workspaces {
            "all".to_owned()
        } else {
            self.workspace_ids.join(",")
        };
        vec![
            self.id.clone(),
            self.name.clone(),
            self.issuer_id.clone(),
            cell(self.r#match.subject_prefix.as_deref()),
            self.target.service_account_id.clone(),
            self.oauth_scope.clone(),
            self.token_lifetime_seconds.to_string(),
            workspaces,
            cell(self.audit.archived_at.as_deref()),
        ]
    }
}

impl Row for RuleWorkspace {
    const HEADERS: &'static [&'static str] = &["RULE", "WORKSPACE"];

    fn cells(&self) -> Vec<String> {
        vec![self.federation_rule_id.clone(), self.workspace_id.clone()]
    }
}

/// Runs `keyless rules …`.
pub(crate) fn main(global: &GlobalArgs, args: RulesArgs) -> ExitCode {
    let format = args.output.output;
    run(global, true, |admin| async move {
        let rules = admin.rules();
        match args.command {
            Command::Create(create) if create.dry_run => {
                let request: CreateFederationRule = create.rule.body()?.into_request()?;
                let validation = rules.validate(&request).await?;
                warn(&validation.warnings);
                match format {
                    output::Format::Table | output::Format::Id => {
                        output::write_stdout("valid: a create would succeed (nothing was created)\n")?;
                    }
                    output::Format::Json | output::Format::Yaml => output::document(format, &validation)?,
                }
            }
            Command::Create(create) => {
                let request: CreateFederationRule = create.rule.body()?.into_request()?;
                let rule = rules.create(&request).await?;
                warn(&rule.warnings);
                output::one(format, &rule)?;
            }
            Command::List(list) => {
                let pager = rules.pages(&list.list.options(), list.issuer_id.as_deref());
                output::many(format, &collect(pager, &list.list).await?)?;
            }
            Command::Get { id } => output::one(format, &rules.get(&id).await?)?,
            Command::Update(update) => {
                let mut body = update.rule.body()?;
                body.clear("description", update.clear_description);
                let request: UpdateFederationRule = body.into_request()?;
                let rule = rules.update(&update.id, &request).await?;
                warn(&rule.warnings);
                output::one(format, &rule)?;
            }
            Command::Archive { id } => output::one(format, &rules.archive(&id).await?)?,
            Command::Workspaces(WorkspacesCommand::List { id }) => {
                let workspaces = rules.workspaces(&id).await?;
                if format == output::Format::Table && workspaces.applies_to_all_workspaces {
                    output::write_stdout(&format!("{id} applies to all workspaces\n"))?;
                } else if format == output::Format::Table {
                    output::many(format, &workspaces.data)?;
                } else {
                    output::document(format, &workspaces)?;
                }
            }
            Command::Workspaces(WorkspacesCommand::Add { id, workspace_id }) => {
                output::one(format, &rules.add_workspace(&id, &workspace_id).await?)?;
            }
            Command::Workspaces(WorkspacesCommand::Remove { id, workspace_id }) => {
                output::one(format, &rules.remove_workspace(&id, &workspace_id).await?)?;
            }
            Command::Env { id } => workload_env(&admin, format, &id).await?,
            Command::Replay(replay) => {
                let replay = rules.replay(&replay.request()?).await?;
                warn(&replay.warnings);
                match format {
                    output::Format::Table => output::write_stdout(&replay_text(&replay))?,
                    output::Format::Id => {
                        let ids: String = replay
                            .data
                            .iter()
                            .filter(|entry| entry.verdict == "would_pass")
                            .map(|entry| format!("{}\n", entry.activity_id))
                            .collect();
                        output::write_stdout(&ids)?;
                    }
                    output::Format::Json | output::Format::Yaml => output::document(format, &replay)?,
                }
            }
            Command::Simulate(simulate) => {
                let simulation = rules.simulate(&simulate.request()?).await?;
                match format {
                    output::Format::Table => output::write_stdout(&simulation_text(&simulation))?,
                    output::Format::Id => {
                        let ids: String = simulation
                            .results
                            .iter()
                            .map(|result| format!("{}\n", result.rule_id))
                            .collect();
                        output::write_stdout(&ids)?;
                    }
                    output::Format::Json | output::Format::Yaml => output::document(format, &simulation)?,
                }
            }
        }
        Ok::<_, CliError>(ExitCode::SUCCESS)
    })
}

/// `keyless rules env`: the rule, the server's metadata (organization, default audience) and the base
/// URL the CLI used, as the workload's environment.
async fn workload_env(admin: &keyless_client::admin::Admin, format: output::Format, id: &str) -> Result<(), CliError> {
    let rule = admin.rules().get(id).await?;
    let metadata: Value = admin
        .api()
        .get(&[".well-known", "oauth-authorization-server"], &[])
        .await?;
    let member = |name: &str| {
        metadata
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| CliError::Local(format!("the server's metadata has no {name}: is it a keyless server?")))
    };
    let organization_id = member("keyless_organization_id")?;
    let audience = match &rule.r#match.audience {
        Some(audience) => audience.clone(),
        None => member("keyless_default_audience")?,
    };
    let mut vars = Map::new();
    vars.insert(
        "KEYLESS_BASE_URL".to_owned(),
        admin.api().base_url().as_str().trim_end_matches('/').into(),
    );
    vars.insert("KEYLESS_ORGANIZATION_ID".to_owned(), organization_id.into());
    vars.insert("KEYLESS_FEDERATION_RULE_ID".to_owned(), rule.id.clone().into());
    vars.insert(
        "KEYLESS_SERVICE_ACCOUNT_ID".to_owned(),
        rule.target.service_account_id.clone().into(),
    );
    if let [workspace] = rule.workspace_ids.as_slice() {
        vars.insert("KEYLESS_WORKSPACE_ID".to_owned(), workspace.clone().into());
    } else if rule.workspace_ids.len() > 1 {
        eprintln!(
            "note: the rule is enabled in {} workspaces: set KEYLESS_WORKSPACE_ID to the one the token is for",
            rule.workspace_ids.join(", ")
        );
    }
    eprintln!(
        "note: the workload's identity token must carry aud {audience:?}; point KEYLESS_IDENTITY_TOKEN_FILE at the file holding it"
    );
    match format {
        output::Format::Json | output::Format::Yaml => output::document(format, &vars)?,
        output::Format::Id => output::write_stdout(&format!("{}\n", rule.id))?,
        output::Format::Table => {
            let lines: String = vars
                .iter()
                .map(|(name, value)| format!("{name}={}\n", value.as_str().unwrap_or_default()))
                .collect();
            output::write_stdout(&lines)?;
        }
    }
    Ok(())
}

/// Prints a saved rule's lint warnings to stderr, one line each (the output itself stays parseable).
fn warn(warnings: &[RuleWarning]) {
    for warning in warnings {
        eprintln!("warning: {} ({}): {}", warning.code, warning.field, warning.message);
    }
}
