//! keyless-store: one `Store` over SQLite (embedded default) and PostgreSQL.
//!
//! Empty until the token service (issue "The token service") adds persistence. No sqlx type leaves this crate.
