//! The `keyless` binary.
fn main() {}
