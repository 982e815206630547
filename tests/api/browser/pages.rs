//! Every page, at phone and desktop sizes: no console error, no request to
//! another origin, no serious axe-core violation; screenshots of each.

use super::*;

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
