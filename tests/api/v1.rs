//! The v1 fleet API on both stores: batches stored all or nothing, device
//! timestamps deciding the order, resends that change nothing, per-vehicle
//! isolation, the seed's endpoints growing without breaking, the signal catalog,
//! and retention. The OpenAPI document is tested in `openapi.rs`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::{Answer, Backend, TestApp, eventually, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use tributary::config::ServeSettings;
use tributary::domain::{Reading, SignalName, StampedBy, Timestamp, VehicleId};
use tributary::store::{MemoryStore, Store};

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

// ---------------------------------------------------------------------------
// POST /v1/vehicles/{id}/readings

async fn one_reading_object_is_accepted_and_counts_every_signal_value(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = json!({"engine_temperature": 88.5, "vehicle_speed": 42, "engine_rpm": 2100});
    assert_eq!(accept(&app, "car-1", &body).await, 3);
    let summary = vehicle(&app, "car-1").await;
    let names: Vec<&String> = summary["signals"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["engine_rpm", "engine_temperature", "vehicle_speed"]);
    assert_eq!(summary["signals"]["engine_temperature"]["current"], 88.5);
}

async fn a_batch_is_accepted_and_counts_every_signal_value(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = json!([
        {"timestamp": at(0), "engine_rpm": 800, "vehicle_speed": 0},
        {"timestamp": at(1), "engine_rpm": 1500},
        {"timestamp": at(2), "engine_rpm": 2500, "vehicle_speed": 30, "cabin_temperature": 21.5},
    ]);
    assert_eq!(accept(&app, "car-1", &body).await, 6);
    let rpm = signal(&app, "car-1", "engine_rpm").await;
    assert_eq!(rpm["count"], 3);
    assert_eq!(rpm["current"], 2500.0);
    assert_eq!(signal(&app, "car-1", "vehicle_speed").await["count"], 2);
    assert_eq!(signal(&app, "car-1", "cabin_temperature").await["count"], 1);
}

async fn a_batch_with_one_bad_reading_names_it_and_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = json!([
        {"timestamp": at(0), "engine_rpm": 800},
        {"timestamp": at(1), "engine_rpm": 900, "vehicle_speed": 10},
        {"timestamp": at(2), "engine_rpm": 20_000},
        {"timestamp": at(3), "engine_rpm": 1000},
    ]);
    let problem = post_readings(&app, "car-1", &body).await.assert_problem(422, "/2/engine_rpm");
    assert_eq!(problem["errors"][0]["pointer"], "/2/engine_rpm");
    assert_eq!(problem["errors"].as_array().unwrap().len(), 1, "{problem}");
    assert_never_seen(&app, "car-1").await;

    // Not an object in the middle of a batch is named by index alone.
    let body = json!([{"engine_rpm": 800}, 5]);
    let problem =
        post_readings(&app, "car-1", &body).await.assert_problem(422, "must be a JSON object");
    assert_eq!(problem["errors"][0]["pointer"], "/1");
    assert_never_seen(&app, "car-1").await;
}

async fn batches_hold_1_to_1000_readings(backend: Backend) {
    let app = spawn_app(backend).await;
    let item = json!({"engine_rpm": 800});
    let too_many = Value::Array(vec![item.clone(); 1001]);
    post_readings(&app, "car-1", &too_many).await.assert_problem(422, "at most 1000");
    post_readings(&app, "car-1", &json!([])).await.assert_problem(422, "empty");
    assert_never_seen(&app, "car-1").await;

    // The limit itself is fine; readings without timestamps get distinct stamps.
    let most = Value::Array(vec![item; 1000]);
    assert_eq!(accept(&app, "car-1", &most).await, 1000);
    assert_eq!(signal(&app, "car-1", "engine_rpm").await["total"], 1000);
}

async fn timestamps_more_than_five_minutes_ahead_are_rejected(backend: Backend) {
    let app = spawn_app(backend).await;
    let six_minutes_ahead = now_millis() + 6 * 60 * 1000;
    let tomorrow = Timestamp::from_millis(now_millis() + 24 * 3600 * 1000).unwrap().to_rfc3339();
    for timestamp in [json!(six_minutes_ahead), json!(tomorrow)] {
        let body = json!({"timestamp": timestamp, "engine_rpm": 800});
        let problem = post_readings(&app, "car-1", &body)
            .await
            .assert_problem(422, "more than 5 minutes ahead");
        assert_eq!(problem["errors"][0]["pointer"], "/timestamp");
    }
    let batch = json!([
        {"timestamp": at(0), "engine_rpm": 800},
        {"timestamp": six_minutes_ahead, "engine_rpm": 900},
    ]);
    let problem = post_readings(&app, "car-1", &batch).await.assert_problem(422, "5 minutes ahead");
    assert_eq!(problem["errors"][0]["pointer"], "/1/timestamp");
    assert_never_seen(&app, "car-1").await;

    // A device clock a little ahead of the server's is tolerated.
    let four_minutes_ahead = now_millis() + 4 * 60 * 1000;
    let body = json!({"timestamp": four_minutes_ahead, "engine_rpm": 1000});
    assert_eq!(accept(&app, "car-1", &body).await, 1);
    let expected = Timestamp::from_millis(four_minutes_ahead).unwrap().to_rfc3339();
    assert_eq!(signal(&app, "car-1", "engine_rpm").await["updated_at"], expected);
}

