//! The seed's API, `/record` and `/collect`. Existing sensors and apps depend on
//! these answers byte for byte: `{"success": true}`, and `current_…`/`average_…`
//! with `null` when nothing has been recorded. They only ever grow new fields.

use axum::Json;
use axum::extract::{RawQuery, State};
use serde_json::{Map, Value, json};

use super::AppState;
use super::body::{JsonBody, OptionalJsonBody};
use super::problem::{ApiError, FieldError};
use super::wire;
use crate::domain::{Aggregate, VehicleId};

/// `POST /record`: `{"engine_temperature": 90.5}`, optionally with more catalog
/// signals, a `vehicle_id` and a `timestamp`.
pub async fn record(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let request = wire::parse_record(&body, &state.parse_context())?;
    let vehicle = request.vehicle.unwrap_or_else(VehicleId::default_vehicle);
    tracing::Span::current().record("vehicle", vehicle.as_str());
    state
        .store
        .record(&vehicle, &request.readings, state.clock.now())
        .await?;
    Ok(Json(json!({"success": true})))
}

/// `GET` or `POST /collect`: the current value and the window's average of every
/// signal with data; engine temperature always present.
pub async fn collect(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<Json<Value>, ApiError> {
    let vehicle = collect_vehicle(query.as_deref(), body.as_ref())?;
    tracing::Span::current().record("vehicle", vehicle.as_str());
    let history = state
        .store
        .history(&vehicle, &state.catalog.names())
        .await?;

    let mut answer = Map::new();
    answer.insert("current_engine_temperature".into(), Value::Null);
    answer.insert("average_engine_temperature".into(), Value::Null);
    for (signal, history) in history.iter().flat_map(|h| &h.signals) {
        if let Some(aggregate) = Aggregate::of(&history.samples) {
            answer.insert(format!("current_{signal}"), json!(aggregate.current));
            answer.insert(format!("average_{signal}"), json!(aggregate.average));
        }
    }
    Ok(Json(Value::Object(answer)))
}

/// The vehicle `/collect` is about: `?vehicle_id=` or `{"vehicle_id": …}`, else
/// the seed's single car.
fn collect_vehicle(query: Option<&str>, body: Option<&Value>) -> Result<VehicleId, ApiError> {
    let from_body = wire::parse_collect(body)?;
    let mut from_query = None;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|err| {
            ApiError::invalid(vec![FieldError::new(
                "query",
                format!("the query string is malformed: {err}"),
            )])
        })?;
    for (key, value) in pairs {
        if key != "vehicle_id" {
            return Err(ApiError::invalid(vec![FieldError::new(
                format!("query:{key}"),
                "unknown query parameter; /collect accepts only `vehicle_id`",
            )]));
        }
        from_query = Some(wire::parse_vehicle_param(&value, "query:vehicle_id")?);
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
        (Some(v), _) | (None, Some(v)) => Ok(v),
        (None, None) => Ok(VehicleId::default_vehicle()),
    }
}
