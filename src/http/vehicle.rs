//! Which vehicle a request is about. This is the one place that decides it: from
//! the URL on the v1 API, from the body or query on the seed's API, `default`
//! when the seed's caller names none. (Access tokens will decide it here too.)

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde_json::Value;

use super::problem::{ApiError, FieldError};
use super::wire;
use crate::domain::VehicleId;

/// The `{vehicle_id}` of a v1 URL, validated, and recorded in the request's span.
#[derive(Debug, Clone)]
pub struct PathVehicle(pub VehicleId);

impl<S: Send + Sync> FromRequestParts<S> for PathVehicle {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(params) =
            Path::<HashMap<String, String>>::from_request_parts(parts, state).await.map_err(
                |err| ApiError::invalid(vec![FieldError::parameter("vehicle_id", err.body_text())]),
            )?;
        let id = params.get("vehicle_id").map(String::as_str).unwrap_or_default();
        let vehicle = wire::parse_vehicle_param(id)?;
        Ok(Self(identified(vehicle)))
    }
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
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|err| {
            ApiError::invalid(vec![FieldError::parameter(
                "query",
                format!("the query string is malformed: {err}"),
            )])
        })?;
    // Other parameters are ignored, as the seed's server ignored them all: apps
    // add cache busters such as `?_=1700000000`.
    for (key, value) in pairs {
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
