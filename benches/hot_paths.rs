//! Instruction counts of the hot paths, under Valgrind's callgrind (gungraun):
//! repeatable to a few instructions on a machine whose wall-clock figures move
//! by 20%, so that a change that makes a hot path slower shows up as a number.
//! Run by hand, not in CI (docs/performance.md has the figures and how):
//!
//! ```sh
//! cargo install gungraun-runner --version 0.20.0 --locked   # once; the same version as gungraun
//! cargo bench --bench hot_paths
//! ```
//!
//! Each benchmark's setup (building the store, filling a window, starting a
//! runtime) is not counted; only the call inside the benchmark function is.
//! Everything goes through the library's public API: the parsers of the two
//! write surfaces, the `Store` trait, and the router, called with
//! `tower::ServiceExt::oneshot` as the tests call it.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use futures_util::FutureExt;
use gungraun::{library_benchmark, library_benchmark_group, main};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use tributary::domain::{Catalog, Clock, Reading, VehicleId};
use tributary::http::wire::ParseContext;
use tributary::store::{MemoryStore, Store, StoreLimits};

/// A legacy `/record` body, as a sensor sends it.
const RECORD_BODY: &[u8] = br#"{"vehicle_id": "1HGCM82633A004352", "engine_temperature": 90.5}"#;

