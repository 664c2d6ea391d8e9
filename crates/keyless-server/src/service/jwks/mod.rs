//! Issuer keys: where they come from ([`source`]).

pub mod source;
