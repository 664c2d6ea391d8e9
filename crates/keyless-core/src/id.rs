//! Identifiers: the typed, prefixed public IDs of the model, the organization's UUID, and the
//! `workspace_id` an exchange request names.
//!
//! Parts, in reading order: [`IdError`], the prefixed IDs ([`IssuerId`] `fdis_`, [`RuleId`] `fdrl_`,
//! [`ServiceAccountId`] `svac_`, [`WorkspaceId`] `wrkspc_`,
//! [`ApiKeyId`] `apikey_`), [`OrganizationId`], [`WorkspaceSelector`].
//!
//! A prefixed ID is its prefix followed by 1 to 64 ASCII letters or digits (`[A-Za-z0-9]{1,64}`), compared
//! byte for byte. An organization ID is a UUID in its textual 8-4-4-4-12 hexadecimal form; upper-case
//! digits are accepted and normalized to lower case, so two spellings of one UUID compare equal.
//!
//! This module checks shapes only: whether an object with that ID exists is the store's business.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a piece of text is not an identifier of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not `prefix` followed by 1 to 64 ASCII letters or digits.
    #[error("must be `{prefix}` followed by 1 to 64 ASCII letters or digits")]
    NotPrefixedId {
        /// The prefix the ID must start with, e.g. `fdrl_`.
        prefix: &'static str,
    },
    /// Not a UUID in its 8-4-4-4-12 hexadecimal form.
    #[error("must be a UUID (8-4-4-4-12 hexadecimal digits)")]
    NotUuid,
}

/// Longest part after the prefix of a prefixed ID.
const MAX_ID_BODY_LEN: usize = 64;

fn is_prefixed_id(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix).is_some_and(|body| {
        (1..=MAX_ID_BODY_LEN).contains(&body.len()) && body.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The prefix every ID of this type starts with.
            pub const PREFIX: &'static str = $prefix;

            /// Parses `text`: the prefix, then 1 to 64 ASCII letters or digits.
            pub fn parse(text: &str) -> Result<Self, IdError> {
                Self::try_from(text.to_owned())
            }

            /// The ID as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;

            fn try_from(text: String) -> Result<Self, IdError> {
                if is_prefixed_id(&text, $prefix) {
                    Ok(Self(text))
                } else {
                    Err(IdError::NotPrefixedId { prefix: $prefix })
                }
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(text: &str) -> Result<Self, IdError> {
                Self::parse(text)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// A federation issuer's ID, `fdis_…`.
    IssuerId,
    "fdis_"
);
prefixed_id!(
    /// A federation rule's ID, `fdrl_…`.
    RuleId,
    "fdrl_"
);
prefixed_id!(
    /// A service account's ID, `svac_…`.
    ServiceAccountId,
    "svac_"
);
prefixed_id!(
    /// A workspace's ID, `wrkspc_…`.
    WorkspaceId,
    "wrkspc_"
);
prefixed_id!(
    /// A workspace API key's ID, `apikey_…` (the ID, never the key).
    ApiKeyId,
    "apikey_"
);

/// An organization's ID: a UUID in lower-case 8-4-4-4-12 hexadecimal form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrganizationId(String);

impl OrganizationId {
    /// Parses a UUID in its 8-4-4-4-12 hexadecimal form, either case; the result is lower case.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let is_uuid = text.len() == 36
            && text.bytes().enumerate().all(|(idx, b)| match idx {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_hexdigit(),
            });
        if is_uuid {
            Ok(Self(text.to_ascii_lowercase()))
        } else {
            Err(IdError::NotUuid)
        }
    }

    /// The UUID as lower-case text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for OrganizationId {
    type Error = IdError;

    fn try_from(text: String) -> Result<Self, IdError> {
        Self::parse(&text)
    }
}

impl FromStr for OrganizationId {
    type Err = IdError;

    fn from_str(text: &str) -> Result<Self, IdError> {
        Self::parse(text)
    }
}

impl From<OrganizationId> for String {
    fn from(id: OrganizationId) -> String {
        id.0
    }
}

impl fmt::Display for OrganizationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `workspace_id` of an exchange request: a workspace ID, or `default` for the organization's
/// default workspace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum WorkspaceSelector {
    /// `default`: the organization's default workspace, whatever its ID.
    Default,
    /// One workspace by ID.
    Id(WorkspaceId),
}

impl WorkspaceSelector {
    /// The spelling of [`WorkspaceSelector::Default`].
    pub const DEFAULT: &'static str = "default";

    /// Parses `default` or a `wrkspc_…` ID.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        if text == Self::DEFAULT {
            Ok(Self::Default)
        } else {
            WorkspaceId::parse(text).map(Self::Id)
        }
    }

    /// The workspace this selects, `default` standing for `default_workspace_id`.
    pub fn resolve<'a>(&'a self, default_workspace_id: &'a WorkspaceId) -> &'a WorkspaceId {
        match self {
            Self::Default => default_workspace_id,
            Self::Id(workspace_id) => workspace_id,
        }
    }
}

