//! Logging setup: human-readable by default, one JSON object per line when asked.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber. Logs go to stderr, so a command's own output
/// (the simulator's summary) stays clean on stdout.
pub fn init(settings: &LogSettings) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&settings.filter).map_err(|e| {
        anyhow::anyhow!("TRIBUTARY_LOG={:?} is not a valid filter: {e}", settings.filter)
    })?;
    // Colours only on a terminal: escape codes in a log file or `docker logs` are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match settings.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}

/// Lets one log line through per second and counts the rest, for events that
/// every request can hit at once (Redis down, load shed): a failure at 10,000
/// requests a second then logs one line a second, not 10,000, and logging never
/// becomes the next bottleneck.
pub struct Throttle {
    next_at_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl Throttle {
    pub const fn new() -> Self {
        Self { next_at_ms: AtomicU64::new(0), suppressed: AtomicU64::new(0) }
    }

    /// `Some(events suppressed since the last line)` if this one should be logged.
    pub fn allow(&self) -> Option<u64> {
        static START: OnceLock<Instant> = OnceLock::new();
        let now = START.get_or_init(Instant::now).elapsed().as_millis() as u64;
        let next = self.next_at_ms.load(Ordering::Relaxed);
        if now >= next
            && self
                .next_at_ms
                .compare_exchange(next, now + 1000, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Throttle;

    #[test]
    fn a_throttle_lets_one_event_through_and_counts_the_rest() {
        let throttle = Throttle::new();
        assert_eq!(throttle.allow(), Some(0));
        assert_eq!(throttle.allow(), None);
        assert_eq!(throttle.allow(), None);
        assert_eq!(throttle.suppressed.load(std::sync::atomic::Ordering::Relaxed), 2);
    }
}
