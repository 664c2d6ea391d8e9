//! Token files (`file`, `kubernetes`, the AKS file of `azure`): read whole at every fetch, because the
//! kubelet and the Azure workload-identity webhook rewrite them in place.

use std::io::ErrorKind;
use std::path::Path;

use tokio::io::AsyncReadExt;

use super::{IdentityToken, MAX_TOKEN_BYTES};
use crate::ClientError;

/// Reads the token in `path`; `what` names the source in errors ("file /x", "Kubernetes token file /x").
pub(super) async fn read_token_file(path: &Path, what: &str) -> Result<IdentityToken, ClientError> {
    let fail = |message: String| ClientError::Config(format!("{what}: {message}"));
    let metadata = tokio::fs::metadata(path).await.map_err(|err| fail(io_reason(&err)))?;
    if metadata.is_dir() {
        return Err(fail("is a directory, not a token file".to_owned()));
    }
    let file = tokio::fs::File::open(path).await.map_err(|err| fail(io_reason(&err)))?;
    let mut bytes = Vec::new();
    file.take(MAX_TOKEN_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|err| fail(io_reason(&err)))?;
    if bytes.len() > MAX_TOKEN_BYTES {
        return Err(fail(format!(
            "is larger than {MAX_TOKEN_BYTES} bytes; is this a token file?"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| fail("is not UTF-8 text".to_owned()))?;
    IdentityToken::new(text).map_err(|err| fail(err.to_string()))
}

/// The reason an IO error gives, in words a person acts on.
fn io_reason(err: &std::io::Error) -> String {
    match err.kind() {
        ErrorKind::NotFound => "does not exist".to_owned(),
        ErrorKind::PermissionDenied => "is not readable by this user (permission denied)".to_owned(),
        ErrorKind::IsADirectory => "is a directory, not a token file".to_owned(),
        _ => format!("could not be read: {err}"),
    }
}
