//! Issuer keys against a real OIDC issuer on loopback: the fetcher (discovery, explicit URL, inline,
//! size cap, timeout, discovery checks, the URL policy), the cache (freshness from caching headers,
//! one coalesced re-fetch per cooldown on an unknown `kid`, last good keys through an outage, the
//! staleness bound), the poller (status, backoff, pause, resume) on every database, and the dry run.
//! Time is a parameter: tests pass `NOW + n` instead of sleeping.

use std::sync::Arc;
use std::time::Duration;

use keyless_core::id::{IssuerId, OrganizationId};
use keyless_core::name::Name;
use keyless_jose::Algorithm;
use keyless_server::service::jwks::cache::{IssuerKeys, KeySettings, PollOutcome};
use keyless_server::service::jwks::fetch::FetchSettings;
use keyless_server::service::jwks::poll::{self, PollSettings};
use keyless_server::service::jwks::source::{JwksSource, UrlPolicy};
use keyless_server::service::jwks::verify::verify;
use keyless_store::Store;
use keyless_store::audit::Audit;
use keyless_store::issuer::{IssuerPollStatus, IssuerRecord};
use keyless_store::organization::OrganizationRecord;
use serde_json::{Value, json};

use crate::harness::{Site, databases};
use crate::oidc::OidcIssuer;

const NOW: i64 = 1_700_000_000;
const INSECURE: UrlPolicy = UrlPolicy { allow_insecure: true };
const SECURE: UrlPolicy = UrlPolicy { allow_insecure: false };
const ORG: &str = "0190c2f0-0000-7000-8000-000000000001";

fn issuer(id: &str, issuer_url: &str, jwks: Value) -> IssuerRecord {
    IssuerRecord {
        id: IssuerId::parse(&format!("fdis_{id}")).unwrap(),
        organization_id: OrganizationId::parse(ORG).unwrap(),
        name: Name::parse(id).unwrap(),
        issuer_url: issuer_url.to_owned(),
        jwks,
        check_jti: false,
        max_jwt_lifetime_seconds: 3600,
        jwks_polling_disabled_at: None,
        poll_status: IssuerPollStatus::default(),
        audit: Audit::created(NOW, "user_test"),
    }
}

fn discovery(oidc: &OidcIssuer) -> IssuerRecord {
    issuer("disco", &oidc.issuer_url(), json!({"type": "discovery"}))
}

fn new_keys() -> IssuerKeys {
    IssuerKeys::new(KeySettings::default(), INSECURE)
}

fn kids(jwks: &keyless_jose::Jwks) -> Vec<String> {
    jwks.keys()
        .iter()
        .filter_map(|jwk| jwk.kid().map(str::to_owned))
        .collect()
}

async fn failure_code(keys: &IssuerKeys, issuer: &IssuerRecord, now: i64) -> (&'static str, &'static str) {
    let err = keys.keys_for(issuer, None, now).await.unwrap_err();
    (err.code(), err.cause_code())
}

#[tokio::test]
async fn discovery_then_jwks_then_the_cache() {
    let oidc = OidcIssuer::start().await;
    let keys = new_keys();
    let issuer = discovery(&oidc);
    let kid = oidc.current_kid();
    let jwks = keys.keys_for(&issuer, Some(&kid), NOW).await.unwrap();
    assert!(kids(&jwks).contains(&kid));
    assert_eq!(jwks.keys().len(), 2, "the RS256 and ES256 keys");
    assert_eq!((oidc.discovery_fetches(), oidc.jwks_fetches()), (1, 1));
    // Fresh keys are served from the cache, with a kid, without one, until they expire.
    keys.keys_for(&issuer, Some(&kid), NOW + 10).await.unwrap();
    keys.keys_for(&issuer, None, NOW + 899).await.unwrap();
    assert_eq!((oidc.discovery_fetches(), oidc.jwks_fetches()), (1, 1));
    keys.keys_for(&issuer, None, NOW + 900).await.unwrap();
    assert_eq!(
        (oidc.discovery_fetches(), oidc.jwks_fetches()),
        (2, 2),
        "expired after the default 15 min"
    );
}

