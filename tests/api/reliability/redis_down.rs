//! Redis killed under a steady write load, and a Redis that stops answering:
//! fast 503s, recovery, and no acknowledged write lost.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{WINDOW, a_minute_ago_ms, assert_stored_as_sent, reading, stored};
use crate::common::faults::{SilentServer, TcpProxy};
use crate::common::{Backend, TestApp, eventually, spawn_app_at, spawn_app_with};
use serde_json::json;

/// The bound on an answer when Redis is silent: the 1 s store deadline, plus
/// slack for a loaded machine. Not a speed goal, a no-hang guarantee.
const DEADLINE: Duration = Duration::from_millis(2500);

/// How long Redis stays down in the SIGKILL test.
const OUTAGE: Duration = Duration::from_secs(1);

/// One write as its writer saw it.
struct Attempt {
    seq: u32,
    /// The status, or why there was none.
    status: Result<u16, String>,
    retry_after: bool,
    started: Instant,
    took: Duration,
}

/// A writer posting readings of its own vehicle back to back until `stop`.
struct Writer {
    acknowledged: AtomicUsize,
    refused: AtomicUsize,
}

impl Writer {
    async fn run(
        self: Arc<Self>,
        client: reqwest::Client,
        url: String,
        stop: Arc<AtomicBool>,
    ) -> Vec<Attempt> {
        let base_ms = a_minute_ago_ms();
        let mut attempts = Vec::new();
        // The window must hold every reading sent, so that it shows which were stored.
        for seq in 0..WINDOW {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let started = Instant::now();
            let response = client.post(&url).json(&reading(base_ms, seq)).send().await;
            let took = started.elapsed();
            let status = response.as_ref().map(|r| r.status().as_u16()).map_err(|e| e.to_string());
            let retry_after =
                response.is_ok_and(|r| r.headers().contains_key(reqwest::header::RETRY_AFTER));
            match status {
                Ok(200) => self.acknowledged.fetch_add(1, Ordering::SeqCst),
                _ => self.refused.fetch_add(1, Ordering::SeqCst),
            };
            attempts.push(Attempt { seq, status, retry_after, started, took });
        }
        attempts
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sigkilled_under_load_costs_fast_503s_then_recovers_in_2s_losing_no_acked_write() {
    let mut app = spawn_app_with(Backend::Redis, |s| s.window = WINDOW).await;
    let mut redis = app.redis.take().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<Arc<Writer>> =
        (0..4).map(|_| Arc::new(Writer { acknowledged: 0.into(), refused: 0.into() })).collect();
    let tasks: Vec<_> = writers
        .iter()
        .enumerate()
        .map(|(w, writer)| {
            let url = app.url(&format!("/v1/vehicles/w{w}/readings"));
            tokio::spawn(writer.clone().run(app.client.clone(), url, stop.clone()))
        })
        .collect();
    let all = |what: fn(&Writer) -> usize, at_least: Vec<usize>| {
        let writers = writers.clone();
        move || {
            let done = writers.iter().zip(&at_least).all(|(w, &n)| what(w) >= n);
            std::future::ready(done.then_some(()))
        }
    };
    let acknowledged = |w: &Writer| w.acknowledged.load(Ordering::SeqCst);
    let refused = |w: &Writer| w.refused.load(Ordering::SeqCst);
    let counts = |what: fn(&Writer) -> usize, plus: usize| -> Vec<usize> {
        writers.iter().map(|w| what(w) + plus).collect()
    };

    eventually(Duration::from_secs(10), "20 writes each", all(acknowledged, vec![20; 4])).await;
    redis.kill();
    let killed_at = Instant::now();
    eventually(Duration::from_secs(10), "3 refusals each", all(refused, counts(refused, 3))).await;
    // An outage long enough for any reconnect backoff to grow.
    tokio::time::sleep_until((killed_at + OUTAGE).into()).await;
    let restarting_at = Instant::now();
    let _redis = tokio::task::spawn_blocking(move || {
        redis.restart();
        redis
    })
    .await
    .unwrap();
    let back_at = Instant::now();
    eventually(Duration::from_secs(10), "a write each", all(acknowledged, counts(acknowledged, 1)))
        .await;
    let recovered_in = back_at.elapsed();
    eventually(
        Duration::from_secs(10),
        "20 more each",
        all(acknowledged, counts(acknowledged, 20)),
    )
    .await;
    stop.store(true, Ordering::Relaxed);

    eprintln!("down {:?}, recovered in {recovered_in:?}", restarting_at - killed_at);
    assert!(recovered_in < Duration::from_secs(2), "writes recovered only after {recovered_in:?}");
    for (w, task) in tasks.into_iter().enumerate() {
        let attempts = task.await.unwrap();
        let (values, total) = stored(&app, &format!("w{w}")).await;
        let mut acknowledged = BTreeSet::new();
        for a in &attempts {
            match a.status {
                Ok(200) => {
                    let during_outage = a.started > killed_at && a.started + a.took < restarting_at;
                    assert!(!during_outage, "w{w}: reading {} acknowledged with Redis dead", a.seq);
                    acknowledged.insert(a.seq);
                }
                Ok(503) => {
                    assert!(a.took < crate::common::FAST_503, "w{w}: a 503 took {:?}", a.took);
                    assert!(a.retry_after, "w{w}: a 503 without Retry-After");
                }
                ref other => panic!("w{w}: reading {} got {other:?}", a.seq),
            }
        }
        assert_stored_as_sent(&format!("w{w}"), (&values, total), &acknowledged, attempts.len());
        assert!(acknowledged.len() < attempts.len(), "w{w} saw no outage");
        eprintln!(
            "w{w}: {} sent, {} acknowledged, {} stored",
            attempts.len(),
            acknowledged.len(),
            values.len()
        );
    }
}

/// Asks every route that needs the store, five times each and all at once,
/// and asserts every answer is a 503 with `Retry-After` within `DEADLINE`: requests
/// queued behind a silent connection get their deadline too.
async fn assert_every_store_route_answers_503_in_time(app: &TestApp) {
    let requests = [
        app.client.post(app.url("/record")).json(&json!({"engine_temperature": 90})),
        app.client.get(app.url("/collect")),
        app.client.post(app.url("/v1/vehicles/car-1/readings")).json(&json!({"engine_rpm": 900})),
        app.client.get(app.url("/v1/vehicles/car-1")),
        app.client.get(app.url("/v1/vehicles/car-1/signals/engine_rpm")),
        app.client.get(app.url("/readyz")),
    ];
    let answers: Vec<_> = (0..5)
        .flat_map(|_| requests.iter().map(|r| r.try_clone().unwrap()))
        .map(|request| {
            tokio::spawn(async move {
                let started = Instant::now();
                let response = request.send().await.expect("the service answers");
                (response, started.elapsed())
            })
        })
        .collect();
    for answer in answers {
        let (response, took) = answer.await.unwrap();
        let route = response.url().path().to_owned();
        assert_eq!(response.status(), 503, "{route}");
        assert!(response.headers().contains_key(reqwest::header::RETRY_AFTER), "{route}");
        assert!(took < DEADLINE, "{route} answered after {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_accepts_but_never_answers_gets_503s_within_the_store_deadline() {
    let silent = SilentServer::start().await;
    let app = spawn_app_at(silent.url()).await;
    assert_every_store_route_answers_503_in_time(&app).await;
    assert_every_store_route_answers_503_in_time(&app).await;
    assert_eq!(app.get("/healthz").await.status, 200, "the process stays alive");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_goes_silent_gets_503s_within_the_deadline_and_is_replaced() {
    let redis = crate::common::RedisServer::start();
    let proxy = TcpProxy::start(redis.port).await;
    let app = spawn_app_at(proxy.url()).await;
    let app = &app;
    let record = |value: u32| async move {
        app.post_json("/v1/vehicles/car-1/readings", &json!({"engine_rpm": value})).await
    };
    assert_eq!(record(1).await.status, 200, "healthy through the proxy");

    proxy.stall();
    assert_every_store_route_answers_503_in_time(app).await;
    // The replacement connection is as silent: it is replaced in turn.
    assert_every_store_route_answers_503_in_time(app).await;

    // Redis is reachable again, but the stalled connection never comes back, as
    // with a half-open connection to a host that crashed or a failed-over address.
    proxy.forward_new_connections();
    let back_at = Instant::now();
    eventually(Duration::from_secs(10), "a write through a new connection", || async {
        (record(2).await.status == 200).then_some(())
    })
    .await;
    let recovered_in = back_at.elapsed();
    assert!(recovered_in < Duration::from_secs(3), "recovered only after {recovered_in:?}");
    assert!(proxy.connections() >= 3, "{} connections", proxy.connections());
    let window = app.get("/v1/vehicles/car-1/signals/engine_rpm").await.json();
    assert_eq!(window["current"], 2.0, "{window}");
}
