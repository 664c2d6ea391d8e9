//! `keyless api-keys create|list|get|update|revoke`: workspace API keys.
//!
//! The key itself is in the answer to `create` only. `create` prints it on stdout — below the key's
//! row in a table (with a warning on stderr that it will not be shown again), as the `key` member
//! with `-o json|yaml` — except with `-o id`, which prints the ID alone and warns that the key is
//! gone. Nothing else ever prints it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use keyless_api::{ApiKey, CreateApiKey, CreatedApiKey, UpdateApiKey};

use crate::admin::{Body, ListArgs, collect, json, run};
use crate::error::CliError;
use crate::output::{self, Format, OutputArgs, Row, cell};
use crate::session::GlobalArgs;

/// `keyless api-keys`.
#[derive(Debug, Args)]
pub(crate) struct ApiKeysArgs {
    #[command(flatten)]
    output: OutputArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an API key and print it — the only time it is shown (`-o json`: the `key` member).
    Create(CreateArgs),
    /// List API keys, newest first (every page unless --limit); never the keys, only their hints.
    List(ListApiKeysArgs),
    /// Show one API key (never the key, only its hint).
    Get {
        /// The API key's ID (apikey_…).
        id: String,
    },
    /// Rename an API key, or disable it (`--status inactive`) and enable it again.
    Update(UpdateArgs),
    /// Revoke an API key for good (archive it); revoking again changes nothing.
    #[command(alias = "archive")]
    Revoke {
        /// The API key's ID (apikey_…).
        id: String,
    },
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// The name, unique in the organization.
    #[arg(long, env = "KEYLESS_API_KEYS_NAME", value_name = "NAME")]
    name: Option<String>,
    /// The workspace it acts in (wrkspc_…, or `default`; the server's default: the default workspace).
    #[arg(long, alias = "workspace-id", env = "KEYLESS_API_KEYS_WORKSPACE", value_name = "ID")]
    workspace: Option<String>,
    /// A scope it holds (repeatable, or several space-separated; the server's default:
    /// workspace:developer).
    #[arg(
        long = "scope",
        env = "KEYLESS_API_KEYS_SCOPES",
        value_name = "SCOPE",
        value_delimiter = ' '
    )]
    scopes: Vec<String>,
    /// When it stops working (RFC 3339, e.g. 2026-12-01T00:00:00Z; default: never).
    #[arg(long, env = "KEYLESS_API_KEYS_EXPIRES_AT", value_name = "TIME")]
    expires_at: Option<String>,
    /// The request body as JSON (`-` reads stdin); flags override its fields.
    #[arg(long, env = "KEYLESS_API_KEYS_FROM_FILE", value_name = "FILE")]
    from_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ListApiKeysArgs {
    #[command(flatten)]
    list: ListArgs,
    /// Only the keys of this workspace (wrkspc_…, or `default`).
    #[arg(long, alias = "workspace-id", env = "KEYLESS_API_KEYS_WORKSPACE", value_name = "ID")]
    workspace: Option<String>,
}

#[derive(Debug, Args)]
struct UpdateArgs {
    /// The API key's ID (apikey_…).
    id: String,
    /// The new name.
    #[arg(long, env = "KEYLESS_API_KEYS_NAME", value_name = "NAME")]
    name: Option<String>,
    /// `inactive` disables the key (requests with it are refused) until it is set `active` again.
    #[arg(long, env = "KEYLESS_API_KEYS_STATUS", value_name = "STATUS", value_parser = ["active", "inactive"])]
    status: Option<String>,
    /// The request body as JSON (`-` reads stdin); flags override its fields.
    #[arg(long, env = "KEYLESS_API_KEYS_FROM_FILE", value_name = "FILE")]
    from_file: Option<PathBuf>,
}

impl Row for ApiKey {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "NAME",
        "WORKSPACE",
        "STATUS",
        "KEY HINT",
        "EXPIRES",
        "LAST USED",
        "CREATED",
        "SCOPE",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            self.workspace_id.clone(),
            self.status.to_string(),
            self.partial_key_hint.clone(),
            cell(self.expires_at.as_deref()),
            cell(self.last_used_at.as_deref()),
            self.audit.created_at.clone(),
            self.oauth_scope.clone(),
        ]
    }
}

