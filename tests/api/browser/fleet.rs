//! The fleet view pages through the vehicles the test wrote, with
//! `GET /v1/vehicles`, and its links open the right car.

use super::*;

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
