//! Reliability under failure: Redis killed under a steady write load, a Redis
//! that stops answering, and SIGTERM under load. Each test states a promise a
//! client can build on; see the README's "Operating it".

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::faults::{SilentServer, TcpProxy};
use crate::common::{Backend, TestApp, eventually, spawn_app_at, spawn_app_on, spawn_app_with};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tributary::config::ServeSettings;

/// The bound on an answer when Redis is silent: the 1 s store deadline, plus
/// slack for a loaded machine. Not a speed goal, a no-hang guarantee.
const DEADLINE: Duration = Duration::from_millis(2500);

/// The widest window: every reading a test sends stays in it, so the window
/// shows exactly which readings Redis holds.
const WINDOW: u32 = 10_000;

/// How long Redis stays down in the SIGKILL test.
const OUTAGE: Duration = Duration::from_secs(1);

/// Milliseconds since the epoch a minute ago: device timestamps for readings
/// numbered from 0, one millisecond apart, never in the future.
fn a_minute_ago_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    i64::try_from(now.as_millis()).unwrap() - 60_000
}

/// Reading `seq` of a writer: its own device timestamp, and its number as the value.
fn reading(base_ms: i64, seq: u32) -> Value {
    json!({"timestamp": base_ms + i64::from(seq), "engine_rpm": seq})
}

