//! `tributary watch VEHICLE`: a terminal client of a vehicle's live stream, to
//! check the whole path from car to phone by hand (`tributary simulate` in one
//! terminal, `tributary watch sim-001` in another).
//!
//! It reads `GET /v1/vehicles/{id}/stream` (Server-Sent Events, parsed by
//! `eventsource-stream`) and keeps the vehicle's state: a snapshot replaces
//! it, an update merges into it. On a terminal it redraws a table in place
//! (a few ANSI escape codes: home, clear to end of line and of screen, hide
//! the cursor; not worth a crate) every event and every second, so ages
//! advance; piped, it prints one line per event. When the stream breaks it
//! reconnects with exponential backoff and says so on stderr; the server then
//! starts again with a snapshot.

mod table;

pub use table::{age, number, render_line, render_table};

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::{StatusCode, Url, header};
use serde::Deserialize;

use crate::domain::{Clock, VehicleId};
use crate::live::SignalSummary;

/// Reconnection backoff: doubles from the first to the last.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A stream silent this long (no event, no heartbeat) is taken for dead.
const IDLE_LIMIT: Duration = Duration::from_secs(60);

#[derive(clap::Args, Debug, Clone)]
pub struct WatchSettings {
    /// The vehicle to watch, e.g. `sim-001`.
    #[arg(value_parser = parse_vehicle)]
    pub vehicle: VehicleId,
    /// Base URL of the Tributary service.
    #[arg(long, env = "TRIBUTARY_WATCH_URL", default_value = "http://127.0.0.1:8000",
        value_parser = parse_base_url)]
    pub url: Url,
    /// Only these signals (names or VSS paths, comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub signals: Vec<String>,
    /// At most one update per this interval (e.g. `250ms`). Unset: every change.
    #[arg(long, value_parser = crate::config::parse_duration)]
    pub min_interval: Option<Duration>,
    /// Access token, sent as `Authorization: Bearer …`.
    #[arg(long, env = "TRIBUTARY_TOKEN", hide_env_values = true)]
    pub token: Option<Token>,
}

/// An access token; never printed.
#[derive(Clone)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

impl FromStr for Token {
    type Err = String;

    fn from_str(token: &str) -> Result<Self, Self::Err> {
        if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("a token is one word of visible characters".into());
        }
        Ok(Self(token.to_owned()))
    }
}

fn parse_vehicle(id: &str) -> Result<VehicleId, String> {
    VehicleId::try_from(id).map_err(str::to_owned)
}

