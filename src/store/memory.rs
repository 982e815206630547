//! The embedded store: everything in this process's memory, lost on exit.
//!
//! A `std::sync::Mutex` guards the map because no `.await` happens while it is
//! held and each critical section is a few map operations; tokio's mutex would
//! only add overhead. A background sweep forgets vehicles silent for longer than
//! the retention period, so memory stays bounded by the active fleet.
//!
//! Each write is announced on the store's [`MemoryFeed`] (see `store::changes`)
//! once the lock is released, for the live streams.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::changes::MemoryFeed;
use super::{
    SignalHistory, Store, StoreError, StoreLimits, VehicleCursor, VehicleHistory, VehiclePage,
    VehicleSeen,
};
use crate::domain::rate::{Exceeded, Quota, RateState, weight};
use crate::domain::window::{Inserted, Window};
use crate::domain::{
    Aggregate, Clock, Reading, Sample, SignalName, StampedBy, Timestamp, VehicleId, VehiclePrefix,
};
use crate::upkeep::{self, Upkeep};

#[derive(Debug)]
struct Entry {
    last_seen: Timestamp,
    /// The vehicle's rate-limit state, here so that one lookup serves the
    /// limit and the write (see `domain::rate`).
    rate: RateState,
    /// The vehicle's signals, in a list rather than a map: a vehicle has a few
    /// signals, and a short list is one allocation, one place in memory to
    /// fetch for a fleet that does not fit in the cache, and searched faster
    /// than a hash is computed.
    signals: Vec<Signal>,
}

/// One signal of a vehicle.
#[derive(Debug)]
struct Signal {
    name: SignalName,
    window: Window,
    /// Samples ever accepted.
    total: u64,
    /// The window's aggregate, computed whenever the window changes: `/collect`,
    /// the call phones repeat without pause, then reads this and not the
    /// window, which for a fleet is one more fetch from memory per signal.
    aggregate: Option<Aggregate>,
}

impl Entry {
    fn signal(&self, name: &SignalName) -> Option<&Signal> {
        self.signals.iter().find(|signal| signal.name == *name)
    }

    /// The index of `name`'s window, made empty if the vehicle has none yet.
    fn signal_index(&mut self, name: &SignalName) -> usize {
        match self.signals.iter().position(|signal| signal.name == *name) {
            Some(index) => index,
            None => {
                self.signals.push(Signal {
                    name: name.clone(),
                    window: Window::default(),
                    total: 0,
                    aggregate: None,
                });
                self.signals.len() - 1
            }
        }
    }
}

#[derive(Debug)]
struct Shared {
    limits: StoreLimits,
    vehicles: Mutex<HashMap<VehicleId, Entry>>,
    /// Where writes are announced.
    feed: MemoryFeed,
}

impl Shared {
    fn vehicles(&self) -> MutexGuard<'_, HashMap<VehicleId, Entry>> {
        self.vehicles.lock().expect("memory store lock poisoned")
    }
}

/// The in-memory store. Cheap to clone: clones share the same data.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

impl MemoryStore {
    /// An empty store. Its retention sweep is its [`Store::upkeep`], which
    /// the service starts.
    pub fn new(limits: StoreLimits) -> Self {
        let vehicles = Mutex::new(HashMap::new());
        Self { shared: Arc::new(Shared { limits, vehicles, feed: MemoryFeed::new() }) }
    }

    /// The feed on which this store announces its writes.
    pub fn feed(&self) -> MemoryFeed {
        self.shared.feed.clone()
    }

    /// Forgets every vehicle last seen before `cutoff`; returns how many.
    pub fn forget_silent_since(&self, cutoff: Timestamp) -> usize {
        self.shared.forget_silent_since(cutoff)
    }
}

impl Shared {
    fn forget_silent_since(&self, cutoff: Timestamp) -> usize {
        let mut vehicles = self.vehicles();
        let before = vehicles.len();
        vehicles.retain(|_, entry| entry.last_seen >= cutoff);
        before - vehicles.len()
    }

    /// The retention sweep: forgets the vehicles silent for longer than the
    /// retention period.
    fn sweep(&self, clock: &Clock) {
        let retention = i64::try_from(self.limits.retention.as_micros()).unwrap_or(i64::MAX);
        let forgotten = self.forget_silent_since(clock.now().plus_micros(-retention));
        if forgotten > 0 {
            tracing::debug!(forgotten, "retention sweep forgot silent vehicles");
        }
    }
}

