//! The CEL stack guard: deep or long expressions must be refused or compiled, never abort the process
//! (a stack overflow kills every test of this binary), and what is accepted must evaluate within a 2 MiB
//! stack, a tokio worker's.

use std::thread;

use keyless_core::condition::{Condition, ConditionError, MAX_SOURCE_BYTES};
use serde_json::json;

/// `open` repeated, `middle`, `close` repeated: as many levels as fit in `MAX_SOURCE_BYTES`.
fn deepest(open: &str, middle: &str, close: &str) -> String {
    let levels = (MAX_SOURCE_BYTES - middle.len()) / (open.len() + close.len());
    format!("{}{middle}{}", open.repeat(levels), close.repeat(levels))
}

#[test]
fn four_kib_of_nesting_is_refused_without_crashing() {
    let sources = [
        deepest("(", "claims.x", ")"),
        deepest("!", "claims.x", ""),
        deepest("-", "claims.n", ""),
        deepest("", "claims", ".a"),
        deepest("", "claims", "[0]"),
        deepest("", "claims.n", "+1"),
        deepest("[", "claims.n", "]"),
        deepest("size(", "claims", ")"),
        deepest("{1:", "claims.n", "}"),
        deepest("", "claims.x", "&&claims.x"),
        deepest("", "claims.x", "||claims.x"),
        deepest("claims.x?1:", "2", ""),
        deepest("claims.l.all(x,", "x", ")"),
        deepest("", "claims.s", ".size()"),
        deepest("", "'a'", "+claims.s"),
        deepest("", "claims.n", " in [1]"),
    ];
    for source in &sources {
        assert!(source.len() <= MAX_SOURCE_BYTES);
        match Condition::compile(source) {
            // Balanced `&&`/`||` chains stay shallow: they compile, and evaluate without trouble.
            Ok(condition) => {
                let _ = condition.evaluate(json!({ "x": true }).as_object().unwrap());
            }
            Err(ConditionError::TooDeep | ConditionError::Syntax(_) | ConditionError::Constant) => {}
            Err(other) => panic!("unexpected refusal {other} for {}", &source[..40]),
        }
    }
    let deep_negation = format!("{}true", "!".repeat(MAX_SOURCE_BYTES - 4));
    assert!(Condition::compile(&deep_negation).is_err());
}

#[test]
fn accepted_conditions_evaluate_within_a_two_mib_stack() {
    // The deepest accepted condition of the most stack-hungry shapes.
    let shapes: [fn(usize) -> String; 4] = [
        |n| format!("claims.n{} > 0", " + 1".repeat(n)),
        |n| format!("claims.n{} == claims.n", " in [1]".repeat(n)),
        |n| format!("{}claims.n > 0{}", "[".repeat(n), "]".repeat(n)),
        |n| format!("{}claims.n > 0{}", "claims.l.all(x, ".repeat(n), ")".repeat(n)),
    ];
    let deepest_accepted: Vec<Condition> = shapes
        .iter()
        .map(|shape| (1..64).rev().find_map(|n| Condition::compile(&shape(n)).ok()).unwrap())
        .collect();
    let evaluated = thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            let claims = json!({ "n": 1, "l": [1, 2] });
            for condition in &deepest_accepted {
                let _ = condition.evaluate(claims.as_object().unwrap());
            }
            deepest_accepted.len()
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(evaluated, 4);
}
