//! Counting and listing the vehicles: `SCAN`s over their meta hashes (never
//! `KEYS`, which blocks Redis for the whole keyspace), each step under its
//! own deadline. The `Store` methods `vehicle_count` and `list_vehicles`
//! call these.

use super::RedisStore;
use super::connection::Node;
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

/// Bits of a cluster walk's cursor that hold the node's own `SCAN` cursor;
/// the bits above them number the master (see [`RedisStore::masters`]).
const NODE_CURSOR_BITS: u32 = 48;

/// A walk's cursor from a master's index and that master's `SCAN` cursor.
fn walk_cursor(master: usize, cursor: u64) -> Option<u64> {
    (cursor >> NODE_CURSOR_BITS == 0).then_some(((master as u64) << NODE_CURSOR_BITS) | cursor)
}

/// The master's index and its `SCAN` cursor, from a walk's cursor.
fn split_cursor(walk: u64) -> (usize, u64) {
    ((walk >> NODE_CURSOR_BITS) as usize, walk & ((1 << NODE_CURSOR_BITS) - 1))
}

impl RedisStore {
    /// One `SCAN` step on `node` for meta hashes matching `pattern`.
    async fn scan_step(
        &self,
        node: &Node,
        cursor: u64,
        pattern: &str,
        count: usize,
    ) -> Result<(u64, Vec<String>), StoreError> {
        let reply = self
            .with_deadline(async |link| {
                let mut cmd = redis::cmd("SCAN");
                cmd.arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(count);
                cmd.arg("TYPE").arg("hash");
                link.query_on(node, cmd).await
            })
            .await?;
        redis::from_redis_value(reply).map_err(|e| StoreError::Internal(e.into()))
    }

    /// Counts the vehicles' meta hashes with `SCAN`, which never blocks Redis
    /// for long; each step has its own deadline. On a cluster, every master
    /// is scanned.
    pub(super) async fn scan_vehicle_count(&self) -> Result<u64, StoreError> {
        let mut count = 0;
        for node in self.masters().await? {
            let mut cursor: u64 = 0;
            loop {
                let (next, keys) =
                    self.scan_step(&node, cursor, "tributary:{*}:meta", 10_000).await?;
                count += keys.len() as u64;
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(count)
    }

    /// `SCAN`s the vehicles' meta hashes (never `KEYS`, which blocks Redis for
    /// the whole keyspace), a few steps at most, then reads each one's
    /// `last_seen` in one pipeline. The cursor is Redis' own; on a cluster,
    /// its top bits number the master being walked (masters in the order of
    /// their slots: a walk across a failover or a slot migration may list a
    /// vehicle twice or miss one that moved). Ids a step found beyond the
    /// page's limit wait in it.
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
        let masters = if resume.is_some() && found.len() < limit {
            self.masters().await?
        } else {
            Vec::new()
        };
        while found.len() < limit
            && steps < MAX_SCAN_STEPS
            && let Some(at) = resume
        {
            let (master, at) = split_cursor(at);
            let Some(node) = masters.get(master) else {
                // The cluster has fewer masters than when the walk began.
                resume = None;
                break;
            };
            let (next, keys) = self.scan_step(node, at, &pattern, limit - found.len()).await?;
            found.extend(keys.iter().filter_map(|key| Self::vehicle_of_meta_key(key)));
            resume = match next {
                0 if master + 1 < masters.len() => walk_cursor(master + 1, 0),
                0 => None,
                next => Some(walk_cursor(master, next).ok_or_else(|| {
                    StoreError::Internal(format!("SCAN cursor {next} too large").into())
                })?),
            };
            steps += 1;
        }
        let pending = found.split_off(found.len().min(limit));
        let next =
            (!pending.is_empty() || resume.is_some()).then_some(VehicleCursor { pending, resume });
        if found.is_empty() {
            return Ok(VehiclePage::newest_first(Vec::new(), next));
        }
        // One read per vehicle, concurrently: on a cluster their keys hash to
        // many slots, which one pipeline may not span.
        let reads = found.iter().map(|vehicle| {
            let key = Self::meta_key(vehicle);
            self.with_deadline(async move |c| {
                redis::cmd("HGET").arg(key).arg("last_seen").query_async::<Option<i64>>(c).await
            })
        });
        let last_seen: Vec<Option<i64>> = futures_util::future::try_join_all(reads).await?;
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

    #[test]
    fn a_walk_cursor_holds_the_master_and_its_cursor() {
        let walk = walk_cursor(2, 12_345).unwrap();
        assert_eq!(split_cursor(walk), (2, 12_345));
        assert_eq!(split_cursor(walk_cursor(0, 7).unwrap()), (0, 7));
        assert_eq!(walk_cursor(1, 1 << 48), None);
    }
}
