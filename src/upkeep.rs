//! Background upkeep: the periodic work some components need while they are
//! in use (the memory store's retention sweep, the metrics' histogram upkeep,
//! the rate limiter's cleanup of quiet vehicles).
//!
//! A component does not start its own task: it hands an [`Upkeep`] to whoever
//! builds the service (`startup`), which starts them all in one place, the
//! same way. So building a component never depends on whether a runtime
//! happens to be running, and tests that build one get no stray tasks. Each
//! task holds only a weak reference and ends when its component is dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

/// A background task, ready to be spawned.
pub type Upkeep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs `work` on `target` every `period` (the first time one period from
/// now), for as long as `target` is alive elsewhere.
pub fn every<T: Send + Sync + 'static>(
    period: Duration,
    target: &Arc<T>,
    work: impl Fn(&T) + Send + 'static,
) -> Upkeep {
    let target = Arc::downgrade(target);
    Box::pin(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // An interval's first tick completes at once.
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(target) = target.upgrade() else { return };
            work(&target);
        }
    })
}

/// Starts every task of `upkeep` on the current runtime.
pub fn spawn_all(upkeep: impl IntoIterator<Item = Upkeep>) {
    for task in upkeep {
        tokio::spawn(task);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn work_runs_every_period_until_its_target_is_dropped() {
        let target = Arc::new(AtomicU32::new(0));
        let task = tokio::spawn(every(Duration::from_secs(5), &target, |n| {
            n.fetch_add(1, Ordering::Relaxed);
        }));
        tokio::time::sleep(Duration::from_millis(12_500)).await;
        assert_eq!(target.load(Ordering::Relaxed), 2);
        drop(target);
        tokio::time::timeout(Duration::from_secs(6), task).await.unwrap().unwrap();
    }
}
