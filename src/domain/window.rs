//! The window: the N newest readings of one signal by timestamp, and what is
//! computed over it. The memory store keeps its windows in a [`Window`]; the
//! Redis store keeps each as text in the vehicle's hash, merged and trimmed by
//! its Lua script (see `store/redis/window.rs`). Both compute their aggregates
//! with [`Aggregate::folding`] (the memory store when a window changes, Redis
//! on each read, walking the text newest first), and a property test
//! (`tests/api/store_properties.rs`) holds the two stores' windows, totals and
//! aggregates to each other, bit for bit.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Timestamp;

/// One stored value of one signal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    pub at: Timestamp,
    pub value: f64,
}

/// Aggregates over a window of samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Aggregate {
    pub current: f64,
    pub average: f64,
    pub min: f64,
    pub max: f64,
    pub count: usize,
    pub updated_at: Timestamp,
}

impl Aggregate {
    /// Aggregates samples given newest first; `None` for an empty window.
    pub fn of(newest_first: &[Sample]) -> Option<Self> {
        Self::of_iter(newest_first.iter().copied())
    }

    /// The same, over samples given newest first by an iterator.
    pub fn of_iter(mut newest_first: impl Iterator<Item = Sample>) -> Option<Self> {
        let newest = newest_first.next()?;
        Some(Self::folding(newest, newest_first.map(|s| s.value)))
    }

    /// The same, given the newest sample and then the values of the older
    /// ones, newest first, in one walk: every figure is its own fold in the
    /// same order, so the figures are the same to the last bit whatever holds
    /// the samples (the memory store's windows, the Redis store's text).
    pub fn folding(newest: Sample, older: impl Iterator<Item = f64>) -> Self {
        // `Sum for f64` starts at -0.0, and -0.0 + x is x.
        let (mut sum, mut count) = (newest.value, 1_usize);
        let mut min = newest.value.min(f64::INFINITY);
        let mut max = newest.value.max(f64::NEG_INFINITY);
        for value in older {
            sum += value;
            count += 1;
            min = min.min(value);
            max = max.max(value);
        }
        Self {
            current: newest.value,
            average: sum / count as f64,
            min,
            max,
            count,
            updated_at: newest.at,
        }
    }
}

/// What `Window::insert` did with a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// A timestamp not seen before: it counts towards the total.
    New,
    /// A resend: the value replaced the one with the same timestamp.
    Replaced,
    /// Older than a full window: dropped.
    Superseded,
}

/// An in-memory window: samples keyed by timestamp, so a resent reading replaces
/// the one it repeats and the order is by time, not by arrival.
#[derive(Debug, Clone, Default)]
pub struct Window {
    samples: BTreeMap<Timestamp, f64>,
}

impl Window {
    /// The timestamp below which a new sample is superseded: the oldest of a
    /// full window. Taken once per batch, before its first insert, so that the
    /// order of readings within a batch cannot change what is kept or counted.
    pub fn floor(&self, capacity: usize) -> Option<Timestamp> {
        (self.samples.len() >= capacity)
            .then(|| self.samples.first_key_value())
            .flatten()
            .map(|(&at, _)| at)
    }

    /// Inserts a sample. One with the timestamp of a sample already kept replaces
    /// it; one older than `floor` (see `Window::floor`) is superseded and dropped,
    /// so that a resent batch larger than the window counts nothing twice. The
    /// Redis script does the same.
    pub fn insert(&mut self, sample: Sample, floor: Option<Timestamp>) -> Inserted {
        if let Some(value) = self.samples.get_mut(&sample.at) {
            *value = sample.value;
            return Inserted::Replaced;
        }
        if floor.is_some_and(|floor| sample.at < floor) {
            return Inserted::Superseded;
        }
        self.samples.insert(sample.at, sample.value);
        Inserted::New
    }

    /// Drops the oldest samples beyond `capacity`. Called once per batch, after
    /// all its inserts, as the Redis script does, so both stores count alike.
    pub fn trim(&mut self, capacity: usize) {
        while self.samples.len() > capacity {
            self.samples.pop_first();
        }
    }

    pub fn newest_first(&self) -> Vec<Sample> {
        self.newest().collect()
    }

    /// `Aggregate::of(&self.newest_first())`, without copying the samples out.
    pub fn aggregate(&self) -> Option<Aggregate> {
        Aggregate::of_iter(self.newest())
    }

    fn newest(&self) -> impl Iterator<Item = Sample> + Clone {
        self.samples.iter().rev().map(|(&at, &value)| Sample { at, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(micros: i64) -> Timestamp {
        Timestamp::from_micros(micros).unwrap()
    }

    #[test]
    fn a_sample_older_than_a_full_window_is_superseded() {
        let mut window = Window::default();
        assert_eq!(window.floor(2), None);
        for t in [5, 6] {
            assert_eq!(window.insert(Sample { at: at(t), value: 1.0 }, None), Inserted::New);
        }
        let floor = window.floor(2);
        assert_eq!(floor, Some(at(5)));
        assert_eq!(window.insert(Sample { at: at(4), value: 1.0 }, floor), Inserted::Superseded);
        assert_eq!(window.insert(Sample { at: at(7), value: 1.0 }, floor), Inserted::New);
        window.trim(2);
        let kept: Vec<_> = window.newest_first().iter().map(|s| s.at).collect();
        assert_eq!(kept, [at(7), at(6)]);
    }

    #[test]
    fn aggregate_of_nothing_is_none() {
        assert_eq!(Aggregate::of(&[]), None);
    }

    #[test]
    fn aggregate_takes_current_from_the_newest() {
        let samples = [
            Sample { at: at(3), value: 90.0 },
            Sample { at: at(2), value: 80.0 },
            Sample { at: at(1), value: 100.0 },
        ];
        let agg = Aggregate::of(&samples).unwrap();
        assert_eq!(agg.current, 90.0);
        assert_eq!(agg.average, 90.0);
        assert_eq!((agg.min, agg.max, agg.count), (80.0, 100.0, 3));
        assert_eq!(agg.updated_at, at(3));
    }

    #[test]
    fn window_keeps_the_newest_by_timestamp_not_by_arrival() {
        let mut window = Window::default();
        for t in [5, 1, 9, 3, 7, 2] {
            let sample = Sample { at: at(t), value: t as f64 };
            let floor = window.floor(3);
            window.insert(sample, floor);
            window.trim(3);
        }
        let kept: Vec<_> = window.newest_first().iter().map(|s| s.value).collect();
        assert_eq!(kept, [9.0, 7.0, 5.0]);
    }

    #[test]
    fn a_resent_sample_replaces_instead_of_duplicating() {
        let mut window = Window::default();
        let first = Sample { at: at(1), value: 1.0 };
        let resent = Sample { at: at(1), value: 2.0 };
        assert_eq!(window.insert(first, None), Inserted::New);
        assert_eq!(window.insert(resent, None), Inserted::Replaced);
        assert_eq!(window.newest_first(), [Sample { at: at(1), value: 2.0 }]);
    }
}
