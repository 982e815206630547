//! `GET /v1/vehicles`: a walk through the fleet, page by page, lists every
//! vehicle exactly once, newest first within a page, filtered by prefix; bad
//! limits, cursors and prefixes are refused saying what to fix.

use std::collections::BTreeSet;

use super::{accept, vehicle};
use crate::common::{Backend, TestApp, spawn_app};
use serde_json::{Value, json};
use tributary::domain::Timestamp;

async fn write(app: &TestApp, vehicles: &[String]) {
    for id in vehicles {
        accept(app, id, &json!({"vehicle_speed": 42})).await;
    }
}

fn ids(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}{i:03}")).collect()
}

/// `GET /v1/vehicles?<query>`, which must answer 200 with a well-formed page.
async fn page(app: &TestApp, query: &str) -> Value {
    let answer = app.get(&format!("/v1/vehicles?{query}")).await;
    assert_eq!(answer.status, 200, "{query}: {}", answer.text);
    assert_eq!(answer.content_type, "application/json");
    let page = answer.json();
    let vehicles = page["vehicles"].as_array().unwrap_or_else(|| panic!("{page}"));
    let seen: Vec<Timestamp> = vehicles
        .iter()
        .map(|v| Timestamp::parse_rfc3339(v["last_seen"].as_str().unwrap()).unwrap())
        .collect();
    let mut newest_first = seen.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, newest_first, "not newest first: {page}");
    assert!(page["next_cursor"].is_null() || page["next_cursor"].is_string(), "{page}");
    page
}

/// Every page of a walk with `query` (without `cursor`), in order.
async fn walk(app: &TestApp, query: &str) -> Vec<Value> {
    let mut pages = vec![page(app, query).await];
    while let Some(cursor) = pages.last().unwrap()["next_cursor"].as_str() {
        let cursor = url_encoded(cursor);
        pages.push(page(app, &format!("{query}&cursor={cursor}")).await);
        assert!(pages.len() < 1000, "the walk does not end");
    }
    pages
}

fn url_encoded(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The ids of a walk's pages, in order, duplicates kept.
fn listed(pages: &[Value]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|page| page["vehicles"].as_array().unwrap())
        .map(|v| v["vehicle_id"].as_str().unwrap().to_owned())
        .collect()
}

fn exactly_once(listed: &[String], expected: &[String]) {
    let unique: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "a vehicle listed twice: {listed:?}");
    assert_eq!(unique, expected.iter().collect(), "the vehicles listed");
}

async fn a_walk_lists_every_vehicle_exactly_once_a_page_at_a_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let written = ids("car-", 57);
    write(&app, &written).await;

    let pages = walk(&app, "limit=10").await;
    for page in &pages {
        assert!(page["vehicles"].as_array().unwrap().len() <= 10, "{page}");
    }
    assert!(pages.len() >= 6, "57 vehicles in {} pages of at most 10", pages.len());
    assert!(pages.last().unwrap()["next_cursor"].is_null());
    exactly_once(&listed(&pages), &written);

    // One page of up to the default 50, then the rest.
    let pages = walk(&app, "").await;
    assert!(pages[0]["vehicles"].as_array().unwrap().len() <= 50);
    if backend == Backend::Memory {
        assert_eq!(pages[0]["vehicles"].as_array().unwrap().len(), 50);
        assert_eq!(pages.len(), 2);
    }
    exactly_once(&listed(&pages), &written);

    // Pages of one.
    let pages = walk(&app, "limit=1").await;
    assert!(pages.iter().all(|page| page["vehicles"].as_array().unwrap().len() <= 1));
    exactly_once(&listed(&pages), &written);
}

async fn a_listed_vehicle_shows_when_it_was_last_seen(backend: Backend) {
    let app = spawn_app(backend).await;
    write(&app, &ids("seen-", 3)).await;
    let pages = walk(&app, "limit=1000").await;
    for listed in pages.iter().flat_map(|page| page["vehicles"].as_array().unwrap()) {
        let id = listed["vehicle_id"].as_str().unwrap();
        let summary = vehicle(&app, id).await;
        assert_eq!(listed["last_seen"], summary["last_seen"], "{id}");
        assert_eq!(listed.as_object().unwrap().len(), 2, "{listed}");
    }
    // The newest first: the last one written.
    let first = &page(&app, "limit=1000").await["vehicles"][0];
    assert_eq!(first["vehicle_id"], "seen-002", "{first}");
}

