//! Measures what one vehicle costs in each store, for the README:
//! `cargo run --release --example memory_cost [redis://127.0.0.1:6379/15]`.
//!
//! Fills the store with 20,000 vehicles, each with every built-in signal's full
//! window (10 readings), and reports the growth per vehicle: resident memory for
//! the embedded store, Redis's `used_memory` for Redis (use a scratch database).

use tributary::domain::{Catalog, Clock, Reading, StampedBy, VehicleId};
use tributary::store::{MemoryStore, RedisStore, Store, StoreLimits};

const VEHICLES: usize = 20_000;

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

async fn fill(store: &dyn Store, window: usize) {
    let catalog = Catalog::builtin();
    let clock = Clock::new();
    for v in 0..VEHICLES {
        let vehicle = VehicleId::try_from(format!("1HGCM82633A{v:06}").as_str()).unwrap();
        let readings: Vec<Reading> = (0..window)
            .flat_map(|i| {
                let at = clock.stamp();
                catalog.signals().iter().map(move |s| Reading {
                    signal: s.name.clone(),
                    at,
                    value: s.min + (i as f64) * 0.37,
                    stamped_by: StampedBy::Server,
                })
            })
            .collect();
        store.record(&vehicle, &readings, clock.now()).await.unwrap();
    }
}

#[tokio::main]
async fn main() {
    let limits = StoreLimits::new(10);
    match std::env::args().nth(1) {
        None => {
            let before = resident_bytes();
            let store = MemoryStore::new(limits);
            fill(&store, limits.window).await;
            let per_vehicle = (resident_bytes() - before) / VEHICLES as u64;
            println!("memory store: {per_vehicle} bytes per vehicle (4 signals x 10 readings)");
        }
        Some(url) => {
            let used = |info: String| -> u64 {
                info.lines()
                    .find_map(|l| l.strip_prefix("used_memory:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0)
            };
            let client = redis::Client::open(url.as_str()).unwrap();
            let mut con = client.get_multiplexed_async_connection().await.unwrap();
            let _: () = redis::cmd("FLUSHDB").query_async(&mut con).await.unwrap();
            let before =
                used(redis::cmd("INFO").arg("memory").query_async(&mut con).await.unwrap());
            let store = RedisStore::connect_lazily(&url, limits).unwrap();
            fill(&store, limits.window).await;
            let after = used(redis::cmd("INFO").arg("memory").query_async(&mut con).await.unwrap());
            println!(
                "redis store: {} bytes per vehicle (4 signals x 10 readings)",
                (after - before) / VEHICLES as u64
            );
            let _: () = redis::cmd("FLUSHDB").query_async(&mut con).await.unwrap();
        }
    }
}