/// A vehicle's place in the store's walk order: a hash of its id, the same in
/// every call of one process (std's SipHash with fixed keys), which is as long
/// as this store's cursors need to mean anything.
fn walk_position(vehicle: &VehicleId) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    vehicle.as_str().hash(&mut hasher);
    hasher.finish()
}

impl MemoryStore {
    /// `record`, if `limit` (a quota and the time now) admits the readings.
    fn record_limited(
        &self,
        vehicle: &VehicleId,
        readings: &[Reading],
        received_at: Timestamp,
        limit: Option<(&Quota, u64)>,
    ) -> Result<Result<(), Exceeded>, StoreError> {
        let capacity = self.shared.limits.window;
        let max_vehicles = self.shared.limits.max_vehicles;
        let weight = weight(readings.len());
        // The limit (if any) against a vehicle's rate state, taking from it.
        let admit = |rate: &mut RateState| match limit {
            Some((quota, now)) => quota.check(rate, weight, now),
            None => Ok(()),
        };
        let mut vehicles = self.shared.vehicles();
        // Look up before inserting: `entry` would copy the id on every write.
        let entry = match vehicles.get_mut(vehicle) {
            Some(entry) => {
                if let Err(exceeded) = admit(&mut entry.rate) {
                    return Ok(Err(exceeded));
                }
                entry.last_seen = entry.last_seen.max(received_at);
                entry
            }
            None => {
                let mut rate = RateState::default();
                if let Err(exceeded) = admit(&mut rate) {
                    return Ok(Err(exceeded));
                }
                if let Some(max) = max_vehicles.filter(|&max| vehicles.len() as u64 >= max) {
                    return Err(StoreError::Full(format!(
                        "vehicle {vehicle} is new, and this service holds at most {max} vehicles \
(TRIBUTARY_MAX_VEHICLES); vehicles it holds keep working, and a silent vehicle is forgotten \
after the retention period"
                    )));
                }
                vehicles.entry(vehicle.clone()).or_insert(Entry {
                    last_seen: received_at,
                    rate,
                    signals: Vec::new(),
                })
            }
        };
        // Each signal's floor as the batch found it (see `Window::floor`), by index.
        let mut floors: Vec<(usize, Option<Timestamp>)> = Vec::new();
        for reading in readings {
            let index = entry.signal_index(&reading.signal);
            let Signal { window, total, .. } = &mut entry.signals[index];
            let floor = match floors.iter().find(|(seen, _)| *seen == index) {
                Some(&(_, floor)) => floor,
                None => {
                    let floor = window.floor(capacity);
                    floors.push((index, floor));
                    floor
                }
            };
            let sample = Sample { at: reading.at, value: reading.value };
            // A superseded reading stamped by the server is new (the server
            // never reuses a timestamp) but too old for the window; one stamped
            // by the device may be a resend, so it is not counted again.
            match window.insert(sample, floor) {
                Inserted::New => *total += 1,
                Inserted::Superseded if reading.stamped_by == StampedBy::Server => *total += 1,
                Inserted::Replaced | Inserted::Superseded => {}
            }
        }
        // Trim once per batch, after every insert, as the Redis script does;
        // only the windows written to can have grown.
        for &(index, _) in &floors {
            let signal = &mut entry.signals[index];
            signal.window.trim(capacity);
            signal.aggregate = signal.window.aggregate();
        }
        drop(vehicles);
        self.shared.feed.announce(vehicle, readings.iter().map(|r| &r.signal));
        Ok(Ok(()))
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn record(
        &self,
        vehicle: &VehicleId,
        readings: &[Reading],
        received_at: Timestamp,
    ) -> Result<(), StoreError> {
        let recorded = self.record_limited(vehicle, readings, received_at, None)?;
        recorded.expect("no limit, no refusal");
        Ok(())
    }

    fn keeps_rate_state(&self) -> bool {
        true
    }

    async fn record_within(
        &self,
        vehicle: &VehicleId,
        readings: &[Reading],
        received_at: Timestamp,
        quota: &Quota,
        now: u64,
    ) -> Result<Result<(), Exceeded>, StoreError> {
        self.record_limited(vehicle, readings, received_at, Some((quota, now)))
    }

    async fn history(
        &self,
        vehicle: &VehicleId,
        signals: &[SignalName],
    ) -> Result<Option<VehicleHistory>, StoreError> {
        let vehicles = self.shared.vehicles();
        let Some(entry) = vehicles.get(vehicle) else {
            return Ok(None);
        };
        let signals = signals
            .iter()
            .filter_map(|name| {
                let signal = entry.signal(name)?;
                let history =
                    SignalHistory { samples: signal.window.newest_first(), total: signal.total };
                (!history.samples.is_empty()).then(|| (name.clone(), history))
            })
            .collect::<BTreeMap<_, _>>();
        Ok(Some(VehicleHistory { last_seen: entry.last_seen, signals }))
    }

    async fn aggregates(
        &self,
        vehicle: &VehicleId,
        signals: &[SignalName],
    ) -> Result<Vec<(SignalName, Aggregate)>, StoreError> {
        let vehicles = self.shared.vehicles();
        let Some(entry) = vehicles.get(vehicle) else {
            return Ok(Vec::new());
        };
        Ok(signals
            .iter()
            .filter_map(|name| Some((name.clone(), entry.signal(name)?.aggregate?)))
            .collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn vehicle_count(&self) -> Result<u64, StoreError> {
        Ok(self.shared.vehicles().len() as u64)
    }

    /// Walks the vehicles in the order of a hash of their id, as Redis' `SCAN`
    /// walks its table: a position (a hash) stays valid however the map
    /// changes, so one cursor shape serves both stores. A page costs one pass
    /// over the map, which for the fleets this store is for is cheap.
    async fn list_vehicles(
        &self,
        prefix: &VehiclePrefix,
        cursor: &VehicleCursor,
        limit: usize,
    ) -> Result<VehiclePage, StoreError> {
        let vehicles = self.shared.vehicles();
        let seen = |vehicle: &VehicleId, entry: &Entry| VehicleSeen {
            vehicle: vehicle.clone(),
            last_seen: entry.last_seen,
        };
        // As on Redis: the waiting ids outside the prefix drop out, and those
        // of vehicles gone since take their place on the page but list nothing.
        let pending: Vec<&VehicleId> =
            cursor.pending.iter().filter(|vehicle| prefix.matches(vehicle)).collect();
        let (now, later) = pending.split_at(pending.len().min(limit));
        let mut page: Vec<VehicleSeen> =
            now.iter().filter_map(|&vehicle| Some(seen(vehicle, vehicles.get(vehicle)?))).collect();
        if !later.is_empty() {
            let pending = later.iter().map(|&vehicle| vehicle.clone()).collect();
            let next = VehicleCursor { pending, resume: cursor.resume };
            return Ok(VehiclePage::newest_first(page, Some(next)));
        }
        let Some(from) = cursor.resume else {
            return Ok(VehiclePage::newest_first(page, None));
        };
        let mut found: Vec<(u64, &VehicleId, &Entry)> = vehicles
            .iter()
            .filter(|(vehicle, _)| prefix.matches(vehicle))
            .map(|(vehicle, entry)| (walk_position(vehicle), vehicle, entry))
            .filter(|&(position, ..)| position >= from)
            .collect();
        let room = limit - now.len();
        if found.len() <= room {
            page.extend(found.iter().map(|&(_, vehicle, entry)| seen(vehicle, entry)));
            return Ok(VehiclePage::newest_first(page, None));
        }
        if room == 0 {
            let next = VehicleCursor { pending: Vec::new(), resume: Some(from) };
            return Ok(VehiclePage::newest_first(page, Some(next)));
        }
        // The `room` first in walk order; the page ends after the last one's
        // position, so the others at that same position (a hash collision) wait
        // in the cursor.
        found.select_nth_unstable_by_key(room - 1, |&(position, vehicle, _)| (position, vehicle));
        let last = found[..room].iter().map(|&(position, ..)| position).max().unwrap_or(from);
        page.extend(found[..room].iter().map(|&(_, vehicle, entry)| seen(vehicle, entry)));
        let pending = found[room..]
            .iter()
            .filter(|&&(position, ..)| position == last)
            .map(|&(_, vehicle, _)| vehicle.clone())
            .collect();
        let next = VehicleCursor { pending, resume: last.checked_add(1) };
        let next = (!next.pending.is_empty() || next.resume.is_some()).then_some(next);
        Ok(VehiclePage::newest_first(page, next))
    }

    fn kind(&self) -> &'static str {
        "memory"
    }

    fn is_remote(&self) -> bool {
        false
    }

    /// The retention sweep, every `StoreLimits::expiry_slack`.
    fn upkeep(&self) -> Option<Upkeep> {
        let clock = Clock::new();
        let period = self.shared.limits.expiry_slack();
        Some(upkeep::every(period, &self.shared, move |shared| shared.sweep(&clock)))
    }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
