//! Memory that cannot run away: past `TRIBUTARY_MAX_VEHICLES` (the embedded
//! store) or near Redis' `maxmemory` (`noeviction`), a write for a new vehicle
//! gets `507 vehicle-limit`, while every vehicle already held stays readable
//! and writable; and the ids `.` and `..` are refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::common::{Backend, RedisServer, TestApp, exchange, spawn_app_with, start_binary};

/// A batch that fills a vehicle's four built-in windows (10 readings each),
/// as a real car's first minute does: what a vehicle costs at most.
fn full_batch(seq: usize) -> Value {
    let readings: Vec<Value> = (0..10)
        .map(|i| {
            json!({"engine_temperature": 80 + i, "vehicle_speed": i, "engine_rpm": 900 + seq % 100,
                   "cabin_temperature": 21})
        })
        .collect();
    Value::Array(readings)
}

fn readings_url(base: &str, vehicle: &str) -> String {
    format!("{base}/v1/vehicles/{vehicle}/readings")
}

/// Asserts a `507 vehicle-limit` whose detail says what to change.
fn assert_vehicle_limit(status: u16, body: &Value, needle: &str) {
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["type"], "urn:tributary:problem:vehicle-limit", "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(needle), "{detail:?} should mention {needle:?}");
    assert!(detail.contains("nothing was stored"), "{detail}");
}

/// Every vehicle of `held` answers a read with its readings and takes a write.
async fn assert_held_vehicles_work(app: &TestApp, held: &[String]) {
    for vehicle in held {
        let answer = app
            .post_json(&format!("/v1/vehicles/{vehicle}/readings"), &json!({"engine_rpm": 1234}))
            .await;
        assert_eq!(answer.status, 200, "{vehicle}: {}", answer.text);
        let answer = app.get(&format!("/v1/vehicles/{vehicle}/signals/engine_rpm")).await;
        assert_eq!(answer.status, 200, "{vehicle}: {}", answer.text);
        assert!(answer.text.contains("1234"), "{vehicle}: {}", answer.text);
    }
}

