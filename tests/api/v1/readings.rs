//! `POST /v1/vehicles/{id}/readings`: single readings and batches, all or
//! nothing, timestamps, VSS names and refused vehicle ids.

use super::{
    BASE_MILLIS, accept, assert_never_seen, at, keys, now_millis, post_readings, signal, vehicle,
    window,
};
use crate::common::{Backend, spawn_app};
use serde_json::{Value, json};
use tributary::domain::Timestamp;

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
);
