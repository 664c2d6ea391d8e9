//! Services: the logic behind the HTTP handlers, one module per concern.
//!
//! - [`keys`]: the key-encryption key and sealing of signing keys at rest.

pub mod keys;
