//! Every route × every kind of credential: the status, the `WWW-Authenticate`
//! challenge, a problem that says which failure it was, and that a refused
//! request stored nothing and revealed nothing.

use serde_json::{Value, json};

use super::{ISSUER, Issuer, SECRET, hs256_token, now, spawn_secured, unsigned_token};
use crate::common::{Answer, Backend};

/// A value only the refused writes send: it must never be stored.
const REFUSED_MARK: f64 = 66.6;
/// The value the setup stores for `car-1`: a refused read must not show it.
const STORED_MARK: f64 = 91.25;

/// One route of the table and the scope it needs (`None`: any valid token).
struct Route {
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    scope: Option<&'static str>,
    /// Whether it is about `car-1` (so a token for another vehicle is refused).
    about_car: bool,
}

fn routes() -> Vec<Route> {
    let reading = json!({"vehicle_id": "car-1", "engine_temperature": REFUSED_MARK});
    let route =
        |method, path, body, scope, about_car| Route { method, path, body, scope, about_car };
    vec![
        route("POST", "/record", Some(reading.clone()), Some("record"), true),
        route("GET", "/collect?vehicle_id=car-1", None, Some("read"), true),
        route("POST", "/collect", Some(json!({"vehicle_id": "car-1"})), Some("read"), true),
        route(
            "POST",
            "/v1/vehicles/car-1/readings",
            Some(json!({"engine_temperature": REFUSED_MARK})),
            Some("record"),
            true,
        ),
        route("GET", "/v1/vehicles/car-1", None, Some("read"), true),
        route("GET", "/v1/vehicles/car-1/signals/engine_temperature", None, Some("read"), true),
        route("GET", "/v1/signals", None, None, false),
        route("GET", "/v1/vehicles", None, Some("fleet"), false),
        route("GET", "/metrics", None, Some("metrics"), false),
    ]
}

