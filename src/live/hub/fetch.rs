//! The per-vehicle fetch task: touches and snapshot requests mark work on a
//! [`Watched`] vehicle, and one task at a time reads the summaries and hands
//! them to the vehicle's subscribers, retrying with backoff when reads fail.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::subscriber::Subscriber;
use super::{Shared, Signals};
use crate::domain::{SignalName, VehicleId};

/// A failed fetch is retried after this, doubling up to `RETRY_MAX`, for as
/// long as the vehicle has subscribers.
const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// One vehicle that local streams watch.
pub(super) struct Watched {
    pub(super) vehicle: VehicleId,
    /// Set once the feed delivers this vehicle's touches.
    pub(super) subscribed: OnceCell<()>,
    /// Whether `Feed::subscribe` was called, so that leaving calls `unsubscribe`
    /// even if the subscribing request was cancelled halfway.
    pub(super) feed_called: AtomicBool,
    pub(super) state: Mutex<WatchedState>,
}

#[derive(Default)]
pub(super) struct WatchedState {
    pub(super) subscribers: Vec<Arc<Subscriber>>,
    /// Signals touched since the last fetch began.
    pub(super) touched: BTreeSet<SignalName>,
    /// Whether some subscriber waits for a snapshot.
    pub(super) full_fetch: bool,
    /// Whether a fetch task runs.
    pub(super) fetching: bool,
}

impl Watched {
    pub(super) fn state(&self) -> MutexGuard<'_, WatchedState> {
        self.state.lock().expect("never poisoned: no panics inside")
    }

    pub(super) fn touch(self: &Arc<Self>, shared: &Arc<Shared>, signals: Vec<SignalName>) {
        let mut state = self.state();
        state.touched.extend(signals);
        self.kick(shared, &mut state);
    }

    /// Every subscriber gets a fresh snapshot.
    pub(super) fn resync(self: &Arc<Self>, shared: &Arc<Shared>) {
        let mut state = self.state();
        for subscriber in &state.subscribers {
            if subscriber.await_snapshot() {
                shared.metrics.resyncs.increment(1);
            }
        }
        state.full_fetch = true;
        self.kick(shared, &mut state);
    }

    pub(super) fn want_snapshot(self: &Arc<Self>, shared: &Arc<Shared>) {
        let mut state = self.state();
        state.full_fetch = true;
        self.kick(shared, &mut state);
    }

    /// Starts the fetch task unless it runs.
    fn kick(self: &Arc<Self>, shared: &Arc<Shared>, state: &mut WatchedState) {
        if !state.fetching {
            state.fetching = true;
            tokio::spawn(fetch_loop(shared.clone(), self.clone()));
        }
    }
}

/// Fetches what is touched, and snapshots, until there is nothing left to do.
async fn fetch_loop(shared: Arc<Shared>, watched: Arc<Watched>) {
    let mut retry = RETRY_MIN;
    loop {
        let (full, touched) = {
            let mut state = watched.state();
            if state.subscribers.is_empty() || (!state.full_fetch && state.touched.is_empty()) {
                state.fetching = false;
                state.full_fetch = false;
                state.touched.clear();
                return;
            }
            (std::mem::take(&mut state.full_fetch), std::mem::take(&mut state.touched))
        };
        let names: Vec<SignalName> = touched.iter().cloned().collect();
        let wanted = (!full).then_some(names.as_slice());
        match shared.source.summaries(&watched.vehicle, wanted).await {
            Ok(summaries) => {
                retry = RETRY_MIN;
                let summaries: Signals = summaries
                    .into_iter()
                    .map(|(name, summary)| (name, Arc::new(summary)))
                    .collect();
                let now = Instant::now();
                let state = watched.state();
                for subscriber in &state.subscribers {
                    subscriber.deliver(full, &summaries, &touched, now, &shared.metrics);
                }
            }
            Err(err) => {
                tracing::warn!(vehicle = %watched.vehicle, error = %err, retry_in = ?retry,
                    "cannot read a watched vehicle's summaries");
                {
                    let mut state = watched.state();
                    state.touched.extend(touched);
                    if full {
                        state.full_fetch = true;
                        for subscriber in &state.subscribers {
                            subscriber.fail_first_snapshot(&err.to_string());
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(retry) => {}
                    _ = shared.shutdown.cancelled() => {}
                }
                retry = (retry * 2).min(RETRY_MAX);
                if shared.shutdown.is_cancelled() {
                    watched.state().fetching = false;
                    return;
                }
            }
        }
    }
}
