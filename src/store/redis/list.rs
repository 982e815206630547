//! Counting and listing the vehicles: `SCAN`s over their meta hashes (never
//! `KEYS`, which blocks Redis for the whole keyspace), each step under its
//! own deadline. The `Store` methods `vehicle_count` and `list_vehicles`
//! call these.

use super::RedisStore;
use crate::domain::{Timestamp, VehicleId, VehiclePrefix};
use crate::store::{StoreError, VehicleCursor, VehiclePage, VehicleSeen};

/// How many `SCAN` steps one page may take to fill up: a rare prefix in a
/// large keyspace would otherwise hold the request for the whole walk. A page
/// that runs out of steps is short, and its cursor goes on.
const MAX_SCAN_STEPS: usize = 8;

/// `text` matched literally in a `SCAN ... MATCH` pattern (`-` and `^` are
/// special only inside brackets). Vehicle ids and prefixes hold none of these
/// characters today; this keeps the match literal if the rule ever grows.
fn escape_glob(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

impl RedisStore {
    /// Counts the vehicles' meta hashes with `SCAN`, which never blocks Redis
    /// for long; each step has its own deadline.
    pub(super) async fn scan_vehicle_count(&self) -> Result<u64, StoreError> {
        let mut cursor: u64 = 0;
        let mut count = 0;
        loop {
            let (next, keys): (u64, Vec<redis::Value>) = self
                .with_deadline(async |c| {
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg("tributary:{*}:meta")
                        .arg("COUNT")
                        .arg(10_000)
                        .arg("TYPE")
                        .arg("hash")
                        .query_async(c)
                        .await
                })
                .await?;
            count += keys.len() as u64;
            if next == 0 {
                return Ok(count);
            }
            cursor = next;
        }
    }

    /// `SCAN`s the vehicles' meta hashes (never `KEYS`, which blocks Redis for
    /// the whole keyspace), a few steps at most, then reads each one's
    /// `last_seen` in one pipeline. The cursor is Redis' own; ids a step found
    /// beyond the page's limit wait in it.
    pub(super) async fn scan_vehicle_page(
        &self,
        prefix: &VehiclePrefix,
        cursor: &VehicleCursor,
        limit: usize,
    ) -> Result<VehiclePage, StoreError> {
        let pattern = format!("tributary:{{{}*}}:meta", escape_glob(prefix.as_str()));
        let mut found: Vec<VehicleId> =
            cursor.pending.iter().filter(|vehicle| prefix.matches(vehicle)).cloned().collect();
        let mut resume = cursor.resume;
        let mut steps = 0;
        while found.len() < limit
            && steps < MAX_SCAN_STEPS
            && let Some(at) = resume
        {
            let count = limit - found.len();
            let (next, keys): (u64, Vec<String>) = self
                .with_deadline(async |c| {
                    redis::cmd("SCAN")
                        .arg(at)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(count)
                        .arg("TYPE")
                        .arg("hash")
                        .query_async(c)
                        .await
                })
                .await?;
            found.extend(keys.iter().filter_map(|key| Self::vehicle_of_meta_key(key)));
            resume = (next != 0).then_some(next);
            steps += 1;
        }
        let pending = found.split_off(found.len().min(limit));
        let next =
            (!pending.is_empty() || resume.is_some()).then_some(VehicleCursor { pending, resume });
        if found.is_empty() {
            return Ok(VehiclePage::newest_first(Vec::new(), next));
        }
        let mut pipe = redis::pipe();
        for vehicle in &found {
            pipe.hget(Self::meta_key(vehicle), "last_seen");
        }
        let last_seen: Vec<Option<i64>> =
            self.with_deadline(async |c| pipe.query_async(c).await).await?;
        // A vehicle that expired since the scan found it is left out.
        let vehicles = found
            .into_iter()
            .zip(last_seen)
            .filter_map(|(vehicle, at)| {
                Some(VehicleSeen { vehicle, last_seen: Timestamp::from_micros(at?)? })
            })
            .collect();
        Ok(VehiclePage::newest_first(vehicles, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_are_matched_literally() {
        assert_eq!(escape_glob("car.1_a"), "car.1_a");
        assert_eq!(escape_glob(r"a*b?[c]\d-e"), r"a\*b\?\[c\]\\d-e");
    }
}