#[tokio::test]
async fn tokens_minted_by_the_test_issuer_verify_with_the_keys_given() {
    let oidc = OidcIssuer::start().await;
    let keys = new_keys();
    let issuer = discovery(&oidc);
    let claims = json!({"iss": oidc.issuer_url(), "sub": "workload", "iat": NOW, "exp": NOW + 300});
    let limits = keyless_jose::Limits::default();
    for token in [oidc.mint(&claims), oidc.mint_with(Algorithm::Es256, &claims)] {
        let unverified = keyless_jose::decode_unverified(&token, &limits).unwrap();
        let kid = unverified.header["kid"].as_str().unwrap().to_owned();
        let jwks = keys.keys_for(&issuer, Some(&kid), NOW).await.unwrap();
        let verified = keyless_jose::verify_jwt(&token, &jwks, &limits).unwrap();
        assert_eq!(verified.claims["sub"], "workload");
    }
    // A key dropped by a rotation is gone after the re-fetch: the verifier reports kid_not_found.
    let old = oidc.mint(&claims);
    let old_kid = oidc.current_kid();
    oidc.rotate_dropping_old();
    let jwks = keys
        .keys_for(&issuer, Some(&oidc.current_kid()), NOW + 1)
        .await
        .unwrap();
    let jwks = keys
        .keys_for(&issuer, Some(&old_kid), NOW + 2)
        .await
        .map(|_| jwks)
        .unwrap();
    assert_eq!(
        keyless_jose::verify_jwt(&old, &jwks, &limits).unwrap_err().code(),
        "kid_not_found"
    );
}

#[tokio::test]
async fn explicit_url_skips_discovery() {
    let oidc = OidcIssuer::start().await;
    let keys = new_keys();
    let issuer = issuer(
        "explicit",
        "https://issuer.example",
        json!({"type": "explicit_url", "url": oidc.jwks_url()}),
    );
    let jwks = keys.keys_for(&issuer, Some(&oidc.current_kid()), NOW).await.unwrap();
    assert!(kids(&jwks).contains(&oidc.current_kid()));
    assert_eq!((oidc.discovery_fetches(), oidc.jwks_fetches()), (0, 1));
}

#[tokio::test]
async fn inline_keys_are_never_fetched() {
    let oidc = OidcIssuer::start().await;
    let keys = new_keys();
    let issuer = issuer(
        "inline",
        &oidc.issuer_url(),
        json!({"type": "inline", "keys": oidc.public_jwks()["keys"]}),
    );
    let jwks = keys.keys_for(&issuer, Some("unknown-kid"), NOW).await.unwrap();
    assert_eq!(jwks.keys().len(), 2);
    keys.keys_for(&issuer, None, NOW + 10 * 86_400).await.unwrap();
    assert_eq!((oidc.discovery_fetches(), oidc.jwks_fetches()), (0, 0));
}

#[tokio::test]
async fn an_unknown_kid_costs_one_refetch_that_finds_the_rotated_key() {
    let oidc = OidcIssuer::start().await;
    let keys = new_keys();
    let issuer = discovery(&oidc);
    keys.keys_for(&issuer, Some(&oidc.current_kid()), NOW).await.unwrap();
    // Rotated right after a fetch: the new key is still found at once.
    let rotated = oidc.rotate();
    let jwks = keys.keys_for(&issuer, Some(&rotated), NOW + 1).await.unwrap();
    assert!(kids(&jwks).contains(&rotated));
    assert_eq!(oidc.jwks_fetches(), 2);
    keys.keys_for(&issuer, Some(&rotated), NOW + 2).await.unwrap();
    assert_eq!(oidc.jwks_fetches(), 2, "found keys are cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotated_kid_under_200_concurrent_callers_costs_one_fetch() {
    let oidc = OidcIssuer::start().await;
    let keys = Arc::new(new_keys());
    let issuer = Arc::new(discovery(&oidc));
    keys.keys_for(&issuer, Some(&oidc.current_kid()), NOW).await.unwrap();
    let rotated = oidc.rotate();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let keys = Arc::clone(&keys);
            let issuer = Arc::clone(&issuer);
            let rotated = rotated.clone();
            tokio::spawn(async move { keys.keys_for(&issuer, Some(&rotated), NOW + 5).await })
        })
        .collect();
    for task in tasks {
        let jwks = task.await.unwrap().unwrap();
        assert!(kids(&jwks).contains(&rotated));
    }
    assert_eq!(oidc.jwks_fetches(), 2, "one initial fetch, one coalesced re-fetch");
    assert_eq!(oidc.discovery_fetches(), 2);
}

