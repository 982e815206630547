//! The pages in a real browser: Debian's headless Chromium, driven over
//! WebDriver (see `support`), against the real service on a free port.
//!
//! - The car view at a phone's size shows what was just posted (current,
//!   average, min, max, a sparkline point per reading of the window) without a
//!   reload, says when a sensor stalls, and comes back after a restart.
//! - No console errors, no request to another origin and no serious axe-core
//!   violation on any page; screenshots of each page at phone and desktop
//!   sizes go to the git-ignored `.screenshots/`.
//! - The fleet view pages through the vehicles the test wrote, with
//!   `GET /v1/vehicles`, and its links open the right car.
//! - The car view follows the vehicle's stream, and stops polling while it has it.
//!
//! Needs `scripts/browser-deps` (Chromium, chromedriver, axe-core).

mod support;

use std::time::{Duration, Instant};

use self::support::{Browser, DESKTOP, PHONE, axe_source};
use crate::auth::{Issuer, spawn_secured};
use crate::common::{Backend, TestApp, free_port, spawn_app, spawn_app_on};
use serde_json::{Value, json};
use tributary::config::ServeSettings;

/// How long a posted reading may take to show: one poll of the summary (1 s)
/// and a window fetch, with room for a loaded two-core machine. This is a
/// bound that makes the test fail on a page that does not update, not a speed goal.
const UPDATE_DEADLINE: Duration = Duration::from_secs(3);

/// For the page to start, connect and show its first state.
const LOAD_DEADLINE: Duration = Duration::from_secs(10);

/// The window the test service keeps (`ServeSettings::for_tests`).
const WINDOW: usize = 10;