async fn rfc3339_and_epoch_millisecond_timestamps_name_the_same_instant(backend: Backend) {
    let app = spawn_app(backend).await;
    accept(&app, "car-1", &json!({"timestamp": BASE_MILLIS, "engine_rpm": 1000})).await;
    assert_eq!(window(&app, "car-1", "engine_rpm").await, [(at(0), 1000.0)]);
    // The same instant as RFC 3339 (with an offset) replaces it rather than adding one.
    accept(&app, "car-1", &json!({"timestamp": "2025-06-01T14:00:00+02:00", "engine_rpm": 2000}))
        .await;
    assert_eq!(window(&app, "car-1", "engine_rpm").await, [(at(0), 2000.0)]);
    // Milliseconds survive in both forms.
    accept(
        &app,
        "car-1",
        &json!([
            {"timestamp": BASE_MILLIS + 1250, "engine_rpm": 3000},
            {"timestamp": "2025-06-01T12:00:02.500Z", "engine_rpm": 4000},
        ]),
    )
    .await;
    assert_eq!(
        window(&app, "car-1", "engine_rpm").await,
        [
            ("2025-06-01T12:00:02.5Z".to_owned(), 4000.0),
            ("2025-06-01T12:00:01.25Z".to_owned(), 3000.0),
            (at(0), 2000.0),
        ]
    );
    // Neither form accepts garbage.
    for timestamp in [json!("noon"), json!(1.5), json!(-1), json!(true)] {
        let body = json!({"timestamp": timestamp, "engine_rpm": 800});
        let problem = post_readings(&app, "car-2", &body).await.assert_problem(422, "/timestamp");
        assert_eq!(problem["errors"][0]["pointer"], "/timestamp", "{timestamp}");
    }
    assert_never_seen(&app, "car-2").await;
}

async fn vss_paths_are_accepted_as_signal_names(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = json!({
        "timestamp": at(0),
        "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature": 90,
        "Vehicle.Speed": 88,
        "Vehicle.Powertrain.CombustionEngine.Speed": 2500,
        "Vehicle.Cabin.HVAC.AmbientAirTemperature": 21,
    });
    assert_eq!(accept(&app, "car-1", &body).await, 4);
    let signals = &vehicle(&app, "car-1").await["signals"];
    assert_eq!(signals["engine_temperature"]["current"], 90.0);
    assert_eq!(signals["vehicle_speed"]["current"], 88.0);
    assert_eq!(signals["engine_rpm"]["current"], 2500.0);
    assert_eq!(signals["cabin_temperature"]["current"], 21.0);

    // A signal given by name and by path in one reading is ambiguous.
    let twice = json!({"engine_rpm": 1000, "Vehicle.Powertrain.CombustionEngine.Speed": 1100});
    post_readings(&app, "car-2", &twice).await.assert_problem(422, "given twice");
    assert_never_seen(&app, "car-2").await;
}

async fn invalid_vehicle_ids_in_the_path_are_refused_and_nothing_is_stored(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let too_long = "x".repeat(65);
    let body = json!({"engine_rpm": 800});
    for id in ["a%20b", too_long.as_str(), "a:b", "%7Bx%7D", "a%2Fb", "a*"] {
        for answer in [
            post_readings(&app, id, &body).await,
            app.get(&format!("/v1/vehicles/{id}")).await,
            app.get(&format!("/v1/vehicles/{id}/signals/engine_rpm")).await,
        ] {
            let problem = answer.assert_problem(422, "not a valid vehicle id");
            assert_eq!(problem["errors"][0]["parameter"], "vehicle_id", "{id}");
            assert!(problem["errors"][0].get("pointer").is_none(), "{problem}");
        }
    }
    // Not UTF-8, or no id at all: still a problem, never a stored reading.
    for path in ["/v1/vehicles/%FF/readings", "/v1/vehicles//readings"] {
        let answer = app.post_json(path, &body).await;
        assert!(answer.status.is_client_error(), "{path}: {}", answer.text);
        answer.assert_problem(answer.status.as_u16(), "");
    }

    // The longest valid id is fine, so the refusal above was about the id.
    let longest = "x".repeat(64);
    assert_eq!(accept(&app, &longest, &body).await, 1);
    for near_miss in ["a", "b", "ab", "a_b", "a-b", "x", "default"] {
        assert_never_seen(&app, near_miss).await;
    }
    if backend == Backend::Redis {
        let keys = keys(&mut app);
        let prefix = format!("tributary:{{{longest}}}:");
        assert!(keys.iter().all(|k| k.starts_with(&prefix)), "{keys:?}");
    }
}

