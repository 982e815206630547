//! The Redis store.
//!
//! Layout, per vehicle (the `{…}` hash tag keeps a vehicle's keys in one Redis
//! Cluster slot, so one script can touch them all):
//! - `tributary:{<vehicle>}:signal:<signal>`: a sorted set, score = timestamp in
//!   microseconds, member = `<timestamp>:<value>`; trimmed to the window.
//! - `tributary:{<vehicle>}:meta`: a hash with `last_seen` and `total:<signal>`.
//!
//! Every key of a vehicle expires at the same moment, the retention period
//! (plus at most `StoreLimits::expiry_slack`) after its last write, so a silent
//! vehicle expires by itself, all at once (see the script). A record is one Lua script call (atomic: appends,
//! de-duplicates, trims and counts in one step, so concurrent writers can never
//! leave more than the window or lose a reading); a read is one `MULTI` pipeline.
//!
//! Memory is bounded by Redis' `maxmemory` with `noeviction` (eviction would
//! drop acknowledged readings without a word): the script refuses a new
//! vehicle once Redis uses 90% of it, keeping the rest for the vehicles it
//! holds, and Redis' own refusal past `maxmemory` (`OOM command not allowed`)
//! is the same [`StoreError::Full`], a clear answer rather than a 503.
//!
//! One `ConnectionManager` multiplexes every request over one connection and
//! reconnects in the background. Every call also runs under a deadline, so a
//! Redis that is down or stuck turns into a fast `Unavailable`, never a hang.
//! A call that misses its deadline also retires the connection it ran on: the
//! manager reconnects only when a connection fails, and one that merely goes
//! silent (a half-open TCP connection to a host that crashed or moved, a stuck
//! proxy) would otherwise time out every request until the kernel gives up on
//! it, many minutes later.
//!
//! Each write also publishes the signals it wrote to the vehicle's sharded
//! change channel, from the script (see `record.lua`), which needs Redis 7.0
//! or later; [`RedisFeed`] is the subscriber side.
//!
//! Files: this one holds the store, its key layout and the `Store` methods
//! that read and write; `connection` the shared connection and its
//! deadlines; `list` the `SCAN`s that count and list vehicles; `changes` the
//! change feed.

mod changes;
mod connection;
mod list;

pub use self::changes::RedisFeed;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use redis::{RedisError, Script};

use self::connection::{Connection, Nodes, ReplicaAck};
use super::{
    SignalHistory, Store, StoreError, StoreLimits, VehicleCursor, VehicleHistory, VehiclePage,
};
use crate::domain::{Reading, Sample, SignalName, StampedBy, Timestamp, VehicleId, VehiclePrefix};

/// The script of one record (see `record.lua` for its arguments and how it
/// keeps windows, counts and expiry).
const RECORD_SCRIPT: &str = include_str!("record.lua");

/// The Redis store. Cheap to clone: clones share one multiplexed connection.
#[derive(Clone)]
pub struct RedisStore {
    nodes: Nodes,
    /// A std mutex: held only to clone or swap the link, never across an await.
    connection: Arc<Mutex<Connection>>,
    /// `TRIBUTARY_REDIS_MIN_REPLICAS_ACK`, if above 0 (see `connection.rs`).
    ack: Option<ReplicaAck>,
    limits: StoreLimits,
    /// Every signal a vehicle may have (the catalog), whose keys each write
    /// keeps alive; see `with_signals`.
    signals: Vec<SignalName>,
    record: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection info holds the password: never print it.
        f.debug_struct("RedisStore").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Prepares a store for `url` without connecting: the first request connects,
    /// so the service starts even while Redis is still coming up.
    pub fn connect_lazily(url: &str, limits: StoreLimits) -> Result<Self, RedisError> {
        Self::with_client(redis::Client::open(url)?, limits)
    }

    /// As [`RedisStore::connect_lazily`], with a client built by the caller
    /// (`rediss://` with its own CA or a client certificate:
    /// `redis::Client::build_with_tls`).
    pub fn with_client(client: redis::Client, limits: StoreLimits) -> Result<Self, RedisError> {
        Self::with_nodes(Nodes::Single(client), limits)
    }

    /// A store on a Redis Cluster, `builder` naming its seed nodes (and TLS,
    /// if any); connects on first use. The vehicle's hash tag keeps each
    /// operation on one slot, so on one node.
    pub fn with_cluster(
        builder: redis::cluster::ClusterClientBuilder,
        limits: StoreLimits,
    ) -> Result<Self, RedisError> {
        let client = Self::cluster_client(builder, limits.timeout)?;
        Self::with_nodes(Nodes::Cluster(client), limits)
    }

    fn with_nodes(nodes: Nodes, limits: StoreLimits) -> Result<Self, RedisError> {
        let link = Self::link(&nodes, limits.timeout, None)?;
        Ok(Self {
            nodes,
            connection: Arc::new(Mutex::new(Connection { link, generation: 0 })),
            ack: None,
            limits,
            signals: Vec::new(),
            record: Script::new(RECORD_SCRIPT),
        })
    }

