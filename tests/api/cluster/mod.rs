//! Redis Cluster: a real 3-master, 3-replica cluster made by each test
//! (`common::RedisCluster`), with the service in front of it. Every store
//! operation, two instances on one cluster, `/readyz`'s `cluster_state`,
//! replica acknowledgements (`TRIBUTARY_REDIS_MIN_REPLICAS_ACK`), a master
//! SIGKILLed under load (`failover`) and a slot migration under load
//! (`migration`).

mod failover;
mod feed;
mod load;
mod migration;

use std::time::Duration;

use serde_json::{Value, json};
use tributary::config::ServeSettings;

use crate::common::{RedisCluster, RedisServer, TestApp, spawn_app_on};

/// The service on `cluster`, with `customize` applied to its settings.
async fn spawn_on(cluster: &RedisCluster, customize: impl FnOnce(&mut ServeSettings)) -> TestApp {
    let mut settings = ServeSettings::for_tests();
    settings.redis_cluster = Some(cluster.urls().into());
    customize(&mut settings);
    spawn_app_on(settings, None).await
}

/// `n` vehicle ids whose keys fall on every master (ids hash by their name).
fn vehicles(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("car-{i}")).collect()
}

/// The meta key of `vehicle`: every key of it shares this key's slot.
fn meta_key(vehicle: &str) -> String {
    format!("tributary:{{{vehicle}}}:meta")
}

async fn post_readings(app: &TestApp, vehicle: &str, body: &Value) -> crate::common::Answer {
    app.post_json(&format!("/v1/vehicles/{vehicle}/readings"), body).await
}

/// `GET /v1/vehicles/{vehicle}/signals/{signal}`, which must answer 200.
async fn signal(app: &TestApp, vehicle: &str, signal: &str) -> Value {
    let answer = app.get(&format!("/v1/vehicles/{vehicle}/signals/{signal}")).await;
    assert_eq!(answer.status, 200, "{vehicle}/{signal}: {}", answer.text);
    answer.json()
}