/// The resident memory of process `pid`, in bytes.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// Sends a full batch for each of `vehicles` from 4 clients at once; returns
/// the count of each status.
async fn flood(base: &str, vehicles: impl Iterator<Item = String>) -> Vec<(u16, usize)> {
    let vehicles: Arc<std::sync::Mutex<Vec<String>>> =
        Arc::new(std::sync::Mutex::new(vehicles.collect()));
    let counts: Arc<[AtomicUsize; 600]> = Arc::new(std::array::from_fn(|_| AtomicUsize::new(0)));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (vehicles, counts, base) = (vehicles.clone(), counts.clone(), base.to_owned());
            tokio::spawn(async move {
                let client = reqwest::Client::builder().no_proxy().build().unwrap();
                loop {
                    let Some(vehicle) = vehicles.lock().unwrap().pop() else { return };
                    let answer = client
                        .post(readings_url(&base, &vehicle))
                        .json(&full_batch(vehicle.len()))
                        .send()
                        .await
                        .unwrap();
                    counts[answer.status().as_u16() as usize].fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (0..600)
        .filter_map(|s| Some((s as u16, counts[s].load(Ordering::Relaxed))).filter(|(_, n)| *n > 0))
        .collect()
}

/// The real binary with a limit of 200 vehicles: 8,000 new ids after them
/// all get 507 and cost almost no memory (without the limit they would hold
/// over 13 MB), and the 200 keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_new_vehicles_past_the_limit_gets_507_and_leaves_memory_bounded_on_the_embedded_store()
 {
    let log = tempfile::NamedTempFile::new().unwrap();
    let (server, port) = start_binary(
        &[("TRIBUTARY_MAX_VEHICLES", "200"), ("TRIBUTARY_VEHICLE_RATE", "0")],
        log.reopen().unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let held: Vec<String> = (0..200).map(|i| format!("held-{i}")).collect();
    assert_eq!(flood(&base, held.iter().cloned()).await, [(200, 200)]);
    // Warm up: the refusals' own allocations (buffers, the problem) settle.
    assert_eq!(flood(&base, (0..1000).map(|i| format!("warm-{i}"))).await, [(507, 1000)]);
    let before = resident_bytes(server.id());

    let answers = flood(&base, (0..8_000).map(|i| format!("new-{i}"))).await;
    assert_eq!(answers, [(507, 8_000)], "every new vehicle is refused");
    let after = resident_bytes(server.id());
    let grown = after.saturating_sub(before);
    eprintln!("resident memory {before} → {after} bytes (+{grown}) over 8,000 refused vehicles");
    assert!(
        grown < 4 * 1024 * 1024,
        "resident memory grew by {grown} bytes over 8,000 refused vehicles"
    );

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let answer = client
        .post(readings_url(&base, "one-more"))
        .json(&json!({"engine_rpm": 1}))
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    assert_vehicle_limit(
        status,
        &answer.json().await.unwrap(),
        "at most 200 vehicles (TRIBUTARY_MAX_VEHICLES)",
    );
    for vehicle in &held {
        let answer = client
            .post(readings_url(&base, vehicle))
            .json(&json!({"engine_rpm": 1234}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{vehicle}");
        let answer = client
            .get(format!("{base}/v1/vehicles/{vehicle}/signals/engine_rpm"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{vehicle}");
        assert!(answer.text().await.unwrap().contains("1234"), "{vehicle}");
    }
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("\ntributary_vehicles 200\n"), "{metrics}");
    assert!(
        metrics.contains(r#"tributary_write_requests_rejected_total{reason="vehicle-limit"} 9001"#),
        "{metrics}"
    );
}

/// On Redis (maxmemory 4 MB, noeviction), new vehicles are refused from 90%
/// of it on; every answer is 200 or 507, never a 5xx; Redis stays within its
/// maxmemory; and every vehicle it holds keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_new_vehicles_gets_507_near_redis_maxmemory_and_held_vehicles_keep_working() {
    let redis =
        RedisServer::start_with(&["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"]);
    let app = spawn_app_with(Backend::Memory, |s| s.redis_url = Some(redis.url().into())).await;
    let held: Vec<String> = (0..50).map(|i| format!("held-{i}")).collect();
    assert_eq!(flood(&app.address, held.iter().cloned()).await, [(200, 50)]);

    let answers = flood(&app.address, (0..3000).map(|i| format!("new-{i:04}"))).await;
    assert!(answers.iter().all(|(status, _)| matches!(status, 200 | 507)), "{answers:?}");
    let refused = answers.iter().find(|(s, _)| *s == 507).map_or(0, |(_, n)| *n);
    assert!(refused > 1000, "{answers:?}: 3000 full vehicles do not fit in 4 MB");

    // Redis' memory dips when the flood's buffers are freed: a few more new
    // vehicles may fit, then they are refused again.
    let mut fitted = 0;
    let answer = loop {
        let url = format!("/v1/vehicles/more-{fitted}/readings");
        let answer = app.post_json(&url, &full_batch(0)).await;
        if answer.status != 200 {
            break answer;
        }
        fitted += 1;
        assert!(fitted < 200, "200 more new vehicles fitted after the flood was refused");
    };
    let limit = "90% of its maxmemory of 4194304 bytes";
    assert_vehicle_limit(answer.status.as_u16(), &answer.json(), limit);
    assert_held_vehicles_work(&app, &held).await;
    let info = redis.command(&["INFO", "memory"]);
    let field = |name: &str| -> u64 {
        info.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim().parse().unwrap()
    };
    assert!(field("used_memory:") <= field("maxmemory:"), "{info}");
    let metrics = app.get("/metrics").await.text;
    assert!(
        !metrics.contains("tributary_store_errors_total"),
        "a full store is no store error:\n{metrics}"
    );
}

/// Past `maxmemory` Redis refuses every write (`OOM command not allowed`):
/// that is the same clear 507, not a 500 or a 503; reads still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_refusing_writes_past_maxmemory_is_a_507_not_a_5xx() {
    let redis = RedisServer::start_with(&["--maxmemory-policy", "noeviction"]);
    let app = spawn_app_with(Backend::Memory, |s| s.redis_url = Some(redis.url().into())).await;
    assert_eq!(
        app.post_json("/v1/vehicles/car-1/readings", &json!({"engine_rpm": 900})).await.status,
        200
    );
    assert!(redis.command(&["CONFIG", "SET", "maxmemory", "1"]).starts_with("+OK"));

    let answer = app.post_json("/v1/vehicles/car-1/readings", &json!({"engine_rpm": 901})).await;
    assert_vehicle_limit(answer.status.as_u16(), &answer.json(), "at its maxmemory");
    let answer = app.get("/v1/vehicles/car-1/signals/engine_rpm").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(answer.text.contains("900") && !answer.text.contains("901"), "{}", answer.text);
}

/// `.` and `..` pass the character rule but are path segments to every
/// client: refused wherever an id is given, so no such vehicle is written.
async fn the_ids_dot_and_dot_dot_are_refused(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    for id in [".", ".."] {
        let answer = app.post_record(&json!({"vehicle_id": id, "engine_rpm": 900})).await;
        answer.assert_problem(422, "other than '.' and '..'");
        // Percent-encoded, as only a raw client sends it: HTTP clients
        // resolve a literal `.` or `..` segment before sending.
        let body = r#"{"engine_rpm": 1}"#;
        let request = format!(
            "POST /v1/vehicles/{}/readings HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Length: {}\r\n\r\n{body}",
            id.replace('.', "%2E"),
            body.len()
        );
        let answer = exchange(app.port, &request).await;
        assert!(answer.starts_with("HTTP/1.1 422"), "{id}: {answer}");
        assert!(answer.contains("other than '.' and '..'"), "{id}: {answer}");
    }
    let answer = app.post_record(&json!({"vehicle_id": "...", "engine_rpm": 900})).await;
    assert_eq!(answer.status, 200, "three dots are an id like any other: {}", answer.text);
}

on_both_stores!(the_ids_dot_and_dot_dot_are_refused);
