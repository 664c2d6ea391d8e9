//! The `executable` source: run a command (no shell, no stdin) and take the token from its standard
//! output, either as plain text or as google-auth's executable-sourced credential JSON.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::{IdentityToken, MAX_TOKEN_BYTES};
use crate::ClientError;

/// The longest line of standard error quoted in an error.
const MAX_STDERR_QUOTE: usize = 300;
/// How much standard error is kept to find that line.
const MAX_STDERR_BYTES: usize = 4 * 1024;
/// The token types google-auth's executable response may carry that are JWTs.
const JWT_TOKEN_TYPES: [&str; 2] = [
    "urn:ietf:params:oauth:token-type:jwt",
    "urn:ietf:params:oauth:token-type:id_token",
];

/// The variable that tells the command which audience the token is for (when one is known), like
/// google-auth's `GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE`.
pub(super) const AUDIENCE_VAR: &str = "KEYLESS_IDENTITY_TOKEN_AUDIENCE";

/// Runs `command` for at most `timeout` and returns the token it prints; `audience`, when known, is
/// passed in [`AUDIENCE_VAR`].
pub(super) async fn run(
    command: &[String],
    timeout: Duration,
    audience: Option<&str>,
    what: &str,
) -> Result<IdentityToken, ClientError> {
    let fail = |message: String| ClientError::Config(format!("{what}: {message}"));
    let Some((program, args)) = command.split_first() else {
        return Err(fail("the command is empty".to_owned()));
    };
    let mut builder = tokio::process::Command::new(program);
    builder
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(audience) = audience {
        builder.env(AUDIENCE_VAR, audience);
    }
    // Its own process group, so that a timeout kills what it started too (`sh -c`, wrapper scripts).
    #[cfg(unix)]
    builder.process_group(0);
    let mut child = builder
        .spawn()
        .map_err(|err| fail(format!("could not be started: {err}")))?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(fail("could not be started: no output pipes".to_owned()));
    };
    let finished = tokio::time::timeout(timeout, async {
        tokio::join!(
            read_capped(stdout, MAX_TOKEN_BYTES),
            read_capped(stderr, MAX_STDERR_BYTES),
            child.wait()
        )
    })
    .await;
    let Ok((stdout, stderr, status)) = finished else {
        kill(&mut child).await;
        return Err(fail(format!(
            "timed out after {} s and was killed",
            timeout.as_secs_f64()
        )));
    };
    let status = status.map_err(|err| fail(format!("could not be waited for: {err}")))?;
    let (stdout, stdout_overflowed) = stdout.map_err(|err| fail(format!("reading its output: {err}")))?;
    let (stderr, _) = stderr.unwrap_or_default();
    if !status.success() {
        let how = match status.code() {
            Some(code) => format!("exited with code {code}"),
            None => "was killed by a signal".to_owned(),
        };
        return Err(fail(match first_line(&stderr) {
            Some(line) => format!("{how}: {line}"),
            None => how,
        }));
    }
    if stdout_overflowed {
        return Err(fail(format!("printed more than {MAX_TOKEN_BYTES} bytes")));
    }
    let text = String::from_utf8(stdout).map_err(|_| fail("printed output that is not UTF-8".to_owned()))?;
    if text.trim_start().starts_with('{') {
        token_from_json(&text).map_err(fail)
    } else {
        IdentityToken::new(text).map_err(|err| fail(err.to_string()))
    }
}

/// Kills the command and everything in its process group, then reaps it.
async fn kill(child: &mut tokio::process::Child) {
    #[cfg(unix)]
    if let Some(pid) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        // The child leads its own group (`process_group(0)`) and is not reaped yet, so the group ID
        // cannot have been reused. Errors mean the group is already gone.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill().await;
}

