//! Which scopes a request to the protected API needs: the operator's route table.
//!
//! Parts: [`RouteSpec`] (one entry as configured), [`RouteTable`] (compiled; [`RouteTable::builtin`] is
//! the default), [`Requirement`] (what a request needs), [`canonical_path`] and [`PathError`].
//!
//! A route is a set of methods (empty: any; `GET` also admits `HEAD`), a path pattern and the scopes
//! that admit a request: holding **any one** of them is enough. Patterns are `/`-separated segments:
//! a literal matches itself (case-sensitive), `*` any one segment, and a final `**` any number of
//! segments, none included. The first matching route decides; a request no route matches needs the
//! table's `unmatched` scopes, and an empty `unmatched` refuses it.
//!
//! Paths are matched in canonical form only ([`canonical_path`]): the query is cut, percent-encoded
//! unreserved characters are decoded (RFC 3986 §6.2.2.2: `/v1/%61dmin` is `/v1/admin`, or it would slip
//! past a route written for `/v1/admin`), and a path an upstream could read differently than the table
//! does is refused outright: `.` or `..` segments (encoded or not), empty segments, an encoded `/` or
//! `\`, a backslash, a control character or anything outside ASCII.

use std::fmt;

use crate::scope::{ScopeError, ScopeSet, WORKSPACE_DEVELOPER, WORKSPACE_INFERENCE};

/// The longest path considered, in bytes; longer ones are refused.
pub const MAX_PATH_LEN: usize = 8192;

/// One route as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// HTTP methods (any case); empty: every method.
    pub methods: Vec<String>,
    /// The path pattern.
    pub path: String,
    /// The scopes that admit a request (any one of them), space-separated.
    pub scopes: String,
}

/// Why a route table cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// A path pattern is malformed.
    #[error("route {index}: path `{path}`: {reason}")]
    Pattern {
        /// The route's position (0-based).
        index: usize,
        /// The pattern.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A method is not an HTTP method token.
    #[error("route {index}: `{method}` is not an HTTP method")]
    Method {
        /// The route's position.
        index: usize,
        /// The method.
        method: String,
    },
    /// Scopes do not parse, or a route admits nobody.
    #[error("route {index}: scopes: {error}")]
    Scopes {
        /// The route's position.
        index: usize,
        /// Why.
        error: ScopeError,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    One,
    Rest,
}

/// One compiled route.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    methods: Vec<String>,
    pattern: Vec<Segment>,
    text: String,
    scopes: ScopeSet,
}

impl Route {
    fn matches(&self, method: &str, segments: &[&str]) -> bool {
        let method_ok = self.methods.is_empty()
            || self
                .methods
                .iter()
                .any(|allowed| allowed == method || (allowed == "GET" && method == "HEAD"));
        method_ok && segments_match(&self.pattern, segments)
    }
}

fn segments_match(pattern: &[Segment], segments: &[&str]) -> bool {
    match (pattern.split_first(), segments.split_first()) {
        (Some((Segment::Rest, _)), _) => true,
        (None, None) => true,
        (Some((Segment::One, pattern)), Some((_, segments))) => segments_match(pattern, segments),
        (Some((Segment::Literal(literal), pattern)), Some((segment, segments))) => {
            literal == segment && segments_match(pattern, segments)
        }
        _ => false,
    }
}

/// What a request needs: the route that matched (its pattern, or `None` for `unmatched`) and the
/// scopes that admit it (empty: nothing does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement<'a> {
    /// The matched route's pattern; `None` when no route matched.
    pub route: Option<&'a str>,
    /// The scopes that admit the request, any one of them.
    pub scopes: &'a ScopeSet,
}

impl Requirement<'_> {
    /// Whether `held` admits the request.
    pub fn admits(&self, held: &ScopeSet) -> bool {
        self.scopes.iter().any(|scope| held.contains(scope.as_str()))
    }
}

/// The compiled route table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    routes: Vec<Route>,
    unmatched: ScopeSet,
}

