//! Limits that keep the service answering under pressure: the in-flight bound
//! (503 at once, not a queue), the per-vehicle rate limit (429), the connection
//! limit, and the metrics that show them.

use std::time::{Duration, Instant};

use crate::common::{Backend, RawConnection, RawResponse, exchange, spawn_app_with};
use serde_json::json;

/// Opens a connection and sends a POST's headers and the first byte of its
/// body, then stops: the request holds an in-flight slot until the rest comes.
async fn half_sent_post(port: u16, path: &str, body: &str) -> RawConnection {
    let mut connection = RawConnection::open(port).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        &body[..1]
    );
    connection.send(head).await.unwrap();
    connection
}

/// Sends the rest of a `half_sent_post` and reads the whole answer.
async fn finish(mut connection: RawConnection, body: &str) -> RawResponse {
    connection.send(&body.as_bytes()[1..]).await.unwrap();
    connection.response().await.unwrap()
}

/// Reads the value of a metric series (exact series text before the value).
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_in_flight_limit_requests_get_503_at_once_and_nothing_is_stored() {
    let app = spawn_app_with(Backend::Memory, |s| s.max_in_flight = 3).await;
    let body = r#"{"engine_temperature": 80}"#;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(half_sent_post(app.port, "/record", body).await);
    }
    // Each held request has taken its slot once the server has read its headers.
    crate::common::eventually(Duration::from_secs(5), "three requests in flight", || async {
        let text = app.get("/metrics").await.text;
        (metric(&text, "tributary_http_requests_in_flight") == Some(3.0)).then_some(())
    })
    .await;

    let started = Instant::now();
    let answer = app.post_record(&json!({"engine_temperature": 99})).await;
    let shed_in = started.elapsed();
    let problem = answer.assert_problem(503, "limit of 3 requests");
    assert_eq!(problem["type"], "urn:tributary:problem:overloaded");
    assert_eq!(answer.header("retry-after"), "1");
    assert!(shed_in < Duration::from_secs(1), "shedding took {shed_in:?}");
    let answer = app.send(app.client.get(app.url("/v1/signals"))).await;
    assert_eq!(answer.status, 503, "reads are shed too: {}", answer.text);
    // Health checks and metrics stay reachable: they are how an operator sees it.
    assert_eq!(app.get("/healthz").await.status, 200);

    // The held requests complete with their real answers, and then there is room.
    for connection in held {
        let answer = finish(connection, body).await;
        assert!(answer.head.starts_with("HTTP/1.1 200"), "{answer:?}");
    }
    let collect = app.collect().await;
    assert_eq!(collect["current_engine_temperature"], 80.0, "the shed reading was not stored");
    assert_eq!(app.post_record(&json!({"engine_temperature": 81})).await.status, 200);

    let text = app.get("/metrics").await.text;
    assert_eq!(metric(&text, "tributary_http_requests_shed_total"), Some(2.0), "{text}");
    assert_eq!(
        metric(&text, r#"tributary_write_requests_rejected_total{reason="overloaded"}"#),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vehicle_over_its_rate_gets_429_naming_the_limit_and_other_vehicles_are_unaffected() {
    let app = spawn_app_with(Backend::Memory, |s| {
        s.vehicle_rate = 1;
        s.vehicle_burst = 1000;
    })
    .await;
    let batch: Vec<_> = (0..1000).map(|i| json!({"engine_rpm": 1000 + i})).collect();
    let answer = app.post_json("/v1/vehicles/runaway/readings", &json!(batch)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);

    // Five readings: the bucket refills one a second, so this is refused however
    // slow the machine was since the first request (up to five seconds).
    let five: Vec<_> = (0..5).map(|i| json!({"engine_rpm": 5000 + i})).collect();
    let answer = app.post_json("/v1/vehicles/runaway/readings", &json!(five)).await;
    let problem = answer.assert_problem(429, "1 readings per second");
    let retry_after: u64 = answer.header("retry-after").parse().unwrap();
    assert!((1..=5).contains(&retry_after), "Retry-After: {retry_after}");
    assert_eq!(problem["type"], "urn:tributary:problem:rate-limited", "{problem}");
    assert_eq!(problem["limit"]["name"], "vehicle-readings", "{problem}");
    assert_eq!(problem["limit"]["vehicle"], "runaway");
    assert_eq!(problem["limit"]["readings_per_second"], 1);
    assert_eq!(problem["limit"]["burst"], 1000);
    assert_eq!(problem["limit"]["requested"], 5);
    assert_eq!(problem["limit"]["retry_after_seconds"], retry_after);

    // Nothing of the refused request was stored.
    let summary = app.get("/v1/vehicles/runaway").await.json();
    assert_eq!(summary["signals"]["engine_rpm"]["total"], 1000, "{summary}");
    assert_eq!(summary["signals"]["engine_rpm"]["current"], 1999.0, "{summary}");
    // Another car still gets through.
    let answer = app.post_json("/v1/vehicles/calm/readings", &json!({"engine_rpm": 800})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);

    let text = app.get("/metrics").await.text;
    assert_eq!(metric(&text, "tributary_rate_limited_requests_total"), Some(1.0), "{text}");
    assert_eq!(
        metric(&text, r#"tributary_write_requests_rejected_total{reason="rate-limited"}"#),
        Some(1.0)
    );
    assert_eq!(metric(&text, "tributary_readings_accepted_total"), Some(1001.0));
}

async fn metrics_count_requests_readings_refusals_and_vehicles(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    for vehicle in ["a", "b", "c"] {
        let answer = app
            .post_json(
                &format!("/v1/vehicles/{vehicle}/readings"),
                &json!([{"engine_rpm": 900}, {"vehicle_speed": 50}]),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    app.post_record(&json!({"engine_temperature": "hot"})).await.assert_problem(422, "");
    app.post_record_raw("{", Some("application/json")).await.assert_problem(400, "");
    assert_eq!(app.get("/v1/vehicles/a").await.status, 200);

    let answer = app.get("/metrics").await;
    assert_eq!(answer.status, 200);
    assert!(answer.content_type.starts_with("text/plain"), "{}", answer.content_type);
    let text = answer.text;
    let series = |s: &str| metric(&text, s).unwrap_or_else(|| panic!("no series {s} in\n{text}"));
    assert_eq!(series("tributary_readings_accepted_total"), 6.0);
    assert_eq!(series("tributary_vehicles"), 3.0);
    assert_eq!(
        series(
            r#"tributary_http_requests_total{method="POST",route="/v1/vehicles/{vehicle_id}/readings",status="200"}"#
        ),
        3.0
    );
    assert_eq!(
        series(r#"tributary_http_requests_total{method="POST",route="/record",status="422"}"#),
        1.0
    );
    assert_eq!(series(r#"tributary_write_requests_rejected_total{reason="invalid-request"}"#), 1.0);
    assert_eq!(series(r#"tributary_write_requests_rejected_total{reason="malformed-body"}"#), 1.0);
    assert_eq!(
        series(
            r#"tributary_http_request_duration_seconds_count{method="GET",route="/v1/vehicles/{vehicle_id}"}"#
        ),
        1.0
    );
    assert!(text.contains(r#"tributary_http_request_duration_seconds_bucket{method="GET",route="/v1/vehicles/{vehicle_id}",le="0.001"}"#));
    // Calls to Redis are timed; the embedded store's, a few map operations, are not.
    let store_calls =
        metric(&text, r#"tributary_store_operation_duration_seconds_count{operation="record"}"#)
            .unwrap_or(0.0);
    let expected = if backend == Backend::Redis { 3.0 } else { 0.0 };
    assert_eq!(store_calls, expected, "{text}");
    assert!(text.contains("# HELP tributary_readings_accepted_total"), "{text}");
    // Unknown paths share one series instead of one each.
    app.get("/no/such/path/1").await;
    app.get("/no/such/path/2").await;
    let text = app.get("/metrics").await.text;
    assert_eq!(
        metric(
            &text,
            r#"tributary_http_requests_total{method="GET",route="<unmatched>",status="404"}"#
        ),
        Some(2.0),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_failures_are_counted_and_timed() {
    let mut app = spawn_app_with(Backend::Redis, |_| {}).await;
    app.redis().kill();
    app.post_record(&json!({"engine_temperature": 1})).await.assert_problem(503, "unavailable");
    let text = app.get("/metrics").await.text;
    assert_eq!(
        metric(&text, r#"tributary_store_errors_total{operation="record",kind="unavailable"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, r#"tributary_write_requests_rejected_total{reason="store-unavailable"}"#),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_limit_new_clients_wait_until_slow_ones_are_cut_off() {
    let app = spawn_app_with(Backend::Memory, |s| {
        s.max_connections = 4;
        s.client_timeout = Duration::from_secs(2);
    })
    .await;
    // Four clients that trickle header bytes and never finish: each returns
    // how long the server took to cut it off.
    let started = Instant::now();
    let port = app.port;
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut connection = RawConnection::open(port).await.unwrap();
        connection.send(b"GET /healthz HTTP/1.1\r\nX-Slow: ").await.unwrap();
        slow.push(tokio::spawn(async move {
            connection.trickle_until_cut_off(Duration::from_millis(50)).await;
            started.elapsed()
        }));
    }
    let waiting = tokio::spawn(async move {
        let request = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let answer = exchange(port, request).await;
        (answer, started.elapsed())
    });
    for client in slow {
        let cut_off = client.await.unwrap();
        // The header deadline is total: the trickled bytes did not extend it.
        assert!(
            (Duration::from_millis(1900)..Duration::from_secs(6)).contains(&cut_off),
            "a slow client was cut off after {cut_off:?}; the timeout is 2 s"
        );
    }
    let (answer, answered_after) = waiting.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "the waiting client was served: {answer:?}");
    assert!(
        answered_after >= Duration::from_millis(1900),
        "the fifth connection was served after {answered_after:?}, before a slot freed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_share_one_metric_series() {
    let app = spawn_app_with(Backend::Memory, |_| {}).await;
    for i in 0..5 {
        let method = reqwest::Method::from_bytes(format!("ZZ{i}").as_bytes()).unwrap();
        let answer = app.send(app.client.request(method, app.url("/record"))).await;
        assert_eq!(answer.status, 405);
    }
    let text = app.get("/metrics").await.text;
    assert_eq!(
        metric(
            &text,
            r#"tributary_http_requests_total{method="OTHER",route="/record",status="405"}"#
        ),
        Some(5.0),
        "{text}"
    );
    assert!(!text.contains("ZZ"), "{text}");
}

on_both_stores!(metrics_count_requests_readings_refusals_and_vehicles);

/// `/metrics` says which build runs and how much of the machine the process
/// uses: the standard `process_*` series, read at each scrape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_build_and_the_process() {
    let app = spawn_app_with(Backend::Memory, |_| {}).await;
    let text = app.get("/metrics").await.text;
    let build = format!(
        r#"tributary_build_info{{version="{}",commit="{}"}}"#,
        env!("CARGO_PKG_VERSION"),
        tributary::metrics::BUILD_COMMIT
    );
    assert_eq!(metric(&text, &build), Some(1.0), "{text}");
    let resident = metric(&text, "process_resident_memory_bytes").expect("resident memory");
    assert!(resident > 1e6, "a resident size of {resident} bytes is implausible");
    let open = metric(&text, "process_open_fds").expect("open fds");
    let max = metric(&text, "process_max_fds").expect("max fds");
    assert!(open >= 3.0 && open < max, "{open} open of {max}");
    assert!(metric(&text, "process_cpu_seconds_total").is_some(), "{text}");
    assert!(text.contains("# TYPE process_cpu_seconds_total counter"), "{text}");
}
