//! Properties of the `Store` trait that must hold on both stores, whatever order
//! readings arrive in and however they are split into batches.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::{Backend, RedisServer};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tokio::runtime::Runtime;
use tributary::config::ServeSettings;
use tributary::domain::{
    Aggregate, Clock, Reading, Sample, SignalName, StampedBy, Timestamp, VehicleId,
};
use tributary::store::{DynStore, MemoryStore, RedisStore, StoreLimits};

/// A device timestamp in the past (2025-06-01T12:00:00Z), in microseconds.
const BASE_MICROS: i64 = 1_748_779_200_000_000;

/// Two signals, so batches mix them (the Redis script maps each to its own key).
const SIGNALS: [&str; 2] = ["engine_rpm", "vehicle_speed"];

/// One reading as generated: which signal, at which of a few instants (so that
/// resends happen often), with what value, and whether the batch ends after it.
#[derive(Debug, Clone)]
struct Write {
    signal: usize,
    second: u8,
    value: f64,
    ends_batch: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Case {
    window: usize,
    writes: Vec<Write>,
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        // Small exact values, so failures are easy to read...
        (-64i32..64).prop_map(|v| f64::from(v) / 4.0),
        // ...and any finite value, which Redis must round-trip exactly.
        prop::num::f64::POSITIVE
            | prop::num::f64::NEGATIVE
            | prop::num::f64::NORMAL
            | prop::num::f64::SUBNORMAL
            | prop::num::f64::ZERO,
    ]
}

pub(crate) fn case() -> impl Strategy<Value = Case> {
    let write = (0..SIGNALS.len(), 0u8..16, value(), prop::bool::weighted(0.3)).prop_map(
        |(signal, second, value, ends_batch)| Write { signal, second, value, ends_batch },
    );
    (1usize..=12, prop::collection::vec(write, 1..48))
        .prop_map(|(window, writes)| Case { window, writes })
}

fn signal(index: usize) -> SignalName {
    SignalName::parse(SIGNALS[index]).unwrap()
}

fn at(second: u8) -> Timestamp {
    Timestamp::from_micros(BASE_MICROS + i64::from(second) * 1_000_000).unwrap()
}

/// The writes split into batches, in the generated order.
fn batches(writes: &[Write]) -> Vec<Vec<Reading>> {
    let mut batches = vec![Vec::new()];
    for write in writes {
        batches.last_mut().unwrap().push(Reading {
            signal: signal(write.signal),
            at: at(write.second),
            value: write.value,
            stamped_by: StampedBy::Device,
        });
        if write.ends_batch {
            batches.push(Vec::new());
        }
    }
    batches.retain(|b| !b.is_empty());
    batches
}

/// Per signal: for each timestamp the last value written, newest first, cut to
/// the window; and how many writes there were.
fn sorted_windows(case: &Case) -> BTreeMap<SignalName, (Vec<Sample>, usize)> {
    let mut latest: BTreeMap<SignalName, (BTreeMap<Timestamp, f64>, usize)> = BTreeMap::new();
    for write in &case.writes {
        let (values, writes) = latest.entry(signal(write.signal)).or_default();
        values.insert(at(write.second), write.value);
        *writes += 1;
    }
    latest
        .into_iter()
        .map(|(name, (values, writes))| {
            let window = values
                .into_iter()
                .rev()
                .take(case.window)
                .map(|(at, value)| Sample { at, value })
                .collect();
            (name, (window, writes))
        })
        .collect()
}

/// The total each store must report, per signal: a timestamp already kept is a
/// resend, and one older than every sample of the window as the batch found it
/// (when full) is superseded; neither counts. Windows are trimmed after each batch.
fn expected_totals(case: &Case) -> BTreeMap<SignalName, usize> {
    let mut kept: BTreeMap<SignalName, BTreeSet<Timestamp>> = BTreeMap::new();
    let mut totals: BTreeMap<SignalName, usize> = BTreeMap::new();
    for batch in batches(&case.writes) {
        // Each signal's floor as the batch found it: the oldest of a full window.
        let floors: BTreeMap<SignalName, Timestamp> = kept
            .iter()
            .filter(|(_, window)| window.len() >= case.window)
            .filter_map(|(signal, window)| Some((signal.clone(), *window.first()?)))
            .collect();
        for reading in &batch {
            let window = kept.entry(reading.signal.clone()).or_default();
            let superseded = floors.get(&reading.signal).is_some_and(|&floor| reading.at < floor);
            if window.contains(&reading.at) || superseded {
                continue;
            }
            window.insert(reading.at);
            *totals.entry(reading.signal.clone()).or_default() += 1;
        }
        for window in kept.values_mut() {
            while window.len() > case.window {
                window.pop_first();
            }
        }
    }
    totals
}

