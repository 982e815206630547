//! The hub: fans a vehicle's changes out to every local stream watching it.
//!
//! Shape, and why:
//! - Per watched vehicle, one fetch at a time. Touches from the feed only mark
//!   signals as touched; a fetch task (spawned when there is work, gone when
//!   there is none) reads their summaries through the [`SummarySource`] and
//!   hands them out. Touches that arrive during a fetch are fetched once more
//!   after it, so a burst of a thousand writes costs a handful of reads, and
//!   results reach subscribers in the order they were read (never an older
//!   state after a newer one).
//! - A snapshot (a stream's first event, and after a resync) is a full fetch
//!   made by that same task, so it too is ordered with the updates.
//! - Slow clients never slow writers, nor each other: each subscriber has an
//!   inbox holding at most one pending summary per signal. Fan-out replaces a
//!   pending summary with the newer one and counts it in `skipped`, and never
//!   awaits a subscriber. Intermediate states are lost, the newest never is.
//! - `min_interval` holds a subscriber's next update until the interval has
//!   passed since its last one; what changed meanwhile is merged the same way.
//! - Shutdown (the token given to [`Hub::new`]) makes every subscription yield
//!   [`LiveEvent::Shutdown`] and end, so that a server's graceful drain is not
//!   held open by streams that would otherwise never finish.
//!
//! Locks are std mutexes: nothing awaits while holding one, and each critical
//! section is a few map operations. Their order is hub map, then a vehicle's
//! state, then a subscriber's inbox.
//!
//! Files: this one holds the public types, the hub's shared state and the feed
//! loop; `fetch` the per-vehicle fetch task; `subscriber` a stream's inbox and
//! the [`Subscription`] that drains it.

mod fetch;
mod subscriber;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{OnceCell, Semaphore};
use tokio_util::sync::CancellationToken;

use super::LiveSettings;
use super::metrics::LiveMetrics;
use super::summary::{Signals, SummarySource};
use crate::domain::{SignalName, VehicleId};
use crate::store::changes::{Feed, FeedError, FeedEvent, FeedEvents, Resync};
use fetch::{Watched, WatchedState};
use subscriber::Subscriber;
pub use subscriber::Subscription;

/// What a stream receives.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// The current state of every (selected) signal with data; empty for a
    /// vehicle that has sent nothing yet. The first event, and again after
    /// changes may have been lost.
    Snapshot(Signals),
    /// The new state of the signals that changed since the last event, and how
    /// many intermediate signal states were merged over (not sent) since then.
    Update { signals: Signals, skipped: u64 },
    /// The service is shutting down: the last event.
    Shutdown,
}

impl LiveEvent {
    /// Brings a client's state up to date with this event: a snapshot
    /// replaces it, an update merges into it (e.g. to answer with the whole
    /// state on every event, as the seed API's `/collect` shape needs).
    pub fn apply_to(&self, state: &mut Signals) {
        match self {
            LiveEvent::Snapshot(signals) => state.clone_from(signals),
            LiveEvent::Update { signals, .. } => {
                state.extend(signals.iter().map(|(name, summary)| (name.clone(), summary.clone())));
            }
            LiveEvent::Shutdown => {}
        }
    }
}

/// An event and its id, which increases by one per event of a subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    pub id: u64,
    pub event: LiveEvent,
}

/// Why a stream cannot be opened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubscribeError {
    /// The instance serves its maximum of streams: try later (503, `Retry-After`).
    #[error("this instance already serves {limit} live streams, its maximum")]
    TooManyStreams { limit: usize },
    /// The vehicle's changes or current state cannot be read now (503).
    #[error("the live feed is unavailable: {0}")]
    Unavailable(String),
}

/// The hub. Cheap to clone: clones share everything.
#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

struct Shared {
    source: Arc<dyn SummarySource>,
    feed: Arc<dyn Feed>,
    permits: Arc<Semaphore>,
    max_streams: usize,
    vehicles: Mutex<HashMap<VehicleId, Arc<Watched>>>,
    shutdown: CancellationToken,
    metrics: LiveMetrics,
    /// Cancelled when the last handle goes, to stop the feed loop.
    dropped: CancellationToken,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.dropped.cancel();
    }
}

impl Shared {
    fn vehicles(&self) -> MutexGuard<'_, HashMap<VehicleId, Arc<Watched>>> {
        self.vehicles.lock().expect("never poisoned: no panics inside")
    }
}

#[cfg(test)]
impl Hub {
    /// A hub with the default settings over the summaries of `store` and the
    /// writes `feed` announces, and the token that shuts it down: for tests.
    pub(crate) fn for_tests(
        store: &crate::store::MemoryStore,
        feed: &crate::store::changes::MemoryFeed,
    ) -> (Self, CancellationToken) {
        let shutdown = CancellationToken::new();
        let catalog = Arc::new(crate::domain::Catalog::builtin());
        let source = super::StoreSummaries::new(Arc::new(store.clone()), catalog);
        let hub = Hub::new(
            &LiveSettings::default(),
            Arc::new(source),
            Arc::new(feed.clone()),
            shutdown.clone(),
            LiveMetrics::default(),
        );
        (hub, shutdown)
    }
}

