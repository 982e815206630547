//! The v1 fleet API on both stores: batches stored all or nothing, device
//! timestamps deciding the order, resends that change nothing, per-vehicle
//! isolation, the seed's endpoints growing without breaking, the signal catalog,
//! the fleet list, and retention. The OpenAPI document is tested in `openapi/`.

mod catalog;
mod legacy_grown;
mod list;
mod order;
mod readings;
mod reads;
mod retention;

use std::time::{SystemTime, UNIX_EPOCH};

use crate::common::{Answer, TestApp};
use serde_json::Value;

/// `2025-06-01T12:00:00Z`, in milliseconds since the epoch: a device timestamp
/// safely in the past.
const BASE_MILLIS: i64 = 1_748_779_200_000;

/// `2025-06-01T12:00:<second>Z`, as a device would send it.
fn at(second: u32) -> String {
    assert!(second < 60);
    format!("2025-06-01T12:00:{second:02}Z")
}

fn now_millis() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since_epoch.as_millis()).unwrap()
}

async fn post_readings(app: &TestApp, vehicle: &str, body: &Value) -> Answer {
    app.post_json(&format!("/v1/vehicles/{vehicle}/readings"), body).await
}

/// Posts readings that must be accepted; returns how many values were.
async fn accept(app: &TestApp, vehicle: &str, body: &Value) -> u64 {
    let answer = post_readings(app, vehicle, body).await;
    assert_eq!(answer.status, 200, "{body}: {}", answer.text);
    assert_eq!(answer.content_type, "application/json");
    answer.json()["accepted"].as_u64().unwrap()
}

/// `GET /v1/vehicles/{vehicle}`, which must answer 200.
async fn vehicle(app: &TestApp, vehicle: &str) -> Value {
    let answer = app.get(&format!("/v1/vehicles/{vehicle}")).await;
    assert_eq!(answer.status, 200, "{vehicle}: {}", answer.text);
    answer.json()
}

/// `GET /v1/vehicles/{vehicle}/signals/{signal}`, which must answer 200.
async fn signal(app: &TestApp, vehicle: &str, signal: &str) -> Value {
    let answer = app.get(&format!("/v1/vehicles/{vehicle}/signals/{signal}")).await;
    assert_eq!(answer.status, 200, "{vehicle}/{signal}: {}", answer.text);
    answer.json()
}

/// The window of a signal as (timestamp, value) pairs, newest first.
async fn window(app: &TestApp, vehicle: &str, name: &str) -> Vec<(String, f64)> {
    signal(app, vehicle, name).await["readings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["timestamp"].as_str().unwrap().to_owned(), r["value"].as_f64().unwrap()))
        .collect()
}

async fn assert_never_seen(app: &TestApp, vehicle: &str) {
    app.get(&format!("/v1/vehicles/{vehicle}")).await.assert_problem(404, "has sent no readings");
}

async fn collect_for(app: &TestApp, query: &str) -> Value {
    let answer = app.get(&format!("/collect{query}")).await;
    assert_eq!(answer.status, 200, "{query}: {}", answer.text);
    answer.json()
}

/// Every key in the Redis behind `app`.
fn keys(app: &mut TestApp) -> Vec<String> {
    let reply = app.redis().command(&["KEYS", "*"]);
    // `*<n>` then `$<len>` / `<key>` pairs.
    let mut lines = reply.split("\r\n");
    let count: usize = lines.next().unwrap()[1..].parse().unwrap();
    let keys: Vec<String> =
        lines.filter(|l| !l.is_empty() && !l.starts_with('$')).map(str::to_owned).collect();
    assert_eq!(keys.len(), count, "{reply:?}");
    keys
}
