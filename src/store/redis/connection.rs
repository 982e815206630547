//! The Redis connection: one [`Link`] shared by every call, to a single Redis
//! (a `ConnectionManager`) or to a Redis Cluster (redis-rs' async cluster
//! connection, which follows `MOVED` and `ASK`, refreshes its slot map and
//! reconnects to nodes by itself). Each call runs under the store's deadline,
//! a connection that misses it is retired (see the store's module header for
//! why), and Redis errors are mapped to [`StoreError`]s.
//!
//! Both kinds sit behind one small type that implements redis-rs'
//! `ConnectionLike`, so the store's operations are written once. The link also
//! carries the replica acknowledgement (`TRIBUTARY_REDIS_MIN_REPLICAS_ACK`):
//! when it is set, every script call (the write, and the move of a vehicle
//! out of the first layout, which a read can start too: a lagging replica
//! then fails that read with a 503, and the next one moves it again) is sent
//! in one pipeline with `WAIT n <timeout>`, so `WAIT` runs on the
//! connection, and so the node, that ran the script (in a cluster the
//! pipeline is routed by the script's keys), and a write that fewer than `n`
//! replicas confirmed in time is an error, never an acknowledgement.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Value};

use super::RedisStore;
use crate::store::StoreError;

/// How to (re)connect: one Redis, or a cluster's seed nodes.
// One per store, built once: the variants' sizes cost nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub(super) enum Nodes {
    Single(redis::Client),
    Cluster(ClusterClient),
}

/// A Redis node of a cluster, as the cluster names it (`CLUSTER SLOTS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Node {
    pub(super) host: String,
    pub(super) port: u16,
}

/// The link calls run on, and how many times it was replaced.
pub(super) struct Connection {
    pub(super) link: Link,
    pub(super) generation: u64,
}

/// Replica acknowledgement of writes: `WAIT replicas timeout_ms` after each
/// script call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReplicaAck {
    pub(super) replicas: u32,
    pub(super) timeout_ms: u64,
}

/// One connection to the store, single node or cluster; cheap to clone.
#[derive(Clone)]
pub(super) struct Link {
    route: Route,
    ack: Option<ReplicaAck>,
}

#[derive(Clone)]
enum Route {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Link {
    /// Whether this is a cluster connection.
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self.route, Route::Cluster(_))
    }

    /// Runs `cmd` on `node` (a cluster's); on a single Redis, on it.
    pub(super) async fn query_on(&mut self, node: &Node, cmd: Cmd) -> Result<Value, RedisError> {
        match &mut self.route {
            Route::Single(manager) => manager.req_packed_command(&cmd).await,
            Route::Cluster(cluster) => {
                cluster.route_command(cmd, RoutingInfo::SingleNode(at(node))).await
            }
        }
    }

    /// `cmd` (a script call) and `WAIT` in one pipeline: the script's reply
    /// if enough replicas acknowledged it, else an error.
    async fn with_ack(&mut self, cmd: &Cmd, ack: ReplicaAck) -> Result<Value, RedisError> {
        let mut pipe = redis::pipe();
        pipe.add_command(cmd.clone()).cmd("WAIT").arg(ack.replicas).arg(ack.timeout_ms);
        let mut replies = self.route_commands(&pipe, 0, 2).await?;
        let (Some(acked), Some(reply)) = (replies.pop(), replies.pop()) else {
            return Err(
                (ErrorKind::Parse, "a script and WAIT pipeline answered too few replies").into()
            );
        };
        // A script that failed was not written: its own error, whatever WAIT says.
        let reply = reply.extract_error()?;
        let acked: i64 = redis::from_redis_value(acked.extract_error()?)?;
        if acked < i64::from(ack.replicas) {
            return Err((
                ErrorKind::Client,
                "too few replicas acknowledged the write",
                format!(
                    "{acked} of the {} replicas TRIBUTARY_REDIS_MIN_REPLICAS_ACK asks for \
                     acknowledged the write within {} ms; it may or may not be kept",
                    ack.replicas, ack.timeout_ms
                ),
            )
                .into());
        }
        Ok(reply)
    }

    fn route_commands<'a>(
        &'a mut self,
        pipe: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.route {
            Route::Single(manager) => manager.req_packed_commands(pipe, offset, count),
            Route::Cluster(cluster) => cluster.req_packed_commands(pipe, offset, count),
        }
    }
}

fn at(node: &Node) -> SingleNodeRoutingInfo {
    SingleNodeRoutingInfo::ByAddress { host: node.host.clone(), port: node.port }
}

