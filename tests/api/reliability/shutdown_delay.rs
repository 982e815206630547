//! `TRIBUTARY_SHUTDOWN_DELAY`: on SIGTERM, `/readyz` answers 503 at once while
//! the listener keeps accepting and serving for the delay, so a load balancer
//! polling `/readyz` stops sending requests before the socket closes.

use std::time::{Duration, Instant};

use crate::common::{eventually, start_binary};

/// The delay of the test: long enough for several requests after the signal.
const DELAY: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigterm_readyz_is_503_at_once_while_new_connections_are_served_for_the_delay() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let (mut server, port) =
        start_binary(&[("TRIBUTARY_SHUTDOWN_DELAY", "2s")], log.reopen().unwrap());
    let logs = || std::fs::read_to_string(log.path()).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    // A new connection per request, as a load balancer's probes and new
    // clients make: the listener itself must still accept.
    let client = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(0).build().unwrap();
    let readyz = || async { client.get(format!("{base}/readyz")).send().await.unwrap() };
    assert_eq!(readyz().await.status(), 200);

    server.signal("TERM");
    let signalled = Instant::now();
    let not_ready = eventually(Duration::from_secs(1), "/readyz to answer 503", || async {
        let answer = readyz().await;
        (answer.status() == 503).then_some(answer)
    })
    .await;
    let problem: serde_json::Value = not_ready.json().await.unwrap();
    assert_eq!(problem["type"], "urn:tributary:problem:shutting-down", "{problem}");

    // Until the delay is over, everything else is served as usual.
    let mut served = 0;
    while signalled.elapsed() < DELAY - Duration::from_millis(500) {
        let body = serde_json::json!({"engine_rpm": 900 + served});
        let answer = client
            .post(format!("{base}/v1/vehicles/car-1/readings"))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|err| panic!("refused {:?} after SIGTERM: {err}", signalled.elapsed()));
        assert_eq!(answer.status(), 200, "{:?} after SIGTERM", signalled.elapsed());
        assert_eq!(readyz().await.status(), 503);
        served += 1;
    }
    assert!(server.exited().is_none(), "exited within the delay:\n{}", logs());
    let answer = client.get(format!("{base}/v1/vehicles/car-1")).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let stored: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(stored["signals"]["engine_rpm"]["total"], served, "{stored}");

    let status = tokio::task::spawn_blocking(move || {
        let status = server.wait_for_exit(Duration::from_secs(10));
        (status, server)
    })
    .await
    .unwrap()
    .0
    .unwrap_or_else(|| panic!("still running 10 s after the delay:\n{}", logs()));
    assert!(signalled.elapsed() >= DELAY, "exited before the delay was over");
    assert_eq!(status.code(), Some(0), "{}", logs());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the listener is closed after the drain"
    );
}
