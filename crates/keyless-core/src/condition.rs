//! Rule conditions: CEL expressions over the variable `claims`, compiled once at write time and evaluated
//! per exchange. The only module that knows the `cel` crate.
//!
//! Parts: [`Condition`] (compiled, cheap to clone), [`ConditionError`] (write-time refusals),
//! [`EvaluationError`] (per-token failures and the rejection code each maps to).
//!
//! Safety: `cel` parses and evaluates recursively, and a stack overflow aborts the whole process. So a
//! source is at most [`MAX_SOURCE_BYTES`]; it is compiled on a dedicated thread with a 64 MiB stack; a
//! program nesting deeper than [`MAX_NESTING_DEPTH`] is refused (and dropped) on that thread, so that
//! evaluating or dropping an accepted program fits in a 2 MiB stack (an async runtime worker's) even in a debug
//! build; only compiled programs are evaluated.
//!
//! Write-time policy: the only variable is `claims` (any other free variable is refused, catching
//! typos); a condition that does not reference `claims` is a constant and is refused; a condition that is
//! true for an empty claim set is accepted but does not count as an identity constraint
//! ([`Condition::counts_as_identity`]).
//!
//! Evaluation policy: `claims` is the whole claim set (nested objects are maps, arrays are lists, JSON
//! integers are `int` — or `uint` above `i64` — and other numbers `double`). A `true` result satisfies the
//! condition; `false` and a missing key (`claims.environment` on a token without it) are
//! `condition_false`; a non-boolean result or any other evaluation error is `condition_error`.
//! When the program reads `claims` only as `claims.NAME` or `claims["NAME"]`, only those top-level claims
//! are converted for evaluation (strings are borrowed, never copied); otherwise the whole set is.
//!
//! Cost: `cel` has no evaluation budget, and nested comprehensions multiply (six nested `all()` over
//! ten-element lists, 211 bytes, took 2 s per evaluation in a fuzzing run). So a comprehension
//! (`all`, `exists`, `exists_one`, `map`, `filter`) inside another's loop body is refused, and list
//! literals hold at most [`MAX_LIST_LITERAL`] elements. What remains is linear: one loop over a token
//! array (bounded by the 16 KiB token) whose body may test membership in one bounded literal.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, LazyLock};
use std::thread;

use cel::common::ast::{EntryExpr, Expr, LiteralValue, operators};
use cel::common::types::{CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt};
use cel::common::value::Val;
use cel::{Context, Env, ExecutionError, IdedExpr, Program};
use serde_json::{Map, Number, Value};

use crate::rejection::RejectionCode;

/// The largest condition source, in bytes.
pub const MAX_SOURCE_BYTES: usize = 4096;

/// The deepest accepted expression tree (each operator, call, selection or literal is one level).
pub const MAX_NESTING_DEPTH: usize = 32;

/// The most elements one list literal may have.
pub const MAX_LIST_LITERAL: usize = 256;

/// The name of the one variable a condition sees.
pub const VARIABLE: &str = "claims";

/// Stack of the compiling thread: enough for any 4 KiB source in a debug build.
const COMPILE_STACK_BYTES: usize = 64 * 1024 * 1024;

/// The CEL standard environment. Building it costs about 20 µs, so it is built once: it is an immutable
/// table of functions, not state.
static ENVIRONMENT: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// Why a condition is refused at write time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    /// Empty or blank.
    #[error("must not be empty")]
    Empty,
    /// Longer than [`MAX_SOURCE_BYTES`].
    #[error("must be at most 4096 bytes")]
    TooLong,
    /// Not valid CEL.
    #[error("does not parse: {0}")]
    Syntax(String),
    /// Nests deeper than [`MAX_NESTING_DEPTH`].
    #[error("nests deeper than 32 levels")]
    TooDeep,
    /// Has a comprehension (`all`, `exists`, `exists_one`, `map`, `filter`) inside the body of
    /// another: evaluation cost would multiply with every level (CEL has no evaluation budget).
    #[error("nests a comprehension (all, exists, exists_one, map, filter) inside another; flatten it")]
    NestedComprehension,
    /// Has a list literal longer than [`MAX_LIST_LITERAL`].
    #[error("has a list of {0} elements; at most 256 are allowed")]
    ListTooLong(usize),
    /// Uses a variable other than `claims`.
    #[error("references `{0}`: the only variable is `claims`")]
    UnknownVariable(String),
    /// Does not reference `claims`, so it is a constant.
    #[error("is constant: it must reference `claims`")]
    Constant,
    /// The compiler thread could not run or failed.
    #[error("could not be compiled")]
    Uncompilable,
}

