//! `GET /v1/openapi.json`: the OpenAPI 3.1 document of every route, generated at start-up from
//! [`OPERATIONS`].
//!
//! [`OPERATIONS`] is the one description of the HTTP surface: method, path, operation ID, summary,
//! who may call it, its query parameters and its body's fields. Path parameters come from the path
//! template (`{id}`); the error responses from the caller kind (the Admin API's `{type, error}` shape, or
//! RFC 6749's for the OAuth endpoints). The integration test `openapi` holds the table to the router:
//! every `.route(...)` path in `src/http` must be documented, every documented method must be served,
//! and every other method on a documented path must answer 405.

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::state::AppState;

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// Anyone (health, metadata, keys, the token endpoint itself).
    Anyone,
    /// A bearer token with `org:admin` (Admin API errors).
    Admin,
    /// A bearer token with `org:admin` or `oauth:introspect`, answered in RFC 6749's error shape
    /// (introspection).
    Introspector,
    /// Any credential of the protected API (`x-api-key` or a bearer token), checked against the route
    /// table (the forward-auth check).
    Credential,
}

/// A body field's JSON type.
#[derive(Debug, Clone, Copy)]
enum Type {
    String,
    NullableString,
    Integer,
    Boolean,
    Object,
}

/// A body field: name, type, required.
type Field = (&'static str, Type, bool);

/// An operation's request body.
#[derive(Debug, Clone, Copy)]
enum Body {
    None,
    /// `application/json` with these fields (unknown fields are refused).
    Json(&'static [Field]),
    /// `application/x-www-form-urlencoded` with these fields.
    Form(&'static [Field]),
    /// The token endpoint: either of the two.
    JsonOrForm(&'static [Field]),
}

/// One operation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Operation {
    /// `get`, `post` or `delete`.
    pub(crate) method: &'static str,
    /// The path template, as routed.
    pub(crate) path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    caller: Caller,
    query: &'static [&'static str],
    body: Body,
}

const LIST_QUERY: &[&str] = &["limit", "page", "include_archived"];
const WORKSPACE_CREATE: &[Field] = &[("name", Type::String, true)];
const WORKSPACE_UPDATE: &[Field] = &[("name", Type::String, false)];
const SERVICE_ACCOUNT_CREATE: &[Field] = &[
    ("name", Type::String, true),
    ("description", Type::NullableString, false),
    ("organization_role", Type::String, false),
];
const SERVICE_ACCOUNT_UPDATE: &[Field] = &[
    ("name", Type::String, false),
    ("description", Type::NullableString, false),
    ("organization_role", Type::String, false),
];
const MEMBERSHIP: &[Field] = &[
    ("workspace_id", Type::String, false),
    ("workspace_role", Type::String, true),
];
const ISSUER_CREATE: &[Field] = &[
    ("name", Type::String, true),
    ("issuer_url", Type::String, true),
    ("jwks", Type::Object, false),
    ("check_jti", Type::Boolean, false),
    ("max_jwt_lifetime_seconds", Type::Integer, false),
];
const ISSUER_UPDATE: &[Field] = &[
    ("name", Type::String, false),
    ("issuer_url", Type::String, false),
    ("jwks", Type::Object, false),
    ("check_jti", Type::Boolean, false),
    ("max_jwt_lifetime_seconds", Type::Integer, false),
];
const ISSUER_VERIFY: &[Field] = &[("issuer_url", Type::String, true), ("jwks", Type::Object, false)];
const RULE_CREATE: &[Field] = &[
    ("name", Type::String, true),
    ("description", Type::NullableString, false),
    ("issuer_id", Type::String, true),
    ("match", Type::Object, true),
    ("target", Type::Object, true),
    ("oauth_scope", Type::String, false),
    ("token_lifetime_seconds", Type::Integer, false),
    ("workspace_id", Type::String, false),
    ("mode", Type::String, false),
];
const RULE_UPDATE: &[Field] = &[
    ("name", Type::String, false),
    ("description", Type::NullableString, false),
    ("issuer_id", Type::String, false),
    ("match", Type::Object, false),
    ("target", Type::Object, false),
    ("oauth_scope", Type::String, false),
    ("token_lifetime_seconds", Type::Integer, false),
    ("mode", Type::String, false),
];
const RULE_WORKSPACE: &[Field] = &[("workspace_id", Type::String, true)];
const RULE_SIMULATE: &[Field] = &[
    ("token", Type::String, false),
    ("claims", Type::Object, false),
    ("verify", Type::Boolean, false),
    ("rule_id", Type::String, false),
    ("issuer_id", Type::String, false),
    ("workspace_id", Type::String, false),
    ("scope", Type::String, false),
    ("service_account_id", Type::String, false),
];
const RULE_REPLAY: &[Field] = &[
    ("rule", Type::Object, false),
    ("rule_id", Type::String, false),
    ("limit", Type::Integer, false),
];
const TOKEN_REQUEST: &[Field] = &[
    ("grant_type", Type::String, true),
    ("assertion", Type::String, false),
    ("subject_token", Type::String, false),
    ("subject_token_type", Type::String, false),
    ("requested_token_type", Type::String, false),
    ("audience", Type::String, false),
    ("federation_rule_id", Type::String, false),
    ("organization_id", Type::String, false),
    ("service_account_id", Type::String, false),
    ("workspace_id", Type::String, false),
    ("scope", Type::String, false),
];
const TOKEN_ONLY: &[Field] = &[("token", Type::String, true), ("token_type_hint", Type::String, false)];

const fn op(
    method: &'static str,
    path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
) -> Operation {
    Operation {
        method,
        path,
        id,
        tag,
        summary,
        caller: Caller::Admin,
        query: &[],
        body: Body::None,
    }
}

const fn public(mut operation: Operation) -> Operation {
    operation.caller = Caller::Anyone;
    operation
}

const fn query(mut operation: Operation, names: &'static [&'static str]) -> Operation {
    operation.query = names;
    operation
}

const fn body(mut operation: Operation, body: Body) -> Operation {
    operation.body = body;
    operation
}

const fn forward_auth(mut operation: Operation) -> Operation {
    operation.caller = Caller::Credential;
    operation
}

const API_KEY_CREATE: &[Field] = &[
    ("name", Type::String, true),
    ("workspace_id", Type::String, false),
    ("oauth_scope", Type::String, false),
    ("expires_at", Type::String, false),
];
const API_KEY_UPDATE: &[Field] = &[("name", Type::String, false), ("status", Type::String, false)];
const AUTHORIZE: &str = "/v1/authorize";
const AUTHORIZE_ENVOY: &str = "/v1/authorize/{*path}";
const AUTHORIZE_SUMMARY: &str = "Forward-auth check of a request to the protected API (nginx: X-Original-Method/X-Original-URI; \
     Traefik: X-Forwarded-Method/X-Forwarded-Uri); 200 with keyless-* identity headers, or 401/403/429 with \
     keyless-reason";
const AUTHORIZE_ENVOY_SUMMARY: &str =
    "Forward-auth check, Envoy ext_authz form: the original method, and the original path after /v1/authorize";
const API_KEYS: &str = "/v1/organizations/api_keys";
const WORKSPACES: &str = "/v1/organizations/workspaces";
const SA: &str = "/v1/organizations/service_accounts";
const ISSUERS: &str = "/v1/organizations/federation_issuers";
const RULES: &str = "/v1/organizations/federation_rules";

/// Every operation the server routes.
pub(crate) const OPERATIONS: &[Operation] = &[
    public(op(
        "get",
        "/healthz",
        "healthz",
        "operations",
        "Liveness: the process answers",
    )),
    public(op(
        "get",
        "/readyz",
        "readyz",
        "operations",
        "Readiness: the database answers too",
    )),
    public(op(
        "get",
        "/metrics",
        "metrics",
        "operations",
        "Prometheus metrics (text exposition format)",
    )),
    public(op("get", "/v1/openapi.json", "openapi", "operations", "This document")),
    public(op(
        "get",
        "/.well-known/jwks.json",
        "jwks",
        "oauth",
        "The public keys of keyless's own signing keys (RFC 7517)",
    )),
    public(op(
        "get",
        "/.well-known/oauth-authorization-server",
        "authorization_server_metadata",
        "oauth",
        "Authorization server metadata (RFC 8414), with the default audience subject tokens must carry",
    )),
    public(body(
        op(
            "post",
            "/v1/oauth/token",
            "token",
            "oauth",
            "Exchange a workload's OIDC token for an access token: JSON or form jwt-bearer (RFC 7523), form token exchange (RFC 8693, audience = the federation rule ID)",
        ),
        Body::JsonOrForm(TOKEN_REQUEST),
    )),
    Operation {
        caller: Caller::Introspector,
        ..body(
            op(
                "post",
                "/v1/oauth/introspect",
                "introspect",
                "oauth",
                "Introspect an access token (RFC 7662); needs org:admin or oauth:introspect (the least privilege, for resource servers)",
            ),
            Body::Form(TOKEN_ONLY),
        )
    },
    public(body(
        op(
            "post",
            "/v1/oauth/revoke",
            "revoke",
            "oauth",
            "Revoke an access token (RFC 7009); holding the token is the right to revoke it",
        ),
        Body::Form(TOKEN_ONLY),
    )),
    query(
        op(
            "get",
            "/v1/organizations/activities",
            "activities_list",
            "activities",
            "The activity feed, newest first",
        ),
        &[
            "type",
            "actor_id",
            "resource_id",
            "request_id",
            "created_after",
            "created_before",
            "after_id",
            "before_id",
            "limit",
        ],
    ),
    forward_auth(op("get", AUTHORIZE, "authorize_get", "authorize", AUTHORIZE_SUMMARY)),
    forward_auth(op("post", AUTHORIZE, "authorize_post", "authorize", AUTHORIZE_SUMMARY)),
    forward_auth(op("put", AUTHORIZE, "authorize_put", "authorize", AUTHORIZE_SUMMARY)),
    forward_auth(op(
        "patch",
        AUTHORIZE,
        "authorize_patch",
        "authorize",
        AUTHORIZE_SUMMARY,
    )),
    forward_auth(op(
        "delete",
        AUTHORIZE,
        "authorize_delete",
        "authorize",
        AUTHORIZE_SUMMARY,
    )),
    forward_auth(op(
        "get",
        AUTHORIZE_ENVOY,
        "authorize_path_get",
        "authorize",
        AUTHORIZE_ENVOY_SUMMARY,
    )),
    forward_auth(op(
        "post",
        AUTHORIZE_ENVOY,
        "authorize_path_post",
        "authorize",
        AUTHORIZE_ENVOY_SUMMARY,
    )),
    forward_auth(op(
        "put",
        AUTHORIZE_ENVOY,
        "authorize_path_put",
        "authorize",
        AUTHORIZE_ENVOY_SUMMARY,
    )),
    forward_auth(op(
        "patch",
        AUTHORIZE_ENVOY,
        "authorize_path_patch",
        "authorize",
        AUTHORIZE_ENVOY_SUMMARY,
    )),
    forward_auth(op(
        "delete",
        AUTHORIZE_ENVOY,
        "authorize_path_delete",
        "authorize",
        AUTHORIZE_ENVOY_SUMMARY,
    )),
    body(
        op(
            "post",
            API_KEYS,
            "api_keys_create",
            "api_keys",
            "Create a workspace API key (the answer's `key` is shown this once)",
        ),
        Body::Json(API_KEY_CREATE),
    ),
    query(
        op("get", API_KEYS, "api_keys_list", "api_keys", "List API keys"),
        &["limit", "page", "include_archived", "workspace_id"],
    ),
    op(
        "get",
        "/v1/organizations/api_keys/{id}",
        "api_keys_get",
        "api_keys",
        "Get an API key (never the key itself)",
    ),
    body(
        op(
            "post",
            "/v1/organizations/api_keys/{id}",
            "api_keys_update",
            "api_keys",
            "Update an API key (partial: name, status active/inactive)",
        ),
        Body::Json(API_KEY_UPDATE),
    ),
    op(
        "post",
        "/v1/organizations/api_keys/{id}/archive",
        "api_keys_archive",
        "api_keys",
        "Archive (revoke) an API key, for good",
    ),
    query(
        op(
            "get",
            "/v1/organizations/usage",
            "usage_get",
            "usage",
            "Requests per principal and workspace over a time range (hourly counts)",
        ),
        &["starting_at", "ending_at", "workspace_id", "principal_id"],
    ),
    body(
        op(
            "post",
            WORKSPACES,
            "workspaces_create",
            "workspaces",
            "Create a workspace",
        ),
        Body::Json(WORKSPACE_CREATE),
    ),
    query(
        op("get", WORKSPACES, "workspaces_list", "workspaces", "List workspaces"),
        LIST_QUERY,
    ),
    op(
        "get",
        "/v1/organizations/workspaces/{id}",
        "workspaces_get",
        "workspaces",
        "Get a workspace (`default` names the default workspace)",
    ),
    body(
        op(
            "post",
            "/v1/organizations/workspaces/{id}",
            "workspaces_update",
            "workspaces",
            "Update a workspace (partial: rename)",
        ),
        Body::Json(WORKSPACE_UPDATE),
    ),
    op(
        "post",
        "/v1/organizations/workspaces/{id}/archive",
        "workspaces_archive",
        "workspaces",
        "Archive a workspace (400 for the default one; 409 while live rules or memberships use it)",
    ),
    body(
        op(
            "post",
            SA,
            "service_accounts_create",
            "service_accounts",
            "Create a service account",
        ),
        Body::Json(SERVICE_ACCOUNT_CREATE),
    ),
    query(
        op(
            "get",
            SA,
            "service_accounts_list",
            "service_accounts",
            "List service accounts",
        ),
        LIST_QUERY,
    ),
    op(
        "get",
        "/v1/organizations/service_accounts/{id}",
        "service_accounts_get",
        "service_accounts",
        "Get a service account",
    ),
    body(
        op(
            "post",
            "/v1/organizations/service_accounts/{id}",
            "service_accounts_update",
            "service_accounts",
            "Update a service account (partial)",
        ),
        Body::Json(SERVICE_ACCOUNT_UPDATE),
    ),
    op(
        "post",
        "/v1/organizations/service_accounts/{id}/archive",
        "service_accounts_archive",
        "service_accounts",
        "Archive a service account",
    ),
    op(
        "get",
        "/v1/organizations/service_accounts/{id}/workspaces",
        "service_account_workspaces_list",
        "service_accounts",
        "List a service account's workspace memberships",
    ),
    body(
        op(
            "post",
            "/v1/organizations/service_accounts/{id}/workspaces",
            "service_account_workspaces_add",
            "service_accounts",
            "Add a workspace membership",
        ),
        Body::Json(MEMBERSHIP),
    ),
    op(
        "get",
        "/v1/organizations/service_accounts/{id}/workspaces/{workspace_id}",
        "service_account_workspaces_get",
        "service_accounts",
        "Get a workspace membership",
    ),
    body(
        op(
            "post",
            "/v1/organizations/service_accounts/{id}/workspaces/{workspace_id}",
            "service_account_workspaces_update",
            "service_accounts",
            "Set a workspace membership's role",
        ),
        Body::Json(MEMBERSHIP),
    ),
    op(
        "delete",
        "/v1/organizations/service_accounts/{id}/workspaces/{workspace_id}",
        "service_account_workspaces_remove",
        "service_accounts",
        "Remove a workspace membership",
    ),
    body(
        op(
            "post",
            ISSUERS,
            "federation_issuers_create",
            "federation_issuers",
            "Create a federation issuer",
        ),
        Body::Json(ISSUER_CREATE),
    ),
    query(
        op(
            "get",
            ISSUERS,
            "federation_issuers_list",
            "federation_issuers",
            "List federation issuers",
        ),
        LIST_QUERY,
    ),
    body(
        op(
            "post",
            "/v1/organizations/federation_issuers/verify",
            "federation_issuers_verify",
            "federation_issuers",
            "Dry-run discovery and the JWKS fetch for an issuer configuration; creates nothing",
        ),
        Body::Json(ISSUER_VERIFY),
    ),
    op(
        "get",
        "/v1/organizations/federation_issuers/{id}",
        "federation_issuers_get",
        "federation_issuers",
        "Get a federation issuer",
    ),
    body(
        op(
            "post",
            "/v1/organizations/federation_issuers/{id}",
            "federation_issuers_update",
            "federation_issuers",
            "Update a federation issuer (partial; resumes paused polling)",
        ),
        Body::Json(ISSUER_UPDATE),
    ),
    op(
        "post",
        "/v1/organizations/federation_issuers/{id}/archive",
        "federation_issuers_archive",
        "federation_issuers",
        "Archive a federation issuer (409 while live rules use it)",
    ),
    body(
        op(
            "post",
            RULES,
            "federation_rules_create",
            "federation_rules",
            "Create a federation rule",
        ),
        Body::Json(RULE_CREATE),
    ),
    query(
        op(
            "get",
            RULES,
            "federation_rules_list",
            "federation_rules",
            "List federation rules",
        ),
        &["limit", "page", "include_archived", "issuer_id"],
    ),
    body(
        op(
            "post",
            "/v1/organizations/federation_rules/simulate",
            "federation_rules_simulate",
            "federation_rules",
            "Simulate an exchange: every check of a rule (or of an issuer's rules) against a token or a claim set, and the verdict; mints nothing",
        ),
        Body::Json(RULE_SIMULATE),
    ),
    body(
        op(
            "post",
            "/v1/organizations/federation_rules/validate",
            "federation_rules_validate",
            "federation_rules",
            "Check a rule as a create would (refusals and lint warnings); creates nothing",
        ),
        Body::Json(RULE_CREATE),
    ),
    body(
        op(
            "post",
            "/v1/organizations/federation_rules/replay",
            "federation_rules_replay",
            "federation_rules",
            "Replay an issuer's most recent refused exchanges through a draft or stored rule: which would now pass",
        ),
        Body::Json(RULE_REPLAY),
    ),
    op(
        "get",
        "/v1/organizations/federation_rules/{id}",
        "federation_rules_get",
        "federation_rules",
        "Get a federation rule",
    ),
    body(
        op(
            "post",
            "/v1/organizations/federation_rules/{id}",
            "federation_rules_update",
            "federation_rules",
            "Update a federation rule (partial)",
        ),
        Body::Json(RULE_UPDATE),
    ),
    op(
        "post",
        "/v1/organizations/federation_rules/{id}/archive",
        "federation_rules_archive",
        "federation_rules",
        "Archive a federation rule; exchanges through it stop at once",
    ),
    op(
        "get",
        "/v1/organizations/federation_rules/{id}/workspaces",
        "federation_rule_workspaces_list",
        "federation_rules",
        "List the workspaces a rule is enabled in",
    ),
    body(
        op(
            "post",
            "/v1/organizations/federation_rules/{id}/workspaces",
            "federation_rule_workspaces_add",
            "federation_rules",
            "Enable a rule in a workspace",
        ),
        Body::Json(RULE_WORKSPACE),
    ),
    op(
        "get",
        "/v1/organizations/federation_rules/{id}/workspaces/{workspace_id}",
        "federation_rule_workspaces_get",
        "federation_rules",
        "Get a rule's workspace enablement",
    ),
    op(
        "delete",
        "/v1/organizations/federation_rules/{id}/workspaces/{workspace_id}",
        "federation_rule_workspaces_remove",
        "federation_rules",
        "Disable a rule in a workspace",
    ),
];

pub(super) fn routes(state: &AppState) -> Router<AppState> {
    let document = Arc::new(document(&state.public_url));
    Router::new().route(
        "/v1/openapi.json",
        get(move || async move { Json(document.as_ref().clone()) }),
    )
}

/// The document for a server reachable at `public_url`.
fn document(public_url: &str) -> Value {
    let mut paths = Map::new();
    for operation in OPERATIONS {
        let entry = paths.entry(operation.path).or_insert_with(|| json!({}));
        if let Some(methods) = entry.as_object_mut() {
            methods.insert(operation.method.to_owned(), operation_json(operation));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "keyless",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Workload identity federation: exchange a workload's OIDC token for a short-lived access token, and administer workspaces, issuers, service accounts and federation rules. See docs/api.md.",
        },
        "servers": [{ "url": public_url }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "description": "A keyless access token holding org:admin (introspection also accepts oauth:introspect)" } },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["type", "error"],
                    "properties": {
                        "type": { "const": "error" },
                        "error": {
                            "type": "object",
                            "required": ["type", "message"],
                            "properties": { "type": { "type": "string" }, "message": { "type": "string" } },
                        },
                        "request_id": { "type": "string" },
                    },
                },
                "OAuthError": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": { "type": "string", "description": "RFC 6749 error" },
                        "error_code": { "type": "string", "description": "keyless's stable code: which check failed" },
                        "error_description": { "type": "string" },
                        "request_id": { "type": "string" },
                    },
                },
            },
        },
    })
}

