//! The seed's API on both stores: exact answers, the window, concurrency, and
//! every kind of bad input.

use std::time::Duration;

use crate::common::{Backend, RawConnection, spawn_app, spawn_app_with};
use serde_json::{Value, json};

async fn record_answers_exactly_what_the_seed_answered(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = app.post_record(&json!({"engine_temperature": 0.3})).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.content_type, "application/json");
    assert_eq!(answer.text, r#"{"success":true}"#);
}

async fn collect_answers_nulls_before_anything_is_recorded(backend: Backend) {
    let app = spawn_app(backend).await;
    let expected = json!({"current_engine_temperature": null, "average_engine_temperature": null});
    assert_eq!(app.collect().await, expected);
    let posted = app.send(app.client.post(app.url("/collect"))).await;
    assert_eq!(posted.status, 200);
    assert_eq!(posted.json(), expected);
}

async fn collect_reports_the_newest_reading_and_the_average_of_the_last_ten(backend: Backend) {
    let app = spawn_app(backend).await;
    for t in 1..=25 {
        let answer = app.post_record(&json!({"engine_temperature": f64::from(t)})).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let expected = json!({"current_engine_temperature": 25.0, "average_engine_temperature": 20.5});
    assert_eq!(app.collect().await, expected);
    let posted = app.send(app.client.post(app.url("/collect")).body("{}")).await;
    assert_eq!(posted.json(), expected);
}

async fn the_window_size_is_a_setting(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.window = 3).await;
    for t in [10, 20, 30, 40] {
        app.post_record(&json!({"engine_temperature": t})).await;
    }
    assert_eq!(app.collect().await["average_engine_temperature"], 30.0);
}

async fn integers_and_floats_are_both_numbers(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.post_record(&json!({"engine_temperature": 90})).await.status, 200);
    assert_eq!(app.post_record(&json!({"engine_temperature": 92.5})).await.status, 200);
    let collected = app.collect().await;
    assert_eq!(collected["current_engine_temperature"], 92.5);
    assert_eq!(collected["average_engine_temperature"], 91.25);
}

async fn a_json_body_is_accepted_whatever_the_content_type_says(backend: Backend) {
    let app = spawn_app(backend).await;
    for content_type in
        [None, Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("nonsense")]
    {
        let answer = app.post_record_raw(r#"{"engine_temperature": 50}"#, content_type).await;
        assert_eq!(answer.status, 200, "{content_type:?}: {}", answer.text);
    }
    assert_eq!(app.collect().await["current_engine_temperature"], 50.0);
}

async fn two_hundred_concurrent_writers_lose_nothing_and_never_overfill_the_window(
    backend: Backend,
) {
    // A window wider than the number of writers shows that every reading landed.
    let app = std::sync::Arc::new(spawn_app_with(backend, |s| s.window = 500).await);
    let writers: Vec<_> = (0..200)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                app.post_record(&json!({"engine_temperature": f64::from(i) / 2.0})).await
            })
        })
        .collect();
    for writer in writers {
        let answer = writer.await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let window = app.get("/v1/vehicles/default/signals/engine_temperature").await.json();
    assert_eq!(window["count"], 200);
    assert_eq!(window["total"], 200);
    let mut values: Vec<f64> = window["readings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_f64().unwrap())
        .collect();
    values.sort_by(f64::total_cmp);
    let expected: Vec<f64> = (0..200).map(|i| f64::from(i) / 2.0).collect();
    assert_eq!(values, expected);

    // And with the seed's window of 10, concurrent writers leave exactly 10.
    let app = std::sync::Arc::new(spawn_app(backend).await);
    let writers: Vec<_> = (0..200)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(
                async move { app.post_record(&json!({"engine_temperature": i})).await.status },
            )
        })
        .collect();
    for writer in writers {
        assert_eq!(writer.await.unwrap(), 200);
    }
    let window = app.get("/v1/vehicles/default/signals/engine_temperature").await.json();
    assert_eq!(window["count"], 10);
    assert_eq!(window["readings"].as_array().unwrap().len(), 10);
    assert_eq!(window["total"], 200);
}

