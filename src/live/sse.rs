//! A subscription as a Server-Sent Events response (`text/event-stream`, the
//! WHATWG EventSource format), with axum's `Sse`.
//!
//! The events, each with an `id:` that increases by one per event:
//! - `event: snapshot`, `data: {"signals": {...}}`: every (selected) signal
//!   with data, each as in `GET /v1/vehicles/{id}`'s `signals`; `{}` for a
//!   vehicle that has sent nothing yet. First, and again whenever changes may
//!   have been lost; a client replaces its state with it.
//! - `event: update`, `data: {"signals": {...}, "skipped": n}`: the new state
//!   of the signals that changed; `skipped` counts the intermediate signal
//!   states merged over since the last event (a slow client, or
//!   `min_interval`). A client merges it into its state.
//! - `event: shutdown`, `data: {}`: the server is going away; the stream ends.
//!   An EventSource reconnects by itself (to another instance, behind a load
//!   balancer), and a reconnection starts with a fresh snapshot.
//! - A comment line (`:`) every heartbeat when nothing else was sent.
//!
//! Responses say `Cache-Control: no-store` and `X-Accel-Buffering: no`, so
//! that neither a browser nor a proxy keeps or buffers them.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Serialize;

use super::hub::{LiveEvent, StreamEvent, Subscription};
use super::summary::Signals;

#[derive(Serialize)]
struct SnapshotData<'a> {
    signals: &'a Signals,
}

#[derive(Serialize)]
struct UpdateData<'a> {
    signals: &'a Signals,
    skipped: u64,
}

/// The SSE event of a stream event, as documented above.
pub fn event(event: &StreamEvent) -> Event {
    let (name, data) = match &event.event {
        LiveEvent::Snapshot(signals) => {
            ("snapshot", serde_json::to_string(&SnapshotData { signals }))
        }
        LiveEvent::Update { signals, skipped } => {
            ("update", serde_json::to_string(&UpdateData { signals, skipped: *skipped }))
        }
        LiveEvent::Shutdown => ("shutdown", Ok("{}".to_owned())),
    };
    // Cannot fail: maps with string keys, numbers (non-finite ones become
    // null) and strings.
    let data = data.unwrap_or_else(|_| "{}".to_owned());
    Event::default().event(name).id(event.id.to_string()).data(data)
}

/// The response for a subscription: the events above, heartbeats every
/// `heartbeat`. The body ends after `shutdown`.
pub fn response(subscription: Subscription, heartbeat: Duration) -> Response {
    response_with(subscription, heartbeat, |e| Some(event(e)))
}

/// The same, with events rendered by `render` (`None`: send nothing for this
/// one), e.g. the seed API's `/collect` shape.
pub fn response_with<F>(subscription: Subscription, heartbeat: Duration, mut render: F) -> Response
where
    F: FnMut(&StreamEvent) -> Option<Event> + Send + 'static,
{
    let events = subscription
        .into_stream()
        .filter_map(move |e| std::future::ready(render(&e).map(Ok::<_, Infallible>)));
    let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(heartbeat).text(""));
    // Tells nginx-like proxies not to buffer the stream, and nobody to keep it.
    let no_buffering =
        (HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"));
    let mut response = ([no_buffering], sse).into_response();
    let no_store = HeaderValue::from_static("no-store");
    response.headers_mut().insert(axum::http::header::CACHE_CONTROL, no_store);
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use http_body_util::BodyExt;

    use super::*;
    use crate::domain::{Clock, Reading, SignalName, StampedBy, VehicleId};
    use crate::live::{Hub, MemoryFeed, SignalSummary};
    use crate::store::{MemoryStore, Store};

    fn summary(current: f64) -> Arc<SignalSummary> {
        Arc::new(SignalSummary {
            current: Some(current),
            average: Some(current),
            min: Some(current),
            max: Some(current),
            count: 1,
            total: 1,
            unit: "rpm".into(),
            updated_at: None,
        })
    }

    /// The bytes axum writes for one event.
    async fn wire(event: Event) -> String {
        let stream = futures_util::stream::iter([Ok::<_, Infallible>(event)]);
        let body = Sse::new(stream).into_response().into_body();
        String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn events_are_named_numbered_and_carry_their_json() {
        let signals = Signals::from([(SignalName::parse("engine_rpm").unwrap(), summary(2400.0))]);
        let update = StreamEvent { id: 7, event: LiveEvent::Update { signals, skipped: 3 } };
        let text = wire(super::event(&update)).await;
        assert!(text.starts_with("event: update\nid: 7\ndata: "), "{text}");
        let data: serde_json::Value =
            serde_json::from_str(text.lines().nth(2).unwrap().strip_prefix("data: ").unwrap())
                .unwrap();
        assert_eq!(data["skipped"], 3);
        assert_eq!(data["signals"]["engine_rpm"]["current"], 2400.0);
        assert_eq!(data["signals"]["engine_rpm"]["unit"], "rpm");

        let empty = StreamEvent { id: 1, event: LiveEvent::Snapshot(Signals::new()) };
        assert_eq!(
            wire(super::event(&empty)).await,
            "event: snapshot\nid: 1\ndata: {\"signals\":{}}\n\n"
        );
        let last = StreamEvent { id: 9, event: LiveEvent::Shutdown };
        assert_eq!(wire(super::event(&last)).await, "event: shutdown\nid: 9\ndata: {}\n\n");
    }

    #[tokio::test]
    async fn a_response_streams_the_snapshot_and_updates_and_ends_after_shutdown() {
        let store = MemoryStore::new(crate::config::ServeSettings::for_tests().store_limits());
        let feed = MemoryFeed::new();
        let (hub, shutdown) = Hub::for_tests(&store, &feed);
        let vehicle = VehicleId::try_from("car-1").unwrap();
        let subscription = hub.subscribe(vehicle.clone(), None, None).await.unwrap();
        let response = response(subscription, Duration::from_secs(15));
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["x-accel-buffering"], "no");
        let mut body: Body = response.into_body();

        let mut next_frame = async || {
            let frame = body.frame().await.unwrap().unwrap();
            String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap()
        };
        assert_eq!(next_frame().await, "event: snapshot\nid: 1\ndata: {\"signals\":{}}\n\n");
        let clock = Clock::new();
        let reading = Reading {
            signal: SignalName::parse("vehicle_speed").unwrap(),
            at: clock.now(),
            value: 42.0,
            stamped_by: StampedBy::Device,
        };
        store.record(&vehicle, std::slice::from_ref(&reading), clock.now()).await.unwrap();
        feed.announce(&vehicle, [&reading.signal]);
        let update = next_frame().await;
        assert!(update.starts_with("event: update\nid: 2\n"), "{update}");
        assert!(update.contains("\"vehicle_speed\":{\"current\":42.0"), "{update}");
        shutdown.cancel();
        assert_eq!(next_frame().await, "event: shutdown\nid: 3\ndata: {}\n\n");
        assert!(body.frame().await.is_none(), "the body ends after shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_stream_sends_a_comment_every_heartbeat() {
        let store = MemoryStore::new(crate::config::ServeSettings::for_tests().store_limits());
        let (hub, _shutdown) = Hub::for_tests(&store, &MemoryFeed::new());
        let vehicle = VehicleId::try_from("car-1").unwrap();
        let subscription = hub.subscribe(vehicle, None, None).await.unwrap();
        let mut body = response(subscription, Duration::from_secs(15)).into_body();
        body.frame().await.unwrap().unwrap();
        let started = tokio::time::Instant::now();
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&frame[..], b": \n\n");
        assert_eq!(started.elapsed(), Duration::from_secs(15));
    }
}