async fn a_reading_object_may_not_name_a_vehicle(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = json!({"vehicle_id": "car-2", "engine_rpm": 800});
    let problem = post_readings(&app, "car-1", &body).await.assert_problem(422, "/vehicle_id");
    assert_eq!(problem["errors"][0]["pointer"], "/vehicle_id");
    assert_never_seen(&app, "car-1").await;
    assert_never_seen(&app, "car-2").await;
}

// ---------------------------------------------------------------------------
// Order and resends

async fn a_late_old_reading_does_not_become_current(backend: Backend) {
    let app = spawn_app(backend).await;
    accept(&app, "car-1", &json!({"timestamp": at(10), "engine_temperature": 90})).await;
    accept(&app, "car-1", &json!({"timestamp": at(5), "engine_temperature": 40})).await;
    let summary = signal(&app, "car-1", "engine_temperature").await;
    assert_eq!(summary["current"], 90.0);
    assert_eq!(summary["updated_at"], at(10));
    assert_eq!(summary["average"], 65.0);
    assert_eq!(window(&app, "car-1", "engine_temperature").await, [(at(10), 90.0), (at(5), 40.0)]);

    // Within one batch, too: arrival order does not matter, timestamps do.
    accept(
        &app,
        "car-2",
        &json!([
            {"timestamp": at(3), "engine_rpm": 3000},
            {"timestamp": at(1), "engine_rpm": 1000},
            {"timestamp": at(2), "engine_rpm": 2000},
        ]),
    )
    .await;
    assert_eq!(
        window(&app, "car-2", "engine_rpm").await,
        [(at(3), 3000.0), (at(2), 2000.0), (at(1), 1000.0)]
    );
}

async fn a_late_reading_older_than_the_whole_window_changes_no_aggregate(backend: Backend) {
    let app = spawn_app(backend).await;
    let batch: Vec<Value> =
        (10..20).map(|s| json!({"timestamp": at(s), "engine_rpm": f64::from(s) * 100.0})).collect();
    accept(&app, "car-1", &Value::Array(batch)).await;
    let before = window(&app, "car-1", "engine_rpm").await;
    accept(&app, "car-1", &json!({"timestamp": at(0), "engine_rpm": 16_000})).await;
    let summary = signal(&app, "car-1", "engine_rpm").await;
    assert_eq!(window(&app, "car-1", "engine_rpm").await, before);
    assert_eq!(summary["count"], 10);
    assert_eq!(summary["max"], 1900.0);
    assert_eq!(
        summary["total"], 10,
        "a device-stamped reading older than a full window may be a resend: accepted, not kept, not counted"
    );
}

async fn the_order_of_readings_within_a_batch_changes_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.window = 3).await;
    let readings: Vec<Value> =
        (1..=6).map(|s| json!({"timestamp": at(s), "engine_rpm": f64::from(s) * 100.0})).collect();
    let newest_first: Vec<Value> = readings.iter().rev().cloned().collect();
    accept(&app, "oldest-first", &Value::Array(readings)).await;
    accept(&app, "newest-first", &Value::Array(newest_first)).await;
    let a = signal(&app, "oldest-first", "engine_rpm").await;
    let b = signal(&app, "newest-first", "engine_rpm").await;
    assert_eq!(a["total"], 6);
    for field in ["readings", "total", "count", "average"] {
        assert_eq!(a[field], b[field], "{field} differs with the order of the batch");
    }
}

async fn a_resent_batch_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let batch = json!([
        {"timestamp": at(1), "engine_rpm": 800, "vehicle_speed": 0},
        {"timestamp": at(2), "engine_rpm": 1200, "vehicle_speed": 12.5},
        {"timestamp": at(3), "engine_rpm": 2400, "vehicle_speed": 30},
    ]);
    assert_eq!(accept(&app, "car-1", &batch).await, 6);
    let signals_before = vehicle(&app, "car-1").await["signals"].clone();
    let rpm_before = signal(&app, "car-1", "engine_rpm").await;
    let speed_before = signal(&app, "car-1", "vehicle_speed").await;
    assert_eq!(rpm_before["total"], 3);

    for _ in 0..3 {
        // The resend is acknowledged like any other, so a device can retry blindly.
        assert_eq!(accept(&app, "car-1", &batch).await, 6);
    }
    // One reading resent alone, too.
    accept(&app, "car-1", &json!({"timestamp": at(2), "engine_rpm": 1200})).await;

    assert_eq!(vehicle(&app, "car-1").await["signals"], signals_before);
    assert_eq!(signal(&app, "car-1", "engine_rpm").await, rpm_before);
    assert_eq!(signal(&app, "car-1", "vehicle_speed").await, speed_before);
}

