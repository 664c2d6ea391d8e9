//! `keyless service-accounts create|list|get|update|archive` and `… workspaces list|set|remove`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use keyless_api::{
    CreateServiceAccount, ServiceAccount, UpdateServiceAccount, WorkspaceMembership, WorkspaceMembershipDeleted,
    WorkspaceRole,
};

use crate::admin::{Body, ListArgs, collect, json, run};
use crate::error::CliError;
use crate::output::{self, OutputArgs, Row, cell};
use crate::session::GlobalArgs;

/// `keyless service-accounts`.
#[derive(Debug, Args)]
pub(crate) struct ServiceAccountsArgs {
    #[command(flatten)]
    output: OutputArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a service account (organization_role developer unless --role admin).
    Create(CreateArgs),
    /// List service accounts, newest first (every page unless --limit).
    List(ListArgs),
    /// Show one service account.
    Get {
        /// The service account (svac_…).
        id: String,
    },
    /// Change a service account's description or role (the name is immutable).
    Update(UpdateArgs),
    /// Archive a service account (refused while a live rule targets it; archiving again changes nothing).
    Archive {
        /// The service account (svac_…).
        id: String,
    },
    /// A service account's workspace memberships.
    #[command(subcommand)]
    Workspaces(WorkspacesCommand),
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// The name: 1–255 of a-z, 0-9 and `-`, unique in the organization.
    #[arg(long, env = "KEYLESS_SERVICE_ACCOUNTS_NAME", value_name = "NAME")]
    name: Option<String>,
    /// A description (at most 1024 characters).
    #[arg(long, env = "KEYLESS_SERVICE_ACCOUNTS_DESCRIPTION", value_name = "TEXT")]
    description: Option<String>,
    /// The organization role.
    #[arg(long, env = "KEYLESS_SERVICE_ACCOUNTS_ROLE", value_name = "ROLE", value_parser = ["developer", "admin"])]
    role: Option<String>,
    /// The request body as JSON (`-` reads stdin); flags override its fields.
    #[arg(long, env = "KEYLESS_SERVICE_ACCOUNTS_FROM_FILE", value_name = "FILE")]
    from_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct UpdateArgs {
    /// The service account (svac_…).
    id: String,
    /// The new description.
    #[arg(
        long,
        env = "KEYLESS_SERVICE_ACCOUNTS_DESCRIPTION",
        value_name = "TEXT",
        conflicts_with = "clear_description"
    )]
    description: Option<String>,
    /// Remove the description.
    #[arg(long, env = "KEYLESS_SERVICE_ACCOUNTS_CLEAR_DESCRIPTION")]
    clear_description: bool,
    /// The new organization role.
    #[arg(long, env = "KEYLESS_SERVICE_ACCOUNTS_ROLE", value_name = "ROLE", value_parser = ["developer", "admin"])]
    role: Option<String>,
    /// The request body as JSON (`-` reads stdin); flags override its fields.
    #[arg(long, env = "KEYLESS_SERVICE_ACCOUNTS_FROM_FILE", value_name = "FILE")]
    from_file: Option<PathBuf>,
}

/// The workspace roles, for `--role`.
const WORKSPACE_ROLES: [&str; 4] = [
    "workspace_admin",
    "workspace_developer",
    "workspace_restricted_developer",
    "workspace_user",
];

#[derive(Debug, Subcommand)]
enum WorkspacesCommand {
    /// List a service account's memberships (the implicit workspace_user one of the default workspace
    /// included).
    List {
        /// The service account (svac_…).
        id: String,
    },
    /// Add a membership, or change its role.
    Set {
        /// The service account (svac_…).
        id: String,
        /// The workspace (wrkspc_…, or `default`).
        workspace_id: String,
        /// The role in that workspace.
        #[arg(long, env = "KEYLESS_SERVICE_ACCOUNTS_WORKSPACE_ROLE", value_name = "ROLE", value_parser = WORKSPACE_ROLES)]
        role: String,
    },
    /// Remove a membership (an explicit one of the default workspace gives way to the implicit one).
    Remove {
        /// The service account (svac_…).
        id: String,
        /// The workspace (wrkspc_…, or `default`).
        workspace_id: String,
    },
}

impl Row for ServiceAccount {
    const HEADERS: &'static [&'static str] = &["ID", "NAME", "ROLE", "CREATED", "ARCHIVED", "DESCRIPTION"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            self.organization_role.to_string(),
            self.audit.created_at.clone(),
            cell(self.audit.archived_at.as_deref()),
            cell(self.description.as_deref()),
        ]
    }
}

impl Row for WorkspaceMembership {
    const HEADERS: &'static [&'static str] = &["SERVICE ACCOUNT", "WORKSPACE", "ROLE", "IMPLICIT", "UPDATED"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.service_account_id.clone(),
            self.workspace_id.clone(),
            self.workspace_role.to_string(),
            self.implicit.to_string(),
            self.updated_at.clone(),
        ]
    }
}

impl Row for WorkspaceMembershipDeleted {
    const HEADERS: &'static [&'static str] = &["SERVICE ACCOUNT", "WORKSPACE", "REMOVED"];

    fn cells(&self) -> Vec<String> {
        vec![
            self.service_account_id.clone(),
            self.workspace_id.clone(),
            "true".to_owned(),
        ]
    }
}

/// Runs `keyless service-accounts …`.
pub(crate) fn main(global: &GlobalArgs, args: ServiceAccountsArgs) -> ExitCode {
    let format = args.output.output;
    run(global, true, |admin| async move {
        let service_accounts = admin.service_accounts();
        match args.command {
            Command::Create(create) => {
                let mut body = Body::from_file(create.from_file.as_ref())?;
                body.set("name", json(create.name));
                body.set("description", json(create.description));
                body.set("organization_role", json(create.role));
                let request: CreateServiceAccount = body.into_request()?;
                output::one(format, &service_accounts.create(&request).await?)?;
            }
            Command::List(list) => {
                let all = collect(service_accounts.pages(&list.options()), &list).await?;
                output::many(format, &all)?;
            }
            Command::Get { id } => output::one(format, &service_accounts.get(&id).await?)?,
            Command::Update(update) => {
                let mut body = Body::from_file(update.from_file.as_ref())?;
                body.set("description", json(update.description));
                body.clear("description", update.clear_description);
                body.set("organization_role", json(update.role));
                let request: UpdateServiceAccount = body.into_request()?;
                output::one(format, &service_accounts.update(&update.id, &request).await?)?;
            }
            Command::Archive { id } => output::one(format, &service_accounts.archive(&id).await?)?,
            Command::Workspaces(WorkspacesCommand::List { id }) => {
                output::many(format, &service_accounts.workspaces(&id).await?.data)?;
            }
            Command::Workspaces(WorkspacesCommand::Set { id, workspace_id, role }) => {
                let role = WorkspaceRole::from_wire(&role);
                output::one(format, &service_accounts.set_workspace(&id, &workspace_id, role).await?)?;
            }
            Command::Workspaces(WorkspacesCommand::Remove { id, workspace_id }) => {
                output::one(format, &service_accounts.remove_workspace(&id, &workspace_id).await?)?;
            }
        }
        Ok::<_, CliError>(ExitCode::SUCCESS)
    })
}