    /// Acknowledges a write only once `replicas` replicas have it (`WAIT`;
    /// see `connection.rs`); 0 turns it off. Its `WAIT` gets three quarters
    /// of the store timeout, so that a slow replica is a clear answer rather
    /// than the deadline.
    pub fn with_replica_acks(mut self, replicas: u32) -> Result<Self, RedisError> {
        let millis = u64::try_from(self.limits.timeout.as_millis()).unwrap_or(u64::MAX);
        self.ack =
            (replicas > 0).then_some(ReplicaAck { replicas, timeout_ms: (millis * 3 / 4).max(1) });
        let link = Self::link(&self.nodes, self.limits.timeout, self.ack)?;
        self.connection = Arc::new(Mutex::new(Connection { link, generation: 0 }));
        Ok(self)
    }

    /// Makes retention per vehicle: a write keeps all of these signals' keys
    /// alive (they expire with the vehicle's meta hash), not only those it
    /// writes to. Without it, a signal a car stopped sending expires while the
    /// car is still active.
    pub fn with_signals(mut self, signals: &[SignalName]) -> Self {
        self.signals = signals.to_vec();
        self
    }

    fn meta_key(vehicle: &VehicleId) -> String {
        format!("tributary:{{{vehicle}}}:meta")
    }

    /// The vehicle whose meta hash `key` is, if it is one.
    fn vehicle_of_meta_key(key: &str) -> Option<VehicleId> {
        let id = key.strip_prefix("tributary:{")?.strip_suffix("}:meta")?;
        VehicleId::try_from(id).ok()
    }

    fn signal_key(vehicle: &VehicleId, signal: &SignalName) -> String {
        format!("tributary:{{{vehicle}}}:signal:{signal}")
    }
}

/// Decodes one reply of a pipeline.
fn decode<T: redis::FromRedisValue>(reply: redis::Value) -> Result<T, StoreError> {
    redis::from_redis_value(reply).map_err(|e| StoreError::Internal(e.into()))
}

/// Parses a sorted-set member `<timestamp>:<value>`.
fn parse_member(member: &str) -> Option<Sample> {
    let (at, value) = member.split_once(':')?;
    Some(Sample { at: Timestamp::from_micros(at.parse().ok()?)?, value: value.parse().ok()? })
}

#[async_trait]
impl Store for RedisStore {
    async fn record(
        &self,
        vehicle: &VehicleId,
        readings: &[Reading],
        received_at: Timestamp,
    ) -> Result<(), StoreError> {
        // The batch's signals first (written and trimmed), then the vehicle's
        // other signals (only their expiry is refreshed).
        let mut signals: Vec<&SignalName> = readings.iter().map(|r| &r.signal).collect();
        signals.sort();
        signals.dedup();
        let written = signals.len();
        let others = self.signals.iter().filter(|s| signals.binary_search(s).is_err());

        let mut invocation = self.record.prepare_invoke();
        invocation.key(Self::meta_key(vehicle));
        for signal in signals.iter().copied().chain(others) {
            invocation.key(Self::signal_key(vehicle, signal));
        }
        let slack = self.limits.expiry_slack();
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        invocation
            .arg(self.limits.window)
            .arg(millis(self.limits.retention.saturating_add(slack)))
            .arg(millis(slack))
            .arg(received_at.as_micros())
            .arg(written);
        // Per signal: its server-stamped readings, newest first, of which only
        // the newest `window` are sent; and its device-stamped ones in order.
        let groups: Vec<(Vec<&Reading>, Vec<&Reading>)> = signals
            .iter()
            .map(|signal| {
                let (mut server, device): (Vec<&Reading>, Vec<&Reading>) = readings
                    .iter()
                    .filter(|r| &r.signal == *signal)
                    .partition(|r| r.stamped_by == StampedBy::Server);
                server.sort_by_key(|r| std::cmp::Reverse(r.at));
                (server, device)
            })
            .collect();
        for (signal, (server, device)) in signals.iter().zip(&groups) {
            let stamps = || server.iter().map(|r| r.at.as_micros());
            invocation
                .arg(signal.as_str())
                .arg(server.len())
                .arg(server.len().min(self.limits.window))
                .arg(stamps().min().unwrap_or(0))
                .arg(stamps().max().unwrap_or(0))
                .arg(device.len());
        }
        for (server, device) in &groups {
            let sent = server.iter().take(self.limits.window).chain(device);
            for reading in sent {
                let at = reading.at.as_micros();
                invocation.arg(at).arg(format!("{at}:{}", reading.value));
            }
        }
        invocation
            .arg(super::changes::channel(vehicle))
            .arg(super::changes::encode_signals(signals.iter().copied()));
        self.with_deadline(async |c| invocation.invoke_async::<i64>(c).await).await?;
        Ok(())
    }

