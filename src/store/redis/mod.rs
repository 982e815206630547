//! The Redis store.
//!
//! Layout: one hash per vehicle, `tributary:{<vehicle>}:meta` (the `{…}` hash
//! tag names the vehicle's Redis Cluster slot), holding `last_seen` and per
//! signal a field `w:<signal>`: its count of samples accepted and its window,
//! oldest first (see `window.rs`). One key per vehicle keeps every command
//! cheap: a record is one Lua script call that reads and writes that hash
//! (atomic: appends, de-duplicates, trims and counts in one step, so
//! concurrent writers can never leave more than the window or lose a reading),
//! and a read, `/collect` included, is one `HMGET`. The vehicle expires all at
//! once, the retention period (plus at most `StoreLimits::expiry_slack`) after
//! its last write, so a silent vehicle is forgotten by Redis itself (see the
//! script).
//!
//! Upgrading: before this layout, a vehicle was a meta hash with
//! `last_seen` and `total:<signal>`, and a sorted set per signal. A hash
//! without the `layout` field is of that layout, and the first write or read
//! of such a vehicle moves it, atomically and in place (`migrate.lua`), so an
//! upgrade keeps every acknowledged reading without a migration step. An
//! instance of the old version still running would write where this one no
//! longer reads, and an older version does not read this layout: stop old
//! instances before starting new ones (as the Compose file's single service
//! does), and do not downgrade (docs/operating.md).
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
//! deadlines; `window` a signal's field and the reads of it; `migrate` the
//! move out of the first layout; `list` the
//! `SCAN`s that count and list vehicles; `changes` the change feed.

mod changes;
mod connection;
mod list;
mod migrate;
mod window;

pub use self::changes::RedisFeed;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use redis::{RedisError, Script};

use self::connection::{Connection, Link, Nodes, ReplicaAck};
use super::{Store, StoreError, StoreLimits, VehicleCursor, VehicleHistory, VehiclePage};
use crate::domain::{Aggregate, Reading, SignalName, Timestamp, VehicleId, VehiclePrefix};

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
    record: Script,
    migrate: Script,
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
            record: Script::new(RECORD_SCRIPT),
            migrate: Script::new(migrate::MIGRATE_SCRIPT),
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

    fn meta_key(vehicle: &VehicleId) -> String {
        super::changes::vehicle_key(vehicle, ":meta")
    }

    /// The vehicle whose meta hash `key` is, if it is one.
    fn vehicle_of_meta_key(key: &str) -> Option<VehicleId> {
        super::changes::vehicle_of_key(key, ":meta")
    }

    /// The vehicle's `last_seen` and `signals`' fields, in one `HMGET` (one
    /// command, so atomic without a `MULTI`, which Redis refuses past
    /// `maxmemory`, reads too). A vehicle still in the first layout is moved
    /// first, once, in the same deadline.
    async fn read_fields(
        &self,
        vehicle: &VehicleId,
        signals: &[SignalName],
    ) -> Result<(Option<String>, Vec<Option<String>>), StoreError> {
        let read = window::hmget(vehicle, signals);
        let mut fields: Vec<Option<String>> = self
            .with_deadline(async |c| {
                let fields: Vec<Option<String>> = read.query_async(c).await?;
                if window::first_layout(&fields) {
                    self.migrate(c, vehicle).await?;
                    return read.query_async(c).await;
                }
                Ok(fields)
            })
            .await?;
        if fields.len() != signals.len() + 2 {
            return Err(StoreError::Internal("unexpected HMGET reply length".into()));
        }
        let windows = fields.split_off(2);
        Ok((fields.swap_remove(1), windows))
    }
}

