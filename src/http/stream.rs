//! The live surface: `GET /v1/vehicles/{vehicle_id}/stream`, a vehicle's
//! changes as Server-Sent Events (the events are described in `live::sse`).
//!
//! The route parses its query and asks the fleet service for a subscription
//! (`Fleet::subscribe`); everything else (fan-out, coalescing, heartbeats,
//! shutdown) is the service's and `live`'s. So an authorization check on a
//! stream is one more line in the handler. Query strings of stream routes are
//! never logged: a token may come as `?access_token=` (EventSource cannot set
//! headers), and the request middleware logs only the matched route.
//!
//! An open stream holds a connection (counted against
//! `TRIBUTARY_MAX_CONNECTIONS`) and one of `TRIBUTARY_MAX_STREAMS`, but not
//! a place in the in-flight limit: the handler returns as soon as the
//! snapshot is read, and the body is written after that, outside of
//! admission. No request timeout applies to it (see `server::handler`).

use std::collections::BTreeSet;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::caller::Caller;
use super::openapi::{AuthErrors, StreamErrors, TokenErrors, VehicleIdSchema};
use super::problem::{ApiError, FieldError, Problem};
use super::state::AppState;
use super::vehicle::PathVehicle;
use crate::domain::{Catalog, SignalName};
use crate::live::sse;

/// The longest `min_interval_ms` taken: a minute.
const MAX_MIN_INTERVAL_MS: u64 = 60_000;

/// The surface's routes, documented.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream_vehicle))
}

/// The `{vehicle_id}` of the stream's URL.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // documentation only: the path is parsed by `PathVehicle`
struct StreamPath {
    /// The vehicle; it need not have sent anything yet.
    vehicle_id: VehicleIdSchema,
}

/// The stream's query. Other parameters are ignored.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only: the query is parsed by `StreamOptions::parse`
struct StreamQuery {
    /// Comma-separated signal names or VSS paths, e.g.
    /// `engine_temperature,Vehicle.Speed`: only these signals are streamed.
    /// Default: every signal.
    signals: Option<String>,
    /// At most one `update` per this many milliseconds (0 to 60000), each
    /// holding the newest state of every signal that changed meanwhile.
    /// Default: 0, an update per change.
    min_interval_ms: Option<u64>,
}

/// The stream's options, read from its query.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct StreamOptions {
    pub signals: Option<BTreeSet<SignalName>>,
    pub min_interval: Option<Duration>,
}

impl StreamOptions {
    /// Reads `?signals=` and `?min_interval_ms=`; anything else is ignored.
    pub(crate) fn parse(query: Option<&str>, catalog: &Catalog) -> Result<Self, ApiError> {
        let mut options = Self::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match &*key {
                "signals" => options.signals = Some(parse_signals(&value, catalog)?),
                "min_interval_ms" => {
                    let millis = value
                        .parse::<u64>()
                        .ok()
                        .filter(|ms| *ms <= MAX_MIN_INTERVAL_MS)
                        .ok_or_else(|| {
                            ApiError::invalid(vec![FieldError::parameter(
                                "min_interval_ms",
                                format!(
                                    "{value:?} is not a whole number of milliseconds from 0 to {MAX_MIN_INTERVAL_MS}"
                                ),
                            )])
                        })?;
                    options.min_interval = (millis > 0).then(|| Duration::from_millis(millis));
                }
                _ => {}
            }
        }
        Ok(options)
    }
}

fn parse_signals(list: &str, catalog: &Catalog) -> Result<BTreeSet<SignalName>, ApiError> {
    let invalid =
        |detail: String| ApiError::invalid(vec![FieldError::parameter("signals", detail)]);
    let mut signals = BTreeSet::new();
    for name in list.split(',').map(str::trim) {
        if name.is_empty() {
            return Err(invalid(
                "name signals separated by commas, e.g. `engine_temperature,vehicle_speed`, \
                 with no empty entry"
                    .to_owned(),
            ));
        }
        let spec = catalog.get(name).ok_or_else(|| {
            invalid(format!(
                "there is no signal {name:?}; known signals: {}",
                catalog.describe_names()
            ))
        })?;
        signals.insert(spec.name.clone());
    }
    Ok(signals)
}

