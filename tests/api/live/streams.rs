//! The stream routes of real service processes: across two instances sharing
//! a `redis-server`, a client that stops reading, Redis killed under open
//! streams, SIGTERM with 200 open streams, the stream limit, and the seed
//! API's `/collect/stream`.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{DEADLINE, EventStream, Service, current, data};
use crate::common::{RawConnection, RedisServer, eventually};

const STREAM: &str = "/v1/vehicles/car-1/stream";

/// Reads events until one shows `signal` at `value`; asserts that ids go up
/// by one and that no event shows a newer value than `value` first (the
/// values a test writes only increase). Returns the events read.
async fn until_current(
    stream: &mut EventStream,
    last_id: &mut u64,
    signal: &str,
    value: f64,
) -> Vec<eventsource_stream::Event> {
    let mut seen = Vec::new();
    loop {
        let event = stream.next().await;
        let id: u64 = event.id.parse().unwrap();
        assert_eq!(id, *last_id + 1, "ids go up by one: {event:?}");
        *last_id = id;
        assert_ne!(event.event, "shutdown", "shut down while waiting for {value}");
        let shown = current(&event, signal);
        seen.push(event);
        match shown {
            Some(shown) if shown == value => return seen,
            Some(shown) => assert!(shown < value, "{shown} shown before {value}"),
            None => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_written_through_one_instance_streams_from_the_other_snapshot_first_then_in_order()
 {
    let redis = RedisServer::start();
    let url = redis.url();
    let writer = Service::start(&[("TRIBUTARY_REDIS_URL", &url)]);
    let reader = Service::start(&[("TRIBUTARY_REDIS_URL", &url)]);
    // A reading before anyone watches: in the snapshot.
    assert_eq!(writer.write("car-1", "vehicle_speed", 1.0).await, 200);

    let mut stream = reader.stream(STREAM).await;
    let snapshot = stream.next().await;
    assert_eq!((snapshot.event.as_str(), snapshot.id.as_str()), ("snapshot", "1"));
    assert_eq!(current(&snapshot, "vehicle_speed"), Some(1.0));
    let mut last_id = 1;
    for value in 2..=30_i32 {
        assert_eq!(writer.write("car-1", "vehicle_speed", f64::from(value)).await, 200);
        let seen = until_current(&mut stream, &mut last_id, "vehicle_speed", value.into()).await;
        assert!(seen.iter().all(|e| e.event == "update"), "{seen:?}");
        let update = data(seen.last().unwrap());
        let summary = &update["signals"]["vehicle_speed"];
        // The summary, not the raw reading: as GET /v1/vehicles/{id} has it.
        assert_eq!(summary["max"], f64::from(value), "{update}");
        assert_eq!(summary["min"], f64::from(value.saturating_sub(9).max(1)), "{update}");
        assert_eq!(summary["unit"], "km/h", "{update}");
        assert_eq!(update["skipped"], 0, "{update}");
    }

    // The stream's state is the vehicle's, as the reading instance reads it.
    let vehicle: Value = reader
        .client
        .get(reader.url("/v1/vehicles/car-1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(vehicle["signals"]["vehicle_speed"]["current"], 30.0);
    // A later subscriber starts from the current state.
    let mut late = reader.stream(STREAM).await;
    assert_eq!(current(&late.next().await, "vehicle_speed"), Some(30.0));
}

/// Opens a stream over a raw socket with a small receive buffer, reads its
/// head and snapshot, and returns the socket (unread from then on).
async fn stalled_client(port: u16, path: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: tributary\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    while !String::from_utf8_lossy(&received).contains("event: snapshot") {
        let mut buffer = [0; 1024];
        let n = tokio::time::timeout(DEADLINE, stream.read(&mut buffer)).await.unwrap().unwrap();
        assert!(n > 0, "closed before the snapshot");
        received.extend_from_slice(&buffer[..n]);
    }
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_never_slows_writes_and_then_gets_the_newest_state_with_skipped()
 {
    let service = Service::start(&[]);
    let mut stalled = stalled_client(service.port, STREAM).await;
    let signals = ["engine_rpm", "vehicle_speed", "engine_temperature", "cabin_temperature"];
    let write_all = |value: f64| {
        let service = &service;
        async move {
            let body: serde_json::Map<String, Value> =
                signals.iter().map(|s| ((*s).to_owned(), Value::from(value))).collect();
            let url = service.url("/v1/vehicles/car-1/readings");
            service.client.post(url).json(&body).send().await.unwrap().status().as_u16()
        }
    };
    // Write until the client's socket is full: then the server stops taking
    // events for it and merges the states it cannot send. A stall is two
    // batches in a row in which the count of updates sent stood still while
    // the count of merged ones rose: a hub that merely lags behind the writes
    // (a loaded machine) sends nothing for a while but merges nothing either.
    const SENT: &str = "tributary_stream_events_sent_total{event=\"update\"}";
    const SKIPPED: &str = "tributary_stream_updates_skipped_total";
    // The kernel may buffer a few MB for the server's side: thousands of
    // writes (about 10 s here). The deadline only guards against a hang.
    let deadline = Instant::now() + Duration::from_secs(180);
    let (mut batches, mut stalled_batches) = (0, 0);
    while stalled_batches < 2 {
        let (sent, skipped) = (service.metric(SENT).await, service.metric(SKIPPED).await);
        for n in 0..50 {
            assert_eq!(write_all(f64::from(n)).await, 200);
        }
        batches += 1;
        let merged = service.metric(SKIPPED).await - skipped;
        if service.metric(SENT).await == sent && merged >= 10.0 {
            stalled_batches += 1;
        } else {
            stalled_batches = 0;
        }
        assert!(Instant::now() < deadline, "{batches} batches and the client never stalled");
    }
    // With the client stalled, writes are answered all the same, every one,
    // and the server keeps merging what it cannot send.
    let (sent, skipped) = (service.metric(SENT).await, service.metric(SKIPPED).await);
    for n in 0..200 {
        assert_eq!(write_all(f64::from(n % 100)).await, 200, "write {n} while a client is stalled");
    }
    assert_eq!(service.metric(SENT).await, sent, "the client was not stalled throughout");
    assert!(service.metric(SKIPPED).await > skipped);
    let last = 99.0;

    // The client reads again: intermediate states are gone, the newest is not,
    // and an update says how many it missed.
    let mut text = String::new();
    let mut skipped_seen = 0;
    // Reading back what the kernel buffered (a few MB of events, each parsed
    // here) is progress, and took longer than DEADLINE once on a loaded CI
    // machine ("skipped seen: 8", still reading); each read has DEADLINE, and
    // this one, like the stall's above, only guards against a hang.
    let deadline = Instant::now() + Duration::from_secs(180);
    'reading: loop {
        assert!(
            Instant::now() < deadline,
            "the newest state never came; skipped seen: {skipped_seen}"
        );
        let mut buffer = vec![0; 64 * 1024];
        let n = tokio::time::timeout(DEADLINE, stalled.read(&mut buffer)).await.unwrap().unwrap();
        assert!(n > 0, "the stream closed");
        text.push_str(&String::from_utf8_lossy(&buffer[..n]));
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            let Some(json) = event.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            let data: Value = serde_json::from_str(json).unwrap();
            skipped_seen += data["skipped"].as_u64().unwrap_or(0);
            if data["signals"]["engine_rpm"]["current"] == last && skipped_seen > 0 {
                break 'reading;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_interval_coalesces_updates_into_the_newest_state() {
    let service = Service::start(&[]);
    let mut stream = service.stream(&format!("{STREAM}?min_interval_ms=2000")).await;
    stream.next().await;
    for value in 1..=20 {
        assert_eq!(service.write("car-1", "engine_rpm", f64::from(value) * 100.0).await, 200);
    }
    let (mut updates, mut skipped) = (0, 0);
    loop {
        let event = stream.next().await;
        assert_eq!(event.event, "update");
        updates += 1;
        skipped += data(&event)["skipped"].as_u64().unwrap();
        if current(&event, "engine_rpm") == Some(2000.0) {
            break;
        }
    }
    assert!(updates < 20 && skipped > 0, "{updates} updates, {skipped} skipped");
    assert!(service.metric("tributary_stream_updates_coalesced_total").await > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_redis_is_killed_and_restarted_every_stream_gets_a_snapshot_with_the_values_acknowledged_since()
 {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let service = Service::start(&[("TRIBUTARY_REDIS_URL", &url)]);
    assert_eq!(service.write("car-1", "engine_rpm", 1000.0).await, 200);
    let vehicles = ["car-1", "car-2", "car-3"];
    let mut streams = Vec::new();
    for vehicle in vehicles {
        let mut stream = service.stream(&format!("/v1/vehicles/{vehicle}/stream")).await;
        assert_eq!(stream.next().await.event, "snapshot");
        streams.push(stream);
    }

    redis.kill();
    redis.restart();
    // Acknowledged as soon as Redis is back, maybe before the feed is.
    for (n, vehicle) in vehicles.iter().enumerate() {
        let value = 2000.0 + n as f64;
        eventually(DEADLINE, "a write to be acknowledged", || async {
            (service.write(vehicle, "engine_rpm", value).await == 200).then_some(())
        })
        .await;
    }
    for (n, stream) in streams.iter_mut().enumerate() {
        let value = 2000.0 + n as f64;
        let mut snapshot_since = false;
        loop {
            let event = stream.next().await;
            snapshot_since |= event.event == "snapshot";
            // The restart's snapshot holds the value, or an update brings it.
            if snapshot_since && current(&event, "engine_rpm") == Some(value) {
                break;
            }
        }
    }
    assert!(service.metric("tributary_stream_resyncs_total").await >= 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_200_open_streams_with_a_shutdown_event_and_exits_0_within_the_timeout() {
    let mut service = Service::start(&[("TRIBUTARY_SHUTDOWN_TIMEOUT", "10s")]);
    let mut connections = Vec::new();
    for n in 0..200 {
        let mut raw = RawConnection::open(service.port).await.unwrap();
        let request = format!("GET /v1/vehicles/car-{}/stream HTTP/1.1\r\nHost: t\r\n\r\n", n % 20);
        raw.send(request).await.unwrap();
        connections.push(raw);
    }
    eventually(DEADLINE, "200 streams to be open", || async {
        (service.metric("tributary_streams_open").await == 200.0).then_some(())
    })
    .await;

    let signalled = Instant::now();
    service.process.signal("TERM");
    let readers = connections.into_iter().map(|mut raw| {
        tokio::spawn(async move { String::from_utf8(raw.read_to_close().await.unwrap()).unwrap() })
    });
    for (n, reader) in readers.enumerate() {
        let text = reader.await.unwrap();
        assert!(text.contains("event: snapshot"), "stream {n}: {text}");
        assert!(text.contains("event: shutdown\nid: 2\ndata: {}\n"), "stream {n}: {text}");
    }
    let status = service
        .process
        .wait_for_exit(Duration::from_secs(10).saturating_sub(signalled.elapsed()))
        .unwrap_or_else(|| panic!("still running after the shutdown timeout: {}", service.logs()));
    assert!(status.success(), "{status}: {}", service.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_stream_limit_a_stream_is_refused_503_the_others_flow_and_streams_take_no_request_slot()
 {
    let service = Service::start(&[
        ("TRIBUTARY_MAX_STREAMS", "2"),
        ("TRIBUTARY_MAX_IN_FLIGHT", "1"),
        ("TRIBUTARY_STREAM_HEARTBEAT", "200ms"),
    ]);
    let mut first = service.stream(STREAM).await;
    let mut second = service.stream("/v1/vehicles/car-2/stream").await;
    assert_eq!(first.next().await.event, "snapshot");
    assert_eq!(second.next().await.event, "snapshot");

    let refused = service.client.get(service.url(STREAM)).send().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["type"], "urn:tributary:problem:overloaded", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("2 live streams"), "{problem}");

    // Two open streams, one request slot: writes still pass, and both flow.
    for (vehicle, stream) in [("car-1", &mut first), ("car-2", &mut second)] {
        assert_eq!(service.write(vehicle, "engine_rpm", 900.0).await, 200);
        let mut last_id = 1;
        until_current(stream, &mut last_id, "engine_rpm", 900.0).await;
    }

    // A stream whose client left frees its place (found at the next heartbeat).
    drop(first);
    let mut third = eventually(DEADLINE, "a place to free up", || async {
        let response = service.client.get(service.url(STREAM)).send().await.unwrap();
        (response.status() == 200).then_some(response)
    })
    .await;
    let first_bytes = tokio::time::timeout(DEADLINE, third.chunk()).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first_bytes.unwrap()).contains("engine_rpm"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_stream_options_are_refused_422_naming_the_parameter() {
    let service = Service::start(&[]);
    for (query, parameter) in
        [("signals=warp_factor", "signals"), ("min_interval_ms=soon", "min_interval_ms")]
    {
        let answer = service.client.get(service.url(&format!("{STREAM}?{query}"))).send().await;
        let answer = answer.unwrap();
        assert_eq!(answer.status(), 422, "{query}");
        let problem: Value = answer.json().await.unwrap();
        assert_eq!(problem["errors"][0]["parameter"], parameter, "{problem}");
    }
    // Names and VSS paths select signals.
    let mut stream = service.stream(&format!("{STREAM}?signals=Vehicle.Speed")).await;
    stream.next().await;
    assert_eq!(service.write("car-1", "engine_rpm", 800.0).await, 200);
    assert_eq!(service.write("car-1", "vehicle_speed", 50.0).await, 200);
    let update = stream.next().await;
    let signals = data(&update)["signals"].as_object().unwrap().clone();
    assert_eq!(signals.keys().collect::<Vec<_>>(), ["vehicle_speed"], "{signals:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_stream_sends_collects_exact_answer_as_snapshot_and_updates() {
    let service = Service::start(&[]);
    let collect = || async {
        let url = service.url("/collect?vehicle_id=car-9");
        service.client.get(url).send().await.unwrap().text().await.unwrap()
    };
    let mut stream = service.stream("/collect/stream?vehicle_id=car-9").await;
    let snapshot = stream.next().await;
    assert_eq!(snapshot.event, "snapshot");
    assert_eq!(snapshot.data, collect().await);
    assert_eq!(
        snapshot.data,
        r#"{"average_engine_temperature":null,"current_engine_temperature":null}"#
    );

    for (n, temperature) in [90.5, 92.0, 80.25].into_iter().enumerate() {
        let body = serde_json::json!({"vehicle_id": "car-9", "engine_temperature": temperature});
        let answer = service.client.post(service.url("/record")).json(&body).send().await.unwrap();
        assert_eq!(answer.status(), 200);
        let update = stream.next().await;
        assert_eq!((update.event.as_str(), update.id.clone()), ("update", (n + 2).to_string()));
        assert_eq!(update.data, collect().await, "after writing {temperature}");
    }
    // Other signals join the same object, as in /collect.
    assert_eq!(service.write("car-9", "engine_rpm", 900.0).await, 200);
    let update = stream.next().await;
    assert_eq!(update.data, collect().await);
    assert!(update.data.contains(r#""current_engine_rpm":900.0"#), "{}", update.data);
}