/// Runs `eval`, an `EVALSHA` of `script`, loading the script first when
/// Redis does not have it (a restart, a `SCRIPT FLUSH`, a new cluster node),
/// as redis-rs' `ScriptInvocation::invoke_async` does. Both scripts run through
/// it: `ScriptInvocation` keeps each argument in a buffer of its own and
/// copies them all into the command.
async fn evalsha(script: &Script, eval: &redis::Cmd, link: &mut Link) -> Result<i64, RedisError> {
    match eval.query_async(link).await {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            script.load_async(link).await?;
            eval.query_async(link).await
        }
        done => done,
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn record(
        &self,
        vehicle: &VehicleId,
        readings: &[Reading],
        received_at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut signals: Vec<&SignalName> = readings.iter().map(|r| &r.signal).collect();
        signals.sort();
        signals.dedup();

        // The `EVALSHA` built here rather than by redis-rs' `ScriptInvocation`,
        // which keeps each argument in a buffer of its own and copies them
        // all into a command (5,000 instructions of a 62,000-instruction
        // `/record`, by callgrind).
        // Sized up front: growing it as arguments come cost as much again.
        let sent: usize = readings.len().min(self.limits.window * signals.len());
        let args = 12 + 5 * signals.len() + 2 * sent;
        let mut eval = redis::Cmd::with_capacity(args, 64 + 24 * args);
        eval.arg("EVALSHA").arg(self.record.get_hash()).arg(1).arg(Self::meta_key(vehicle));
        let slack = self.limits.expiry_slack();
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        eval.arg(self.limits.window)
            .arg(millis(self.limits.retention.saturating_add(slack)))
            .arg(millis(slack))
            .arg(received_at.as_micros())
            .arg(signals.len());
        // Per signal: its server-stamped readings, of which only the newest
        // `window` are sent, and its device-stamped ones.
        let window = self.limits.window;
        let groups: Vec<window::Group<'_>> =
            signals.iter().map(|signal| window::Group::of(signal, readings, window)).collect();
        for (signal, group) in signals.iter().zip(&groups) {
            eval.arg(signal.as_str())
                .arg(group.server_total)
                .arg(group.server_sent)
                .arg(group.sent.len() - group.server_sent)
                .arg(if group.simple { "1" } else { "0" });
        }
        for group in &groups {
            // Values as redis-rs writes an f64 (ryu: the shortest text that
            // parses back to the same number).
            for reading in &group.sent {
                eval.arg(reading.at.as_micros()).arg(reading.value);
            }
        }
        eval.arg(super::changes::channel(vehicle))
            .arg(super::changes::encode_signals(signals.iter().copied()));
        // A vehicle still in the first layout is moved, then written, in the
        // same deadline (see `migrate.lua`).
        self.with_deadline(async |c| match evalsha(&self.record, &eval, c).await {
            Err(e) if e.code() == Some(migrate::FIRST_LAYOUT) => {
                self.migrate(c, vehicle).await?;
                evalsha(&self.record, &eval, c).await
            }
            done => done,
        })
        .await?;
        Ok(())
    }

    /// One `HMGET` of `last_seen` and the signals' fields.
    async fn history(
        &self,
        vehicle: &VehicleId,
        signals: &[SignalName],
    ) -> Result<Option<VehicleHistory>, StoreError> {
        let (last_seen, windows) = self.read_fields(vehicle, signals).await?;
        // Read leniently, as before: a `last_seen` that is not a number is none.
        let Some(last_seen) =
            last_seen.as_deref().and_then(|v| v.parse().ok()).and_then(Timestamp::from_micros)
        else {
            return Ok(None);
        };
        let mut out = BTreeMap::new();
        for (signal, field) in signals.iter().zip(windows) {
            let Some(field) = field else { continue };
            let history = window::parse(&field, self.limits.window)?;
            if !history.samples.is_empty() {
                out.insert(signal.clone(), history);
            }
        }
        Ok(Some(VehicleHistory { last_seen, signals: out }))
    }

    /// One `HMGET` of the signals' fields, aggregated here (as the memory
    /// store does, from the same samples in the same order, so the figures
    /// agree to the last bit).
    async fn aggregates(
        &self,
        vehicle: &VehicleId,
        signals: &[SignalName],
    ) -> Result<Vec<(SignalName, Aggregate)>, StoreError> {
        if signals.is_empty() {
            return Ok(Vec::new());
        }
        let (_, fields) = self.read_fields(vehicle, signals).await?;
        let mut out = Vec::new();
        for (signal, field) in signals.iter().zip(fields) {
            let Some(field) = field else { continue };
            if let Some(aggregate) = window::aggregate(&field, self.limits.window)? {
                out.push((signal.clone(), aggregate));
            }
        }
        Ok(out)
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
    fn a_meta_key_names_its_vehicle() {
        let vehicle = VehicleId::try_from("fleet-07").unwrap();
        let key = RedisStore::meta_key(&vehicle);
        assert_eq!(RedisStore::vehicle_of_meta_key(&key), Some(vehicle));
        assert_eq!(RedisStore::vehicle_of_meta_key("tributary:{a b}:meta"), None);
        assert_eq!(RedisStore::vehicle_of_meta_key("tributary:{car}:signal:x"), None);
    }

    #[test]
    fn a_vehicle_is_one_key_named_by_its_cluster_hash_tag() {
        let vehicle = VehicleId::try_from("VIN123").unwrap();
        assert_eq!(RedisStore::meta_key(&vehicle), "tributary:{VIN123}:meta");
    }
}