impl TryFrom<String> for WorkspaceSelector {
    type Error = IdError;

    fn try_from(text: String) -> Result<Self, IdError> {
        Self::parse(&text)
    }
}

impl FromStr for WorkspaceSelector {
    type Err = IdError;

    fn from_str(text: &str) -> Result<Self, IdError> {
        Self::parse(text)
    }
}

impl From<WorkspaceSelector> for String {
    fn from(selector: WorkspaceSelector) -> String {
        selector.to_string()
    }
}

impl fmt::Display for WorkspaceSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str(Self::DEFAULT),
            Self::Id(workspace_id) => f.write_str(workspace_id.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;

    fn check_rule_id(text: &str, expect: Result<&str, &str>) {
        let res = RuleId::parse(text).map(|id| id.to_string()).map_err(|e| e.to_string());
        assert_eq!(res.as_deref().map_err(String::as_str), expect, "{text:?}");
    }

    #[test]
    fn prefixed_ids() {
        let refused = Err("must be `fdrl_` followed by 1 to 64 ASCII letters or digits");
        check_rule_id("fdrl_01HZX3", Ok("fdrl_01HZX3"));
        check_rule_id(
            &format!("fdrl_{}", "a".repeat(64)),
            Ok(&format!("fdrl_{}", "a".repeat(64))),
        );
        check_rule_id(&format!("fdrl_{}", "a".repeat(65)), refused);
        check_rule_id("fdrl_", refused);
        check_rule_id("fdis_abc", refused);
        check_rule_id("FDRL_abc", refused);
        check_rule_id("fdrl_ab-c", refused);
        check_rule_id("fdrl_ab_c", refused);
        check_rule_id("fdrl_abé", refused);
        check_rule_id(" fdrl_abc", refused);
        check_rule_id("", refused);
    }

    fn check_organization_id(text: &str, expect: Option<&str>) {
        let res = OrganizationId::parse(text).ok();
        assert_eq!(res.as_ref().map(OrganizationId::as_str), expect, "{text:?}");
    }

    #[test]
    fn organization_ids() {
        let uuid = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        check_organization_id(uuid, Some(uuid));
        check_organization_id("0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B", Some(uuid));
        check_organization_id("0190a1b2c3d47e5f8a9b0c1d2e3f4a5b", None);
        check_organization_id("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5", None);
        check_organization_id("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5bc", None);
        check_organization_id("g190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", None);
        check_organization_id("0190a1b2_c3d4-7e5f-8a9b-0c1d2e3f4a5b", None);
        check_organization_id("{0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b}", None);
        check_organization_id("", None);
    }

    #[test]
    fn workspace_selectors() {
        let default_id = WorkspaceId::parse("wrkspc_default1").unwrap();
        let other = WorkspaceSelector::parse("wrkspc_other").unwrap();
        assert_eq!(
            WorkspaceSelector::parse("default").unwrap().resolve(&default_id),
            &default_id
        );
        assert_eq!(other.resolve(&default_id).as_str(), "wrkspc_other");
        assert_eq!(other.to_string(), "wrkspc_other");
        assert!(WorkspaceSelector::parse("Default").is_err());
        assert!(WorkspaceSelector::parse("").is_err());
    }

    #[test]
    fn serde_round_trip_validates() {
        let id: ServiceAccountId = serde_json::from_str("\"svac_abc\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"svac_abc\"");
        assert!(serde_json::from_str::<ServiceAccountId>("\"svac_\"").is_err());
        assert!(serde_json::from_str::<WorkspaceSelector>("\"default\"").is_ok());
    }
}
