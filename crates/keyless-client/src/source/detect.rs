//! [`detect`]: which identity-token source the environment offers, and why.
//!
//! Synchronous and quick: environment variables plus two local file checks, never the network.

use std::path::{Path, PathBuf};

use super::{DEFAULT_TOKEN_VAR, IdentitySource, KUBERNETES_TOKEN_PATH};
use crate::Environment;

/// Where Linux exposes the machine's product name (google-auth reads it to recognise Compute Engine).
const DMI_PRODUCT_NAME: &str = "/sys/class/dmi/id/product_name";
/// Variables that only Google Cloud's serverless runtimes set.
const GCP_RUNTIME_VARS: [&str; 4] = ["K_SERVICE", "CLOUD_RUN_JOB", "FUNCTION_TARGET", "GAE_SERVICE"];

/// The outcome of [`detect`]: the source found, if any, and the reasoning, for `keyless auth status`
/// and for the error of an `auto` source that found nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// The source to use; `None` when the environment offers none.
    pub source: Option<IdentitySource>,
    /// What was found and why it was chosen, or everything that was checked.
    pub reason: String,
}

/// Picks the identity-token source the environment offers, checking in this order:
///
/// 1. `KEYLESS_IDENTITY_TOKEN_FILE` set: that file.
/// 2. `KEYLESS_IDENTITY_TOKEN` set: that variable.
/// 3. GitHub Actions: `ACTIONS_ID_TOKEN_REQUEST_URL` and `ACTIONS_ID_TOKEN_REQUEST_TOKEN` set (when
///    `GITHUB_ACTIONS=true` but they are missing, the reason says the job lacks `id-token: write`).
/// 4. `AZURE_FEDERATED_TOKEN_FILE` set (AKS workload identity): Azure.
/// 5. `KUBERNETES_SERVICE_HOST` set and the default service-account token file present: Kubernetes.
/// 6. Google Cloud: `GCE_METADATA_HOST` set, a serverless runtime's variable (`K_SERVICE`,
///    `CLOUD_RUN_JOB`, `FUNCTION_TARGET`, `GAE_SERVICE`), or a Compute Engine machine
///    (`/sys/class/dmi/id/product_name` says Google).
///
/// Nothing is fetched: detection reads variables and checks two local files, so it is cheap enough
/// for every exchange.
pub fn detect(env: &Environment) -> Detection {
    detect_with(env, Path::new(KUBERNETES_TOKEN_PATH), Path::new(DMI_PRODUCT_NAME))
}

