//! The store's one error type.
//!
//! Parts: [`StoreError`] (what callers decide on) and [`BackendError`] (the opaque cause of
//! [`StoreError::Unavailable`]).
//!
//! Database errors are classified in one place (`backend::classify`): a unique violation is
//! [`StoreError::Conflict`], a foreign-key violation [`StoreError::NotFound`], everything else
//! [`StoreError::Unavailable`]. A stored value that no longer parses (a corrupt row) is also
//! `Unavailable`: the store cannot serve it. This module must not expose a sqlx type: the cause is boxed.

use std::error::Error;
use std::fmt;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist, or an object the change refers to does not exist (in this organization).
    #[error("not found")]
    NotFound,
    /// The change would break a uniqueness rule: `what` names what must be unique — `name`, `id`,
    /// `default workspace`, `workspace membership`, `rule workspace`, `hash` (access tokens), `kid`
    /// (signing keys) or `jti`.
    #[error("conflict: {what} already exists")]
    Conflict {
        /// The field or relation that must be unique.
        what: &'static str,
    },
    /// The database could not be reached or failed, or it returned data that does not parse.
    #[error("store unavailable")]
    Unavailable(#[source] BackendError),
}

/// The cause of [`StoreError::Unavailable`]: a database failure or a corrupt row, kept opaque so that
/// no sqlx type leaves the crate. Its `Display` and `source` chain carry the details.
pub struct BackendError(Box<dyn Error + Send + Sync + 'static>);

impl BackendError {
    pub(crate) fn new(cause: impl Into<Box<dyn Error + Send + Sync + 'static>>) -> Self {
        Self(cause.into())
    }

    /// A stored `column` whose value does not parse.
    pub(crate) fn corrupt(column: &'static str, cause: impl fmt::Display) -> Self {
        Self::new(format!("corrupt value in {column}: {cause}"))
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Error for BackendError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

impl StoreError {
    /// A stored `column` whose value does not parse.
    pub(crate) fn corrupt(column: &'static str, cause: impl fmt::Display) -> Self {
        Self::Unavailable(BackendError::corrupt(column, cause))
    }
}