/// Reads all of `reader`, keeping the first `cap` bytes and draining (so the writer never blocks)
/// the rest; the flag says whether anything was dropped.
async fn read_capped(mut reader: impl AsyncRead + Unpin, cap: usize) -> std::io::Result<(Vec<u8>, bool)> {
    let mut kept = Vec::new();
    let mut overflowed = false;
    let mut buffer = [0_u8; 8192];
    loop {
        let n = reader.read(&mut buffer).await?;
        let Some(chunk) = buffer.get(..n).filter(|chunk| !chunk.is_empty()) else {
            return Ok((kept, overflowed));
        };
        let room = cap.saturating_sub(kept.len());
        kept.extend_from_slice(chunk.get(..room.min(n)).unwrap_or_default());
        overflowed |= n > room;
    }
}

/// The first non-blank line of standard error, shortened to [`MAX_STDERR_QUOTE`] characters.
fn first_line(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().map(str::trim).find(|line| !line.is_empty())?;
    let mut quoted: String = line.chars().take(MAX_STDERR_QUOTE).collect();
    if quoted.len() < line.len() {
        quoted.push('…');
    }
    Some(quoted)
}

/// The token in google-auth's executable response:
/// `{"version": 1, "success": true, "token_type": "urn:ietf:params:oauth:token-type:jwt", "id_token": "…",
/// "expiration_time": 1700000000}`, or the failure it reports (`"success": false`, `code`, `message`).
///
/// The JSON is decoded as an untyped value and read field by field, so that no decoding error can
/// quote the token. `expiration_time` is not checked here: the server verifies the token's `exp`.
fn token_from_json(text: &str) -> Result<IdentityToken, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|err| format!("printed JSON that does not parse: {err}"))?;
    let field = |name: &str| json.get(name).and_then(serde_json::Value::as_str);
    match json.get("version").and_then(serde_json::Value::as_u64) {
        Some(1) => {}
        Some(version) => {
            return Err(format!(
                "printed an executable response of version {version}; only 1 is supported"
            ));
        }
        None => {
            return Err(
                "printed JSON without a numeric \"version\"; expected google-auth's executable response".to_owned(),
            );
        }
    }
    match json.get("success").and_then(serde_json::Value::as_bool) {
        Some(true) => {}
        Some(false) => {
            let code = field("code").unwrap_or("no code");
            let message = field("message").unwrap_or("no message");
            return Err(format!("reported failure ({code}): {message}"));
        }
        None => return Err("printed JSON without a boolean \"success\"".to_owned()),
    }
    match field("token_type") {
        Some(token_type) if JWT_TOKEN_TYPES.contains(&token_type) => {}
        Some(token_type) => {
            return Err(format!(
                "printed a token of type {token_type:?}; expected one of {JWT_TOKEN_TYPES:?}"
            ));
        }
        None => return Err("printed JSON without a \"token_type\"".to_owned()),
    }
    let Some(token) = field("id_token") else {
        return Err("printed JSON without an \"id_token\"".to_owned());
    };
    IdentityToken::new(token.to_owned()).map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn stderr_quotes_are_one_capped_line() {
        assert_eq!(
            first_line(b"\n  gcloud: not logged in \nmore\n").as_deref(),
            Some("gcloud: not logged in")
        );
        assert_eq!(first_line(b" \n"), None);
        let long = "x".repeat(1000);
        let quoted = first_line(long.as_bytes()).unwrap();
        assert_eq!(quoted.chars().count(), MAX_STDERR_QUOTE + 1);
    }

    #[test]
    fn executable_json_is_checked_field_by_field() {
        let check = |json: &str, expect: &str| {
            let err = token_from_json(json).unwrap_err();
            assert!(err.contains(expect), "{json}: {err}");
        };
        check(r#"{"success":true}"#, "without a numeric \"version\"");
        check(r#"{"version":2,"success":true}"#, "version 2");
        check(r#"{"version":1}"#, "without a boolean \"success\"");
        check(
            r#"{"version":1,"success":true,"token_type":"urn:ietf:params:oauth:token-type:saml2","saml_response":"x"}"#,
            "of type \"urn:ietf:params:oauth:token-type:saml2\"",
        );
        check(
            r#"{"version":1,"success":true,"token_type":"urn:ietf:params:oauth:token-type:jwt"}"#,
            "without an \"id_token\"",
        );
        check(
            r#"{"version":1,"success":false}"#,
            "reported failure (no code): no message",
        );
        check(r#"{"version":1,"#, "does not parse");
    }
}
