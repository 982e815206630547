//! The Redis store's one-hash layout: what `/collect` reads (each window's
//! aggregate) stays the memory store's, bit for bit, through trimming,
//! resends, out-of-order readings, concurrent writers and expiry.

use std::sync::Arc;
use std::time::Duration;

use crate::common::{RedisServer, eventually};
use tokio::runtime::Runtime;
use tributary::config::ServeSettings;
use tributary::domain::{Aggregate, Clock, Reading, SignalName, StampedBy, Timestamp, VehicleId};
use tributary::store::{DynStore, MemoryStore, RedisStore, StoreLimits};

fn limits(window: usize) -> StoreLimits {
    StoreLimits { window, ..ServeSettings::for_tests().store_limits() }
}

fn signal(name: &str) -> SignalName {
    SignalName::parse(name).unwrap()
}

fn device(name: &str, micros: i64, value: f64) -> Reading {
    Reading {
        signal: signal(name),
        at: Timestamp::from_micros(micros).unwrap(),
        value,
        stamped_by: StampedBy::Device,
    }
}

/// A Redis store on `redis`.
fn redis_store(redis: &RedisServer, limits: StoreLimits) -> DynStore {
    Arc::new(RedisStore::connect_lazily(&redis.url(), limits).unwrap())
}

/// The aggregates, sorted by signal and printed (Debug tells -0.0 from 0.0).
async fn aggregates(store: &DynStore, vehicle: &VehicleId, names: &[SignalName]) -> String {
    let mut aggregates = store.aggregates(vehicle, names).await.unwrap();
    aggregates.sort_by(|a, b| a.0.cmp(&b.0));
    format!("{aggregates:?}")
}

#[test]
fn aggregates_follow_trimming_resends_and_late_readings_as_on_the_memory_store() {
    let runtime = Runtime::new().unwrap();
    let redis = RedisServer::start();
    runtime.block_on(async {
        let stores: [DynStore; 2] =
            [Arc::new(MemoryStore::new(limits(3))), redis_store(&redis, limits(3))];
        let vehicle = VehicleId::try_from("agg-1").unwrap();
        let names = [signal("engine_rpm"), signal("vehicle_speed"), signal("cabin_temperature")];
        let received_at = Clock::new().now();
        let batches = [
            // Out of order, more than the window: the three newest stay.
            vec![
                device("engine_rpm", 5, 5.5),
                device("engine_rpm", 1, 1.0),
                device("engine_rpm", 9, 0.1),
                device("engine_rpm", 7, 0.2),
            ],
            // A resend of a kept sample with a new value, a late one older
            // than the full window (superseded), -0.0 and a second signal.
            vec![
                device("engine_rpm", 7, -0.0),
                device("engine_rpm", 2, 100.0),
                device("vehicle_speed", 3, 1e300),
                device("vehicle_speed", 4, 5e-324),
            ],
            // A newer sample pushes the oldest out.
            vec![device("engine_rpm", 11, 0.3)],
        ];
        let mut seen = Vec::new();
        for store in &stores {
            for batch in &batches {
                store.record(&vehicle, batch, received_at).await.unwrap();
            }
            seen.push(aggregates(store, &vehicle, &names).await);
        }
        assert_eq!(seen[0], seen[1], "Redis' aggregates differ from the memory store's");
        let on_redis = stores[1].aggregates(&vehicle, &names[..1]).await.unwrap();
        let rpm: Aggregate = on_redis[0].1;
        assert_eq!((rpm.current, rpm.count, rpm.min, rpm.max), (0.3, 3, -0.0, 0.3));
        assert_eq!(rpm.average, (0.3 + 0.1 + -0.0) / 3.0);
        assert_eq!(rpm.updated_at.as_micros(), 11);
        let history = stores[1].history(&vehicle, &names).await.unwrap().unwrap();
        assert_eq!(history.signals[&names[0]].total, 5, "the resend and the late one not counted");
        assert!(!history.signals.contains_key(&names[2]), "a signal never sent has no entry");
        // An unknown vehicle, or one asked for signals it never sent: nothing.
        let stranger = VehicleId::try_from("agg-unknown").unwrap();
        assert!(stores[1].aggregates(&stranger, &names).await.unwrap().is_empty());
        assert!(stores[1].aggregates(&vehicle, &names[2..]).await.unwrap().is_empty());
    });
}

