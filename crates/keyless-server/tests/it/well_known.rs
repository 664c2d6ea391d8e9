//! The well-known documents over HTTP: RFC 8414 metadata (every endpoint it lists is served, the
//! keyless members name the default audience and the organization of `bootstrap.json`) and the
//! server's own JWKS.

use serde_json::Value;

use crate::harness::{Db, Site, bootstrap_file, spawn_app};

#[tokio::test]
async fn metadata_lists_what_is_served_and_names_the_organization() {
    let site = Site::new(Db::Sqlite);
    let app = spawn_app(&site).await;
    let response = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let metadata: Value = response.json().await.unwrap();
    let bootstrap: Value = serde_json::from_str(&std::fs::read_to_string(bootstrap_file(&site)).unwrap()).unwrap();
    assert_eq!(metadata["issuer"], app.base_url.as_str());
    assert_eq!(metadata["keyless_default_audience"], app.base_url.as_str());
    assert_eq!(metadata["keyless_organization_id"], bootstrap["organization_id"]);
    assert_eq!(metadata["token_endpoint"], app.url("/v1/oauth/token").as_str());
    let scopes: Vec<&str> = metadata["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        scopes,
        [
            "workspace:developer",
            "workspace:inference",
            "org:admin",
            "oauth:introspect"
        ]
    );
    // Every endpoint it names answers (a GET on a POST endpoint is 405, not 404).
    for member in [
        "token_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
        "jwks_uri",
    ] {
        let url = metadata[member].as_str().unwrap();
        let status = app.http.get(url).send().await.unwrap().status().as_u16();
        assert!(status == 200 || status == 405, "{member} {url}: {status}");
    }
    let jwks: Value = app
        .http
        .get(metadata["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert!(!keys.is_empty());
    for key in keys {
        assert!(key.get("d").is_none(), "no private member is published: {key}");
        assert!(key["kid"].is_string());
    }
    app.stop().await.unwrap();
}