/// Whether `cmd` runs a script (`EVALSHA`, `EVAL`, or a function's `FCALL`):
/// the store's writes, which replica acknowledgements apply to.
fn is_script(cmd: &Cmd) -> bool {
    matches!(cmd.args_iter().next(), Some(redis::Arg::Simple(name))
        if [&b"EVALSHA"[..], b"EVAL", b"FCALL"].iter().any(|n| name.eq_ignore_ascii_case(n)))
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self.ack {
            Some(ack) if is_script(cmd) => Box::pin(self.with_ack(cmd, ack)),
            _ => match &mut self.route {
                Route::Single(manager) => manager.req_packed_command(cmd),
                Route::Cluster(cluster) => cluster.req_packed_command(cmd),
            },
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipe: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.route_commands(pipe, offset, count)
    }

    fn get_db(&self) -> i64 {
        match &self.route {
            Route::Single(manager) => manager.get_db(),
            Route::Cluster(cluster) => cluster.get_db(),
        }
    }
}

impl RedisStore {
    /// A link that connects on first use.
    pub(super) fn link(
        nodes: &Nodes,
        timeout: Duration,
        ack: Option<ReplicaAck>,
    ) -> Result<Link, RedisError> {
        let route = match nodes {
            Nodes::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_millis(500)))
                    // `with_deadline` bounds every call: a second timer per call here
                    // would only cost a registration in the timer wheel.
                    .set_response_timeout(None)
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(500));
                Route::Single(ConnectionManager::new_lazy_with_config(client.clone(), config)?)
            }
            Nodes::Cluster(client) => {
                // The client's own deadlines: each attempt, and the whole
                // request with its redirections and retries, end within the
                // store's timeout (`with_deadline` is the backstop).
                let config = redis::cluster::ClusterConfig::new()
                    .set_connection_timeout(timeout.min(Duration::from_millis(500)))
                    .set_response_timeout(timeout);
                Route::Cluster(client.get_pending_async_connection_with_config(config))
            }
        };
        Ok(Link { route, ack })
    }

    /// The cluster client for `urls` (seed nodes), with retries that fit in `timeout`.
    pub(super) fn cluster_client(
        builder: redis::cluster::ClusterClientBuilder,
        timeout: Duration,
    ) -> Result<ClusterClient, RedisError> {
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        builder
            .connection_timeout(timeout.min(Duration::from_millis(500)))
            .response_timeout(timeout)
            .overall_response_timeout(Some(timeout))
            // Redirections (MOVED, ASK) and TRYAGAIN during a slot migration
            // are retried; the waits between retries stay well inside the deadline.
            .retries(6)
            .min_retry_wait(10)
            .max_retry_wait((millis / 4).max(10))
            .build()
    }

    /// Runs one call on the shared connection under the store timeout; if it times
    /// out, the connection is replaced (see the module's header).
    pub(super) async fn with_deadline<T>(
        &self,
        call: impl AsyncFnOnce(&mut Link) -> Result<T, RedisError>,
    ) -> Result<T, StoreError> {
        let (mut link, generation) = {
            let connection = self.connection.lock().expect("never poisoned: no panics inside");
            (connection.link.clone(), connection.generation)
        };
        let outcome = tokio::time::timeout(self.limits.timeout, call(&mut link)).await;
        if outcome
            .as_ref()
            .map_or(true, |result| result.as_ref().is_err_and(RedisError::is_timeout))
        {
            self.retire(generation);
        }
        match outcome {
            Ok(result) => result.map_err(store_error),
            Err(_) => Err(StoreError::Unavailable(
                format!("Redis did not answer within {} ms", self.limits.timeout.as_millis())
                    .into(),
            )),
        }
    }

    /// Replaces connection `generation` with a new one (connected on first use),
    /// unless a call that timed out on it too already has. Calls still waiting
    /// on the old one keep their deadlines; the last to finish closes it.
    fn retire(&self, generation: u64) {
        let mut connection = self.connection.lock().expect("never poisoned: no panics inside");
        if connection.generation != generation {
            return;
        }
        match Self::link(&self.nodes, self.limits.timeout, self.ack) {
            Ok(link) => {
                *connection = Connection { link, generation: generation + 1 };
                tracing::warn!(generation, "a Redis call timed out: replacing its connection");
            }
            // Unreachable in practice: the same client built the first manager.
            Err(err) => tracing::error!(error = %err, "cannot replace the Redis connection"),
        }
    }

    /// The masters of the cluster, in the order of the first slot each
    /// serves (stable while the slots stay where they are); on a single
    /// Redis, that one.
    pub(super) async fn masters(&self) -> Result<Vec<Node>, StoreError> {
        let slots: Option<Value> = self
            .with_deadline(async |link| {
                if !link.is_cluster() {
                    return Ok(None);
                }
                redis::cmd("CLUSTER").arg("SLOTS").query_async(link).await.map(Some)
            })
            .await?;
        let Some(slots) = slots else {
            return Ok(vec![Node { host: String::new(), port: 0 }]);
        };
        masters_of(slots)
            .ok_or_else(|| StoreError::Internal("unexpected CLUSTER SLOTS reply".into()))
    }
}

