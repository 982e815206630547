//! Request ids and the access log: one line per request, in the log format,
//! written without ever making a request wait (issue 17 §4).

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Backend, exchange, spawn_app, start_binary};
use crate::process::Server;

#[tokio::test]
async fn a_sane_request_id_is_echoed_and_any_other_replaced() {
    let app = spawn_app(Backend::Memory).await;
    let sent = app
        .send(app.client.get(app.url("/collect")).header("X-Request-Id", "phone-42:a/b=c"))
        .await;
    assert_eq!(sent.status, 200);
    assert_eq!(sent.header("x-request-id"), "phone-42:a/b=c");

    let mut made = Vec::new();
    for bad in [None, Some("has space"), Some("quote\"d"), Some(&*"x".repeat(129))] {
        let mut request = app.client.get(app.url("/collect"));
        if let Some(bad) = bad {
            request = request.header("X-Request-Id", bad);
        }
        let answer = app.send(request).await;
        let id = answer.header("x-request-id").to_owned();
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        made.push(id);
    }
    made.sort();
    made.dedup();
    assert_eq!(made.len(), 4, "generated ids repeat: {made:?}");
}

#[tokio::test]
async fn every_problem_carries_its_request_id() {
    let app = spawn_app(Backend::Memory).await;
    // Refusals from a handler, from the router's fallback and from a body.
    let not_found = app.get("/nowhere").await;
    not_found.assert_problem(404, "no route");
    let bad = app
        .send(
            app.client
                .post(app.url("/record"))
                .header("X-Request-Id", "fw-1.2.3-boot-7")
                .json(&json!({"engine_temperature": "hot"})),
        )
        .await;
    let body = bad.assert_problem(422, "engine_temperature");
    assert_eq!(body["request_id"], "fw-1.2.3-boot-7");
}

fn request(path: &str, id: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nX-Request-Id: {id}\r\nConnection: close\r\n\r\n")
}

#[tokio::test]
async fn json_access_lines_have_route_vehicle_status_latency_and_id_but_no_body() {
    let server = Server::start(&[("TRIBUTARY_LOG_FORMAT", "json")]);
    let body = r#"{"engine_temperature": 87.125, "vehicle_id": "car-9"}"#;
    let response = exchange(
        server.port,
        &format!(
            "POST /record HTTP/1.1\r\nHost: x\r\nX-Request-Id: rec-1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let response = exchange(server.port, &request("/nowhere", "miss-1")).await;
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
    server.signal("TERM");
    let (code, logs) = server.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0));
    let lines: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let line = |id: &str| {
        let found: Vec<&Value> = lines.iter().filter(|l| l["request_id"] == id).collect();
        assert_eq!(found.len(), 1, "one line for {id} in {logs}");
        found[0].clone()
    };
    let record = line("rec-1");
    assert_eq!(record["target"], "tributary::access");
    assert_eq!(record["level"], "INFO");
    assert_eq!(record["method"], "POST");
    assert_eq!(record["route"], "/record");
    assert_eq!(record["vehicle"], "car-9");
    assert_eq!(record["status"], 200);
    assert!(record["latency_us"].is_u64(), "{record}");
    assert!(record["timestamp"].as_str().unwrap().ends_with('Z'), "{record}");
    let miss = line("miss-1");
    assert_eq!(miss["route"], "<unmatched>");
    assert_eq!(miss["vehicle"], Value::Null);
    assert_eq!(miss["status"], 404);
    assert!(!logs.contains("87.125"), "the request body leaked into the logs: {logs}");
}

#[tokio::test]
async fn text_access_lines_by_default_and_none_when_turned_off() {
    for (envs, expected) in [(&[][..], true), (&[("TRIBUTARY_ACCESS_LOG", "off")][..], false)] {
        let server = Server::start(envs);
        let response = exchange(server.port, &request("/collect", "txt-1")).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        server.signal("TERM");
        let (code, logs) = server.wait(Duration::from_secs(10));
        assert_eq!(code, Some(0));
        let line = logs.lines().find(|line| line.contains("request_id=txt-1"));
        assert_eq!(line.is_some(), expected, "{envs:?}: {logs}");
        if let Some(line) = line {
            assert!(
                line.contains(
                    "INFO tributary::access: request method=GET route=/collect vehicle=default status=200 latency_us="
                ),
                "{line}"
            );
        }
        // The service's own lines are still there either way.
        assert!(logs.contains("listening"), "{logs}");
    }
}

/// A stderr nobody reads fills its pipe after a few hundred lines: the
/// service must keep answering, dropping (and counting) lines instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stderr_nobody_reads_does_not_stop_the_service() {
    let (mut process, port) = start_binary(&[], Stdio::piped());
    let stderr = process.0.stderr.take().unwrap();
    // More lines than the logger buffers (32,768) plus what the pipe holds.
    const CLIENTS: usize = 8;
    const EACH: usize = 5_000;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/collect");
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (client, url) = (client.clone(), url.clone());
        clients.spawn(async move {
            for n in 0..EACH {
                let answer = tokio::time::timeout(Duration::from_secs(5), client.get(&url).send())
                    .await
                    .unwrap_or_else(|_| panic!("request {n} got no answer within 5 s: stuck"))
                    .unwrap();
                assert_eq!(answer.status(), 200);
            }
        });
    }
    while let Some(done) = clients.join_next().await {
        done.unwrap();
    }
    let metrics = client.get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    let dropped = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tributary_log_lines_dropped_total ")?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no dropped-lines counter in {metrics}"));
    let requests = CLIENTS * EACH;
    assert!(dropped > 0.0, "{requests} lines fit an unread pipe? {metrics}");
    // What the pipe holds is the lines that were kept.
    drop(process);
    let mut kept = String::new();
    let _ = { stderr }.read_to_string(&mut kept);
    assert!(kept.contains("INFO tributary::access: request"), "{kept:.2000}");
    eprintln!("{requests} requests in {:?}, {dropped} log lines dropped", started.elapsed());
}
