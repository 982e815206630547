//! The per-vehicle rate limit: so that one runaway sensor cannot take the
//! service's capacity from the rest of the fleet.
//!
//! A token bucket per vehicle (governor's GCRA), counted in readings, not
//! requests: a batch of 100 costs 100. Buckets of vehicles that have been quiet
//! long enough to be full again are dropped every minute, so the map holds only
//! vehicles sending now.
//!
//! A store that keeps each vehicle's rate state beside its data (the embedded
//! store, see `domain::rate`) applies the same [`Quota`] itself, in the same
//! lookup as the write; this limiter's map then stays empty.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, RateLimiter};

use super::RateLimited;
use crate::domain::VehicleId;
use crate::domain::rate::{Exceeded, Quota, weight};
use crate::upkeep::{self, Upkeep};

pub struct VehicleLimiter {
    limiter: DefaultKeyedRateLimiter<VehicleId>,
    clock: DefaultClock,
    quota: Quota,
}

impl VehicleLimiter {
    /// `None` when `readings_per_second` is 0: no limit.
    pub fn new(readings_per_second: u32, burst: u32) -> Option<Arc<Self>> {
        let readings_per_second = NonZeroU32::new(readings_per_second)?;
        let burst = NonZeroU32::new(burst).unwrap_or(readings_per_second);
        let quota = governor::Quota::per_second(readings_per_second).allow_burst(burst);
        let limiter = Arc::new(Self {
            limiter: RateLimiter::dashmap(quota),
            clock: DefaultClock::default(),
            quota: Quota::new(readings_per_second, burst),
        });
        Some(limiter)
    }

    /// The limit, for a store that applies it itself.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// The refusal of `readings` readings of `vehicle` that `exceeded` the quota.
    pub fn refusal(&self, vehicle: &VehicleId, readings: usize, exceeded: Exceeded) -> RateLimited {
        let retry_after = match exceeded {
            Exceeded::Until(wait) => wait,
            // More than a whole burst at once: it can never pass as one request.
            Exceeded::Burst => Duration::from_secs(1),
        };
        RateLimited {
            vehicle: vehicle.clone(),
            readings_per_second: self.quota.readings_per_second().get(),
            burst: self.quota.burst().get(),
            requested: readings,
            retry_after_seconds: retry_after.as_secs_f64().ceil().max(1.0) as u64,
        }
    }

    /// Takes `readings` from the vehicle's bucket, or refuses them all.
    pub fn admit(&self, vehicle: &VehicleId, readings: usize) -> Result<(), RateLimited> {
        let exceeded = match self.limiter.check_key_n(vehicle, weight(readings)) {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(not_until)) => Exceeded::Until(not_until.wait_time_from(self.clock.now())),
            Err(_) => Exceeded::Burst,
        };
        Err(self.refusal(vehicle, readings, exceeded))
    }

    /// Drops the buckets of quiet vehicles once a minute, while the limiter is
    /// in use.
    pub fn upkeep(self: &Arc<Self>) -> Upkeep {
        upkeep::every(Duration::from_secs(60), self, |limiter| {
            limiter.limiter.retain_recent();
            limiter.limiter.shrink_to_fit();
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vehicle(id: &str) -> VehicleId {
        VehicleId::try_from(id).unwrap()
    }

    #[test]
    fn a_burst_passes_then_the_next_reading_is_refused_with_a_retry_time() {
        let limiter = VehicleLimiter::new(10, 20).unwrap();
        let car = vehicle("car-1");
        assert!(limiter.admit(&car, 15).is_ok());
        assert!(limiter.admit(&car, 5).is_ok());
        let Err(limit) = limiter.admit(&car, 1) else {
            panic!("the 21st reading within a moment must be refused");
        };
        assert_eq!((limit.readings_per_second, limit.burst, limit.requested), (10, 20, 1));
        assert_eq!(limit.retry_after_seconds, 1);
        // Other vehicles have their own buckets.
        assert!(limiter.admit(&vehicle("car-2"), 20).is_ok());
    }

    #[test]
    fn a_request_larger_than_the_burst_is_refused_whole() {
        let limiter = VehicleLimiter::new(10, 20).unwrap();
        assert!(limiter.admit(&vehicle("car"), 21).is_err());
        // Nothing was taken from the bucket.
        assert!(limiter.admit(&vehicle("car"), 20).is_ok());
    }

    #[test]
    fn zero_means_no_limit() {
        assert!(VehicleLimiter::new(0, 100).is_none());
    }
}