#[tokio::test]
async fn refetches_for_unknown_kids_respect_the_cooldown() {
    let oidc = OidcIssuer::start().await;
    let keys = new_keys();
    let issuer = discovery(&oidc);
    keys.keys_for(&issuer, None, NOW).await.unwrap();
    // An attacker's made-up kid: one re-fetch, then none until the cooldown (30 s) has passed; the
    // keys are returned without it (the verifier reports kid_not_found).
    let jwks = keys.keys_for(&issuer, Some("made-up"), NOW + 1).await.unwrap();
    assert!(!kids(&jwks).contains(&"made-up".to_owned()));
    assert_eq!(oidc.jwks_fetches(), 2);
    for offset in [2, 10, 30] {
        keys.keys_for(&issuer, Some("made-up-too"), NOW + offset).await.unwrap();
    }
    assert_eq!(oidc.jwks_fetches(), 2, "within the cooldown");
    // A real rotation inside the cooldown is seen once it has passed.
    let rotated = oidc.rotate();
    let jwks = keys.keys_for(&issuer, Some(&rotated), NOW + 20).await.unwrap();
    assert!(!kids(&jwks).contains(&rotated));
    let jwks = keys.keys_for(&issuer, Some(&rotated), NOW + 31).await.unwrap();
    assert!(kids(&jwks).contains(&rotated));
    assert_eq!(oidc.jwks_fetches(), 3);
}

#[tokio::test]
async fn an_outage_keeps_the_last_good_keys_until_the_staleness_bound() {
    let oidc = OidcIssuer::start().await;
    let keys = new_keys();
    let issuer = discovery(&oidc);
    let kid = oidc.current_kid();
    keys.keys_for(&issuer, Some(&kid), NOW).await.unwrap();
    oidc.set_outage(true);
    // Stale (past 15 min), the fetch fails: the last good keys are served.
    let jwks = keys.keys_for(&issuer, Some(&kid), NOW + 1000).await.unwrap();
    assert!(kids(&jwks).contains(&kid));
    assert_eq!(oidc.discovery_fetches(), 2);
    // A failing issuer is asked at most once per cooldown.
    keys.keys_for(&issuer, Some(&kid), NOW + 1010).await.unwrap();
    assert_eq!(oidc.discovery_fetches(), 2);
    keys.keys_for(&issuer, Some(&kid), NOW + 1040).await.unwrap();
    assert_eq!(oidc.discovery_fetches(), 3);
    // Past 24 h after the last successful fetch: unavailable.
    assert_eq!(
        failure_code(&keys, &issuer, NOW + 86_401).await,
        ("jwks_unavailable", "http_status")
    );
    // Back up: served again.
    oidc.set_outage(false);
    keys.keys_for(&issuer, Some(&kid), NOW + 86_500).await.unwrap();
}

#[tokio::test]
async fn an_issuer_never_reached_is_unavailable_and_not_hammered() {
    let oidc = OidcIssuer::start().await;
    oidc.set_outage(true);
    let keys = new_keys();
    let issuer = discovery(&oidc);
    assert_eq!(
        failure_code(&keys, &issuer, NOW).await,
        ("jwks_unavailable", "http_status")
    );
    assert_eq!(
        failure_code(&keys, &issuer, NOW + 29).await,
        ("jwks_unavailable", "http_status")
    );
    assert_eq!(
        oidc.discovery_fetches(),
        1,
        "the failure is remembered for the cooldown"
    );
    oidc.set_outage(false);
    keys.keys_for(&issuer, None, NOW + 30).await.unwrap();
}

#[tokio::test]
async fn caching_headers_set_the_freshness_within_bounds() {
    let oidc = OidcIssuer::start().await;
    for (header, fresh) in [
        (None, 900),
        (Some("public, max-age=120"), 120),
        (Some("max-age=5"), 60),
        (Some("max-age=9999999"), 86_400),
        (Some("no-store"), 60),
    ] {
        oidc.set_cache_control(header);
        let keys = new_keys();
        let outcome = keys.poll(&discovery(&oidc), NOW).await;
        assert_eq!(
            outcome,
            PollOutcome::Fresh {
                fetched_at: Some(NOW),
                fresh_until: NOW + fresh
            },
            "{header:?}"
        );
    }
    // And the cache honours it: max-age=120 is fetched again at 120 s, not before.
    oidc.set_cache_control(Some("max-age=120"));
    let keys = new_keys();
    let issuer = discovery(&oidc);
    let before = oidc.jwks_fetches();
    keys.keys_for(&issuer, None, NOW).await.unwrap();
    keys.keys_for(&issuer, None, NOW + 119).await.unwrap();
    assert_eq!(oidc.jwks_fetches(), before + 1);
    keys.keys_for(&issuer, None, NOW + 120).await.unwrap();
    assert_eq!(oidc.jwks_fetches(), before + 2);
}