/// What a vehicle's `engine_rpm` window holds: the values, and the signal's `total`.
async fn stored(app: &TestApp, vehicle: &str) -> (BTreeSet<u32>, u64) {
    let answer = app.get(&format!("/v1/vehicles/{vehicle}/signals/engine_rpm")).await;
    assert_eq!(answer.status, 200, "{vehicle}: {}", answer.text);
    let window = answer.json();
    let values = window["readings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_f64().unwrap() as u32)
        .collect();
    (values, window["total"].as_u64().unwrap())
}

/// What a writer's vehicle holds (`stored`) after it sent readings `0..sent`:
/// every acknowledged one, none it never sent, and a total that counts each
/// stored reading once.
fn assert_stored_as_sent(
    who: &str,
    (values, total): (&BTreeSet<u32>, u64),
    acknowledged: &BTreeSet<u32>,
    sent: usize,
) {
    let lost: Vec<_> = acknowledged.difference(values).collect();
    assert!(lost.is_empty(), "{who}: acknowledged readings lost: {lost:?}");
    assert!(values.iter().all(|&v| (v as usize) < sent), "{who}: a reading never sent is stored");
    assert_eq!(total, values.len() as u64, "{who}: total counts each stored reading once");
}

/// One write as its writer saw it.
struct Attempt {
    seq: u32,
    /// The status, or why there was none.
    status: Result<u16, String>,
    retry_after: bool,
    started: Instant,
    took: Duration,
}

/// A writer posting readings of its own vehicle back to back until `stop`.
struct Writer {
    acknowledged: AtomicUsize,
    refused: AtomicUsize,
}

impl Writer {
    async fn run(
        self: Arc<Self>,
        client: reqwest::Client,
        url: String,
        stop: Arc<AtomicBool>,
    ) -> Vec<Attempt> {
        let base_ms = a_minute_ago_ms();
        let mut attempts = Vec::new();
        // The window must hold every reading sent, so that it shows which were stored.
        for seq in 0..WINDOW {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let started = Instant::now();
            let response = client.post(&url).json(&reading(base_ms, seq)).send().await;
            let took = started.elapsed();
            let status = response.as_ref().map(|r| r.status().as_u16()).map_err(|e| e.to_string());
            let retry_after =
                response.is_ok_and(|r| r.headers().contains_key(reqwest::header::RETRY_AFTER));
            match status {
                Ok(200) => self.acknowledged.fetch_add(1, Ordering::SeqCst),
                _ => self.refused.fetch_add(1, Ordering::SeqCst),
            };
            attempts.push(Attempt { seq, status, retry_after, started, took });
        }
        attempts
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sigkilled_under_load_costs_fast_503s_then_recovers_in_2s_losing_no_acked_write() {
    let mut app = spawn_app_with(Backend::Redis, |s| s.window = WINDOW).await;
    let mut redis = app.redis.take().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<Arc<Writer>> =
        (0..4).map(|_| Arc::new(Writer { acknowledged: 0.into(), refused: 0.into() })).collect();
    let tasks: Vec<_> = writers
        .iter()
        .enumerate()
        .map(|(w, writer)| {
            let url = app.url(&format!("/v1/vehicles/w{w}/readings"));
            tokio::spawn(writer.clone().run(app.client.clone(), url, stop.clone()))
        })
        .collect();
    let all = |what: fn(&Writer) -> usize, at_least: Vec<usize>| {
        let writers = writers.clone();
        move || {
            let done = writers.iter().zip(&at_least).all(|(w, &n)| what(w) >= n);
            std::future::ready(done.then_some(()))
        }
    };
    let acknowledged = |w: &Writer| w.acknowledged.load(Ordering::SeqCst);
    let refused = |w: &Writer| w.refused.load(Ordering::SeqCst);
    let counts = |what: fn(&Writer) -> usize, plus: usize| -> Vec<usize> {
        writers.iter().map(|w| what(w) + plus).collect()
    };

    eventually(Duration::from_secs(10), "20 writes each", all(acknowledged, vec![20; 4])).await;
    redis.kill();
    let killed_at = Instant::now();
    eventually(Duration::from_secs(10), "3 refusals each", all(refused, counts(refused, 3))).await;
    // An outage long enough for any reconnect backoff to grow.
    tokio::time::sleep_until((killed_at + OUTAGE).into()).await;
    let restarting_at = Instant::now();
    let _redis = tokio::task::spawn_blocking(move || {
        redis.restart();
        redis
    })
    .await
    .unwrap();
    let back_at = Instant::now();
    eventually(Duration::from_secs(10), "a write each", all(acknowledged, counts(acknowledged, 1)))
        .await;
    let recovered_in = back_at.elapsed();
    eventually(
        Duration::from_secs(10),
        "20 more each",
        all(acknowledged, counts(acknowledged, 20)),
    )
    .await;
    stop.store(true, Ordering::Relaxed);

    eprintln!("down {:?}, recovered in {recovered_in:?}", restarting_at - killed_at);
    assert!(recovered_in < Duration::from_secs(2), "writes recovered only after {recovered_in:?}");
    for (w, task) in tasks.into_iter().enumerate() {
        let attempts = task.await.unwrap();
        let (values, total) = stored(&app, &format!("w{w}")).await;
        let mut acknowledged = BTreeSet::new();
        for a in &attempts {
            match a.status {
                Ok(200) => {
                    let during_outage = a.started > killed_at && a.started + a.took < restarting_at;
                    assert!(!during_outage, "w{w}: reading {} acknowledged with Redis dead", a.seq);
                    acknowledged.insert(a.seq);
                }
                Ok(503) => {
                    assert!(a.took < crate::common::FAST_503, "w{w}: a 503 took {:?}", a.took);
                    assert!(a.retry_after, "w{w}: a 503 without Retry-After");
                }
                ref other => panic!("w{w}: reading {} got {other:?}", a.seq),
            }
        }
        assert_stored_as_sent(&format!("w{w}"), (&values, total), &acknowledged, attempts.len());
        assert!(acknowledged.len() < attempts.len(), "w{w} saw no outage");
        eprintln!(
            "w{w}: {} sent, {} acknowledged, {} stored",
            attempts.len(),
            acknowledged.len(),
            values.len()
        );
    }
}

/// Asks every route that needs the store, five times each and all at once,
/// and asserts every answer is a 503 with `Retry-After` within `DEADLINE`: requests
/// queued behind a silent connection get their deadline too.
async fn assert_every_store_route_answers_503_in_time(app: &TestApp) {
    let requests = [
        app.client.post(app.url("/record")).json(&json!({"engine_temperature": 90})),
        app.client.get(app.url("/collect")),
        app.client.post(app.url("/v1/vehicles/car-1/readings")).json(&json!({"engine_rpm": 900})),
        app.client.get(app.url("/v1/vehicles/car-1")),
        app.client.get(app.url("/v1/vehicles/car-1/signals/engine_rpm")),
        app.client.get(app.url("/readyz")),
    ];
    let answers: Vec<_> = (0..5)
        .flat_map(|_| requests.iter().map(|r| r.try_clone().unwrap()))
        .map(|request| {
            tokio::spawn(async move {
                let started = Instant::now();
                let response = request.send().await.expect("the service answers");
                (response, started.elapsed())
            })
        })
        .collect();
    for answer in answers {
        let (response, took) = answer.await.unwrap();
        let route = response.url().path().to_owned();
        assert_eq!(response.status(), 503, "{route}");
        assert!(response.headers().contains_key(reqwest::header::RETRY_AFTER), "{route}");
        assert!(took < DEADLINE, "{route} answered after {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_accepts_but_never_answers_gets_503s_within_the_store_deadline() {
    let silent = SilentServer::start().await;
    let app = spawn_app_at(silent.url()).await;
    assert_every_store_route_answers_503_in_time(&app).await;
    assert_every_store_route_answers_503_in_time(&app).await;
    assert_eq!(app.get("/healthz").await.status, 200, "the process stays alive");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_goes_silent_gets_503s_within_the_deadline_and_is_replaced() {
    let redis = crate::common::RedisServer::start();
    let proxy = TcpProxy::start(redis.port).await;
    let app = spawn_app_at(proxy.url()).await;
    let app = &app;
    let record = |value: u32| async move {
        app.post_json("/v1/vehicles/car-1/readings", &json!({"engine_rpm": value})).await
    };
    assert_eq!(record(1).await.status, 200, "healthy through the proxy");

    proxy.stall();
    assert_every_store_route_answers_503_in_time(app).await;
    // The replacement connection is as silent: it is replaced in turn.
    assert_every_store_route_answers_503_in_time(app).await;

    // Redis is reachable again, but the stalled connection never comes back, as
    // with a half-open connection to a host that crashed or a failed-over address.
    proxy.forward_new_connections();
    let back_at = Instant::now();
    eventually(Duration::from_secs(10), "a write through a new connection", || async {
        (record(2).await.status == 200).then_some(())
    })
    .await;
    let recovered_in = back_at.elapsed();
    assert!(recovered_in < Duration::from_secs(3), "recovered only after {recovered_in:?}");
    assert!(proxy.connections() >= 3, "{} connections", proxy.connections());
    let window = app.get("/v1/vehicles/car-1/signals/engine_rpm").await.json();
    assert_eq!(window["current"], 2.0, "{window}");
}

/// How a request to the real binary ended, as a client can tell.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// 200 with `{"accepted":1}`.
    Accepted,
    /// The connection was refused: the listener is closed.
    Refused,
    /// The connection closed (end of file or reset) before a byte of an answer.
    Unanswered,
    /// Anything else: another status or body, half an answer, no answer in 10 s.
    Wrong(String),
}

struct Request {
    seq: u32,
    /// When the whole request had been written (or the write failed).
    written_at: Instant,
    answered_at: Instant,
    outcome: Outcome,
}

/// `POST /v1/vehicles/<vehicle>/readings` of reading `seq`, as raw HTTP/1.1.
fn readings_request(vehicle: &str, base_ms: i64, seq: u32) -> String {
    let body = reading(base_ms, seq).to_string();
    format!(
        "POST /v1/vehicles/{vehicle}/readings HTTP/1.1\r\nHost: tributary\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Reads one HTTP/1.1 response: its outcome, and whether the connection stays open.
async fn read_answer(stream: &mut BufReader<TcpStream>) -> (Outcome, bool) {
    let mut head = String::new();
    loop {
        let before = head.len();
        match stream.read_line(&mut head).await {
            Ok(0) | Err(_) if head.is_empty() => return (Outcome::Unanswered, false),
            Ok(0) | Err(_) => return (Outcome::Wrong(format!("half an answer: {head:?}")), false),
            Ok(_) if head[before..] == *"\r\n" => break,
            Ok(_) => {}
        }
    }
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (key, value) = l.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim().to_ascii_lowercase())
        })
    };
    let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let keep_open = header("connection").is_none_or(|v| v != "close");
    let mut body = vec![0; length];
    if let Err(err) = stream.read_exact(&mut body).await {
        return (Outcome::Wrong(format!("half a body ({err}): {head:?}")), false);
    }
    let body = String::from_utf8_lossy(&body);
    if head.starts_with("HTTP/1.1 200 ") && body == r#"{"accepted":1}"# {
        (Outcome::Accepted, keep_open)
    } else {
        (Outcome::Wrong(format!("{head:?} {body:?}")), keep_open)
    }
}

/// A sensor on one keep-alive connection, posting readings of its own vehicle
/// back to back until the server refuses to connect.
async fn sensor(port: u16, vehicle: String, acknowledged: Arc<AtomicUsize>) -> Vec<Request> {
    let base_ms = a_minute_ago_ms();
    let mut requests = Vec::new();
    let mut connection: Option<BufReader<TcpStream>> = None;
    for seq in 0..WINDOW {
        let mut stream = match connection.take() {
            Some(stream) => stream,
            None => match TcpStream::connect(("127.0.0.1", port)).await {
                Ok(stream) => BufReader::new(stream),
                Err(err) => {
                    let outcome = match err.kind() {
                        std::io::ErrorKind::ConnectionRefused => Outcome::Refused,
                        _ => Outcome::Wrong(format!("cannot connect: {err}")),
                    };
                    let at = Instant::now();
                    requests.push(Request { seq, written_at: at, answered_at: at, outcome });
                    break;
                }
            },
        };
        let request = readings_request(&vehicle, base_ms, seq);
        let written = stream.get_mut().write_all(request.as_bytes()).await;
        let written_at = Instant::now();
        let (outcome, keep_open) = match written {
            Err(_) => (Outcome::Unanswered, false),
            Ok(()) => match tokio::time::timeout(Duration::from_secs(10), read_answer(&mut stream))
                .await
            {
                Ok(answer) => answer,
                Err(_) => (Outcome::Wrong("no answer within 10 s".into()), false),
            },
        };
        if outcome == Outcome::Accepted {
            acknowledged.fetch_add(1, Ordering::SeqCst);
        }
        requests.push(Request { seq, written_at, answered_at: Instant::now(), outcome });
        if keep_open {
            connection = Some(stream);
        }
    }
    requests
}

/// 32 sensors write to the real binary; SIGTERM lands mid-stream. Every request
/// written before the signal gets its real answer, later ones are answered or
/// refused, never half-answered; the process exits 0; on Redis, every
/// acknowledged reading is there for the next process.
async fn sigterm_under_load_answers_every_request_sent_before_it_and_exits_0(backend: Backend) {
    let redis = (backend == Backend::Redis).then(crate::common::RedisServer::start);
    let window = WINDOW.to_string();
    let mut envs = vec![("TRIBUTARY_WINDOW", window.as_str()), ("TRIBUTARY_LOG", "warn")];
    let url = redis.as_ref().map(crate::common::RedisServer::url);
    if let Some(url) = &url {
        envs.push(("TRIBUTARY_REDIS_URL", url));
    }
    let log = tempfile::NamedTempFile::new().unwrap();
    let (mut server, port) = crate::common::start_binary(&envs, log.reopen().unwrap());
    let logs = || std::fs::read_to_string(log.path()).unwrap();

    let counters: Vec<Arc<AtomicUsize>> = (0..32).map(|_| Arc::default()).collect();
    let sensors: Vec<_> = counters
        .iter()
        .enumerate()
        .map(|(s, count)| tokio::spawn(sensor(port, format!("s{s}"), count.clone())))
        .collect();
    eventually(Duration::from_secs(10), "50 answers per sensor", || {
        std::future::ready(counters.iter().all(|c| c.load(Ordering::SeqCst) >= 50).then_some(()))
    })
    .await;
    let signalled_at = Instant::now();
    server.signal("TERM");

    let mut acknowledged: Vec<BTreeSet<u32>> = Vec::new();
    let mut sent = Vec::new();
    let (mut in_flight, mut refused, mut unanswered) = (0, 0, 0);
    for (s, sensor) in sensors.into_iter().enumerate() {
        let requests = tokio::time::timeout(Duration::from_secs(15), sensor)
            .await
            .expect("every sensor is refused at last: the listener closes")
            .unwrap();
        for r in &requests {
            if r.written_at < signalled_at {
                assert_eq!(
                    r.outcome,
                    Outcome::Accepted,
                    "s{s}: reading {} sent before SIGTERM",
                    r.seq
                );
                in_flight += usize::from(r.answered_at > signalled_at);
            }
            match r.outcome {
                Outcome::Accepted => {}
                Outcome::Refused => refused += 1,
                Outcome::Unanswered => unanswered += 1,
                Outcome::Wrong(ref what) => panic!("s{s}: reading {}: {what}\n{}", r.seq, logs()),
            }
        }
        let accepted = requests.iter().filter(|r| r.outcome == Outcome::Accepted);
        acknowledged.push(accepted.map(|r| r.seq).collect());
        sent.push(requests.len());
    }
    let status = tokio::task::spawn_blocking(move || server.wait_for_exit(Duration::from_secs(10)))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("still running 10 s after the sensors were refused"));
    assert_eq!(status.code(), Some(0), "{}", logs());
    eprintln!("{in_flight} in flight at SIGTERM, {unanswered} unanswered after, {refused} refused");
    assert!(in_flight > 0, "no request was in flight at SIGTERM: the test proves nothing");

    let Some(redis) = redis else { return };
    let mut settings = ServeSettings::for_tests();
    settings.redis_url = Some(redis.url().into());
    settings.window = WINDOW;
    let next = spawn_app_on(settings, None).await;
    for (s, acknowledged) in acknowledged.iter().enumerate() {
        let vehicle = format!("s{s}");
        let (values, total) = stored(&next, &vehicle).await;
        assert_stored_as_sent(&vehicle, (&values, total), acknowledged, sent[s]);
    }
}

on_both_stores!(sigterm_under_load_answers_every_request_sent_before_it_and_exits_0);

/// The race behind the test above, made certain: on one thread, the next
/// request is in the server's socket, unread, when shutdown begins (the server
/// cannot run between the write and the stop). It still gets its answer.
#[tokio::test(flavor = "current_thread")]
async fn a_request_already_sent_when_shutdown_begins_is_answered() {
    let app = spawn_app_with(Backend::Memory, |_| {}).await;
    let mut stream = BufReader::new(TcpStream::connect(("127.0.0.1", app.port)).await.unwrap());
    let request = |seq: u32| readings_request("car-1", a_minute_ago_ms(), seq);
    stream.get_mut().write_all(request(0).as_bytes()).await.unwrap();
    assert_eq!(read_answer(&mut stream).await, (Outcome::Accepted, true));

    stream.get_mut().write_all(request(1).as_bytes()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), app.stop()).await.expect("shutdown finishes");
    assert_eq!(read_answer(&mut stream).await, (Outcome::Accepted, false), "closed after it");
}
