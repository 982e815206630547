//! What a fleet operation can fail with. Each HTTP surface maps these to its
//! answers in one place (`http::conversions`). Authentication (who is
//! speaking) is the HTTP layer's, since it reads headers; what an identity may
//! do is the service's, hence [`FleetError::Forbidden`].

use crate::auth::Forbidden;
use crate::domain::VehicleId;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The caller may not do this to this vehicle; nothing was read or stored,
    /// and nothing was charged to the vehicle's rate limit.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The vehicle sent more readings than its rate limit allows; nothing was
    /// stored.
    #[error(transparent)]
    RateLimited(#[from] RateLimited),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// This instance serves its maximum of live streams: try later.
    #[error("this instance serves its limit of {limit} live streams")]
    TooManyStreams { limit: usize },
}

/// A vehicle's rate limit refused a request: which limit, and when to retry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "vehicle {:?} may send {readings_per_second} readings per second (bursts of up to {burst}); this request's {requested} would exceed that, so none were stored; retry after {retry_after_seconds} s",
    vehicle.as_str()
)]
pub struct RateLimited {
    pub vehicle: VehicleId,
    pub readings_per_second: u32,
    /// How many readings a vehicle may send at once after a quiet spell.
    pub burst: u32,
    /// Readings in the refused request.
    pub requested: usize,
    /// Whole seconds until the request could pass, at least 1.
    pub retry_after_seconds: u64,
}
