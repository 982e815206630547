//! `GET /collect/stream`: `/collect`'s answer, pushed. For an app written
//! against the seed API that wants live data without a rewrite: each event's
//! data is exactly what `GET /collect` would answer at that moment (the
//! `snapshot` first, then an `update` per change), for the vehicle named as
//! `/collect` names it (`?vehicle_id=`, else `default`).
//!
//! The stream is the v1 stream's subscription (`Fleet::subscribe`), rendered
//! by `/collect`'s own answer builder: the client's state is kept here by
//! applying each event to it (`LiveEvent::apply_to`), so an update carries
//! the whole answer, not only what changed.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::response::sse::Event;

use super::Legacy;
use super::collect::{CollectQuery, answer, for_collect};
use crate::http::caller::Caller;
use crate::http::openapi::{AuthErrors, StreamErrors, TokenErrors};
use crate::http::problem::{ApiError, Problem};
use crate::live::{LiveEvent, Signals, sse};

/// `/collect`'s answer, pushed as Server-Sent Events (`text/event-stream`).
///
/// Events, each with an `id:`: `snapshot` first, then an `update` per accepted write to
/// the vehicle; each event's data is exactly what `GET /collect` would answer then. Last,
/// `shutdown` (`{}`) when the instance goes away: reconnect. A comment line is sent every
/// `TRIBUTARY_STREAM_HEARTBEAT` (15 s) when nothing else was.
#[utoipa::path(
    get,
    path = "/collect/stream",
    tag = "seed",
    params(CollectQuery),
    responses(
        (status = 200, description = "The stream: `snapshot`, then `update`s, each with `/collect`'s answer as its data; then `shutdown`",
            content_type = "text/event-stream", body = String,
            example = json!("event: snapshot\nid: 1\ndata: {\"average_engine_temperature\":null,\"current_engine_temperature\":null}\n\nevent: update\nid: 2\ndata: {\"average_engine_temperature\":90.0,\"current_engine_temperature\":90.0}\n\n")),
        (status = 422, description = "Invalid vehicle id", body = Problem, content_type = "application/problem+json"),
        StreamErrors,
        TokenErrors,
        AuthErrors,
    ),
    security(("token" = ["read"]), ("token" = ["fleet"])),
)]
pub async fn collect_stream(
    State(state): State<Legacy>,
    Caller(caller): Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let vehicle = for_collect(&caller, query.as_deref(), None)?;
    let subscription = state.app.fleet.subscribe(&caller, vehicle, None, None).await?;
    let heartbeat = state.app.stream_heartbeat;
    let mut current = Signals::new();
    Ok(sse::response_with(subscription, heartbeat, move |event| {
        let name = match &event.event {
            LiveEvent::Snapshot(_) => "snapshot",
            LiveEvent::Update { .. } => "update",
            LiveEvent::Shutdown => return Some(sse::event(event)),
        };
        event.event.apply_to(&mut current);
        let values = current
            .iter()
            .filter_map(|(signal, summary)| Some((signal, summary.current?, summary.average?)));
        let data = answer(&state.collect_keys, values).to_json();
        Some(Event::default().event(name).id(event.id.to_string()).data(data))
    }))
}
