//! A real `redis-server` on a free port, for one test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Process;
use super::process::free_port;

/// A `redis-server` process of our own, with AOF on (`appendfsync always`), in a
/// temporary directory. Killed when dropped.
pub struct RedisServer {
    child: Option<Process>,
    pub port: u16,
    dir: tempfile::TempDir,
    /// Serves TLS only (a self-signed certificate for `localhost`, or one
    /// signed by a test CA, in `dir`).
    tls: bool,
    /// With TLS: whether clients must present a certificate the CA signed.
    tls_auth_clients: bool,
    /// Extra `redis-server` arguments, such as `--requirepass`.
    extra: Vec<String>,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A Redis on a port the test chose (which it may have handed out already).
    pub fn start_on(port: u16) -> Self {
        let mut server = Self::unstarted(tempfile::tempdir().unwrap(), false, &[]);
        server.port = port;
        server.spawn();
        server
    }

    /// A Redis started with extra arguments, e.g. `["--requirepass", "s3cret"]`.
    pub fn start_with(extra: &[&str]) -> Self {
        let mut server = Self::unstarted(tempfile::tempdir().unwrap(), false, extra);
        server.spawn_on_a_free_port();
        server
    }

    /// A cluster node on a free port whose cluster bus port (10,000 above,
    /// which Redis needs) exists.
    fn start_cluster_node(extra: &[&str]) -> Self {
        let mut server = Self::unstarted(tempfile::tempdir().unwrap(), false, extra);
        for _ in 0..20 {
            server.port = free_port();
            if server.port > 55535 {
                continue;
            }
            server.spawn_child();
            if server.wait_ready().is_ok() {
                return server;
            }
        }
        panic!("no cluster node could bind a free port in 20 attempts");
    }

    fn unstarted(dir: tempfile::TempDir, tls: bool, extra: &[&str]) -> Self {
        Self {
            child: None,
            port: 0,
            dir,
            tls,
            tls_auth_clients: false,
            extra: extra.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// A Redis that speaks only TLS, with a fresh self-signed certificate.
    pub fn start_tls() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(dir.path().join("cert.pem"), certified.cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), certified.signing_key.serialize_pem()).unwrap();
        let mut server = Self::unstarted(dir, true, &[]);
        server.spawn_on_a_free_port();
        server
    }

    /// A Redis that speaks only TLS, with a certificate for `localhost` that
    /// `ca` signed; with `client_certs`, it also requires clients to present a
    /// certificate `ca` signed.
    pub fn start_tls_signed_by(ca: &TestCa, client_certs: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = ca.issue("localhost");
        std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
        std::fs::write(dir.path().join("key.pem"), key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        let mut server = Self::unstarted(dir, true, &[]);
        server.tls_auth_clients = client_certs;
        server.spawn_on_a_free_port();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        self.spawn_child();
        if let Err(status) = self.wait_ready() {
            panic!("redis-server exited at start with {status} (port {} taken?)", self.port);
        }
    }

    fn spawn_child(&mut self) {
        let port = self.port.to_string();
        let dir = self.dir.path().to_str().unwrap();
        let mut command = Command::new(redis_server_binary());
        if self.tls {
            let auth_clients = if self.tls_auth_clients { "yes" } else { "no" };
            command
                .args(["--port", "0", "--tls-port", &port, "--tls-auth-clients", auth_clients])
                .args(["--tls-cert-file", &format!("{dir}/cert.pem")])
                .args(["--tls-key-file", &format!("{dir}/key.pem")]);
            if self.dir.path().join("ca.pem").exists() {
                command.args(["--tls-ca-cert-file", &format!("{dir}/ca.pem")]);
            }
        } else {
            command.args(["--port", &port]);
        }
        command
            .args(&self.extra)
            .args(["--bind", "127.0.0.1", "--dir", dir])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--save", ""])
            .args(["--protected-mode", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = Process::spawn(&mut command).expect("cannot start redis-server");
        self.child = Some(child);
    }

    /// Starts on a free port, trying another if some other process takes the
    /// chosen one between our check and redis-server's bind.
    fn spawn_on_a_free_port(&mut self) {
        for _ in 0..5 {
            self.port = free_port();
            self.spawn_child();
            if self.wait_ready().is_ok() {
                return;
            }
        }
        panic!("redis-server could not bind a free port in 5 attempts");
    }

    /// Waits until the server answers, or returns how it exited.
    fn wait_ready(&mut self) -> Result<(), std::process::ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().exited() {
                self.child = None;
                return Err(status);
            }
            let ready = if self.tls {
                TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            } else {
                ping(self.port)
            };
            if ready {
                // Someone else's server may hold the port and answer before ours
                // fails to bind: make sure the one answering is ours.
                let child = self.child.as_ref().unwrap().id();
                match (self.tls, server_pid(self.port)) {
                    (false, Some(pid)) if pid != child => {
                        self.kill();
                        return Err(std::process::ExitStatus::default());
                    }
                    _ => return Ok(()),
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not answer PING within 10 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL: no shutdown, no final save; only what the AOF already holds survives.
    pub fn kill(&mut self) {
        // Dropping the process kills and reaps it.
        self.child.take();
    }

    /// Whether its process is running (not killed by the test).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts again on the same port and data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Runs one command with `redis-cli`-like simplicity over RESP, for checks.
    pub fn command(&self, args: &[&str]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `process_id` the Redis on `port` reports, if it answers `INFO server`
/// (one behind a password does not).
fn server_pid(port: u16) -> Option<u32> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    stream.write_all(b"INFO server\r\n").ok()?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while !reply.windows(11).any(|w| w == b"process_id:") || !reply.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut buf).ok()?;
        reply.extend_from_slice(&buf[..n]);
        if n == 0 || reply.starts_with(b"-") {
            return None;
        }
    }
    let text = String::from_utf8_lossy(&reply);
    text.lines().find_map(|l| l.strip_prefix("process_id:")).and_then(|p| p.trim().parse().ok())
}

/// Whether a Redis answers on `port` (any reply, so `-NOAUTH` counts: the server is up).
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 16];
    stream.write_all(b"PING\r\n").is_ok()
        && stream
            .read(&mut buf)
            .is_ok_and(|n| buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"))
}

fn redis_server_binary() -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain(["/usr/bin", "/usr/sbin"])
    {
        let candidate = PathBuf::from(dir).join("redis-server");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "redis-server is not installed. Run the whole suite with `scripts/test`, which installs it, \
         or install it yourself: `sudo apt-get install redis-server`"
    );
}

/// A certificate authority made at test time, which issues server and client
/// certificates.
pub struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.key_usages =
            vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let key = rcgen::KeyPair::generate().unwrap();
        Self { issuer: rcgen::CertifiedIssuer::self_signed(params, key).unwrap() }
    }

    /// The CA's certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `name` (a server's DNS name, or a client's), and its
    /// private key, both PEM.
    pub fn issue(&self, name: &str) -> (String, String) {
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

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