/// A value as the page shows it: one decimal below 1000, none above. Test
/// values are chosen to avoid rounding ties, where the browser and Rust may differ.
fn shown(value: f64) -> String {
    let decimals = if value.abs() >= 1000.0 { 0 } else { 1 };
    let scaled = value.abs() * 10f64.powi(decimals);
    assert!(
        (scaled.fract() - 0.5).abs() > 1e-6,
        "{value} is a rounding tie: pick other test values"
    );
    format!("{value:.*}", decimals as usize)
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Posts readings of `vehicle` (server-stamped: the time of the request).
async fn post(app: &TestApp, vehicle: &str, reading: Value) {
    let answer = app.post_json(&format!("/v1/vehicles/{vehicle}/readings"), &reading).await;
    assert_eq!(answer.status, 200, "{reading}: {}", answer.text);
}

/// What a signal's tile shows, or null while it has none.
const TILE: &str = "
    const tile = document.querySelector(`.tile[data-signal='${arguments[0]}']`);
    if (!tile) return null;
    const text = (selector) => tile.querySelector(selector).textContent.trim();
    const points = tile.querySelector('.spark .line').getAttribute('points').trim();
    return {value: text('.value'), unit: text('.unit'), average: text('.average'), min: text('.min'),
            max: text('.max'), points: points ? points.split(/\\s+/).length : 0,
            stale: tile.dataset.stale === 'true', age: tile.querySelector('.age').hidden ? '' : text('.age')};";

/// Waits until the tile of `signal` satisfies `check`; returns what it shows.
async fn wait_for_tile(
    browser: &Browser,
    signal: &str,
    what: &str,
    deadline: Duration,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let tile = browser.js_with(TILE, vec![json!(signal)]).await;
        if !tile.is_null() && check(&tile) {
            return tile;
        }
        if started.elapsed() >= deadline {
            let page = browser.describe().await;
            panic!(
                "timed out after {deadline:?} waiting for {signal}'s tile to show {what}; it shows {tile}; the page: {page}"
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn state(browser: &Browser) -> Value {
    browser
        .js("const s = document.getElementById('state'); return {state: s.dataset.state, label: s.innerText.trim(), hidden: s.hidden};")
        .await
}

async fn wait_for_state(browser: &Browser, wanted: &str, deadline: Duration) {
    browser
        .wait_for(
            deadline,
            &format!("the state marker to say {wanted}"),
            "const s = document.getElementById('state'); return !s.hidden && s.dataset.state === arguments[0];",
            vec![json!(wanted)],
        )
        .await;
}

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

/// Readings for the four built-in signals of `vehicle`, shaped like a car on a
/// road, so that the screenshots look like something.
async fn feed_demo_car(app: &TestApp, vehicle: &str) {
    let readings: Vec<Value> = (0..WINDOW)
        .map(|i| {
            let t = i as f64;
            json!({
                "engine_temperature": 88.0 + (t * 0.7).sin() * 2.4,
                "vehicle_speed": 62.0 + t * 2.1 - (t * 0.9).cos() * 3.0,
                "engine_rpm": (2150.0 + t * 55.0 + (t * 1.3).sin() * 120.0).round(),
                "cabin_temperature": 21.4 + (t * 0.4).sin() * 0.6,
            })
        })
        .collect();
    for reading in readings {
        post(app, vehicle, reading).await;
    }
}

/// The failed requests the pages expect and handle, which Chromium logs as
/// errors all the same: a vehicle that has sent nothing yet answers 404 (by
/// contract, the page's waiting state). Nothing else may fail: a page
/// asking for a wrong URL fails here.
fn an_expected_404(entry: &Value) -> bool {
    let message = entry["message"].as_str().unwrap_or_default();
    let Some((url, rest)) = message.split_once(' ') else { return false };
    if entry["source"] != "network" || !rest.contains("status of 404") {
        return false;
    }
    let Ok(url) = url::Url::parse(url) else { return false };
    let segments: Vec<&str> = url.path().trim_start_matches('/').split('/').collect();
    matches!(segments.as_slice(), ["v1", "vehicles", _])
}

/// No console error, no request to another origin, no serious axe violation.
async fn check_page(browser: &Browser, axe: &str, name: &str) {
    let errors: Vec<Value> =
        browser.severe_logs().await.into_iter().filter(|e| !an_expected_404(e)).collect();
    assert!(errors.is_empty(), "{name}: errors in the browser's console: {errors:#?}");
    let foreign = browser.foreign_requests().await;
    assert!(foreign.is_empty(), "{name}: requests to other origins: {foreign:?}");
    let violations = browser.serious_accessibility_violations(axe).await;
    assert!(violations.is_empty(), "{name}: axe-core found serious violations: {violations:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_is_clean_in_the_console_stays_on_its_origin_and_passes_axe() {
    let axe = axe_source();
    let app = spawn_app(Backend::Memory).await;
    // A small fleet, so that the fleet view's screenshot shows a list.
    for i in 2..=12 {
        post(&app, &format!("sim-{i:03}"), json!({"vehicle_speed": 40.5 + f64::from(i)})).await;
    }
    let browser = Browser::start().await;
    for (size, viewport) in [("phone", PHONE), ("desktop", DESKTOP)] {
        browser.viewport(viewport).await;

        feed_demo_car(&app, "sim-001").await;
        browser.open(&app.url("/vehicles/sim-001")).await;
        wait_for_state(&browser, "live", LOAD_DEADLINE).await;
        for signal in ["engine_temperature", "vehicle_speed", "engine_rpm", "cabin_temperature"] {
            wait_for_tile(&browser, signal, "the window", UPDATE_DEADLINE, |t| {
                t["points"] == WINDOW
            })
            .await;
        }
        browser.screenshot(&format!("car-{size}")).await;
        check_page(&browser, &axe, &format!("the car view ({size})")).await;

        browser.open(&app.url("/vehicles/nothing-yet")).await;
        wait_for_state(&browser, "live", LOAD_DEADLINE).await;
        check_page(&browser, &axe, &format!("the car view, waiting ({size})")).await;

        browser.open(&app.url("/")).await;
        browser
            .wait_for(
                LOAD_DEADLINE,
                "the chooser",
                "return !document.getElementById('notice').hidden",
                vec![],
            )
            .await;
        browser.screenshot(&format!("chooser-{size}")).await;
        check_page(&browser, &axe, &format!("the chooser ({size})")).await;

        browser.open(&app.url("/fleet")).await;
        browser
            .wait_for(
                LOAD_DEADLINE,
                "the fleet view to list the 12 cars",
                "return document.getElementById('state').dataset.state === 'live'
                   && document.querySelectorAll('#rows th a').length === 12",
                vec![],
            )
            .await;
        browser.screenshot(&format!("fleet-{size}")).await;
        check_page(&browser, &axe, &format!("the fleet view ({size})")).await;
    }
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
async fn the_fleet_view_pages_through_the_vehicles_and_links_to_each_car() {
    let axe = axe_source();
    let app = spawn_app(Backend::Memory).await;
    let written: Vec<String> = (0..27).map(|i| format!("fleet-{i:02}")).collect();
    for vehicle in &written {
        post(&app, vehicle, json!({"vehicle_speed": 30.5})).await;
    }
    post(&app, "other-car", json!({"vehicle_speed": 30.5})).await;

    let browser = Browser::start().await;
    browser.viewport(DESKTOP).await;
    browser.open(&app.url("/fleet")).await;
    wait_for_state(&browser, "live", LOAD_DEADLINE).await;
    browser.js("const input = document.getElementById('prefix-input'); input.value = 'fleet-'; input.form.requestSubmit();").await;

    // Walk every page; within each, newest first. A page is read once its
    // label says it is there: the address changes before the answer arrives.
    const PAGE: &str = "
        const list = document.getElementById('list');
        const caption = document.getElementById('list-caption').textContent;
        const label = document.getElementById('page-label').textContent;
        if (list.hidden || !caption.includes('fleet-') || label !== arguments[0]) return null;
        return {ids: [...document.querySelectorAll('#rows th a')].map((a) => a.textContent),
                seen: [...document.querySelectorAll('#rows time')].map((t) => Date.parse(t.dateTime)),
                next: !document.getElementById('next').disabled};";
    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let label = format!("Page {}", pages.len() + 1);
        let page = browser.wait_for(LOAD_DEADLINE, &label, PAGE, vec![json!(label)]).await;
        let ids: Vec<String> = serde_json::from_value(page["ids"].clone()).unwrap();
        let times: Vec<i64> = serde_json::from_value(page["seen"].clone()).unwrap();
        let mut newest_first = times.clone();
        newest_first.sort_by(|a, b| b.cmp(a));
        assert_eq!(times, newest_first, "{label}: not newest first");
        assert!(ids.iter().all(|id| id.starts_with("fleet-")), "{label}: {ids:?}");
        seen.extend(ids.iter().cloned());
        pages.push(ids);
        if page["next"] == false {
            break;
        }
        assert!(pages.len() < 30, "more pages than vehicles");
        browser.js("document.getElementById('next').click()").await;
    }
    assert!(pages.len() > 1, "one page only: {pages:?}");
    assert_eq!(seen, written.iter().cloned().collect(), "the vehicles listed");
    check_page(&browser, &axe, "the fleet view").await;

    // Previous goes back to the page before, and shows the same vehicles.
    browser.js("document.getElementById('previous').click()").await;
    let label = format!("Page {}", pages.len() - 1);
    let page = browser.wait_for(LOAD_DEADLINE, &label, PAGE, vec![json!(label)]).await;
    let before = &pages[pages.len() - 2];
    let mut ids: Vec<String> = serde_json::from_value(page["ids"].clone()).unwrap();
    let mut expected = before.clone();
    ids.sort();
    expected.sort();
    assert_eq!(ids, expected, "{label} again");

    // A link opens that car.
    let id = before[0].clone();
    browser
        .js_with(
            "[...document.querySelectorAll('#rows th a')].find((a) => a.textContent === arguments[0]).click()",
            vec![json!(id)],
        )
        .await;
    browser
        .wait_for(
            LOAD_DEADLINE,
            "the car view of the link",
            "return location.pathname === '/vehicles/' + arguments[0] && document.getElementById('title').textContent === arguments[0]",
            vec![json!(id)],
        )
        .await;
    wait_for_tile(&browser, "vehicle_speed", "its reading", UPDATE_DEADLINE, |t| {
        t["value"] == "30.5"
    })
    .await;
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