/// The body of `create`: the file's fields, then the flags (`--scope`s joined by spaces).
fn create_body(create: CreateArgs) -> Result<CreateApiKey, CliError> {
    let mut body = Body::from_file(create.from_file.as_ref())?;
    body.set("name", json(create.name));
    body.set("workspace_id", json(create.workspace));
    let scopes: Vec<String> = create.scopes.into_iter().filter(|scope| !scope.is_empty()).collect();
    body.set("oauth_scope", json((!scopes.is_empty()).then(|| scopes.join(" "))));
    body.set("expires_at", json(create.expires_at));
    body.into_request()
}

/// The body of `update`.
fn update_body(update: &UpdateArgs) -> Result<UpdateApiKey, CliError> {
    let mut body = Body::from_file(update.from_file.as_ref())?;
    body.set("name", json(update.name.clone()));
    body.set("status", json(update.status.clone()));
    body.into_request()
}

/// What `create` prints on stdout, and the warning for stderr.
fn created_text(format: Format, created: &CreatedApiKey) -> Result<(Option<String>, Option<String>), CliError> {
    Ok(match format {
        Format::Table => (
            Some(format!(
                "{}\nkey: {}\n",
                output::table(ApiKey::HEADERS, &[created.api_key.cells()]),
                created.key.expose_secret()
            )),
            Some(
                "warning: the key above is shown only this once and cannot be retrieved: store it now \
                 (in a script, use -o json and read .key)"
                    .to_owned(),
            ),
        ),
        Format::Id => (
            Some(format!("{}\n", created.api_key.id)),
            Some(format!(
                "warning: -o id prints only the ID: the key of {} was not shown and cannot be retrieved \
                 (use -o json and read .key, or revoke it and create another)",
                created.api_key.id
            )),
        ),
        Format::Json | Format::Yaml => (None, None),
    })
}