#[tokio::test]
async fn the_discovery_document_must_name_the_configured_issuer() {
    let oidc = OidcIssuer::start().await;
    oidc.set_discovery_issuer(Some("https://evil.example"));
    let keys = new_keys();
    assert_eq!(
        failure_code(&keys, &discovery(&oidc), NOW).await,
        ("jwks_unavailable", "discovery_issuer_mismatch")
    );
    // A trailing slash is a different issuer: byte for byte.
    oidc.set_discovery_issuer(Some(&format!("{}/", oidc.issuer_url())));
    assert_eq!(
        failure_code(&new_keys(), &discovery(&oidc), NOW).await,
        ("jwks_unavailable", "discovery_issuer_mismatch")
    );
    // With discovery_base, the document lives elsewhere on purpose: only jwks_uri is read.
    let based = issuer(
        "based",
        "https://issuer.example",
        json!({"type": "discovery", "discovery_base": oidc.issuer_url()}),
    );
    keys.keys_for(&based, None, NOW).await.unwrap();
}

#[tokio::test]
async fn an_updated_issuer_never_uses_its_old_keys_and_forget_drops_them() {
    let first = OidcIssuer::start().await;
    let second = OidcIssuer::start().await;
    let keys = new_keys();
    let before = discovery(&first);
    keys.keys_for(&before, Some(&first.current_kid()), NOW).await.unwrap();
    let mut after = before.clone();
    after.issuer_url = second.issuer_url();
    let jwks = keys.keys_for(&after, None, NOW + 1).await.unwrap();
    assert!(kids(&jwks).contains(&second.current_kid()));
    assert!(!kids(&jwks).contains(&first.current_kid()));
    keys.forget(&after.id);
    keys.keys_for(&after, None, NOW + 2).await.unwrap();
    assert_eq!(second.jwks_fetches(), 2);
}

#[tokio::test]
async fn bodies_are_capped_and_must_be_a_jwks_with_a_usable_key() {
    let oidc = OidcIssuer::start().await;
    let big = format!("{{\"keys\":[],\"padding\":\"{}\"}}", "x".repeat(300 * 1024));
    for (body, cause) in [
        (big.into_bytes(), "too_large"),
        (b"{\"keys\":[], \"keys\":[]}".to_vec(), "invalid_json"),
        (b"[1,2]".to_vec(), "invalid_json"),
        (
            b"{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}".to_vec(),
            "no_usable_keys",
        ),
    ] {
        oidc.set_jwks_body(Some(body));
        assert_eq!(
            failure_code(&new_keys(), &discovery(&oidc), NOW).await,
            ("jwks_unavailable", cause)
        );
    }
}

#[tokio::test]
async fn an_issuer_that_never_answers_times_out() {
    let oidc = OidcIssuer::start().await;
    oidc.set_hang(true);
    let settings = KeySettings {
        fetch: FetchSettings {
            timeout: Duration::from_millis(300),
            ..FetchSettings::default()
        },
        ..KeySettings::default()
    };
    let keys = IssuerKeys::new(settings, INSECURE);
    assert_eq!(
        failure_code(&keys, &discovery(&oidc), NOW).await,
        ("jwks_unavailable", "timeout")
    );
}

async fn problems(source: JwksSource, issuer_url: &str, policy: UrlPolicy) -> Vec<String> {
    let report = verify(issuer_url, &source, policy, FetchSettings::default(), NOW).await;
    report.problems.iter().map(|problem| problem.code.clone()).collect()
}

fn explicit(url: &str) -> JwksSource {
    JwksSource::ExplicitUrl {
        url: url::Url::parse(url).unwrap(),
        ca_cert_pem: None,
    }
}