async fn a_resend_with_a_new_value_for_the_same_timestamp_replaces_it(backend: Backend) {
    let app = spawn_app(backend).await;
    accept(
        &app,
        "car-1",
        &json!([
            {"timestamp": at(1), "engine_rpm": 800},
            {"timestamp": at(2), "engine_rpm": 900},
        ]),
    )
    .await;
    accept(&app, "car-1", &json!({"timestamp": at(1), "engine_rpm": 850})).await;
    let summary = signal(&app, "car-1", "engine_rpm").await;
    assert_eq!(window(&app, "car-1", "engine_rpm").await, [(at(2), 900.0), (at(1), 850.0)]);
    assert_eq!(summary["count"], 2);
    assert_eq!(summary["total"], 2);
    assert_eq!(summary["min"], 850.0);

    // Within one batch the later of two readings with one timestamp wins, even
    // when one names the signal by its VSS path.
    accept(
        &app,
        "car-1",
        &json!([
            {"timestamp": at(2), "engine_rpm": 1000},
            {"timestamp": at(2), "Vehicle.Powertrain.CombustionEngine.Speed": 1100},
        ]),
    )
    .await;
    assert_eq!(window(&app, "car-1", "engine_rpm").await, [(at(2), 1100.0), (at(1), 850.0)]);
    assert_eq!(signal(&app, "car-1", "engine_rpm").await["total"], 2);
}

// ---------------------------------------------------------------------------
// GET /v1/vehicles/{id} and /v1/vehicles/{id}/signals/{signal}

async fn a_vehicle_summary_has_every_aggregate_of_every_signal_with_data(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = Timestamp::from_millis(now_millis() - 1).unwrap();
    accept(
        &app,
        "car-1",
        &json!([
            {"timestamp": at(1), "engine_temperature": 80, "vehicle_speed": 50},
            {"timestamp": at(3), "engine_temperature": 100},
            {"timestamp": at(2), "engine_temperature": 90},
        ]),
    )
    .await;
    let after = Timestamp::from_millis(now_millis() + 1).unwrap();

    let summary = vehicle(&app, "car-1").await;
    assert_eq!(summary["vehicle_id"], "car-1");
    let last_seen = Timestamp::parse_rfc3339(summary["last_seen"].as_str().unwrap())
        .expect("last_seen is RFC 3339");
    assert!(
        before <= last_seen && last_seen <= after,
        "last_seen is the server's receive time: {summary}"
    );
    assert_eq!(
        summary["signals"],
        json!({
            "engine_temperature": {
                "current": 100.0, "average": 90.0, "min": 80.0, "max": 100.0,
                "count": 3, "total": 3, "unit": "celsius", "updated_at": at(3),
            },
            "vehicle_speed": {
                "current": 50.0, "average": 50.0, "min": 50.0, "max": 50.0,
                "count": 1, "total": 1, "unit": "km/h", "updated_at": at(1),
            },
        }),
        "signals without data are left out"
    );
}

async fn a_vehicle_that_never_sent_anything_is_a_404_problem(backend: Backend) {
    let app = spawn_app(backend).await;
    let problem = app.get("/v1/vehicles/ghost").await.assert_problem(404, "has sent no readings");
    assert_eq!(problem["type"], "urn:tributary:problem:not-found");
    app.get("/v1/vehicles/ghost/signals/engine_rpm")
        .await
        .assert_problem(404, "has sent no readings");
}

async fn the_default_window_keeps_the_newest_ten_and_counts_them_all(backend: Backend) {
    let app = spawn_app(backend).await;
    let batch: Vec<Value> =
        (1..=25).map(|s| json!({"timestamp": at(s), "engine_temperature": f64::from(s)})).collect();
    assert_eq!(accept(&app, "car-1", &Value::Array(batch)).await, 25);
    let summary = signal(&app, "car-1", "engine_temperature").await;
    assert_eq!(summary["count"], 10);
    assert_eq!(summary["total"], 25);
    assert_eq!(summary["current"], 25.0);
    assert_eq!(summary["average"], 20.5);
    assert_eq!(summary["min"], 16.0);
    assert_eq!(summary["max"], 25.0);
    let expected: Vec<(String, f64)> = (16..=25).rev().map(|s| (at(s), f64::from(s))).collect();
    assert_eq!(window(&app, "car-1", "engine_temperature").await, expected);
    let in_summary = &vehicle(&app, "car-1").await["signals"]["engine_temperature"];
    assert_eq!((&in_summary["count"], &in_summary["total"]), (&json!(10), &json!(25)));
}