/// [`detect`] with the two local files named, so tests can point them elsewhere.
pub(super) fn detect_with(env: &Environment, kubernetes_token: &Path, dmi_product_name: &Path) -> Detection {
    let mut notes: Vec<String> = Vec::new();
    let found = |source: IdentitySource, why: String, notes: &[String]| {
        let mut reason = why;
        for note in notes {
            reason.push_str("; ");
            reason.push_str(note);
        }
        Detection {
            source: Some(source),
            reason,
        }
    };

    if let Some(path) = env.get("KEYLESS_IDENTITY_TOKEN_FILE") {
        return found(
            IdentitySource::File {
                path: PathBuf::from(path),
            },
            format!("KEYLESS_IDENTITY_TOKEN_FILE is set: reading the token from {path}"),
            &notes,
        );
    }
    if env.is_set(DEFAULT_TOKEN_VAR) {
        return found(
            IdentitySource::Env {
                var: DEFAULT_TOKEN_VAR.to_owned(),
            },
            format!("{DEFAULT_TOKEN_VAR} is set: using its value"),
            &notes,
        );
    }
    match (
        env.is_set("ACTIONS_ID_TOKEN_REQUEST_URL"),
        env.is_set("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
    ) {
        (true, true) => {
            return found(
                IdentitySource::GithubActions { audience: None },
                "ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are set: requesting a GitHub Actions OIDC token".to_owned(),
                &notes,
            );
        }
        (url, token) if url || token || env.get("GITHUB_ACTIONS") == Some("true") => {
            let missing = if url {
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN is"
            } else if token {
                "ACTIONS_ID_TOKEN_REQUEST_URL is"
            } else {
                "ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are"
            };
            notes.push(format!(
                "this looks like GitHub Actions but {missing} not set: the job needs `permissions: id-token: write`"
            ));
        }
        _ => {}
    }
    if let Some(path) = env.get("AZURE_FEDERATED_TOKEN_FILE") {
        return found(
            IdentitySource::Azure {
                audience: None,
                client_id: None,
            },
            format!("AZURE_FEDERATED_TOKEN_FILE is set (AKS workload identity): reading the token from {path}"),
            &notes,
        );
    }
    if env.is_set("KUBERNETES_SERVICE_HOST") {
        if kubernetes_token.is_file() {
            return found(
                IdentitySource::Kubernetes { path: None },
                format!(
                    "KUBERNETES_SERVICE_HOST is set and {} exists: using the pod's service-account token",
                    kubernetes_token.display()
                ),
                &notes,
            );
        }
        notes.push(format!(
            "KUBERNETES_SERVICE_HOST is set but {} does not exist (is automountServiceAccountToken off? point KEYLESS_IDENTITY_TOKEN_FILE at a projected token)",
            kubernetes_token.display()
        ));
    }
    let gcp_hint = if let Some(host) = env.get("GCE_METADATA_HOST") {
        Some(format!("GCE_METADATA_HOST is set ({host})"))
    } else if let Some(var) = GCP_RUNTIME_VARS.into_iter().find(|var| env.is_set(var)) {
        Some(format!("{var} is set (a Google Cloud serverless runtime)"))
    } else if is_google_machine(dmi_product_name) {
        Some(format!(
            "{} names a Google Compute Engine machine",
            dmi_product_name.display()
        ))
    } else {
        None
    };
    if let Some(hint) = gcp_hint {
        return found(
            IdentitySource::GcpMetadata { audience: None },
            format!("{hint}: requesting an identity token from the Google Cloud metadata server"),
            &notes,
        );
    }
    notes.insert(
        0,
        format!(
            "no identity token source found; checked KEYLESS_IDENTITY_TOKEN_FILE, {DEFAULT_TOKEN_VAR}, GitHub Actions \
             (ACTIONS_ID_TOKEN_REQUEST_URL, ACTIONS_ID_TOKEN_REQUEST_TOKEN), AZURE_FEDERATED_TOKEN_FILE, Kubernetes \
             (KUBERNETES_SERVICE_HOST and {}), Google Cloud (GCE_METADATA_HOST, {}, {})",
            kubernetes_token.display(),
            GCP_RUNTIME_VARS.join(", "),
            dmi_product_name.display()
        ),
    );
    Detection {
        source: None,
        reason: notes.join("; "),
    }
}

/// Whether the DMI product name says Google (`Google Compute Engine`), as google-auth checks.
fn is_google_machine(dmi_product_name: &Path) -> bool {
    std::fs::read(dmi_product_name)
        .map(|bytes| bytes.len() < 256 && String::from_utf8_lossy(&bytes).trim().starts_with("Google"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;

    /// Detects in `vars` with a Kubernetes token file present or not and a DMI product name (or none),
    /// and checks the source found and words of the reason.
    fn check(vars: &[(&str, &str)], files: (bool, Option<&str>), source: Option<IdentitySource>, reason_has: &[&str]) {
        let dir = tempfile::tempdir().unwrap();
        let kubernetes_token = dir.path().join("token");
        if files.0 {
            std::fs::write(&kubernetes_token, "eyJh.eyJ.c2ln").unwrap();
        }
        let dmi_product_name = dir.path().join("product_name");
        if let Some(name) = files.1 {
            std::fs::write(&dmi_product_name, name).unwrap();
        }
        let detection = detect_with(
            &Environment::from_vars(vars.iter().copied()),
            &kubernetes_token,
            &dmi_product_name,
        );
        assert_eq!(detection.source, source, "{vars:?}: {}", detection.reason);
        for words in reason_has {
            assert!(
                detection.reason.contains(words),
                "{vars:?}: {:?} lacks {words:?}",
                detection.reason
            );
        }
    }

    const NO_FILES: (bool, Option<&str>) = (false, None);

    #[test]
    fn kubernetes_needs_the_variable_and_the_token_file() {
        check(
            &[("KUBERNETES_SERVICE_HOST", "10.96.0.1")],
            (true, None),
            Some(IdentitySource::Kubernetes { path: None }),
            &["KUBERNETES_SERVICE_HOST is set and", "service-account token"],
        );
        check(
            &[("KUBERNETES_SERVICE_HOST", "10.96.0.1")],
            NO_FILES,
            None,
            &[
                "KUBERNETES_SERVICE_HOST is set but",
                "does not exist",
                "no identity token source found",
            ],
        );
        check(&[], (true, None), None, &["no identity token source found"]);
    }

    #[test]
    fn compute_engine_is_recognised_by_its_product_name() {
        check(
            &[],
            (false, Some("Google Compute Engine\n")),
            Some(IdentitySource::GcpMetadata { audience: None }),
            &["names a Google Compute Engine machine"],
        );
        check(
            &[],
            (false, Some("Standard PC (Q35 + ICH9, 2009)\n")),
            None,
            &["no identity token source found"],
        );
    }

    #[test]
    fn earlier_checks_win_and_notes_are_kept() {
        // A GitHub runner without `id-token: write`, inside Kubernetes (actions-runner-controller).
        check(
            &[("GITHUB_ACTIONS", "true"), ("KUBERNETES_SERVICE_HOST", "10.96.0.1")],
            (true, None),
            Some(IdentitySource::Kubernetes { path: None }),
            &["service-account token", "the job needs `permissions: id-token: write`"],
        );
        check(
            &[
                ("KEYLESS_IDENTITY_TOKEN", "eyJh.eyJ.c2ln"),
                ("ACTIONS_ID_TOKEN_REQUEST_URL", "https://x"),
                ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "t"),
            ],
            (true, Some("Google")),
            Some(IdentitySource::Env {
                var: "KEYLESS_IDENTITY_TOKEN".to_owned(),
            }),
            &["KEYLESS_IDENTITY_TOKEN is set"],
        );
        check(
            &[("ACTIONS_ID_TOKEN_REQUEST_URL", "https://x")],
            NO_FILES,
            None,
            &["ACTIONS_ID_TOKEN_REQUEST_TOKEN is not set", "id-token: write"],
        );
    }
}