/// Why a condition did not accept a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvaluationError {
    /// A key the condition reads is absent (`condition_false`).
    #[error("no such key: {0}")]
    MissingKey(String),
    /// The result is not a boolean (`condition_error`).
    #[error("evaluated to a {0}, not a bool")]
    NotBoolean(String),
    /// Any other evaluation error (`condition_error`).
    #[error("{0}")]
    Failed(String),
}

impl EvaluationError {
    /// The rejection this failure is reported as.
    pub fn code(&self) -> RejectionCode {
        match self {
            Self::MissingKey(_) => RejectionCode::ConditionFalse,
            Self::NotBoolean(_) | Self::Failed(_) => RejectionCode::ConditionError,
        }
    }
}

/// Which part of the claim set a program reads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ClaimsAccess {
    /// Only these top-level claims (`claims.NAME`, `claims["NAME"]`).
    Keys(Vec<String>),
    /// `claims` itself is used (iterated, compared, indexed by a computed key…).
    Whole,
}

/// A compiled condition.
#[derive(Clone)]
pub struct Condition {
    source: String,
    program: Arc<Program>,
    claims_access: ClaimsAccess,
    true_on_empty_claims: bool,
}

impl Condition {
    /// Compiles and checks `source` (see the module documentation for what is refused).
    pub fn compile(source: &str) -> Result<Self, ConditionError> {
        if source.trim().is_empty() {
            return Err(ConditionError::Empty);
        }
        if source.len() > MAX_SOURCE_BYTES {
            return Err(ConditionError::TooLong);
        }
        let source = source.to_owned();
        thread::Builder::new()
            .name("cel-compile".to_owned())
            .stack_size(COMPILE_STACK_BYTES)
            .spawn(move || compile_on_large_stack(source))
            .map_err(|_| ConditionError::Uncompilable)?
            .join()
            .map_err(|_| ConditionError::Uncompilable)?
    }

    /// The source it was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether it is true for an empty claim set: such a condition constrains nothing by itself.
    pub fn is_true_on_empty_claims(&self) -> bool {
        self.true_on_empty_claims
    }

    /// Whether it counts as an identity constraint of a rule (it is not true for an empty claim set).
    pub fn counts_as_identity(&self) -> bool {
        !self.true_on_empty_claims
    }

