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
//! Needs `scripts/browser-deps` (Chromium, chromedriver, axe-core).//!
//! Files: this one holds the helpers; `car_view` the car view (updates,
//! stalls, restarts, the token, the stream); `pages` every page's console,
//! origin and axe check with screenshots; `fleet` the fleet view's paging.

mod car_view;
mod fleet;
mod pages;
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
