//! Change feeds: how a store announces which signals of which vehicle each
//! write changed, for the live streams (`crate::live`) to fetch and fan out.
//! It lives with the stores because the stores announce: the memory store
//! calls [`MemoryFeed::announce`] after each write, and the Redis store's write
//! script publishes to [`channel`], which [`RedisFeed`](super::redis::RedisFeed)
//! receives.
//!
//! Writes announce, readers fetch. A write announces only *which* signals of
//! which vehicle it changed ([`Touched`]); the hub then fetches their new
//! summaries, only for vehicles some local client watches. So a stream carries
//! state, not history, and a vehicle nobody watches costs nothing more than a
//! lookup (memory) or a publish to a channel without subscribers (Redis).
//!
//! Delivery is at most once. When touches may have been lost (the Redis
//! subscriber connection dropped, or the hub fell behind this feed's buffer),
//! the feed says so with [`FeedEvent::Resync`], and the hub sends the affected
//! streams a fresh snapshot.
//!
//! Two implementations: [`MemoryFeed`] here, for the embedded store, and
//! [`RedisFeed`](super::redis::RedisFeed), over Redis sharded pub/sub. Both deliver
//! through a tokio `broadcast` channel: sending never waits (writers are never
//! slowed by the hub), memory stays bounded, and a receiver that falls behind
//! finds out (`Lagged`), which [`FeedEvents`] turns into a resync of everything.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::domain::{SignalName, VehicleId};

/// How many events a feed buffers for a hub that is busy. The hub's work per
/// event is a map lookup, so this is reached only by a stalled runtime; then
/// the hub resyncs.
pub const FEED_BUFFER: usize = 4096;

/// A write changed these signals of this vehicle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    pub vehicle: VehicleId,
    pub signals: Vec<SignalName>,
}

/// Touches may have been lost: the hub must fetch a fresh snapshot for every
/// stream of these vehicles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resync {
    /// Every watched vehicle.
    All,
    Vehicles(Vec<VehicleId>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    Touched(Touched),
    Resync(Resync),
}

/// Why a feed cannot start delivering a vehicle's touches.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FeedError {
    /// The backend cannot be reached now; worth retrying.
    #[error("live feed unavailable: {0}")]
    Unavailable(String),
}

/// A source of [`FeedEvent`]s for the vehicles the hub subscribes to.
///
/// The hub calls `subscribe` when a vehicle gets its first local watcher and
/// `unsubscribe` when its last one leaves, never twice in a row for a vehicle.
#[async_trait]
pub trait Feed: Send + Sync + 'static {
    /// Starts delivering `vehicle`'s touches. Resolves once every write
    /// acknowledged from then on will be announced, so that a snapshot read
    /// after it misses nothing.
    async fn subscribe(&self, vehicle: &VehicleId) -> Result<(), FeedError>;

    /// Stops delivering `vehicle`'s touches. Never waits: it is called when a
    /// stream is dropped.
    fn unsubscribe(&self, vehicle: &VehicleId);

    /// A new receiver of this feed's events, from now on.
    fn events(&self) -> FeedEvents;
}

/// A receiver of a feed's events.
pub struct FeedEvents {
    receiver: broadcast::Receiver<FeedEvent>,
}

impl FeedEvents {
    pub fn new(receiver: broadcast::Receiver<FeedEvent>) -> Self {
        Self { receiver }
    }

