//! The seed's API, `/record` and `/collect`. Existing sensors and apps depend on
//! these answers byte for byte: `{"success": true}`, and `current_…`/`average_…`
//! with `null` when nothing has been recorded. They only ever grow new fields.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::body::{JsonBody, OptionalJsonBody};
use super::openapi::{BodyErrors, ReadErrors, TimestampSchema, VehicleIdSchema, WriteErrors};
use super::problem::{ApiError, Problem};
use super::{vehicle, wire};
use crate::domain::SignalName;

/// The name of `RecordBody`'s schema, which `openapi` completes from the catalog.
pub(super) const RECORD_BODY: &str = "RecordBody";

/// A seed reading: one or more catalog signals, by name or VSS path, plus
/// optional `vehicle_id` and `timestamp`. The signal properties are added from
/// the catalog when the router is built.
#[derive(ToSchema)]
#[schema(examples(json!({"engine_temperature": 90.5})))]
#[allow(dead_code)] // documentation only: bodies are parsed by `wire`
pub struct RecordBody {
    /// The vehicle; `default` when absent.
    #[schema(required = false)]
    vehicle_id: VehicleIdSchema,
    #[schema(required = false)]
    timestamp: TimestampSchema,
}

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
pub struct CollectQuery {
    /// The vehicle; `default` when neither the query nor the body names one.
    vehicle_id: Option<VehicleIdSchema>,
}

#[derive(Serialize, ToSchema)]
pub struct RecordOk {
    /// Always `true`.
    success: bool,
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

/// Record one reading of the seed's car (or of `vehicle_id`).
#[utoipa::path(
    post,
    path = "/record",
    tag = "seed",
    request_body(content = RecordBody, content_type = "application/json",
        description = "Any Content-Type is accepted; the body must be JSON."),
    responses(
        (status = 200, description = "Stored", body = RecordOk),
        BodyErrors,
        (status = 422, description = "Invalid reading; nothing was stored. `errors[].pointer` names each bad field", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    )
)]
pub async fn record(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<RecordOk>, ApiError> {
    let request = wire::parse_record(&body, &state.parse_context())?;
    let vehicle = vehicle::named_or_default(request.vehicle);
    state.record(&vehicle, &request.readings).await?;
    Ok(Json(RecordOk { success: true }))
}

/// The current value and the window's average of every signal with data.
#[utoipa::path(
    get,
    path = "/collect",
    tag = "seed",
    params(CollectQuery),
    request_body(content = ref("#/components/schemas/CollectBody"), content_type = "application/json",
        description = "Optional, as for POST (an empty body, or one of only whitespace, is none); the query is the usual way to name the vehicle."),
    responses(
        (status = 200, description = "The vehicle's current and average values", body = CollectResponse),
        BodyErrors,
        (status = 422, description = "Invalid vehicle id, an unknown body field, or a query and body that name different vehicles", body = Problem, content_type = "application/problem+json"),
        ReadErrors,
    )
)]
pub async fn collect_get(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<Response, ApiError> {
    collect(&state, query.as_deref(), body.as_ref()).await
}

/// The current value and the window's average of every signal with data.
#[utoipa::path(
    post,
    path = "/collect",
    tag = "seed",
    params(CollectQuery),
    request_body(content = ref("#/components/schemas/CollectBody"), content_type = "application/json",
        description = "Optional: none (an empty body, or one of only whitespace), `{}` or `{\"vehicle_id\": \"…\"}`."),
    responses(
        (status = 200, description = "The vehicle's current and average values", body = CollectResponse),
        BodyErrors,
        (status = 422, description = "Invalid vehicle id, an unknown body field, or a query and body that name different vehicles", body = Problem, content_type = "application/problem+json"),
        ReadErrors,
    )
)]
pub async fn collect_post(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<Response, ApiError> {
    collect(&state, query.as_deref(), body.as_ref()).await
}

/// `/collect` answers GET and POST alike; two handlers give each its own operationId.
async fn collect(
    state: &AppState,
    query: Option<&str>,
    body: Option<&Value>,
) -> Result<Response, ApiError> {
    let vehicle = vehicle::for_collect(query, body)?;
    let aggregates = state.aggregates(&vehicle, state.catalog.names()).await?;

    let mut answer = Vec::with_capacity(2 * aggregates.len() + 2);
    for (signal, aggregate) in &aggregates {
        if let Some(keys) = state.seed_keys.get(signal) {
            answer.push((keys.current.as_str(), Some(aggregate.current)));
            answer.push((keys.average.as_str(), Some(aggregate.average)));
        }
    }
    if !answer.iter().any(|(key, _)| *key == "current_engine_temperature") {
        answer.push(("current_engine_temperature", None));
        answer.push(("average_engine_temperature", None));
    }
    // In the order of a JSON object sorted by key, as the seed's answers were.
    answer.sort_unstable_by_key(|(key, _)| *key);
    Ok(Json(CollectAnswer(answer)).into_response())
}

/// `/collect`'s answer, written straight from the aggregates (keys made once,
/// see `SeedKeys`) rather than through a map of freshly formatted keys. `None`
/// is `null`: engine temperature is always in the answer, `null` until the
/// vehicle sends one.
struct CollectAnswer<'a>(Vec<(&'a str, Option<f64>)>);

impl Serialize for CollectAnswer<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(key, value)| (key, value)))
    }
}

/// The keys of `/collect`'s answer for each signal of the catalog:
/// `current_<signal>` and `average_<signal>`.
pub struct SeedKeys(Vec<(SignalName, CollectKeys)>);

pub struct CollectKeys {
    current: String,
    average: String,
}

impl SeedKeys {
    pub fn new(signals: &[SignalName]) -> Self {
        Self(
            signals
                .iter()
                .map(|signal| {
                    let keys = CollectKeys {
                        current: format!("current_{signal}"),
                        average: format!("average_{signal}"),
                    };
                    (signal.clone(), keys)
                })
                .collect(),
        )
    }

    fn get(&self, signal: &SignalName) -> Option<&CollectKeys> {
        self.0.iter().find(|(name, _)| name == signal).map(|(_, keys)| keys)
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
        let answer = CollectAnswer(vec![
            ("average_engine_rpm", Some(850.5)),
            ("average_engine_temperature", None),
            ("current_engine_rpm", Some(900.0)),
            ("current_engine_temperature", None),
        ]);
        let expected = json!({
            "current_engine_temperature": null,
            "average_engine_temperature": null,
            "current_engine_rpm": 900.0,
            "average_engine_rpm": 850.5,
        });
        assert_eq!(
            serde_json::to_string(&answer).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
    }
}
