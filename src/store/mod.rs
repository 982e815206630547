//! Storage: where readings live. One `Store` trait, two implementations: an
//! embedded in-memory store (the default, so the service runs with nothing else
//! installed) and Redis. Stores know nothing of HTTP; they speak domain types.
//!
//! Every method is per vehicle and per signal. A store keeps, per (vehicle,
//! signal), the `window` newest samples by timestamp (a sample with the timestamp
//! of one already kept replaces it) and a count of all samples accepted; per
//! vehicle, when it was last heard from. A vehicle silent for the retention
//! period is forgotten.
//!
//! Each write is also announced ([`changes`]) for the live streams.

pub mod changes;
pub mod memory;
pub mod redis;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::rate::{Exceeded, Quota};
use crate::domain::{Aggregate, Reading, Sample, SignalName, Timestamp, VehicleId, VehiclePrefix};
use crate::upkeep::Upkeep;

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;

/// What a store keeps, and for how long. The defaults are the settings' ones
/// (`config::ServeSettings::store_limits`).
#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    /// How many newest samples per (vehicle, signal) count.
    pub window: usize,
    /// How long a silent vehicle is remembered.
    pub retention: Duration,
    /// How long one call to a remote store may take before it counts as
    /// unavailable: every implementation bounds its calls by it, so that a
    /// request never waits on a store without limit.
    pub timeout: Duration,
    /// How many vehicles the embedded store holds at most (`None`: no limit);
    /// a new vehicle past it is refused with [`StoreError::Full`]. Redis is
    /// bounded by its own `maxmemory` instead (see `redis`).
    pub max_vehicles: Option<u64>,
}

impl StoreLimits {
    /// How late past the retention period a silent vehicle may still be
    /// forgotten: the memory store sweeps this often, and Redis refreshes the
    /// expiry of keys a write does not touch this often. A sixtieth of the
    /// retention, between 1 s and a minute.
    pub fn expiry_slack(&self) -> Duration {
        (self.retention / 60).clamp(Duration::from_secs(1), Duration::from_secs(60))
    }
}

/// One signal of one vehicle, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalHistory {
    /// The window, newest first.
    pub samples: Vec<Sample>,
    /// Samples ever accepted (resends of a sample still in the window not counted).
    pub total: u64,
}

/// Everything stored about one vehicle.
#[derive(Debug, Clone, PartialEq)]
pub struct VehicleHistory {
    /// When the vehicle last sent a reading, by the server's clock.
    pub last_seen: Timestamp,
    /// Signals with at least one sample.
    pub signals: BTreeMap<SignalName, SignalHistory>,
}

/// Where a walk through the vehicles goes on: the ids already found but not
/// yet listed (a page holds at most its limit, and a Redis `SCAN` step may find
/// more), then the position to go on from. Each store walks its vehicles in an
/// order of its own (Redis: its `SCAN` cursor; memory: a hash of the id, the
/// same idea), so a position means something to the store that made it only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VehicleCursor {
    /// Found, not yet listed; listed first (those gone by then are skipped).
    pub pending: Vec<VehicleId>,
    /// Where the walk resumes once `pending` is listed; `None`: it is over.
    pub resume: Option<u64>,
}

impl VehicleCursor {
    /// The start of a walk.
    pub const START: Self = Self { pending: Vec::new(), resume: Some(0) };
}

/// A vehicle in a list, and when it was last heard from.
#[derive(Debug, Clone, PartialEq)]
pub struct VehicleSeen {
    pub vehicle: VehicleId,
    pub last_seen: Timestamp,
}

/// One page of a walk through the vehicles.
#[derive(Debug, Clone, PartialEq)]
pub struct VehiclePage {
    /// At most the page's limit, newest first; possibly none even when more
    /// follow (a walk step may find no match).
    pub vehicles: Vec<VehicleSeen>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<VehicleCursor>,
}

impl VehiclePage {
    /// A page of `vehicles`, sorted newest first (ties by id).
    pub fn newest_first(mut vehicles: Vec<VehicleSeen>, next: Option<VehicleCursor>) -> Self {
        vehicles
            .sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then_with(|| a.vehicle.cmp(&b.vehicle)));
        Self { vehicles, next }
    }
}

