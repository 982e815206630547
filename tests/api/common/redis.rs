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
    pub(super) fn start_cluster_node(extra: &[&str]) -> Self {
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
