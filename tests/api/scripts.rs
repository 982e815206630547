//! The scripts honour `CARGO_TARGET_DIR`, as the README promises: a script
//! that hard-codes `target/debug` fails at its end on a machine that builds
//! elsewhere (`scripts/schemathesis` once did). Cheap checks rather than a run
//! of `scripts/test` itself, which installs tools and takes many minutes.

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// What `target_dir` (scripts/lib.sh) prints with `CARGO_TARGET_DIR` set to
/// `value`, or unset.
fn target_dir(value: Option<&str>) -> String {
    let mut bash = Command::new("bash");
    bash.args(["-c", "source scripts/lib.sh && target_dir"]).current_dir(ROOT);
    match value {
        Some(value) => bash.env("CARGO_TARGET_DIR", value),
        None => bash.env_remove("CARGO_TARGET_DIR"),
    };
    let output = bash.output().expect("bash runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim_end().to_owned()
}

#[test]
fn the_scripts_target_directory_follows_cargo_target_dir() {
    assert_eq!(target_dir(None), format!("{ROOT}/target"));
    assert_eq!(target_dir(Some("/elsewhere/build")), "/elsewhere/build");
    assert_eq!(target_dir(Some("build")), format!("{ROOT}/build"), "relative to the repository");
}

#[test]
fn no_script_hard_codes_a_path_into_target() {
    let mut scripts: Vec<_> = std::fs::read_dir(Path::new(ROOT).join("scripts"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    scripts.extend(["bench/run", "bench/stream"].map(|script| Path::new(ROOT).join(script)));
    for script in scripts {
        let text = std::fs::read_to_string(&script).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split('#').next().unwrap_or_default();
            assert!(
                !code.contains("target/debug") && !code.contains("target/release"),
                "{}:{}: use $(target_dir) from scripts/lib.sh instead: {line}",
                script.display(),
                number + 1
            );
        }
    }
}

/// Runs bench/report.awk over the given results, memory and seed lines (as
/// bench/run writes them) and returns its exit status and its table.
fn bench_report(results: &str, memory: &str, seed: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let files = [("results", results), ("memory", memory), ("seed", seed)].map(|(name, text)| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    });
    let output = Command::new("awk")
        .args(["-v", "fleet=100000", "-v", "readings=10", "-v", "seed_workers=5", "-f"])
        .arg(Path::new(ROOT).join("bench/report.awk"))
        .args(&files)
        .output()
        .expect("awk runs");
    assert!(output.stderr.is_empty(), "{}", String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap(), String::from_utf8(output.stdout).unwrap())
}

/// One results line of one vehicle: wrk's summaries of Tributary and of the
/// floor (10 s each), from each one's throughput and p99; the store is the
/// key's first part.
fn result_line(
    key: &str,
    rate: u32,
    p99_us: u32,
    floor: u32,
    floor_p99_us: u32,
    kind: &str,
) -> String {
    let scenario = if key.contains(".record.") { "POST /record" } else { "GET /collect" };
    let store = key.split('.').next().unwrap();
    format!(
        "{key}\t{scenario}\t{store}\t1\treq\t{}\t10000000\t500\t{p99_us}\t0\t0\t{}\t10000000\t400\t{floor_p99_us}\t0\t0\t{kind}\n",
        rate * 10,
        floor * 10
    )
}

fn report_line<'a>(report: &'a str, starts: &str, store: &str) -> &'a str {
    report
        .lines()
        .find(|line| line.starts_with(starts) && line.contains(store))
        .unwrap_or_else(|| panic!("no line {starts:?} of {store} in:\n{report}"))
}

#[test]
fn the_bench_report_holds_tributary_on_redis_to_the_redis_floor_and_the_seed() {
    let results = [
        result_line("redis/aof.record.one", 30_000, 2_000, 33_000, 1_500, "redis"),
        // 0.80 of the Redis floor: short of 0.85.
        result_line("redis/aof.collect.one", 40_000, 1_000, 50_000, 1_000, "redis"),
        result_line("memory.record.one", 90_000, 2_000, 100_000, 2_000, "bare"),
    ]
    .concat();
    // The seed: 500 req/s with one worker (Tributary 60x), 1,000 with five (30x);
    // /collect's p99 only 5 times Tributary's.
    let seed = "1\taof\trecord\t5000\t10000000\t60000\t200000\t0\t0\n\
                5\taof\trecord\t10000\t10000000\t30000\t100000\t0\t0\n\
                1\taof\tcollect\t5000\t10000000\t4000\t5000\t0\t0\n";
    let memory = "memory\t20000\t190000\t190000\t-\t-\t-\t5.0\t-\t-\t100000\n\
                  memory\t20000\t2200000\t2200000\t-\t-\t-\t50.0\t-\t-\t1000000\n";
    let (status, report) = bench_report(&results, memory, seed);
    assert_eq!(status, 1, "a goal is missed:\n{report}");
    assert!(report_line(&report, "POST /record", "redis/aof").ends_with("PASS"), "{report}");
    assert!(
        report_line(&report, "GET /collect", "redis/aof").ends_with("FAIL (ratio)"),
        "{report}"
    );
    assert!(report_line(&report, "POST /record", "memory").ends_with("PASS"), "{report}");
    let seed_rows: Vec<&str> = report.lines().filter(|line| line.contains("p99 >=")).collect();
    assert_eq!(seed_rows.len(), 3, "{report}");
    assert!(seed_rows[0].contains("60.0") && seed_rows[0].ends_with("PASS"), "{report}");
    assert!(seed_rows[1].contains("30.0") && seed_rows[1].ends_with("PASS"), "{report}");
    assert!(seed_rows[2].ends_with("FAIL (p99)"), "{report}");
    // 190 MB at 100,000 vehicles passes; 2.3 GB at a million does not.
    assert!(report_line(&report, "memory ", "  100,000 ").ends_with("PASS"), "{report}");
    assert!(report_line(&report, "memory ", "1,000,000").ends_with("FAIL"), "{report}");
}

#[test]
fn bench_run_explains_itself_and_refuses_unknown_arguments() {
    let run = |arg: &str| {
        Command::new("bash")
            .arg("bench/run")
            .arg(arg)
            .current_dir(ROOT)
            .output()
            .expect("bash runs")
    };
    let help = run("--help");
    assert!(help.status.success(), "{}", String::from_utf8_lossy(&help.stderr));
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(text.contains("--million") && text.contains("Redis floor"), "{text}");
    let unknown = run("--fast");
    assert_eq!(unknown.status.code(), Some(2), "{}", String::from_utf8_lossy(&unknown.stderr));
}
