//! Redis Clusters of the tests' own: six `redis-server`s joined by
//! `redis-cli --cluster create`, and what the cluster tests ask of them.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::RedisServer;

/// A Redis Cluster of our own: 3 masters and 3 replicas (`redis-server
/// --cluster-enabled yes` on free loopback ports, joined by `redis-cli
/// --cluster create ... --cluster-replicas 1`), each with an fsynced AOF and a
/// one-second `cluster-node-timeout`, so that a failover takes a few seconds.
/// Every node is killed when dropped.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

/// A node as `CLUSTER NODES` lists it.
#[derive(Debug, Clone)]
pub struct ClusterNode {
    pub id: String,
    pub port: u16,
    pub master: bool,
    /// Its slot ranges, inclusive (masters only).
    pub slots: Vec<(u16, u16)>,
    /// `fail`, `fail?` or `ok`.
    pub failed: bool,
}

/// The `cluster-node-timeout` of test clusters, in milliseconds.
pub const CLUSTER_NODE_TIMEOUT_MS: u64 = 1000;

impl RedisCluster {
    /// Starts and joins six nodes, and waits until every node says
    /// `cluster_state:ok` and every master has its replica in sync.
    pub fn start() -> Self {
        let timeout = CLUSTER_NODE_TIMEOUT_MS.to_string();
        let args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            &timeout,
            // A replica takes over however long it was cut off (the default
            // refuses one that was disconnected for a while).
            "--cluster-replica-validity-factor",
            "0",
        ];
        let nodes: Vec<RedisServer> =
            (0..6).map(|_| RedisServer::start_cluster_node(&args)).collect();
        let addresses: Vec<String> =
            nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let output = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli (Debian's redis-tools) must be installed");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let cluster = Self { nodes };
        cluster.wait_ok(Duration::from_secs(30));
        cluster
    }

    /// The seed URLs, comma-separated, as `TRIBUTARY_REDIS_CLUSTER` takes them.
    pub fn urls(&self) -> String {
        self.nodes.iter().map(RedisServer::url).collect::<Vec<_>>().join(",")
    }

    /// Waits until every live node says `cluster_state:ok`, every master has
    /// a replica that is online, and the nodes agree on who the masters are.
    pub fn wait_ok(&self, deadline: Duration) {
        let started = Instant::now();
        loop {
            if self.is_ok() {
                return;
            }
            assert!(started.elapsed() < deadline, "the cluster was not ok within {deadline:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every live node says `cluster_state:ok` and three masters
    /// that are not failed serve the slots (replicas or not).
    pub fn wait_serving(&self, deadline: Duration) {
        let started = Instant::now();
        loop {
            let live: Vec<&RedisServer> = self.nodes.iter().filter(|n| n.is_running()).collect();
            let ok =
                live.iter().all(|n| cli(n.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok"));
            let masters = self.topology();
            if ok
                && masters.iter().filter(|n| n.master && !n.failed && !n.slots.is_empty()).count()
                    == 3
            {
                return;
            }
            assert!(started.elapsed() < deadline, "the cluster did not serve within {deadline:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the node on `port` again (it rejoins as a replica if it was a
    /// master that failed over).
    pub fn restart(&mut self, port: u16) {
        self.nodes.iter_mut().find(|n| n.port == port).expect("a node of this cluster").restart();
    }

    fn is_ok(&self) -> bool {
        let live: Vec<&RedisServer> = self.nodes.iter().filter(|n| n.is_running()).collect();
        let all_ok =
            live.iter().all(|n| cli(n.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok"));
        let masters = self.topology();
        all_ok
            && masters.iter().filter(|n| n.master && !n.failed && !n.slots.is_empty()).count() == 3
            && masters.iter().filter(|n| n.master && !n.slots.is_empty()).all(|m| {
                let info = cli(m.port, &["INFO", "replication"]);
                info.contains("connected_slaves:1") && info.contains("state=online")
            })
    }

    /// The nodes as the first live node sees them.
    pub fn topology(&self) -> Vec<ClusterNode> {
        let node = self.nodes.iter().find(|n| n.is_running()).expect("a live node");
        parse_cluster_nodes(&cli(node.port, &["CLUSTER", "NODES"]))
    }

    /// The master serving `key`'s slot.
    pub fn master_of(&self, key: &str) -> ClusterNode {
        let slot: u16 =
            cli(self.nodes[0].port, &["CLUSTER", "KEYSLOT", key]).trim().parse().unwrap();
        self.master_of_slot(slot)
    }

    pub fn master_of_slot(&self, slot: u16) -> ClusterNode {
        self.topology()
            .into_iter()
            .find(|n| {
                n.master && !n.failed && n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))
            })
            .unwrap_or_else(|| panic!("no master serves slot {slot}"))
    }

    /// SIGKILLs the node on `port`.
    pub fn kill(&mut self, port: u16) {
        self.nodes.iter_mut().find(|n| n.port == port).expect("a node of this cluster").kill();
    }
}

/// The slot of `key`, as Redis computes it (CRC16 of the hash tag, mod 16384).
pub fn key_slot(cluster: &RedisCluster, key: &str) -> u16 {
    cli(cluster.nodes[0].port, &["CLUSTER", "KEYSLOT", key]).trim().parse().unwrap()
}

/// `redis-cli -p port args...`, its output ("" when the node is down).
pub fn cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli (Debian's redis-tools) must be installed");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn parse_cluster_nodes(text: &str) -> Vec<ClusterNode> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let address = fields.get(1)?;
            let port = address.split(['@', ':']).nth(1)?.parse().ok()?;
            let flags = fields.get(2)?;
            let slots = fields
                .iter()
                .skip(8)
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => s.parse().ok().map(|one| (one, one)),
                })
                .collect();
            Some(ClusterNode {
                id: fields[0].to_owned(),
                port,
                master: flags.contains("master"),
                slots,
                failed: flags.contains("fail"),
            })
        })
        .collect()
}
