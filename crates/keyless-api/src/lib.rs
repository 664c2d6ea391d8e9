//! keyless-api: the wire types (serde) shared by server and client: requests, responses, errors, events.
//!
//! Empty until the token service (issue "The token service") defines the first wire types.