    async fn history(
        &self,
        vehicle: &VehicleId,
        signals: &[SignalName],
    ) -> Result<Option<VehicleHistory>, StoreError> {
        // The meta fields this read needs (not HGETALL: every value in a reply
        // costs a parse), then each signal's window, newest first.
        let last = isize::try_from(self.limits.window).unwrap_or(isize::MAX) - 1;
        let read = |atomic: bool| {
            let mut pipe = redis::pipe();
            if atomic {
                pipe.atomic();
            }
            let meta = pipe.cmd("HMGET").arg(Self::meta_key(vehicle)).arg("last_seen");
            for signal in signals {
                meta.arg(format!("total:{signal}"));
            }
            for signal in signals {
                pipe.zrevrange(Self::signal_key(vehicle, signal), 0, last);
            }
            pipe
        };
        let pipe = read(true);
        let mut replies: Vec<redis::Value> =
            match self.with_deadline(async |c| pipe.query_async(c).await).await {
                // Past maxmemory Redis refuses every command queued in a MULTI,
                // reads too: read without one, so that a full store still
                // answers reads (a write between the two reads can only make
                // `total` and the window disagree by that write).
                Err(StoreError::Full(_)) => {
                    let pipe = read(false);
                    self.with_deadline(async |c| pipe.query_async(c).await).await?
                }
                replies => replies?,
            };
        if replies.len() != signals.len() + 1 {
            return Err(StoreError::Internal("unexpected pipeline reply length".into()));
        }
        let windows: Vec<Vec<String>> =
            replies.split_off(1).into_iter().map(decode).collect::<Result<_, _>>()?;
        // Read leniently, as before: a value that is not a number counts as none.
        let meta: Vec<Option<i64>> = decode::<Vec<Option<String>>>(replies.remove(0))?
            .into_iter()
            .map(|value| value.and_then(|v| v.parse().ok()))
            .collect();
        let Some(last_seen) = meta.first().copied().flatten().and_then(Timestamp::from_micros)
        else {
            return Ok(None);
        };
        let mut out = BTreeMap::new();
        for ((signal, members), total) in signals.iter().zip(windows).zip(&meta[1..]) {
            if members.is_empty() {
                continue;
            }
            let samples = members
                .iter()
                .map(|m| {
                    parse_member(m).ok_or_else(|| {
                        StoreError::Internal(format!("malformed sample {m:?}").into())
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let total = total.and_then(|t| u64::try_from(t).ok()).unwrap_or(samples.len() as u64);
            out.insert(signal.clone(), SignalHistory { samples, total });
        }
        Ok(Some(VehicleHistory { last_seen, signals: out }))
    }

    /// `PING`; on a cluster, `CLUSTER INFO` of a node, whose `cluster_state`
    /// must be `ok` (every slot served).
    async fn ping(&self) -> Result<(), StoreError> {
        if matches!(self.nodes, Nodes::Cluster(_)) {
            return self.cluster_ok().await;
        }
        let reply: String =
            self.with_deadline(async |c| redis::cmd("PING").query_async(c).await).await?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(StoreError::Internal(format!("PING answered {reply:?}").into()))
        }
    }

    /// Counts the vehicles' meta hashes with `SCAN` (see `list.rs`).
    async fn vehicle_count(&self) -> Result<u64, StoreError> {
        self.scan_vehicle_count().await
    }

    /// A page of vehicles, `SCAN`ned (see `list.rs`).
    async fn list_vehicles(
        &self,
        prefix: &VehiclePrefix,
        cursor: &VehicleCursor,
        limit: usize,
    ) -> Result<VehiclePage, StoreError> {
        self.scan_vehicle_page(prefix, cursor, limit).await
    }

    fn kind(&self) -> &'static str {
        match self.nodes {
            Nodes::Single(_) => "redis",
            Nodes::Cluster(_) => "redis-cluster",
        }
    }

    fn is_remote(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_round_trip_values_exactly() {
        for value in [0.3, -40.0, 215.0, 1e-7, 16_383.75, 0.1 + 0.2] {
            let member = format!("1764268317000000:{value}");
            let sample = parse_member(&member).unwrap();
            assert_eq!(sample.value, value);
            assert_eq!(sample.at.as_micros(), 1_764_268_317_000_000);
        }
        assert_eq!(parse_member("garbage"), None);
    }

    #[test]
    fn a_meta_key_names_its_vehicle() {
        let vehicle = VehicleId::try_from("fleet-07").unwrap();
        let key = RedisStore::meta_key(&vehicle);
        assert_eq!(RedisStore::vehicle_of_meta_key(&key), Some(vehicle));
        assert_eq!(RedisStore::vehicle_of_meta_key("tributary:{a b}:meta"), None);
        assert_eq!(RedisStore::vehicle_of_meta_key("tributary:{car}:signal:x"), None);
    }

    #[test]
    fn keys_share_a_cluster_hash_tag_per_vehicle() {
        let vehicle = VehicleId::try_from("VIN123").unwrap();
        let signal = SignalName::parse("engine_rpm").unwrap();
        assert_eq!(RedisStore::meta_key(&vehicle), "tributary:{VIN123}:meta");
        assert_eq!(
            RedisStore::signal_key(&vehicle, &signal),
            "tributary:{VIN123}:signal:engine_rpm"
        );
    }
}