/// Many writers on one vehicle at once, as sensors without a clock send (the
/// server stamps each reading, and counts every one, however late it lands):
/// the script is atomic, so no count is lost and the window holds exactly the
/// newest.
#[test]
fn concurrent_writers_lose_no_count_and_keep_the_newest_window() {
    let runtime = Runtime::new().unwrap();
    let redis = RedisServer::start();
    runtime.block_on(async {
        let store = redis_store(&redis, limits(10));
        let vehicle = VehicleId::try_from("busy").unwrap();
        let received_at = Clock::new().now();
        let writers = (0..200_i64).map(|i| {
            let store = store.clone();
            let vehicle = vehicle.clone();
            tokio::spawn(async move {
                let reading = Reading {
                    stamped_by: StampedBy::Server,
                    ..device("engine_rpm", 1_000 + i, i as f64)
                };
                store.record(&vehicle, &[reading], received_at).await.unwrap();
            })
        });
        for writer in writers.collect::<Vec<_>>() {
            writer.await.unwrap();
        }
        let names = [signal("engine_rpm")];
        let history = store.history(&vehicle, &names).await.unwrap().unwrap();
        let rpm = &history.signals[&names[0]];
        assert_eq!(rpm.total, 200);
        let values: Vec<f64> = rpm.samples.iter().map(|s| s.value).collect();
        assert_eq!(values, (190..200).rev().map(|v| v as f64).collect::<Vec<_>>());
    });
}

/// A vehicle silent past the retention period is gone from what `/collect`
/// reads, and a new reading starts it afresh (no old window or total).
#[test]
fn an_expired_vehicle_starts_afresh() {
    let runtime = Runtime::new().unwrap();
    let redis = RedisServer::start();
    runtime.block_on(async {
        let limits = StoreLimits { retention: Duration::from_secs(1), ..limits(10) };
        let store = redis_store(&redis, limits);
        let vehicle = VehicleId::try_from("gone").unwrap();
        let names = [signal("engine_rpm")];
        let clock = Clock::new();
        store.record(&vehicle, &[device("engine_rpm", 1, 1.0)], clock.now()).await.unwrap();
        assert_eq!(store.aggregates(&vehicle, &names).await.unwrap().len(), 1);
        eventually(Duration::from_secs(10), "the vehicle to expire", || async {
            store.history(&vehicle, &names).await.unwrap().is_none().then_some(())
        })
        .await;
        assert!(store.aggregates(&vehicle, &names).await.unwrap().is_empty());
        store.record(&vehicle, &[device("engine_rpm", 2, 2.0)], clock.now()).await.unwrap();
        let history = store.history(&vehicle, &names).await.unwrap().unwrap();
        assert_eq!(history.signals[&names[0]].total, 1);
        assert_eq!(history.signals[&names[0]].samples.len(), 1);
    });
}

/// Writes `vehicle` as the first layout did (before 0.3), by hand: a meta
/// hash with `last_seen` and `total:<signal>`, and per signal a sorted set of
/// `<timestamp>:<value>` members (the value as Rust displays an `f64`) scored
/// by the timestamp, every key with the same expiry.
/// A signal of the first layout: its name, its total and its window's
/// samples (microseconds, value).
type FirstLayoutSignal<'a> = (&'a str, u64, &'a [(i64, f64)]);

