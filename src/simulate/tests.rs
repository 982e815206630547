//! The simulator's settings, fleet and bodies, without a server.

use clap::Parser;
use serde_json::json;

use super::*;
use crate::domain::{Catalog, Clock};
use crate::http::v1::wire::parse_batch;
use crate::http::wire::ParseContext;

/// Samples `car` every `dt` seconds for `seconds` of simulated time.
#[test]
fn a_sample_is_a_reading_the_server_accepts() {
    let values = VehicleModel::new(1).step(0.0);
    let now = epoch_millis(SystemTime::now());
    let single = serde_json::to_value(Sample { timestamp: now, values }).unwrap();
    assert_eq!(single["timestamp"], json!(now));
    assert_eq!(single["engine_rpm"], json!(values.engine_rpm));
    let batch = serde_json::to_value([
        Sample { timestamp: now, values },
        Sample { timestamp: now + 500, values },
    ])
    .unwrap();
    let (catalog, clock) = (Catalog::builtin(), Clock::new());
    let ctx = ParseContext { catalog: &catalog, clock: &clock };
    assert_eq!(parse_batch(&single, &ctx).unwrap().len(), 4);
    let readings = parse_batch(&batch, &ctx).unwrap();
    assert_eq!(readings.len(), 8);
    assert_eq!(readings[0].at.as_millis(), now);
    assert_eq!(readings[7].at.as_millis(), now + 500);
}

#[test]
fn cars_are_numbered_with_the_prefix_and_keep_their_curves_as_the_fleet_grows() {
    let small = fleet("http://h:1", "sim-", 10, 5).unwrap();
    let ids: Vec<_> = small.iter().map(|car| car.id.as_str()).collect();
    assert_eq!(ids[0], "sim-001");
    assert_eq!(ids[9], "sim-010");
    assert_eq!(small[0].url, "http://h:1/v1/vehicles/sim-001/readings");
    let large = fleet("http://h:1", "", 1000, 5).unwrap();
    assert_eq!((large[0].id.as_str(), large[999].id.as_str()), ("0001", "1000"));
    let (mut a, mut b) = (small[3].model.clone(), large[3].model.clone());
    assert_eq!(a.step(60.0), b.step(60.0));
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    settings: SimulateSettings,
}

fn parse(args: &[&str]) -> Result<SimulateSettings, String> {
    Cli::try_parse_from(std::iter::once("simulate").chain(args.iter().copied()))
        .map(|cli| cli.settings)
        .map_err(|e| e.to_string())
}

#[test]
fn the_defaults_simulate_ten_cars_against_a_local_server() {
    let settings = parse(&[]).unwrap();
    assert_eq!(settings.server, "http://127.0.0.1:8000");
    assert_eq!((settings.vehicles, settings.rate, settings.batch), (10, 2.0, 1));
    assert_eq!(settings.duration, None);
    assert_eq!(settings.prefix, "sim-");
    assert_eq!(settings.summary_interval, Duration::from_secs(1));
    let settings = parse(&[
        "--server=http://tributary:8000/",
        "--vehicles=3",
        "--rate=0.5",
        "--batch=20",
        "--duration=1m",
        "--prefix=bench.",
        "--seed=9",
        "--summary-interval=500ms",
    ])
    .unwrap();
    assert_eq!(settings.server, "http://tributary:8000");
    assert_eq!(settings.duration, Some(Duration::from_secs(60)));
    assert_eq!(settings.seed, Some(9));
}

#[test]
fn bad_settings_are_refused_with_a_reason() {
    let cases: [(&[&str], &str); 11] = [
        (&["--rate=0"], "0.001 to 1000"),
        (&["--rate=fast"], "not a number"),
        (&["--rate=NaN"], "0.001 to 1000"),
        (&["--batch=0"], "1..=1000"),
        (&["--batch=1001"], "1..=1000"),
        (&["--vehicles=0"], "1..=10000"),
        (&["--prefix=a b"], "vehicle id"),
        (&["--server=https://tributary.example"], "plain http"),
        (&["--server=localhost:8000"], "plain http"),
        (&["--server=http://h:1/?x=1"], "query"),
        (&["--duration=0s"], "longer than zero"),
    ];
    for (args, expected) in cases {
        let err = parse(args).expect_err(&format!("{args:?}"));
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn settings_built_in_code_are_checked_too() {
    let good = parse(&["--duration=1s"]).unwrap();
    assert_eq!(check(&good).unwrap(), "http://127.0.0.1:8000");
    type Spoil = fn(&mut SimulateSettings);
    let cases: [(Spoil, &str); 6] = [
        (|s| s.rate = 0.0, "rate"),
        (|s| s.vehicles = 0, "vehicles"),
        (|s| s.batch = 1001, "batch"),
        (|s| s.summary_interval = Duration::ZERO, "longer than zero"),
        (|s| s.prefix = "a/".into(), "prefix"),
        (|s| s.server = "ftp://h".into(), "server"),
    ];
    for (spoil, expected) in cases {
        let mut settings = good.clone();
        spoil(&mut settings);
        let err = run(settings, std::future::ready(())).await.unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
}

#[test]
fn the_summary_counts_readings_errors_and_recent_latency() {
    let stats = Stats::new();
    assert!(stats.record(5, Outcome::Accepted(Duration::from_micros(800))).is_none());
    assert_eq!(
        stats.record(1, Outcome::Refused(Duration::from_millis(2), "422: bad".into())),
        Some("422: bad".to_owned())
    );
    assert!(stats.record(1, Outcome::Failed("refused".into())).is_none());
    let line = stats.interval_line(Duration::from_secs(2), 3);
    assert!(line.starts_with("t=2s vehicles=3 sent=5 (2.5/s) errors=2 p50=0.80ms"), "{line}");
    let line = stats.interval_line(Duration::from_millis(2500), 3);
    assert!(line.ends_with("(0.0/s) errors=2 p50=- p99=- max=-"), "{line}");
    let report = stats.report(3, Duration::from_secs(5));
    assert_eq!((report.sent_readings, report.requests, report.errors), (5, 3, 2));
    assert!(report.max_us >= 2000 && report.p50_us >= 800, "{report:?}");
    assert!(report.to_string().starts_with("done: t=5s vehicles=3 sent=5 (1.0/s)"));
}

#[test]
fn problem_details_are_shown_as_their_detail() {
    let body = br#"{"type":"about:blank","title":"Invalid","status":422,"detail":"engine_rpm is out of range"}"#;
    assert_eq!(problem_detail(body), "engine_rpm is out of range");
    assert_eq!(problem_detail(b"Bad Gateway"), "Bad Gateway");
    assert_eq!(problem_detail(b""), "(empty body)");
}
