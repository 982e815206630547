//! A per-vehicle rate (readings per second, with a burst) as a GCRA, the
//! algorithm of the `governor` crate, written out so that a vehicle's state can
//! live beside its data: the embedded store keeps it in the vehicle's entry,
//! and one map lookup then serves both the limit and the write (with governor's
//! keyed limiter, a fleet of 100,000 paid a second lookup in a second map of
//! 100,000, and `/record` lost a tenth of its throughput to it). Stores that
//! keep no such state use `fleet::VehicleLimiter`, governor's; a property test
//! holds the two to the same decisions.
//!
//! GCRA keeps one number per vehicle, its theoretical arrival time (`tat`):
//! with `t` the interval between readings at the sustained rate and
//! `tau = t × (burst − 1)` the tolerance, `n` readings at `now` pass when
//! `tat + t × (n − 1) − tau ≤ now`, and then `tat = max(tat, now) + t × n`.

use std::num::NonZeroU32;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The rate: `readings_per_second` sustained, `burst` at once after a quiet
/// spell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    readings_per_second: NonZeroU32,
    burst: NonZeroU32,
    /// Nanoseconds between readings at the sustained rate.
    t: u64,
    /// Nanoseconds of tolerance: `t × (burst − 1)`.
    tau: u64,
}

/// One vehicle's state: its theoretical arrival time, in nanoseconds on
/// [`Quota::now`]'s clock; 0 for a vehicle not heard from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateState(u64);

/// Why readings were refused, and when they could pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    /// Not now: after this wait.
    Until(Duration),
    /// Never as one request: more readings than the burst.
    Burst,
}

impl Quota {
    pub fn new(readings_per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        // As governor computes them (`Quota::per_second`, `Gcra::new`).
        let t = (Duration::from_secs(1) / readings_per_second.get()).as_nanos().max(1) as u64;
        let tau = t * u64::from(burst.get() - 1);
        Self { readings_per_second, burst, t, tau }
    }

    pub fn readings_per_second(&self) -> NonZeroU32 {
        self.readings_per_second
    }

    pub fn burst(&self) -> NonZeroU32 {
        self.burst
    }

    /// Nanoseconds on a monotonic clock of this process, never 0.
    pub fn now() -> u64 {
        static START: OnceLock<Instant> = OnceLock::new();
        let start = *START.get_or_init(Instant::now);
        u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1)
    }

    /// Takes `n` readings from `state` at `now` (see [`Quota::now`]), or
    /// refuses them all and leaves `state` as it was.
    pub fn check(&self, state: &mut RateState, n: NonZeroU32, now: u64) -> Result<(), Exceeded> {
        let additional = self.t * u64::from(n.get() - 1);
        if additional > self.tau {
            return Err(Exceeded::Burst);
        }
        let tat = if state.0 == 0 { now } else { state.0 };
        let earliest = (tat + additional).saturating_sub(self.tau);
        if now < earliest {
            return Err(Exceeded::Until(Duration::from_nanos(earliest - now)));
        }
        state.0 = tat.max(now) + self.t + additional;
        Ok(())
    }
}

/// What a request of `readings` readings takes from a bucket (at least one).
pub fn weight(readings: usize) -> NonZeroU32 {
    NonZeroU32::new(u32::try_from(readings.max(1)).unwrap_or(u32::MAX)).expect("at least one")
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;
    use governor::{Quota as GovernorQuota, RateLimiter};
    use proptest::prelude::*;

    use super::*;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn a_burst_passes_then_the_rest_waits_for_the_rate() {
        let quota = Quota::new(nz(10), nz(20));
        let mut state = RateState::default();
        let now = 1_000_000_000;
        assert_eq!(quota.check(&mut state, nz(15), now), Ok(()));
        assert_eq!(quota.check(&mut state, nz(5), now), Ok(()));
        let before = state;
        assert_eq!(
            quota.check(&mut state, nz(1), now),
            Err(Exceeded::Until(Duration::from_millis(100)))
        );
        assert_eq!(state, before, "a refusal takes nothing");
        assert_eq!(quota.check(&mut state, nz(1), now + 100_000_000), Ok(()));
        assert_eq!(quota.check(&mut state, nz(21), now + 10_000_000_000), Err(Exceeded::Burst));
    }

    proptest! {
        /// For any sequence of requests, the same decisions and waits as
        /// governor's keyed limiter on the same clock.
        #[test]
        fn decides_as_governor_does(
            rate in 1u32..2_000,
            burst in 1u32..3_000,
            requests in prop::collection::vec((1u32..3_500, 0u64..50_000_000), 1..60),
        ) {
            let clock = FakeRelativeClock::default();
            let governor = RateLimiter::hashmap_with_clock(
                GovernorQuota::per_second(nz(rate)).allow_burst(nz(burst)),
                clock.clone(),
            );
            let quota = Quota::new(nz(rate), nz(burst));
            let mut state = RateState::default();
            // Ours counts from 1 ns, governor's fake clock from 0.
            let mut now = 1;
            for (n, advance) in requests {
                clock.advance(Duration::from_nanos(advance));
                now += advance;
                let theirs = match governor.check_key_n(&"car", nz(n)) {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(not_until)) => {
                        Err(Exceeded::Until(not_until.wait_time_from(governor::clock::Clock::now(&clock))))
                    }
                    Err(_) => Err(Exceeded::Burst),
                };
                prop_assert_eq!(quota.check(&mut state, nz(n), now), theirs, "n {}", n);
            }
        }
    }
}
