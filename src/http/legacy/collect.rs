//! `GET` and `POST /collect`: the current value and the window's average of
//! every signal with data, for the vehicle a query or body names.

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::Legacy;
use super::wire::parse_collect;
use crate::auth::Identity;
use crate::domain::signal::ENGINE_TEMPERATURE;
use crate::domain::{Catalog, SignalName, VehicleId};
use crate::http::body::OptionalJsonBody;
use crate::http::caller::Caller;
use crate::http::openapi::{AuthErrors, BodyErrors, ReadErrors, VehicleIdSchema};
use crate::http::problem::{ApiError, FieldError, Problem};
use crate::http::vehicle::{named_or_own, parse_vehicle_param};

/// The name of `CollectBody`'s schema, which `openapi` closes to other fields.
pub(super) const COLLECT_BODY: &str = "CollectBody";

/// A `/collect` body; an empty body or `{}` means the `default` vehicle.
#[derive(ToSchema)]
#[schema(examples(json!({"vehicle_id": "car-1"})))]
#[allow(dead_code)] // documentation only: bodies are parsed by `wire`
pub struct CollectBody {
    /// The vehicle; the same as `?vehicle_id=` if both are given.
    #[schema(required = false)]
    vehicle_id: VehicleIdSchema,
}

/// `/collect`'s query. Other parameters (cache busters such as `?_=…`) are ignored.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only: the query is parsed by `vehicle`
pub(super) struct CollectQuery {
    /// The vehicle; `default` when neither the query nor the body names one.
    vehicle_id: Option<VehicleIdSchema>,
}

/// The name of `CollectResponse`'s schema, which `openapi` completes from the catalog.
pub(super) const COLLECT_RESPONSE: &str = "CollectResponse";

/// `current_…` and `average_…` of every signal with data; engine temperature
/// always, `null` until the vehicle has sent one. The other signals' properties
/// are added from the catalog when the router is built.
#[derive(ToSchema)]
#[schema(
    example = json!({"current_engine_temperature": 90.5, "average_engine_temperature": 88.2})
)]
#[allow(dead_code)] // documentation only: built as a map
pub struct CollectResponse {
    /// The newest engine temperature, or null.
    current_engine_temperature: Option<f64>,
    /// The mean of the window's engine temperatures, or null.
    average_engine_temperature: Option<f64>,
}