async fn a_signal_is_read_by_short_name_or_vss_path_newest_first(backend: Backend) {
    let app = spawn_app(backend).await;
    accept(
        &app,
        "car-1",
        &json!([
            {"timestamp": at(1), "vehicle_speed": 10},
            {"timestamp": at(3), "vehicle_speed": 30},
            {"timestamp": at(2), "vehicle_speed": 20},
        ]),
    )
    .await;
    let by_name = signal(&app, "car-1", "vehicle_speed").await;
    assert_eq!(
        by_name,
        json!({
            "vehicle_id": "car-1",
            "signal": "vehicle_speed",
            "readings": [
                {"timestamp": at(3), "value": 30.0},
                {"timestamp": at(2), "value": 20.0},
                {"timestamp": at(1), "value": 10.0},
            ],
            "current": 30.0, "average": 20.0, "min": 10.0, "max": 30.0,
            "count": 3, "total": 3, "unit": "km/h", "updated_at": at(3),
        })
    );
    assert_eq!(signal(&app, "car-1", "Vehicle.Speed").await, by_name);
}

async fn a_known_signal_without_data_is_an_empty_window(backend: Backend) {
    let app = spawn_app(backend).await;
    accept(&app, "car-1", &json!({"engine_rpm": 800})).await;
    assert_eq!(
        signal(&app, "car-1", "cabin_temperature").await,
        json!({
            "vehicle_id": "car-1", "signal": "cabin_temperature", "readings": [],
            "current": null, "average": null, "min": null, "max": null,
            "count": 0, "total": 0, "unit": "celsius", "updated_at": null,
        })
    );
}

async fn an_unknown_signal_is_a_404_problem_listing_the_known_ones(backend: Backend) {
    let app = spawn_app(backend).await;
    accept(&app, "car-1", &json!({"engine_rpm": 800})).await;
    for name in ["oil_pressure", "Vehicle.Nope", "ENGINE_RPM"] {
        app.get(&format!("/v1/vehicles/car-1/signals/{name}"))
            .await
            .assert_problem(404, "known signals: engine_temperature");
    }
    // The signal is checked before the vehicle.
    app.get("/v1/vehicles/ghost/signals/oil_pressure")
        .await
        .assert_problem(404, "there is no signal");
}

async fn vehicles_are_isolated(backend: Backend) {
    let app = spawn_app(backend).await;
    accept(&app, "car-a", &json!({"timestamp": at(1), "engine_rpm": 1000, "vehicle_speed": 40}))
        .await;
    assert_never_seen(&app, "car-b").await;
    accept(&app, "car-b", &json!({"timestamp": at(1), "engine_rpm": 3000})).await;

    let a = vehicle(&app, "car-a").await;
    let b = vehicle(&app, "car-b").await;
    assert_eq!(a["signals"]["engine_rpm"]["current"], 1000.0);
    assert_eq!(a["signals"]["engine_rpm"]["total"], 1);
    assert_eq!(b["signals"]["engine_rpm"]["current"], 3000.0);
    assert_eq!(b["signals"]["engine_rpm"]["total"], 1);
    assert!(b["signals"].get("vehicle_speed").is_none(), "{b}");
    assert_eq!(
        collect_for(&app, "?vehicle_id=car-b").await,
        json!({
            "current_engine_temperature": null, "average_engine_temperature": null,
            "current_engine_rpm": 3000.0, "average_engine_rpm": 3000.0,
        })
    );
    // Ids differ by case: `CAR-A` is another vehicle.
    assert_never_seen(&app, "CAR-A").await;
    assert_never_seen(&app, "default").await;
}

// ---------------------------------------------------------------------------
// The seed's endpoints, grown