async fn bad_input_gets_a_problem_that_says_what_to_fix_and_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let huge = format!(r#"{{"engine_temperature": 90, "pad": "{}"}}"#, "x".repeat(1024 * 1024));
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("invalid JSON", b"{engine_temperature: 1}".to_vec(), 400, "not valid JSON"),
        ("truncated JSON", b"{\"engine_temperature\": 1".to_vec(), 400, "not valid JSON"),
        ("empty body", b"".to_vec(), 400, "empty"),
        ("an array", b"[90]".to_vec(), 422, "must be a JSON object"),
        ("a bare number", b"90".to_vec(), 422, "must be a JSON object"),
        ("null body", b"null".to_vec(), 422, "not null"),
        ("null reading", br#"{"engine_temperature": null}"#.to_vec(), 422, "must be a number"),
        ("string reading", br#"{"engine_temperature": "90"}"#.to_vec(), 422, "not a string"),
        ("NaN string", br#"{"engine_temperature": "NaN"}"#.to_vec(), 422, "\"NaN\""),
        ("bare NaN", br#"{"engine_temperature": NaN}"#.to_vec(), 400, "not valid JSON"),
        ("Infinity", br#"{"engine_temperature": Infinity}"#.to_vec(), 400, "not valid JSON"),
        ("boolean", br#"{"engine_temperature": true}"#.to_vec(), 422, "not a boolean"),
        (
            "nested object",
            br#"{"engine_temperature": {"value": 90}}"#.to_vec(),
            422,
            "not an object",
        ),
        ("overflowing number", br#"{"engine_temperature": 1e999}"#.to_vec(), 400, "out of range"),
        ("too hot", br#"{"engine_temperature": 215.01}"#.to_vec(), 422, "-40 to 215 celsius"),
        ("too cold", br#"{"engine_temperature": -41}"#.to_vec(), 422, "-40 to 215 celsius"),
        (
            "typo",
            br#"{"engine_temprature": 90}"#.to_vec(),
            422,
            "did you mean `engine_temperature`",
        ),
        (
            "unknown extra field",
            br#"{"engine_temperature": 90, "unit": "C"}"#.to_vec(),
            422,
            "unknown field",
        ),
        ("no reading", b"{}".to_vec(), 422, "no signal values"),
        ("invalid UTF-8", b"{\"engine_temperature\": 90, \"x\": \"\xff\"}".to_vec(), 400, "UTF-8"),
        ("deeply nested", deep.into_bytes(), 400, "deeper than 128"),
        (
            "a key given twice",
            br#"{"engine_temperature": 500, "engine_temperature": 20}"#.to_vec(),
            400,
            "appears twice",
        ),
        ("form data", b"engine_temperature=90".to_vec(), 400, "looks like form data"),
        (
            "trailing garbage",
            br#"{"engine_temperature": 90} {"engine_temperature": 91}"#.to_vec(),
            400,
            "trailing",
        ),
        ("too large", huge.into_bytes(), 413, "1048576 bytes"),
    ];
    for (name, body, status, needle) in cases {
        let answer = app.post_record_raw(body, Some("application/json")).await;
        assert_eq!(answer.status.as_u16(), status, "{name}: {}", answer.text);
        answer.assert_problem(status, needle);
    }
    assert_eq!(
        app.collect().await,
        json!({"current_engine_temperature": null, "average_engine_temperature": null}),
        "nothing may be stored from bad input"
    );
    let answer = app.get("/v1/vehicles/default").await;
    answer.assert_problem(404, "no readings");
}

async fn a_byte_order_mark_is_accepted_and_an_unknown_encoding_refused_with_415(backend: Backend) {
    let app = spawn_app(backend).await;
    let with_bom = b"\xEF\xBB\xBF{\"engine_temperature\": 42}".to_vec();
    assert_eq!(app.post_record_raw(with_bom, None).await.status, 200);
    let brotli = app
        .send(
            app.client
                .post(app.url("/record"))
                .header("Content-Encoding", "br")
                .body(vec![0x1f, 0x8b, 0x08, 0x00]),
        )
        .await;
    let problem = brotli.assert_problem(415, "one of gzip, deflate or zstd, or uncompressed");
    assert_eq!(problem["type"], "urn:tributary:problem:unsupported-encoding");
    assert_eq!(app.collect().await["current_engine_temperature"], 42.0);
}

async fn field_errors_carry_a_json_pointer(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = app
        .post_record(&json!({"engine_temperature": "hot"}))
        .await
        .assert_problem(422, "must be a number");
    assert_eq!(body["errors"][0]["pointer"], "/engine_temperature");
}

async fn unknown_routes_and_wrong_methods_get_the_same_problem_shape(backend: Backend) {
    let app = spawn_app(backend).await;
    app.get("/nope").await.assert_problem(404, "no route GET /nope");
    app.get("/record").await.assert_problem(405, "GET is not allowed");
    let put = app.send(app.client.put(app.url("/collect"))).await;
    put.assert_problem(405, "PUT is not allowed");
    let delete = app.send(app.client.delete(app.url("/record"))).await;
    delete.assert_problem(405, "DELETE is not allowed");
}

async fn health_and_readiness_answer_200_when_the_store_is_up(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/healthz").await.json(), json!({"status": "ok"}));
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200);
    let expected_store = if backend == Backend::Redis { "redis" } else { "memory" };
    assert_eq!(ready.json()["store"], expected_store);
}

async fn a_client_that_stops_sending_its_body_is_cut_off_with_408(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.client_timeout = Duration::from_millis(300)).await;
    let mut connection = RawConnection::open(app.port).await.unwrap();
    connection
        .send(b"POST /record HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"engine_")
        .await
        .unwrap();
    let response = connection.response().await.unwrap();
    assert!(response.head.starts_with("HTTP/1.1 408"), "{response:?}");
    assert!(response.head.contains("application/problem+json"), "{response:?}");
    assert_eq!(app.collect().await["current_engine_temperature"], Value::Null);
}

async fn a_client_that_sends_nothing_or_stops_sending_its_headers_is_disconnected(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |s| s.client_timeout = Duration::from_millis(300)).await;
    for sent in [&b""[..], b"POST /record HTTP/1.1\r\nHost: x\r\n"] {
        let mut connection = RawConnection::open(app.port).await.unwrap();
        connection.send(sent).await.unwrap();
        // The server closes the connection (EOF) before our 10 s read deadline.
        let bytes = connection
            .read_to_close()
            .await
            .unwrap_or_else(|e| panic!("after sending {sent:?} the connection was left open: {e}"));
        assert!(!String::from_utf8_lossy(&bytes).contains("200 OK"));
    }
}

on_both_stores!(
    record_answers_exactly_what_the_seed_answered,
    collect_answers_nulls_before_anything_is_recorded,
    collect_reports_the_newest_reading_and_the_average_of_the_last_ten,
    the_window_size_is_a_setting,
    integers_and_floats_are_both_numbers,
    a_json_body_is_accepted_whatever_the_content_type_says,
    two_hundred_concurrent_writers_lose_nothing_and_never_overfill_the_window,
    bad_input_gets_a_problem_that_says_what_to_fix_and_stores_nothing,
    field_errors_carry_a_json_pointer,
    a_byte_order_mark_is_accepted_and_an_unknown_encoding_refused_with_415,
    unknown_routes_and_wrong_methods_get_the_same_problem_shape,
    health_and_readiness_answer_200_when_the_store_is_up,
    a_client_that_stops_sending_its_body_is_cut_off_with_408,
    a_client_that_sends_nothing_or_stops_sending_its_headers_is_disconnected,
);