fn operation_json(operation: &Operation) -> Value {
    let mut parameters: Vec<Value> = path_parameters(operation.path)
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    parameters.extend(
        operation
            .query
            .iter()
            .map(|name| json!({ "name": name, "in": "query", "required": false, "schema": { "type": "string" } })),
    );
    let mut responses = Map::new();
    responses.insert("200".to_owned(), json!({ "description": "Success" }));
    let errors: &[(&str, &str)] = match operation.caller {
        Caller::Anyone if operation.body.is_none() => &[],
        Caller::Anyone => &[("400", "OAuthError"), ("503", "OAuthError")],
        Caller::Introspector => &[
            ("400", "OAuthError"),
            ("401", "OAuthError"),
            ("403", "OAuthError"),
            ("503", "OAuthError"),
        ],
        Caller::Admin => &[
            ("400", "Error"),
            ("401", "Error"),
            ("403", "Error"),
            ("404", "Error"),
            ("409", "Error"),
            ("500", "Error"),
        ],
        Caller::Credential => &[
            ("400", "Error"),
            ("401", "Error"),
            ("403", "Error"),
            ("429", "Error"),
            ("503", "Error"),
        ],
    };
    for (status, schema) in errors {
        responses.insert(
            (*status).to_owned(),
            json!({
                "description": "Refused",
                "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } },
            }),
        );
    }
    let mut object = json!({
        "operationId": operation.id,
        "summary": operation.summary,
        "tags": [operation.tag],
        "parameters": parameters,
        "responses": responses,
        "security": if operation.caller == Caller::Anyone { json!([]) } else { json!([{ "bearer": [] }]) },
    });
    if let (Some(content), Some(fields)) = (request_content(operation.body), object.as_object_mut()) {
        fields.insert(
            "requestBody".to_owned(),
            json!({ "required": true, "content": content }),
        );
    }
    object
}

fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

impl Body {
    fn is_none(self) -> bool {
        matches!(self, Body::None)
    }
}

fn request_content(body: Body) -> Option<Value> {
    // JSON bodies of the Admin API refuse unknown fields; the OAuth endpoints ignore unknown
    // parameters (RFC 6749 section 3.2).
    let (json, form, open) = match body {
        Body::None => return None,
        Body::Json(fields) => (Some(fields), None, false),
        Body::Form(fields) => (None, Some(fields), true),
        Body::JsonOrForm(fields) => (Some(fields), Some(fields), true),
    };
    let mut content = Map::new();
    if let Some(fields) = json {
        content.insert("application/json".to_owned(), json!({ "schema": schema(fields, open) }));
    }
    if let Some(fields) = form {
        content.insert(
            "application/x-www-form-urlencoded".to_owned(),
            json!({ "schema": schema(fields, true) }),
        );
    }
    Some(Value::Object(content))
}

fn schema(fields: &[Field], open: bool) -> Value {
    let properties: Map<String, Value> = fields
        .iter()
        .map(|(name, kind, _)| {
            let schema = match kind {
                Type::String => json!({ "type": "string" }),
                Type::NullableString => json!({ "type": ["string", "null"] }),
                Type::Integer => json!({ "type": "integer" }),
                Type::Boolean => json!({ "type": "boolean" }),
                Type::Object => json!({ "type": "object" }),
            };
            ((*name).to_owned(), schema)
        })
        .collect();
    let required: Vec<&str> = fields
        .iter()
        .filter(|(_, _, required)| *required)
        .map(|(name, _, _)| *name)
        .collect();
    json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": open })
}