async fn record_takes_a_vehicle_a_timestamp_and_several_signals(backend: Backend) {
    let app = spawn_app(backend).await;
    for (second, temperature, speed) in [(1, 90, 50), (2, 92, 54)] {
        let answer = app
            .post_record(&json!({
                "vehicle_id": "car-1",
                "timestamp": at(second),
                "engine_temperature": temperature,
                "vehicle_speed": speed,
                "Vehicle.Powertrain.CombustionEngine.Speed": 2000,
            }))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.text, r#"{"success":true}"#);
    }
    let expected = json!({
        "current_engine_temperature": 92.0, "average_engine_temperature": 91.0,
        "current_vehicle_speed": 54.0, "average_vehicle_speed": 52.0,
        "current_engine_rpm": 2000.0, "average_engine_rpm": 2000.0,
    });
    assert_eq!(collect_for(&app, "?vehicle_id=car-1").await, expected);
    let posted = app.post_json("/collect", &json!({"vehicle_id": "car-1"})).await;
    assert_eq!(posted.status, 200, "{}", posted.text);
    assert_eq!(posted.json(), expected);
    // Naming the vehicle in both places is fine when they agree.
    let both = app.post_json("/collect?vehicle_id=car-1", &json!({"vehicle_id": "car-1"})).await;
    assert_eq!(both.json(), expected);

    // The same readings through v1, with the device's timestamp.
    let summary = signal(&app, "car-1", "engine_temperature").await;
    assert_eq!(summary["updated_at"], at(2));
    assert_eq!(summary["total"], 2);
    // And the default vehicle saw none of it.
    assert_eq!(
        app.collect().await,
        json!({"current_engine_temperature": null, "average_engine_temperature": null})
    );
}

async fn collect_always_answers_engine_temperature_even_without_data(backend: Backend) {
    let app = spawn_app(backend).await;
    app.post_record(&json!({"vehicle_id": "car-2", "vehicle_speed": 30})).await;
    let expected = json!({
        "current_engine_temperature": null, "average_engine_temperature": null,
        "current_vehicle_speed": 30.0, "average_vehicle_speed": 30.0,
    });
    assert_eq!(collect_for(&app, "?vehicle_id=car-2").await, expected);
    assert_eq!(
        collect_for(&app, "?vehicle_id=never-seen").await,
        json!({"current_engine_temperature": null, "average_engine_temperature": null})
    );
}

async fn collect_refuses_a_query_and_body_that_name_different_vehicles(backend: Backend) {
    let app = spawn_app(backend).await;
    let problem = app
        .post_json("/collect?vehicle_id=car-1", &json!({"vehicle_id": "car-2"}))
        .await
        .assert_problem(422, "name one");
    assert_eq!(problem["errors"][0]["pointer"], "/vehicle_id");
    let problem =
        app.get("/collect?vehicle_id=a%20b").await.assert_problem(422, "not a valid vehicle id");
    assert_eq!(problem["errors"][0]["parameter"], "vehicle_id");
}

async fn collect_ignores_other_query_parameters_such_as_cache_busters(backend: Backend) {
    let app = spawn_app(backend).await;
    accept(&app, "car-1", &json!({"engine_temperature": 71})).await;
    let answer = app.get("/collect?_=1764268317&vehicle_id=car-1").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json()["current_engine_temperature"], 71.0);
    let answer = app.get("/collect?_=1764268317").await;
    assert_eq!(answer.json()["current_engine_temperature"], Value::Null);
}

async fn the_default_vehicle_is_the_one_the_seed_speaks_for(backend: Backend) {
    let app = spawn_app(backend).await;
    accept(&app, "default", &json!({"timestamp": at(1), "engine_temperature": 77})).await;
    assert_eq!(
        app.collect().await,
        json!({"current_engine_temperature": 77.0, "average_engine_temperature": 77.0})
    );
    app.post_record(&json!({"engine_temperature": 79})).await;
    let summary = signal(&app, "default", "engine_temperature").await;
    assert_eq!(summary["current"], 79.0, "the server's stamp is newer");
    assert_eq!(summary["average"], 78.0);
    assert_eq!(collect_for(&app, "?vehicle_id=default").await, app.collect().await);
}

// ---------------------------------------------------------------------------
// GET /v1/signals and the catalog file

const BUILTIN_SIGNALS: [(&str, &str, f64, f64, &str); 4] = [
    (
        "engine_temperature",
        "celsius",
        -40.0,
        215.0,
        "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature",
    ),
    ("vehicle_speed", "km/h", 0.0, 500.0, "Vehicle.Speed"),
    ("engine_rpm", "rpm", 0.0, 16_383.75, "Vehicle.Powertrain.CombustionEngine.Speed"),
    ("cabin_temperature", "celsius", -40.0, 100.0, "Vehicle.Cabin.HVAC.AmbientAirTemperature"),
];

fn assert_signal_info(
    info: &Value,
    (name, unit, min, max, vss_path): (&str, &str, f64, f64, &str),
) {
    assert_eq!(info["name"], name, "{info}");
    assert_eq!(info["unit"], unit, "{info}");
    assert_eq!(info["min"].as_f64(), Some(min), "{info}");
    assert_eq!(info["max"].as_f64(), Some(max), "{info}");
    assert_eq!(info["vss_path"], vss_path, "{info}");
    assert!(!info["description"].as_str().unwrap().is_empty(), "{info}");
}