/// Records `case` into a fresh store and compares the windows it keeps with the
/// sorted ones.
pub(crate) fn check(
    runtime: &Runtime,
    make_store: &dyn Fn(StoreLimits) -> DynStore,
    vehicle: &VehicleId,
    case: &Case,
) -> Result<(), TestCaseError> {
    let limits = StoreLimits { window: case.window, ..ServeSettings::for_tests().store_limits() };
    let expected = sorted_windows(case);
    let names: Vec<SignalName> = (0..SIGNALS.len()).map(signal).collect();
    let history = runtime.block_on(async {
        let store = make_store(limits);
        // Now, not a device time: the memory store's sweep forgets vehicles last
        // heard from longer ago than the retention period.
        let received_at = Clock::new().now();
        for batch in batches(&case.writes) {
            store.record(vehicle, &batch, received_at).await.unwrap();
        }
        let first = store.history(vehicle, &names).await.unwrap();
        // What `/collect` reads: the aggregates of those same windows, bit for
        // bit (Debug tells -0.0 from 0.0). The memory store computes them in
        // place; Redis derives them from the history, so this holds trivially.
        let mut aggregates = store.aggregates(vehicle, &names).await.unwrap();
        aggregates.sort_by(|a, b| a.0.cmp(&b.0));
        let expected: Vec<_> = first
            .iter()
            .flat_map(|history| &history.signals)
            .map(|(signal, history)| (signal.clone(), Aggregate::of(&history.samples).unwrap()))
            .collect();
        assert_eq!(format!("{aggregates:?}"), format!("{expected:?}"));
        // Resending everything, in the same batches, must change nothing.
        for batch in batches(&case.writes) {
            store.record(vehicle, &batch, received_at).await.unwrap();
        }
        let resent = store.history(vehicle, &names).await.unwrap();
        // The same batches with their readings reversed, on a vehicle of their own.
        let reversed_vehicle = VehicleId::try_from(format!("{vehicle}-r").as_str()).unwrap();
        for mut batch in batches(&case.writes) {
            batch.reverse();
            store.record(&reversed_vehicle, &batch, received_at).await.unwrap();
        }
        let reversed = store.history(&reversed_vehicle, &names).await.unwrap();
        (first, resent, reversed)
    });
    let (history, resent, reversed) = history;
    prop_assert_eq!(&history, &resent, "a resent batch changed the stored history");
    // Order within a batch may only decide which of two values with the same
    // timestamp wins, never which timestamps are kept or counted.
    let shape =
        |h: &Option<tributary::store::VehicleHistory>| -> Vec<(String, Vec<Timestamp>, u64)> {
            h.iter()
                .flat_map(|h| &h.signals)
                .map(|(name, s)| {
                    (name.to_string(), s.samples.iter().map(|x| x.at).collect(), s.total)
                })
                .collect()
        };
    prop_assert_eq!(
        shape(&history),
        shape(&reversed),
        "the order within a batch changed the window or total"
    );
    let history = history.expect("the vehicle was just heard from");

    let kept: BTreeSet<&SignalName> = history.signals.keys().collect();
    let written: BTreeSet<&SignalName> = expected.keys().collect();
    prop_assert_eq!(kept, written, "signals with data");
    for (name, (window, writes)) in &expected {
        let stored = &history.signals[name];
        prop_assert_eq!(&stored.samples, window, "window of {}", name);
        let total = usize::try_from(stored.total).unwrap();
        prop_assert_eq!(total, expected_totals(case)[name], "total of {}", name);
        prop_assert!(total <= *writes);
    }
    Ok(())
}