    /// The next event; `None` once the feed is gone. A receiver that fell
    /// behind the buffer gets `Resync(All)` in place of what it missed.
    pub async fn recv(&mut self) -> Option<FeedEvent> {
        match self.receiver.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "the live hub fell behind its feed: resyncing every stream");
                Some(FeedEvent::Resync(Resync::All))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

/// The Redis sharded pub/sub channel of a vehicle's changes. It carries the
/// vehicle's hash tag, so it lives in the slot of the vehicle's keys and the
/// write script may publish to it on Redis Cluster.
pub fn channel(vehicle: &VehicleId) -> String {
    vehicle_key(vehicle, ":changes")
}

/// The vehicle whose changes `channel` carries.
pub fn vehicle_of_channel(channel: &[u8]) -> Option<VehicleId> {
    vehicle_of_key(std::str::from_utf8(channel).ok()?, ":changes")
}

/// A Redis name of `vehicle`'s, `tributary:{<vehicle>}<suffix>`: the `{…}`
/// hash tag puts every name of one vehicle in one Redis Cluster slot. Built
/// by hand, not with `format!`: two are built for every write.
pub(crate) fn vehicle_key(vehicle: &VehicleId, suffix: &str) -> String {
    let vehicle = vehicle.as_str();
    let mut key = String::with_capacity(12 + vehicle.len() + suffix.len());
    key.push_str("tributary:{");
    key.push_str(vehicle);
    key.push('}');
    key.push_str(suffix);
    key
}

/// The vehicle whose name (see [`vehicle_key`]) with `suffix` `key` is, if it is one.
pub(crate) fn vehicle_of_key(key: &str, suffix: &str) -> Option<VehicleId> {
    let id = key.strip_prefix("tributary:{")?.strip_suffix(suffix)?.strip_suffix('}')?;
    VehicleId::try_from(id).ok()
}

/// A change message's payload: the touched signals' names, separated by
/// single spaces (signal names hold none).
pub fn encode_signals<'a>(signals: impl IntoIterator<Item = &'a SignalName>) -> String {
    let mut payload = String::new();
    for signal in signals {
        if !payload.is_empty() {
            payload.push(' ');
        }
        payload.push_str(signal.as_str());
    }
    payload
}

/// Reads a change message's payload. `None` means "anything may have
/// changed": an empty payload (a writer that cannot tell which signals), or
/// one this version cannot read; the caller resyncs the vehicle.
pub fn decode_signals(payload: &[u8]) -> Option<Vec<SignalName>> {
    let payload = std::str::from_utf8(payload).ok()?;
    let signals =
        payload.split_ascii_whitespace().map(SignalName::parse).collect::<Option<Vec<_>>>()?;
    (!signals.is_empty()).then_some(signals)
}

/// The in-process feed of the embedded store: the store calls
/// [`MemoryFeed::announce`] after each write. Cheap to clone.
#[derive(Clone)]
pub struct MemoryFeed {
    shared: Arc<MemoryShared>,
}

struct MemoryShared {
    /// How many vehicles are watched: when none are, `announce` is one
    /// relaxed load, which is all the write path pays for this feature.
    watched_count: AtomicUsize,
    /// Watched vehicles, with how many subscriptions each (a feed may serve
    /// more than one hub). A std `RwLock`: held for a lookup, never across an
    /// await, and writers (subscribe, unsubscribe) are rare next to readers.
    watched: RwLock<HashMap<VehicleId, usize>>,
    events: broadcast::Sender<FeedEvent>,
}

impl std::fmt::Debug for MemoryFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let watched = self.shared.watched_count.load(Ordering::Relaxed);
        f.debug_struct("MemoryFeed").field("watched", &watched).finish()
    }
}

impl Default for MemoryFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryFeed {
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(FEED_BUFFER);
        Self {
            shared: Arc::new(MemoryShared {
                watched_count: AtomicUsize::new(0),
                watched: RwLock::new(HashMap::new()),
                events,
            }),
        }
    }

    /// Announces that a write to `vehicle` changed `signals` (duplicates are
    /// fine). Call it after the write is visible to readers. Costs one atomic
    /// load when no vehicle is watched and a shared-lock lookup when this one
    /// is not; the signals are only walked (and the event only built) for a
    /// watched vehicle.
    pub fn announce<'a>(
        &self,
        vehicle: &VehicleId,
        signals: impl IntoIterator<Item = &'a SignalName>,
    ) {
        if self.shared.watched_count.load(Ordering::Relaxed) == 0 || !self.is_watched(vehicle) {
            return;
        }
        let mut signals: Vec<SignalName> = signals.into_iter().cloned().collect();
        signals.sort_unstable();
        signals.dedup();
        // An error only means no hub listens now: nothing to deliver to.
        let _ = self
            .shared
            .events
            .send(FeedEvent::Touched(Touched { vehicle: vehicle.clone(), signals }));
    }

    fn is_watched(&self, vehicle: &VehicleId) -> bool {
        self.shared.watched.read().expect("never poisoned: no panics inside").contains_key(vehicle)
    }
}

#[async_trait]
impl Feed for MemoryFeed {
    async fn subscribe(&self, vehicle: &VehicleId) -> Result<(), FeedError> {
        let mut watched = self.shared.watched.write().expect("never poisoned: no panics inside");
        *watched.entry(vehicle.clone()).or_default() += 1;
        self.shared.watched_count.store(watched.len(), Ordering::Relaxed);
        Ok(())
    }