/// The current value and the window's average of every signal with data.
#[utoipa::path(
    get,
    path = "/collect",
    tag = "seed",
    security(("token" = ["read"]), ("token" = ["fleet"])),
    params(CollectQuery),
    request_body(content = ref("#/components/schemas/CollectBody"), content_type = "application/json",
        description = "Optional, as for POST (an empty body, or one of only whitespace, is none); the query is the usual way to name the vehicle."),
    responses(
        (status = 200, description = "The vehicle's current and average values", body = CollectResponse),
        BodyErrors,
        (status = 422, description = "Invalid vehicle id, an unknown body field, or a query and body that name different vehicles", body = Problem, content_type = "application/problem+json"),
        AuthErrors,
        ReadErrors,
    )
)]
pub async fn collect_get(
    State(state): State<Legacy>,
    Caller(caller): Caller,
    RawQuery(query): RawQuery,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<Response, ApiError> {
    collect(&state, &caller, query.as_deref(), body.as_ref()).await
}

/// The current value and the window's average of every signal with data.
#[utoipa::path(
    post,
    path = "/collect",
    tag = "seed",
    security(("token" = ["read"]), ("token" = ["fleet"])),
    params(CollectQuery),
    request_body(content = ref("#/components/schemas/CollectBody"), content_type = "application/json",
        description = "Optional: none (an empty body, or one of only whitespace), `{}` or `{\"vehicle_id\": \"…\"}`."),
    responses(
        (status = 200, description = "The vehicle's current and average values", body = CollectResponse),
        BodyErrors,
        (status = 422, description = "Invalid vehicle id, an unknown body field, or a query and body that name different vehicles", body = Problem, content_type = "application/problem+json"),
        AuthErrors,
        ReadErrors,
    )
)]
pub async fn collect_post(
    State(state): State<Legacy>,
    Caller(caller): Caller,
    RawQuery(query): RawQuery,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<Response, ApiError> {
    collect(&state, &caller, query.as_deref(), body.as_ref()).await
}

/// `/collect` answers GET and POST alike; two handlers give each its own operationId.
async fn collect(
    state: &Legacy,
    caller: &Identity,
    query: Option<&str>,
    body: Option<&Value>,
) -> Result<Response, ApiError> {
    let vehicle = for_collect(caller, query, body)?;
    let aggregates =
        state.app.fleet.aggregates(caller, &vehicle, state.app.catalog.names()).await?;
    let values = aggregates.iter().map(|(signal, a)| (signal, a.current, a.average));
    Ok(answer(&state.collect_keys, values).into_response())
}

/// `/collect`'s answer from the current value and average of each signal with
/// data (also what `/collect/stream` sends).
pub(super) fn answer<'a, 's>(
    keys: &'a CollectKeys,
    values: impl Iterator<Item = (&'s SignalName, f64, f64)>,
) -> CollectAnswer<'a> {
    let mut answer = Vec::with_capacity(2 * values.size_hint().0 + 2);
    let mut engine = false;
    for (signal, current, average) in values {
        if let Some(signal_keys) = keys.get(signal) {
            answer.push((&signal_keys.current, Some(current)));
            answer.push((&signal_keys.average, Some(average)));
            engine |= *signal == keys.engine.signal;
        }
    }
    if !engine {
        answer.push((&keys.engine.current, None));
        answer.push((&keys.engine.average, None));
    }
    // In the order of a JSON object sorted by key, as the seed's answers were.
    answer.sort_unstable_by_key(|(key, _)| key.json.as_str());
    CollectAnswer(answer)
}

/// The vehicle of a `/collect`: `?vehicle_id=` or `{"vehicle_id": …}` (the same
/// one if both), else the caller's one vehicle, else `default`.
pub(super) fn for_collect(
    caller: &Identity,
    query: Option<&str>,
    body: Option<&Value>,
) -> Result<VehicleId, ApiError> {
    let from_body = parse_collect(body)?;
    let mut from_query = None;
    // Other parameters are ignored, as the seed's server ignored them all: apps
    // add cache busters such as `?_=1700000000`. Decoded in place: only a
    // `vehicle_id` whose value is percent-encoded costs a copy.
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key == "vehicle_id" {
            from_query = Some(parse_vehicle_param(&value)?);
        }
    }
    match (from_query, from_body) {
        (Some(a), Some(b)) if a != b => Err(ApiError::invalid(vec![FieldError::new(
            "/vehicle_id",
            format!(
                "the query names vehicle {:?} but the body names {:?}; name one",
                a.as_str(),
                b.as_str()
            ),
        )])),
        (query, body) => Ok(named_or_own(query.or(body), caller)),
    }
}

/// `current_…` and `average_…` of every catalog signal, as `/collect` answers them.
pub(super) fn add_collected_signals(schema: &mut Value, catalog: &Catalog) {
    let properties = schema
        .get_mut("properties")
        .and_then(Value::as_object_mut)
        .expect("the collect response has properties");
    for spec in catalog.signals() {
        let name = spec.name.as_str();
        for (prefix, what) in [("current", "The newest"), ("average", "The window's mean")] {
            let description = format!(
                "{what} `{name}`, in {}; present once the vehicle has sent one.",
                spec.unit
            );
            properties
                .entry(format!("{prefix}_{name}"))
                .or_insert_with(|| json!({"type": "number", "description": description}));
        }
    }
}

/// `/collect`'s answer, written straight from the aggregates as JSON text,
/// each key already quoted (see `CollectKeys`), rather than through a map of
/// freshly formatted keys or serde's map serializer, which checked every
/// key's every byte for escapes: 260 instructions a key, 2,000 of a
/// four-signal `/collect` (callgrind). `None` is `null`: engine temperature
/// is always in the answer, `null` until the vehicle sends one.
pub(super) struct CollectAnswer<'a>(Vec<(&'a Key, Option<f64>)>);

