//! Admission: the in-flight limit (`TRIBUTARY_MAX_IN_FLIGHT`), its one home.
//! A request past it is answered 503 at once, before its body is read, instead
//! of queueing without bound.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::problem::ApiError;
use super::state::AppState;
use crate::telemetry::Throttle;

/// Admits a request, or answers 503 at once when the in-flight limit is
/// reached, instead of letting requests queue without bound. Health checks and
/// metrics are never shed: they are how an operator sees the overload, and an
/// overload should not make every replica look dead at once.
pub(super) fn admit<'a>(
    state: &'a AppState,
    path: &str,
) -> Result<Option<InFlightGuard<'a>>, ApiError> {
    if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return Ok(None);
    }
    let Some(in_flight) = state.in_flight.try_enter() else {
        let limit = state.in_flight.limit();
        static SHEDDING: Throttle = Throttle::new();
        if let Some(suppressed) = SHEDDING.allow() {
            tracing::warn!(limit, suppressed, "in-flight limit reached: shedding load");
        }
        state.metrics.shed();
        return Err(ApiError::Overloaded { limit });
    };
    Ok(Some(in_flight))
}

/// A count of the requests in flight. An atomic counter rather than a
/// semaphore: nothing ever waits for a place (a request past the limit is shed
/// at once), and releasing a tokio semaphore permit takes a mutex, which showed
/// as lock contention between the worker threads in the profile.
#[derive(Debug)]
pub struct InFlight {
    count: AtomicUsize,
    limit: usize,
}

impl InFlight {
    pub fn new(limit: usize) -> Self {
        Self { count: AtomicUsize::new(0), limit }
    }

    /// Counts one more request in flight, unless the limit is reached.
    pub fn try_enter(&self) -> Option<InFlightGuard<'_>> {
        let limit = self.limit;
        self.count
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |n| (n < limit).then_some(n + 1))
            .ok()
            .map(|_| InFlightGuard(self))
    }

    /// Requests in flight now: the metrics gauge is set from this when metrics
    /// are read, rather than kept up to date on every request.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// One request in flight; counted out when dropped, even if the client went
/// away mid-request.
#[must_use]
pub struct InFlightGuard<'a>(&'a InFlight);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::Release);
    }
}
