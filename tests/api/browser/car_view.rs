//! The car view on a phone: readings as they arrive, a stalled sensor, a
//! service restart, a token in the fragment, and following the stream.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_car_view_on_a_phone_shows_readings_as_they_arrive_without_a_reload() {
    let app = spawn_app(Backend::Memory).await;
    let browser = Browser::start().await;
    browser.viewport(PHONE).await;
    browser.open(&app.url("/vehicles/phone-car")).await;

    // Nothing sent yet: the page is connected and says it is waiting, not an error.
    wait_for_state(&browser, "live", LOAD_DEADLINE).await;
    let notice = browser.js("return document.getElementById('notice').innerText").await;
    assert!(notice.as_str().unwrap().contains("Waiting for phone-car"), "{notice}");
    browser.js("window.notReloaded = true").await;

    // Twelve readings: the window keeps the newest ten.
    let temperatures: Vec<f64> = (0..12).map(|i| 80.0 + 1.2 * f64::from(i)).collect();
    for temperature in &temperatures {
        post(&app, "phone-car", json!({"engine_temperature": temperature})).await;
    }
    post(&app, "phone-car", json!({"vehicle_speed": 42.0})).await;
    post(&app, "phone-car", json!({"vehicle_speed": 57.0})).await;

    let window = &temperatures[temperatures.len() - WINDOW..];
    let expected = json!({
        "value": shown(temperatures[11]), "unit": "°C", "average": shown(mean(window)),
        "min": shown(window[0]), "max": shown(temperatures[11]), "points": WINDOW,
    });
    let tile =
        wait_for_tile(&browser, "engine_temperature", "the window", UPDATE_DEADLINE, |tile| {
            ["value", "unit", "average", "min", "max", "points"]
                .iter()
                .all(|k| tile[k] == expected[k])
        })
        .await;
    assert_eq!(tile["stale"], false, "{tile}");
    let speed = wait_for_tile(&browser, "vehicle_speed", "two readings", UPDATE_DEADLINE, |tile| {
        tile["value"] == "57.0" && tile["average"] == "49.5" && tile["points"] == 2
    })
    .await;
    assert_eq!(speed["unit"], "km/h");
    assert_eq!(browser.js("return document.getElementById('notice').hidden").await, true);

    // A second change reaches the page too, and the window moves on.
    post(&app, "phone-car", json!({"engine_temperature": 99.0})).await;
    let mut moved = window[1..].to_vec();
    moved.push(99.0);
    let average = shown(mean(&moved));
    wait_for_tile(&browser, "engine_temperature", "the moved window", UPDATE_DEADLINE, |tile| {
        tile["value"] == "99.0" && tile["average"] == average.as_str() && tile["max"] == "99.0"
    })
    .await;

    assert_eq!(browser.js("return window.notReloaded === true").await, true, "the page reloaded");
    assert_eq!(state(&browser).await["state"], "live");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_sensor_says_how_old_its_last_reading_is() {
    let app = spawn_app(Backend::Memory).await;
    let browser = Browser::start().await;
    browser.viewport(PHONE).await;
    browser.open(&app.url("/vehicles/stall-car")).await;
    wait_for_state(&browser, "live", LOAD_DEADLINE).await;
    let stale_after = browser.js("return Number(document.body.dataset.staleAfterMs)").await;
    let stale_after = Duration::from_millis(stale_after.as_u64().expect("the page's threshold"));
    assert!(
        (Duration::from_secs(2)..=Duration::from_secs(30)).contains(&stale_after),
        "{stale_after:?}"
    );

    post(&app, "stall-car", json!({"engine_temperature": 90.5, "vehicle_speed": 50.5})).await;
    // The temperature sensor stops here; the speed keeps coming.
    let stopped = Instant::now();
    let feeder = {
        let (client, url) = (app.client.clone(), app.url("/v1/vehicles/stall-car/readings"));
        tokio::spawn(async move {
            for speed in (0..).map(|i| 51.0 + f64::from(i % 10)) {
                client.post(&url).json(&json!({"vehicle_speed": speed})).send().await.unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    let tile =
        wait_for_tile(&browser, "engine_temperature", "the reading", UPDATE_DEADLINE, |tile| {
            tile["value"] == "90.5"
        })
        .await;
    if stopped.elapsed() + Duration::from_millis(500) < stale_after {
        assert_eq!(tile["stale"], false, "stale before its time: {tile}");
    }
    let tile = wait_for_tile(
        &browser,
        "engine_temperature",
        "that it is stale",
        stale_after + Duration::from_secs(2),
        |tile| tile["stale"] == true,
    )
    .await;
    let said_after = stopped.elapsed();
    assert!(
        said_after + Duration::from_millis(500) >= stale_after,
        "said stale after only {said_after:?}"
    );
    let age = tile["age"].as_str().unwrap();
    assert!(age.starts_with("Last reading ") && age.ends_with(" s ago"), "{age:?}");
    assert_eq!(tile["value"], "90.5", "the last value stays shown: {tile}");

    let speed = browser.js_with(TILE, vec![json!("vehicle_speed")]).await;
    assert_eq!(speed["stale"], false, "the speed is still fed: {speed}");
    assert_eq!(speed["age"], "");
    feeder.abort();
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_car_view_says_reconnecting_then_live_when_the_service_restarts() {
    let port = free_port();
    let settings = || {
        let mut settings = ServeSettings::for_tests();
        settings.listen = format!("127.0.0.1:{port}");
        settings
    };
    let app = spawn_app_on(settings(), None).await;
    post(&app, "restart-car", json!({"engine_temperature": 70.5})).await;
    let browser = Browser::start().await;
    browser.viewport(PHONE).await;
    browser.open(&app.url("/vehicles/restart-car")).await;
    wait_for_state(&browser, "live", LOAD_DEADLINE).await;
    wait_for_tile(&browser, "engine_temperature", "70.5", UPDATE_DEADLINE, |t| {
        t["value"] == "70.5"
    })
    .await;

    app.stop().await;
    wait_for_state(&browser, "reconnecting", UPDATE_DEADLINE).await;
    let label = state(&browser).await;
    assert_eq!(label["label"], "Reconnecting", "{label}");

    // The same address again; the memory store starts empty.
    let app = spawn_app_on(settings(), None).await;
    post(&app, "restart-car", json!({"engine_temperature": 75.5})).await;
    wait_for_state(&browser, "live", LOAD_DEADLINE).await;
    wait_for_tile(&browser, "engine_temperature", "the new value", UPDATE_DEADLINE, |t| {
        t["value"] == "75.5"
    })
    .await;
    browser.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_in_the_fragment_is_kept_for_the_tab_and_taken_out_of_the_address_bar() {
    // Auth required: the page shows the car only if it sends the token, as a
    // bearer header on fetches and as `?access_token=` on the stream
    // (EventSource cannot send headers).
    let issuer = Issuer::new();
    let app = spawn_secured(Backend::Memory, &issuer, |_| {}).await;
    let reading = json!({"vehicle_id": "token-car", "engine_temperature": 81.5});
    let stored = app.call("POST", "/record", Some(&reading), Some(&issuer.admin())).await;
    assert_eq!(stored.status, 200, "{}", stored.text);
    let token = issuer.token("read", &["token-car"]);
    let browser = Browser::start().await;
    browser.open(&app.url(&format!("/vehicles/token-car#token={token}"))).await;
    wait_for_state(&browser, "live", LOAD_DEADLINE).await;
    let seen = browser
        .js("return {href: location.href, hash: location.hash, kept: sessionStorage.getItem('tributary.token'),
                     status: document.getElementById('token-status').textContent}")
        .await;
    assert_eq!(seen["hash"], "", "{seen}");
    assert!(!seen["href"].as_str().unwrap().contains(&token), "{seen}");
    assert_eq!(seen["kept"], token.as_str(), "{seen}");
    assert!(seen["status"].as_str().unwrap().contains("A token is set"), "{seen}");
    wait_for_tile(&browser, "engine_temperature", "81.5", UPDATE_DEADLINE, |t| {
        t["value"] == "81.5"
    })
    .await;
    // The stream, which takes the token only from its query, is open and live.
    browser
        .wait_for(
            LOAD_DEADLINE,
            "the stream",
            "return document.body.dataset.transport === 'stream'",
            vec![],
        )
        .await;
    let reading = json!({"vehicle_id": "token-car", "engine_temperature": 82.5});
    let stored = app.call("POST", "/record", Some(&reading), Some(&issuer.admin())).await;
    assert_eq!(stored.status, 200, "{}", stored.text);
    wait_for_tile(&browser, "engine_temperature", "82.5", UPDATE_DEADLINE, |t| {
        t["value"] == "82.5"
    })
    .await;

    // Forgetting it takes it out of the tab.
    browser.js("document.querySelector('.token-box').open = true").await;
    browser.js("document.getElementById('token-forget').click()").await;
    assert_eq!(browser.js("return sessionStorage.getItem('tributary.token')").await, Value::Null);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_car_view_follows_the_stream_when_the_service_has_one() {
    let app = spawn_app(Backend::Memory).await;
    post(&app, "stream-car", json!({"engine_rpm": 1500.0})).await;
    let browser = Browser::start().await;
    browser.viewport(PHONE).await;
    browser.open(&app.url("/vehicles/stream-car")).await;
    wait_for_state(&browser, "live", LOAD_DEADLINE).await;
    browser
        .wait_for(
            LOAD_DEADLINE,
            "the stream",
            "return document.body.dataset.transport === 'stream'",
            vec![],
        )
        .await;
    // From now on the summary is not polled: updates come over the stream.
    let polls = "return performance.getEntriesByType('resource')
                   .filter((e) => new URL(e.name).pathname === '/v1/vehicles/stream-car').length";
    let polled = browser.js(polls).await;
    for rpm in [1600.0, 1700.0, 1800.0] {
        post(&app, "stream-car", json!({"engine_rpm": rpm})).await;
        let want = shown(rpm);
        wait_for_tile(&browser, "engine_rpm", &want, UPDATE_DEADLINE, |t| {
            t["value"] == want.as_str()
        })
        .await;
    }
    wait_for_tile(&browser, "engine_rpm", "the window", UPDATE_DEADLINE, |t| t["points"] == 4)
        .await;
    assert_eq!(browser.js(polls).await, polled, "the page polled while it had the stream");
    assert_eq!(browser.js("return document.body.dataset.transport").await, "stream");
    browser.close().await;
}
