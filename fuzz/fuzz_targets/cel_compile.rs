//! Arbitrary bytes as a rule condition: `keyless_core::condition::Condition::compile`, then, for an
//! accepted condition, evaluation against a small GitHub-shaped claim set and an empty one.
//!
//! Evaluation and the drop of the compiled program run on a thread with a 2 MiB stack — an async runtime
//! worker's — because `keyless-core` promises that an accepted program fits there (a stack overflow
//! aborts the process, which libFuzzer reports as a crash). Compilation itself runs on
//! `Condition::compile`'s own large-stack thread.
#![no_main]

use std::sync::LazyLock;
use std::thread;

use keyless_core::condition::Condition;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

const WORKER_STACK_BYTES: usize = 2 * 1024 * 1024;

static CLAIMS: LazyLock<Map<String, Value>> = LazyLock::new(|| {
    json!({
        "iss": "https://token.actions.githubusercontent.com",
        "sub": "repo:acme/api:ref:refs/heads/main",
        "aud": ["https://keyless.example", "sts.amazonaws.com"],
        "ref": "refs/heads/main",
        "repository_id": "123456789",
        "run_attempt": 1,
        "ref_protected": true,
        "ratio": 0.5,
        "big": 18446744073709551615_u64,
        "nothing": null,
        "ctx": { "environment": "production", "labels": ["a", "b"] },
        "exp": 1_795_867_480,
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
});

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(condition) = Condition::compile(source) else {
        return;
    };
    assert_eq!(condition.source(), source);
    thread::Builder::new()
        .stack_size(WORKER_STACK_BYTES)
        .spawn(move || {
            let _ = condition.evaluate(&CLAIMS);
            let on_empty = condition.evaluate(&Map::new());
            assert_eq!(condition.is_true_on_empty_claims(), on_empty == Ok(true));
            drop(condition);
        })
        .expect("spawn an evaluation thread")
        .join()
        .expect("evaluation does not panic");
});
