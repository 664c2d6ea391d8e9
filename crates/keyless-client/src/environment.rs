//! The environment variables the client reads, captured once so that every decision (the credential
//! chain, identity-token sources, `auto` detection) is made from one snapshot and tests can hand in
//! their own instead of mutating the process environment.

use std::collections::BTreeMap;

/// A snapshot of environment variables. Empty values count as unset, so a CI variable defaulted to
/// `""` never selects a credential.
#[derive(Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl Environment {
    /// The current process's environment (variables that are not valid UTF-8 are left out).
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars_os()
                .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
                .collect(),
        }
    }

    /// An environment holding exactly `vars`.
    pub fn from_vars<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        Self {
            vars: vars
                .into_iter()
                .map(|(name, value)| (name.into(), value.into()))
                .collect(),
        }
    }

    /// The value of `name`, or `None` when it is unset or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    /// Whether `name` is set to a non-empty value.
    pub fn is_set(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// A copy with `name` set to `value`.
    #[must_use]
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_owned(), value.to_owned());
        self
    }
}

/// Only the variable names: values may be secrets (`KEYLESS_API_KEY`, `KEYLESS_IDENTITY_TOKEN`).
impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field("names", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_unset_and_debug_shows_no_value() {
        let env = Environment::from_vars([("KEYLESS_API_KEY", "sk-secret"), ("KEYLESS_PROFILE", "")]);
        assert_eq!(env.get("KEYLESS_API_KEY"), Some("sk-secret"));
        assert!(!env.is_set("KEYLESS_PROFILE"));
        assert!(!env.is_set("KEYLESS_OTHER"));
        let debug = format!("{env:?}");
        assert!(
            debug.contains("KEYLESS_API_KEY") && !debug.contains("sk-secret"),
            "{debug}"
        );
    }
}
