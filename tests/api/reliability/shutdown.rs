//! SIGTERM under load: every request sent before it is answered, later ones
//! are answered or refused, never half-answered.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{WINDOW, a_minute_ago_ms, assert_stored_as_sent, reading, stored};
use crate::common::{
    Backend, NoResponse, RawConnection, RawResponse, eventually, spawn_app_on, spawn_app_with,
};
use tributary::config::ServeSettings;

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

/// How a response, or its absence, ends a request; and whether the connection
/// stays open.
fn outcome(read: Result<RawResponse, NoResponse>) -> (Outcome, bool) {
    match read {
        Err(NoResponse::Closed) => (Outcome::Unanswered, false),
        Err(NoResponse::Partial(head)) => {
            (Outcome::Wrong(format!("half an answer: {head:?}")), false)
        }
        Err(NoResponse::TimedOut) => (Outcome::Wrong("no answer within 10 s".into()), false),
        Ok(answer) if answer.status == 200 && answer.body == r#"{"accepted":1}"# => {
            (Outcome::Accepted, answer.keep_alive())
        }
        Ok(answer) => {
            (Outcome::Wrong(format!("{:?} {:?}", answer.head, answer.body)), answer.keep_alive())
        }
    }
}

/// A sensor on one keep-alive connection, posting readings of its own vehicle
/// back to back until the server refuses to connect.
async fn sensor(port: u16, vehicle: String, acknowledged: Arc<AtomicUsize>) -> Vec<Request> {
    let base_ms = a_minute_ago_ms();
    let mut requests = Vec::new();
    let mut connection: Option<RawConnection> = None;
    for seq in 0..WINDOW {
        let mut raw = match connection.take() {
            Some(raw) => raw,
            None => match RawConnection::open(port).await {
                Ok(raw) => raw,
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
        let written = raw.send(readings_request(&vehicle, base_ms, seq)).await;
        let written_at = Instant::now();
        let (outcome, keep_open) = match written {
            Err(_) => (Outcome::Unanswered, false),
            Ok(()) => outcome(raw.response().await),
        };
        if outcome == Outcome::Accepted {
            acknowledged.fetch_add(1, Ordering::SeqCst);
        }
        requests.push(Request { seq, written_at, answered_at: Instant::now(), outcome });
        if keep_open {
            connection = Some(raw);
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
    let mut connection = RawConnection::open(app.port).await.unwrap();
    let request = |seq: u32| readings_request("car-1", a_minute_ago_ms(), seq);
    connection.send(request(0)).await.unwrap();
    assert_eq!(outcome(connection.response().await), (Outcome::Accepted, true));

    connection.send(request(1)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), app.stop()).await.expect("shutdown finishes");
    assert_eq!(outcome(connection.response().await), (Outcome::Accepted, false), "closed after it");
}