#[tokio::test]
async fn the_url_policy_refuses_loopback_and_plain_http_when_insecure_urls_are_off() {
    let oidc = OidcIssuer::start().await;
    for url in [
        oidc.jwks_url(),
        "https://127.0.0.1/jwks".to_owned(),
        "https://[::1]/jwks".to_owned(),
        "https://localhost/jwks".to_owned(),
        "https://api.localhost/jwks".to_owned(),
        "https://issuer.example:8443/jwks".to_owned(),
    ] {
        assert_eq!(
            problems(explicit(&url), "https://issuer.example", SECURE).await,
            ["url_refused"],
            "{url}"
        );
    }
    // A discovery document naming a loopback jwks_uri is refused too (checked with the insecure
    // policy only to reach the document).
    assert_eq!(oidc.jwks_fetches(), 0);
    // A name that resolves to loopback passes the static policy and is refused by the resolver.
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let loopback_name = hosts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let address = fields.next()?;
            address.starts_with("127.").then_some(())?;
            fields.find(|name| *name != "localhost" && !name.ends_with(".localhost") && !name.starts_with('#'))
        })
        .next()
        .map(str::to_owned);
    if let Some(name) = loopback_name {
        assert_eq!(
            problems(
                explicit(&format!("https://{name}/jwks")),
                "https://issuer.example",
                SECURE
            )
            .await,
            ["address_refused"],
            "{name}"
        );
    }
}

#[tokio::test]
async fn verify_reports_keys_skipped_keys_and_problems() {
    let oidc = OidcIssuer::start().await;
    let source = JwksSource::Discovery {
        discovery_base: None,
        ca_cert_pem: None,
    };
    let report = verify(&oidc.issuer_url(), &source, INSECURE, FetchSettings::default(), NOW).await;
    assert!(report.ok, "{report:?}");
    assert_eq!(
        report.discovery_url.as_deref(),
        Some(format!("{}/.well-known/openid-configuration", oidc.issuer_url()).as_str())
    );
    assert_eq!(report.jwks_uri.as_deref(), Some(oidc.jwks_url().as_str()));
    assert_eq!(report.keys.len(), 2);
    let mut published = oidc.public_jwks();
    published["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kty": "oct", "kid": "shared-secret", "k": "c2VjcmV0"}));
    oidc.set_jwks_body(Some(serde_json::to_vec(&published).unwrap()));
    let report = verify(&oidc.issuer_url(), &source, INSECURE, FetchSettings::default(), NOW).await;
    let value = serde_json::to_value(&report).unwrap();
    assert_eq!(value["ok"], true);
    assert_eq!(value["keys"][0]["kid"], oidc.current_kid());
    assert_eq!(value["keys"][0]["kty"], "RSA");
    assert_eq!(value["keys"][0]["alg"], "RS256");
    assert_eq!(value["keys"][0]["use"], "sig");
    assert_eq!(value["keys"][0]["thumbprint"], oidc.current_kid());
    assert_eq!(value["keys"][1]["kty"], "EC");
    assert_eq!(value["skipped_keys"][0]["kid"], "shared-secret");
    assert_eq!(value["skipped_keys"][0]["code"], "unsupported_kty");
    assert_eq!(value["problems"], json!([]));
    // Failures are problems; the cache was never touched (nothing to check there: no cache given).
    oidc.set_outage(true);
    let report = verify(&oidc.issuer_url(), &source, INSECURE, FetchSettings::default(), NOW).await;
    assert!(!report.ok);
    assert_eq!(report.problems[0].code, "http_status");
    assert!(
        report.problems[0].message.contains("503"),
        "{}",
        report.problems[0].message
    );
    let inline = JwksSource::Inline {
        keys: vec![oidc.public_jwks()["keys"][0].clone()],
    };
    let report = verify("https://issuer.example", &inline, SECURE, FetchSettings::default(), NOW).await;
    assert!(report.ok && report.keys.len() == 1 && report.jwks_uri.is_none());
}

