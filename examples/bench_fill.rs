//! Fills a running Tributary for `bench/run`: every vehicle gets every built-in
//! signal's window full, through the batch endpoint (one request per vehicle,
//! `readings` reading objects of the four signals, stamped by the server).
//!
//! `cargo run --release --example bench_fill -- http://127.0.0.1:8000 100000 10`
//!
//! Vehicle ids are `1HGCM82633A000000`, `1HGCM82633A000001`, …, as in the bench's
//! wrk scripts. Any answer but 200 fails the fill. Afterwards it checks the first
//! and the last vehicle: four signals, each with `readings` in its window.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use serde_json::Value;

const CONCURRENCY: usize = 32;
const SIGNALS: [&str; 4] =
    ["engine_temperature", "vehicle_speed", "engine_rpm", "cabin_temperature"];

fn vehicle(index: usize) -> String {
    format!("1HGCM82633A{index:06}")
}

fn batch_body(readings: usize) -> String {
    let objects: Vec<String> = (0..readings)
        .map(|i| {
            let i = i as f64;
            format!(
                r#"{{"engine_temperature":{},"vehicle_speed":{},"engine_rpm":{},"cabin_temperature":{}}}"#,
                85.0 + i * 0.5,
                40.0 + i,
                1800.0 + i * 10.0,
                21.0 + i * 0.1
            )
        })
        .collect();
    format!("[{}]", objects.join(","))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench_fill <base-url> <vehicles> <readings-per-signal>";
    let base = args.next().context(usage)?;
    let vehicles: usize = args.next().context(usage)?.parse().context(usage)?;
    let readings: usize = args.next().context(usage)?.parse().context(usage)?;
    ensure!(vehicles <= 1_000_000 && (1..=250).contains(&readings), "{usage}: out of range");

    // Straight to the server, whatever HTTP_PROXY says; with the token in
    // BENCH_TOKEN when the server requires one (bench/run with AUTH=on).
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(token) = std::env::var("BENCH_TOKEN") {
        headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse()?);
    }
    let client = reqwest::Client::builder().no_proxy().default_headers(headers).build()?;
    let body = bytes::Bytes::from(batch_body(readings));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, body, next, base) = (client.clone(), body.clone(), next.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= vehicles {
                    return anyhow::Ok(());
                }
                let url = format!("{base}/v1/vehicles/{}/readings", vehicle(index));
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .with_context(|| format!("POST {url}"))?;
                let status = response.status();
                if status != reqwest::StatusCode::OK {
                    let text = response.text().await.unwrap_or_default();
                    bail!("POST {url}: {status}: {text}");
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();

    for index in [0, vehicles.saturating_sub(1)] {
        let url = format!("{base}/v1/vehicles/{}", vehicle(index));
        let summary: Value = client.get(&url).send().await?.error_for_status()?.json().await?;
        for signal in SIGNALS {
            let count = summary["signals"][signal]["count"].as_u64();
            ensure!(
                count == Some(readings as u64),
                "GET {url}: {signal} holds {count:?} readings, expected {readings}"
            );
        }
    }
    let values = vehicles * readings * SIGNALS.len();
    println!(
        "bench_fill: {vehicles} vehicles x {} signals x {readings} readings in {:.1} s ({:.0} readings/s)",
        SIGNALS.len(),
        elapsed.as_secs_f64(),
        values as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
