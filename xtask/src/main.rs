//! Repository automation, run as `cargo xtask <command>` (the alias is in `.cargo/config.toml`).
//!
//! Commands:
//! - `bench exchange`: the load benchmark of the token exchange — `cargo bench -p keyless-server
//!   --bench exchange`, which runs the server as a separate process on loopback (SQLite, and
//!   PostgreSQL when `KEYLESS_TEST_POSTGRES_URL` is set) and prints its own table.
//! - `bench proxy`: the built-in proxy's added latency — `cargo bench -p keyless-server --bench proxy`
//!   (serial requests to a loopback upstream, directly and through keyless), which prints its own table.
//! - `bench [jose|core|all] [--report-only] [-- <criterion args>]`: runs the criterion benches of
//!   the chosen crates with `--noplot`, then reads each result's `new/estimates.json` under
//!   criterion's output directory and prints a markdown table of medians; for `keyless-jose`, the
//!   JOSE path against the bare `aws-lc-rs` check per algorithm, with the ratio.
//!
//! Must not: depend on more than `serde_json`, or on any workspace crate (it must build while they
//! do not).

// A command-line tool: its tables go to stdout and its progress to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::SystemTime;

use serde_json::Value;

const USAGE: &str = "usage: cargo xtask bench [jose|core|all|exchange|proxy] [--report-only] [-- <criterion args>]

  exchange       the token exchange under load, server in its own process (SQLite, PostgreSQL)
  proxy          the latency the built-in proxy adds: an upstream directly vs through keyless
  jose           keyless-jose: verify_jwt vs the bare aws-lc-rs check, per algorithm
  core           keyless-core: claim validation, rule matching, the exchange decision
  all            both (the default)
  --report-only  print the tables from the last results without running anything";

/// One crate's criterion benchmark target.
struct Suite {
    name: &'static str,
    package: &'static str,
    bench: &'static str,
    /// The criterion group names of this suite start with this.
    group_prefix: &'static str,
}

const SUITES: [Suite; 2] = [
    Suite {
        name: "jose",
        package: "keyless-jose",
        bench: "verify",
        group_prefix: "jose_",
    },
    Suite {
        name: "core",
        package: "keyless-core",
        bench: "decision",
        group_prefix: "core",
    },
];

