//! Test helpers: the application started in-process (`app`), a real
//! `redis-server` on a free port (`redis`), child processes (`process`), a raw
//! HTTP/1.1 client (`raw`), and fault injection (`faults`).

#[macro_use]
mod app;
mod cluster;
pub mod faults;
mod process;
mod raw;
mod redis;

use std::time::{Duration, Instant};

pub use self::app::*;
pub use self::cluster::*;
pub use self::process::*;
pub use self::raw::*;
pub use self::redis::*;

/// The bound on a 503 while Redis is down (the issue's: well under 3 s). They
/// take about 0.1 s, connections being refused at once: this is not a speed
/// goal but a no-hang guarantee.
pub const FAST_503: Duration = Duration::from_millis(2000);

/// Polls `check` every 10 ms until it returns `Some`, or panics after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