/// Runs `keyless api-keys …`.
pub(crate) fn main(global: &GlobalArgs, args: ApiKeysArgs) -> ExitCode {
    let format = args.output.output;
    run(global, true, |admin| async move {
        let api_keys = admin.api_keys();
        match args.command {
            Command::Create(create) => {
                let request = create_body(create)?;
                let created = api_keys.create(&request).await?;
                match created_text(format, &created)? {
                    (Some(text), warning) => {
                        output::write_stdout(&text)?;
                        if let Some(warning) = warning {
                            eprintln!("{warning}");
                        }
                    }
                    (None, _) => output::document(format, &created)?,
                }
            }
            Command::List(list) => {
                let pager = api_keys.pages(&list.list.options(), list.workspace.as_deref());
                output::many(format, &collect(pager, &list.list).await?)?;
            }
            Command::Get { id } => output::one(format, &api_keys.get(&id).await?)?,
            Command::Update(update) => {
                let request = update_body(&update)?;
                output::one(format, &api_keys.update(&update.id, &request).await?)?;
            }
            Command::Revoke { id } => output::one(format, &api_keys.archive(&id).await?)?,
        }
        Ok::<_, CliError>(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

    use clap::Parser;
    use keyless_api::{ApiKeySecret, ApiKeyStatus};
    use serde_json::{Value, json};

    use super::*;

    fn parse(args: &[&str]) -> (Format, Command) {
        let cli = crate::Cli::try_parse_from([&["keyless", "api-keys"], args].concat()).unwrap();
        match cli.command {
            crate::Command::ApiKeys(api_keys) => (api_keys.output.output, api_keys.command),
            other => panic!("{other:?}"),
        }
    }

    fn create_json(args: &[&str]) -> Value {
        let (_, Command::Create(create)) = parse(&[&["create"], args].concat()) else {
            panic!("not create: {args:?}");
        };
        serde_json::to_value(create_body(create).unwrap()).unwrap()
    }

    #[test]
    fn create_flags_become_the_request_body() {
        let check = |args: &[&str], expect: Value| assert_eq!(create_json(args), expect, "{args:?}");
        check(&["--name", "ci-legacy"], json!({"name": "ci-legacy"}));
        check(
            &[
                "--name",
                "ci",
                "--workspace",
                "default",
                "--expires-at",
                "2026-12-01T00:00:00Z",
            ],
            json!({"name": "ci", "workspace_id": "default", "expires_at": "2026-12-01T00:00:00Z"}),
        );
        // --scope repeats, and a space-separated value is several scopes.
        check(
            &[
                "--name",
                "ci",
                "--scope",
                "workspace:developer",
                "--scope",
                "files:read files:write",
            ],
            json!({"name": "ci", "oauth_scope": "workspace:developer files:read files:write"}),
        );
        check(
            &["--name", "ci", "--workspace-id", "wrkspc_1"],
            json!({"name": "ci", "workspace_id": "wrkspc_1"}),
        );
    }

    #[test]
    fn update_takes_only_the_settable_statuses() {
        let (_, Command::Update(update)) = parse(&["update", "apikey_1", "--status", "inactive"]) else {
            panic!("not update");
        };
        assert_eq!(
            update_body(&update).unwrap(),
            UpdateApiKey {
                name: None,
                status: Some(ApiKeyStatus::Inactive)
            }
        );
        for refused in ["archived", "expired", "disabled"] {
            let err = crate::Cli::try_parse_from(["keyless", "api-keys", "update", "apikey_1", "--status", refused])
                .unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue, "{refused}");
        }
    }

    #[test]
    fn revoke_is_archive_and_the_output_flag_goes_anywhere() {
        let (format, command) = parse(&["revoke", "apikey_1", "-o", "id"]);
        assert_eq!(format, Format::Id);
        assert!(matches!(command, Command::Revoke { id } if id == "apikey_1"));
        assert!(matches!(parse(&["archive", "apikey_2"]).1, Command::Revoke { id } if id == "apikey_2"));
        let (_, Command::List(list)) = parse(&["list", "--workspace", "default", "--include-archived"]) else {
            panic!("not list");
        };
        assert_eq!(list.workspace.as_deref(), Some("default"));
        assert!(list.list.include_archived);
    }

    fn created() -> CreatedApiKey {
        CreatedApiKey {
            api_key: serde_json::from_value(json!({
                "id": "apikey_1", "type": "api_key", "name": "ci", "workspace_id": "wrkspc_1",
                "oauth_scope": "workspace:developer", "status": "active", "partial_key_hint": "keyless_ak_Ab…yz",
                "expires_at": null, "last_used_at": null, "created_at": "2026-05-01T12:00:00Z",
                "created_by_actor_id": "bootstrap", "updated_at": "2026-05-01T12:00:00Z",
                "updated_by_actor_id": "bootstrap", "archived_at": null, "archived_by_actor_id": null}))
            .unwrap(),
            key: ApiKeySecret::new("keyless_ak_Abcdefyz"),
        }
    }

    #[test]
    fn create_prints_the_key_once_on_stdout_and_warns_on_stderr() {
        let (stdout, warning) = created_text(Format::Table, &created()).unwrap();
        let stdout = stdout.unwrap();
        assert!(stdout.ends_with("\nkey: keyless_ak_Abcdefyz\n"), "{stdout}");
        assert_eq!(stdout.matches("keyless_ak_Abcdefyz").count(), 1, "{stdout}");
        assert!(
            stdout.contains("apikey_1") && stdout.contains("keyless_ak_Ab…yz"),
            "{stdout}"
        );
        let warning = warning.unwrap();
        assert!(
            warning.contains("only this once") && !warning.contains("Abcdefyz"),
            "{warning}"
        );

        let (stdout, warning) = created_text(Format::Id, &created()).unwrap();
        assert_eq!(stdout.as_deref(), Some("apikey_1\n"));
        assert!(!warning.unwrap().contains("Abcdefyz"));

        // json and yaml print the whole answer, key included (see `output::document`).
        assert_eq!(created_text(Format::Json, &created()).unwrap(), (None, None));
        assert_eq!(
            serde_json::to_value(created()).unwrap()["key"],
            json!("keyless_ak_Abcdefyz")
        );
    }
}
