//! Which vehicle a request is about. This is the one place that decides it: from
//! the URL on the v1 API, from the body or query on the seed's API, `default`
//! when the seed's caller names none. (Access tokens will decide it here too.)

use std::collections::HashMap;

use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde_json::Value;

use super::problem::{ApiError, FieldError};
use super::wire;
use crate::domain::VehicleId;
use crate::domain::vehicle::VEHICLE_ID_RULE;

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
        let vehicle = wire::parse_vehicle_param(id)?;
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

/// The vehicle a seed request names, else `default`.
pub fn named_or_default(named: Option<VehicleId>) -> VehicleId {
    identified(named.unwrap_or_else(VehicleId::default_vehicle))
}

fn identified(vehicle: VehicleId) -> VehicleId {
    tracing::Span::current().record("vehicle", vehicle.as_str());
    vehicle
}

/// The vehicle of a `/collect`: `?vehicle_id=` or `{"vehicle_id": …}` (the same
/// one if both), else `default`.
pub fn for_collect(query: Option<&str>, body: Option<&Value>) -> Result<VehicleId, ApiError> {
    let from_body = wire::parse_collect(body)?;
    let mut from_query = None;
    // Other parameters are ignored, as the seed's server ignored them all: apps
    // add cache busters such as `?_=1700000000`. Decoded in place: only a
    // `vehicle_id` whose value is percent-encoded costs a copy.
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key == "vehicle_id" {
            from_query = Some(wire::parse_vehicle_param(&value)?);
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
        (query, body) => Ok(named_or_default(query.or(body))),
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get;
    use tower::ServiceExt;

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