fn any_interleaving_of_out_of_order_and_resent_readings_leaves_the_same_window_as_sorting_them(
    backend: Backend,
) {
    let runtime = Runtime::new().unwrap();
    // One redis-server for the whole run; every case gets a vehicle of its own.
    let redis = (backend == Backend::Redis).then(RedisServer::start);
    let make_store = |limits: StoreLimits| -> DynStore {
        match &redis {
            None => std::sync::Arc::new(MemoryStore::new(limits)),
            Some(redis) => std::sync::Arc::new(
                RedisStore::connect_lazily(&redis.url(), limits).expect("a valid Redis URL"),
            ),
        }
    };
    let config = Config {
        cases: if backend == Backend::Redis { 24 } else { 256 },
        source_file: Some(file!()),
        ..Config::default()
    };
    let cases = AtomicUsize::new(0);
    let mut runner = TestRunner::new(config);
    let result = runner.run(&case(), |case| {
        let n = cases.fetch_add(1, Ordering::Relaxed);
        let vehicle = VehicleId::try_from(format!("prop-{n}").as_str()).unwrap();
        check(&runtime, &make_store, &vehicle, &case)
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    assert!(cases.load(Ordering::Relaxed) > 0, "no case ran");
}

mod memory {
    #[test]
    fn any_interleaving_of_out_of_order_and_resent_readings_leaves_the_same_window_as_sorting_them()
    {
        super::any_interleaving_of_out_of_order_and_resent_readings_leaves_the_same_window_as_sorting_them(
            super::Backend::Memory,
        );
    }
}

mod redis {
    #[test]
    fn any_interleaving_of_out_of_order_and_resent_readings_leaves_the_same_window_as_sorting_them()
    {
        super::any_interleaving_of_out_of_order_and_resent_readings_leaves_the_same_window_as_sorting_them(
            super::Backend::Redis,
        );
    }
}

/// A memory store and a Redis store on `redis`, with windows of `window`.
fn both_stores(redis: &RedisServer, window: usize) -> [DynStore; 2] {
    let limits = StoreLimits { window, ..ServeSettings::for_tests().store_limits() };
    [
        std::sync::Arc::new(MemoryStore::new(limits)),
        std::sync::Arc::new(RedisStore::connect_lazily(&redis.url(), limits).unwrap()),
    ]
}

/// Batches of server-stamped readings (what a sensor that sends no timestamp
/// gets), mixed with device-stamped ones: the Redis store, which takes the
/// server's readings of a signal in one step, must end exactly where the
/// memory store does, window and total.
#[test]
fn server_stamped_batches_leave_the_same_history_on_both_stores() {
    let runtime = Runtime::new().unwrap();
    let redis = RedisServer::start();
    let reading = (
        0..SIGNALS.len(),
        value(),
        prop::option::weighted(0.2, 0u8..16),
        prop::bool::weighted(0.2),
    );
    let strategy = (1usize..=12, prop::collection::vec(reading, 1..64));
    let config = Config { cases: 24, source_file: Some(file!()), ..Config::default() };
    let cases = AtomicUsize::new(0);
    let result = TestRunner::new(config).run(&strategy, |(window, readings)| {
        let n = cases.fetch_add(1, Ordering::Relaxed);
        let vehicle = VehicleId::try_from(format!("server-{n}").as_str()).unwrap();
        let names: Vec<SignalName> = (0..SIGNALS.len()).map(signal).collect();
        let (memory, on_redis) = runtime.block_on(async {
            let [memory, on_redis] = both_stores(&redis, window);
            let clock = Clock::new();
            let mut batch = Vec::new();
            for (i, (signal_index, value, device_second, ends_batch)) in readings.iter().enumerate()
            {
                let (at, stamped_by) = match device_second {
                    Some(second) => (self::at(*second), StampedBy::Device),
                    None => (clock.stamp(), StampedBy::Server),
                };
                batch.push(Reading {
                    signal: signal(*signal_index),
                    at,
                    value: *value,
                    stamped_by,
                });
                if *ends_batch || i + 1 == readings.len() {
                    let received_at = clock.now();
                    memory.record(&vehicle, &batch, received_at).await.unwrap();
                    on_redis.record(&vehicle, &batch, received_at).await.unwrap();
                    batch.clear();
                }
            }
            let memory = memory.history(&vehicle, &names).await.unwrap();
            let on_redis = on_redis.history(&vehicle, &names).await.unwrap();
            (memory, on_redis)
        });
        prop_assert_eq!(memory, on_redis);
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

/// A server stamp equal, to the microsecond, to a stored device stamp (the one
/// case where the Redis store takes server-stamped readings one by one): it
/// replaces the stored value and is not counted, on both stores.
#[test]
fn a_server_stamp_equal_to_a_stored_device_stamp_replaces_it_on_both_stores() {
    let runtime = Runtime::new().unwrap();
    let redis = RedisServer::start();
    let vehicle = VehicleId::try_from("clash").unwrap();
    let names: Vec<SignalName> = (0..SIGNALS.len()).map(signal).collect();
    let reading = |second: u8, value: f64, stamped_by| Reading {
        signal: signal(0),
        at: at(second),
        value,
        stamped_by,
    };
    let histories = runtime.block_on(async {
        let stores = both_stores(&redis, 3);
        let received_at = Clock::new().now();
        let mut histories = Vec::new();
        for store in &stores {
            let device = [1, 2, 3].map(|s| reading(s, f64::from(s), StampedBy::Device));
            store.record(&vehicle, &device, received_at).await.unwrap();
            let server = [reading(2, 20.0, StampedBy::Server), reading(4, 40.0, StampedBy::Server)];
            store.record(&vehicle, &server, received_at).await.unwrap();
            histories.push(store.history(&vehicle, &names).await.unwrap().unwrap());
        }
        histories
    });
    let rpm = &histories[0].signals[&signal(0)];
    let values: Vec<f64> = rpm.samples.iter().map(|s| s.value).collect();
    assert_eq!(values, [40.0, 3.0, 20.0], "newest first; the clash replaced 2.0");
    assert_eq!(rpm.total, 4, "three device readings and one new server reading");
    assert_eq!(histories[0], histories[1], "the Redis store agrees with the memory store");
}