impl Hub {
    /// A hub over `source` and `feed`. Must be called inside a tokio runtime:
    /// it spawns the loop that reads the feed. `shutdown` ends every stream.
    pub fn new(
        settings: &LiveSettings,
        source: Arc<dyn SummarySource>,
        feed: Arc<dyn Feed>,
        shutdown: CancellationToken,
        metrics: LiveMetrics,
    ) -> Self {
        let max_streams = settings.max_streams as usize;
        let events = feed.events();
        let shared = Arc::new(Shared {
            source,
            feed,
            permits: Arc::new(Semaphore::new(max_streams)),
            max_streams,
            vehicles: Mutex::new(HashMap::new()),
            shutdown,
            metrics,
            dropped: CancellationToken::new(),
        });
        let (dropped, shutdown) = (shared.dropped.clone(), shared.shutdown.clone());
        tokio::spawn(feed_loop(Arc::downgrade(&shared), events, dropped, shutdown));
        Self { shared }
    }

    /// Opens a stream of `vehicle`'s changes, limited to `filter`'s signals if
    /// given, with at most one update per `min_interval` if given. Resolves
    /// once the first event, the snapshot, is ready.
    pub async fn subscribe(
        &self,
        vehicle: VehicleId,
        filter: Option<BTreeSet<SignalName>>,
        min_interval: Option<Duration>,
    ) -> Result<Subscription, SubscribeError> {
        let shared = &self.shared;
        let permit = shared
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| SubscribeError::TooManyStreams { limit: shared.max_streams })?;
        let subscriber = Arc::new(Subscriber::new(filter, min_interval));
        let watched = {
            let mut vehicles = shared.vehicles();
            let watched = vehicles
                .entry(vehicle.clone())
                .or_insert_with(|| {
                    Arc::new(Watched {
                        vehicle: vehicle.clone(),
                        subscribed: OnceCell::new(),
                        feed_called: AtomicBool::new(false),
                        state: Mutex::new(WatchedState::default()),
                    })
                })
                .clone();
            watched.state().subscribers.push(subscriber.clone());
            watched
        };
        // From here on, dropping `registration` (also when this future is
        // cancelled) takes the subscriber out again.
        let registration = Registration { shared: shared.clone(), watched, subscriber };
        let watched = &registration.watched;
        watched
            .subscribed
            .get_or_try_init(|| async {
                watched.feed_called.store(true, Ordering::Release);
                shared.feed.subscribe(&vehicle).await
            })
            .await
            .map_err(|err: FeedError| SubscribeError::Unavailable(err.to_string()))?;
        watched.want_snapshot(shared);
        let subscriber = &registration.subscriber;
        loop {
            {
                let inbox = subscriber.inbox();
                if inbox.snapshot.is_some() {
                    break;
                }
                if let Some(reason) = &inbox.failed {
                    return Err(SubscribeError::Unavailable(reason.clone()));
                }
            }
            subscriber.notify.notified().await;
        }
        shared.metrics.streams_open.increment(1.0);
        Ok(Subscription {
            shutdown: shared.shutdown.clone(),
            metrics: shared.metrics.clone(),
            registration,
            _permit: permit,
            last_id: 0,
            finished: false,
        })
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.shared.max_streams - self.shared.permits.available_permits()
    }

    /// Vehicles watched now.
    pub fn watched_vehicles(&self) -> usize {
        self.shared.vehicles().len()
    }

    /// Ends every stream (each yields `Shutdown`): cancels the hub's token.
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }
}

/// Reads the feed until the hub shuts down or is dropped, or the feed closes.
async fn feed_loop(
    shared: std::sync::Weak<Shared>,
    mut events: FeedEvents,
    dropped: CancellationToken,
    shutdown: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = dropped.cancelled() => return,
            _ = shutdown.cancelled() => return,
        };
        let (Some(event), Some(shared)) = (event, shared.upgrade()) else {
            return;
        };
        match event {
            FeedEvent::Touched(touched) => {
                let watched = shared.vehicles().get(&touched.vehicle).cloned();
                if let Some(watched) = watched {
                    watched.touch(&shared, touched.signals);
                }
            }
            FeedEvent::Resync(which) => {
                let affected: Vec<Arc<Watched>> = {
                    let vehicles = shared.vehicles();
                    match &which {
                        Resync::All => vehicles.values().cloned().collect(),
                        Resync::Vehicles(list) => {
                            list.iter().filter_map(|v| vehicles.get(v).cloned()).collect()
                        }
                    }
                };
                for watched in affected {
                    watched.resync(&shared);
                }
            }
        }
    }
}

/// A subscriber's place in the hub; leaving it (on drop) unsubscribes the
/// feed from the vehicle when it was the last.
struct Registration {
    shared: Arc<Shared>,
    watched: Arc<Watched>,
    subscriber: Arc<Subscriber>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        // The hub's map is held throughout, so that a new subscriber of this
        // vehicle subscribes the feed only after this unsubscribes it.
        let mut vehicles = self.shared.vehicles();
        let mut state = self.watched.state();
        state.subscribers.retain(|s| !Arc::ptr_eq(s, &self.subscriber));
        if !state.subscribers.is_empty() {
            return;
        }
        drop(state);
        let vehicle = &self.watched.vehicle;
        if vehicles.get(vehicle).is_some_and(|w| Arc::ptr_eq(w, &self.watched)) {
            vehicles.remove(vehicle);
        }
        if self.watched.feed_called.load(Ordering::Acquire) {
            self.shared.feed.unsubscribe(vehicle);
        }
    }
}