/// What a credential should get.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// 401 `invalid_token` whose detail mentions this.
    Unauthorized(&'static str),
    /// 403 `insufficient_scope` whose detail mentions this.
    Forbidden(&'static str),
    Ok,
}

/// The credentials of the table, for `route`: (name, token, expectation).
fn credentials(issuer: &Issuer, route: &Route) -> Vec<(&'static str, Option<String>, Expect)> {
    use Expect::*;
    let scope = route.scope.unwrap_or("read");
    let right = Issuer::claims(scope, &["car-1"]);
    let with = |changes: Value| {
        let mut claims = right.clone();
        claims.as_object_mut().unwrap().extend(changes.as_object().unwrap().clone());
        claims
    };
    let good = issuer.ed.sign(&right);
    let (head, _) = good.rsplit_once('.').unwrap();
    let other_key = super::SigningKey::ed25519("ed-1");
    // Every scope but the one needed (and `fleet`, which reads everything).
    let lacking = match route.scope {
        Some("record") => "read metrics",
        Some("metrics") => "record read",
        _ => "record metrics",
    };
    let by_secret = hs256_token(&json!({"alg": "HS256", "typ": "JWT"}), &right, SECRET.as_bytes());
    let confusion = hs256_token(
        &json!({"alg": "HS256", "typ": "JWT", "kid": issuer.rsa.kid}),
        &right,
        issuer.rsa.public_pem.as_bytes(),
    );
    let for_route = |refused: Expect| if route.scope.is_some() { refused } else { Ok };
    let for_car = |refused: Expect| if route.about_car { refused } else { Ok };
    vec![
        ("no token", None, Unauthorized("no access token")),
        ("garbage", Some("not-a-jwt".into()), Unauthorized("not a well-formed JWT")),
        (
            "bad signature",
            Some(format!("{head}.{}", other_key.sign(&right).rsplit_once('.').unwrap().1)),
            Unauthorized("signature does not verify"),
        ),
        ("alg none", Some(unsigned_token(&right)), Unauthorized("algorithm")),
        // HS256 is verified with the shared secret only, never a public key.
        (
            "HS256 with the RSA public key",
            Some(confusion),
            Unauthorized("signature does not verify"),
        ),
        (
            "expired",
            Some(issuer.ed.sign(&with(json!({"exp": now() - 3600, "iat": now() - 7200})))),
            Unauthorized("expired"),
        ),
        (
            "not yet valid",
            Some(issuer.ed.sign(&with(json!({"nbf": now() + 3600})))),
            Unauthorized("not valid yet"),
        ),
        (
            "wrong issuer",
            Some(issuer.ed.sign(&with(json!({"iss": "https://evil.example.com"})))),
            Unauthorized("issuer"),
        ),
        (
            "wrong audience",
            Some(issuer.ed.sign(&with(json!({"aud": "someone-else"})))),
            Unauthorized("audience"),
        ),
        (
            "without the scope",
            Some(issuer.token(lacking, &["car-1"])),
            for_route(Forbidden("lacks the")),
        ),
        (
            "for another vehicle",
            Some(issuer.token(scope, &["car-2"])),
            for_car(Forbidden("does not cover vehicle `car-1`")),
        ),
        ("right token", Some(good), Ok),
        ("right token, by the shared secret", Some(by_secret), Ok),
    ]
}

/// Asserts `answer` is what `expect` says, and reveals nothing of `car-1`.
fn check(answer: &Answer, expect: Expect, case: &str) {
    let challenge = answer.headers.get("www-authenticate").map(|v| v.to_str().unwrap());
    match expect {
        Expect::Ok => {
            assert!(answer.status.is_success(), "{case}: {} {}", answer.status, answer.text);
            assert_eq!(challenge, None, "{case}");
            return;
        }
        Expect::Unauthorized(needle) => {
            let body = answer.assert_problem(401, needle);
            assert_eq!(body["type"], "urn:tributary:problem:unauthorized", "{case}");
            let challenge = challenge.unwrap_or_else(|| panic!("{case}: no WWW-Authenticate"));
            assert!(
                challenge.starts_with(
                    "Bearer realm=\"tributary\", error=\"invalid_token\", error_description=\""
                ),
                "{case}: {challenge}"
            );
        }
        Expect::Forbidden(needle) => {
            let body = answer.assert_problem(403, needle);
            assert_eq!(body["type"], "urn:tributary:problem:forbidden", "{case}");
            assert!(body["scope"].is_string(), "{case}: {body}");
            let challenge = challenge.unwrap_or_else(|| panic!("{case}: no WWW-Authenticate"));
            assert!(challenge.contains("error=\"insufficient_scope\""), "{case}: {challenge}");
            assert!(challenge.contains("scope=\""), "{case}: {challenge}");
        }
    }
    for secret in
        [STORED_MARK.to_string(), "current_engine_temperature".into(), "tributary_".into()]
    {
        assert!(!answer.text.contains(&secret), "{case} revealed {secret}: {}", answer.text);
    }
    assert_eq!(answer.header("cache-control"), "no-store", "{case}");
}

async fn every_route_refuses_every_bad_credential(backend: Backend) {
    let issuer = Issuer::new();
    let app = spawn_secured(backend, &issuer, |_| {}).await;
    let admin = issuer.admin();
    let setup = json!({"vehicle_id": "car-1", "engine_temperature": STORED_MARK});
    assert_eq!(app.call("POST", "/record", Some(&setup), Some(&admin)).await.status, 200);

    let mut stored = 1;
    for route in routes() {
        for (name, token, expect) in credentials(&issuer, &route) {
            let case = format!("{} {} with {name}", route.method, route.path);
            let answer =
                app.call(route.method, route.path, route.body.as_ref(), token.as_deref()).await;
            check(&answer, expect, &case);
            if let Some(token) = &token {
                assert!(!answer.text.contains(token.as_str()), "{case} echoed the token");
            }
            if expect == Expect::Ok && route.scope == Some("record") {
                stored += 1;
            }
        }
    }

    // Only the right tokens' writes were stored, and `car-2` was never created.
    let summary = app.call("GET", "/v1/vehicles/car-1", None, Some(&admin)).await;
    let summary = summary.json();
    let signal = &summary["signals"]["engine_temperature"];
    assert_eq!(signal["count"], stored, "{summary}");
    let window =
        app.call("GET", "/v1/vehicles/car-1/signals/engine_temperature", None, Some(&admin));
    let window = window.await.json();
    let marked = window["readings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|reading| reading["value"] == json!(REFUSED_MARK))
        .count();
    assert_eq!(marked, stored - 1, "only the right tokens wrote {REFUSED_MARK}: {window}");
    let car_2 = app.call("GET", "/v1/vehicles/car-2", None, Some(&admin)).await;
    car_2.assert_problem(404, "has sent no readings");

    // Refusals are counted by reason, never by token or subject.
    let metrics = app.call("GET", "/metrics", None, Some(&admin)).await.text;
    for reason in ["missing_token", "expired", "bad_signature", "insufficient_scope"] {
        let series = format!("tributary_auth_refusals_total{{reason=\"{reason}\"}}");
        assert!(metrics.contains(&series), "no {series} in:\n{metrics}");
    }
    assert!(!metrics.contains("tester") && !metrics.contains(ISSUER), "{metrics}");
}

/// 403 comes before 404: a caller cannot learn whether a vehicle it may not
/// read exists.
async fn a_vehicle_the_token_does_not_hold_is_forbidden_whether_or_not_it_exists(backend: Backend) {
    let issuer = Issuer::new();
    let app = spawn_secured(backend, &issuer, |_| {}).await;
    let reading = json!({"engine_temperature": 80});
    let admin = issuer.admin();
    let stored = app.call("POST", "/v1/vehicles/car-1/readings", Some(&reading), Some(&admin));
    assert_eq!(stored.await.status, 200);
    let phone = issuer.token("read", &["car-2"]);
    for vehicle in ["car-1", "never-seen"] {
        let answer = app.call("GET", &format!("/v1/vehicles/{vehicle}"), None, Some(&phone)).await;
        let body = answer.assert_problem(403, "does not cover vehicle");
        assert_eq!(body["vehicle"], vehicle, "{body}");
        let path = format!("/v1/vehicles/{vehicle}/signals/engine_temperature");
        app.call("GET", &path, None, Some(&phone)).await.assert_problem(403, vehicle);
        let collect = format!("/collect?vehicle_id={vehicle}");
        app.call("GET", &collect, None, Some(&phone)).await.assert_problem(403, vehicle);
    }
    // Its own vehicle, never seen: the usual 404.
    let own = app.call("GET", "/v1/vehicles/car-2", None, Some(&phone)).await;
    own.assert_problem(404, "has sent no readings");
}

/// A device token names its vehicle in `sub`; `/record` without a `vehicle_id`
/// writes that vehicle, and a phone's `/collect` without one reads its own.
async fn a_device_token_writes_its_own_vehicle_and_a_phone_reads_its_own(backend: Backend) {
    let issuer = Issuer::new();
    let app = spawn_secured(backend, &issuer, |_| {}).await;
    let mut device = Issuer::claims("record", &[]);
    device.as_object_mut().unwrap().remove("vehicles");
    device["sub"] = json!("car-7");
    let device = issuer.ed.sign(&device);
    let reading = json!({"engine_temperature": 88.5});
    let answer = app.call("POST", "/record", Some(&reading), Some(&device)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.text, r#"{"success":true}"#);

    let phone = issuer.token("read", &["car-7"]);
    let collected = app.call("GET", "/collect", None, Some(&phone)).await;
    assert_eq!(collected.json()["current_engine_temperature"], 88.5, "{}", collected.text);
    // The default car was never written.
    let admin = issuer.admin();
    let default = app.call("GET", "/v1/vehicles/default", None, Some(&admin)).await;
    default.assert_problem(404, "has sent no readings");

    // A body naming another car is refused, and not charged to anything.
    let other = json!({"vehicle_id": "car-8", "engine_temperature": 1});
    let refused = app.call("POST", "/record", Some(&other), Some(&device)).await;
    refused.assert_problem(403, "car-8");
    let car_8 = app.call("GET", "/v1/vehicles/car-8", None, Some(&admin)).await;
    car_8.assert_problem(404, "has sent no readings");
}

/// A refused write is not charged to the vehicle's rate limit.
async fn refused_writes_do_not_use_the_vehicles_rate_limit(backend: Backend) {
    let issuer = Issuer::new();
    let app = spawn_secured(backend, &issuer, |settings| {
        settings.vehicle_rate = 1;
        settings.vehicle_burst = 1000;
    })
    .await;
    let batch: Vec<Value> = (0..1000).map(|i| json!({"engine_temperature": i % 100})).collect();
    let batch = Value::Array(batch);
    let stranger = issuer.token("record", &["car-2"]);
    for _ in 0..3 {
        let answer =
            app.call("POST", "/v1/vehicles/car-1/readings", Some(&batch), Some(&stranger)).await;
        answer.assert_problem(403, "car-1");
    }
    let owner = issuer.token("record", &["car-1"]);
    let answer = app.call("POST", "/v1/vehicles/car-1/readings", Some(&batch), Some(&owner)).await;
    assert_eq!(answer.status, 200, "the burst is still whole: {}", answer.text);
}

/// A token in the query is accepted only on GET stream routes; elsewhere it
/// is a 400 that says where to put it, and two tokens are one too many.
async fn a_token_in_the_query_is_refused_where_only_the_header_counts(backend: Backend) {
    let issuer = Issuer::new();
    let app = spawn_secured(backend, &issuer, |_| {}).await;
    let token = issuer.token("read", &["car-1"]);
    let answer = app.get(&format!("/collect?vehicle_id=car-1&access_token={token}")).await;
    let body = answer.assert_problem(400, "accepted only on GET requests for streams");
    assert_eq!(body["type"], "urn:tributary:problem:invalid-token-request");
    assert!(answer.header("www-authenticate").contains("error=\"invalid_request\""));
    let twice = app
        .client
        .get(app.url("/collect?vehicle_id=car-1"))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {token}"));
    app.send(twice).await.assert_problem(400, "more than one access token");
}

async fn open_routes_need_no_token(backend: Backend) {
    let issuer = Issuer::new();
    let app = spawn_secured(backend, &issuer, |_| {}).await;
    assert_eq!(app.get("/healthz").await.status, 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.json()["auth"], "required", "{}", ready.text);
    assert_eq!(app.get("/openapi.json").await.status, 200);
}

on_both_stores!(
    every_route_refuses_every_bad_credential,
    a_vehicle_the_token_does_not_hold_is_forbidden_whether_or_not_it_exists,
    a_device_token_writes_its_own_vehicle_and_a_phone_reads_its_own,
    refused_writes_do_not_use_the_vehicles_rate_limit,
    a_token_in_the_query_is_refused_where_only_the_header_counts,
    open_routes_need_no_token,
);