fn parse_base_url(url: &str) -> Result<Url, String> {
    let url = Url::parse(url).map_err(|e| format!("{e} (example: http://127.0.0.1:8000)"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err("the URL must be http:// or https://".into());
    }
    Ok(url)
}

impl WatchSettings {
    /// The stream's URL: `{url}/v1/vehicles/{id}/stream` with its query.
    pub fn stream_url(&self) -> Url {
        let mut url = self.url.clone();
        url.path_segments_mut().expect("checked to be a base URL").pop_if_empty().extend([
            "v1",
            "vehicles",
            self.vehicle.as_str(),
            "stream",
        ]);
        {
            let mut query = url.query_pairs_mut();
            if !self.signals.is_empty() {
                query.append_pair("signals", &self.signals.join(","));
            }
            if let Some(interval) = self.min_interval {
                query.append_pair("min_interval_ms", &interval.as_millis().to_string());
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        url
    }
}

/// An event's data: `signals` always, `skipped` on updates.
#[derive(Debug, Deserialize)]
struct Frame {
    #[serde(default)]
    signals: BTreeMap<String, SignalSummary>,
    skipped: Option<u64>,
}

/// Why one connection ended.
enum Ended {
    /// The server said it is shutting down.
    Shutdown,
    /// Worth another try, for this reason.
    Retry(String),
}

/// Watches until `shutdown` completes; fails only on an answer that another
/// try cannot change (a 4xx such as an unknown signal or a bad token).
pub async fn run(
    settings: WatchSettings,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(IDLE_LIMIT)
        .build()
        .context("cannot build the HTTP client")?;
    let mut screen = Screen::new(settings.vehicle.to_string(), std::io::stdout().is_terminal());
    tokio::pin!(shutdown);
    let mut backoff = BACKOFF_MIN;
    let mut last_id = None;
    let outcome = loop {
        let attempt = watch_once(&client, &settings, &mut screen, &mut last_id);
        let ended = tokio::select! {
            _ = &mut shutdown => break Ok(()),
            ended = attempt => ended,
        };
        let reason = match ended {
            Ok(Ended::Shutdown) => "the server is shutting down".to_owned(),
            Ok(Ended::Retry(reason)) => reason,
            Err(fatal) => break Err(fatal),
        };
        if screen.received_snapshot {
            backoff = BACKOFF_MIN;
        }
        screen.received_snapshot = false;
        eprintln!(
            "tributary watch: {reason}; reconnecting in {}",
            humantime::format_duration(backoff)
        );
        screen.set_status(format!("reconnecting ({reason})"));
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
            _ = screen.idle(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    };
    screen.finish();
    outcome
}

/// One connection: until the stream ends or breaks.
async fn watch_once(
    client: &reqwest::Client,
    settings: &WatchSettings,
    screen: &mut Screen,
    last_id: &mut Option<String>,
) -> anyhow::Result<Ended> {
    let mut request = client.get(settings.stream_url()).header(header::ACCEPT, "text/event-stream");
    if let Some(Token(token)) = &settings.token {
        request = request.bearer_auth(token);
    }
    if let Some(id) = last_id.as_deref() {
        request = request.header("last-event-id", id);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(err) => return Ok(Ended::Retry(format!("cannot connect: {}", root_cause(&err)))),
    };
    let status = response.status();
    if !status.is_success() {
        let detail = problem_detail(response).await;
        let reason = format!("the server answered {status}{detail}");
        let worth_retrying = status.is_server_error()
            || matches!(status, StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS);
        return if worth_retrying {
            Ok(Ended::Retry(reason))
        } else {
            Err(anyhow::anyhow!(reason))
        };
    }
    screen.set_status("live".to_owned());
    let mut events = response.bytes_stream().eventsource();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            _ = tick.tick() => {
                screen.redraw();
                continue;
            }
        };
        let event = match event {
            None => return Ok(Ended::Retry("the server closed the stream".into())),
            Some(Err(err)) => return Ok(Ended::Retry(format!("the stream broke: {err}"))),
            Some(Ok(event)) => event,
        };
        if !event.id.is_empty() {
            *last_id = Some(event.id.clone());
        }
        let frame = match event.event.as_str() {
            "shutdown" => None,
            _ => match serde_json::from_str::<Frame>(&event.data) {
                Ok(frame) => Some(frame),
                Err(err) => {
                    return Ok(Ended::Retry(format!("unreadable `{}` event: {err}", event.event)));
                }
            },
        };
        screen.event(&event.event, &event.id, frame);
        if event.event == "shutdown" {
            return Ok(Ended::Shutdown);
        }
    }
}

/// The `detail` of a problem+json answer, as `: detail`; else nothing.
async fn problem_detail(response: reqwest::Response) -> String {
    let body = response.text().await.unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|problem| problem.get("detail")?.as_str().map(|d| format!(": {d}")))
        .unwrap_or_default()
}

/// The innermost error: reqwest's own message is only "error sending request".
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// What is shown: the vehicle's state, on a terminal as a table.
struct Screen {
    vehicle: String,
    terminal: bool,
    signals: BTreeMap<String, SignalSummary>,
    status: String,
    received_snapshot: bool,
    /// Lines drawn so far (a terminal is cleared before the first drawing).
    drawn: bool,
    clock: Clock,
}

impl Screen {
    fn new(vehicle: String, terminal: bool) -> Self {
        Self {
            vehicle,
            terminal,
            signals: BTreeMap::new(),
            status: "connecting".into(),
            received_snapshot: false,
            drawn: false,
            clock: Clock::new(),
        }
    }

    fn set_status(&mut self, status: String) {
        self.status = status;
        self.redraw();
    }

    fn event(&mut self, name: &str, id: &str, frame: Option<Frame>) {
        let (signals, skipped) = frame.map_or((BTreeMap::new(), None), |f| (f.signals, f.skipped));
        if !self.terminal {
            println!("{}", render_line(name, id, skipped, &signals));
        }
        match name {
            "snapshot" => {
                self.signals = signals;
                self.received_snapshot = true;
            }
            "update" => self.signals.extend(signals),
            _ => {}
        }
        self.redraw();
    }

    fn redraw(&mut self) {
        if !self.terminal {
            return;
        }
        let lines = render_table(&self.vehicle, &self.status, &self.signals, self.clock.now());
        let mut out = String::new();
        if !self.drawn {
            // Hide the cursor, clear the screen.
            out.push_str("\x1b[?25l\x1b[2J");
            self.drawn = true;
        }
        // Home; each line clears what was left of the previous drawing; clear below.
        out.push_str("\x1b[H");
        for line in lines {
            out.push_str(&line);
            out.push_str("\x1b[K\n");
        }
        out.push_str("\x1b[J");
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush());
    }

    /// Waits `delay`, keeping the ages on the table current.
    async fn idle(&mut self, delay: Duration) {
        let until = tokio::time::Instant::now() + delay;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return,
                _ = tick.tick() => self.redraw(),
            }
        }
    }

    /// Gives the cursor back.
    fn finish(&mut self) {
        if self.terminal && self.drawn {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(b"\x1b[?25h").and_then(|()| stdout.flush());
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        watch: WatchSettings,
    }

    fn parse(args: &[&str]) -> Result<WatchSettings, clap::Error> {
        Cli::try_parse_from(std::iter::once("watch").chain(args.iter().copied())).map(|c| c.watch)
    }

    #[test]
    fn the_stream_url_carries_the_vehicle_and_the_options() {
        let settings = parse(&["sim-001"]).unwrap();
        assert_eq!(
            settings.stream_url().as_str(),
            "http://127.0.0.1:8000/v1/vehicles/sim-001/stream"
        );
        let settings = parse(&[
            "car.1",
            "--url",
            "https://fleet.example/base/",
            "--signals",
            "engine_rpm,Vehicle.Speed",
            "--min-interval",
            "250ms",
        ])
        .unwrap();
        assert_eq!(
            settings.stream_url().as_str(),
            "https://fleet.example/base/v1/vehicles/car.1/stream?signals=engine_rpm%2CVehicle.Speed&min_interval_ms=250"
        );
    }

    #[test]
    fn bad_arguments_are_refused_with_a_reason() {
        let err = parse(&["a b"]).err().unwrap().to_string();
        assert!(err.contains("vehicle id"), "{err}");
        let err = parse(&["car", "--url", "ftp://x"]).err().unwrap().to_string();
        assert!(err.contains("http://"), "{err}");
        let err = parse(&["car", "--token", "two words"]).err().unwrap().to_string();
        assert!(err.contains("one word"), "{err}");
    }

    #[test]
    fn a_token_is_never_printed() {
        let settings = parse(&["car", "--token", "s3cret"]).unwrap();
        assert!(!format!("{settings:?}").contains("s3cret"));
    }
}
