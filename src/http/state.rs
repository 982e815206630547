//! What every handler can reach, and the one path by which handlers use the
//! store: rate-limited and measured.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::limit::VehicleLimiter;
use super::problem::ApiError;
use super::seed::SeedKeys;
use super::wire;
use crate::config::ServeSettings;
use crate::domain::{Aggregate, Catalog, Clock, Reading, SignalName, VehicleId};
use crate::metrics::Metrics;
use crate::store::{DynStore, StoreError, VehicleHistory};

/// A small handle around one shared `AppStateInner`, as in mini-redis: every
/// request clones it a few times (middleware, handler), and one reference
/// count is cheaper than one per field.
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

pub struct AppStateInner {
    pub store: DynStore,
    pub catalog: Arc<Catalog>,
    pub clock: Arc<Clock>,
    pub metrics: Metrics,
    /// How long a client may take to send a request body.
    pub body_timeout: Duration,
    /// Requests in flight; past its limit, requests are shed.
    pub in_flight: InFlight,
    pub limiter: Option<Arc<VehicleLimiter>>,
    /// `/collect`'s keys for each signal of the catalog.
    pub(super) seed_keys: SeedKeys,
    /// When the vehicle count was last taken; held while one is being taken.
    vehicles_counted_at: tokio::sync::Mutex<Option<Instant>>,
}

/// How often `/metrics` may count the store's vehicles (a scan, on Redis).
const VEHICLE_COUNT_INTERVAL: Duration = Duration::from_secs(10);

impl AppState {
    /// A state with the default limits and no rate limit, for embedding and tests.
    pub fn new(store: DynStore, catalog: Catalog, body_timeout: Duration) -> Self {
        let mut settings = ServeSettings::for_tests();
        settings.client_timeout = body_timeout;
        Self::from_settings(store, catalog, &settings)
    }

    pub fn from_settings(store: DynStore, catalog: Catalog, settings: &ServeSettings) -> Self {
        let seed_keys = SeedKeys::new(catalog.names());
        Self(Arc::new(AppStateInner {
            store,
            catalog: Arc::new(catalog),
            clock: Arc::new(Clock::new()),
            metrics: Metrics::new(),
            body_timeout: settings.client_timeout,
            in_flight: InFlight::new(settings.max_in_flight as usize),
            limiter: VehicleLimiter::new(settings.vehicle_rate, settings.vehicle_burst),
            seed_keys,
            vehicles_counted_at: tokio::sync::Mutex::new(None),
        }))
    }

    pub fn parse_context(&self) -> wire::ParseContext<'_> {
        wire::ParseContext { catalog: &self.catalog, clock: &self.clock }
    }

    /// Stores one vehicle's readings, if its rate limit allows them.
    pub async fn record(&self, vehicle: &VehicleId, readings: &[Reading]) -> Result<(), ApiError> {
        if let Some(limiter) = &self.limiter {
            limiter.admit(vehicle, readings.len()).inspect_err(|_| self.metrics.rate_limited())?;
        }
        let received_at = self.clock.now();
        self.observe("record", self.store.record(vehicle, readings, received_at)).await?;
        self.metrics.readings_accepted(readings.len());
        Ok(())
    }

    pub async fn history(
        &self,
        vehicle: &VehicleId,
        signals: &[SignalName],
    ) -> Result<Option<VehicleHistory>, StoreError> {
        self.observe("history", self.store.history(vehicle, signals)).await
    }

    pub async fn aggregates(
        &self,
        vehicle: &VehicleId,
        signals: &[SignalName],
    ) -> Result<Vec<(SignalName, Aggregate)>, StoreError> {
        self.observe("history", self.store.aggregates(vehicle, signals)).await
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.observe("ping", self.store.ping()).await
    }

    /// Updates the vehicles gauge, at most once per `VEHICLE_COUNT_INTERVAL`
    /// and one count at a time however many scrapes arrive: on Redis a count is
    /// a scan of the keyspace. A failed count leaves the last one in place.
    pub async fn refresh_vehicle_count(&self) {
        let Ok(mut counted_at) = self.vehicles_counted_at.try_lock() else { return };
        if counted_at.is_some_and(|at| at.elapsed() < VEHICLE_COUNT_INTERVAL) {
            return;
        }
        if let Ok(count) = self.observe("vehicle_count", self.store.vehicle_count()).await {
            self.metrics.set_vehicles(count);
        }
        *counted_at = Some(Instant::now());
    }

    /// Measures a call to a remote store (see `Store::is_remote`). Each store
    /// bounds its own calls by `StoreLimits::timeout` (the Redis store must:
    /// it replaces a connection that missed its deadline), so there is no
    /// second timer here.
    async fn observe<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        if !self.store.is_remote() {
            return call.await;
        }
        let started = Instant::now();
        let outcome = call.await;
        let error = outcome.as_ref().err().map(|err| match err {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Internal(_) => "internal",
        });
        self.metrics.store_operation(operation, started.elapsed(), error);
        outcome
    }
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
