//! `tributary simulate` against the real server, started in-process on a free
//! port: what a person does by hand with two terminals, checked end to end.

use std::time::Duration;

use crate::common::{Backend, TestApp, free_port, spawn_app};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tributary::simulate::{Compress, Report, SimulateSettings, run};

const CARS: [&str; 3] = ["sim-001", "sim-002", "sim-003"];
const SIGNALS: [&str; 4] =
    ["engine_temperature", "vehicle_speed", "engine_rpm", "cabin_temperature"];

/// Three cars at 20 readings per second for one second.
fn settings(server: &str, batch: u32) -> SimulateSettings {
    SimulateSettings {
        server: server.to_owned(),
        vehicles: 3,
        rate: 20.0,
        batch,
        duration: Some(Duration::from_secs(1)),
        prefix: "sim-".to_owned(),
        seed: Some(7),
        summary_interval: Duration::from_millis(250),
        compress: Compress::None,
    }
}

async fn simulate(settings: SimulateSettings) -> Report {
    run(settings, std::future::pending()).await.expect("the simulator runs")
}

/// Asserts every car has a summary of every signal, and that the server stored
/// exactly the readings the simulator counted as sent.
async fn assert_the_server_holds_what_was_sent(app: &TestApp, report: &Report) {
    let mut stored = 0;
    for car in CARS {
        let answer = app.get(&format!("/v1/vehicles/{car}")).await;
        assert_eq!(answer.status, 200, "{car}: {}", answer.text);
        let body = answer.json();
        for signal in SIGNALS {
            assert!(body["signals"][signal].is_object(), "{car} has no {signal}: {body}");
        }
        stored += body["signals"]["engine_temperature"]["total"]
            .as_u64()
            .unwrap_or_else(|| panic!("{car}: no total in {body}"));
    }
    assert_eq!(stored, report.sent_readings, "{report:?}");
}

async fn the_fleet_feeds_a_real_server_one_reading_per_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let report = simulate(settings(&app.address, 1)).await;
    assert!(report.sent_readings > 0, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(report.requests, report.sent_readings, "{report:?}");
    assert!(report.max_us > 0 && report.p50_us <= report.max_us, "{report:?}");
    assert_the_server_holds_what_was_sent(&app, &report).await;
    app.stop().await;
}

async fn batched_readings_keep_their_sample_times(backend: Backend) {
    let app = spawn_app(backend).await;
    let report = simulate(settings(&app.address, 5)).await;
    assert!(report.sent_readings > 0, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    // Full batches of five, plus at most one partial batch per car at the end.
    assert!(report.requests <= report.sent_readings / 5 + 3, "{report:?}");
    assert_the_server_holds_what_was_sent(&app, &report).await;

    // The device timestamps survive batching: 20 readings per second are 50 ms apart.
    let answer = app.get("/v1/vehicles/sim-001/signals/engine_rpm").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body = answer.json();
    let times: Vec<i128> = body["readings"]
        .as_array()
        .unwrap_or_else(|| panic!("no readings in {body}"))
        .iter()
        .map(|reading| millis(&reading["timestamp"]))
        .collect();
    assert!(times.len() >= 5, "{body}");
    for pair in times.windows(2) {
        let gap = pair[0] - pair[1];
        assert!(gap > 0 && gap % 50 == 0, "readings {gap} ms apart: {body}");
    }
    app.stop().await;
}

/// `--compress gzip` and `--compress zstd`: the server decompresses each batch
/// and stores every reading sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_batches_are_stored_whole() {
    for compress in [Compress::Gzip, Compress::Zstd] {
        let app = spawn_app(Backend::Memory).await;
        let report = simulate(SimulateSettings { compress, ..settings(&app.address, 5) }).await;
        assert!(report.sent_readings > 0, "{compress:?}: {report:?}");
        assert_eq!(report.errors, 0, "{compress:?}: {report:?}");
        assert_the_server_holds_what_was_sent(&app, &report).await;
        let metrics = app.get("/metrics").await.text;
        let accepted = format!("tributary_readings_accepted_total {}", report.sent_readings * 4);
        assert!(metrics.contains(&accepted), "{compress:?}: {accepted} not in\n{metrics}");
        app.stop().await;
    }
}

on_both_stores!(
    the_fleet_feeds_a_real_server_one_reading_per_request,
    batched_readings_keep_their_sample_times,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_sends_what_each_car_has_buffered() {
    let app = spawn_app(Backend::Memory).await;
    let mut settings = settings(&app.address, 1000);
    settings.duration = None;
    // Stands in for Ctrl-C.
    let stop = tokio::time::sleep(Duration::from_millis(500));
    let report = run(settings, stop).await.expect("the simulator runs");
    assert_eq!(report.requests, 3, "one final batch per car: {report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    assert!(report.sent_readings >= 3, "{report:?}");
    assert_the_server_holds_what_was_sent(&app, &report).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_an_absent_server_are_counted_not_fatal() {
    let app = spawn_app(Backend::Memory).await;
    let short = |server: String| SimulateSettings {
        duration: Some(Duration::from_millis(300)),
        ..settings(&server, 1)
    };

    // Every request reaches the server and is answered 404.
    let report = simulate(short(format!("{}/nowhere", app.address))).await;
    assert_eq!(report.sent_readings, 0, "{report:?}");
    assert!(report.errors > 0, "{report:?}");
    assert_eq!(report.errors, report.requests, "{report:?}");
    assert!(report.max_us > 0, "refusals still have a latency: {report:?}");

    // Nobody listens: no answers, so no latencies either.
    let report = simulate(short(format!("http://127.0.0.1:{}", free_port()))).await;
    assert_eq!(report.sent_readings, 0, "{report:?}");
    assert!(report.errors > 0, "{report:?}");
    assert_eq!(report.errors, report.requests, "{report:?}");
    assert_eq!(report.max_us, 0, "{report:?}");
    app.stop().await;
}

fn millis(timestamp: &Value) -> i128 {
    let text = timestamp.as_str().expect("timestamps are RFC 3339 strings");
    let at = OffsetDateTime::parse(text, &Rfc3339).expect("a valid RFC 3339 timestamp");
    at.unix_timestamp_nanos() / 1_000_000
}
