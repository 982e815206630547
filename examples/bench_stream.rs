//! The live-stream benchmark, run by `bench/stream`: starts its own
//! `redis-server` and `tributary` processes (release build) and measures
//!
//! - record-to-event latency: from just before a `POST
//!   /v1/vehicles/{id}/readings` is sent to the arrival of the `update` it
//!   caused at each subscriber (p50, p99), with 1, 100 and 10,000 subscribers
//!   spread over 1 to 1,000 vehicles; on the memory store (one instance) and
//!   on Redis with the writer and the subscribers on two different instances;
//! - events delivered per second over that phase;
//! - write throughput (16 writers back to back, to vehicles nobody watches)
//!   with no subscriber, and with 10,000 idle subscribers attached.
//!
//! Writes are paced (`RATE` a second) so that latency is measured, not a
//! queue. Everything runs on one machine: the subscribers' JSON parsing
//! competes with the service for the same cores, so figures are an upper
//! bound of what the service alone costs.
//!
//! `cargo run --release --example bench_stream -- PATH_TO_TRIBUTARY [WRITES]`

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Writes per second during a latency phase.
const RATE: u64 = 25;

/// A child process, killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn redis() -> (Proc, String) {
    let port = free_port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    wait_listening(port).await;
    (Proc(child), format!("redis://127.0.0.1:{port}"))
}

async fn tributary(binary: &str, redis_url: Option<&str>) -> (Proc, String) {
    let port = free_port();
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .env_clear()
        .env("TRIBUTARY_LISTEN", format!("127.0.0.1:{port}"))
        .env("TRIBUTARY_LOG", "warn")
        // As bench/run's rows: no line per request.
        .env("TRIBUTARY_ACCESS_LOG", "off")
        .env("TRIBUTARY_VEHICLE_RATE", "0")
        .env("TRIBUTARY_MAX_CONNECTIONS", "19000")
        .env("TRIBUTARY_MAX_STREAMS", "19000")
        .stdout(Stdio::null());
    if let Some(url) = redis_url {
        command.env("TRIBUTARY_REDIS_URL", url);
    }
    let child = command.spawn().expect("tributary");
    wait_listening(port).await;
    (Proc(child), format!("http://127.0.0.1:{port}"))
}

/// What the subscribers share: send times by write, and their tally.
struct Tally {
    started: Instant,
    /// Nanoseconds after `started` at which write `seq` was sent.
    sent_at: Vec<AtomicU64>,
    latencies: Mutex<Histogram<u64>>,
    events: AtomicUsize,
    open: AtomicUsize,
}

