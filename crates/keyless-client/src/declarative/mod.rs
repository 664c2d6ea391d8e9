//! Declarative configuration: an organization's workspaces, service accounts (with memberships),
//! issuers and rules described in one file keyed by name (`docs/config.md`), diffed against the
//! server and applied.
//!
//! Parts, in reading order:
//! - `model`: the file format ([`Document`], `version: 1`), [`parse`] (strict: an unknown field is
//!   refused with its path) and the checks that need no server (duplicate names); [`SCHEMA`], the
//!   published JSON Schema;
//! - `state`: [`State`], the server's objects read through [`Admin`](crate::admin::Admin), and
//!   [`State::export`], its live part as a [`Document`];
//! - `plan`: [`plan()`], the pure diff of a state and a document into a [`Plan`] of [`Change`]s (or the
//!   [`Problems`] that stop it: dangling references, archived names);
//! - `apply`: [`apply()`], a plan carried out over the Admin client in dependency order, stopping at
//!   the first failure ([`ApplyError`] says what was applied already); [`check_rules`], the server's
//!   verdict (refusal or lint warnings) on each rule a plan writes, before anything is applied.
//!
//! API keys are not part of the format: their secret exists only in the answer to their creation.
//!
//! Must not: print anything, or talk to the server other than through [`Admin`](crate::admin::Admin).

mod apply;
mod model;
mod plan;
mod state;

pub use apply::{Applied, ApplyError, RuleCheck, RuleCheckOutcome, apply, check_rules};
pub use model::{
    Document, IssuerSpec, JwksSpec, MatchSpec, MembershipSpec, Problem, Problems, RuleSpec, RuleWorkspacesSpec, SCHEMA,
    ServiceAccountSpec, VERSION, WorkspaceSpec, parse,
};
pub use plan::{Action, Change, FieldChange, Kind, Plan, plan};
pub use state::State;

#[cfg(test)]
mod tests;
