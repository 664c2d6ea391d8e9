//! TEMPORARY local shim for compiling; replaced by the sources branch at merge. Not committed.
#![allow(missing_docs)]
use crate::{ClientError, Environment};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
pub struct IdentityToken(SecretString);
impl IdentityToken {
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum IdentitySource {
    File { path: PathBuf },
    Env { var: String },
}
pub struct SourceContext {
    pub http: reqwest::Client,
    pub env: Environment,
    pub default_audience: Option<String>,
}
impl IdentitySource {
    pub async fn fetch(&self, ctx: &SourceContext) -> Result<IdentityToken, ClientError> {
        match self {
            Self::File { path } => Ok(IdentityToken(
                std::fs::read_to_string(path)
                    .map_err(|e| ClientError::Config(e.to_string()))?
                    .trim()
                    .to_owned()
                    .into(),
            )),
            Self::Env { var } => Ok(IdentityToken(ctx.env.get(var).unwrap_or_default().to_owned().into())),
        }
    }
    pub fn describe(&self) -> String {
        format!("{self:?}")
    }
}
