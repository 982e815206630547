//! Time: readings are ordered by a timestamp in microseconds since the Unix epoch.
//!
//! Microseconds fit exactly in a Redis sorted-set score (an f64 holds integers up
//! to 2^53, about year 2255 in microseconds), so the same number orders readings in
//! both stores. The server's own clock hands out strictly increasing timestamps, so
//! two readings stamped by the server never collide and replace each other.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// How far ahead of the server's clock a device timestamp may be.
pub const MAX_FUTURE_MICROS: i64 = 5 * 60 * 1_000_000;

/// 2000-01-01T00:00:00Z in milliseconds: no telemetry reading is older.
pub const MILLIS_2000: i64 = 946_684_800_000;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Microseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Latest instant a timestamp may name: 2^53 - 1 microseconds (year 2255),
    /// the largest integer a Redis sorted-set score (an f64) holds exactly.
    const MAX_MICROS: i64 = (1 << 53) - 1;

    pub fn from_micros(micros: i64) -> Option<Self> {
        (0..=Self::MAX_MICROS).contains(&micros).then_some(Self(micros))
    }

    pub fn from_millis(millis: i64) -> Option<Self> {
        millis.checked_mul(1000).and_then(Self::from_micros)
    }

    /// Parses an RFC 3339 date-time such as `2026-11-27T18:00:00.250Z`.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        let micros = i64::try_from(at.unix_timestamp_nanos() / 1000).ok()?;
        Self::from_micros(micros)
    }

    pub fn as_micros(self) -> i64 {
        self.0
    }

    pub fn as_millis(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// RFC 3339 in UTC, with as many fractional digits as needed.
    pub fn to_rfc3339(self) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1000)
            .ok()
            .and_then(|at| at.format(&Rfc3339).ok())
            .unwrap_or_default()
    }

    pub fn plus_micros(self, micros: i64) -> Self {
        Self(self.0.saturating_add(micros))
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

/// The server's clock. Cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct Clock {
    last_issued: AtomicI64,
}

impl Clock {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current wall-clock time.
    pub fn now(&self) -> Timestamp {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp(micros)
    }

    /// A receive timestamp for a reading that carries none: the current time, or
    /// one microsecond after the last one issued if the clock has not moved on, so
    /// that concurrent readings stamped by this process never share a timestamp.
    pub fn stamp(&self) -> Timestamp {
        let now = self.now().0;
        let previous = self
            .last_issued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| Some(now.max(last + 1)))
            .unwrap_or_else(|last| last);
        Timestamp(now.max(previous + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_strictly_increasing_even_within_one_microsecond() {
        let clock = Clock::new();
        let stamps: Vec<_> = (0..10_000).map(|_| clock.stamp()).collect();
        assert!(stamps.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn stamps_from_many_threads_are_unique() {
        let clock = std::sync::Arc::new(Clock::new());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let clock = clock.clone();
                std::thread::spawn(move || (0..5_000).map(|_| clock.stamp()).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<_> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    #[test]
    fn rfc3339_round_trips_with_microseconds() {
        let at = Timestamp::parse_rfc3339("2026-11-27T18:00:00.123456Z").unwrap();
        assert_eq!(at.as_micros() % 1_000_000, 123_456);
        assert_eq!(at.to_rfc3339(), "2026-11-27T18:00:00.123456Z");
        let offset = Timestamp::parse_rfc3339("2026-11-27T19:00:00.123456+01:00").unwrap();
        assert_eq!(offset, at);
    }

    #[test]
    fn rejects_out_of_range_and_malformed_times() {
        assert_eq!(Timestamp::from_millis(-1), None);
        assert_eq!(Timestamp::from_millis(i64::MAX), None);
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
        assert_eq!(Timestamp::parse_rfc3339("2026-11-27"), None);
        assert_eq!(Timestamp::from_millis(1_000).unwrap().as_micros(), 1_000_000);
    }
}
