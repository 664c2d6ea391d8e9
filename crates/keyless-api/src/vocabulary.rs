//! The string enums of the API. Each keeps a value it does not know in `Other`, so an answer from a
//! newer server with a new role still decodes, and serializes back unchanged.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $wire:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version does not know, kept as sent.
            Other(String),
        }

        impl $name {
            /// Every value this version knows, in the API's order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// The wire string.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )+
                    $name::Other(other) => other,
                }
            }

            /// The value of a wire string (`Other` when it is not known).
            pub fn from_wire(text: &str) -> Self {
                match text {
                    $( $wire => $name::$variant, )+
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(|text| Self::from_wire(&text))
            }
        }
    };
}

string_enum! {
    /// A service account's `organization_role`.
    OrganizationRole {
        /// `developer` (the default): workspace scopes only.
        Developer => "developer",
        /// `admin`: may be granted `org:` scopes.
        Admin => "admin",
    }
}

string_enum! {
    /// A workspace membership's `workspace_role`.
    WorkspaceRole {
        /// `workspace_admin`.
        WorkspaceAdmin => "workspace_admin",
        /// `workspace_developer`.
        WorkspaceDeveloper => "workspace_developer",
        /// `workspace_restricted_developer`.
        WorkspaceRestrictedDeveloper => "workspace_restricted_developer",
        /// `workspace_user` (the implicit role in the default workspace).
        WorkspaceUser => "workspace_user",
    }
}

string_enum! {
    /// An API key's `status`. Only `active` and `inactive` can be set; the server derives the others.
    ApiKeyStatus {
        /// `active`: the key authenticates.
        Active => "active",
        /// `inactive`: disabled, reversibly (set `active` again to re-enable).
        Inactive => "inactive",
        /// `expired`: past its `expires_at`.
        Expired => "expired",
        /// `archived`: revoked for good.
        Archived => "archived",
    }
}

string_enum! {
    /// A usage row's `principal_type`: the kind of credential the requests were made with.
    PrincipalType {
        /// `api_key`: a workspace API key (`apikey_…`).
        ApiKey => "api_key",
        /// `service_account`: an access token of a service account (`svac_…`).
        ServiceAccount => "service_account",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn known_and_unknown_values_round_trip() {
        for (text, role) in [
            ("\"admin\"", OrganizationRole::Admin),
            ("\"owner\"", OrganizationRole::Other("owner".to_owned())),
        ] {
            let parsed: OrganizationRole = serde_json::from_str(text).unwrap();
            assert_eq!(parsed, role);
            assert_eq!(serde_json::to_string(&parsed).unwrap(), text);
        }
        assert_eq!(WorkspaceRole::from_wire("workspace_user"), WorkspaceRole::WorkspaceUser);
        assert_eq!(WorkspaceRole::KNOWN.len(), 4);
        assert_eq!(ApiKeyStatus::from_wire("inactive"), ApiKeyStatus::Inactive);
        assert_eq!(PrincipalType::from_wire("api_key").as_str(), "api_key");
    }
}
