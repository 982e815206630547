//! Live streams as an operation of the service: [`Fleet::with_live`] builds the
//! hub (`crate::live`) over the store's change feed, reading summaries through
//! the same measured store calls as every other read; [`Fleet::subscribe`]
//! opens a stream. The HTTP surfaces only render what a subscription yields,
//! so an identity check on a stream is one more check here or at its route.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::{Fleet, FleetError, observe};
use crate::auth::Identity;
use crate::domain::{Catalog, SignalName, VehicleId};
use crate::live::{
    Feed, Hub, LiveSettings, SignalSummary, StoreSummaries, SubscribeError, Subscription,
    SummarySource,
};
use crate::metrics::Metrics;
use crate::store::{DynStore, StoreError};

impl Fleet {
    /// Adds live streams over `feed` (the store's: `MemoryStore::feed`, or a
    /// `RedisFeed` on the same Redis), ended by `shutdown`. Spawns the hub's
    /// task: call it inside a tokio runtime.
    pub fn with_live(
        mut self,
        settings: &LiveSettings,
        feed: Arc<dyn Feed>,
        catalog: Arc<Catalog>,
        shutdown: CancellationToken,
    ) -> Self {
        let source = MeasuredSummaries {
            inner: StoreSummaries::new(self.store.clone(), catalog),
            store: self.store.clone(),
            metrics: self.metrics.clone(),
        };
        let metrics = self.metrics.live();
        self.live = Some(Hub::new(settings, Arc::new(source), feed, shutdown, metrics));
        self
    }

    /// Opens a live stream of `vehicle` (see `Hub::subscribe`): its snapshot is
    /// ready when this returns.
    pub async fn subscribe(
        &self,
        caller: &Identity,
        vehicle: VehicleId,
        signals: Option<BTreeSet<SignalName>>,
        min_interval: Option<Duration>,
    ) -> Result<Subscription, FleetError> {
        caller.may_read(&vehicle)?;
        let Some(hub) = &self.live else {
            let why = "live streams are not running in this service";
            return Err(FleetError::Store(StoreError::Unavailable(why.into())));
        };
        hub.subscribe(vehicle, signals, min_interval).await.map_err(|err| match err {
            SubscribeError::TooManyStreams { limit } => FleetError::TooManyStreams { limit },
            SubscribeError::Unavailable(why) => {
                FleetError::Store(StoreError::Unavailable(why.into()))
            }
        })
    }

    /// The live hub, if there is one.
    pub fn live(&self) -> Option<&Hub> {
        self.live.as_ref()
    }
}

/// The hub's reads: `StoreSummaries`, timed like every store call of the service.
struct MeasuredSummaries {
    inner: StoreSummaries,
    store: DynStore,
    metrics: Metrics,
}

#[async_trait]
impl SummarySource for MeasuredSummaries {
    async fn summaries(
        &self,
        vehicle: &VehicleId,
        signals: Option<&[SignalName]>,
    ) -> Result<BTreeMap<SignalName, SignalSummary>, StoreError> {
        observe(&self.store, &self.metrics, "history", self.inner.summaries(vehicle, signals)).await
    }
}
