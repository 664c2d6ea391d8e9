//! `keyless serve` as a process: starts on the embedded default, answers, stops cleanly on SIGTERM,
//! and refuses a bad configuration with one readable line.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{free_port, http};

fn get(port: u16, path: &str) -> Option<String> {
    http(port, "GET", path, &[], "")
}

#[test]
fn serve_starts_on_the_embedded_default_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyless"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            data_dir.to_str().unwrap(),
        ])
        .env("NO_COLOR", "1")
        .env_remove("KEYLESS_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        if let Some(response) = get(port, "/readyz") {
            break response;
        }
        assert!(Instant::now() < deadline, "keyless serve did not answer within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(ready.to_ascii_lowercase().contains("request-id: req_"), "{ready}");
    assert!(data_dir.join("bootstrap.json").is_file());

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(exit.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("bootstrap.json") && stderr.contains("keyless stopped"),
        "{stderr}"
    );
    let token = std::fs::read_to_string(data_dir.join("bootstrap.json")).unwrap();
    let token: serde_json::Value = serde_json::from_str(&token).unwrap();
    assert!(
        !stderr.contains(token["admin_token"].as_str().unwrap()),
        "the admin token is never logged"
    );
}

#[test]
fn a_bad_configuration_is_one_readable_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keyless.toml"), "lisen = \"127.0.0.1:1\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_keyless"))
        .args(["serve", "--data-dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: configuration: ") && stderr.contains("lisen"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "no stack trace: {stderr}");
}
