//! Test helpers: a real `redis-server` on a free port, and the real application
//! started in-process on a free port, with one helper per endpoint.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tributary::config::ServeSettings;
use tributary::startup::Application;

/// A child process of a test, killed and reaped when dropped (a `Child` is
/// not), so a failing test leaves no process behind.
pub struct Process(pub Child);

impl Process {
    pub fn spawn(command: &mut Command) -> std::io::Result<Self> {
        command.spawn().map(Self)
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Sends a signal by name (`TERM`, `INT`, …).
    pub fn signal(&self, name: &str) {
        let pid = self.id().to_string();
        let status = Command::new("kill").args([&format!("-{name}"), &pid]).status().unwrap();
        assert!(status.success(), "`kill -{name} {pid}` failed with {status}");
    }

    /// Whether it has exited, and how.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.try_wait().expect("the child's status")
    }

    /// Waits up to `deadline` for it to exit; `None` if it is still running.
    pub fn wait_for_exit(&mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if started.elapsed() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The bound on a 503 while Redis is down (the issue's: well under 3 s). They
/// take about 0.1 s, connections being refused at once: this is not a speed
/// goal but a no-hang guarantee.
pub const FAST_503: Duration = Duration::from_millis(2000);

/// Polls `check` every 10 ms until it returns `Some`, or panics after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `redis-server` process of our own, with AOF on (`appendfsync always`), in a
/// temporary directory. Killed when dropped.
pub struct RedisServer {
    child: Option<Process>,
    pub port: u16,
    dir: tempfile::TempDir,
    /// Serves TLS only (a self-signed certificate for `localhost`).
    tls: bool,
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

    fn unstarted(dir: tempfile::TempDir, tls: bool, extra: &[&str]) -> Self {
        Self {
            child: None,
            port: 0,
            dir,
            tls,
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
            command
                .args(["--port", "0", "--tls-port", &port, "--tls-auth-clients", "no"])
                .args(["--tls-cert-file", &format!("{dir}/cert.pem")])
                .args(["--tls-key-file", &format!("{dir}/key.pem")]);
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

/// A signal catalog file adding `battery_voltage` (V, 0 to 60, VSS path
/// `Vehicle.LowVoltageBattery.CurrentVoltage`). Keep it alive while the app runs.
pub fn battery_voltage_catalog() -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write!(
        file,
        "[[signal]]\nname = \"battery_voltage\"\nunit = \"V\"\nmin = 0\nmax = 60\n\
         description = \"Low-voltage battery\"\nvss_path = \"Vehicle.LowVoltageBattery.CurrentVoltage\"\n"
    )
    .unwrap();
    file
}

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Redis,
}

/// The running application, and the Redis behind it if any.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub redis: Option<RedisServer>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(
    backend: Backend,
    customize: impl FnOnce(&mut ServeSettings),
) -> TestApp {
    let redis = (backend == Backend::Redis).then(RedisServer::start);
    let mut settings = ServeSettings::for_tests();
    settings.redis_url = redis.as_ref().map(|redis| redis.url().into());
    customize(&mut settings);
    spawn_app_on(settings, redis).await
}

/// The service on a Redis the test runs or fakes itself, at `url`.
pub async fn spawn_app_at(url: impl Into<String>) -> TestApp {
    let mut settings = ServeSettings::for_tests();
    settings.redis_url = Some(url.into().into());
    spawn_app_on(settings, None).await
}

pub async fn spawn_app_on(settings: ServeSettings, redis: Option<RedisServer>) -> TestApp {
    let app = Application::build(&settings).await.expect("the application builds");
    let port = app.port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        redis,
        shutdown: Some(tx),
        server: Some(server),
    }
}

/// A response with its body already read.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    /// The value of header `name`, which must be there.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header; body: {}", self.text))
            .to_str()
            .unwrap()
    }
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    /// Asserts an RFC 9457 problem with `status` whose detail mentions `needle`.
    pub fn assert_problem(&self, status: u16, needle: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.text);
        assert_eq!(self.content_type, "application/problem+json", "body: {}", self.text);
        let body = self.json();
        assert_eq!(body["status"], status, "{body}");
        assert!(body["type"].as_str().unwrap().starts_with("urn:tributary:problem:"), "{body}");
        assert!(body["title"].is_string(), "{body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(needle), "detail {detail:?} should mention {needle:?}");
        body
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the request reaches the server");
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        Answer { status, content_type, headers, text }
    }

    pub async fn post_record(&self, body: &Value) -> Answer {
        self.send(self.client.post(self.url("/record")).json(body)).await
    }

    pub async fn post_record_raw(
        &self,
        body: impl Into<reqwest::Body>,
        content_type: Option<&str>,
    ) -> Answer {
        let mut request = self.client.post(self.url("/record")).body(body);
        if let Some(content_type) = content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        self.send(request).await
    }

    pub async fn collect(&self) -> Value {
        let answer = self.send(self.client.get(self.url("/collect"))).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        answer.json()
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.client.get(self.url(path))).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Answer {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    pub fn redis(&mut self) -> &mut RedisServer {
        self.redis.as_mut().expect("this app runs on Redis")
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the server.
    pub async fn stop(mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        self.server.take().unwrap().await.unwrap().unwrap();
    }
}

/// Generates one `#[tokio::test]` per store for each listed `async fn(Backend)`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Memory).await
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Redis).await
                }
            )*
        }
    };
}

/// `tributary serve` as a process on a free port, with only `envs` (plus the
/// port) in its environment and its stderr sent to `log` (a file, or a pipe
/// the caller drains). Returns once it listens.
pub fn start_binary(envs: &[(&str, &str)], log: impl Into<Stdio>) -> (Process, u16) {
    let port = free_port();
    let mut process = Process::spawn(
        Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("serve")
            .env_clear()
            .env("TRIBUTARY_LISTEN", format!("127.0.0.1:{port}"))
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(log),
    )
    .expect("cannot start tributary");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(process.exited().is_none(), "tributary exited at start");
        assert!(Instant::now() < deadline, "tributary did not listen within 10 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    (process, port)
}

pub mod faults;