impl RouteTable {
    /// Compiles `routes`, in order; `unmatched` is what a request no route matches needs (space-separated
    /// scopes; empty refuses such requests).
    pub fn new(routes: &[RouteSpec], unmatched: &str) -> Result<Self, RouteError> {
        let routes = routes
            .iter()
            .enumerate()
            .map(|(index, spec)| compile(index, spec))
            .collect::<Result<Vec<_>, _>>()?;
        let unmatched = ScopeSet::parse(unmatched).map_err(|error| RouteError::Scopes {
            index: routes.len(),
            error,
        })?;
        Ok(Self { routes, unmatched })
    }

    /// The table keyless uses when the operator configures none: the inference endpoints
    /// (`/v1/messages`, `/v1/messages/**`, `/v1/complete`) admit `workspace:inference` or
    /// `workspace:developer`; everything else needs `workspace:developer`, as an API key of the reference
    /// API can do everything.
    pub fn builtin() -> Self {
        let inference = format!("{WORKSPACE_INFERENCE} {WORKSPACE_DEVELOPER}");
        let specs: Vec<RouteSpec> = ["/v1/messages", "/v1/messages/**", "/v1/complete"]
            .into_iter()
            .map(|path| RouteSpec {
                methods: Vec::new(),
                path: path.to_owned(),
                scopes: inference.clone(),
            })
            .collect();
        // The built-in patterns are valid by construction; an empty table would refuse everything.
        Self::new(&specs, WORKSPACE_DEVELOPER).unwrap_or(Self {
            routes: Vec::new(),
            unmatched: ScopeSet::default(),
        })
    }

    /// What a request with `method` to the canonical `path` needs (see [`canonical_path`]).
    pub fn requirement(&self, method: &str, path: &str) -> Requirement<'_> {
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        match self.routes.iter().find(|route| route.matches(method, &segments)) {
            Some(route) => Requirement {
                route: Some(&route.text),
                scopes: &route.scopes,
            },
            None => Requirement {
                route: None,
                scopes: &self.unmatched,
            },
        }
    }

    /// Every scope the table names, each once, in table order: the operator's scope vocabulary.
    pub fn scopes(&self) -> ScopeSet {
        let mut all = String::new();
        for scopes in self.routes.iter().map(|route| &route.scopes).chain([&self.unmatched]) {
            all.push(' ');
            all.push_str(&scopes.to_string());
        }
        ScopeSet::parse(&all).unwrap_or_default()
    }
}

fn compile(index: usize, spec: &RouteSpec) -> Result<Route, RouteError> {
    let pattern_error = |reason| RouteError::Pattern {
        index,
        path: spec.path.clone(),
        reason,
    };
    let Some(rest) = spec.path.strip_prefix('/') else {
        return Err(pattern_error("must start with `/`"));
    };
    if canonical_path(&spec.path).as_deref() != Ok(spec.path.as_str()) {
        return Err(pattern_error(
            "must be a canonical path (no query, `.` or `..` segments, empty segments or percent-encoding)",
        ));
    }
    let raw: Vec<&str> = rest.split('/').collect();
    let mut pattern = Vec::with_capacity(raw.len());
    for (position, segment) in raw.iter().enumerate() {
        pattern.push(match *segment {
            "**" if position + 1 == raw.len() => Segment::Rest,
            "**" => return Err(pattern_error("`**` may only be the last segment")),
            "*" => Segment::One,
            literal if literal.contains('*') => {
                return Err(pattern_error("`*` must be a whole segment"));
            }
            literal => Segment::Literal(literal.to_owned()),
        });
    }
    let mut methods = Vec::with_capacity(spec.methods.len());
    for method in &spec.methods {
        let valid = !method.is_empty() && method.bytes().all(|b| b.is_ascii_alphabetic());
        if !valid {
            return Err(RouteError::Method {
                index,
                method: method.clone(),
            });
        }
        methods.push(method.to_ascii_uppercase());
    }
    let scopes = ScopeSet::parse(&spec.scopes).map_err(|error| RouteError::Scopes { index, error })?;
    if scopes.is_empty() {
        return Err(RouteError::Scopes {
            index,
            error: ScopeError::Empty,
        });
    }
    Ok(Route {
        methods,
        pattern,
        text: spec.path.clone(),
        scopes,
    })
}

