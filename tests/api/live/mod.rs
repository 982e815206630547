//! Live streams: the Redis feed against a real `redis-server` (`feed`), the
//! stream routes of real service processes (`streams`), and `tributary watch`
//! against one (`watch`).

mod feed;
mod streams;
mod watch;

use std::pin::Pin;
use std::time::Duration;

use eventsource_stream::{Event, Eventsource};
use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};

use crate::common::{Process, start_binary};

/// How long a test waits for an event, or for anything else it polls.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// `tributary serve` as a process, with a client for it; its log in a file.
pub struct Service {
    pub process: Process,
    pub port: u16,
    pub client: reqwest::Client,
    pub log: tempfile::NamedTempFile,
}

impl Service {
    /// The binary on a free port, with `envs` (warnings only in its log, and
    /// no per-vehicle rate limit: tests write faster than a car).
    pub fn start(envs: &[(&str, &str)]) -> Self {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut all = vec![("TRIBUTARY_LOG", "warn"), ("TRIBUTARY_VEHICLE_RATE", "0")];
        all.extend_from_slice(envs);
        let (process, port) = start_binary(&all, log.reopen().unwrap());
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        Self { process, port, client, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap()
    }

    /// Writes `value` as `signal` of `vehicle` (server-stamped); the status.
    pub async fn write(&self, vehicle: &str, signal: &str, value: f64) -> u16 {
        let url = self.url(&format!("/v1/vehicles/{vehicle}/readings"));
        match self.client.post(url).json(&json!({ signal: value })).send().await {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// Opens a stream at `path`, which must answer 200 `text/event-stream`.
    pub async fn stream(&self, path: &str) -> EventStream {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}: {:?}", response.text().await);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert_eq!(response.headers()["cache-control"], "no-store");
        let events = response.bytes_stream().eventsource().map(|e| e.map_err(|e| e.to_string()));
        EventStream { events: Box::pin(events) }
    }

    /// The value of a metric series (e.g. `tributary_streams_open`).
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.client.get(self.url("/metrics")).send().await.unwrap();
        let text = text.text().await.unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }
}

/// The events of one open stream.
pub struct EventStream {
    events: Pin<Box<dyn Stream<Item = Result<Event, String>> + Send>>,
}

impl EventStream {
    /// The next event; panics if none comes within the deadline or the stream ends.
    pub async fn next(&mut self) -> Event {
        tokio::time::timeout(DEADLINE, self.events.next())
            .await
            .expect("no event within the deadline")
            .expect("the stream ended")
            .expect("the stream broke")
    }
}

/// An event's JSON data.
pub fn data(event: &Event) -> Value {
    serde_json::from_str(&event.data).unwrap_or_else(|e| panic!("{e}: {:?}", event.data))
}

/// The `current` of `signal` in an event's `signals`, if there.
pub fn current(event: &Event, signal: &str) -> Option<f64> {
    data(event)["signals"][signal]["current"].as_f64()
}
