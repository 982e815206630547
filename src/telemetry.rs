//! Logging setup: human-readable by default, one JSON object per line when
//! asked, and the access log (one line per request, see `http::access`).
//!
//! Every line goes through tracing-appender's lossy non-blocking writer: a
//! thread of its own writes them to stderr, in batches, and a request never
//! waits for it. When stderr does not keep up (or nobody reads it: a full pipe
//! once froze the whole server), lines are dropped and counted
//! ([`dropped_lines`], `tributary_log_lines_dropped_total`, and a warning every
//! ten seconds while it goes on) rather than queued without bound.

use std::cell::RefCell;
use std::io::{BufWriter, IsTerminal, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};
use crate::upkeep::Upkeep;

/// Lines waiting for the writer thread at most; past this they are dropped.
const BUFFERED_LINES: usize = 32 * 1024;

/// Where the access log goes, once `init` has installed the logger with the
/// access log on.
pub struct AccessSink {
    pub format: LogFormat,
    writer: NonBlocking,
}

impl AccessSink {
    /// Hands one whole line (with its newline) to the writer thread, or drops
    /// it (counted) when the thread is that far behind. Never blocks.
    pub fn write_line(&self, line: &[u8]) {
        // `write` needs the writer mutably: each thread keeps its own clone
        // (there is one sink), rather than cloning it, and its shared
        // counters, for every line.
        thread_local! {
            static WRITER: RefCell<Option<NonBlocking>> = const { RefCell::new(None) };
        }
        WRITER.with_borrow_mut(|writer| {
            // One `write` is one message to the thread, so a line is never split.
            let _ = writer.get_or_insert_with(|| self.writer.clone()).write(line);
        });
    }
}

static ACCESS: OnceLock<AccessSink> = OnceLock::new();
static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// The access log's sink, if the logger is installed and the access log on.
pub fn access_sink() -> Option<&'static AccessSink> {
    ACCESS.get()
}

/// Log lines dropped so far because the writer fell behind.
pub fn dropped_lines() -> u64 {
    DROPPED.get().map_or(0, |counter| counter.dropped_lines() as u64)
}

/// Flushes what is still buffered when dropped: hold it until the program ends.
#[must_use = "the last log lines are lost if the guard is dropped early"]
pub struct LogGuard(#[allow(dead_code)] WorkerGuard);

/// Installs the global subscriber. Logs go to stderr, so a command's own output
/// (the simulator's summary) stays clean on stdout.
pub fn init(settings: &LogSettings) -> anyhow::Result<LogGuard> {
    let filter = EnvFilter::try_new(&settings.filter).map_err(|e| {
        anyhow::anyhow!("TRIBUTARY_LOG={:?} is not a valid filter: {e}", settings.filter)
    })?;
    let ansi = std::io::stderr().is_terminal();
    // Buffered: the thread flushes whenever it has written every line waiting,
    // so a burst is a few large writes rather than a system call per line.
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("tributary-log")
        .finish(BufWriter::with_capacity(64 * 1024, std::io::stderr()));
    let _ = DROPPED.set(writer.error_counter());
    if settings.access_log.is_on() {
        let _ = ACCESS.set(AccessSink { format: settings.format, writer: writer.clone() });
    }
    // Colours only on a terminal: escape codes in a log file or `docker logs` are noise.
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    let installed = match settings.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))?;
    Ok(LogGuard(guard))
}

/// A warning every ten seconds in which log lines were dropped, with how many.
pub fn upkeep() -> Upkeep {
    Box::pin(async {
        if DROPPED.get().is_none() {
            return; // No logger of ours: nothing can be dropped.
        }
        let mut reported = 0;
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        tick.tick().await;
        loop {
            tick.tick().await;
            let dropped = dropped_lines();
            if dropped > reported {
                tracing::warn!(
                    dropped = dropped - reported,
                    total = dropped,
                    "log lines dropped: stderr is not keeping up (is anything reading it?)"
                );
                reported = dropped;
            }
        }
    })
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
