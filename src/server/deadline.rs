//! The time a client has to send a request's headers, kept per connection
//! rather than per request.
//!
//! hyper can enforce it itself (`header_read_timeout`), but it sets up a fresh
//! timer for every request: an allocation and a registration in the runtime's
//! timer wheel, which showed in the profile of `bench/run` (figures in
//! `docs/performance.md`). Here each connection has one deadline, an atomic number that a
//! request moves with two stores, and one timer that wakes only when the
//! deadline it was set for may have passed: once per `TRIBUTARY_CLIENT_TIMEOUT`
//! on a busy connection, instead of once per request. A request costs an
//! atomic store when its headers arrive, and a clock read and an atomic store
//! when its answer is ready.
//!
//! The deadline runs from when the connection opens, and from when each
//! answer is ready to be written: it covers writing the answer (a client that
//! does not read its answer is cut off too, where hyper alone would wait for
//! ever), then the wait for the next request's headers (so it is also the idle
//! time allowed to a keep-alive connection). It is total, not per byte: a
//! client trickling its headers is cut off all the same. While a request is
//! being handled it does not run; its body has its own deadline (see
//! `http::body`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Marks that a request is being served: no deadline runs.
const SERVING: u64 = u64::MAX;

#[derive(Debug)]
pub struct HeaderDeadline {
    /// The origin of `deadline`, which is in microseconds since then.
    opened: Instant,
    timeout: Duration,
    deadline: AtomicU64,
}

impl HeaderDeadline {
    /// A connection that has just opened: its first request's headers are due
    /// within `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let deadline = AtomicU64::new(micros(timeout));
        Self { opened: Instant::now(), timeout, deadline }
    }

    /// A request's headers have arrived.
    pub fn request_started(&self) {
        self.deadline.store(SERVING, Ordering::Relaxed);
    }

    /// A request's answer is ready: it must be written, and the next request's
    /// headers received, within the timeout.
    pub fn request_finished(&self) {
        let due = micros(self.opened.elapsed().saturating_add(self.timeout));
        self.deadline.store(due, Ordering::Relaxed);
    }

    /// Completes when the connection has waited for headers past its deadline.
    pub async fn expired(&self) {
        loop {
            let wake_at = match self.deadline.load(Ordering::Relaxed) {
                // A request's answer will set a deadline no sooner than this.
                SERVING => later(Instant::now(), self.timeout),
                due => {
                    let due = later(self.opened, Duration::from_micros(due));
                    if Instant::now() >= due {
                        return;
                    }
                    due
                }
            };
            tokio::time::sleep_until(wake_at).await;
        }
    }
}

/// `from + by`, or a year on for a timeout too large to add.
fn later(from: Instant, by: Duration) -> Instant {
    from.checked_add(by).unwrap_or_else(|| from + Duration::from_secs(365 * 24 * 3600))
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(SERVING - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_deadline_runs_only_while_waiting_for_headers() {
        let timeout = Duration::from_secs(10);
        let deadline = HeaderDeadline::new(timeout);
        let opened = Instant::now();
        deadline.expired().await;
        assert_eq!(opened.elapsed(), timeout, "a connection that sends nothing");

        // A request served for longer than the timeout is not cut off, and the
        // next one's headers get the whole timeout from the end of the answer.
        let deadline = std::sync::Arc::new(HeaderDeadline::new(timeout));
        deadline.request_started();
        let expired = tokio::spawn({
            let deadline = deadline.clone();
            async move { deadline.expired().await }
        });
        tokio::time::sleep(3 * timeout).await;
        assert!(!expired.is_finished(), "the deadline ran while a request was served");
        let answered = Instant::now();
        deadline.request_finished();
        expired.await.unwrap();
        assert_eq!(answered.elapsed(), timeout);
    }
}
