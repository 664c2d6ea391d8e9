//! The Admin API under `/v1/organizations/`: `workspaces`, `service_accounts`, `federation_issuers`,
//! `federation_rules`, `api_keys`, and the `usage` summary (see `docs/api.md`). Every route needs a bearer token with `org:admin` of this
//! server's organization (`http::auth::AdminCaller`).
//!
//! Parts: [`routes`], the list query parser ([`list_params`]), then one module per object
//! (`workspaces`, `service_accounts`, `issuers`, `rules`) whose handlers extract, call one
//! `service::admin` function and answer its JSON (200) or its error (`ApiError`).
//!
//! List query parameters: `limit` (1–100, default 20), `page` (the `next_page` of the previous page),
//! `include_archived` (`true`/`false`), for rules `issuer_id`, for API keys `workspace_id`. Unknown or repeated parameters are
//! refused, so a typo never silently widens or narrows a listing.

mod api_keys;
mod issuers;
mod rules;
mod service_accounts;
mod workspaces;

use axum::Router;
use keyless_store::{Cursor, Limit, ListQuery};

use crate::http::error::{self, ApiError};
use crate::service::admin::ListParams;
use crate::state::AppState;

/// The Admin API's routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .merge(workspaces::routes())
        .merge(service_accounts::routes())
        .merge(issuers::routes())
        .merge(rules::routes())
        .merge(api_keys::routes())
        .method_not_allowed_fallback(error::method_not_allowed)
}

/// Parses a list's query string; `filter` names the one filter parameter the list takes, if any.
fn list_params(raw: Option<&str>, filter: Option<&str>) -> Result<ListParams, ApiError> {
    let mut params = ListParams {
        list: ListQuery::default(),
        issuer_id: None,
        workspace_id: None,
    };
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if seen.iter().any(|field| *field == name) {
            return Err(ApiError::invalid_request(format!("{name}: given more than once")));
        }
        seen.push(name.to_string());
        match name.as_ref() {
            "limit" => {
                params.list.limit = value
                    .parse::<u32>()
                    .ok()
                    .and_then(|limit| Limit::new(limit).ok())
                    .ok_or_else(|| ApiError::invalid_request(format!("limit: must be between 1 and {}", Limit::MAX)))?;
            }
            "page" => {
                let cursor =
                    Cursor::parse(&value).map_err(|error| ApiError::invalid_request(format!("page: {error}")))?;
                params.list.cursor = Some(cursor);
            }
            "include_archived" => {
                params.list.include_archived = match value.as_ref() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(ApiError::invalid_request("include_archived: must be `true` or `false`")),
                };
            }
            "issuer_id" if filter == Some("issuer_id") => params.issuer_id = Some(value.into_owned()),
            "workspace_id" if filter == Some("workspace_id") => params.workspace_id = Some(value.into_owned()),
            other => return Err(ApiError::invalid_request(format!("{other}: unknown query parameter"))),
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, with_issuer_id: bool, expect: Result<(u32, bool, bool, Option<&str>), &str>) {
        let res = list_params(Some(raw), with_issuer_id.then_some("issuer_id"))
            .map(|params| {
                (
                    params.list.limit.get(),
                    params.list.cursor.is_some(),
                    params.list.include_archived,
                    params.issuer_id,
                )
            })
            .map_err(|error| error.message().to_owned());
        let expect = expect
            .map(|(limit, cursor, archived, issuer)| (limit, cursor, archived, issuer.map(str::to_owned)))
            .map_err(str::to_owned);
        assert_eq!(res, expect, "{raw:?}");
    }

    #[test]
    fn list_query_strings() {
        check("", false, Ok((20, false, false, None)));
        check(
            "limit=2&page=1700000000.svac_abc&include_archived=true",
            false,
            Ok((2, true, true, None)),
        );
        check("issuer_id=fdis_1", true, Ok((20, false, false, Some("fdis_1"))));
        check("issuer_id=fdis_1", false, Err("issuer_id: unknown query parameter"));
        check("limit=0", false, Err("limit: must be between 1 and 100"));
        check("limit=101", false, Err("limit: must be between 1 and 100"));
        check("limit=x", false, Err("limit: must be between 1 and 100"));
        check("limit=1&limit=2", false, Err("limit: given more than once"));
        check("page=nope", false, Err("page: is not a valid page cursor"));
        check(
            "include_archived=yes",
            false,
            Err("include_archived: must be `true` or `false`"),
        );
        check("before_id=1", false, Err("before_id: unknown query parameter"));
    }
}