/// A batch of 100 readings, the bench's (bench/lib.lua): one signal value each,
/// the four built-in signals in turn.
fn batch_body() -> Vec<u8> {
    let signals = [
        ("engine_temperature", 85.0, 0.1),
        ("vehicle_speed", 40.0, 0.5),
        ("engine_rpm", 1800.0, 5.0),
        ("cabin_temperature", 21.0, 0.05),
    ];
    let objects: Vec<String> = (0..100)
        .map(|i| {
            let (name, base, step) = signals[i % 4];
            format!(r#"{{"{name}":{:.2}}}"#, base + i as f64 * step)
        })
        .collect();
    format!("[{}]", objects.join(",")).into_bytes()
}

/// What parsing needs: the built-in catalog and a clock.
struct Parsing {
    catalog: Catalog,
    clock: Clock,
    body: Vec<u8>,
}

fn parsing(body: Vec<u8>) -> Parsing {
    Parsing { catalog: Catalog::builtin(), clock: Clock::new(), body }
}

fn record_setup() -> Parsing {
    parsing(RECORD_BODY.to_vec())
}

fn batch_setup() -> Parsing {
    parsing(batch_body())
}

// `POST /record`'s body, from bytes to readings: JSON, then the legacy parser.
#[library_benchmark]
#[bench::one_reading(setup = record_setup)]
fn parse_record(input: Parsing) -> usize {
    let ctx = ParseContext { catalog: &input.catalog, clock: &input.clock };
    let value: Value = serde_json::from_slice(black_box(&input.body)).unwrap();
    let request = tributary::http::legacy::wire::parse_record(&value, &ctx).unwrap();
    black_box(request.readings.len())
}

// A batch of 100 readings for `POST /v1/vehicles/{id}/readings`, from bytes
// to readings.
#[library_benchmark]
#[bench::hundred_readings(setup = batch_setup)]
fn parse_batch(input: Parsing) -> usize {
    let ctx = ParseContext { catalog: &input.catalog, clock: &input.clock };
    let value: Value = serde_json::from_slice(black_box(&input.body)).unwrap();
    let readings = tributary::http::v1::wire::parse_batch(&value, &ctx).unwrap();
    black_box(readings.len())
}

fn limits() -> StoreLimits {
    StoreLimits {
        window: 10,
        retention: Duration::from_secs(86_400),
        timeout: Duration::from_secs(1),
        max_vehicles: None,
    }
}

fn vehicle() -> VehicleId {
    VehicleId::try_from("1HGCM82633A004352").unwrap()
}

/// Readings parsed from `body` (a batch), stamped by `clock`.
fn readings(body: &[u8], catalog: &Catalog, clock: &Clock) -> Vec<Reading> {
    let value: Value = serde_json::from_slice(body).unwrap();
    tributary::http::v1::wire::parse_batch(&value, &ParseContext { catalog, clock }).unwrap()
}

/// A memory store holding one vehicle with every built-in signal's window
/// full, and the next reading to record (one engine temperature): the steady
/// state of a car that has been sending for a while.
struct Filled {
    store: MemoryStore,
    vehicle: VehicleId,
    catalog: Catalog,
    clock: Clock,
    next: Vec<Reading>,
}

fn filled_store() -> Filled {
    let (catalog, clock) = (Catalog::builtin(), Clock::new());
    let store = MemoryStore::new(limits());
    let fill = readings(&batch_body()[..], &catalog, &clock);
    let recorded = store.record(&vehicle(), &fill, clock.now()).now_or_never();
    recorded.expect("the memory store answers at once").unwrap();
    let next = readings(br#"{"engine_temperature": 90.5}"#, &catalog, &clock);
    Filled { store, vehicle: vehicle(), catalog, clock, next }
}

// The memory store's `record` of one reading into a full window: the
// store's part of a `/record`. Its future is ready at once (nothing in it
// waits), so it is polled once, without a runtime.
#[library_benchmark]
#[bench::full_window(setup = filled_store)]
fn store_record(filled: Filled) -> Filled {
    let now = filled.clock.now();
    let recorded = filled.store.record(black_box(&filled.vehicle), black_box(&filled.next), now);
    recorded.now_or_never().expect("the memory store answers at once").unwrap();
    filled
}

// The memory store's `aggregates` of the four built-in signals: the store's
// part of a `/collect`.
#[library_benchmark]
#[bench::four_signals(setup = filled_store)]
fn store_aggregates(filled: Filled) -> Filled {
    let aggregates = filled.store.aggregates(black_box(&filled.vehicle), filled.catalog.names());
    let aggregates = aggregates.now_or_never().expect("the memory store answers at once").unwrap();
    assert_eq!(aggregates.len(), 4);
    black_box(aggregates);
    filled
}

/// The service as a router on a memory store holding one full vehicle, and a
/// single-threaded runtime to call it on.
struct Service {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
}

fn service() -> Service {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let filled = filled_store();
    let store: Arc<dyn Store> = Arc::new(filled.store);
    let state = tributary::http::AppState::new(store, Catalog::builtin(), Duration::from_secs(10));
    let router = runtime.block_on(async { tributary::http::router(state) });
    let service = Service { runtime, router };
    // A first call of each: what happens once per process (lazily made
    // statics, the metrics' first registration) is not the hot path.
    call(&service, collect());
    call(&service, record());
    service
}

fn collect() -> Request<Body> {
    Request::get("/collect?vehicle_id=1HGCM82633A004352").body(Body::empty()).unwrap()
}

fn record() -> Request<Body> {
    Request::post("/record")
        .header("content-type", "application/json")
        .body(Body::from(RECORD_BODY))
        .unwrap()
}

/// Calls the router with `request` and reads the whole answer.
fn call(service: &Service, request: Request<Body>) -> usize {
    service.runtime.block_on(async {
        let response = service.router.clone().oneshot(request).await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        response.into_body().collect().await.unwrap().to_bytes().len()
    })
}

fn with_collect() -> (Service, Request<Body>) {
    (service(), collect())
}

fn with_record() -> (Service, Request<Body>) {
    (service(), record())
}

// `GET /collect?vehicle_id=…` of a vehicle with four signals, through the
// whole router (middleware, handler, the store's aggregates, the answer's
// rendering), without a socket; the router has answered one of each before.
#[library_benchmark]
#[bench::four_signals(setup = with_collect)]
fn collect_request((service, request): (Service, Request<Body>)) -> Service {
    black_box(call(&service, request));
    service
}

// `POST /record` of one reading, through the whole router, without a socket.
#[library_benchmark]
#[bench::one_reading(setup = with_record)]
fn record_request((service, request): (Service, Request<Body>)) -> Service {
    black_box(call(&service, request));
    service
}

library_benchmark_group!(name = parsing_group; benchmarks = parse_record, parse_batch);
library_benchmark_group!(name = store_group; benchmarks = store_record, store_aggregates);
library_benchmark_group!(name = router_group; benchmarks = collect_request, record_request);

main!(library_benchmark_groups = parsing_group, store_group, router_group);
