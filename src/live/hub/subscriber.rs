//! A stream's side of the hub: the [`Subscriber`] inbox that fan-out fills
//! without waiting (at most one pending summary per signal), and the
//! [`Subscription`] that drains it into numbered events, honouring
//! `min_interval` and shutdown.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{LiveEvent, Registration, Signals, StreamEvent};
use crate::domain::{SignalName, VehicleId};
use crate::live::metrics::LiveMetrics;

/// One stream's side of the hub.
pub(super) struct Subscriber {
    pub(super) filter: Option<BTreeSet<SignalName>>,
    pub(super) min_interval: Option<Duration>,
    pub(super) inbox: Mutex<Inbox>,
    pub(super) notify: Notify,
}

pub(super) struct Inbox {
    /// Waiting for a snapshot: updates read before it are older than it, and dropped.
    pub(super) awaiting_snapshot: bool,
    /// No snapshot has been delivered yet (the stream is being opened).
    pub(super) first: bool,
    /// A snapshot not yet taken; later updates merge into it.
    pub(super) snapshot: Option<Signals>,
    pub(super) pending: Signals,
    pub(super) skipped: u64,
    /// When the next update may go (`min_interval` after the last one).
    pub(super) next_update_at: Option<Instant>,
    /// Why the first snapshot could not be read.
    pub(super) failed: Option<String>,
}

impl Subscriber {
    pub(super) fn new(
        filter: Option<BTreeSet<SignalName>>,
        min_interval: Option<Duration>,
    ) -> Self {
        Self {
            filter,
            min_interval: min_interval.filter(|interval| !interval.is_zero()),
            inbox: Mutex::new(Inbox {
                awaiting_snapshot: true,
                first: true,
                snapshot: None,
                pending: Signals::new(),
                skipped: 0,
                next_update_at: None,
                failed: None,
            }),
            notify: Notify::new(),
        }
    }

    pub(super) fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().expect("never poisoned: no panics inside")
    }

    fn wants(&self, signal: &SignalName) -> bool {
        self.filter.as_ref().is_none_or(|filter| filter.contains(signal))
    }

    /// Marks the subscriber as waiting for a snapshot; `false` if it already was.
    pub(super) fn await_snapshot(&self) -> bool {
        !std::mem::replace(&mut self.inbox().awaiting_snapshot, true)
    }

    pub(super) fn fail_first_snapshot(&self, reason: &str) {
        let mut inbox = self.inbox();
        if inbox.first {
            inbox.failed = Some(reason.to_owned());
            drop(inbox);
            self.notify.notify_one();
        }
    }

    /// Hands over what a fetch read: a snapshot if this subscriber waits for
    /// one and the fetch was full, else the `touched` signals as an update.
    pub(super) fn deliver(
        &self,
        full: bool,
        summaries: &Signals,
        touched: &BTreeSet<SignalName>,
        now: Instant,
        metrics: &LiveMetrics,
    ) {
        let mut inbox = self.inbox();
        if inbox.awaiting_snapshot {
            if !full {
                return;
            }
            let snapshot = summaries
                .iter()
                .filter(|(name, _)| self.wants(name))
                .map(|(name, summary)| (name.clone(), summary.clone()))
                .collect();
            inbox.snapshot = Some(snapshot);
            inbox.pending.clear();
            inbox.skipped = 0;
            inbox.awaiting_snapshot = false;
            inbox.first = false;
            drop(inbox);
            self.notify.notify_one();
            return;
        }
        let mut changed = false;
        for (name, summary) in summaries {
            if !touched.contains(name) || !self.wants(name) {
                continue;
            }
            changed = true;
            if let Some(snapshot) = inbox.snapshot.as_mut() {
                snapshot.insert(name.clone(), summary.clone());
            } else if inbox.pending.insert(name.clone(), summary.clone()).is_some() {
                inbox.skipped += 1;
                if inbox.next_update_at.is_some_and(|at| now < at) {
                    metrics.coalesced.increment(1);
                } else {
                    metrics.skipped.increment(1);
                }
            }
        }
        drop(inbox);
        if changed {
            self.notify.notify_one();
        }
    }
}

/// One open stream: its events, in order, from [`Subscription::next`]. Holds
/// one of the hub's stream permits until dropped.
pub struct Subscription {
    pub(super) registration: Registration,
    pub(super) shutdown: CancellationToken,
    pub(super) metrics: LiveMetrics,
    pub(super) _permit: OwnedSemaphorePermit,
    pub(super) last_id: u64,
    pub(super) finished: bool,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.metrics.streams_open.decrement(1.0);
    }
}

impl Subscription {
    pub fn vehicle(&self) -> &VehicleId {
        &self.registration.watched.vehicle
    }

    /// The next event: the snapshot first, then updates as signals change,
    /// and `Shutdown` last when the hub shuts down; `None` after that.
    pub async fn next(&mut self) -> Option<StreamEvent> {
        if self.finished {
            return None;
        }
        let subscriber = self.registration.subscriber.clone();
        loop {
            if self.shutdown.is_cancelled() {
                self.finished = true;
                return Some(self.emit(LiveEvent::Shutdown));
            }
            let wait_until = {
                let mut inbox = subscriber.inbox();
                if let Some(snapshot) = inbox.snapshot.take() {
                    drop(inbox);
                    return Some(self.emit(LiveEvent::Snapshot(snapshot)));
                }
                if inbox.pending.is_empty() {
                    None
                } else {
                    let now = Instant::now();
                    match inbox.next_update_at {
                        Some(at) if now < at => Some(at),
                        _ => {
                            let signals = std::mem::take(&mut inbox.pending);
                            let skipped = std::mem::take(&mut inbox.skipped);
                            inbox.next_update_at = subscriber.min_interval.map(|i| now + i);
                            drop(inbox);
                            return Some(self.emit(LiveEvent::Update { signals, skipped }));
                        }
                    }
                }
            };
            let interval_over = async {
                match wait_until {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => {}
                _ = subscriber.notify.notified() => {}
                _ = interval_over => {}
            }
        }
    }

    fn emit(&mut self, event: LiveEvent) -> StreamEvent {
        let counter = match event {
            LiveEvent::Snapshot(_) => &self.metrics.snapshots,
            LiveEvent::Update { .. } => &self.metrics.updates,
            LiveEvent::Shutdown => &self.metrics.shutdowns,
        };
        counter.increment(1);
        self.last_id += 1;
        StreamEvent { id: self.last_id, event }
    }

    /// The events as a `Stream`, for bodies such as SSE.
    pub fn into_stream(self) -> impl Stream<Item = StreamEvent> + Send + 'static {
        futures_util::stream::unfold(self, |mut subscription| async move {
            let event = subscription.next().await?;
            Some((event, subscription))
        })
    }
}
