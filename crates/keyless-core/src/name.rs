//! Object names: what an admin calls a service account, an issuer or a rule.
//!
//! One part, [`Name`]: `^[a-z0-9-]+$`, 1 to 255 characters, as the seed API requires. Uniqueness per
//! organization and type is the store's business, not this module's.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A name that is not 1 to 255 characters of `a-z`, `0-9` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to 255 characters of a-z, 0-9 and -")]
pub struct NameError;

/// A validated object name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    /// Longest name, in characters (all ASCII, so also bytes).
    pub const MAX_LEN: usize = 255;

    /// Parses a name.
    pub fn parse(text: &str) -> Result<Self, NameError> {
        Self::try_from(text.to_owned())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Name {
    type Error = NameError;

    fn try_from(text: String) -> Result<Self, NameError> {
        let valid = (1..=Self::MAX_LEN).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid { Ok(Self(text)) } else { Err(NameError) }
    }
}

impl From<Name> for String {
    fn from(name: Name) -> String {
        name.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, valid: bool) {
        assert_eq!(Name::parse(text).is_ok(), valid, "{text:?}");
    }

    #[test]
    fn names() {
        check("deploy-prod", true);
        check("a", true);
        check("0-9", true);
        check(&"a".repeat(255), true);
        check(&"a".repeat(256), false);
        check("", false);
        check("Deploy", false);
        check("deploy_prod", false);
        check("deploy prod", false);
        check("déploie", false);
    }
}