/// A vehicle's live data, as Server-Sent Events (`text/event-stream`).
///
/// Events, each with an `id:`:
/// - `snapshot`, first: `{"signals": {...}}`, every (selected) signal with data, each
///   as in `GET /v1/vehicles/{vehicle_id}`'s `signals`; `{}` for a vehicle that has sent
///   nothing yet. Sent again whenever changes may have been lost: replace your state.
/// - `update`: `{"signals": {...}, "skipped": n}`, the new state of the signals that
///   changed; `skipped` counts the intermediate states merged over because the client
///   read slowly or `min_interval_ms` held them. Merge it into your state.
/// - `shutdown`: `{}`, the instance is going away; reconnect (a reconnection, with or
///   without `Last-Event-ID`, starts with a fresh snapshot).
///
/// A comment line is sent every `TRIBUTARY_STREAM_HEARTBEAT` (15 s) when nothing else was.
#[utoipa::path(
    get,
    path = "/v1/vehicles/{vehicle_id}/stream",
    tag = "v1",
    params(StreamPath, StreamQuery),
    responses(
        (status = 200, description = "The stream: `snapshot`, then `update`s, then `shutdown`; see the operation's description",
            content_type = "text/event-stream", body = String,
            example = json!("event: snapshot\nid: 1\ndata: {\"signals\":{\"vehicle_speed\":{\"current\":42.0,\"average\":40.5,\"min\":39.0,\"max\":42.0,\"count\":2,\"total\":2,\"unit\":\"km/h\",\"updated_at\":\"2026-12-01T08:00:00Z\"}}}\n\nevent: update\nid: 2\ndata: {\"signals\":{\"vehicle_speed\":{\"current\":43.0,\"average\":41.3,\"min\":39.0,\"max\":43.0,\"count\":3,\"total\":3,\"unit\":\"km/h\",\"updated_at\":\"2026-12-01T08:00:01Z\"}},\"skipped\":0}\n\n")),
        (status = 422, description = "Invalid vehicle id, an unknown signal in `signals`, or a bad `min_interval_ms`", body = Problem, content_type = "application/problem+json"),
        StreamErrors,
        TokenErrors,
        AuthErrors,
    ),
    security(("token" = ["read"]), ("token" = ["fleet"])),
)]
pub async fn stream_vehicle(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathVehicle(vehicle): PathVehicle,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let options = StreamOptions::parse(query.as_deref(), &state.catalog)?;
    let subscription =
        state.fleet.subscribe(&caller, vehicle, options.signals, options.min_interval).await?;
    Ok(sse::response(subscription, state.stream_heartbeat))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> BTreeSet<SignalName> {
        list.iter().map(|n| SignalName::parse(n).unwrap()).collect()
    }

    #[test]
    fn options_are_read_from_the_query_by_name_or_vss_path() {
        let catalog = Catalog::builtin();
        assert_eq!(StreamOptions::parse(None, &catalog).unwrap(), StreamOptions::default());
        let options = StreamOptions::parse(
            Some("signals=engine_temperature%2CVehicle.Speed&min_interval_ms=250&access_token=x"),
            &catalog,
        )
        .unwrap();
        assert_eq!(options.signals, Some(names(&["engine_temperature", "vehicle_speed"])));
        assert_eq!(options.min_interval, Some(Duration::from_millis(250)));
        let zero = StreamOptions::parse(Some("min_interval_ms=0"), &catalog).unwrap();
        assert_eq!(zero.min_interval, None);
    }

    #[test]
    fn bad_options_are_refused_naming_the_parameter() {
        let catalog = Catalog::builtin();
        for (query, parameter, needle) in [
            ("signals=warp_factor", "signals", "there is no signal \"warp_factor\""),
            ("signals=", "signals", "no empty entry"),
            ("signals=vehicle_speed,,engine_rpm", "signals", "no empty entry"),
            ("min_interval_ms=-1", "min_interval_ms", "from 0 to 60000"),
            ("min_interval_ms=60001", "min_interval_ms", "from 0 to 60000"),
            ("min_interval_ms=soon", "min_interval_ms", "\"soon\""),
        ] {
            let Err(ApiError::InvalidRequest { errors, .. }) =
                StreamOptions::parse(Some(query), &catalog)
            else {
                panic!("{query} was accepted");
            };
            assert_eq!(errors[0].parameter.as_deref(), Some(parameter), "{query}");
            assert!(errors[0].detail.contains(needle), "{query}: {}", errors[0].detail);
        }
    }
}