    /// Evaluates it against `claims`.
    pub fn evaluate(&self, claims: &Map<String, Value>) -> Result<bool, EvaluationError> {
        let claims_val: Box<dyn Val + '_> = match &self.claims_access {
            ClaimsAccess::Whole => Box::new(map_val(claims.iter())),
            ClaimsAccess::Keys(keys) => Box::new(map_val(keys.iter().filter_map(|key| claims.get_key_value(key)))),
        };
        let mut context = Context::with_env(Arc::clone(&ENVIRONMENT));
        context.add_variable_as_val(VARIABLE, claims_val);
        match self.program.execute(&context) {
            Ok(cel::Value::Bool(satisfied)) => Ok(satisfied),
            Ok(other) => Err(EvaluationError::NotBoolean(other.type_of().to_string())),
            Err(ExecutionError::NoSuchKey(key)) => Err(EvaluationError::MissingKey(key.to_string())),
            Err(error) => Err(EvaluationError::Failed(error.to_string())),
        }
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Two conditions are equal when their sources are.
impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// Runs on the large-stack thread: parsing, and dropping a refused deep tree, both recurse.
fn compile_on_large_stack(source: String) -> Result<Condition, ConditionError> {
    let program = ENVIRONMENT.compile(&source).map_err(|errors| {
        let first = errors.errors.first();
        match first {
            Some(error) if error.msg.contains("Recursion limit") => ConditionError::TooDeep,
            Some(error) => ConditionError::Syntax(format!("{}:{}: {}", error.pos.0, error.pos.1, error.msg)),
            None => ConditionError::Syntax(errors.to_string()),
        }
    })?;
    let analysis = analyze(program.expression());
    if analysis.depth > MAX_NESTING_DEPTH {
        return Err(ConditionError::TooDeep);
    }
    if analysis.nested_comprehension {
        return Err(ConditionError::NestedComprehension);
    }
    if analysis.longest_list > MAX_LIST_LITERAL {
        return Err(ConditionError::ListTooLong(analysis.longest_list));
    }
    if let Some(unknown) = analysis.free_variables.iter().find(|name| *name != VARIABLE) {
        return Err(ConditionError::UnknownVariable(unknown.clone()));
    }
    if !analysis.free_variables.contains(VARIABLE) {
        return Err(ConditionError::Constant);
    }
    let claims_access = if analysis.whole_claims {
        ClaimsAccess::Whole
    } else {
        ClaimsAccess::Keys(analysis.claim_keys.into_iter().collect())
    };
    let mut condition = Condition {
        source,
        program: Arc::new(program),
        claims_access,
        true_on_empty_claims: false,
    };
    condition.true_on_empty_claims = condition.evaluate(&Map::new()) == Ok(true);
    Ok(condition)
}

/// What a walk of the expression tree finds.
#[derive(Default)]
struct Analysis {
    depth: usize,
    free_variables: BTreeSet<String>,
    claim_keys: BTreeSet<String>,
    whole_claims: bool,
    nested_comprehension: bool,
    longest_list: usize,
}

/// Walks the tree without recursion (it may be deep): depth, free variables (comprehension variables
/// are bound in their loop), how `claims` is read, and what bounds evaluation cost (comprehensions
/// inside a loop body, list literal sizes). `loops` counts the loop bodies enclosing a node.
fn analyze(root: &IdedExpr) -> Analysis {
    let mut analysis = Analysis::default();
    let mut pending: Vec<(&IdedExpr, usize, Vec<&str>, usize)> = vec![(root, 1, Vec::new(), 0)];
    while let Some((expr, depth, bound, loops)) = pending.pop() {
        analysis.depth = analysis.depth.max(depth);
        if let Some(key) = claim_key(expr, &bound) {
            analysis.depth = analysis.depth.max(depth + 1);
            analysis.free_variables.insert(VARIABLE.to_owned());
            analysis.claim_keys.insert(key.to_owned());
            continue;
        }
        let mut children: Vec<&IdedExpr> = Vec::new();
        match &expr.expr {
            Expr::Ident(name) => {
                if !bound.contains(&name.as_str()) {
                    analysis.whole_claims |= name == VARIABLE;
                    analysis.free_variables.insert(name.clone());
                }
            }
            Expr::Call(call) => children.extend(call.target.as_deref().into_iter().chain(&call.args)),
            Expr::Select(select) => children.push(&select.operand),
            Expr::List(list) => {
                analysis.longest_list = analysis.longest_list.max(list.elements.len());
                children.extend(&list.elements);
            }
            Expr::Map(map) => children.extend(map.entries.iter().flat_map(|entry| entry_children(&entry.expr))),
            Expr::Struct(r#struct) => {
                children.extend(r#struct.entries.iter().flat_map(|entry| entry_children(&entry.expr)));
            }
            Expr::Comprehension(comprehension) => {
                analysis.nested_comprehension |= loops > 0;
                pending.push((&comprehension.iter_range, depth + 1, bound.clone(), loops));
                pending.push((&comprehension.accu_init, depth + 1, bound.clone(), loops));
                let mut inner = bound.clone();
                inner.push(&comprehension.iter_var);
                inner.extend(comprehension.iter_var2.as_deref());
                inner.push(&comprehension.accu_var);
                for child in [
                    &comprehension.loop_cond,
                    &comprehension.loop_step,
                    &comprehension.result,
                ] {
                    pending.push((child, depth + 1, inner.clone(), loops + 1));
                }
            }
            Expr::Literal(_) | Expr::Unspecified => {}
        }
        pending.extend(
            children
                .into_iter()
                .map(|child| (child, depth + 1, bound.clone(), loops)),
        );
    }
    analysis
}

fn entry_children(entry: &EntryExpr) -> Vec<&IdedExpr> {
    match entry {
        EntryExpr::MapEntry(map_entry) => vec![&map_entry.key, &map_entry.value],
        EntryExpr::StructField(field) => vec![&field.value],
    }
}

/// `NAME` when `expr` is `claims.NAME`, `has(claims.NAME)` or `claims["NAME"]` with `claims` free.
fn claim_key<'e>(expr: &'e IdedExpr, bound: &[&str]) -> Option<&'e str> {
    let is_claims = |operand: &IdedExpr| matches!(&operand.expr, Expr::Ident(name) if name == VARIABLE && !bound.contains(&VARIABLE));
    match &expr.expr {
        Expr::Select(select) if is_claims(&select.operand) => Some(&select.field),
        Expr::Call(call) if call.func_name == operators::INDEX && call.target.is_none() => match call.args.as_slice() {
            [operand, key] if is_claims(operand) => match &key.expr {
                Expr::Literal(LiteralValue::String(key)) => Some(key.inner()),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// A JSON value as a CEL value borrowing its strings. Recursion is bounded by the JSON's nesting, which
/// `serde_json` caps at 128 when parsing a token.
fn json_val(value: &Value) -> Box<dyn Val + '_> {
    match value {
        Value::Null => Box::new(CelNull),
        Value::Bool(b) => Box::new(CelBool::from(*b)),
        Value::Number(number) => number_val(number),
        Value::String(text) => Box::new(CelString::from(text.as_str())),
        Value::Array(items) => Box::new(CelList::from(items.iter().map(json_val).collect::<Vec<_>>())),
        Value::Object(map) => Box::new(map_val(map.iter())),
    }
}

fn map_val<'c>(entries: impl Iterator<Item = (&'c String, &'c Value)>) -> CelMap<'c> {
    let map: HashMap<CelMapKey<'c>, Box<dyn Val + 'c>> = entries
        .map(|(key, value)| (CelMapKey::from(key.as_str()), json_val(value)))
        .collect();
    CelMap::from(map)
}

fn number_val(number: &Number) -> Box<dyn Val + 'static> {
    if let Some(int) = number.as_i64() {
        Box::new(CelInt::from(int))
    } else if let Some(uint) = number.as_u64() {
        Box::new(CelUInt::from(uint))
    } else {
        Box::new(CelDouble::from(number.as_f64().unwrap_or(f64::NAN)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use serde_json::json;

    use super::*;

    fn check_compile(source: &str, expect: Result<(), &str>) {
        let res = Condition::compile(source).map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(res.as_ref().copied().map_err(String::as_str), expect, "{source}");
    }

    #[test]
    fn write_time_refusals() {
        check_compile("claims.sub == 'x'", Ok(()));
        check_compile("", Err("must not be empty"));
        check_compile("  \n", Err("must not be empty"));
        check_compile(
            &format!("claims.sub == '{}'", "x".repeat(4096)),
            Err("must be at most 4096 bytes"),
        );
        check_compile("true", Err("is constant: it must reference `claims`"));
        check_compile(
            "1 == 1 && 'a'.startsWith('a')",
            Err("is constant: it must reference `claims`"),
        );
        check_compile("[1, 2].all(x, x > 0)", Err("is constant: it must reference `claims`"));
        check_compile(
            "claim.sub == 'x'",
            Err("references `claim`: the only variable is `claims`"),
        );
        check_compile(
            "claims.sub == sub",
            Err("references `sub`: the only variable is `claims`"),
        );
        check_compile("claims.scp.exists(s, s == 'read')", Ok(()));
        assert!(
            Condition::compile("claims.sub ==")
                .unwrap_err()
                .to_string()
                .starts_with("does not parse: ")
        );
    }

    /// Found by fuzzing `cel_compile`: six nested `all()` over literal lists cost 2 s per evaluation.
    #[test]
    fn evaluation_cost_is_bounded_at_write_time() {
        let ten = "[1,2,3,4,5,6,7,8,9,10]";
        let fuzzed = format!(
            "{ten}.all(a, {ten}.all(b, {ten}.all(c, {ten}.all(d, {ten}.all(e, {ten}.all(f, claims.exp != a+b+c+d+e+f))))))"
        );
        let nested = "nests a comprehension (all, exists, exists_one, map, filter) inside another; flatten it";
        check_compile(&fuzzed, Err(nested));
        check_compile("claims.groups.exists(g, claims.teams.exists(t, t == g))", Err(nested));
        check_compile("claims.groups.all(g, [1].map(x, x).size() > 0)", Err(nested));
        // Sequential and chained comprehensions are linear: accepted.
        check_compile(
            "claims.groups.exists(g, g == 'a') && claims.scp.all(s, s != 'x')",
            Ok(()),
        );
        check_compile("claims.groups.map(g, g + '!').exists(g, g == 'a!')", Ok(()));
        let list = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        check_compile(&format!("claims.n in [{}]", list(MAX_LIST_LITERAL)), Ok(()));
        check_compile(
            &format!("claims.n in [{}]", list(MAX_LIST_LITERAL + 1)),
            Err("has a list of 257 elements; at most 256 are allowed"),
        );
    }

    #[test]
    fn true_on_empty_claims_does_not_count_as_identity() {
        let check = |source: &str, counts: bool| {
            let condition = Condition::compile(source).unwrap();
            assert_eq!(condition.counts_as_identity(), counts, "{source}");
            assert_eq!(condition.is_true_on_empty_claims(), !counts, "{source}");
        };
        check("size(claims) >= 0", false);
        check("!has(claims.environment)", false);
        check("claims == claims", false);
        check("has(claims.sub) || true", false);
        check("claims.sub == 'x'", true);
        check("has(claims.sub)", true);
    }

    fn check_eval(source: &str, claims: Value, expect: Result<bool, RejectionCode>) {
        let condition = Condition::compile(source).unwrap();
        let res = condition.evaluate(claims.as_object().unwrap()).map_err(|e| e.code());
        assert_eq!(res, expect, "{source} on {claims}");
    }

    #[test]
    fn evaluation() {
        let claims = json!({
            "sub": "system:serviceaccount:ci:deployer",
            "aud": ["https://keyless.example"],
            "kubernetes.io": { "namespace": "ci", "pod": { "name": "runner-1" } },
            "n": 5, "big": u64::MAX, "f": 1.5, "yes": true, "none": null,
        });
        let check = |source: &str, expect: Result<bool, RejectionCode>| check_eval(source, claims.clone(), expect);
        check("claims.sub.startsWith('system:serviceaccount:ci:')", Ok(true));
        check("claims['kubernetes.io'].namespace == 'ci'", Ok(true));
        check("claims['kubernetes.io'].pod.name.matches('^runner-[0-9]+$')", Ok(true));
        check("'https://keyless.example' in claims.aud", Ok(true));
        check("claims.n == 5 && claims.n > 4", Ok(true));
        check("claims.big == 18446744073709551615u", Ok(true));
        check("claims.f > 1.0", Ok(true));
        check("claims.yes && claims.none == null", Ok(true));
        check("claims.n == '5'", Ok(false));
        check("claims.environment == 'prod'", Err(RejectionCode::ConditionFalse));
        check(
            "claims['kubernetes.io'].node.name == 'x'",
            Err(RejectionCode::ConditionFalse),
        );
        check("claims.sub", Err(RejectionCode::ConditionError));
        check("claims.n + 'x' == 'y'", Err(RejectionCode::ConditionError));
        check("claims.sub.nosuchfunction()", Err(RejectionCode::ConditionError));
        check("claims.exists(k, k == 'yes')", Ok(true));
        check("[1].all(claims, claims == 1) && claims.n == 5", Ok(true));
    }

    #[test]
    fn reads_only_the_claims_it_names() {
        let access = |source: &str| Condition::compile(source).unwrap().claims_access;
        let keys = |names: &[&str]| ClaimsAccess::Keys(names.iter().map(|n| (*n).to_owned()).collect());
        assert_eq!(access("claims.sub == 'a' && has(claims.ref)"), keys(&["ref", "sub"]));
        assert_eq!(
            access("claims['kubernetes.io'].namespace == 'ci'"),
            keys(&["kubernetes.io"])
        );
        assert_eq!(access("claims[claims.k] == 'x'"), ClaimsAccess::Whole);
        assert_eq!(access("size(claims) > 1"), ClaimsAccess::Whole);
        assert_eq!(access("claims.scp.exists(claims, claims == 'x')"), keys(&["scp"]));
    }

    #[test]
    fn conditions_are_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Condition>();
    }
}