/// What caused a store failure: the backend's own error, or a description.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// A failure of the storage backend. None of these are the caller's fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or did not answer in time; worth retrying.
    #[error("store unavailable")]
    Unavailable(#[source] Cause),
    /// The backend answered something we cannot use.
    #[error("store failure")]
    Internal(#[source] Cause),
    /// The store holds as many vehicles as it may: a new vehicle's readings
    /// were refused, and nothing was stored. Vehicles it holds keep working.
    /// The message names the limit, for the caller.
    #[error("{0}")]
    Full(String),
}

impl StoreError {
    /// `unavailable` or `internal`, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
            Self::Full(_) => "full",
        }
    }

    /// The error and its cause in one line, for logs and `/readyz`:
    /// `store unavailable: Redis did not answer within 1000 ms`.
    pub fn report(&self) -> String {
        match self {
            Self::Unavailable(cause) | Self::Internal(cause) => format!("{self}: {cause}"),
            Self::Full(_) => format!("store full: {self}"),
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores all `readings` of one vehicle atomically: all of them or none.
    async fn record(
        &self,
        vehicle: &VehicleId,
        readings: &[Reading],
        received_at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Whether the store keeps each vehicle's rate state beside its data, and
    /// so can apply a rate limit in `record_within` in the same lookup as the
    /// write. Otherwise the caller limits the rate itself, then `record`s.
    fn keeps_rate_state(&self) -> bool {
        false
    }

    /// Stores `readings` as `record` does if `quota` admits them against the
    /// vehicle's rate state at `now` (`Quota::now`); else stores nothing and
    /// says by how much they exceeded it. Only called when `keeps_rate_state`;
    /// a store that keeps none records without a limit.
    async fn record_within(
        &self,
        vehicle: &VehicleId,
        readings: &[Reading],
        received_at: Timestamp,
        _quota: &Quota,
        _now: u64,
    ) -> Result<Result<(), Exceeded>, StoreError> {
        self.record(vehicle, readings, received_at).await.map(Ok)
    }

    /// The stored history of `signals` for one vehicle, or `None` if the vehicle
    /// has sent nothing within the retention period.
    async fn history(
        &self,
        vehicle: &VehicleId,
        signals: &[SignalName],
    ) -> Result<Option<VehicleHistory>, StoreError>;

    /// The aggregates of each of `signals` with samples (what `/collect`
    /// answers): the same as `Aggregate::of` over `history`'s windows, which is
    /// what this does unless a store can compute them without copying the
    /// windows out. In any order; empty if the vehicle is unknown.
    async fn aggregates(
        &self,
        vehicle: &VehicleId,
        signals: &[SignalName],
    ) -> Result<Vec<(SignalName, Aggregate)>, StoreError> {
        let history = self.history(vehicle, signals).await?;
        Ok(history
            .into_iter()
            .flat_map(|history| history.signals)
            .filter_map(|(signal, history)| Some((signal, Aggregate::of(&history.samples)?)))
            .collect())
    }

    /// Checks that the backend answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// How many vehicles the store holds, for metrics. May include vehicles
    /// past the retention period that are not yet swept away.
    async fn vehicle_count(&self) -> Result<u64, StoreError>;

    /// One page of the vehicles whose id starts with `prefix`, from `cursor`
    /// (`VehicleCursor::START`, or a page's `next`): at most `limit` of them.
    /// A walk lists every vehicle present from its start to its end at least
    /// once (Redis may list one twice if its keyspace is resized meanwhile).
    async fn list_vehicles(
        &self,
        prefix: &VehiclePrefix,
        cursor: &VehicleCursor,
        limit: usize,
    ) -> Result<VehiclePage, StoreError>;

    /// A short name for logs and `/readyz`.
    fn kind(&self) -> &'static str;

    /// Whether calls leave this process, and so are worth timing and counting
    /// in the store metrics. An embedded store's call is a few map operations
    /// under a lock: timing it would add a fifth to its cost and tell nothing.
    fn is_remote(&self) -> bool;

    /// The store's background work, if it has any (the memory store's
    /// retention sweep), for the service to start.
    fn upkeep(&self) -> Option<Upkeep> {
        None
    }
}

pub type DynStore = Arc<dyn Store>;