impl CollectAnswer<'_> {
    /// The answer as a JSON object.
    pub(super) fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(self.0.iter().map(|(key, _)| key.json.len() + 24).sum());
        out.push(b'{');
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key.json.as_bytes());
            // Writing into a vector cannot fail; a number that is not finite
            // is `null`, as serde_json writes it.
            let _ = serde_json::to_writer(&mut out, value);
        }
        out.push(b'}');
        // Keys from `serde_json::to_string` and JSON numbers: UTF-8.
        String::from_utf8(out).expect("JSON text is UTF-8")
    }
}

impl IntoResponse for CollectAnswer<'_> {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.to_json()).into_response()
    }
}

/// The keys of `/collect`'s answer for each signal of the catalog:
/// `current_<signal>` and `average_<signal>`, and engine temperature's
/// (always in the answer) even when the catalog has no such signal.
pub(super) struct CollectKeys {
    signals: Vec<Keys>,
    engine: Keys,
}

struct Keys {
    signal: SignalName,
    current: Key,
    average: Key,
}

impl Keys {
    fn of(signal: SignalName) -> Self {
        let current = Key::new(format!("current_{signal}"));
        let average = Key::new(format!("average_{signal}"));
        Self { signal, current, average }
    }
}

/// A key of the answer as JSON text: `"<key>":`. Sorting these sorts the
/// keys: a key is a prefix and a signal name (`[a-z][a-z0-9_]*`), never
/// escaped, and the closing quote sorts before every byte a name can hold,
/// so `"a":` comes before `"ab":` as `a` before `ab`.
pub(super) struct Key {
    json: String,
}

impl Key {
    fn new(name: String) -> Self {
        Self { json: format!("{}:", Value::String(name)) }
    }
}

impl CollectKeys {
    pub(super) fn new(signals: &[SignalName]) -> Self {
        let engine = SignalName::parse(ENGINE_TEMPERATURE).expect("a valid signal name");
        Self { signals: signals.iter().cloned().map(Keys::of).collect(), engine: Keys::of(engine) }
    }

    fn get(&self, signal: &SignalName) -> Option<&Keys> {
        self.signals.iter().find(|keys| keys.signal == *signal)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The seed's answers came from a JSON object sorted by key; apps may
    /// compare them as text.
    #[test]
    fn a_collect_answer_is_written_as_the_seeds_was() {
        let signals = [SignalName::parse("engine_rpm").unwrap()];
        let keys = CollectKeys::new(&signals);
        let written = answer(&keys, [(&signals[0], 900.0, 850.5)].into_iter()).to_json();
        let expected = json!({
            "current_engine_temperature": null,
            "average_engine_temperature": null,
            "current_engine_rpm": 900.0,
            "average_engine_rpm": 850.5,
        });
        assert_eq!(written, serde_json::to_string(&expected).unwrap());
        // Every signal with data, engine temperature's null pair only when it
        // has none, and a number that is not finite as null.
        // A key that is a prefix of another sorts first, as in a map.
        let signals = [
            SignalName::parse("vehicle_speed_max").unwrap(),
            SignalName::parse("vehicle_speed").unwrap(),
            SignalName::parse(ENGINE_TEMPERATURE).unwrap(),
        ];
        let keys = CollectKeys::new(&signals);
        let values =
            [(&signals[0], 50.0, 45.0), (&signals[1], 42.0, f64::NAN), (&signals[2], 90.5, 88.25)];
        let expected = json!({
            "current_engine_temperature": 90.5,
            "average_engine_temperature": 88.25,
            "current_vehicle_speed": 42.0,
            "average_vehicle_speed": null,
            "current_vehicle_speed_max": 50.0,
            "average_vehicle_speed_max": 45.0,
        });
        assert_eq!(
            answer(&keys, values.into_iter()).to_json(),
            serde_json::to_string(&expected).unwrap()
        );
    }
}