async fn a_prefix_lists_only_the_vehicles_whose_id_starts_with_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let (a, b) = (ids("fleet-a.", 12), ids("fleet-b_", 5));
    write(&app, &a).await;
    write(&app, &b).await;
    write(&app, &["other".to_owned(), "fleet".to_owned()]).await;

    exactly_once(&listed(&walk(&app, "prefix=fleet-a.&limit=5").await), &a);
    exactly_once(&listed(&walk(&app, "prefix=fleet-b_").await), &b);
    let both: Vec<String> = a.iter().chain(&b).cloned().collect();
    exactly_once(&listed(&walk(&app, "prefix=fleet-&limit=7").await), &both);
    exactly_once(&listed(&walk(&app, "prefix=zzz").await), &[]);
    let everyone: Vec<String> =
        both.iter().cloned().chain(["other".to_owned(), "fleet".to_owned()]).collect();
    exactly_once(&listed(&walk(&app, "prefix=").await), &everyone);
}

async fn an_empty_fleet_is_one_empty_last_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let page = page(&app, "").await;
    assert_eq!(page, json!({"vehicles": [], "next_cursor": null}));
}

/// A cursor holds the ids a step found beyond its page's limit: they come
/// first, a page never holds more than its limit, and an id that matches no
/// vehicle (or not the prefix) is skipped.
async fn ids_waiting_in_a_cursor_come_first_within_the_limit(backend: Backend) {
    let app = spawn_app(backend).await;
    let written = ids("wait-", 4);
    write(&app, &written).await;
    let cursor = "~wait-000~wait-gone~wait-001~wait-002~wait-003";

    let first = page(&app, &format!("limit=2&prefix=wait-&cursor={cursor}")).await;
    let ids: BTreeSet<&str> = first["vehicles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["vehicle_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, BTreeSet::from(["wait-000"]), "`wait-gone` takes a place but lists nothing");
    let next = first["next_cursor"].as_str().unwrap();
    let second = page(&app, &format!("limit=2&prefix=wait-&cursor={next}")).await;
    assert_eq!(second["vehicles"].as_array().unwrap().len(), 2);
    let next = second["next_cursor"].as_str().unwrap();
    let third = page(&app, &format!("limit=2&prefix=wait-&cursor={next}")).await;
    assert_eq!(third["vehicles"][0]["vehicle_id"], "wait-003");
    assert!(third["next_cursor"].is_null(), "nothing follows the waiting ids: {third}");

    // Waiting ids outside the prefix are not listed.
    let page = page(&app, &format!("prefix=wait-00&cursor={cursor}~other")).await;
    assert_eq!(page["vehicles"].as_array().unwrap().len(), 4, "{page}");
}

async fn bad_limits_cursors_and_prefixes_are_refused_saying_what_to_fix(backend: Backend) {
    let app = spawn_app(backend).await;
    write(&app, &ids("car-", 2)).await;
    for (query, parameter, needle) in [
        ("limit=0", "limit", "from 1 to 1000"),
        ("limit=1001", "limit", "from 1 to 1000"),
        ("limit=ten", "limit", "from 1 to 1000"),
        ("limit=", "limit", "from 1 to 1000"),
        ("cursor=abc", "cursor", "next_cursor"),
        ("cursor=~", "cursor", "next_cursor"),
        ("cursor=1~a%20b", "cursor", "next_cursor"),
        ("cursor=99999999999999999999999", "cursor", "next_cursor"),
        ("prefix=a*", "prefix", "cannot start a vehicle id"),
        ("prefix=%7Ba%7D", "prefix", "cannot start a vehicle id"),
        ("limit=2&limit=3", "limit", "more than once"),
    ] {
        let answer = app.get(&format!("/v1/vehicles?{query}")).await;
        let problem = answer.assert_problem(422, needle);
        assert_eq!(problem["errors"][0]["parameter"], parameter, "{query}: {problem}");
    }
    // Every bad parameter at once.
    let problem = app
        .get("/v1/vehicles?limit=0&cursor=x&prefix=%3F")
        .await
        .assert_problem(422, "and 2 more problems");
    assert_eq!(problem["errors"].as_array().unwrap().len(), 3, "{problem}");
    // Other parameters (cache busters) are ignored.
    assert_eq!(page(&app, "_=123").await["vehicles"].as_array().unwrap().len(), 2);
}

/// `KEYS` blocks Redis for the whole keyspace: the list must walk it with `SCAN`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_the_list_scans_and_never_uses_keys() {
    let mut app = spawn_app(Backend::Redis).await;
    write(&app, &ids("scan-", 30)).await;
    app.redis().command(&["CONFIG", "RESETSTAT"]);
    exactly_once(&listed(&walk(&app, "limit=4").await), &ids("scan-", 30));
    let stats = app.redis().command(&["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_scan:"), "{stats}");
    assert!(!stats.contains("cmdstat_keys:"), "{stats}");
}

on_both_stores!(
    a_walk_lists_every_vehicle_exactly_once_a_page_at_a_time,
    a_listed_vehicle_shows_when_it_was_last_seen,
    a_prefix_lists_only_the_vehicles_whose_id_starts_with_it,
    an_empty_fleet_is_one_empty_last_page,
    ids_waiting_in_a_cursor_come_first_within_the_limit,
    bad_limits_cursors_and_prefixes_are_refused_saying_what_to_fix,
);
