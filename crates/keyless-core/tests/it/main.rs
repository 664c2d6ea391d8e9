//! The one integration-test binary of keyless-core.
//!
//! Modules: `fixtures` (tokens shaped like each provider's, per `reference/providers.md`, and the stored
//! objects of a scenario), `providers` (rules against real claim shapes, end to end through `decide`),
//! `decision` (every rejection code of the decision, with its detail), `validation` (write-time
//! refusals), `properties` (proptest), `simulate` (simulation parity with `decide`, property-tested), `condition_guard` (deep CEL must not abort the process). The crate invariants (module docs, no
//! clock, no IO) are checked for every crate by `xtask/tests/tidy.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod condition_guard;
mod decision;
mod fixtures;
mod properties;
mod providers;
mod simulate;
mod validation;
