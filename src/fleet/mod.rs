//! The fleet service: what each operation on the fleet *does*, independent of
//! HTTP. Recording applies the vehicle's rate limit, stamps the reading's
//! arrival and stores it; every store call is measured. The HTTP surfaces call
//! these operations and turn a [`FleetError`] into their own answer.
//!
//! Stream subscriptions are operations of this service too ([`Fleet::subscribe`],
//! over the live hub built in [`live`]); identity checks will be, when they come.
//!
//! Of the service's three limits, this module holds the one about the fleet,
//! the per-vehicle rate ([`rate_limit`]); connections are the server's
//! (`server::Listener`) and requests in flight the HTTP layer's
//! (`http::admission`).

mod error;
pub mod live;
pub mod rate_limit;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use self::error::{FleetError, RateLimited};
pub use self::rate_limit::VehicleLimiter;
use crate::auth::Identity;
use crate::domain::rate::Quota;
use crate::domain::{Aggregate, Clock, Reading, SignalName, VehicleId, VehiclePrefix};
use crate::metrics::Metrics;
use crate::store::{DynStore, StoreError, VehicleCursor, VehicleHistory, VehiclePage};

/// How often `/metrics` may count the store's vehicles (a scan, on Redis).
const VEHICLE_COUNT_INTERVAL: Duration = Duration::from_secs(10);

/// The service, over one store.
pub struct Fleet {
    store: DynStore,
    clock: Arc<Clock>,
    metrics: Metrics,
    limiter: Option<Arc<VehicleLimiter>>,
    /// When the vehicle count was last taken; held while one is being taken.
    vehicles_counted_at: tokio::sync::Mutex<Option<Instant>>,
    /// The live streams' hub, when the service runs one (see [`Fleet::with_live`]).
    live: Option<crate::live::Hub>,
}

impl Fleet {
    /// The service over `store`, stamping with `clock`, limiting each vehicle
    /// with `limiter` (none: no limit).
    pub fn new(
        store: DynStore,
        clock: Arc<Clock>,
        metrics: Metrics,
        limiter: Option<Arc<VehicleLimiter>>,
    ) -> Self {
        Self {
            store,
            clock,
            metrics,
            limiter,
            vehicles_counted_at: tokio::sync::Mutex::new(None),
            live: None,
        }
    }

    /// The store's short name: `memory` or `redis`.
    pub fn store_kind(&self) -> &'static str {
        self.store.kind()
    }

    /// The store, for its background upkeep.
    pub fn store(&self) -> &DynStore {
        &self.store
    }

    /// The per-vehicle rate limit, if there is one, for its background upkeep.
    pub fn limiter(&self) -> Option<&Arc<VehicleLimiter>> {
        self.limiter.as_ref()
    }

    /// Stores one vehicle's readings, if `caller` may record it and its rate
    /// limit allows them.
    pub async fn record(
        &self,
        caller: &Identity,
        vehicle: &VehicleId,
        readings: &[Reading],
    ) -> Result<(), FleetError> {
        caller.may_record(vehicle)?;
        let received_at = self.clock.now();
        match &self.limiter {
            // The store applies the limit in the same lookup as the write.
            Some(limiter) if self.store.keeps_rate_state() => {
                let recorded = self.store.record_within(
                    vehicle,
                    readings,
                    received_at,
                    limiter.quota(),
                    Quota::now(),
                );
                if let Err(exceeded) = self.observe("record", recorded).await? {
                    self.metrics.rate_limited();
                    return Err(limiter.refusal(vehicle, readings.len(), exceeded).into());
                }
            }
            Some(limiter) => {
                limiter
                    .admit(vehicle, readings.len())
                    .inspect_err(|_| self.metrics.rate_limited())?;
                self.observe("record", self.store.record(vehicle, readings, received_at)).await?;
            }
            None => {
                self.observe("record", self.store.record(vehicle, readings, received_at)).await?;
            }
        }
        self.metrics.readings_accepted(readings.len());
        Ok(())
    }

    /// The stored history of `signals`, or `None` for a vehicle never seen
    /// (within the retention period); refused first if `caller` may not read
    /// the vehicle, so that a caller cannot learn whether it exists.
    pub async fn history(
        &self,
        caller: &Identity,
        vehicle: &VehicleId,
        signals: &[SignalName],
    ) -> Result<Option<VehicleHistory>, FleetError> {
        caller.may_read(vehicle)?;
        Ok(self.observe("history", self.store.history(vehicle, signals)).await?)
    }

    /// The aggregates of each of `signals` with samples, if `caller` may read
    /// the vehicle.
    pub async fn aggregates(
        &self,
        caller: &Identity,
        vehicle: &VehicleId,
        signals: &[SignalName],
    ) -> Result<Vec<(SignalName, Aggregate)>, FleetError> {
        caller.may_read(vehicle)?;
        Ok(self.observe("history", self.store.aggregates(vehicle, signals)).await?)
    }

    /// One page of the vehicles whose id starts with `prefix`, newest first,
    /// from `cursor`: at most `limit` of them, if `caller` may list the fleet.
    pub async fn list_vehicles(
        &self,
        caller: &Identity,
        prefix: &VehiclePrefix,
        cursor: &VehicleCursor,
        limit: usize,
    ) -> Result<VehiclePage, FleetError> {
        caller.may_list()?;
        Ok(self.observe("list_vehicles", self.store.list_vehicles(prefix, cursor, limit)).await?)
    }

    /// Whether the store answers.
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
        observe(&self.store, &self.metrics, operation, call).await
    }
}

/// Measures a call to `store` if it is remote (see `Fleet::observe`).
async fn observe<T>(
    store: &DynStore,
    metrics: &Metrics,
    operation: &'static str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    if !store.is_remote() {
        return call.await;
    }
    let started = Instant::now();
    let outcome = call.await;
    // A full store answered, and did what it should: not a store error
    // (which the store alerts count), but the caller's refusal.
    let error = outcome
        .as_ref()
        .err()
        .filter(|err| !matches!(err, StoreError::Full(_)))
        .map(StoreError::kind);
    metrics.store_operation(operation, started.elapsed(), error);
    outcome
}
