//! Reaching Redis: over TLS, and when it goes away and comes back (fast 503s,
//! no hang, recovery by itself). Under load, and when Redis stops answering,
//! see `reliability/`.

use std::time::{Duration, Instant};

use crate::common::{
    Backend, FAST_503, RedisServer, eventually, free_port, spawn_app_at, spawn_app_with,
};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_requests_get_a_fast_503_and_recover_when_it_returns() {
    let mut app = spawn_app_with(Backend::Redis, |_| {}).await;
    assert_eq!(app.post_record(&json!({"engine_temperature": 80})).await.status, 200);

    app.redis().kill();
    for _ in 0..3 {
        let started = Instant::now();
        let answer = app.post_record(&json!({"engine_temperature": 81})).await;
        assert!(started.elapsed() < FAST_503, "record took {:?}", started.elapsed());
        answer.assert_problem(503, "unavailable");

        let started = Instant::now();
        app.send(app.client.get(app.url("/collect"))).await.assert_problem(503, "unavailable");
        assert!(started.elapsed() < FAST_503, "collect took {:?}", started.elapsed());

        let started = Instant::now();
        app.get("/readyz").await.assert_problem(503, "redis store is not reachable");
        assert!(started.elapsed() < FAST_503, "readyz took {:?}", started.elapsed());
    }
    assert_eq!(app.get("/healthz").await.status, 200, "the process stays alive");

    app.redis().restart();
    let recovered_in = Instant::now();
    eventually(Duration::from_secs(5), "recording to succeed again", || async {
        (app.post_record(&json!({"engine_temperature": 82})).await.status == 200).then_some(())
    })
    .await;
    assert!(
        recovered_in.elapsed() < Duration::from_secs(3),
        "recovery took {:?}",
        recovered_in.elapsed()
    );
    assert_eq!(app.get("/readyz").await.status, 200);
    let collected = app.collect().await;
    assert_eq!(collected["current_engine_temperature"], 82.0);
    assert_eq!(
        collected["average_engine_temperature"], 81.0,
        "the reading from before the crash survived"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_starts_before_redis_and_picks_it_up_when_it_appears() {
    let port = free_port();
    let mut app = spawn_app_at(format!("redis://127.0.0.1:{port}")).await;

    assert_eq!(app.get("/healthz").await.status, 200);
    app.get("/readyz").await.assert_problem(503, "not reachable");
    app.post_record(&json!({"engine_temperature": 70})).await.assert_problem(503, "unavailable");

    app.redis = Some(RedisServer::start_on(port));
    eventually(Duration::from_secs(5), "readiness once Redis is up", || async {
        (app.get("/readyz").await.status == 200).then_some(())
    })
    .await;
    assert_eq!(app.post_record(&json!({"engine_temperature": 70})).await.status, 200);
    assert_eq!(app.collect().await["current_engine_temperature"], 70.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_urls_connect_over_tls_and_verify_the_certificate() {
    let redis = RedisServer::start_tls();
    // `#insecure` skips certificate verification: only for self-signed test servers.
    let app = spawn_app_at(format!("rediss://localhost:{}/#insecure", redis.port)).await;
    assert_eq!(app.post_record(&json!({"engine_temperature": 65})).await.status, 200);
    assert_eq!(app.collect().await["current_engine_temperature"], 65.0);

    // Without `#insecure`, a certificate no trusted authority signed is refused.
    let strict = spawn_app_at(format!("rediss://localhost:{}/", redis.port)).await;
    strict.get("/readyz").await.assert_problem(503, "certificate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_urls_carry_a_password_and_a_database_number() {
    let redis = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let url = format!("redis://:s3cret@127.0.0.1:{}/3", redis.port);
    let app = spawn_app_at(url.clone()).await;
    assert_eq!(app.post_record(&json!({"engine_temperature": 66})).await.status, 200);

    let mut direct = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let exists: bool = redis::cmd("EXISTS")
        .arg("tributary:{default}:meta")
        .query_async(&mut direct)
        .await
        .unwrap();
    assert!(exists, "the reading is in database 3");

    let refused = spawn_app_at(format!("redis://:wrong@127.0.0.1:{}/3", redis.port)).await;
    refused.get("/readyz").await.assert_problem(503, "not reachable");
}