/// Why a request path is refused before any route is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not an absolute path.
    #[error("the path must start with `/`")]
    NotAbsolute,
    /// Longer than [`MAX_PATH_LEN`].
    #[error("the path is too long")]
    TooLong,
    /// A `.` or `..` segment, or an empty one.
    #[error("the path has a `.`, `..` or empty segment")]
    DotOrEmptySegment,
    /// Malformed percent-encoding, or an encoded `/`, `\` or control character.
    #[error("the path has malformed or ambiguous percent-encoding")]
    Encoding,
    /// A byte outside printable ASCII, or a backslash.
    #[error("the path has a character outside printable ASCII, or a backslash")]
    Character,
}

/// The canonical form of a request target's path (see the module documentation), or why it is refused.
pub fn canonical_path(target: &str) -> Result<String, PathError> {
    let path = target.split_once(['?', '#']).map_or(target, |(path, _)| path);
    if path.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut idx = 0;
    while let Some(&byte) = bytes.get(idx) {
        match byte {
            b'%' => {
                let decoded = bytes
                    .get(idx + 1..idx + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    .ok_or(PathError::Encoding)?;
                if decoded.is_ascii_alphanumeric() || matches!(decoded, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(decoded));
                } else if matches!(decoded, b'/' | b'\\') || !(0x20..0x7F).contains(&decoded) {
                    return Err(PathError::Encoding);
                } else {
                    // A reserved character stays encoded, in upper case (RFC 3986 §6.2.2.1).
                    out.push('%');
                    out.push_str(&format!("{decoded:02X}"));
                }
                idx += 3;
            }
            b'\\' => return Err(PathError::Character),
            0x21..=0x7E => {
                out.push(char::from(byte));
                idx += 1;
            }
            _ => return Err(PathError::Character),
        }
    }
    if out != "/"
        && out
            .split('/')
            .skip(1)
            .any(|segment| matches!(segment, "" | "." | ".."))
    {
        return Err(PathError::DotOrEmptySegment);
    }
    Ok(out)
}