/// Every vehicle a walk through `GET /v1/vehicles` lists, `limit` a page.
async fn listed(app: &TestApp, limit: usize) -> Vec<String> {
    let mut cursor: Option<String> = None;
    let mut ids = Vec::new();
    loop {
        let query = match &cursor {
            Some(c) => format!("/v1/vehicles?limit={limit}&cursor={}", urlencode(c)),
            None => format!("/v1/vehicles?limit={limit}"),
        };
        let answer = app.get(&query).await;
        assert_eq!(answer.status, 200, "{query}: {}", answer.text);
        let page = answer.json();
        ids.extend(
            page["vehicles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["vehicle_id"].as_str().unwrap_or_else(|| panic!("{page}")).to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_operation_works_on_a_cluster_and_never_crosses_slots() {
    let cluster = RedisCluster::start();
    let app = spawn_on(&cluster, |_| {}).await;
    let cars = vehicles(30);
    let masters: std::collections::BTreeSet<u16> =
        cars.iter().map(|car| cluster.master_of(&meta_key(car)).port).collect();
    assert_eq!(masters.len(), 3, "the test's vehicles live on every master");

    for (i, car) in cars.iter().enumerate() {
        // The seed's API, with a vehicle id.
        let answer = app
            .post_record(&json!({"vehicle_id": car, "engine_temperature": 90.0 + i as f64}))
            .await;
        assert_eq!(answer.status, 200, "{car}: {}", answer.text);
        // A device-stamped batch of several signals, then the same batch resent.
        let batch = json!([
            {"timestamp": "2025-06-01T12:00:01Z", "engine_rpm": 800, "vehicle_speed": 0},
            {"timestamp": "2025-06-01T12:00:02Z", "engine_rpm": 1500},
            {"timestamp": "2025-06-01T12:00:03Z", "engine_rpm": 2500, "vehicle_speed": 30},
        ]);
        for _ in 0..2 {
            let answer = post_readings(&app, car, &batch).await;
            assert_eq!(answer.status, 200, "{car}: {}", answer.text);
            assert_eq!(answer.json()["accepted"], 5);
        }
    }
    for (i, car) in cars.iter().enumerate() {
        let collected = app.get(&format!("/collect?vehicle_id={car}")).await;
        assert_eq!(collected.status, 200, "{}", collected.text);
        assert_eq!(collected.json()["current_engine_temperature"], 90.0 + i as f64);
        // The window, newest first, and the resent batch counted once.
        let rpm = signal(&app, car, "engine_rpm").await;
        assert_eq!(rpm["count"], 3, "{rpm}");
        let values: Vec<f64> = rpm["readings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["value"].as_f64().unwrap())
            .collect();
        assert_eq!(values, [2500.0, 1500.0, 800.0]);
        assert_eq!(rpm["average"], 1600.0, "{rpm}");
        let summary = app.get(&format!("/v1/vehicles/{car}")).await;
        assert_eq!(summary.status, 200, "{}", summary.text);
        let signals = summary.json()["signals"].as_object().unwrap().len();
        assert_eq!(signals, 3);
    }

    // The list and the count scan every master.
    for limit in [7, 100] {
        let mut ids = listed(&app, limit).await;
        ids.sort();
        ids.dedup();
        let mut expected = cars.clone();
        expected.sort();
        assert_eq!(ids, expected, "the vehicles listed {limit} a page");
    }
    let metrics = app.get("/metrics").await.text;
    assert!(
        metrics.lines().any(|l| l.starts_with("tributary_vehicles ") && l.ends_with(" 30")),
        "{}",
        metrics.lines().filter(|l| l.contains("vehicles")).collect::<Vec<_>>().join("\n")
    );

    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.json()["store"], "redis-cluster");
    assert_eq!(ready.json()["cluster_state"], "ok");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_one_instance_is_read_through_another() {
    let cluster = RedisCluster::start();
    let writer = spawn_on(&cluster, |_| {}).await;
    let reader = spawn_on(&cluster, |_| {}).await;
    for car in vehicles(9) {
        let answer = writer.post_record(&json!({"vehicle_id": car, "vehicle_speed": 55})).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        let read = signal(&reader, &car, "vehicle_speed").await;
        assert_eq!(read["current"], 55.0, "{read}");
    }
    writer.stop().await;
    reader.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_cluster_state_and_fails_when_a_shard_has_no_node_left() {
    let mut cluster = RedisCluster::start();
    let app = spawn_on(&cluster, |_| {}).await;
    assert_eq!(app.get("/readyz").await.json()["cluster_state"], "ok");

    // A master and its replica gone: their slots have nobody to serve them.
    let master = cluster.master_of_slot(0);
    let replica = cluster
        .topology()
        .into_iter()
        .find(|n| !n.master && cli_master_of(n.port) == master.id)
        .expect("the master's replica");
    cluster.kill(master.port);
    cluster.kill(replica.port);
    crate::common::eventually(Duration::from_secs(20), "readyz to fail", || async {
        let answer = app.get("/readyz").await;
        (answer.status == 503).then_some(answer)
    })
    .await
    .assert_problem(503, "cluster_state:fail");
    app.stop().await;
}

/// The id of the master whose replica the node on `port` is.
fn cli_master_of(port: u16) -> String {
    let info = crate::common::cli(port, &["CLUSTER", "NODES"]);
    let me = info.lines().find(|l| l.contains("myself")).unwrap();
    me.split_whitespace().nth(3).unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_replicas_ack_refuses_a_write_no_replica_confirmed_on_a_single_redis() {
    let master = RedisServer::start();
    let mut settings = ServeSettings::for_tests();
    settings.redis_url = Some(master.url().into());
    settings.redis_min_replicas_ack = 1;
    let app = spawn_app_on(settings, None).await;

    // No replica: the master keeps the write, but it is not acknowledged.
    // (Twice: the first write may spend its time loading the script.)
    for _ in 0..2 {
        let answer = app.post_record(&json!({"engine_temperature": 90})).await;
        answer.assert_problem(503, "store is unavailable");
    }
    let kept = crate::common::cli(master.port, &["EXISTS", "tributary:{default}:meta"]);
    assert_eq!(kept.trim(), "1", "the master ran the write; only WAIT refused it");

    // With a replica in sync, writes are acknowledged.
    let port = master.port.to_string();
    let _replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]);
    crate::common::eventually(Duration::from_secs(10), "the replica to be in sync", || async {
        let info = crate::common::cli(master.port, &["INFO", "replication"]);
        (info.contains("connected_slaves:1") && info.contains("state=online")).then_some(())
    })
    .await;
    let answer = app.post_record(&json!({"engine_temperature": 91})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(app.collect().await["current_engine_temperature"], 91.0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setting_both_a_redis_url_and_a_cluster_stops_at_start_saying_so() {
    let mut settings = ServeSettings::for_tests();
    settings.redis_url = Some("redis://127.0.0.1:1".into());
    settings.redis_cluster = Some("redis://127.0.0.1:2".into());
    let err = tributary::startup::Application::build(&settings).await.err().expect("refused");
    let text = format!("{err:#}");
    assert!(text.contains("TRIBUTARY_REDIS_CLUSTER") && text.contains("not both"), "{text}");
}

#[test]
fn the_store_properties_hold_on_a_cluster() {
    use crate::store_properties::{case, check};
    use proptest::test_runner::{Config, TestRunner};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tributary::domain::VehicleId;
    use tributary::store::{DynStore, RedisStore, StoreLimits};

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cluster = RedisCluster::start();
    let urls = cluster.urls();
    let make_store = |limits: StoreLimits| -> DynStore {
        let builder = redis::cluster::ClusterClientBuilder::new(urls.split(',').map(str::to_owned));
        std::sync::Arc::new(RedisStore::with_cluster(builder, limits).unwrap())
    };
    let config = Config { cases: 24, source_file: Some(file!()), ..Config::default() };
    let cases = AtomicUsize::new(0);
    let result = TestRunner::new(config).run(&case(), |case| {
        // Each case on a vehicle of its own, so on slots all over the cluster.
        let n = cases.fetch_add(1, Ordering::Relaxed);
        let vehicle = VehicleId::try_from(format!("cluster-prop-{n}").as_str()).unwrap();
        check(&runtime, &make_store, &vehicle, &case)
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    assert!(cases.load(Ordering::Relaxed) > 0, "no case ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_vehicle_expires_all_at_once_after_the_retention_period() {
    let cluster = RedisCluster::start();
    let app = spawn_on(&cluster, |settings| settings.retention = Duration::from_secs(3600)).await;
    let answer =
        post_readings(&app, "car-1", &json!({"engine_rpm": 800, "vehicle_speed": 10})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    // One key per vehicle (every signal in its hash), on its slot's master.
    let master = cluster.master_of(&meta_key("car-1"));
    let ttl: i64 =
        crate::common::cli(master.port, &["PTTL", &meta_key("car-1")]).trim().parse().unwrap();
    assert!(3_600_000 < ttl && ttl <= 3_660_000, "the vehicle's hash has PTTL {ttl}");
    let keys = crate::common::cli(master.port, &["KEYS", "tributary:{car-1}:*"]);
    assert_eq!(keys.trim(), meta_key("car-1"));
    app.stop().await;

    let app = spawn_on(&cluster, |settings| settings.retention = Duration::from_secs(1)).await;
    let answer = post_readings(&app, "car-2", &json!({"engine_rpm": 800})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    crate::common::eventually(Duration::from_secs(10), "car-2 to be forgotten", || async {
        (app.get("/v1/vehicles/car-2").await.status == 404).then_some(())
    })
    .await;
    let master = cluster.master_of(&meta_key("car-2"));
    let left = crate::common::cli(master.port, &["EXISTS", &meta_key("car-2")]);
    assert_eq!(left.trim(), "0");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_takes_the_cluster_and_replica_acks_from_its_environment() {
    let cluster = RedisCluster::start();
    let urls = cluster.urls();
    let (_process, port) = crate::common::start_binary(
        &[("TRIBUTARY_REDIS_CLUSTER", &urls), ("TRIBUTARY_REDIS_MIN_REPLICAS_ACK", "1")],
        std::process::Stdio::null(),
    );
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["cluster_state"], "ok", "{body}");
    // Every master has its replica: writes are acknowledged.
    let record = client.post(format!("{base}/record")).body(r#"{"engine_rpm": 900}"#);
    let answer = record.send().await.unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
}
