//! Which vehicle a request is about: from the URL on the v1 API (`PathVehicle`),
//! from a query parameter or the body on the legacy API, and when the legacy
//! caller names none, its device token's one vehicle, else `default`. Whatever the source, the id is checked by the
//! domain's `VehicleId::try_from`, whose refusal is worded once, there.

use std::collections::HashMap;

use super::problem::{ApiError, FieldError};
use crate::auth::Identity;
use crate::domain::VehicleId;
use crate::domain::vehicle::VEHICLE_ID_RULE;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

/// The `{vehicle_id}` of a v1 URL, validated, and recorded in the request's span.
#[derive(Debug, Clone)]
pub struct PathVehicle(pub VehicleId);

impl<S: Send + Sync> FromRequestParts<S> for PathVehicle {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(path_problem)?;
        let id = params.get("vehicle_id").map(String::as_str).unwrap_or_default();
        let vehicle = parse_vehicle_param(id)?;
        Ok(Self(identified(vehicle)))
    }
}

/// Why the URL's parameters could not be read. The router decodes them all at
/// once, so a bad `{signal}` fails this extractor too: it is named as what it
/// is, a signal that names nothing (the 404 of an unknown signal), not blamed
/// on the vehicle id.
fn path_problem(err: PathRejection) -> ApiError {
    if let PathRejection::FailedToDeserializePathParams(err) = &err
        && let ErrorKind::InvalidUtf8InPathParam { key } = err.kind()
    {
        return if key == "vehicle_id" {
            ApiError::invalid(vec![FieldError::parameter(
                "vehicle_id",
                format!("the vehicle id is not UTF-8 once percent-decoded: {VEHICLE_ID_RULE}"),
            )])
        } else {
            ApiError::NotFound(format!(
                "the URL's `{key}` is not UTF-8 once percent-decoded, so it names nothing"
            ))
        };
    }
    ApiError::invalid(vec![FieldError::parameter("vehicle_id", err.body_text())])
}

/// The vehicle a legacy request names, else the one vehicle of the caller's
/// token (a sensor or phone that only added its token), else `default`.
pub fn named_or_own(named: Option<VehicleId>, caller: &Identity) -> VehicleId {
    identified(
        named
            .or_else(|| caller.device_vehicle().cloned())
            .unwrap_or_else(VehicleId::default_vehicle),
    )
}

fn identified(vehicle: VehicleId) -> VehicleId {
    tracing::Span::current().record("vehicle", vehicle.as_str());
    // Only the access-log line reads it: no copy of the id when it is off.
    if crate::telemetry::access_sink().is_some() {
        super::access::note_vehicle(&vehicle);
    }
    vehicle
}

/// A vehicle id from a path segment or query parameter.
pub fn parse_vehicle_param(id: &str) -> Result<VehicleId, ApiError> {
    VehicleId::try_from(id).map_err(|err| {
        ApiError::invalid(vec![FieldError::parameter("vehicle_id", err.to_string())])
    })
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get;
    use tower::ServiceExt;

    use serde_json::Value;

    use super::*;

    async fn answer(uri: &str) -> (StatusCode, Value) {
        let app = Router::new().route(
            "/v1/vehicles/{vehicle_id}/signals/{signal}",
            get(|PathVehicle(vehicle): PathVehicle| async move { vehicle.to_string() }),
        );
        let request = Request::get(uri).body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap().into_response();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Found by reading the code while adding the router fuzz target: a `{signal}`
    /// that is not UTF-8 once percent-decoded was reported as a bad `vehicle_id`.
    #[tokio::test]
    async fn a_bad_signal_encoding_is_not_blamed_on_the_vehicle() {
        let (status, body) = answer("/v1/vehicles/car-1/signals/%FF").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert!(body["detail"].as_str().unwrap().contains("`signal`"), "{body}");

        let (status, body) = answer("/v1/vehicles/%FF/signals/engine_rpm").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["errors"][0]["parameter"], "vehicle_id", "{body}");
        assert!(body["detail"].as_str().unwrap().contains("not UTF-8"), "{body}");

        let (status, _) = answer("/v1/vehicles/car%2D1/signals/%FF").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, body) = answer("/v1/vehicles/car%2D1/signals/engine_rpm").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}