impl RedisStore {
    /// Whether the cluster serves every slot, as a node it reaches says.
    pub(super) async fn cluster_ok(&self) -> Result<(), StoreError> {
        let info: String = self
            .with_deadline(async |link| redis::cmd("CLUSTER").arg("INFO").query_async(link).await)
            .await?;
        let state = info
            .lines()
            .find_map(|line| line.trim().strip_prefix("cluster_state:"))
            .unwrap_or("unknown");
        if state == "ok" {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                format!("cluster_state:{state}: the cluster cannot serve every slot").into(),
            ))
        }
    }
}

/// The masters of a `CLUSTER SLOTS` reply, ordered by their first slot.
fn masters_of(slots: Value) -> Option<Vec<Node>> {
    let ranges: Vec<Vec<Value>> = redis::from_redis_value(slots).ok()?;
    let mut masters: Vec<(i64, Node)> = Vec::new();
    for range in ranges {
        let start: i64 = redis::from_redis_value(range.first()?.clone()).ok()?;
        let master: Vec<Value> = redis::from_redis_value(range.get(2)?.clone()).ok()?;
        let host: String = redis::from_redis_value(master.first()?.clone()).ok()?;
        let port: u16 = redis::from_redis_value(master.get(1)?.clone()).ok()?;
        let node = Node { host, port };
        match masters.iter_mut().find(|(_, known)| *known == node) {
            Some((first, _)) => *first = (*first).min(start),
            None => masters.push((start, node)),
        }
    }
    masters.sort_by_key(|(first, _)| *first);
    Some(masters.into_iter().map(|(_, node)| node).collect())
}

pub(super) fn store_error(err: RedisError) -> StoreError {
    // Redis 7 keeps the code of an error inside a script (6.2 wraps it in
    // ERR), and a MULTI refused for it is an EXECABORT listing each refusal.
    let oom = err.code() == Some("OOM") || {
        let text = err.to_string();
        text.contains("OOM") && text.contains("command not allowed when used memory")
    };
    match err.code() {
        Some("VEHICLELIMIT") => {
            let max = err.detail().and_then(|d| d.split_whitespace().nth(1)).unwrap_or("?");
            return StoreError::Full(format!(
                "the vehicle is new, and Redis is using 90% of its maxmemory of {max} bytes, \
the rest kept for the vehicles it holds, which keep working; raise Redis' maxmemory \
(REDIS_MAXMEMORY in the Compose file)"
            ));
        }
        _ if oom => {
            return StoreError::Full(
                "Redis is at its maxmemory (noeviction) and refuses writes; raise Redis' maxmemory \
(REDIS_MAXMEMORY in the Compose file)"
                    .to_owned(),
            );
        }
        _ => {}
    }
    match err.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => StoreError::Internal(err.into()),
        _ => StoreError::Unavailable(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_told_from_other_commands() {
        assert!(is_script(redis::cmd("EVALSHA").arg("abc").arg(0)));
        assert!(is_script(redis::cmd("eval").arg("return 1").arg(0)));
        assert!(is_script(redis::cmd("FCALL").arg("record").arg(1).arg("k")));
        assert!(!is_script(redis::cmd("HMGET").arg("k")));
    }

    #[test]
    fn masters_are_ordered_by_their_first_slot_and_listed_once() {
        let node = |port: i64| {
            Value::Array(vec![
                Value::BulkString(b"127.0.0.1".to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let range = |start, end, port| {
            Value::Array(vec![Value::Int(start), Value::Int(end), node(port), node(port + 1)])
        };
        let reply = Value::Array(vec![
            range(5461, 10922, 7002),
            range(0, 5460, 7000),
            range(10923, 16383, 7004),
            range(16000, 16000, 7000),
        ]);
        let ports: Vec<u16> = masters_of(reply).unwrap().iter().map(|n| n.port).collect();
        assert_eq!(ports, [7000, 7002, 7004]);
    }
}
