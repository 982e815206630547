//! The settings around identity: start-up errors, what `/readyz` says, the
//! separate metrics port, browsers (CORS and the headers every answer
//! carries), and that a token in a URL is never logged.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tributary::auth::AuthMode;
use tributary::config::ServeSettings;
use tributary::startup::Application;

use super::{Issuer, spawn_secured};
use crate::common::{Backend, eventually, spawn_app, spawn_app_with, start_binary};

#[tokio::test]
async fn auth_required_without_a_key_is_a_start_up_error_that_says_what_to_set() {
    let mut settings = ServeSettings::for_tests();
    settings.auth.mode = AuthMode::Required;
    let Err(error) = Application::build(&settings).await else {
        panic!("the service started with auth required and no key");
    };
    let message = format!("{error:#}");
    for needle in ["TRIBUTARY_AUTH=required", "TRIBUTARY_AUTH_KEYS", "TRIBUTARY_AUTH_SECRET"] {
        assert!(message.contains(needle), "{needle} not in {message:?}");
    }
}

#[tokio::test]
async fn with_no_key_auth_is_off_and_readyz_says_so() {
    let app = spawn_app(Backend::Memory).await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.json()["auth"], "off", "{}", ready.text);
    let answer = app.post_record(&json!({"engine_temperature": 90})).await;
    assert_eq!(answer.status, 200, "the quick start works with curl and nothing else");
}

#[tokio::test]
async fn the_binary_warns_once_at_start_when_auth_is_off() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let (server, _port) = start_binary(&[], Stdio::from(log.reopen().unwrap()));
    let logs = eventually(Duration::from_secs(5), "the start-up log", || async {
        let logs = std::fs::read_to_string(log.path()).unwrap();
        logs.contains("tributary listening").then_some(logs)
    })
    .await;
    assert_eq!(
        logs.matches("auth is off: every client may write and read every vehicle").count(),
        1,
        "{logs}"
    );
    drop(server);
}

#[tokio::test]
async fn the_metrics_port_needs_no_token_and_the_api_port_needs_the_metrics_scope() {
    let issuer = Issuer::new();
    let app = spawn_secured(Backend::Memory, &issuer, |settings| {
        settings.auth.metrics_listen = Some("127.0.0.1:0".into());
    })
    .await;
    app.get("/metrics").await.assert_problem(401, "no access token");
    let reader = issuer.token("read", &["*"]);
    let refused = app.call("GET", "/metrics", None, Some(&reader)).await;
    refused.assert_problem(403, "lacks the `metrics` scope");
    let scraper = issuer.token("metrics", &[]);
    let scraped = app.call("GET", "/metrics", None, Some(&scraper)).await;
    assert!(scraped.text.contains("tributary_http_requests_total"), "{}", scraped.text);

    let port = app.metrics_port.expect("a metrics port");
    let url = format!("http://127.0.0.1:{port}/metrics");
    let open = app.send(app.client.get(url)).await;
    assert_eq!(open.status, 200, "{}", open.text);
    assert!(
        open.text.contains("tributary_auth_refusals_total{reason=\"missing_token\"}"),
        "{}",
        open.text
    );
    let other = app.send(app.client.get(format!("http://127.0.0.1:{port}/collect"))).await;
    assert_eq!(other.status, 404, "only /metrics is on the metrics port");
}