/// A store on `site`'s database with the test organization.
async fn store_on(site: &Site) -> Store {
    let store = match &site.pg {
        Some(pg) => Store::connect(&pg.url).await.unwrap(),
        None => {
            std::fs::create_dir_all(site.data_dir()).unwrap();
            Store::open_sqlite(site.data_dir().join("keyless.db")).await.unwrap()
        }
    };
    let mut tx = store.begin().await.unwrap();
    tx.organization_create(&OrganizationRecord {
        id: OrganizationId::parse(ORG).unwrap(),
        created_at: NOW,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    store
}

async fn create(store: &Store, issuer: &IssuerRecord) {
    let mut tx = store.begin().await.unwrap();
    tx.issuer_create(issuer).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn the_poller_records_status_backs_off_pauses_and_resumes() {
    for db in databases() {
        let site = Site::new(db);
        let store = store_on(&site).await;
        let oidc = OidcIssuer::start().await;
        let issuer = discovery(&oidc);
        create(&store, &issuer).await;
        let keys = Arc::new(new_keys());
        let settings = PollSettings {
            failures_before_pause: 3,
            ..PollSettings::default()
        };
        let status = |store: Store, issuer: IssuerRecord| async move {
            store.issuer_get(&issuer.organization_id, &issuer.id).await.unwrap()
        };

        assert_eq!(
            poll::poll_once(&store, &keys, &settings, NOW).await.unwrap(),
            1,
            "{db:?}"
        );
        let polled = status(store.clone(), issuer.clone()).await;
        assert_eq!(
            polled.poll_status,
            IssuerPollStatus {
                consecutive_failures: 0,
                last_fetched_at: Some(NOW),
                next_poll_at: Some(NOW + 900),
                last_error: None,
            },
            "{db:?}"
        );
        assert_eq!(oidc.jwks_fetches(), 1);
        // The poll warmed the cache the exchange uses.
        keys.keys_for(&polled, Some(&oidc.current_kid()), NOW + 1)
            .await
            .unwrap();
        assert_eq!(oidc.jwks_fetches(), 1);
        assert_eq!(
            poll::poll_once(&store, &keys, &settings, NOW + 899).await.unwrap(),
            0,
            "not due"
        );

        // Failures back off (30 s, 60 s) and pause polling at the third.
        oidc.set_outage(true);
        let mut at = NOW + 900;
        for (failures, wait) in [(1, 30), (2, 60), (3, 120)] {
            assert_eq!(
                poll::poll_once(&store, &keys, &settings, at).await.unwrap(),
                1,
                "{db:?}"
            );
            let failed = status(store.clone(), issuer.clone()).await;
            assert_eq!(failed.poll_status.consecutive_failures, failures, "{db:?}");
            assert_eq!(failed.poll_status.last_fetched_at, Some(NOW));
            assert_eq!(failed.poll_status.next_poll_at, Some(at + wait));
            assert!(
                failed
                    .poll_status
                    .last_error
                    .as_deref()
                    .is_some_and(|error| error.starts_with("http_status: ")),
                "{:?}",
                failed.poll_status
            );
            assert_eq!(failed.jwks_polling_disabled_at, (failures == 3).then_some(at), "{db:?}");
            at += wait;
        }
        assert_eq!(
            poll::poll_once(&store, &keys, &settings, at + 86_400).await.unwrap(),
            0,
            "paused"
        );

        // An admin update resumes it.
        oidc.set_outage(false);
        let mut tx = store.begin().await.unwrap();
        tx.issuer_poll_status_reset(&issuer.organization_id, &issuer.id)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(poll::poll_once(&store, &keys, &settings, at).await.unwrap(), 1);
        let resumed = status(store.clone(), issuer.clone()).await;
        assert_eq!(resumed.poll_status.consecutive_failures, 0);
        assert_eq!(resumed.poll_status.last_fetched_at, Some(at));
        assert_eq!(resumed.jwks_polling_disabled_at, None);
        store.close().await;
    }
}

#[tokio::test]
async fn the_poller_task_polls_due_issuers_and_stops_on_shutdown() {
    for db in databases() {
        let site = Site::new(db);
        let store = store_on(&site).await;
        let oidc = OidcIssuer::start().await;
        let mut inline = issuer(
            "inline",
            "https://inline.example",
            json!({"type": "inline", "keys": oidc.public_jwks()["keys"]}),
        );
        inline.organization_id = OrganizationId::parse(ORG).unwrap();
        create(&store, &discovery(&oidc)).await;
        create(&store, &inline).await;
        let keys = Arc::new(new_keys());
        let settings = PollSettings {
            interval_seconds: 1,
            ..PollSettings::default()
        };
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let task = poll::spawn(store.clone(), Arc::clone(&keys), settings, shutdown);
        let mut polled = false;
        for _ in 0..100 {
            let disco = store
                .issuer_get(&inline.organization_id, &discovery(&oidc).id)
                .await
                .unwrap();
            let inline = store.issuer_get(&inline.organization_id, &inline.id).await.unwrap();
            if disco.poll_status.next_poll_at.is_some() && inline.poll_status.next_poll_at.is_some() {
                assert!(disco.poll_status.last_fetched_at.is_some(), "{db:?}");
                assert_eq!(
                    inline.poll_status.last_fetched_at, None,
                    "inline keys are never fetched"
                );
                assert_eq!(inline.poll_status.consecutive_failures, 0);
                polled = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(polled, "{db:?}: the poller did not record a status");
        assert_eq!(oidc.jwks_fetches(), 1);
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the poller stops on shutdown")
            .unwrap();
        store.close().await;
    }
}
