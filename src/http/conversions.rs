//! The one place where errors of the layers below become HTTP problems, as
//! kuksa-databroker maps its broker's errors in one conversions module.

use super::problem::{ApiError, RateLimit};
use crate::auth::{AuthError, Forbidden};
use crate::fleet::{FleetError, RateLimited};
use crate::store::StoreError;

impl From<FleetError> for ApiError {
    fn from(err: FleetError) -> Self {
        match err {
            FleetError::Forbidden(forbidden) => forbidden.into(),
            FleetError::RateLimited(limit) => limit.into(),
            FleetError::Store(err) => err.into(),
            FleetError::TooManyStreams { limit } => Self::TooManyStreams { limit },
        }
    }
}

impl From<RateLimited> for ApiError {
    fn from(limit: RateLimited) -> Self {
        Self::RateLimited {
            limit: RateLimit {
                name: "vehicle-readings",
                vehicle: limit.vehicle.as_str().to_owned(),
                readings_per_second: limit.readings_per_second,
                burst: limit.burst,
                requested: limit.requested,
                retry_after_seconds: limit.retry_after_seconds,
            },
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        Self::Unauthorized(err)
    }
}

impl From<Forbidden> for ApiError {
    fn from(err: Forbidden) -> Self {
        Self::Forbidden(err)
    }
}