#[tokio::test]
async fn every_answer_says_nosniff_and_vehicle_data_is_never_cached() {
    let app = spawn_app(Backend::Memory).await;
    for path in ["/healthz", "/collect", "/nowhere", "/v1/vehicles/car-1"] {
        let answer = app.get(path).await;
        assert_eq!(answer.header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(answer.header("cache-control"), "no-store", "{path}");
    }
    let document = app.get("/openapi.json").await;
    assert_eq!(document.header("x-content-type-options"), "nosniff");
}

#[tokio::test]
async fn browsers_of_the_listed_origins_may_call_the_api_with_a_token() {
    let app = spawn_app_with(Backend::Memory, |settings| {
        settings.auth.cors_origins = vec!["https://app.example.com".into()];
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/v1/vehicles/car-1"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
    };
    let allowed = app.send(preflight("https://app.example.com")).await;
    assert!(allowed.status.is_success(), "{}: {}", allowed.status, allowed.text);
    assert_eq!(allowed.header("access-control-allow-origin"), "https://app.example.com");
    assert!(
        allowed.header("access-control-allow-headers").to_lowercase().contains("authorization")
    );
    let stranger = app.send(preflight("https://evil.example.com")).await;
    assert!(stranger.headers.get("access-control-allow-origin").is_none());

    let read = app.client.get(app.url("/collect")).header("origin", "https://app.example.com");
    let read = app.send(read).await;
    assert_eq!(read.header("access-control-allow-origin"), "https://app.example.com");
}

#[tokio::test]
async fn without_listed_origins_there_is_no_cors() {
    let app = spawn_app(Backend::Memory).await;
    let read = app.client.get(app.url("/collect")).header("origin", "https://app.example.com");
    let read = app.send(read).await;
    assert!(read.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_token_in_a_url_is_never_logged_even_at_debug_level() {
    let secret = "x".repeat(40);
    let log = tempfile::NamedTempFile::new().unwrap();
    let envs = [("TRIBUTARY_AUTH_SECRET", secret.as_str()), ("TRIBUTARY_LOG", "debug")];
    let (server, port) = start_binary(&envs, Stdio::from(log.reopen().unwrap()));
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYXItMSJ9.c2VjcmV0LXNpZ25hdHVyZS1tYXJr";
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for path in ["/collect", "/nowhere", "/v1/vehicles/car-1/stream", "/readyz"] {
        let url = format!("http://127.0.0.1:{port}{path}?vehicle_id=car-1&access_token={token}");
        client.get(url).send().await.unwrap();
    }
    let logs = eventually(Duration::from_secs(5), "the requests' log lines", || async {
        let logs = std::fs::read_to_string(log.path()).unwrap();
        (logs.matches("tributary::access: request").count() >= 4).then_some(logs)
    })
    .await;
    assert!(!logs.contains("c2VjcmV0LXNpZ25hdHVyZS1tYXJr"), "the token was logged:\n{logs}");
    assert!(!logs.contains(&secret), "the secret was logged");
    drop(server);
}

#[tokio::test]
async fn the_document_names_the_token_scheme_and_each_operations_scopes_when_auth_is_on() {
    let issuer = Issuer::new();
    let app = spawn_secured(Backend::Memory, &issuer, |_| {}).await;
    let document = app.get("/openapi.json").await.json();
    let scheme = &document["components"]["securitySchemes"]["token"];
    assert_eq!(scheme["type"], "http", "{scheme}");
    assert_eq!(scheme["scheme"], "bearer", "{scheme}");
    assert_eq!(scheme["bearerFormat"], "JWT", "{scheme}");
    let either_read = json!([{"token": ["read"]}, {"token": ["fleet"]}]);
    let expected = [
        ("/record", "post", json!([{"token": ["record"]}])),
        ("/collect", "get", either_read.clone()),
        ("/collect", "post", either_read.clone()),
        ("/v1/vehicles/{vehicle_id}/readings", "post", json!([{"token": ["record"]}])),
        ("/v1/vehicles/{vehicle_id}", "get", either_read.clone()),
        ("/v1/vehicles/{vehicle_id}/signals/{signal}", "get", either_read.clone()),
        ("/v1/vehicles/{vehicle_id}/stream", "get", either_read.clone()),
        ("/collect/stream", "get", either_read),
        ("/v1/vehicles", "get", json!([{"token": ["fleet"]}])),
        ("/v1/signals", "get", json!([{"token": []}])),
    ];
    for (path, method, security) in expected {
        let operation = &document["paths"][path][method];
        assert_eq!(operation["security"], security, "{method} {path}");
        for status in ["401", "403"] {
            let answer = &operation["responses"][status];
            assert!(answer["headers"]["WWW-Authenticate"].is_object(), "{method} {path} {status}");
        }
    }
    for open in ["/healthz", "/readyz"] {
        assert!(document["paths"][open]["get"].get("security").is_none(), "{open}");
    }
    // `/metrics` needs the `metrics` scope (tested in settings and the table)
    // but is not part of the API document.
    assert!(document["paths"].get("/metrics").is_none());

    let open_app = spawn_app(Backend::Memory).await;
    let document = open_app.get("/openapi.json").await.json();
    assert!(
        !document.to_string().contains("\"security\":"),
        "auth off: no operation needs a token"
    );
}
