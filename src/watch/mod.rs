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
//! starts again with a snapshot.//!
//! Files: this one holds the stream client and its reconnect loop; `screen`
//! the state shown and its drawing; `table` the pure rendering.

mod screen;
mod table;

pub use table::{age, number, render_line, render_table};

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Context;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::{StatusCode, header};
use serde::Deserialize;

use self::screen::Screen;
use crate::config::WatchSettings;
use crate::live::SignalSummary;

/// Reconnection backoff: doubles from the first to the last.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A stream silent this long (no event, no heartbeat) is taken for dead.
const IDLE_LIMIT: Duration = Duration::from_secs(60);

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

/// Watches until `shutdown` completes, on stdout; fails only on an answer
/// that another try cannot change (a 4xx such as an unknown signal or a bad
/// token).
pub async fn run(
    settings: WatchSettings,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let terminal = std::io::stdout().is_terminal();
    run_on(settings, shutdown, Box::new(std::io::stdout()), terminal).await
}

/// The same, writing to `out`: a table redrawn in place if `terminal`, else
/// one line per event.
pub async fn run_on(
    settings: WatchSettings,
    shutdown: impl Future<Output = ()>,
    out: Box<dyn Write + Send>,
    terminal: bool,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(IDLE_LIMIT)
        .build()
        .context("cannot build the HTTP client")?;
    let mut screen = Screen::new(settings.vehicle.to_string(), out, terminal);
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
    if let Some(token) = &settings.token {
        request = request.bearer_auth(token.expose());
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::Path;
    use axum::response::IntoResponse;
    use axum::routing::get;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::domain::{Clock, Reading, SignalName, StampedBy, VehicleId};
    use crate::live::{Hub, MemoryFeed, sse};
    use crate::store::{MemoryStore, Store};

    fn parse(args: &[&str]) -> Result<WatchSettings, clap::Error> {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            watch: WatchSettings,
        }
        let args = std::iter::once("watch").chain(args.iter().copied());
        <Cli as clap::Parser>::try_parse_from(args).map(|c| c.watch)
    }

    /// What `run_on` wrote, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }

        /// Waits until the output holds `needle`, for at most 10 s.
        async fn wait_for(&self, needle: &str) {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while !self.text().contains(needle) {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no {needle:?} in {:?}",
                    self.text()
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// A live service in miniature: the memory store, its feed, and a stream
    /// route over whichever hub is current.
    struct Service {
        store: MemoryStore,
        feed: MemoryFeed,
        hub: Arc<Mutex<(Hub, CancellationToken)>>,
        url: String,
    }

    impl Service {
        async fn start() -> Self {
            let store = MemoryStore::new(crate::config::ServeSettings::for_tests().store_limits());
            let feed = MemoryFeed::new();
            let hub = Arc::new(Mutex::new(Hub::for_tests(&store, &feed)));
            let current = hub.clone();
            let route = move |Path(id): Path<String>| {
                let hub = current.lock().unwrap().0.clone();
                async move {
                    let vehicle = VehicleId::try_from(id.as_str()).unwrap();
                    match hub.subscribe(vehicle, None, None).await {
                        Ok(subscription) => sse::response(subscription, Duration::from_secs(15)),
                        Err(err) => {
                            (StatusCode::SERVICE_UNAVAILABLE, err.to_string()).into_response()
                        }
                    }
                }
            };
            let app = Router::new().route("/v1/vehicles/{vehicle_id}/stream", get(route));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await });
            Self { store, feed, hub, url }
        }

        /// Ends the current hub's streams; new streams go to a new hub.
        fn restart_hub(&self) {
            let fresh = Hub::for_tests(&self.store, &self.feed);
            let (_, old) = std::mem::replace(&mut *self.hub.lock().unwrap(), fresh);
            old.cancel();
        }

        async fn write(&self, vehicle: &str, value: f64) {
            let vehicle = VehicleId::try_from(vehicle).unwrap();
            let clock = Clock::new();
            let reading = Reading {
                signal: SignalName::parse("engine_rpm").unwrap(),
                at: clock.now(),
                value,
                stamped_by: StampedBy::Device,
            };
            self.store.record(&vehicle, std::slice::from_ref(&reading), clock.now()).await.unwrap();
            self.feed.announce(&vehicle, [&reading.signal]);
        }
    }

    fn start_watch(
        service: &Service,
        out: &Captured,
        terminal: bool,
    ) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>) {
        let settings = parse(&["car-1", "--url", &service.url]).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let watching = tokio::spawn(run_on(settings, shutdown, Box::new(out.clone()), terminal));
        (stop, watching)
    }

    #[tokio::test]
    async fn piped_it_prints_a_line_per_event_and_reconnects_after_a_server_shutdown() {
        let service = Service::start().await;
        let out = Captured::default();
        let (stop, watching) = start_watch(&service, &out, false);
        out.wait_for("snapshot id=1 (no data yet)\n").await;
        service.write("car-1", 1000.0).await;
        out.wait_for("update id=2 skipped=0 engine_rpm=1000\n").await;

        service.restart_hub();
        out.wait_for("shutdown id=3\n").await;
        // Reconnected, to the new hub: a fresh snapshot.
        out.wait_for("shutdown id=3\nsnapshot id=1 engine_rpm=1000\n").await;
        service.write("car-1", 1100.0).await;
        out.wait_for("update id=2 skipped=0 engine_rpm=1100\n").await;

        stop.send(()).unwrap();
        watching.await.unwrap().unwrap();
        assert!(!out.text().contains('\x1b'), "no escape codes in a pipe");
    }

    #[tokio::test]
    async fn on_a_terminal_it_redraws_a_table_and_gives_the_cursor_back() {
        let service = Service::start().await;
        service.write("car-1", 2400.0).await;
        let out = Captured::default();
        let (stop, watching) = start_watch(&service, &out, true);
        out.wait_for("\x1b[?25l\x1b[2J\x1b[H").await;
        out.wait_for("engine_rpm     2400     2400  2400  2400  rpm ").await;
        stop.send(()).unwrap();
        watching.await.unwrap().unwrap();
        assert!(out.text().ends_with("\x1b[?25h"), "{:?}", out.text());
    }

    #[tokio::test]
    async fn an_answer_another_try_cannot_change_ends_the_watch_with_its_reason() {
        let problem = || async {
            let body = r#"{"status": 422, "detail": "there is no signal \"nope\""}"#;
            (StatusCode::UNPROCESSABLE_ENTITY, body)
        };
        let app = Router::new().route("/v1/vehicles/{vehicle_id}/stream", get(problem));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let settings = parse(&["car-1", "--url", &url, "--signals", "nope"]).unwrap();
        let err = run_on(settings, std::future::pending(), Box::new(Captured::default()), false)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("422") && err.contains("there is no signal \"nope\""), "{err}");
    }
}
