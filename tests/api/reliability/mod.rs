//! Reliability under failure: Redis killed under a steady write load, a Redis
//! that stops answering, and SIGTERM under load. Each test states a promise a
//! client can build on; see the README's "Operating it".

mod redis_down;
mod shutdown;
mod shutdown_delay;

use std::collections::BTreeSet;

use crate::common::TestApp;
use serde_json::{Value, json};

/// The widest window: every reading a test sends stays in it, so the window
/// shows exactly which readings Redis holds.
const WINDOW: u32 = 10_000;

/// Milliseconds since the epoch a minute ago: device timestamps for readings
/// numbered from 0, one millisecond apart, never in the future.
fn a_minute_ago_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    i64::try_from(now.as_millis()).unwrap() - 60_000
}

/// Reading `seq` of a writer: its own device timestamp, and its number as the value.
fn reading(base_ms: i64, seq: u32) -> Value {
    json!({"timestamp": base_ms + i64::from(seq), "engine_rpm": seq})
}

/// What a vehicle's `engine_rpm` window holds: the values, and the signal's `total`.
async fn stored(app: &TestApp, vehicle: &str) -> (BTreeSet<u32>, u64) {
    let answer = app.get(&format!("/v1/vehicles/{vehicle}/signals/engine_rpm")).await;
    assert_eq!(answer.status, 200, "{vehicle}: {}", answer.text);
    let window = answer.json();
    let values = window["readings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_f64().unwrap() as u32)
        .collect();
    (values, window["total"].as_u64().unwrap())
}

/// What a writer's vehicle holds (`stored`) after it sent readings `0..sent`:
/// every acknowledged one, none it never sent, and a total that counts each
/// stored reading once.
fn assert_stored_as_sent(
    who: &str,
    (values, total): (&BTreeSet<u32>, u64),
    acknowledged: &BTreeSet<u32>,
    sent: usize,
) {
    let lost: Vec<_> = acknowledged.difference(values).collect();
    assert!(lost.is_empty(), "{who}: acknowledged readings lost: {lost:?}");
    assert!(values.iter().all(|&v| (v as usize) < sent), "{who}: a reading never sent is stored");
    assert_eq!(total, values.len() as u64, "{who}: total counts each stored reading once");
}
