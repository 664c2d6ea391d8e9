//! `/v1/openapi.json` against the router itself: every routed path is documented, every documented
//! operation is served, and every other method on a documented path answers 405.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::harness::{Db, Site, TestApp, spawn_app};

/// Every path given to `.route(` in `src/http`.
fn routed_paths() -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let mut stack = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/http"
    ))];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (at, _) in text.match_indices(".route(") {
                // A call's first argument is the path literal; anything else (prose) is not a call.
                let Some(rest) = text[at + ".route(".len()..].trim_start().strip_prefix('"') else {
                    continue;
                };
                paths.insert(rest[..rest.find('"').unwrap()].to_owned());
            }
        }
    }
    paths
}

#[tokio::test]
async fn the_document_covers_every_route_and_nothing_else() {
    let site = Site::new(Db::Sqlite);
    let app = spawn_app(&site).await;
    let admin = TestApp::admin_token(&site);
    let (status, document) = app.get_json("/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["servers"][0]["url"], app.base_url.as_str());
    let paths = document["paths"].as_object().unwrap();

    let routed = routed_paths();
    assert!(routed.len() >= 24, "the source scan found too few routes: {routed:?}");
    let documented: BTreeSet<String> = paths.keys().cloned().collect();
    assert_eq!(
        routed.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "routes missing from the OpenAPI document"
    );
    assert_eq!(
        documented.difference(&routed).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "documented paths that are not routed"
    );

    let mut operation_ids = BTreeSet::new();
    for (path, methods) in paths {
        let methods = methods.as_object().unwrap();
        for (method, operation) in methods {
            assert!(
                operation_ids.insert(operation["operationId"].as_str().unwrap().to_owned()),
                "{path} {method}"
            );
            for parameter in operation["parameters"].as_array().unwrap() {
                if parameter["in"] == "path" {
                    assert!(path.contains(&format!("{{{}}}", parameter["name"].as_str().unwrap())));
                }
            }
        }
        let concrete = path.replace("{id}", "x").replace("{workspace_id}", "x");
        for method in [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let response = app
                .http
                .request(method.clone(), app.url(&concrete))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if methods.contains_key(&method.as_str().to_ascii_lowercase()) {
                assert_ne!(status, 405, "{method} {path} is documented but not served");
                let unknown = body["error"]["message"]
                    .as_str()
                    .is_some_and(|message| message == "no such route");
                assert!(!unknown, "{method} {path} is documented but not routed: {body}");
            } else {
                assert_eq!(status, 405, "{method} {path} is served but not documented: {body}");
            }
        }
    }
    app.stop().await.unwrap();
}
