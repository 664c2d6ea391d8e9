//! Tidy checks: the invariants of ARCHITECTURE.md that a grep can hold, run by `cargo test`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Library and binary sources of every crate (not tests, benches or examples).
fn sources() -> Vec<(String, PathBuf, String)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(root().join("crates")).unwrap() {
        let krate = entry.unwrap().path();
        let name = krate.file_name().unwrap().to_string_lossy().into_owned();
        for file in rust_files(&krate.join("src")) {
            let text = fs::read_to_string(&file).unwrap();
            out.push((name.clone(), file, text));
        }
    }
    out
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root()).unwrap().display().to_string()
}

#[test]
fn every_source_file_starts_with_a_module_doc() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|(_, _, text)| !text.trim_start().starts_with("//!"))
        .map(|(_, path, _)| rel(&path))
        .collect();
    assert!(missing.is_empty(), "files without a `//!` doc: {missing:#?}");
}

#[test]
fn the_clock_is_read_only_in_clock_modules() {
    const CLOCK_READS: [&str; 5] = [
        "SystemTime::now",
        "Instant::now",
        "OffsetDateTime::now_utc",
        "Utc::now",
        "thread::sleep",
    ];
    let offenders: Vec<String> = sources()
        .into_iter()
        .filter(|(_, path, _)| path.file_name().is_none_or(|name| name != "clock.rs"))
        .flat_map(|(_, path, text)| {
            CLOCK_READS
                .iter()
                .filter(|read| text.contains(*read))
                .map(|read| format!("{}: {read}", rel(&path)))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "clock reads outside a clock module: {offenders:#?}"
    );
}

#[test]
fn the_pure_crates_do_no_io_and_are_not_async() {
    const IO: [&str; 9] = [
        "std::fs",
        "std::net",
        "std::process",
        "std::env",
        "tokio",
        "reqwest",
        "sqlx",
        "async fn",
        ".await",
    ];
    let offenders: Vec<String> = sources()
        .into_iter()
        .filter(|(krate, _, _)| krate == "keyless-jose" || krate == "keyless-core")
        .flat_map(|(_, path, text)| {
            IO.iter()
                .filter(|io| text.contains(*io))
                .map(|io| format!("{}: {io}", rel(&path)))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "IO or async in keyless-jose/keyless-core: {offenders:#?}"
    );
}

#[test]
fn no_grab_bag_modules() {
    let offenders: Vec<String> = sources()
        .into_iter()
        .map(|(_, path, _)| path)
        .filter(|path| {
            let stem = path.file_stem().unwrap().to_string_lossy();
            let dir = path
                .parent()
                .and_then(Path::file_name)
                .map(|d| d.to_string_lossy().into_owned());
            ["utils", "util", "helpers", "common", "misc"]
                .iter()
                .any(|bad| stem == *bad || (stem == "mod" && dir.as_deref() == Some(*bad)))
        })
        .map(|path| rel(&path))
        .collect();
    assert!(
        offenders.is_empty(),
        "modules are domain nouns, not grab bags: {offenders:#?}"
    );
}

#[test]
fn only_the_store_knows_sql_and_only_the_server_knows_axum() {
    let offenders: Vec<String> = sources()
        .into_iter()
        .flat_map(|(krate, path, text)| {
            let mut found = Vec::new();
            if krate != "keyless-store" && text.contains("sqlx") {
                found.push(format!("{}: sqlx", rel(&path)));
            }
            // keyless-client's optional `resource` module (feature `resource-server`) is the one
            // exception: a tower layer and an extractor for resource servers.
            let resource_server =
                krate == "keyless-client" && path.starts_with(root().join("crates/keyless-client/src/resource"));
            if krate != "keyless-server" && !resource_server && (text.contains("axum") || text.contains("tower_http")) {
                found.push(format!("{}: axum", rel(&path)));
            }
            found
        })
        .collect();
    assert!(offenders.is_empty(), "{offenders:#?}");
    for krate in std::fs::read_dir(root().join("crates")).unwrap() {
        let krate = krate.unwrap().path();
        let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
        let name = krate.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name == "keyless-store" || !manifest.contains("sqlx"),
            "{name} depends on sqlx"
        );
        // keyless-client may depend on axum only optionally (feature `resource-server`).
        let axum_optional = name == "keyless-client"
            && manifest
                .lines()
                .filter(|line| line.contains("axum"))
                .all(|line| line.contains("optional = true") || line.contains("\"dep:axum\""));
        assert!(
            name == "keyless-server" || axum_optional || !manifest.contains("axum"),
            "{name} depends on axum"
        );
    }
}