    fn unsubscribe(&self, vehicle: &VehicleId) {
        let mut watched = self.shared.watched.write().expect("never poisoned: no panics inside");
        if let Some(count) = watched.get_mut(vehicle) {
            *count -= 1;
            if *count == 0 {
                watched.remove(vehicle);
            }
        }
        self.shared.watched_count.store(watched.len(), Ordering::Relaxed);
    }

    fn events(&self) -> FeedEvents {
        FeedEvents::new(self.shared.events.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vehicle(id: &str) -> VehicleId {
        VehicleId::try_from(id).unwrap()
    }

    fn names(names: &[&str]) -> Vec<SignalName> {
        names.iter().map(|n| SignalName::parse(n).unwrap()).collect()
    }

    #[test]
    fn payloads_round_trip() {
        let signals = names(&["engine_rpm", "vehicle_speed", "x1_2"]);
        let payload = encode_signals(&signals);
        assert_eq!(payload, "engine_rpm vehicle_speed x1_2");
        assert_eq!(decode_signals(payload.as_bytes()), Some(signals));
        assert_eq!(decode_signals(b"engine_rpm"), Some(names(&["engine_rpm"])));
    }

    #[test]
    fn an_empty_or_unreadable_payload_means_anything_may_have_changed() {
        for payload in [&b""[..], b"   ", b"engine_rpm Vehicle.Speed", b"a\xffb", b"rpm; DEL x"] {
            assert_eq!(decode_signals(payload), None, "{payload:?}");
        }
    }

    #[test]
    fn channels_carry_the_vehicle_hash_tag_and_read_back() {
        let car = vehicle("VIN-1.a_b");
        let name = channel(&car);
        assert_eq!(name, "tributary:{VIN-1.a_b}:changes");
        assert_eq!(vehicle_of_channel(name.as_bytes()), Some(car));
        for other in [&b"tributary:{a}:meta"[..], b"other:{a}:changes", b"tributary:{a b}:changes"]
        {
            assert_eq!(vehicle_of_channel(other), None, "{other:?}");
        }
    }

    #[tokio::test]
    async fn announcing_an_unwatched_vehicle_sends_nothing_and_never_walks_the_signals() {
        let feed = MemoryFeed::new();
        let mut events = feed.events();
        let unwalkable =
            || std::iter::from_fn(|| panic!("walked the signals of an unwatched vehicle"));
        feed.announce(&vehicle("car-1"), unwalkable());
        assert!(matches!(events.receiver.try_recv(), Err(broadcast::error::TryRecvError::Empty)));

        // Another vehicle watched: this one still costs only the lookup.
        feed.subscribe(&vehicle("car-2")).await.unwrap();
        feed.announce(&vehicle("car-1"), unwalkable());
        assert!(matches!(events.receiver.try_recv(), Err(broadcast::error::TryRecvError::Empty)));
    }

    #[tokio::test]
    async fn a_watched_vehicle_is_announced_once_per_write_with_its_signals_deduplicated() {
        let feed = MemoryFeed::new();
        let mut events = feed.events();
        let car = vehicle("car-1");
        feed.subscribe(&car).await.unwrap();
        let written = names(&["vehicle_speed", "engine_rpm", "vehicle_speed"]);
        feed.announce(&car, &written);
        assert_eq!(
            events.recv().await,
            Some(FeedEvent::Touched(Touched {
                vehicle: car.clone(),
                signals: names(&["engine_rpm", "vehicle_speed"])
            }))
        );

        // Two subscriptions need two unsubscriptions.
        feed.subscribe(&car).await.unwrap();
        feed.unsubscribe(&car);
        feed.announce(&car, &written);
        assert!(matches!(events.recv().await, Some(FeedEvent::Touched(_))));
        feed.unsubscribe(&car);
        feed.announce(&car, &written);
        assert!(matches!(events.receiver.try_recv(), Err(broadcast::error::TryRecvError::Empty)));
    }

    #[tokio::test]
    async fn a_receiver_that_falls_behind_is_told_to_resync_everything() {
        let feed = MemoryFeed::new();
        let mut events = feed.events();
        let car = vehicle("car-1");
        feed.subscribe(&car).await.unwrap();
        let signals = names(&["engine_rpm"]);
        for _ in 0..FEED_BUFFER + 1 {
            feed.announce(&car, &signals);
        }
        assert_eq!(events.recv().await, Some(FeedEvent::Resync(Resync::All)));
        assert!(matches!(events.recv().await, Some(FeedEvent::Touched(_))));
    }
}
