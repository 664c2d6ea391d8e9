//! `keyless workspaces create|list|get|update|archive`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use keyless_api::{CreateWorkspace, UpdateWorkspace, Workspace};

use crate::admin::{Body, ListArgs, collect, json, run};
use crate::error::CliError;
use crate::output::{self, OutputArgs, Row, cell};
use crate::session::GlobalArgs;

/// `keyless workspaces`.
#[derive(Debug, Args)]
pub(crate) struct WorkspacesArgs {
    #[command(flatten)]
    output: OutputArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a workspace.
    Create(CreateArgs),
    /// List workspaces, newest first (every page unless --limit).
    List(ListArgs),
    /// Show one workspace.
    Get {
        /// The workspace (wrkspc_…, or `default`).
        id: String,
    },
    /// Rename a workspace.
    Update(UpdateArgs),
    /// Archive a workspace.
    Archive {
        /// The workspace (wrkspc_…).
        id: String,
    },
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// The name: 1–255 of a-z, 0-9 and `-`, unique in the organization.
    #[arg(long, env = "KEYLESS_WORKSPACES_NAME", value_name = "NAME")]
    name: Option<String>,
    /// The request body as JSON (`-` reads stdin); flags override its fields.
    #[arg(long, env = "KEYLESS_WORKSPACES_FROM_FILE", value_name = "FILE")]
    from_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct UpdateArgs {
    /// The workspace (wrkspc_…, or `default`).
    id: String,
    /// The new name.
    #[arg(long, env = "KEYLESS_WORKSPACES_NAME", value_name = "NAME")]
    name: Option<String>,
    /// The request body as JSON (`-` reads stdin); flags override its fields.
    #[arg(long, env = "KEYLESS_WORKSPACES_FROM_FILE", value_name = "FILE")]
    from_file: Option<PathBuf>,
}

impl Row for Workspace {
    const HEADERS: &'static [&'static str] = &["ID", "NAME", "DEFAULT", "CREATED", "ARCHIVED"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            self.is_default.to_string(),
            self.audit.created_at.clone(),
            cell(self.audit.archived_at.as_deref()),
        ]
    }
}

/// Runs `keyless workspaces …`.
pub(crate) fn main(global: &GlobalArgs, args: WorkspacesArgs) -> ExitCode {
    let format = args.output.output;
    run(global, true, |admin| async move {
        let workspaces = admin.workspaces();
        match args.command {
            Command::Create(create) => {
                let mut body = Body::from_file(create.from_file.as_ref())?;
                body.set("name", json(create.name));
                let request: CreateWorkspace = body.into_request()?;
                output::one(format, &workspaces.create(&request).await?)?;
            }
            Command::List(list) => output::many(format, &collect(workspaces.pages(&list.options()), &list).await?)?,
            Command::Get { id } => output::one(format, &workspaces.get(&id).await?)?,
            Command::Update(update) => {
                let mut body = Body::from_file(update.from_file.as_ref())?;
                body.set("name", json(update.name));
                let request: UpdateWorkspace = body.into_request()?;
                output::one(format, &workspaces.update(&update.id, &request).await?)?;
            }
            Command::Archive { id } => output::one(format, &workspaces.archive(&id).await?)?,
        }
        Ok::<_, CliError>(ExitCode::SUCCESS)
    })
}