fn write_first_layout(redis: &RedisServer, vehicle: &str, signals: &[FirstLayoutSignal<'_>]) {
    let meta = format!("tributary:{{{vehicle}}}:meta");
    redis.command(&["HSET", &meta, "last_seen", "5000000"]);
    for (name, total, samples) in signals {
        let key = format!("tributary:{{{vehicle}}}:signal:{name}");
        for (at, value) in *samples {
            redis.command(&["ZADD", &key, &at.to_string(), &format!("{at}:{value}")]);
        }
        redis.command(&["HSET", &meta, &format!("total:{name}"), &total.to_string()]);
        redis.command(&["PEXPIRE", &key, "600000"]);
    }
    redis.command(&["PEXPIRE", &meta, "600000"]);
}

/// An upgrade keeps every acknowledged reading: a vehicle stored in the first
/// layout is moved into its hash by its first read or its first write, with
/// its windows, totals and expiry, and its old keys are gone.
#[test]
fn a_vehicle_of_the_first_layout_is_moved_by_its_first_read_or_write() {
    let runtime = Runtime::new().unwrap();
    let redis = RedisServer::start();
    let rpm: &[(i64, f64)] = &[(1_000_000, 800.0), (2_000_000, 0.1 + 0.2), (3_000_000, -0.0)];
    let speed: &[(i64, f64)] = &[(2_500_000, 1e-7)];
    for vehicle in ["read-first", "written-first", "no-catalog"] {
        write_first_layout(
            &redis,
            vehicle,
            &[("engine_rpm", 12, rpm), ("vehicle_speed", 1, speed)],
        );
    }
    let names = [signal("engine_rpm"), signal("vehicle_speed"), signal("cabin_temperature")];
    runtime.block_on(async {
        let store = redis_store(&redis, limits(10));
        let memory: DynStore = Arc::new(MemoryStore::new(limits(10)));
        let read_first = VehicleId::try_from("read-first").unwrap();
        let readings: Vec<Reading> = rpm
            .iter()
            .map(|&(at, value)| device("engine_rpm", at, value))
            .chain(speed.iter().map(|&(at, value)| device("vehicle_speed", at, value)))
            .collect();
        memory.record(&read_first, &readings, Clock::new().now()).await.unwrap();

        // Read first: /collect's figures are the memory store's for the same
        // samples, bit for bit; the history keeps the totals.
        assert_eq!(
            aggregates(&store, &read_first, &names).await,
            aggregates(&memory, &read_first, &names).await
        );
        let history = store.history(&read_first, &names).await.unwrap().unwrap();
        assert_eq!(history.last_seen.as_micros(), 5_000_000);
        assert_eq!(history.signals[&names[0]].total, 12);
        assert_eq!(history.signals[&names[1]].total, 1);
        assert_eq!(history.signals[&names[1]].samples[0].value.to_bits(), 1e-7_f64.to_bits());
        assert_eq!(history.signals[&names[0]].samples[0].value.to_bits(), (-0.0_f64).to_bits());

        // Written first: the new reading joins the moved window.
        let written_first = VehicleId::try_from("written-first").unwrap();
        let late = [device("engine_rpm", 4_000_000, 42.0)];
        store.record(&written_first, &late, Clock::new().now()).await.unwrap();
        let history = store.history(&written_first, &names).await.unwrap().unwrap();
        let rpm_now = &history.signals[&names[0]];
        assert_eq!(rpm_now.total, 13);
        let at: Vec<i64> = rpm_now.samples.iter().map(|s| s.at.as_micros()).collect();
        assert_eq!(at, [4_000_000, 3_000_000, 2_000_000, 1_000_000]);
        assert_eq!(history.signals[&names[1]].total, 1);

        // Another store (another instance) moves the third vehicle alike:
        // the signals come from the hash's totals, nothing is left behind.
        let bare = redis_store(&redis, limits(10));
        let no_catalog = VehicleId::try_from("no-catalog").unwrap();
        let history = bare.history(&no_catalog, &names).await.unwrap().unwrap();
        assert_eq!(history.signals[&names[0]].total, 12);
        assert_eq!(history.signals[&names[0]].samples.len(), 3);
        assert_eq!(history.signals[&names[1]].total, 1);
    });
    for vehicle in ["read-first", "written-first", "no-catalog"] {
        let meta = format!("tributary:{{{vehicle}}}:meta");
        assert_eq!(redis.command(&["HGET", &meta, "layout"]), "$1\r\n2\r\n", "{vehicle}");
        for total in ["total:engine_rpm", "total:vehicle_speed"] {
            assert_eq!(redis.command(&["HEXISTS", &meta, total]), ":0\r\n", "{vehicle}: {total}");
        }
        for name in ["engine_rpm", "vehicle_speed"] {
            let key = format!("tributary:{{{vehicle}}}:signal:{name}");
            assert_eq!(redis.command(&["EXISTS", &key]), ":0\r\n", "{vehicle}: {key} is left");
        }
        let reply = redis.command(&["PTTL", &meta]);
        let ttl: i64 = reply.trim_start_matches(':').trim_end().parse().unwrap();
        if vehicle != "written-first" {
            assert!((1..=600_000).contains(&ttl), "{vehicle}: the expiry is kept, not {ttl}");
        } else {
            assert!(ttl > 600_000, "{vehicle}: the write renews the expiry, not {ttl}");
        }
    }
}

/// A Redis that lost the write script (restarted, `SCRIPT FLUSH`, a node new
/// to a cluster) is given it again by the next write, which then succeeds:
/// the first write stores the script, the flush drops it, the second write
/// finds it missing and loads it.
#[test]
fn a_write_loads_the_script_again_when_redis_lost_it() {
    let runtime = Runtime::new().unwrap();
    let redis = RedisServer::start();
    runtime.block_on(async {
        let store = redis_store(&redis, limits(10));
        let vehicle = VehicleId::try_from("flushed").unwrap();
        let names = [signal("engine_rpm")];
        let clock = Clock::new();
        store.record(&vehicle, &[device("engine_rpm", 1, 1.0)], clock.now()).await.unwrap();
        redis.command(&["SCRIPT", "FLUSH"]);
        store.record(&vehicle, &[device("engine_rpm", 2, 2.0)], clock.now()).await.unwrap();
        let history = store.history(&vehicle, &names).await.unwrap().unwrap();
        assert_eq!(history.signals[&names[0]].total, 2);
    });
}