/// The median of one benchmark, from criterion's `new/` results.
struct Estimate {
    group: String,
    function: String,
    median_ns: f64,
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let res = match args.split_first() {
        Some((command, rest)) if command == "bench" => bench(rest),
        Some((flag, _)) if flag == "-h" || flag == "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => Err(USAGE.to_owned()),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn bench(args: &[String]) -> Result<(), String> {
    let (ours, criterion_args) = match args.iter().position(|arg| arg == "--") {
        Some(idx) => (
            args.get(..idx).unwrap_or_default(),
            args.get(idx + 1..).unwrap_or_default(),
        ),
        None => (args, &[][..]),
    };
    match ours.first().map(String::as_str) {
        Some("exchange") => return server_bench("exchange"),
        Some("proxy") => return server_bench("proxy"),
        _ => {}
    }
    let mut which = "all";
    let mut report_only = false;
    for arg in ours {
        match arg.as_str() {
            "jose" | "core" | "all" => which = arg,
            "--report-only" => report_only = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    let suites: Vec<&Suite> = SUITES
        .iter()
        .filter(|suite| which == "all" || suite.name == which)
        .collect();

    let root = workspace_root()?;
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let criterion_dir = criterion_dir(&cargo, &root)?;
    // Results older than this run are stale (a renamed or removed benchmark) and are left out.
    let started = if report_only { None } else { Some(SystemTime::now()) };

    if !report_only {
        for suite in &suites {
            eprintln!("xtask: cargo bench -p {} --bench {}", suite.package, suite.bench);
            let status = Command::new(&cargo)
                .current_dir(&root)
                .args(["bench", "-p", suite.package, "--bench", suite.bench, "--", "--noplot"])
                .args(criterion_args)
                .status()
                .map_err(|err| format!("could not run cargo: {err}"))?;
            if !status.success() {
                return Err(format!("cargo bench -p {} failed ({status})", suite.package));
            }
        }
    }

    let estimates = read_estimates(&criterion_dir, started)?;
    let mut out = String::new();
    for suite in &suites {
        let ours: Vec<&Estimate> = estimates
            .iter()
            .filter(|estimate| estimate.group.starts_with(suite.group_prefix))
            .collect();
        if ours.is_empty() {
            let _ = writeln!(
                out,
                "no results for {} under {}\n",
                suite.package,
                criterion_dir.display()
            );
            continue;
        }
        if suite.name == "jose" {
            jose_table(&mut out, suite, &ours);
        } else {
            plain_table(&mut out, suite, &ours);
        }
    }
    print!("{out}");
    Ok(())
}

/// keyless-server's benchmarks (`exchange`, `proxy`) print their own reports.
fn server_bench(name: &str) -> Result<(), String> {
    let root = workspace_root()?;
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("xtask: cargo bench -p keyless-server --bench {name}");
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args(["bench", "-p", "keyless-server", "--bench", name])
        .status()
        .map_err(|err| format!("could not run cargo: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the {name} benchmark failed ({status})"))
    }
}

/// `| algorithm | verify_jwt | verify_jws | aws-lc-rs | jwt/raw | jws/raw | decode_unverified |`
fn jose_table(out: &mut String, suite: &Suite, estimates: &[&Estimate]) {
    let _ = writeln!(out, "### {} (median per operation)\n", suite.package);
    let _ = writeln!(
        out,
        "| algorithm | `verify_jwt` | `verify_jws` | aws-lc-rs `verify_sig` | `verify_jwt`/raw | `verify_jws`/raw \
         | `decode_unverified` |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    let mut groups: Vec<&str> = estimates.iter().map(|estimate| estimate.group.as_str()).collect();
    groups.dedup();
    // The order of the bench file, then any other group.
    let order = ["RS256", "PS256", "ES256", "ES384", "EdDSA"];
    groups.sort_by_key(|group| {
        let algorithm = group.strip_prefix(suite.group_prefix).unwrap_or(group);
        order
            .iter()
            .position(|known| *known == algorithm)
            .unwrap_or(order.len())
    });
    for group in groups {
        let median = |function: &str| {
            estimates
                .iter()
                .find(|estimate| estimate.group == group && estimate.function == function)
                .map(|estimate| estimate.median_ns)
        };
        let raw = median("aws_lc_rs");
        let ratio = |jose: Option<f64>| match (jose, raw) {
            (Some(jose), Some(raw)) if raw > 0.0 => format!("{:.2} ({:+.0} %)", jose / raw, (jose / raw - 1.0) * 100.0),
            _ => "–".to_owned(),
        };
        let show = |ns: Option<f64>| ns.map_or_else(|| "–".to_owned(), duration);
        let (jwt, jws) = (median("verify_jwt"), median("verify_jws"));
        let algorithm = group.strip_prefix(suite.group_prefix).unwrap_or(group);
        let _ = writeln!(
            out,
            "| {algorithm} | {} | {} | {} | {} | {} | {} |",
            show(jwt),
            show(jws),
            show(raw),
            ratio(jwt),
            ratio(jws),
            show(median("decode_unverified"))
        );
    }
    out.push('\n');
}

/// `| benchmark | median |`
fn plain_table(out: &mut String, suite: &Suite, estimates: &[&Estimate]) {
    let _ = writeln!(out, "### {} (median per operation)\n", suite.package);
    let _ = writeln!(out, "| benchmark | median |");
    let _ = writeln!(out, "|---|---:|");
    for estimate in estimates {
        let _ = writeln!(
            out,
            "| {}/{} | {} |",
            estimate.group,
            estimate.function,
            duration(estimate.median_ns)
        );
    }
    out.push('\n');
}

fn duration(ns: f64) -> String {
    let magnitude = ns.abs();
    if magnitude >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if magnitude >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if magnitude >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

fn workspace_root() -> Result<PathBuf, String> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| "xtask is not inside a workspace".to_owned())
}

/// Where criterion writes: `$CRITERION_HOME`, else `<cargo target dir>/criterion` (as criterion decides).
fn criterion_dir(cargo: &str, root: &Path) -> Result<PathBuf, String> {
    if let Some(home) = env::var_os("CRITERION_HOME") {
        return Ok(PathBuf::from(home));
    }
    let output = Command::new(cargo)
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|err| format!("could not run cargo metadata: {err}"))?;
    if !output.status.success() {
        return Err(format!("cargo metadata failed ({})", output.status));
    }
    let metadata: Value =
        serde_json::from_slice(&output.stdout).map_err(|err| format!("cargo metadata output: {err}"))?;
    let target = metadata
        .get("target_directory")
        .and_then(Value::as_str)
        .ok_or("cargo metadata has no target_directory")?;
    Ok(Path::new(target).join("criterion"))
}

/// Every `<group>/<benchmark>/new/` result under `dir`, sorted, leaving out files older than `since`.
fn read_estimates(dir: &Path, since: Option<SystemTime>) -> Result<Vec<Estimate>, String> {
    let mut found = Vec::new();
    let Ok(groups) = fs::read_dir(dir) else {
        return Ok(found);
    };
    for group in groups.flatten() {
        let Ok(benches) = fs::read_dir(group.path()) else {
            continue;
        };
        for bench in benches.flatten() {
            let new = bench.path().join("new");
            let estimates_path = new.join("estimates.json");
            let Ok(modified) = fs::metadata(&estimates_path).and_then(|meta| meta.modified()) else {
                continue;
            };
            if since.is_some_and(|since| modified < since) {
                continue;
            }
            let ids = read_json(&new.join("benchmark.json"))?;
            let estimates = read_json(&estimates_path)?;
            let text = |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
            let (Some(group), Some(function), Some(median_ns)) = (
                text(&ids, "group_id"),
                text(&ids, "function_id"),
                estimates.pointer("/median/point_estimate").and_then(Value::as_f64),
            ) else {
                return Err(format!("unexpected criterion output in {}", new.display()));
            };
            found.push(Estimate {
                group,
                function,
                median_ns,
            });
        }
    }
    found.sort_by(|a, b| (&a.group, &a.function).cmp(&(&b.group, &b.function)));
    Ok(found)
}

fn read_json(path: &Path) -> Result<Value, String> {
    let bytes = fs::read(path).map_err(|err| format!("{}: {err}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|err| format!("{}: {err}", path.display()))
}
