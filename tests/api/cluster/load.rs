//! Writers that load the service while a test breaks the cluster: one per
//! vehicle, one request at a time, each reading with its own device timestamp
//! and value, keeping a log of every answer so the test can check, reading by
//! reading, what was acknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

/// Device timestamps start here (epoch milliseconds, safely in the past).
const BASE_MILLIS: i64 = 1_748_779_200_000;

/// One answer a writer got.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub reading: u32,
    pub sent: Instant,
    pub took: Duration,
    pub status: u16,
}

/// What one writer did.
#[derive(Debug)]
pub struct Log {
    pub vehicle: String,
    pub attempts: Vec<Attempt>,
}

impl Log {
    /// The readings answered 200.
    pub fn acknowledged(&self) -> Vec<u32> {
        self.attempts.iter().filter(|a| a.status == 200).map(|a| a.reading).collect()
    }
}

pub struct Load {
    stop: Arc<AtomicBool>,
    writers: Vec<tokio::task::JoinHandle<Log>>,
}

impl Load {
    /// Starts a writer per vehicle against `address`. With `retry`, a reading
    /// answered 503 is sent again until it is acknowledged; without, the
    /// writer goes on to the next one.
    pub fn start(address: &str, vehicles: &[String], retry: bool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let client =
            reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
        let writers = vehicles
            .iter()
            .map(|vehicle| {
                let url = format!("{address}/v1/vehicles/{vehicle}/readings");
                let (client, stop, vehicle) = (client.clone(), stop.clone(), vehicle.clone());
                tokio::spawn(async move {
                    let mut attempts = Vec::new();
                    let mut reading: u32 = 0;
                    while !stop.load(Ordering::Relaxed) && reading < 9_000 {
                        let body = json!({
                            "timestamp": BASE_MILLIS + i64::from(reading),
                            "engine_rpm": reading,
                        });
                        let sent = Instant::now();
                        let answer = client.post(&url).json(&body).send().await;
                        let status = answer.expect("the service answers").status().as_u16();
                        attempts.push(Attempt { reading, sent, took: sent.elapsed(), status });
                        if status == 503 {
                            // Not a hot loop while the shard has no master.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        if status != 503 || !retry {
                            reading += 1;
                        }
                    }
                    Log { vehicle, attempts }
                })
            })
            .collect();
        Self { stop, writers }
    }

    /// Stops the writers and returns their logs.
    pub async fn stop(self) -> Vec<Log> {
        self.stop.store(true, Ordering::Relaxed);
        let mut logs = Vec::new();
        for writer in self.writers {
            logs.push(writer.await.unwrap());
        }
        logs
    }
}
