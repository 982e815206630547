//! The real binary as an operator runs it: `--help`, logs, signals.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{Process, RawConnection, exchange};

/// A `tributary serve` process, killed if the test ends early. Its logs are
/// read as they come, so a chatty server never blocks on a full pipe.
pub struct Server {
    process: Process,
    pub port: u16,
    logs: std::thread::JoinHandle<String>,
}

impl Server {
    pub fn start(envs: &[(&str, &str)]) -> Self {
        let (mut process, port) = crate::common::start_binary(envs, Stdio::piped());
        let mut stderr = process.0.stderr.take().unwrap();
        let logs = std::thread::spawn(move || {
            let mut logs = String::new();
            let _ = stderr.read_to_string(&mut logs);
            logs
        });
        Self { process, port, logs }
    }

    pub fn signal(&self, name: &str) {
        self.process.signal(name);
    }

    /// Waits for exit, with a deadline; returns (exit code, everything logged).
    pub fn wait(mut self, deadline: Duration) -> (Option<i32>, String) {
        let status = self.process.wait_for_exit(deadline);
        let status =
            status.unwrap_or_else(|| panic!("the server did not exit within {deadline:?}"));
        (status.code(), self.logs.join().unwrap())
    }
}

/// Runs `tributary <args>` and asserts that its output mentions every one of `expected`.
fn assert_help_mentions(args: &[&str], expected: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_tributary")).args(args).output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for expected in expected {
        assert!(
            help.contains(expected),
            "`tributary {}` lacks {expected:?}:\n{help}",
            args.join(" ")
        );
    }
}

#[test]
fn help_documents_every_setting_with_its_default() {
    assert_help_mentions(
        &["serve", "--help"],
        &[
            "TRIBUTARY_LISTEN",
            "[default: 0.0.0.0:8000]",
            "TRIBUTARY_REDIS_URL",
            "TRIBUTARY_WINDOW",
            "[default: 10]",
            "TRIBUTARY_RETENTION",
            "[default: 7d]",
            "TRIBUTARY_LOG",
            "[default: info]",
            "TRIBUTARY_LOG_FORMAT",
            "[default: text]",
            "TRIBUTARY_SIGNALS",
            "TRIBUTARY_CLIENT_TIMEOUT",
            "TRIBUTARY_SHUTDOWN_TIMEOUT",
            "TRIBUTARY_SHUTDOWN_DELAY",
            "[default: 0s]",
            "TRIBUTARY_STORE_TIMEOUT",
            "TRIBUTARY_MAX_IN_FLIGHT",
            "TRIBUTARY_MAX_CONNECTIONS",
            "TRIBUTARY_VEHICLE_RATE",
            "TRIBUTARY_VEHICLE_BURST",
            "TRIBUTARY_MAX_VEHICLES",
            "[default: 1000000]",
        ],
    );
}

#[test]
fn top_level_help_lists_every_serve_setting_with_its_default() {
    assert_help_mentions(
        &["--help"],
        &[
            "TRIBUTARY_LISTEN",
            "default: 0.0.0.0:8000",
            "TRIBUTARY_REDIS_URL",
            "TRIBUTARY_WINDOW",
            "default: 10",
            "TRIBUTARY_RETENTION",
            "default: 7d",
            "TRIBUTARY_SIGNALS",
            "TRIBUTARY_CLIENT_TIMEOUT",
            "TRIBUTARY_SHUTDOWN_TIMEOUT",
            "TRIBUTARY_STORE_TIMEOUT",
            "TRIBUTARY_MAX_IN_FLIGHT",
            "default: 256",
            "TRIBUTARY_MAX_CONNECTIONS",
            "default: 4096",
            "TRIBUTARY_VEHICLE_RATE",
            "default: 1000",
            "TRIBUTARY_VEHICLE_BURST",
            "default: 2000",
            "TRIBUTARY_LOG",
            "TRIBUTARY_LOG_FORMAT",
        ],
    );
}