/// Opens `count` streams over `vehicles` (named `{prefix}-{n}`) and reads
/// them until the returned handles are aborted.
async fn subscribe(
    client: &reqwest::Client,
    base: &str,
    prefix: &str,
    count: usize,
    vehicles: usize,
    tally: &Arc<Tally>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::with_capacity(count);
    // Opened 64 at a time: each opening request takes an in-flight slot.
    let opening = Arc::new(tokio::sync::Semaphore::new(64));
    for n in 0..count {
        let url = format!("{base}/v1/vehicles/{prefix}-{}/stream", n % vehicles);
        let (client, tally) = (client.clone(), tally.clone());
        let permit = opening.clone().acquire_owned().await.unwrap();
        tasks.push(tokio::spawn(async move {
            let response = client.get(url).send().await.expect("a stream opens");
            assert_eq!(response.status(), 200, "a stream opens");
            let mut events = response.bytes_stream().eventsource();
            let mut permit = Some(permit);
            while let Some(Ok(event)) = events.next().await {
                if event.event == "snapshot" {
                    tally.open.fetch_add(1, Ordering::Relaxed);
                    drop(permit.take());
                    continue;
                }
                let now = tally.started.elapsed().as_nanos() as u64;
                let data: Value = serde_json::from_str(&event.data).unwrap();
                if let Some(seq) = data["signals"]["engine_rpm"]["current"].as_f64() {
                    let sent = tally.sent_at[seq as usize].load(Ordering::Relaxed);
                    let micros = now.saturating_sub(sent) / 1000;
                    tally.latencies.lock().unwrap().record(micros).unwrap();
                }
                tally.events.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while tally.open.load(Ordering::Relaxed) < count {
        assert!(Instant::now() < deadline, "streams did not open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tasks
}

async fn write(client: &reqwest::Client, base: &str, vehicle: &str, value: f64) {
    let url = format!("{base}/v1/vehicles/{vehicle}/readings");
    let response = client.post(url).json(&json!({"engine_rpm": value})).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

/// One latency phase; prints a row.
async fn latency(
    label: &str,
    writer: &str,
    reader: &str,
    subscribers: usize,
    vehicles: usize,
    writes: usize,
) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let tally = Arc::new(Tally {
        started: Instant::now(),
        sent_at: (0..=writes).map(|_| AtomicU64::new(0)).collect(),
        latencies: Mutex::new(Histogram::new(3).unwrap()),
        events: AtomicUsize::new(0),
        open: AtomicUsize::new(0),
    });
    let prefix = format!("lat{subscribers}x{vehicles}");
    let tasks = subscribe(&client, reader, &prefix, subscribers, vehicles, &tally).await;
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    let first = Instant::now();
    for seq in 1..=writes {
        tick.tick().await;
        let vehicle = format!("{prefix}-{}", seq % vehicles);
        let now = tally.started.elapsed().as_nanos() as u64;
        tally.sent_at[seq].store(now, Ordering::Relaxed);
        write(&client, writer, &vehicle, seq as f64).await;
    }
    // Each write reaches subscribers / vehicles streams (fewer if coalesced).
    let expected = writes * subscribers / vehicles;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = (0, Instant::now());
    loop {
        let events = tally.events.load(Ordering::Relaxed);
        if events >= expected || Instant::now() > deadline {
            break;
        }
        if events != last.0 {
            last = (events, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = first.elapsed();
    for task in tasks {
        task.abort();
    }
    let events = tally.events.load(Ordering::Relaxed);
    let latencies = tally.latencies.lock().unwrap();
    println!(
        "| {label} | {subscribers} | {vehicles} | {writes} | {:.2} | {:.2} | {events}/{expected} | {:.0} |",
        latencies.value_at_quantile(0.5) as f64 / 1000.0,
        latencies.value_at_quantile(0.99) as f64 / 1000.0,
        events as f64 / elapsed.as_secs_f64(),
    );
}

/// Writes/s of 16 writers back to back for `duration`, to unwatched vehicles.
async fn throughput(base: &str, duration: Duration) -> f64 {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let until = Instant::now() + duration;
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let (client, base, done) = (client.clone(), base.to_owned(), done.clone());
            tokio::spawn(async move {
                let mut n = 0.0;
                while Instant::now() < until {
                    write(&client, &base, &format!("flood-{w}"), n).await;
                    done.fetch_add(1, Ordering::Relaxed);
                    n += 1.0;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / duration.as_secs_f64()
}

async fn idle_throughput(label: &str, writer: &str, reader: &str) {
    let duration = Duration::from_secs(5);
    let none = throughput(writer, duration).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let tally = Arc::new(Tally {
        started: Instant::now(),
        sent_at: vec![AtomicU64::new(0)],
        latencies: Mutex::new(Histogram::new(3).unwrap()),
        events: AtomicUsize::new(0),
        open: AtomicUsize::new(0),
    });
    let tasks = subscribe(&client, reader, "idle", 10_000, 1000, &tally).await;
    let with = throughput(writer, duration).await;
    for task in tasks {
        task.abort();
    }
    println!("| {label} | {none:.0} | {with:.0} | {:+.1}% |", (with - none) / none * 100.0);
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let binary = args.next().expect("usage: bench_stream PATH_TO_TRIBUTARY [WRITES]");
    let writes: usize = args.next().map_or(100, |w| w.parse().expect("WRITES is a number"));
    let (_memory, memory) = tributary(&binary, None).await;
    let (_redis, url) = redis().await;
    let (_a, a) = tributary(&binary, Some(&url)).await;
    let (_b, b) = tributary(&binary, Some(&url)).await;

    println!(
        "| store | subscribers | vehicles | writes | p50 ms | p99 ms | events received/expected | events/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let shapes = [(1, 1), (100, 1), (100, 100), (10_000, 1), (10_000, 1000)];
    for (label, writer, reader) in [("memory", &memory, &memory), ("redis A->B", &a, &b)] {
        for (subscribers, vehicles) in shapes {
            // 10,000 subscribers of one vehicle: fewer writes (each is 10,000 events).
            let writes = if subscribers / vehicles > 1000 { writes / 4 } else { writes };
            latency(label, writer, reader, subscribers, vehicles, writes).await;
        }
    }
    println!();
    println!("| store | writes/s, no subscriber | writes/s, 10,000 idle subscribers | change |");
    println!("|---|---:|---:|---:|");
    idle_throughput("memory", &memory, &memory).await;
    idle_throughput("redis A (subscribers on B)", &a, &b).await;
    idle_throughput("redis A (subscribers on A)", &a, &a).await;
}