impl fmt::Display for Requirement<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.scopes)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;

    fn check_canonical(target: &str, expect: Result<&str, PathError>) {
        assert_eq!(canonical_path(target).as_deref().map_err(|e| *e), expect, "{target:?}");
    }

    #[test]
    fn canonical_paths() {
        check_canonical("/", Ok("/"));
        check_canonical("/v1/messages?beta=true", Ok("/v1/messages"));
        check_canonical("/v1/%61dmin/x", Ok("/v1/admin/x"));
        check_canonical("/v1/files/a%3fb", Ok("/v1/files/a%3Fb"));
        check_canonical("/v1/files/", Err(PathError::DotOrEmptySegment));
        check_canonical("/v1//admin", Err(PathError::DotOrEmptySegment));
        check_canonical("/v1/public/../admin", Err(PathError::DotOrEmptySegment));
        check_canonical("/v1/public/%2e%2E/admin", Err(PathError::DotOrEmptySegment));
        check_canonical("/v1/./admin", Err(PathError::DotOrEmptySegment));
        check_canonical("/v1/a%2Fb", Err(PathError::Encoding));
        check_canonical("/v1/a%5cb", Err(PathError::Encoding));
        check_canonical("/v1/a%00b", Err(PathError::Encoding));
        check_canonical("/v1/a%zz", Err(PathError::Encoding));
        check_canonical("/v1/a%2", Err(PathError::Encoding));
        check_canonical("/v1/a\\b", Err(PathError::Character));
        check_canonical("/v1/é", Err(PathError::Character));
        check_canonical("/v1/a b", Err(PathError::Character));
        check_canonical("v1/messages", Err(PathError::NotAbsolute));
        check_canonical("http://host/v1", Err(PathError::NotAbsolute));
        check_canonical(&format!("/{}", "a".repeat(MAX_PATH_LEN)), Err(PathError::TooLong));
    }

    fn table(routes: &[(&[&str], &str, &str)], unmatched: &str) -> RouteTable {
        let specs: Vec<RouteSpec> = routes
            .iter()
            .map(|(methods, path, scopes)| RouteSpec {
                methods: methods.iter().map(|m| (*m).to_owned()).collect(),
                path: (*path).to_owned(),
                scopes: (*scopes).to_owned(),
            })
            .collect();
        RouteTable::new(&specs, unmatched).unwrap()
    }

    fn check(table: &RouteTable, method: &str, path: &str, held: &str, expect: (Option<&str>, bool)) {
        let requirement = table.requirement(method, path);
        let held = ScopeSet::parse(held).unwrap();
        assert_eq!(
            (requirement.route, requirement.admits(&held)),
            expect,
            "{method} {path} with {held}"
        );
    }

    #[test]
    fn first_matching_route_decides() {
        let t = table(
            &[
                (&["GET"], "/v1/files/**", "files:read workspace:developer"),
                (&["post", "DELETE"], "/v1/files/*", "files:write"),
                (&[], "/v1/admin/**", "billing:admin"),
            ],
            "workspace:developer",
        );
        check(&t, "GET", "/v1/files", "files:read", (Some("/v1/files/**"), true));
        check(&t, "HEAD", "/v1/files/f1", "files:read", (Some("/v1/files/**"), true));
        check(&t, "GET", "/v1/files/f1/content", "workspace:developer", (Some("/v1/files/**"), true));
        check(&t, "POST", "/v1/files/f1", "files:read", (Some("/v1/files/*"), false));
        check(&t, "DELETE", "/v1/files/f1", "files:write", (Some("/v1/files/*"), true));
        check(&t, "POST", "/v1/files/f1/x", "files:write", (None, false));
        check(&t, "PUT", "/v1/admin", "workspace:developer", (Some("/v1/admin/**"), false));
        check(&t, "GET", "/v1/models", "workspace:developer", (None, true));
        check(&t, "GET", "/v1/models", "files:read", (None, false));
    }

    #[test]
    fn an_empty_unmatched_refuses_unlisted_routes() {
        let t = table(&[(&["GET"], "/v1/models", "models:read")], "");
        check(&t, "GET", "/v1/models", "models:read", (Some("/v1/models"), true));
        check(&t, "GET", "/v1/other", "workspace:developer org:admin", (None, false));
    }

    #[test]
    fn builtin_table() {
        let t = RouteTable::builtin();
        check(&t, "POST", "/v1/messages", "workspace:inference", (Some("/v1/messages"), true));
        check(&t, "POST", "/v1/messages/count_tokens", "workspace:inference", (Some("/v1/messages/**"), true));
        check(&t, "POST", "/v1/complete", "workspace:developer", (Some("/v1/complete"), true));
        check(&t, "GET", "/v1/files", "workspace:inference", (None, false));
        check(&t, "GET", "/v1/files", "workspace:developer", (None, true));
        check(&t, "POST", "/v1/messages", "org:admin", (Some("/v1/messages"), false));
        assert_eq!(t.scopes().to_string(), "workspace:inference workspace:developer");
    }

    #[test]
    fn malformed_tables_are_refused() {
        let bad = |path: &str, methods: &[&str], scopes: &str| {
            RouteTable::new(
                &[RouteSpec {
                    methods: methods.iter().map(|m| (*m).to_owned()).collect(),
                    path: path.to_owned(),
                    scopes: scopes.to_owned(),
                }],
                "",
            )
            .unwrap_err()
            .to_string()
        };
        assert_eq!(bad("v1/x", &[], "a"), "route 0: path `v1/x`: must start with `/`");
        assert!(bad("/v1/**/x", &[], "a").contains("`**` may only be the last segment"));
        assert!(bad("/v1/a*", &[], "a").contains("`*` must be a whole segment"));
        assert!(bad("/v1/../x", &[], "a").contains("canonical"));
        assert!(bad("/v1/%61", &[], "a").contains("canonical"));
        assert_eq!(bad("/v1/x", &["GE T"], "a"), "route 0: `GE T` is not an HTTP method");
        assert_eq!(bad("/v1/x", &[], ""), "route 0: scopes: must not be empty");
        assert!(bad("/v1/x", &[], "a\"b").starts_with("route 0: scopes:"));
    }
}