#[test]
fn a_bad_setting_is_refused_with_a_clear_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("serve")
        .env("TRIBUTARY_WINDOW", "0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--window") && stderr.contains("0"), "{stderr}");
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_then_exits_0() {
    let server = Server::start(&[]);
    // Start a request whose body is still arriving when SIGTERM lands.
    let mut connection = RawConnection::open(server.port).await.unwrap();
    let body = r#"{"engine_temperature": 90}"#;
    let head = format!(
        "POST /record HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        &body[..5]
    );
    connection.send(head).await.unwrap();
    // The server must have started reading the request before the signal: wait
    // until a second connection is served, which proves the accept loop is past ours.
    let _ = exchange(server.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    server.signal("TERM");
    connection.send(&body.as_bytes()[5..]).await.unwrap();
    let response = connection.response().await.unwrap();
    assert!(response.head.starts_with("HTTP/1.1 200"), "{response:?}");
    let (code, logs) = server.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{logs}");
    assert!(logs.contains("received SIGTERM"), "{logs}");
}

#[test]
fn ctrl_c_exits_0() {
    let server = Server::start(&[]);
    server.signal("INT");
    let (code, logs) = server.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{logs}");
    assert!(logs.contains("received Ctrl-C"), "{logs}");
}

#[tokio::test]
async fn the_redis_password_never_reaches_the_logs() {
    let server = Server::start(&[("TRIBUTARY_REDIS_URL", "redis://:hunter2@127.0.0.1:1/0")]);
    let _ =
        exchange(server.port, "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    server.signal("TERM");
    let (_, logs) = server.wait(Duration::from_secs(10));
    assert!(logs.contains("redis://***@127.0.0.1:1/0"), "{logs}");
    assert!(!logs.contains("hunter2"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_times_more_clients_than_the_in_flight_limit_get_200_or_503_and_nothing_acknowledged_is_lost()
 {
    const CLIENTS: usize = 40;
    const EACH: usize = 50;
    let redis = crate::common::RedisServer::start();
    let server = Server::start(&[
        ("TRIBUTARY_REDIS_URL", redis.url().as_str()),
        ("TRIBUTARY_MAX_IN_FLIGHT", "4"),
        ("TRIBUTARY_VEHICLE_RATE", "0"),
    ]);
    let url = format!("http://127.0.0.1:{}/v1/vehicles/crowd/readings", server.port);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let (mut ok, mut shed, mut unavailable) = (0, 0, 0);
                for i in 0..EACH {
                    let response = client
                        .post(&url)
                        .json(&serde_json::json!({"engine_rpm": c * 100 + i}))
                        .send()
                        .await
                        .expect("every request gets an answer");
                    match response.status().as_u16() {
                        200 => ok += 1,
                        503 => {
                            assert_eq!(response.headers()["retry-after"], "1");
                            let problem: serde_json::Value = response.json().await.unwrap();
                            // An fsync that stalls Redis past the store timeout
                            // is a 503 too, of its own kind.
                            match problem["type"].as_str().unwrap() {
                                "urn:tributary:problem:overloaded" => shed += 1,
                                "urn:tributary:problem:store-unavailable" => unavailable += 1,
                                other => panic!("a 503 of type {other}"),
                            }
                        }
                        other => panic!("{other}: {}", response.text().await.unwrap()),
                    }
                }
                (ok, shed, unavailable)
            })
        })
        .collect();
    let (mut ok, mut shed, mut unavailable) = (0, 0, 0);
    for client in clients {
        let (o, s, u) = client.await.unwrap();
        ok += o;
        shed += s;
        unavailable += u;
    }
    assert_eq!(ok + shed + unavailable, CLIENTS * EACH);
    assert!(shed > 0, "40 clients against a limit of 4 were never shed");
    assert!(ok > 0);
    let summary: serde_json::Value = client
        .get(format!("http://127.0.0.1:{}/v1/vehicles/crowd", server.port))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Every acknowledged reading is counted and nothing shed is; a write that
    // met an unavailable store may or may not have been applied.
    let total = summary["signals"]["engine_rpm"]["total"].as_u64().unwrap() as usize;
    assert!((ok..=ok + unavailable).contains(&total), "total {total}, {ok} acknowledged");
    server.signal("TERM");
    let (code, logs) = server.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{logs}");
}
