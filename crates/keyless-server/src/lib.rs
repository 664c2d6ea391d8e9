//! keyless-server: the only crate that knows HTTP-server types (axum).
//!
//! Empty until the token service (issue "The token service") adds `keyless serve`.