async fn the_signal_list_has_the_four_built_ins(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = app.get("/v1/signals").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let list = answer.json();
    let signals = list["signals"].as_array().unwrap();
    assert_eq!(signals.len(), 4, "{list}");
    for (info, expected) in signals.iter().zip(BUILTIN_SIGNALS) {
        assert_signal_info(info, expected);
    }
}

async fn a_catalog_file_adds_a_signal_that_every_endpoint_accepts(backend: Backend) {
    let file = crate::common::battery_voltage_catalog();
    let path = file.path().to_owned();
    let app = spawn_app_with(backend, |s| s.signals = Some(path)).await;

    let list = app.get("/v1/signals").await.json();
    let signals = list["signals"].as_array().unwrap();
    assert_eq!(signals.len(), 5, "{list}");
    for (info, expected) in signals.iter().zip(BUILTIN_SIGNALS) {
        assert_signal_info(info, expected);
    }
    assert_signal_info(
        &signals[4],
        ("battery_voltage", "V", 0.0, 60.0, "Vehicle.LowVoltageBattery.CurrentVoltage"),
    );

    let answer = app.post_record(&json!({"battery_voltage": 12.6})).await;
    assert_eq!(answer.text, r#"{"success":true}"#);
    assert_eq!(
        app.collect().await,
        json!({
            "current_engine_temperature": null, "average_engine_temperature": null,
            "current_battery_voltage": 12.6, "average_battery_voltage": 12.6,
        })
    );
    let body = json!({"timestamp": at(1), "Vehicle.LowVoltageBattery.CurrentVoltage": 13.1});
    assert_eq!(accept(&app, "car-1", &body).await, 1);
    let summary = signal(&app, "car-1", "battery_voltage").await;
    assert_eq!(summary["current"], 13.1);
    assert_eq!(summary["unit"], "V");
    assert_eq!(signal(&app, "car-1", "Vehicle.LowVoltageBattery.CurrentVoltage").await, summary);
    // Its range is enforced like a built-in's.
    post_readings(&app, "car-1", &json!({"battery_voltage": 61}))
        .await
        .assert_problem(422, "0 to 60 V");
    assert_eq!(signal(&app, "car-1", "battery_voltage").await["count"], 1);
}

// ---------------------------------------------------------------------------
// Retention

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

/// `key`'s time to live in milliseconds (`PTTL`).
fn pttl(app: &mut TestApp, key: &str) -> i64 {
    let reply = app.redis().command(&["PTTL", key]);
    reply
        .strip_prefix(':')
        .and_then(|r| r.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("PTTL {key} answered {reply:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_every_key_of_a_vehicle_expires_within_the_retention_period() {
    let mut app = spawn_app_with(Backend::Redis, |s| {
        s.retention = Duration::from_secs(3600);
    })
    .await;
    accept(&app, "car-1", &json!({"engine_rpm": 800, "vehicle_speed": 10})).await;
    let expected = [
        "tributary:{car-1}:meta",
        "tributary:{car-1}:signal:engine_rpm",
        "tributary:{car-1}:signal:vehicle_speed",
    ];
    let mut keys = keys(&mut app);
    keys.sort();
    assert_eq!(keys, expected);
    // The retention, plus the slack within which a silent vehicle is forgotten
    // (a sixtieth of the retention, at most a minute), as on the memory store.
    for key in expected {
        let ttl = pttl(&mut app, key);
        assert!(3_600_000 < ttl && ttl <= 3_660_000, "{key} has PTTL {ttl}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_any_reading_keeps_all_of_the_vehicles_signals_alive() {
    let mut app = spawn_app_with(Backend::Redis, |s| {
        s.retention = Duration::from_secs(3600);
    })
    .await;
    let meta = "tributary:{car-1}:meta";
    let rpm = "tributary:{car-1}:signal:engine_rpm";
    let speed = "tributary:{car-1}:signal:vehicle_speed";
    accept(&app, "car-1", &json!({"engine_rpm": 800})).await;
    // Age the keys as if they were refreshed 30 s ago (the slack is a minute),
    // then send another signal: every key still outlives the retention period,
    // and all of them expire together, with the meta hash (a window left
    // behind would bring old samples back into a vehicle that was forgotten).
    for key in [meta, rpm] {
        assert_eq!(app.redis().command(&["PEXPIRE", key, "3630000"]), ":1\r\n");
    }
    accept(&app, "car-1", &json!({"vehicle_speed": 10})).await;
    let ttls = [pttl(&mut app, meta), pttl(&mut app, rpm), pttl(&mut app, speed)];
    assert!(ttls.iter().all(|&ttl| 3_600_000 < ttl && ttl <= 3_630_000), "{ttls:?}");
    assert!(ttls.iter().all(|ttl| (ttls[0] - ttl).abs() < 1000), "{ttls:?}");

    // Age every key as if the vehicle's last refresh were long ago: then a
    // reading of any one signal refreshes them all.
    for key in [meta, rpm, speed] {
        assert_eq!(app.redis().command(&["PEXPIRE", key, "5000"]), ":1\r\n");
    }
    accept(&app, "car-1", &json!({"vehicle_speed": 11})).await;
    for key in [meta, rpm, speed] {
        let ttl = pttl(&mut app, key);
        assert!(ttl > 3_600_000, "{key}'s expiry was not refreshed: PTTL {ttl}");
    }
}

async fn a_vehicle_silent_for_the_retention_period_is_forgotten(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.retention = Duration::from_secs(2)).await;
    accept(&app, "car-1", &json!({"engine_rpm": 800})).await;
    assert_eq!(vehicle(&app, "car-1").await["signals"]["engine_rpm"]["total"], 1);
    eventually(Duration::from_secs(10), "car-1 to be forgotten", || async {
        (app.get("/v1/vehicles/car-1").await.status == 404).then_some(())
    })
    .await;
    assert_never_seen(&app, "car-1").await;
    assert_eq!(
        collect_for(&app, "?vehicle_id=car-1").await,
        json!({"current_engine_temperature": null, "average_engine_temperature": null})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_forgets_vehicles_last_seen_before_the_cutoff_and_keeps_the_others() {
    let store = MemoryStore::new(ServeSettings::for_tests().store_limits());
    let now = Timestamp::from_millis(now_millis()).unwrap();
    let hour = 3_600_000_000;
    let cutoff = now.plus_micros(-hour);
    let rpm = SignalName::parse("engine_rpm").unwrap();
    let reading = Reading {
        signal: rpm.clone(),
        at: now.plus_micros(-3 * hour),
        value: 800.0,
        stamped_by: StampedBy::Device,
    };
    let silent = VehicleId::try_from("silent").unwrap();
    let at_cutoff = VehicleId::try_from("at-cutoff").unwrap();
    let active = VehicleId::try_from("active").unwrap();
    for (vehicle, received_at) in
        [(&silent, now.plus_micros(-2 * hour)), (&at_cutoff, cutoff), (&active, now)]
    {
        store.record(vehicle, std::slice::from_ref(&reading), received_at).await.unwrap();
    }
    // The device timestamp is old for all three: only the receive time counts.
    assert_eq!(store.forget_silent_since(cutoff), 1);
    let signals = std::slice::from_ref(&rpm);
    assert_eq!(store.history(&silent, signals).await.unwrap(), None);
    for vehicle in [&at_cutoff, &active] {
        let history = store.history(vehicle, signals).await.unwrap().unwrap();
        assert_eq!(history.signals[&rpm].samples.len(), 1, "{vehicle}");
    }
    assert_eq!(store.forget_silent_since(cutoff), 0);
}

on_both_stores!(
    one_reading_object_is_accepted_and_counts_every_signal_value,
    a_batch_is_accepted_and_counts_every_signal_value,
    a_batch_with_one_bad_reading_names_it_and_stores_nothing,
    batches_hold_1_to_1000_readings,
    timestamps_more_than_five_minutes_ahead_are_rejected,
    rfc3339_and_epoch_millisecond_timestamps_name_the_same_instant,
    vss_paths_are_accepted_as_signal_names,
    invalid_vehicle_ids_in_the_path_are_refused_and_nothing_is_stored,
    a_reading_object_may_not_name_a_vehicle,
    a_late_old_reading_does_not_become_current,
    a_late_reading_older_than_the_whole_window_changes_no_aggregate,
    a_resent_batch_changes_nothing,
    the_order_of_readings_within_a_batch_changes_nothing,
    a_resend_with_a_new_value_for_the_same_timestamp_replaces_it,
    a_vehicle_summary_has_every_aggregate_of_every_signal_with_data,
    a_vehicle_that_never_sent_anything_is_a_404_problem,
    the_default_window_keeps_the_newest_ten_and_counts_them_all,
    a_signal_is_read_by_short_name_or_vss_path_newest_first,
    a_known_signal_without_data_is_an_empty_window,
    an_unknown_signal_is_a_404_problem_listing_the_known_ones,
    vehicles_are_isolated,
    record_takes_a_vehicle_a_timestamp_and_several_signals,
    collect_always_answers_engine_temperature_even_without_data,
    collect_refuses_a_query_and_body_that_name_different_vehicles,
    collect_ignores_other_query_parameters_such_as_cache_busters,
    the_default_vehicle_is_the_one_the_seed_speaks_for,
    the_signal_list_has_the_four_built_ins,
    a_catalog_file_adds_a_signal_that_every_endpoint_accepts,
    a_vehicle_silent_for_the_retention_period_is_forgotten,
);
